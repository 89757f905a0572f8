/**
 * The NATS bridge against the same NATS client publishing and subscribing
 * directly, in one run, on one nats-server (Debian's `nats-server`, started
 * here on a free loopback port). Runs unchanged under Deno and Bun; every
 * peer is a separate process of the same runtime (this file, with a role).
 *
 *   flock -x /tmp/shmchan-machine.lock bun bench/bridge.ts [--quick]
 *   flock -x /tmp/shmchan-machine.lock deno run -A bench/bridge.ts [--quick]
 *
 * Cases (64-byte messages):
 *   tput-direct   a publisher process -> NATS -> a subscriber process; the
 *                 publisher flushes every 4096 messages, as the bridge does
 *   tput-bridge   a producer -> channel A -> `out` bridge process -> NATS ->
 *                 `in` bridge process -> channel B -> a consumer
 *   rtt-direct    requester publishes on "ping", an echo process answers on
 *                 "pong"; one message in flight
 *   rtt-bridge    requester -> channel A -> bridge -> "ping" -> bridge ->
 *                 channel B -> echo process -> channel C -> bridge -> "pong"
 *                 -> bridge -> channel D -> requester (the bridges of each
 *                 side in one process)
 * Throughput is messages received / (time of the last one - time the first
 * was sent), across processes (one clock). Round trips: median and p99.
 */
import { type ChildProcess, spawn } from "node:child_process";
import * as net from "node:net";
import process from "node:process";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Channel, ChannelError } from "../mod.ts";
import { type Bridge, bridge } from "../bridge.ts";

// deno-lint-ignore no-explicit-any
const G = globalThis as any;
const RUNTIME: "deno" | "bun" = G.Bun !== undefined ? "bun" : "deno";
const SCRIPT = decodeURIComponent(new URL(import.meta.url).pathname);
const ARGS = process.argv.slice(2);
const QUICK = ARGS.includes("--quick");
const POS = ARGS.filter((a) => !a.startsWith("--"));
const SIZE = 64;
const N = QUICK ? 50_000 : 300_000;
const RTT_ITERS = QUICK ? 500 : 3000;
const RTT_WARMUP = 200;

const wallMs = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const out = (v: Record<string, unknown>) => console.log(JSON.stringify(v));
const payload = new Uint8Array(SIZE).fill(0x61);

// ---- child processes -------------------------------------------------------

interface Peer {
  proc: ChildProcess;
  next(): Promise<Record<string, unknown>>;
  send(line: string): void;
}

function startPeer(role: string, ...args: Array<string | number | bigint>): Peer {
  const argv = RUNTIME === "deno" ? ["run", "-A", SCRIPT, role, ...args.map(String)] : [SCRIPT, role, ...args.map(String)];
  const proc = spawn(process.execPath, argv, { stdio: ["pipe", "pipe", "inherit"] });
  const lines: Record<string, unknown>[] = [];
  const waiters: Array<(v: Record<string, unknown>) => void> = [];
  let buf = "";
  proc.stdout!.setEncoding("utf8");
  proc.stdout!.on("data", (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (!line.trim()) continue;
      const v = JSON.parse(line);
      const w = waiters.shift();
      if (w) w(v);
      else lines.push(v);
    }
  });
  peers.push(proc);
  return {
    proc,
    next: () => {
      if (lines.length) return Promise.resolve(lines.shift()!);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`${role}: no answer in 120 s`)), 120_000);
        waiters.push((v) => {
          clearTimeout(t);
          resolve(v);
        });
      });
    },
    send: (line) => void proc.stdin!.write(line + "\n"),
  };
}
const peers: ChildProcess[] = [];
const killAll = () => {
  for (const p of peers) if (p.exitCode === null) p.kill("SIGKILL");
};
process.on("exit", killAll);

