/** Small helpers shared by the examples (not part of the library). */
import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";

const G = globalThis as { Bun?: unknown; Deno?: unknown };
/** "deno", "bun" or "node". */
export const runtime: string = G.Bun !== undefined ? "bun" : G.Deno !== undefined ? "deno" : "node";

export const decode = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A key for this run: from the command line, else random. */
export function keyFrom(arg: string | undefined): bigint {
  if (arg) return BigInt(arg);
  const words = new Uint32Array(2);
  crypto.getRandomValues(words);
  return ((BigInt(words[0] & 0x3fffffff) << 32n) | BigInt(words[1])) + 1n;
}

/** A child process of the same runtime, and its exit code to come. */
export interface Spawned {
  child: ChildProcess;
  exited: Promise<number>;
}

/** Runs `script` with `args` as a child process of the same runtime; its output goes to ours. */
export function spawnSame(script: string | URL, args: string[]): Spawned {
  const path = decodeURIComponent(new URL(script, import.meta.url).pathname);
  const argv = runtime === "deno"
    ? ["run", "--allow-ffi", "--allow-net", "--allow-read=/tmp", "--allow-write=/tmp", "--allow-env", path, ...args]
    : runtime === "bun"
    ? ["run", path, ...args]
    : [path, ...args];
  const child = spawn(process.execPath, argv, { stdio: ["ignore", "inherit", "inherit"] });
  // Listen at once: a child may exit before anyone asks.
  const exited = new Promise<number>((resolve) => child.on("close", (code) => resolve(code ?? 1)));
  return { child, exited };
}

/** Sets the exit code from the children's: 0 only if all of them exited with 0. */
export async function waitAll(children: Spawned[]): Promise<void> {
  const codes = await Promise.all(children.map((c) => c.exited));
  process.exitCode = codes.every((c) => c === 0) ? 0 : 1;
}
