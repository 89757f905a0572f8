/**
 * shmchan's JavaScript benchmarks: one file that runs unchanged under Deno,
 * Bun and Node. `bench.ts CASE [--quick]` runs the measuring side of one case,
 * spawns its peer processes (this same file, with a role name, under the same
 * runtime), prints one JSON result line and exits. bench/run.mjs drives it.
 *
 *   deno run -A bench/bench.ts rt-shmc-await      bun bench/bench.ts rt-shmc-await
 *   node bench/bench.ts rt-shmc-await             (Node 24 or newer: the file uses `using`)
 *
 * Cases (64 B messages unless said; every peer is a separate process):
 *   paced-T-P         request/reply on traffic pattern P (b2b, 50us, 1ms, 10ms,
 *                     burst: see PATTERNS) over transport T: shmc (default
 *                     `await send()` / `await recv()` on both sides), shmc-park
 *                     (`spin: 0`), shmc-spin (`spin: 30`), native
 *                     (Deno.listen/connect, Bun.listen/connect), net (node:net);
 *                     p50/p99 and CPU per request of both processes
 *   rt-shmc-await     round trip, default `await recvInto()` on both sides
 *   rt-shmc-park      round trip, `await recvInto(buf, { spin: 0 })`: always park
 *   rt-shmc-spin      round trip, both sides loop on tryRecvInto()
 *   rt-net            round trip, node:net Unix socket echo
 *   rt-native         round trip, Deno.listen/connect or Bun.listen/connect (unix; not Node)
 *   rt-ipc            round trip, Bun.spawn ipc (Bun only)
 *   pair              one process: 64 B trySend + tryRecvInto, ns per pair
 *   tput-shmc-SIZE    one producer -> one spinning consumer, trySend / tryRecvInto
 *   tput-shmc-many-SIZE  the same with trySendMany (64 at a time) / tryRecvMany
 *   tput-net-SIZE     the same over a node:net Unix stream, fixed-size messages
 *   tput-native-SIZE  the same over Deno.connect / Bun.connect (not Node)
 *   fill-T-SIZE       large messages (65536, 1048576), the producer filling each one
 *                     (64-bit counter words over every byte) and the consumer
 *                     summing all of it and checking the sum, over transport T:
 *                     zc (tryLoan/commit -> tryRecvView/release, in place), copy
 *                     (trySend/tryRecvInto with private buffers), net (node:net),
 *                     native (Deno/Bun sockets, not Node); 8 ring entries as cbench
 *   bcast-shmc        one producer -> 4 receivers (broadcast), `await recvInto()`
 *   bcast-net         one producer writing every message to 4 Unix sockets
 *   mcast-shmc        one producer -> 2 competing workers (multicast)
 *   mcast-net         one producer alternating over 2 Unix sockets
 *   idle-shmc         %CPU of a process parked in `await recv()` for a few seconds
 *   idle-net          %CPU of a process waiting on an idle node:net socket
 *   loop-T            one thread: an echo server and its client as two async loops,
 *                     shmc (`spin: 0`, every wait parked) or a socket (native, net);
 *                     µs and CPU per round trip, with no wakeup in it (the cost of
 *                     the parked path itself)
 *
 * Every process arms a watchdog; busy loops check a deadline; the measuring
 * side waits for its children to exit (killing them after 5 s) so that each
 * is reaped. Channels use random keys and are destroyed (the owner is always
 * the measuring process). Unix socket files live in /tmp and are removed.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import * as net from "node:net";
import process from "node:process";
import { Channel, ChannelError, type Subscriber } from "../mod.ts";

// ---- runtime ----------------------------------------------------------------

// deno-lint-ignore no-explicit-any
const G = globalThis as any;
const RUNTIME: "deno" | "bun" | "node" = G.Bun !== undefined ? "bun" : G.Deno !== undefined ? "deno" : "node";
const SCRIPT = decodeURIComponent(new URL(import.meta.url).pathname);
const ARGS: string[] = RUNTIME === "deno" ? G.Deno.args : process.argv.slice(2);
const QUICK = ARGS.includes("--quick");
const POS = ARGS.filter((a) => !a.startsWith("--"));
/** --spin=US: the `spin` option of the paced shmchan waits (default: none, the library's own choice). */
let SPIN_ARG = ARGS.find((a) => a.startsWith("--spin="))?.slice(7);
if (POS[0]?.startsWith("paced-shmc-park-")) SPIN_ARG = "0";
if (POS[0]?.startsWith("paced-shmc-spin-")) SPIN_ARG = "30";
const WAIT_OPTS = SPIN_ARG === undefined ? undefined : { spin: Number(SPIN_ARG) };
const WATCHDOG_MS = 50_000;

/** Absolute time in ms (comparable across processes on one machine). */
const wallMs = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function randomKey(): bigint {
  const b = new Uint32Array(2);
  crypto.getRandomValues(b);
  return ((BigInt(b[0] & 0x3fffffff) << 32n) | BigInt(b[1])) + 1n;
}

function tmpSocketPath(tag: string): string {
  const b = new Uint32Array(1);
  crypto.getRandomValues(b);
  return `/tmp/shmchan-bench-${process.pid}-${tag}-${b[0].toString(16)}.sock`;
}

function out(obj: Record<string, unknown>): void {
  console.log(JSON.stringify({ runtime: RUNTIME, ...obj }));
}

function fail(msg: string): never {
  console.error(`bench(${RUNTIME}): ${msg}`);
  killChildren();
  process.exit(1);
}

/** A watchdog that never keeps the process alive by itself. */
function armWatchdog(ms: number): void {
  const t = setTimeout(() => fail(`watchdog: still running after ${ms} ms`), ms);
  if (RUNTIME === "deno") G.Deno.unrefTimer(t);
  else (t as unknown as { unref(): void }).unref();
}