/** Resolves with the next line on stdin (the parent's "go" or "stop"). */
function stdinLine(): Promise<string> {
  return new Promise((resolve) => {
    let buf = "";
    const on = (chunk: Buffer | string) => {
      buf += chunk.toString();
      const nl = buf.indexOf("\n");
      if (nl >= 0) {
        process.stdin.off("data", on);
        process.stdin.pause();
        resolve(buf.slice(0, nl));
      }
    };
    process.stdin.on("data", on);
    process.stdin.resume();
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

async function startServer(): Promise<{ url: string; proc: ChildProcess }> {
  const port = await freePort();
  const proc = spawn("nats-server", ["-a", "127.0.0.1", "-p", String(port)], { stdio: ["ignore", "ignore", "pipe"] });
  peers.push(proc);
  await new Promise<void>((resolve, reject) => {
    let log = "";
    proc.stderr!.setEncoding("utf8");
    proc.stderr!.on("data", (c: string) => {
      log += c;
      if (log.includes("Server is ready")) resolve();
    });
    proc.on("exit", () => reject(new Error(`nats-server exited:\n${log}`)));
  });
  return { url: `nats://127.0.0.1:${port}`, proc };
}

const natsConnect = (url: string) => connect({ servers: url });

// ---- roles -------------------------------------------------------------------

async function role(name: string, args: string[]): Promise<void> {
  switch (name) {
    case "pub": { // <url> <subject> <n>
      const nc = await natsConnect(args[0]);
      out({ ready: true });
      await stdinLine();
      const t0 = wallMs();
      let pending: Promise<void> | undefined;
      for (let i = 1; i <= Number(args[2]); i++) {
        nc.publish(args[1], payload);
        if (i % 4096 === 0) {
          const p = nc.flush();
          if (pending) await pending;
          pending = p;
        }
      }
      await nc.flush();
      out({ t0 });
      await nc.drain();
      return;
    }
    case "sub": { // <url> <subject> <n>
      const nc = await natsConnect(args[0]);
      const n = Number(args[2]);
      let received = 0, tLast = 0;
      let done!: () => void;
      const finished = new Promise<void>((r) => (done = r));
      let idle: ReturnType<typeof setTimeout> | undefined;
      nc.subscribe(args[1], {
        callback: () => {
          received++;
          tLast = wallMs();
          if (idle) clearTimeout(idle);
          if (received === n) done();
          else idle = setTimeout(done, 2000);
        },
      });
      await nc.flush();
      out({ ready: true });
      await finished;
      out({ received, tLast });
      await nc.close();
      return;
    }
    case "produce": { // <key> <n>
      using tx = Channel.attach({ key: BigInt(args[0]) }, "send");
      out({ ready: true });
      await stdinLine();
      const t0 = wallMs();
      const n = Number(args[1]);
      const batch = Array.from({ length: 64 }, () => payload);
      for (let sent = 0; sent < n;) {
        const k = tx.trySendMany(batch.slice(0, Math.min(64, n - sent)));
        sent += k;
        if (k === 0) await tx.send(payload).then(() => sent++);
      }
      out({ t0 });
      return;
    }
    case "consume": { // <key> <n>
      using rx = Channel.attach({ key: BigInt(args[0]) }, "recv");
      const n = Number(args[1]);
      const buf = new Uint8Array(1 << 20), lens = new Uint32Array(256);
      out({ ready: true });
      let received = 0, tLast = 0;
      while (received < n) {
        const k = rx.tryRecvManyInto(buf, lens);
        if (k > 0) {
          received += k;
          tLast = wallMs();
          continue;
        }
        try {
          await rx.recvInto(buf, { timeout: 2000 });
          received++;
          tLast = wallMs();
        } catch (err) {
          if (err instanceof ChannelError && err.code === "ETIMEDOUT") break;
          throw err;
        }
      }
      out({ received, tLast });
      return;
    }
    case "bridges": { // <url> <direction>:<key>:<subject>...
      const list: Bridge[] = [];
      for (const spec of args.slice(1)) {
        const [direction, key, subject] = spec.split(":");
        list.push(await bridge({ nats: args[0], key: BigInt(key), subject, direction: direction as "out" | "in" }));
      }
      out({ ready: true });
      await stdinLine();
      const stats = [];
      for (const b of list) stats.push(await b.close());
      out({ stats });
      return;
    }
    case "echo-nats": { // <url>
      const nc = await natsConnect(args[0]);
      nc.subscribe("ping", { callback: (_e, m) => nc.publish("pong", m.data) });
      await nc.flush();
      out({ ready: true });
      await stdinLine();
      await nc.close();
      return;
    }
    case "echo-shm": { // <keyB> <keyC>
      const rx = Channel.attach({ key: BigInt(args[0]) }, "recv");
      const tx = Channel.attach({ key: BigInt(args[1]) }, "send");
      out({ ready: true });
      void stdinLine().then(() => rx.detach());
      for await (const m of rx) await tx.send(m);
      tx.detach();
      return;
    }
    case "rtt-nats": { // <url> <iters>
      const nc = await natsConnect(args[0]);
      let answer: (() => void) | undefined;
      nc.subscribe("pong", { callback: () => answer?.() });
      await nc.flush();
      const times: number[] = [];
      for (let i = 0; i < Number(args[1]) + RTT_WARMUP; i++) {
        const t0 = performance.now();
        const got = new Promise<void>((r) => (answer = r));
        nc.publish("ping", payload);
        await got;
        if (i >= RTT_WARMUP) times.push((performance.now() - t0) * 1000);
      }
      out({ times });
      await nc.close();
      return;
    }
    case "rtt-shm": { // <keyA> <keyD> <iters>
      using tx = Channel.attach({ key: BigInt(args[0]) }, "send");
      using rx = Channel.attach({ key: BigInt(args[1]) }, "recv");
      const buf = new Uint8Array(SIZE);
      const times: number[] = [];
      for (let i = 0; i < Number(args[2]) + RTT_WARMUP; i++) {
        const t0 = performance.now();
        tx.trySend(payload);
        await rx.recvInto(buf, { timeout: 10_000 });
        if (i >= RTT_WARMUP) times.push((performance.now() - t0) * 1000);
      }
      out({ times });
      return;
    }
    default:
      throw new Error(`unknown role ${name}`);
  }
}

// ---- the run -----------------------------------------------------------------

function randomKey(): bigint {
  const b = new Uint32Array(2);
  crypto.getRandomValues(b);
  return ((BigInt(b[0] & 0x3fffffff) << 32n) | BigInt(b[1])) + 1n;
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};

async function ready(...ps: Peer[]): Promise<void> {
  for (const p of ps) {
    const v = await p.next();
    if (!v.ready) throw new Error(`peer not ready: ${JSON.stringify(v)}`);
  }
}

async function tputDirect(url: string) {
  const sub = startPeer("sub", url, "tput", N);
  await ready(sub);
  const pub = startPeer("pub", url, "tput", N);
  await ready(pub);
  pub.send("go");
  const { t0 } = await pub.next() as { t0: number };
  const { received, tLast } = await sub.next() as { received: number; tLast: number };
  return { received, rate: received / ((tLast - t0) / 1000) };
}

async function tputBridge(url: string) {
  const ka = randomKey(), kb = randomKey();
  using _a = Channel.create({ key: ka, ringEntries: 4096, maxMessageSize: SIZE });
  using _b = Channel.create({ key: kb, ringEntries: 4096, maxMessageSize: SIZE });
  const consumer = startPeer("consume", kb, N);
  const inB = startPeer("bridges", url, `in:${kb}:tput`);
  const outA = startPeer("bridges", url, `out:${ka}:tput`);
  const producer = startPeer("produce", ka, N);
  await ready(consumer, inB, outA, producer);
  producer.send("go");
  const { t0 } = await producer.next() as { t0: number };
  const { received, tLast } = await consumer.next() as { received: number; tLast: number };
  outA.send("stop");
  inB.send("stop");
  const [o, i] = [(await outA.next()).stats, (await inB.next()).stats] as Array<
    Array<{ inbound: { dropped: number; lost: number } }>
  >;
  return { received, rate: received / ((tLast - t0) / 1000), dropped: i[0].inbound.dropped, lost: i[0].inbound.lost, o };
}

async function rttDirect(url: string) {
  const echo = startPeer("echo-nats", url);
  await ready(echo);
  const req = startPeer("rtt-nats", url, RTT_ITERS);
  const { times } = await req.next() as { times: number[] };
  echo.send("stop");
  return { median: pct(times, 0.5), p99: pct(times, 0.99) };
}

async function rttBridge(url: string) {
  const [ka, kb, kc, kd] = [randomKey(), randomKey(), randomKey(), randomKey()];
  const chans = [ka, kb, kc, kd].map((key) => Channel.create({ key, maxMessageSize: SIZE }));
  try {
    const side1 = startPeer("bridges", url, `out:${ka}:ping`, `in:${kd}:pong`);
    const side2 = startPeer("bridges", url, `in:${kb}:ping`, `out:${kc}:pong`);
    const echo = startPeer("echo-shm", kb, kc);
    await ready(side1, side2, echo);
    const req = startPeer("rtt-shm", ka, kd, RTT_ITERS);
    const { times } = await req.next() as { times: number[] };
    for (const p of [side1, side2, echo]) p.send("stop");
    await side1.next();
    await side2.next();
    return { median: pct(times, 0.5), p99: pct(times, 0.99) };
  } finally {
    for (const c of chans) c.destroy();
  }
}

async function mainRun(): Promise<void> {
  const server = await startServer();
  const versionProc = spawn("nats-server", ["--version"]);
  let version = "";
  versionProc.stdout!.on("data", (c) => (version += c));
  await new Promise((r) => versionProc.on("close", r));
  const runtimeVersion = RUNTIME === "deno" ? `Deno ${G.Deno.version.deno}` : `Bun ${G.Bun.version}`;
  // Direct and bridged cases alternate, so that both see the same machine.
  const td = await tputDirect(server.url);
  const tb = await tputBridge(server.url);
  const rd = await rttDirect(server.url);
  const rb = await rttBridge(server.url);
  const fmtRate = (r: number) => `${(r / 1e6).toFixed(2)} M msg/s`;
  const fmtUs = (u: number) => `${u.toFixed(0)} µs`;
  out({ runtime: runtimeVersion, nats: version.trim(), n: N, tputDirect: td, tputBridge: tb, rttDirect: rd, rttBridge: rb });
  console.log(`\n${runtimeVersion}, ${version.trim()}, ${SIZE} B messages, ${N} for throughput, ${RTT_ITERS} round trips\n`);
  console.log("| case | through the bridge | NATS client directly |");
  console.log("|---|---|---|");
  console.log(`| throughput | ${fmtRate(tb.rate)} (${tb.received} of ${N}, dropped ${tb.dropped}, lost ${tb.lost}) | ${fmtRate(td.rate)} (${td.received} of ${N}) |`);
  console.log(`| round trip, median | ${fmtUs(rb.median)} | ${fmtUs(rd.median)} |`);
  console.log(`| round trip, p99 | ${fmtUs(rb.p99)} | ${fmtUs(rd.p99)} |`);
  killAll();
}

const watchdog = setTimeout(() => {
  console.error("bench/bridge.ts: watchdog (5 min)");
  killAll();
  process.exit(1);
}, 300_000);
(POS.length === 0 ? mainRun() : role(POS[0], POS.slice(1)))
  .then(() => {
    clearTimeout(watchdog);
    process.exit(0);
  })
  .catch((err) => {
    console.error(err);
    killAll();
    process.exit(1);
  });
