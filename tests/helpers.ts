/**
 * Shared helpers for the test suite, which runs unchanged under `deno test`,
 * `bun test` and `node --test` (node:test and node:assert).
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { ChannelError } from "../mod.ts";

export type Runtime = "deno" | "bun" | "node";

const G = globalThis as { Bun?: unknown; Deno?: unknown };
/** The runtime running this suite. */
export const runtime: Runtime = G.Bun !== undefined ? "bun" : G.Deno !== undefined ? "deno" : "node";
/** Every runtime, for cases run against a child of each. */
export const runtimes: Runtime[] = ["deno", "bun", "node"];

const path = (rel: string) => decodeURIComponent(new URL(rel, import.meta.url).pathname);
/** The package root. */
export const root = path("../");
/**
 * A runtime's binary, as installed by npm; for Node children of a Node
 * parent, the parent's own (CI runs the suite under several Node lines).
 */
export const binary = (rt: Runtime) =>
  rt === "node" && runtime === "node" ? process.execPath : path(`../node_modules/.bin/${rt}`);
/** ".ts", or ".js" when this suite runs compiled (scripts/compile-tests.mjs). */
export const ext = import.meta.url.slice(import.meta.url.lastIndexOf("."));
/** The child script used by the cross-process cases. */
export const peerScript = path(`./children/peer${ext}`);
/** The `shmchan` command. */
export const cliScript = path(`../src/cli/shmchan${ext}`);

/** The directory doorbell sockets are bound through (csrc/DESIGN.md §8): $TMPDIR or /tmp. */
const TMP = process.env.TMPDIR?.startsWith("/") ? process.env.TMPDIR : "/tmp";
/**
 * Deno's flags for shmchan: FFI for the library; for the doorbell sockets,
 * net (Deno counts Unix sockets as net) and read/write in the temporary
 * directory they are bound through.
 */
export const DENO_FLAGS = ["--allow-ffi", "--allow-net", "--allow-read", `--allow-write=${TMP}`, "--allow-env"];
/** Deno's flags for the NATS bridge: shmchan's (the network included). */
export const BRIDGE_DENO_FLAGS = DENO_FLAGS;

/** A fresh random key, so runs (and runtimes) never collide. */
export function uniqueKey(): bigint {
  const words = new Uint32Array(2);
  crypto.getRandomValues(words);
  return ((BigInt(words[0] & 0x3fffffff) << 32n) | BigInt(words[1])) + 1n;
}

/** A random key that is a safe integer (< 2^53). */
export function uniqueNumberKey(): number {
  return Number(uniqueKey() & ((1n << 52n) - 1n)) + 1;
}

export const text = (bytes: Uint8Array | null) => (bytes === null ? null : new TextDecoder().decode(bytes));
export const bytes = (...values: number[]) => new Uint8Array(values);

/** Asserts that `fn` throws a ChannelError with this code. */
export function throwsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ChannelError, `expected ChannelError ${code}, got ${err}`);
    assert.equal(err.code, code);
    return true;
  });
}

/** Asserts that `p` rejects with a ChannelError with this code. */
export async function rejectsCode(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof ChannelError, `expected ChannelError ${code}, got ${err}`);
    assert.equal(err.code, code);
    return true;
  });
}

/** Resolves or rejects like `p`, but rejects if that takes longer than `ms` (a hang guard). */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`hang guard: ${what} took over ${ms} ms`)), ms);
  });
  return Promise.race([p, guard]).finally(() => clearTimeout(timer));
}

/** Waits `ms` milliseconds (to let another process get somewhere; never asserted on). */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Runs a macrotask turn: lets pending I/O callbacks (doorbell bytes) run. */
export const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/** The command line that runs `script` under a runtime (Deno with `denoFlags`). */
export function commandFor(rt: Runtime, script: string, args: string[], denoFlags = DENO_FLAGS): [string, string[]] {
  if (rt === "deno") return [binary("deno"), ["run", ...denoFlags, script, ...args]];
  if (rt === "node") return [binary("node"), [script, ...args]];
  return [binary("bun"), ["run", script, ...args]];
}

export interface ChildOptions {
  /** Run as this uid/gid through setpriv (root only). */
  asUser?: number;
  /** Run inside this network namespace through `ip netns exec` (root only). */
  netns?: string;
  /** The script to run; default children/peer.ts. */
  script?: string;
  env?: Record<string, string>;
  /** Deno's permission flags instead of DENO_FLAGS. */
  denoFlags?: string[];
}