/** Throws from a busy loop when past its deadline (checked every 1024 rounds). */
class Deadline {
  #at: number;
  #n = 0;
  constructor(ms: number) {
    this.#at = performance.now() + ms;
  }
  check(what: string): void {
    if ((++this.#n & 1023) === 0 && performance.now() > this.#at) fail(`deadline passed: ${what}`);
  }
}

// ---- children ---------------------------------------------------------------

const children = new Set<Child>();

function killChildren(): void {
  for (const c of children) c.kill();
}

/**
 * Waits for every child to exit (killing those still running after `ms`), so
 * that each is reaped and its CPU time counts as this process's children's.
 */
async function reapChildren(ms = 5_000): Promise<void> {
  const all = [...children];
  const timer = setTimeout(() => killChildren(), ms);
  await Promise.all(all.map((c) => c.exited));
  clearTimeout(timer);
}

/** A peer process: this script with a role, under the same runtime. */
class Child {
  readonly proc: ChildProcess;
  readonly exited: Promise<number>;
  #lines: string[] = [];
  #wake: (() => void) | undefined;
  #buf = "";
  #done = false;

  constructor(role: string, args: (string | number | bigint)[]) {
    const argv = RUNTIME === "deno"
      ? ["run", "-A", "--quiet", SCRIPT, role, ...args.map(String)]
      : [...process.execArgv, SCRIPT, role, ...args.map(String)];
    this.proc = spawn(process.execPath, argv, { stdio: ["ignore", "pipe", "inherit"] });
    children.add(this);
    this.proc.stdout!.setEncoding("utf8");
    this.proc.stdout!.on("data", (d: string) => {
      this.#buf += d;
      let i;
      while ((i = this.#buf.indexOf("\n")) >= 0) {
        this.#lines.push(this.#buf.slice(0, i));
        this.#buf = this.#buf.slice(i + 1);
      }
      this.#wake?.();
    });
    this.exited = new Promise((resolve) => {
      this.proc.on("exit", (code, sig) => {
        this.#done = true;
        children.delete(this);
        this.#wake?.();
        resolve(code ?? (sig ? 128 : 0));
      });
    });
  }

  get pid(): number {
    return this.proc.pid!;
  }

  /** The next line printed by the child (waits up to `ms`). */
  async line(ms = 20_000): Promise<string> {
    const until = performance.now() + ms;
    while (this.#lines.length === 0) {
      if (this.#done) fail(`child ${this.pid} exited before printing`);
      if (performance.now() > until) fail(`child ${this.pid} printed nothing for ${ms} ms`);
      await new Promise<void>((r) => {
        this.#wake = r;
        setTimeout(r, 50);
      });
      this.#wake = undefined;
    }
    return this.#lines.shift()!;
  }

  async expect(word: string): Promise<void> {
    const l = await this.line();
    if (l !== word) fail(`expected ${word} from child, got ${l}`);
  }

  async json(): Promise<Record<string, number>> {
    return JSON.parse(await this.line(40_000));
  }

  kill(): void {
    if (!this.#done) {
      try {
        this.proc.kill("SIGKILL");
      } catch { /* gone */ }
    }
  }
}

// ---- statistics -------------------------------------------------------------

function rtStats(samplesUs: Float64Array): Record<string, number> {
  const s = Float64Array.from(samplesUs).sort();
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(s.length * p))];
  let sum = 0;
  for (const v of s) sum += v;
  return { n: s.length, p50_us: q(0.5), p99_us: q(0.99), mean_us: sum / s.length, min_us: s[0] };
}

const RT_ITERS = { spin: QUICK ? 20_000 : 100_000, wait: QUICK ? 3_000 : 10_000 };
const WARMUP = QUICK ? 1_000 : 5_000;
const TPUT_MS = QUICK ? 250 : 800;
const IDLE_MS = QUICK ? 1_000 : 3_000;
const MSG = 64;

function ringFor(size: number): number {
  // The same geometry as bench/c/cbench.c.
  return size <= 256 ? 1024 : size <= 8192 ? 256 : 32;
}

/** trySend's fast path; on a full ring fall back to the awaiting send(). */
function sendFast(ch: Channel | Subscriber, msg: Uint8Array): Promise<number> | undefined {
  try {
    ch.trySend(msg);
    return undefined;
  } catch (e) {
    if (e instanceof ChannelError && e.code === "ENOBUFS") return ch.send(msg);
    throw e;
  }
}

// ---- one process: the cost of the calls --------------------------------------

/** trySend + tryRecvInto of 64 B in one process: the FFI and library cost per pair. */
function pair(): void {
  const key = randomKey();
  using ch = Channel.create({ key, ringEntries: 1024, maxMessageSize: MSG });
  using sub = Channel.attach({ key }, "recv");
  const msg = new Uint8Array(MSG).fill(5), buf = new Uint8Array(MSG);
  const iters = QUICK ? 300_000 : 3_000_000;
  for (let i = 0; i < 100_000; i++) {
    ch.trySend(msg);
    sub.tryRecvInto(buf);
  }
  const t = performance.now();
  for (let i = 0; i < iters; i++) {
    ch.trySend(msg);
    if (sub.tryRecvInto(buf) !== MSG) fail("pair: lost a message");
  }
  const ns = ((performance.now() - t) * 1e6) / iters;
  out({ case: "pair", kind: "pair", n: iters, ns_per_pair: ns });
}

// ---- round trip: shmchan ----------------------------------------------------

async function rtShmc(mode: "await" | "park" | "spin"): Promise<void> {
  const k1 = randomKey(), k2 = randomKey();
  using ping = Channel.create({ key: k1, ringEntries: 64, maxMessageSize: MSG });
  using pongCh = Channel.create({ key: k2, ringEntries: 64, maxMessageSize: MSG });
  using pong = Channel.attach({ key: k2 }, "recv");
  void pongCh;
  const iters = mode === "spin" ? RT_ITERS.spin : RT_ITERS.wait;
  const child = new Child("rt-shmc-echo", [mode, k1, k2, WARMUP + iters]);
  await child.expect("READY");
  const msg = new Uint8Array(MSG).fill(1), buf = new Uint8Array(MSG);
  const us = new Float64Array(iters);
  const opts = mode === "park" ? { spin: 0 } : undefined;
  const dl = new Deadline(40_000);
  for (let i = 0; i < WARMUP + iters; i++) {
    const t = performance.now();
    ping.trySend(msg);
    if (mode === "spin") {
      while (pong.tryRecvInto(buf) === null) dl.check("rt-shmc-spin");
    } else {
      await pong.recvInto(buf, opts);
    }
    if (i >= WARMUP) us[i - WARMUP] = (performance.now() - t) * 1000;
  }
  if ((await child.exited) !== 0) fail("echo child failed");
  out({ case: `rt-shmc-${mode}`, kind: "rt", ...rtStats(us) });
}

async function rtShmcEcho(mode: string, k1: string, k2: string, total: string): Promise<void> {
  using inp = Channel.attach({ key: BigInt(k1) }, "recv");
  using outp = Channel.attach({ key: BigInt(k2) }, "send");
  const buf = new Uint8Array(MSG);
  const opts = mode === "park" ? { spin: 0 } : undefined;
  const dl = new Deadline(40_000);
  console.log("READY");
  for (let i = 0, n = Number(total); i < n; i++) {
    let len: number | null;
    if (mode === "spin") {
      while ((len = inp.tryRecvInto(buf)) === null) dl.check("echo spin");
    } else {
      len = await inp.recvInto(buf, opts);
    }
    outp.trySend(buf.subarray(0, len));
  }
}

// ---- round trip: sockets ----------------------------------------------------

/** A client that sends 64 B and resolves when 64 B came back. */
interface Pinger {
  ping(msg: Uint8Array): Promise<void>;
  close(): void;
}

function netPinger(path: string): Promise<Pinger> {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(path);
    let got = 0;
    let done: (() => void) | undefined;
    sock.on("data", (d: Uint8Array) => {
      got += d.length;
      if (got >= MSG && done) {
        got -= MSG;
        const f = done;
        done = undefined;
        f();
      }
    });
    sock.on("error", reject);
    sock.on("connect", () =>
      resolve({
        ping(msg) {
          return new Promise<void>((r) => {
            done = r;
            sock.write(msg);
          });
        },
        close: () => sock.destroy(),
      }));
  });
}

