/**
 * Which runtime runs us, and where its C library is: the one place that
 * detects the runtime, knows the platforms with a prebuilt library, and opens
 * the library (lazily, on the first channel operation).
 */
import type { Backend, Native } from "./backend.ts";
import { backend as denoBackend } from "./backend_deno.ts";
// What ships prebuilt (scripts/prebuild.mjs builds it from the same file).
import PREBUILDS from "./prebuilds.json" with { type: "json" };

/** The runtimes that have a backend. */
export type RuntimeName = "deno" | "bun" | "node";

/** The oldest Node.js major line supported. */
const NODE_MIN_MAJOR = 22;

/**
 * The runtime that `globals` belong to. Anything without a backend gets one
 * sentence that names it and the runtimes shmchan runs under.
 */
export function detectRuntime(globals: object = globalThis): RuntimeName {
  const g = globals as { Bun?: unknown; Deno?: unknown; process?: { versions?: { node?: unknown } } };
  // Bun and Deno report a Node.js version too: look for them first.
  if (g.Bun !== undefined) return "bun";
  if (g.Deno !== undefined) return "deno";
  const node = g.process?.versions?.node;
  if (typeof node === "string") {
    if (Number(node.split(".")[0]) >= NODE_MIN_MAJOR) return "node";
    throw new Error(`shmchan needs Node.js ${NODE_MIN_MAJOR} or newer; this is Node.js v${node}`);
  }
  throw new Error("shmchan runs under Node.js 22+, Deno 2 and Bun 1, and this runtime is none of them.");
}

async function loadBackend(runtime: RuntimeName): Promise<Backend> {
  switch (runtime) {
    case "deno":
      return denoBackend;
    case "bun": {
      // A specifier in a variable: Deno's checker must not follow it.
      const bunBackend = "./backend_bun.ts";
      return ((await import(bunBackend)) as { backend: Backend }).backend;
    }
    case "node": {
      const nodeBackend = "./backend_node.ts";
      return ((await import(nodeBackend)) as { backend: Backend }).backend;
    }
  }
}

/** The backend of the running runtime. */
export const backend: Backend = await loadBackend(detectRuntime());

/**
 * Platforms (`<os>-<arch>`, as Backend.platform() names them) whose library
 * ships prebuilt in the package, at prebuilds/<platform>/libshmchan.so: the
 * "platforms" of src/prebuilds.json.
 */
export const PREBUILT_PLATFORMS: readonly string[] = Object.keys(PREBUILDS.platforms);
/** The oldest glibc the prebuilt libraries load with. */
export const PREBUILT_GLIBC: string = PREBUILDS.glibc;

const fromRoot = (rel: string) => decodeURIComponent(new URL(`../${rel}`, import.meta.url).pathname);
/** The package root (or the checkout): src/ and dist/ both sit one level below it. */
const ROOT = fromRoot("");
/** Running from the TypeScript sources (a checkout), not from the compiled package. */
const FROM_SOURCE = import.meta.url.endsWith(".ts");
const BUILT = fromRoot("build/libshmchan.so");

/** The command that builds the library from the sources in this package. */
export function sourceBuildCommand(): string {
  return `cmake -S ${ROOT} -B ${ROOT}build -DCMAKE_BUILD_TYPE=Release -DSHMCHAN_TESTS=OFF && ` +
    `cmake --build ${ROOT}build`;
}

/** One place the library may be, and what to say if it is not there. */
interface Candidate {
  path: string;
  origin: "SHMCHAN_LIB" | "source build" | "prebuilt";
}

/**
 * Where to look, in order: $SHMCHAN_LIB alone when it is set; otherwise the
 * library built from source (build/libshmchan.so: the checkout's own, or one
 * built in the installed package), then, in the compiled package only, the
 * prebuilt library of this platform.
 */