/**
 * A child process speaking one JSON object per stdout line. `next()` returns
 * the next line; `exit()` resolves with the exit code (or the signal name).
 */
export class Child {
  readonly process: ChildProcess;
  readonly rt: Runtime;
  #lines: unknown[] = [];
  #waiters: Array<{ resolve: (v: unknown) => void; reject: (e: Error) => void }> = [];
  #buffer = "";
  #stderr = "";
  #exit: Promise<number | string>;
  #exited = false;

  constructor(rt: Runtime, args: string[], opts: ChildOptions = {}) {
    this.rt = rt;
    let [cmd, argv] = commandFor(rt, opts.script ?? peerScript, args, opts.denoFlags);
    if (opts.asUser !== undefined) {
      const id = String(opts.asUser);
      argv = [`--reuid=${id}`, `--regid=${id}`, "--clear-groups", cmd, ...argv];
      cmd = "setpriv";
    }
    if (opts.netns !== undefined) {
      argv = ["netns", "exec", opts.netns, cmd, ...argv];
      cmd = "ip";
    }
    this.process = spawn(cmd, argv, {
      cwd: root,
      env: { ...process.env, NO_COLOR: "1", ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.process.stdout!.setEncoding("utf8");
    this.process.stderr!.setEncoding("utf8");
    this.process.stdout!.on("data", (chunk: string) => {
      this.#buffer += chunk;
      let nl: number;
      while ((nl = this.#buffer.indexOf("\n")) >= 0) {
        const line = this.#buffer.slice(0, nl).trim();
        this.#buffer = this.#buffer.slice(nl + 1);
        if (line) this.#push(line);
      }
    });
    this.process.stderr!.on("data", (chunk: string) => {
      this.#stderr += chunk;
    });
    this.#exit = new Promise((resolve) => {
      this.process.on("close", (code, signal) => {
        this.#exited = true;
        for (const w of this.#waiters.splice(0)) {
          w.reject(new Error(`${rt} child exited (${code ?? signal}) before writing a line; stderr:\n${this.#stderr}`));
        }
        resolve(code ?? signal ?? -1);
      });
    });
  }

  #push(line: string): void {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      value = { unparsed: line };
    }
    const w = this.#waiters.shift();
    if (w) w.resolve(value);
    else this.#lines.push(value);
  }

  /** The next JSON line from the child (hang-guarded). */
  next<T = Record<string, unknown>>(ms = 20_000): Promise<T> {
    if (this.#lines.length) return Promise.resolve(this.#lines.shift() as T);
    if (this.#exited) return Promise.reject(new Error(`${this.rt} child already exited; stderr:\n${this.#stderr}`));
    const p = new Promise<unknown>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    return within(p as Promise<T>, ms, `a line from the ${this.rt} child`);
  }

  /** The exit code, or the name of the signal that ended the child (hang-guarded). */
  exit(ms = 20_000): Promise<number | string> {
    return within(this.#exit, ms, `the ${this.rt} child to exit`);
  }

  get stderr(): string {
    return this.#stderr;
  }

  kill(signal: NodeJS.Signals = "SIGKILL"): void {
    if (!this.#exited) this.process.kill(signal);
  }
}

/** Starts the peer child under `rt` with these arguments (see children/peer.ts). */
export function peer(rt: Runtime, args: Array<string | number | bigint>, opts?: ChildOptions): Child {
  return new Child(rt, args.map(String), opts);
}

/** True when this process runs as root (for the setpriv cases). */
export function isRoot(): boolean {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

/**
 * Why uid `uid` cannot run the peer child here, or null when it can: it must
 * reach the runtime binary, the library and the sources.
 */
export function unprivilegedBlocker(uid: number): string | null {
  const has = spawnSync("setpriv", ["--version"], { stdio: "ignore" });
  if (has.error || has.status !== 0) return "setpriv is not installed";
  const files = [
    ...runtimes.map(binary),
    `${root}build/libshmchan.so`,
    `${root}build/shmchan_node.node`,
    peerScript,
    `${root}mod${ext}`,
    `${root}src/channel${ext}`,
  ];
  const probe = spawnSync(
    "setpriv",
    [
      `--reuid=${uid}`,
      `--regid=${uid}`,
      "--clear-groups",
      "sh",
      "-c",
      'for f in "$@"; do test -r "$f" || { echo "$f"; exit 1; }; done',
      "sh",
      ...files,
    ],
    { encoding: "utf8" },
  );
  if (probe.status !== 0) return `uid ${uid} cannot read ${probe.stdout.trim() || "the checkout"}`;
  return null;
}