async function denoPinger(path: string): Promise<Pinger> {
  const conn = await G.Deno.connect({ transport: "unix", path });
  const buf = new Uint8Array(MSG);
  return {
    async ping(msg) {
      await conn.write(msg);
      let got = 0;
      while (got < MSG) {
        const n = await conn.read(buf.subarray(got));
        if (n === null) fail("echo closed");
        got += n;
      }
    },
    close: () => conn.close(),
  };
}

async function bunPinger(path: string): Promise<Pinger> {
  let got = 0;
  let done: (() => void) | undefined;
  const sock = await G.Bun.connect({
    unix: path,
    socket: {
      data(_s: unknown, d: Uint8Array) {
        got += d.length;
        if (got >= MSG && done) {
          got -= MSG;
          const f = done;
          done = undefined;
          f();
        }
      },
    },
  });
  return {
    ping(msg) {
      return new Promise<void>((r) => {
        done = r;
        sock.write(msg);
      });
    },
    close: () => sock.end(),
  };
}

async function rtSocket(kind: "net" | "native"): Promise<void> {
  if (kind === "native" && RUNTIME === "node") fail("rt-native: Node's own sockets are node:net (rt-net)");
  const path = tmpSocketPath("rt");
  const child = new Child("echo-server", [kind, path]);
  try {
    await child.expect("READY");
    const p = await socketPinger(kind, path);
    const iters = RT_ITERS.wait;
    const us = new Float64Array(iters);
    const msg = new Uint8Array(MSG).fill(1);
    for (let i = 0; i < WARMUP + iters; i++) {
      const t = performance.now();
      await p.ping(msg);
      if (i >= WARMUP) us[i - WARMUP] = (performance.now() - t) * 1000;
    }
    p.close();
    await child.exited;
    out({ case: `rt-${kind}`, kind: "rt", ...rtStats(us) });
  } finally {
    rmSync(path, { force: true });
  }
}

/**
 * Starts an echo server for one connection on `path` (node:net, or the
 * runtime's own Unix sockets); resolves once it listens. `closed` settles
 * when the client has closed, and the server with it.
 */
async function startEcho(kind: string, path: string): Promise<{ closed: Promise<void> }> {
  if (kind === "net") {
    let closed!: () => void;
    const done = new Promise<void>((r) => (closed = r));
    const server = net.createServer((c) => {
      c.on("data", (d: Uint8Array) => c.write(d));
      c.on("close", () => server.close(() => closed()));
      c.on("error", () => {});
    });
    await new Promise<void>((r) => server.listen(path, r));
    return { closed: done };
  }
  if (RUNTIME === "deno") {
    const l = G.Deno.listen({ transport: "unix", path });
    const closed = (async () => {
      const conn = await l.accept();
      const buf = new Uint8Array(65536);
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        await conn.write(buf.subarray(0, n));
      }
      conn.close();
      l.close();
    })();
    return { closed };
  }
  let closed!: () => void;
  const done = new Promise<void>((r) => (closed = r));
  const server = G.Bun.listen({
    unix: path,
    socket: {
      data(s: { write(d: Uint8Array): number }, d: Uint8Array) {
        s.write(d);
      },
      close() {
        server.stop(true);
        closed();
      },
    },
  });
  return { closed: done };
}

/** The echo-server role: startEcho in a process of its own; exits when the client closes. */
async function echoServer(kind: string, path: string): Promise<void> {
  const { closed } = await startEcho(kind, path);
  console.log("READY");
  await closed;
}

/** A client of `kind` (node:net, or the runtime's own sockets) connected to `path`. */
function socketPinger(kind: string, path: string): Promise<Pinger> {
  if (kind === "native" && RUNTIME === "node") fail("node has no native socket API apart from node:net");
  return kind === "net" ? netPinger(path) : RUNTIME === "deno" ? denoPinger(path) : bunPinger(path);
}

async function rtIpc(): Promise<void> {
  if (RUNTIME !== "bun") fail("rt-ipc is Bun only");
  let done: (() => void) | undefined;
  const proc = G.Bun.spawn([process.execPath, SCRIPT, "ipc-echo"], {
    stdio: ["ignore", "inherit", "inherit"],
    ipc() {
      const f = done;
      done = undefined;
      f?.();
    },
  });
  try {
    const msg = "x".repeat(MSG);
    // The first round trip also waits for the child to start.
    await new Promise<void>((r) => {
      done = r;
      proc.send(msg);
    });
    const iters = RT_ITERS.wait;
    const us = new Float64Array(iters);
    for (let i = 0; i < WARMUP + iters; i++) {
      const t = performance.now();
      await new Promise<void>((r) => {
        done = r;
        proc.send(msg);
      });
      if (i >= WARMUP) us[i - WARMUP] = (performance.now() - t) * 1000;
    }
    out({ case: "rt-ipc", kind: "rt", ...rtStats(us) });
  } finally {
    proc.kill(9);
    await proc.exited;
  }
}

function ipcEcho(): void {
  process.on("message", (m: unknown) => process.send!(m));
}

// ---- throughput: one producer, one consumer ----------------------------------

/**
 * `many`: the batch calls of the TS API, trySendMany() on arrays of 64 and
 * tryRecvManyInto() on the consumer (one native call per batch each).
 */
async function tputShmc(size: number, many = false): Promise<void> {
  const key = randomKey();
  using ch = Channel.create({ key, ringEntries: ringFor(size), maxMessageSize: size });
  const child = new Child("tput-shmc-consumer", [key, size, many ? "many" : "one"]);
  await child.expect("READY");
  const msg = new Uint8Array(size).fill(0xab);
  const batch = Array.from({ length: 64 }, () => msg);
  const end = performance.now() + TPUT_MS;
  let sent = 0;
  for (;;) {
    if (many) {
      for (let i = 0; i < 4; i++) {
        let k = ch.trySendMany(batch);
        sent += k;
        while (k < batch.length) {
          await ch.send(msg); // full: wait for room, then go on with the rest
          sent++;
          const m = ch.trySendMany(batch.slice(k + 1));
          sent += m;
          k += 1 + m;
        }
      }
    } else {
      for (let i = 0; i < 256; i++) {
        const p = sendFast(ch, msg);
        if (p) await p;
      }
      sent += 256;
    }
    if (performance.now() > end) break;
  }
  await ch.send(new Uint8Array(1)); // end marker: a message of another size
  const r = await child.json();
  if ((await child.exited) !== 0) fail("consumer failed");
  if (r.count !== sent) fail(`sent ${sent}, received ${r.count}`);
  tputOut(many ? `tput-shmc-many-${size}` : `tput-shmc-${size}`, size, r);
}

function tputOut(name: string, size: number, r: Record<string, number>): void {
  const secs = (r.last - r.first) / 1000;
  const msgs = r.count - 1;
  out({ case: name, kind: "tput", size, msgs: r.count, secs, msgs_per_s: msgs / secs, gb_per_s: (msgs * size) / secs / 1e9 });
}

