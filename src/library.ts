/**
 * Picks the backend for the running runtime and opens the C library lazily,
 * on the first channel operation.
 */
import type { Backend, Native } from "./backend.ts";
import { backend as denoBackend } from "./backend_deno.ts";

const runtimeGlobals = globalThis as {
  Bun?: unknown;
  Deno?: unknown;
  process?: { version?: string; versions?: { node?: string } };
};

/** The oldest Node.js major line supported. */
const NODE_MIN_MAJOR = 22;

async function detectBackend(): Promise<Backend> {
  if (runtimeGlobals.Bun !== undefined) {
    // A specifier in a variable: Deno's checker must not follow it.
    const bunBackend = "./backend_bun.ts";
    return ((await import(bunBackend)) as { backend: Backend }).backend;
  }
  if (runtimeGlobals.Deno !== undefined) return denoBackend;
  const node = runtimeGlobals.process?.versions?.node;
  if (node !== undefined) {
    if (Number(node.split(".")[0]) < NODE_MIN_MAJOR) {
      throw new Error(
        `shmchan needs Node.js ${NODE_MIN_MAJOR} or newer; this is Node.js ${runtimeGlobals.process?.version}`,
      );
    }
    const nodeBackend = "./backend_node.ts";
    return ((await import(nodeBackend)) as { backend: Backend }).backend;
  }
  throw new Error("shmchan runs under Node.js, Deno or Bun; this runtime is none of them");
}

/** The backend of the running runtime. */
export const backend: Backend = await detectBackend();

/** Where the shared object is: $SHMCHAN_LIB, else <package root>/build/libshmchan.so. */
export function libraryPath(): string {
  const override = backend.env("SHMCHAN_LIB");
  if (override) return override;
  return decodeURIComponent(new URL("../build/libshmchan.so", import.meta.url).pathname);
}

let native: Native | undefined;

/** The bound C library; opened on first use. */
export function lib(): Native {
  if (native) return native;
  const path = libraryPath();
  try {
    native = backend.open(path);
  } catch (cause) {
    throw new Error(
      `shmchan: cannot load the C library ${path} ` +
        `(run \`npm install\` or \`npm run build\` in the shmchan package, ` +
        `or point SHMCHAN_LIB at libshmchan.so): ${(cause as Error)?.message ?? cause}`,
      { cause },
    );
  }
  return native;
}