function candidates(): Candidate[] {
  const override = backend.env("SHMCHAN_LIB");
  if (override) return [{ path: override, origin: "SHMCHAN_LIB" }];
  const list: Candidate[] = [{ path: BUILT, origin: "source build" }];
  const platform = backend.platform();
  if (!FROM_SOURCE && PREBUILT_PLATFORMS.includes(platform)) {
    list.push({ path: fromRoot(`prebuilds/${platform}/libshmchan.so`), origin: "prebuilt" });
  }
  return list;
}

let noted = false;
/** Says once per process that SHMCHAN_LIB could not be read (Deno without --allow-env). */
function noteUnreadableOverride(): void {
  if (noted) return;
  noted = true;
  console.warn(
    "shmchan: SHMCHAN_LIB is not read: Deno grants no access to it " +
      "(run with --allow-env=SHMCHAN_LIB to use it, or --deny-env=SHMCHAN_LIB to silence this)",
  );
}

function isMissing(err: unknown, path: string): boolean {
  // dlerror() names the file it could not open: `path` itself, not a dependency.
  return String((err as Error)?.message ?? err).includes(`${path}: cannot open shared object file: No such file`);
}

/** The error for a library that is nowhere: what to do about it. */
function missingError(tried: Candidate[]): Error {
  const platform = backend.platform();
  if (tried[0].origin === "SHMCHAN_LIB") {
    return new Error(
      `shmchan: SHMCHAN_LIB points at ${tried[0].path}, which does not exist ` +
        `(build the library with \`${sourceBuildCommand()}\`, or unset SHMCHAN_LIB)`,
    );
  }
  if (FROM_SOURCE) {
    return new Error(
      `shmchan: the C library ${BUILT} is not built: run \`npm run build\` in ${ROOT} ` +
        `(CMake and a C compiler; \`npm test\` builds it too), or point SHMCHAN_LIB at a libshmchan.so`,
    );
  }
  if (!platform.startsWith("linux-")) {
    return new Error(`shmchan runs on Linux only (futexes, abstract Unix sockets, OFD locks); this is ${platform}`);
  }
  if (!PREBUILT_PLATFORMS.includes(platform)) {
    return new Error(
      `shmchan has no prebuilt C library for ${platform} (only for ${PREBUILT_PLATFORMS.join(" and ")}): ` +
        `build it from source with \`${sourceBuildCommand()}\` (CMake and a C compiler), ` +
        `or point SHMCHAN_LIB at a libshmchan.so you built`,
    );
  }
  return new Error(
    `shmchan: the prebuilt C library ${tried[tried.length - 1].path} is missing from the package: ` +
      `reinstall shmchan, or build it from source with \`${sourceBuildCommand()}\``,
  );
}

let native: Native | undefined;

/** The bound C library; opened on first use. */
export function lib(): Native {
  if (native) return native;
  const list = candidates();
  // Deno without --allow-ffi: say so before anything else.
  const denied = list.map((c) => backend.ffiDenied(c.path));
  if (denied.every((d) => d !== null)) throw new Error(`shmchan: ${denied[0]}`);
  if (backend.env("SHMCHAN_LIB") === null) noteUnreadableOverride();
  for (const [i, c] of list.entries()) {
    if (denied[i] !== null) continue;
    try {
      native = backend.open(c.path);
      return native;
    } catch (cause) {
      if (isMissing(cause, c.path)) continue;
      const hint = c.origin === "prebuilt"
        ? `the prebuilt libraries need glibc ${PREBUILT_GLIBC} or later; with another C library, build from ` +
          `source with \`${sourceBuildCommand()}\``
        : c.origin === "SHMCHAN_LIB"
        ? "SHMCHAN_LIB must point at a libshmchan.so built for this machine"
        : `rebuild it with \`npm run build\` in ${ROOT}`;
      throw new Error(
        `shmchan: cannot load the C library ${c.path} (${c.origin}): ` +
          `${(cause as Error)?.message ?? cause}; ${hint}`,
        { cause },
      );
    }
  }
  throw missingError(list);
}