function tputShmcConsumer(key: string, sizeArg: string, how: string): void {
  const size = Number(sizeArg);
  using sub = Channel.attach({ key: BigInt(key) }, "recv");
  const buf = new Uint8Array(size);
  const dl = new Deadline(40_000);
  console.log("READY");
  let count = 0, first = 0;
  if (how === "many") {
    const pack = new Uint8Array(size * 64);
    const lens = new Uint32Array(64);
    for (let done = false; !done;) {
      const got = sub.tryRecvManyInto(pack, lens);
      if (got === 0) {
        dl.check("tput consumer");
        continue;
      }
      if (count === 0) first = wallMs();
      for (let i = 0; i < got; i++) {
        if (lens[i] !== size) {
          done = true;
          break;
        }
        count++;
      }
    }
  } else {
    for (;;) {
      const n = sub.tryRecvInto(buf);
      if (n === null) {
        dl.check("tput consumer");
        continue;
      }
      if (n !== size) break;
      if (count++ === 0) first = wallMs();
    }
  }
  const last = wallMs();
  console.log(JSON.stringify({ count, first, last }));
}

/** Writes fixed-size messages to a stream for `ms`, then ends it. Returns the count. */
async function netProduce(socks: net.Socket[], msg: Uint8Array, ms: number, alternate = false): Promise<number> {
  const end = performance.now() + ms;
  let sent = 0;
  let turn = 0;
  for (;;) {
    for (let i = 0; i < 64; i++) {
      if (alternate) {
        // multicast baseline: each message to one socket, in turn
        const s = socks[turn];
        turn = (turn + 1) % socks.length;
        if (!s.write(msg)) await new Promise((r) => s.once("drain", r));
      } else {
        // one socket, or broadcast: every socket gets every message
        for (const s of socks) if (!s.write(msg)) await new Promise((r) => s.once("drain", r));
      }
    }
    sent += 64;
    if (performance.now() > end) break;
  }
  await Promise.all(socks.map((s) => new Promise<void>((r) => s.end(r))));
  return sent;
}

/** Listens on `path`, accepts `n` connections. */
function acceptN(path: string, n: number): Promise<[net.Server, net.Socket[]]> {
  return new Promise((resolve) => {
    const conns: net.Socket[] = [];
    const server = net.createServer((c) => {
      conns.push(c);
      if (conns.length === n) resolve([server, conns]);
    });
    server.listen(path);
  });
}

async function tputSocket(kind: "net" | "native", size: number): Promise<void> {
  if (kind === "native" && RUNTIME === "node") fail("tput-native: Node's own sockets are node:net (tput-net)");
  const path = tmpSocketPath("tput");
  try {
    const msg = new Uint8Array(size).fill(0xab);
    if (kind === "net") {
      const acc = acceptN(path, 1);
      await sleep(10);
      const child = new Child("stream-consumer", [path, size]);
      const [server, socks] = await acc;
      await child.expect("READY");
      const sent = await netProduce(socks, msg, TPUT_MS);
      const r = await child.json();
      server.close();
      if (r.count !== sent) fail(`sent ${sent}, received ${r.count}`);
      tputOut(`tput-net-${size}`, size, r);
      return;
    }
    if (RUNTIME === "deno") {
      const l = G.Deno.listen({ transport: "unix", path });
      const child = new Child("stream-consumer", [path, size, "native"]);
      const conn = await l.accept();
      await child.expect("READY");
      const end = performance.now() + TPUT_MS;
      let sent = 0;
      for (;;) {
        for (let i = 0; i < 64; i++) {
          let off = 0;
          while (off < size) off += await conn.write(off ? msg.subarray(off) : msg);
        }
        sent += 64;
        if (performance.now() > end) break;
      }
      conn.close();
      l.close();
      const r = await child.json();
      if (r.count !== sent) fail(`sent ${sent}, received ${r.count}`);
      tputOut(`tput-native-${size}`, size, r);
      return;
    }
    let child!: Child;
    const stream = await bunStream(path, () => (child = new Child("stream-consumer", [path, size, "native"])));
    await child.expect("READY");
    const end = performance.now() + TPUT_MS;
    let sent = 0;
    for (;;) {
      for (let i = 0; i < 64; i++) {
        const p = stream.write(msg);
        if (p) await p;
      }
      sent += 64;
      if (performance.now() > end) break;
    }
    stream.end();
    const r = await child.json();
    stream.stop();
    if (r.count !== sent) fail(`sent ${sent}, received ${r.count}`);
    tputOut(`tput-native-${size}`, size, r);
  } finally {
    rmSync(path, { force: true });
  }
}

/**
 * A Bun.listen server on `path` with one connection, made by `start` (which
 * spawns the peer that connects). write() sends a whole message: at once when
 * the socket takes it all, else a promise that waits for drain for the rest.
 */
async function bunStream(path: string, start: () => void): Promise<{
  write(b: Uint8Array): Promise<void> | undefined;
  end(): void;
  stop(): void;
}> {
  let conn: { write(d: Uint8Array): number; end(): void } | undefined;
  let onConn: (() => void) | undefined;
  let onDrain: (() => void) | undefined;
  const server = G.Bun.listen({
    unix: path,
    socket: {
      open(x: typeof conn) {
        conn = x;
        onConn?.();
      },
      drain() {
        const f = onDrain;
        onDrain = undefined;
        f?.();
      },
      data() {},
    },
  });
  start();
  if (!conn) await new Promise<void>((r) => (onConn = r));
  const c = conn!;
  const rest = async (b: Uint8Array, off: number) => {
    while (off < b.byteLength) {
      await new Promise<void>((r) => (onDrain = r));
      const w = c.write(b.subarray(off));
      if (w > 0) off += w;
    }
  };
  return {
    write(b) {
      const w = c.write(b);
      return w >= b.byteLength ? undefined : rest(b, Math.max(0, w));
    },
    end: () => c.end(),
    stop: () => server.stop(true),
  };
}

/** Counts fixed-size messages on a node:net stream until it ends. */
function streamConsumer(path: string, sizeArg: string, kind = "net"): void {
  const size = Number(sizeArg);
  let bytes = 0, first = 0, last = 0;
  const report = () => console.log(JSON.stringify({ count: Math.floor(bytes / size), first, last }));
  if (kind === "native" && RUNTIME === "deno") {
    (async () => {
      const conn = await G.Deno.connect({ transport: "unix", path });
      const buf = new Uint8Array(1 << 20);
      console.log("READY");
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        if (bytes === 0) first = wallMs();
        bytes += n;
        last = wallMs();
      }
      report();
    })();
    return;
  }
  if (kind === "native") {
    // Bun.connect
    G.Bun.connect({
      unix: path,
      socket: {
        open() {
          console.log("READY");
        },
        data(_s: unknown, d: Uint8Array) {
          if (bytes === 0) first = wallMs();
          bytes += d.length;
          last = wallMs();
        },
        end: report,
        close() {},
      },
    });
    return;
  }
  const sock = net.createConnection(path, () => console.log("READY"));
  sock.on("data", (d: Uint8Array) => {
    if (bytes === 0) first = wallMs();
    bytes += d.length;
    last = wallMs();
  });
  sock.on("end", report);
  sock.on("error", (e) => fail(String(e)));
}

// ---- large messages, filled and checksummed (zero copy vs copying vs sockets) ----

/** Ring entries of the fill cases: as cbench's FILL_ENTRIES. */
const FILL_ENTRIES = 8;

/** The producer's work: message `seq` as the counter words seq, seq + 1, ... (as doubles: exact). */
function fillWords(f: Float64Array, seq: number): void {
  for (let i = 0; i < f.length; i++) f[i] = seq + i;
}

/** The consumer's: the sum of every word, checked against message `seq`'s. */
function checkWords(f: Float64Array, seq: number): void {
  let a = 0, b = 0, c = 0, d = 0;
  const n = f.length;
  for (let i = 0; i < n; i += 4) {
    a += f[i];
    b += f[i + 1];
    c += f[i + 2];
    d += f[i + 3];
  }
  if (a + b + c + d !== n * seq + (n * (n - 1)) / 2) fail(`checksum of message ${seq}`);
}

const words = (b: Uint8Array) => new Float64Array(b.buffer, b.byteOffset, b.byteLength >>> 3);

async function fillShmc(how: "zc" | "copy", size: number): Promise<void> {
  const key = randomKey();
  using ch = Channel.create({ key, ringEntries: FILL_ENTRIES, maxMessageSize: size });
  const child = new Child("fill-shmc-consumer", [key, size, how]);
  await child.expect("READY");
  const msg = new Uint8Array(size);
  const f = words(msg);
  const end = performance.now() + TPUT_MS;
  let sent = 0;
  for (;;) {
    for (let i = 0; i < 16; i++, sent++) {
      if (how === "zc") {
        let loan;
        try {
          loan = ch.tryLoan();
        } catch (e) {
          if (!(e instanceof ChannelError && e.code === "ENOBUFS")) throw e;
          loan = await ch.loan();
        }
        fillWords(words(loan.bytes.subarray(0, size)), sent);
        loan.commit(size);
      } else {
        fillWords(f, sent);
        const p = sendFast(ch, msg);
        if (p) await p;
      }
    }
    if (performance.now() > end) break;
  }
  await ch.send(new Uint8Array(8)); // end marker: a message of another size
  const r = await child.json();
  if ((await child.exited) !== 0) fail("consumer failed");
  if (r.count !== sent) fail(`sent ${sent}, received ${r.count}`);
  tputOut(`fill-${how}-${size}`, size, r);
}

function fillShmcConsumer(key: string, sizeArg: string, how: string): void {
  const size = Number(sizeArg);
  using sub = Channel.attach({ key: BigInt(key) }, "recv");
  const buf = new Uint8Array(size);
  const f = words(buf);
  const dl = new Deadline(40_000);
  console.log("READY");
  let count = 0, first = 0;
  for (;;) {
    if (how === "zc") {
      const view = sub.tryRecvView();
      if (view === null) {
        dl.check("fill consumer");
        continue;
      }
      if (view.bytes.byteLength !== size) {
        view.release();
        break;
      }
      if (count === 0) first = wallMs();
      checkWords(words(view.bytes), count++);
      view.release();
    } else {
      const n = sub.tryRecvInto(buf);
      if (n === null) {
        dl.check("fill consumer");
        continue;
      }
      if (n !== size) break;
      if (count === 0) first = wallMs();
      checkWords(f, count++);
    }
  }
  const last = wallMs();
  console.log(JSON.stringify({ count, first, last }));
}

/** Filled messages over a Unix stream: the producer's side. */
async function fillSocket(kind: "net" | "native", size: number): Promise<void> {
  if (kind === "native" && RUNTIME === "node") fail("fill-native: Node's own sockets are node:net (fill-net)");
  const path = tmpSocketPath("fill");
  // Rotating buffers: a socket may still hold one it was given.
  const bufs = Array.from({ length: 4 }, () => new Uint8Array(size));
  const end = () => performance.now() > deadline;
  let deadline = 0, sent = 0;
  try {
    let write: (b: Uint8Array) => Promise<void> | void;
    let finish: () => void;
    let child!: Child; // assigned in the Bun branch by a callback the checker cannot follow
    if (kind === "net") {
      const acc = acceptN(path, 1);
      await sleep(10);
      child = new Child("fill-stream-consumer", [path, size, "net"]);
      const [server, [s]] = await acc;
      write = (b) => (s.write(b) ? undefined : new Promise<void>((r) => s.once("drain", () => r())));
      finish = () => {
        s.end();
        server.close();
      };
    } else if (RUNTIME === "deno") {
      const l = G.Deno.listen({ transport: "unix", path });
      child = new Child("fill-stream-consumer", [path, size, "native"]);
      const conn = await l.accept();
      write = async (b) => {
        for (let off = 0; off < b.byteLength;) off += await conn.write(off ? b.subarray(off) : b);
      };
      finish = () => {
        conn.close();
        l.close();
      };
    } else {
      const stream = await bunStream(path, () => (child = new Child("fill-stream-consumer", [path, size, "native"])));
      write = (b) => stream.write(b);
      finish = () => {
        stream.end();
        stream.stop();
      };
    }
    await child.expect("READY");
    deadline = performance.now() + TPUT_MS;
    for (;;) {
      for (let i = 0; i < 16; i++, sent++) {
        const b = bufs[sent & 3];
        fillWords(words(b), sent);
        const p = write(b);
        if (p) await p;
      }
      if (end()) break;
    }
    finish();
    const r = await child.json();
    if ((await child.exited) !== 0) fail("consumer failed");
    if (r.count !== sent) fail(`sent ${sent}, received ${r.count}`);
    tputOut(`fill-${kind}-${size}`, size, r);
  } finally {
    rmSync(path, { force: true });
  }
}

/** Reassembles fixed-size messages from a stream and checks each; reports at the end. */
function fillStreamConsumer(path: string, sizeArg: string, kind: string): void {
  const size = Number(sizeArg);
  const buf = new Uint8Array(size);
  const f = words(buf);
  let off = 0, count = 0, first = 0;
  const report = () => console.log(JSON.stringify({ count, first, last: wallMs() }));
  const took = () => {
    if (count === 0) first = wallMs();
    checkWords(f, count++);
    off = 0;
  };
  const chunk = (d: Uint8Array) => {
    for (let pos = 0; pos < d.byteLength;) {
      const n = Math.min(size - off, d.byteLength - pos);
      buf.set(n === d.byteLength ? d : d.subarray(pos, pos + n), off);
      off += n;
      pos += n;
      if (off === size) took();
    }
  };
  if (kind === "native" && RUNTIME === "deno") {
    (async () => {
      const conn = await G.Deno.connect({ transport: "unix", path });
      console.log("READY");
      for (;;) {
        // Straight into the message buffer: no extra copy.
        const n = await conn.read(buf.subarray(off));
        if (n === null) break;
        off += n;
        if (off === size) took();
      }
      report();
    })();
    return;
  }
  if (kind === "native") {
    G.Bun.connect({
      unix: path,
      socket: {
        open() {
          console.log("READY");
        },
        data(_s: unknown, d: Uint8Array) {
          chunk(d);
        },
        end: report,
        close() {},
      },
    });
    return;
  }
  const sock = net.createConnection(path, () => console.log("READY"));
  sock.on("data", chunk);
  sock.on("end", report);
  sock.on("error", (e) => fail(String(e)));
}

// ---- fan-out: broadcast and multicast ------------------------------------------

async function fanShmc(delivery: "broadcast" | "multicast", receivers: number): Promise<void> {
  const key = randomKey();
  using ch = Channel.create({ key, delivery, ringEntries: 1024, maxMessageSize: MSG });
  const kids = Array.from({ length: receivers }, () => new Child("fan-shmc-receiver", [key]));
  for (const k of kids) await k.expect("READY");
  const msg = new Uint8Array(MSG).fill(3);
  const end = performance.now() + TPUT_MS;
  let sent = 0;
  for (;;) {
    for (let i = 0; i < 256; i++) {
      const p = sendFast(ch, msg);
      if (p) await p;
    }
    sent += 256;
    if (performance.now() > end) break;
  }
  // End markers: one per receiver (broadcast: each one sees every marker).
  for (let i = 0; i < (delivery === "broadcast" ? 1 : receivers); i++) await ch.send(new Uint8Array(1));
  const rs = [];
  for (const k of kids) rs.push(await k.json());
  fanOut(delivery === "broadcast" ? "bcast-shmc" : "mcast-shmc", delivery, receivers, sent, rs);
}

function fanOut(
  name: string,
  delivery: string,
  receivers: number,
  sent: number,
  rs: Record<string, number>[],
): void {
  const first = Math.min(...rs.map((r) => r.first));
  const last = Math.max(...rs.map((r) => r.last));
  const got = rs.reduce((a, r) => a + r.count, 0);
  const expected = delivery === "broadcast" ? sent * receivers : sent;
  if (got !== expected) fail(`${name}: expected ${expected} deliveries, got ${got}`);
  const secs = (last - first) / 1000;
  out({
    case: name,
    kind: "fan",
    receivers,
    msgs: sent,
    secs,
    msgs_per_s: sent / secs,
    deliveries_per_s: got / secs,
    spread: rs.map((r) => r.count),
  });
}

async function fanShmcReceiver(key: string): Promise<void> {
  using sub = Channel.attach({ key: BigInt(key) }, "recv");
  const buf = new Uint8Array(MSG);
  console.log("READY");
  let count = 0, first = 0, last = 0;
  for (;;) {
    const n = await sub.recvInto(buf);
    if (n !== MSG) break;
    if (count++ === 0) first = wallMs();
    last = wallMs();
  }
  console.log(JSON.stringify({ count, first, last }));
}

async function fanNet(delivery: "broadcast" | "multicast", receivers: number): Promise<void> {
  const path = tmpSocketPath("fan");
  try {
    const acc = acceptN(path, receivers);
    await sleep(10);
    const kids = Array.from({ length: receivers }, () => new Child("stream-consumer", [path, MSG]));
    const [server, socks] = await acc;
    for (const k of kids) await k.expect("READY");
    const msg = new Uint8Array(MSG).fill(3);
    const sent = await netProduce(socks, msg, TPUT_MS, delivery === "multicast");
    const rs = [];
    for (const k of kids) rs.push(await k.json());
    server.close();
    fanOut(delivery === "broadcast" ? "bcast-net" : "mcast-net", delivery, receivers, sent, rs);
  } finally {
    rmSync(path, { force: true });
  }
}

// ---- idle CPU ---------------------------------------------------------------------

/** [utime + stime in clock ticks, on-CPU ns of all threads (schedstat)]. */
function cpuTime(pid: number): [number, number] {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(f[11]) + Number(f[12]); // utime, stime (fields 14, 15)
  let ns = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, "utf8").split(" ")[0]);
    } catch { /* thread ended */ }
  }
  return [ticks, ns];
}

async function idle(kind: "shmc" | "net"): Promise<void> {
  const HZ = 100; // USER_HZ on Linux
  if (kind === "shmc") {
    const key = randomKey();
    using ch = Channel.create({ key, maxMessageSize: MSG });
    const child = new Child("idle-shmc-receiver", [key]);
    await child.expect("READY");
    const r = await sampleIdle(child.pid, HZ);
    ch.trySend("quit");
    if ((await child.exited) !== 0) fail("idle receiver failed");
    out({ case: "idle-shmc", kind: "idle", ...r });
  } else {
    const path = tmpSocketPath("idle");
    try {
      const acc = acceptN(path, 1);
      await sleep(10);
      const child = new Child("stream-consumer", [path, 1]);
      const [server, socks] = await acc;
      await child.expect("READY");
      const r = await sampleIdle(child.pid, HZ);
      socks[0].end();
      await child.exited;
      server.close();
      out({ case: "idle-net", kind: "idle", ...r });
    } finally {
      rmSync(path, { force: true });
    }
  }
}

/** %CPU of `pid` over IDLE_MS: from utime+stime ticks, and from schedstat ns. */
async function sampleIdle(pid: number, hz: number): Promise<Record<string, number>> {
  await sleep(500); // past the receiver's spin and its start-up work
  const [ta, na] = cpuTime(pid), t0 = performance.now();
  await sleep(IDLE_MS);
  const [tb, nb] = cpuTime(pid), secs = (performance.now() - t0) / 1000;
  return {
    cpu_pct: ((nb - na) / 1e9 / secs) * 100,
    cpu_pct_ticks: ((tb - ta) / hz / secs) * 100,
    cpu_ms: (nb - na) / 1e6,
    secs,
  };
}

async function idleShmcReceiver(key: string): Promise<void> {
  using sub = Channel.attach({ key: BigInt(key) }, "recv");
  const p = sub.recv();
  console.log("READY");
  await p;
}

// ---- paced request/reply: traffic with gaps --------------------------------------

/**
 * A request/reply pattern. `gapUs`: the pause before each request, after the
 * previous reply (0: back-to-back). Gaps up to BUSY_GAP_MAX_US are spent
 * busy (the client computes, exact to the µs); longer ones asleep
 * (Atomics.wait: the client's thread is idle). `burst`: that many requests
 * back-to-back, then `idleUs` asleep.
 */
interface Pattern {
  gapUs: number;
  burst?: number;
  idleUs?: number;
  n: number;
}

const PATTERNS: Record<string, Pattern> = {
  b2b: { gapUs: 0, n: QUICK ? 2_000 : 10_000 },
  "50us": { gapUs: 50, n: QUICK ? 600 : 4_000 },
  "1ms": { gapUs: 1_000, n: QUICK ? 150 : 2_000 },
  "10ms": { gapUs: 10_000, n: QUICK ? 30 : 300 },
  burst: { gapUs: 0, burst: 16, idleUs: 10_000, n: QUICK ? 160 : 1_600 },
};
const BUSY_GAP_MAX_US = 200;
/**
 * Round trips run back to back before a paced case, not measured, so that
 * the runtime's JIT has compiled the code paths (shmchan: on other
 * channels, half of them with `spin: 0` so that the parked path is compiled
 * too, leaving the measured handles' spin state fresh; sockets: on the
 * same connection). Without it the cases at 10 ms gaps measured tier-up:
 * JSC compiled shmchan's wait path for most of their 350 requests.
 */
const JIT_WARM = QUICK ? 200 : 2_000;

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
/** Blocks this thread for `us` (the event loop does not run meanwhile). */
function sleepUs(us: number): void {
  Atomics.wait(sleepCell, 0, 0, us / 1000);
}

/** Keeps this thread busy for `us`. */
function busyUs(us: number): void {
  const until = performance.now() + us / 1000;
  while (performance.now() < until) { /* the client's own work */ }
}

/** A snapshot of a process's CPU: on-CPU ns per thread (schedstat), and utime+stime of all threads in ns. */
interface CpuSnap {
  tasks: Map<string, number>;
  ticksNs: number;
}

function cpuSnap(pid: number): CpuSnap {
  const tasks = new Map<string, number>();
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      tasks.set(t, Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, "utf8").split(" ")[0]));
    } catch { /* thread ended */ }
  }
  return { tasks, ticksNs: cpuTime(pid)[0] * 1e7 };
}

/**
 * On-CPU ns between two snapshots: per thread, so that a thread ending
 * meanwhile does not subtract (its time after `a` is lost: threads of these
 * runtimes live as long as the process).
 */
function cpuDelta(a: CpuSnap, b: CpuSnap): number {
  let ns = 0;
  for (const [t, v] of b.tasks) ns += v - (a.tasks.get(t) ?? 0);
  return ns;
}

/** One request/reply client over some transport. */
interface Requester {
  request(msg: Uint8Array): Promise<void>;
  close(): void;
}

async function socketRequester(kind: "native" | "net", path: string): Promise<Requester> {
  const p = await socketPinger(kind, path);
  return { request: (msg) => p.ping(msg), close: () => p.close() };
}

/**
 * Paced request/reply, `transport` "shmc" (default `await send()` and
 * `await recv()` on both sides) or a socket ("native", "net"), the
 * measuring process as the client, an echo server as a child.
 */
async function paced(transport: string, patternName: string): Promise<void> {
  const pat = PATTERNS[patternName];
  if (!pat) fail(`unknown pattern ${patternName}`);
  const warm = Math.max(50, Math.floor(pat.n / 10));
  const total = warm + pat.n;
  let child: Child;
  let req: Requester;
  const cleanup: (() => void)[] = [];
  if (transport.startsWith("shmc")) {
    const k1 = randomKey(), k2 = randomKey(), w1 = randomKey(), w2 = randomKey();
    const ping = Channel.create({ key: k1, ringEntries: 64, maxMessageSize: MSG });
    const pongCh = Channel.create({ key: k2, ringEntries: 64, maxMessageSize: MSG });
    const pong = Channel.attach({ key: k2 }, "recv");
    const warmPing = Channel.create({ key: w1, ringEntries: 64, maxMessageSize: MSG });
    const warmPongCh = Channel.create({ key: w2, ringEntries: 64, maxMessageSize: MSG });
    const warmPong = Channel.attach({ key: w2 }, "recv");
    cleanup.push(() => pong.detach(), () => pongCh.destroy(), () => ping.destroy());
    child = new Child("paced-shmc-echo", [
      k1,
      k2,
      total,
      w1,
      w2,
      JIT_WARM,
      ...(SPIN_ARG === undefined ? [] : [`--spin=${SPIN_ARG}`]),
    ]);
    await child.expect("READY");
    const warmMsg = new Uint8Array(MSG);
    for (let i = 0; i < JIT_WARM; i++) {
      const o = i % 2 ? { spin: 0 } : WAIT_OPTS;
      await warmPing.send(warmMsg, o);
      await warmPong.recv(o);
    }
    warmPong.detach();
    warmPongCh.destroy();
    warmPing.destroy();
    req = {
      async request(msg) {
        await ping.send(msg, WAIT_OPTS);
        const r = await pong.recv(WAIT_OPTS);
        if (r.byteLength !== MSG) fail("short reply");
      },
      close() {},
    };
  } else {
    if (transport !== "native" && transport !== "net") fail(`unknown transport ${transport}`);
    const path = tmpSocketPath("paced");
    cleanup.push(() => rmSync(path, { force: true }));
    child = new Child("echo-server", [transport, path]);
    await child.expect("READY");
    req = await socketRequester(transport, path);
    const warmMsg = new Uint8Array(MSG);
    for (let i = 0; i < JIT_WARM; i++) await req.request(warmMsg);
  }
  const lat = new Float64Array(pat.n);
  const msg = new Uint8Array(MSG).fill(1);
  let gapWallMs = 0, busyMs = 0, cpu0: CpuSnap[] = [], tStart = 0;
  for (let i = 0; i < total; i++) {
    if (i === warm) {
      cpu0 = [cpuSnap(process.pid), cpuSnap(child.pid)];
      tStart = performance.now();
    }
    const g0 = performance.now();
    if (pat.burst !== undefined) {
      if (i % pat.burst === 0) sleepUs(pat.idleUs!);
    } else if (pat.gapUs > 0) {
      if (pat.gapUs <= BUSY_GAP_MAX_US) busyUs(pat.gapUs);
      else sleepUs(pat.gapUs);
    }
    const t = performance.now();
    if (i >= warm) {
      gapWallMs += t - g0;
      if (pat.gapUs > 0 && pat.gapUs <= BUSY_GAP_MAX_US) busyMs += t - g0;
    }
    await req.request(msg);
    if (i >= warm) lat[i - warm] = (performance.now() - t) * 1000;
  }
  const cpu1 = [cpuSnap(process.pid), cpuSnap(child.pid)];
  const secs = (performance.now() - tStart) / 1000;
  req.close();
  if ((await child.exited) !== 0) fail("echo server failed");
  for (const f of cleanup) f();
  const n = pat.n;
  const clientNs = cpuDelta(cpu0[0], cpu1[0]) - busyMs * 1e6;
  const serverNs = cpuDelta(cpu0[1], cpu1[1]);
  out({
    case: `paced-${transport}-${patternName}`,
    kind: "paced",
    transport,
    pattern: patternName,
    ...rtStats(lat),
    p90_us: quantile(lat, 0.9),
    gap_mean_us: (gapWallMs * 1000) / n,
    client_cpu_us: clientNs / 1000 / n,
    server_cpu_us: serverNs / 1000 / n,
    cpu_us: (clientNs + serverNs) / 1000 / n,
    server_cpu_ticks_us: (cpu1[1].ticksNs - cpu0[1].ticksNs) / 1000 / n,
    secs,
  });
}

function quantile(samples: Float64Array, p: number): number {
  const s = Float64Array.from(samples).sort();
  return s[Math.min(s.length - 1, Math.floor(s.length * p))];
}

/**
 * The echo server of paced-shmc: default `await recv()` and `await send()`;
 * first `warm` round trips on the channels `w1`, `w2` (JIT_WARM).
 */
async function pacedShmcEcho(k1: string, k2: string, total: string, w1: string, w2: string, warm: string): Promise<void> {
  using inp = Channel.attach({ key: BigInt(k1) }, "recv");
  using outp = Channel.attach({ key: BigInt(k2) }, "send");
  {
    using warmIn = Channel.attach({ key: BigInt(w1) }, "recv");
    using warmOut = Channel.attach({ key: BigInt(w2) }, "send");
    console.log("READY");
    for (let i = 0, n = Number(warm); i < n; i++) {
      const o = i % 2 ? { spin: 0 } : WAIT_OPTS;
      await warmOut.send(await warmIn.recv(o), o);
    }
  }
  for (let i = 0, n = Number(total); i < n; i++) {
    const m = await inp.recv(WAIT_OPTS);
    await outp.send(m, WAIT_OPTS);
  }
}

// ---- one thread: what a parked message costs ---------------------------------------

const LOOP_N = QUICK ? 3_000 : 20_000;

/**
 * loop-T: an echo server and its client as two async loops of one thread:
 * shmc with `spin: 0` on both sides (every wait parks and each message is
 * rung by its doorbell), or a socket (net, native). Nothing sleeps and no
 * other CPU takes part, so the time per round trip is what each path costs
 * for two messages, with no wakeup and no scheduler in it: for shmc, two
 * doorbell bytes (the system calls of two socket messages) plus the takes
 * and the wait bookkeeping. CPU: this process, all threads.
 */
async function loop(transport: string): Promise<void> {
  let request: () => Promise<void>;
  let close: () => Promise<void>;
  const msg = new Uint8Array(MSG).fill(1);
  if (transport === "shmc") {
    const ka = randomKey(), kb = randomKey();
    const ping = Channel.create({ key: ka, ringEntries: 64, maxMessageSize: MSG });
    const pong = Channel.create({ key: kb, ringEntries: 64, maxMessageSize: MSG });
    const inp = Channel.attach({ key: ka }, "recv"), back = Channel.attach({ key: kb }, "recv");
    const park = { spin: 0 };
    const served = (async () => {
      for (;;) {
        const m = await inp.recv(park);
        if (m.byteLength !== MSG) return;
        await pong.send(m, park);
      }
    })();
    request = async () => {
      await ping.send(msg, park);
      if ((await back.recv(park)).byteLength !== MSG) fail("short reply");
    };
    close = async () => {
      await ping.send(new Uint8Array(1)); // the server's end
      await served;
      inp.detach();
      back.detach();
      ping.destroy();
      pong.destroy();
    };
  } else {
    if (transport !== "net" && transport !== "native") fail(`unknown transport ${transport}`);
    const path = tmpSocketPath("loop");
    const { closed } = await startEcho(transport, path);
    const p = await socketPinger(transport, path);
    request = () => p.ping(msg);
    close = async () => {
      p.close();
      await closed;
      rmSync(path, { force: true });
    };
  }
  for (let i = 0; i < WARMUP; i++) await request();
  const c0 = process.cpuUsage(), t0 = performance.now();
  for (let i = 0; i < LOOP_N; i++) await request();
  const secs = (performance.now() - t0) / 1000, c = process.cpuUsage(c0);
  await close();
  out({
    case: `loop-${transport}`,
    kind: "loop",
    transport,
    n: LOOP_N,
    us_per_rt: (secs * 1e6) / LOOP_N,
    cpu_us_per_rt: (c.user + c.system) / LOOP_N,
  });
}

// ---- dispatch -----------------------------------------------------------------------

function main(): Promise<void> | void {
  armWatchdog(WATCHDOG_MS);
  const [c, ...rest] = POS;
  let m: RegExpMatchArray | null;
  switch (c) {
    case "rt-shmc-await":
      return rtShmc("await");
    case "rt-shmc-park":
      return rtShmc("park");
    case "rt-shmc-spin":
      return rtShmc("spin");
    case "rt-net":
      return rtSocket("net");
    case "rt-native":
      return rtSocket("native");
    case "rt-ipc":
      return rtIpc();
    case "bcast-shmc":
      return fanShmc("broadcast", 4);
    case "mcast-shmc":
      return fanShmc("multicast", 2);
    case "bcast-net":
      return fanNet("broadcast", 4);
    case "mcast-net":
      return fanNet("multicast", 2);
    case "idle-shmc":
      return idle("shmc");
    case "idle-net":
      return idle("net");
    // roles of peer processes
    case "rt-shmc-echo":
      return rtShmcEcho(rest[0], rest[1], rest[2], rest[3]);
    case "echo-server":
      return echoServer(rest[0], rest[1]);
    case "ipc-echo":
      return ipcEcho();
    case "tput-shmc-consumer":
      return tputShmcConsumer(rest[0], rest[1], rest[2]);
    case "fill-shmc-consumer":
      return fillShmcConsumer(rest[0], rest[1], rest[2]);
    case "fill-stream-consumer":
      return fillStreamConsumer(rest[0], rest[1], rest[2]);
    case "pair":
      return pair();
    case "stream-consumer":
      return streamConsumer(rest[0], rest[1], rest[2]);
    case "fan-shmc-receiver":
      return fanShmcReceiver(rest[0]);
    case "idle-shmc-receiver":
      return idleShmcReceiver(rest[0]);
    case "paced-shmc-echo":
      return pacedShmcEcho(rest[0], rest[1], rest[2], rest[3], rest[4], rest[5]);
  }
  if (c && (m = c.match(/^paced-(shmc|shmc-park|shmc-spin|native|net)-(\w+)$/))) return paced(m[1], m[2]);
  if (c && (m = c.match(/^loop-(shmc|native|net)$/))) return loop(m[1]);
  if (c && (m = c.match(/^tput-(shmc|shmc-many|net|native)-(\d+)$/))) {
    const size = Number(m[2]);
    if (m[1] === "shmc" || m[1] === "shmc-many") return tputShmc(size, m[1] === "shmc-many");
    return tputSocket(m[1] as "net" | "native", size);
  }
  if (c && (m = c.match(/^fill-(zc|copy|net|native)-(\d+)$/))) {
    const size = Number(m[2]);
    if (m[1] === "zc" || m[1] === "copy") return fillShmc(m[1], size);
    return fillSocket(m[1] as "net" | "native", size);
  }
  console.error(`usage: bench.ts CASE [--quick]   (cases: see the comment at the top of bench/bench.ts)`);
  process.exit(2);
}

/** Peer roles; they may keep serving after main() returns. Cases exit then. */
const ROLES = new Set([
  "rt-shmc-echo", "echo-server", "ipc-echo", "tput-shmc-consumer", "fill-shmc-consumer", "fill-stream-consumer",
  "stream-consumer", "fan-shmc-receiver", "idle-shmc-receiver", "paced-shmc-echo",
]);

try {
  await main();
  if (!ROLES.has(POS[0])) {
    await reapChildren();
    process.exit(0);
  }
} catch (e) {
  fail(e instanceof Error ? e.stack ?? e.message : String(e));
}
