#!/usr/bin/env node
/**
 * The benchmark driver: builds the C floor benchmark, runs every case of
 * bench/c/cbench.c and bench/bench.ts (under every runtime of RUNTIME_CMD: Deno, Bun, Node),
 * each side by side with its baseline in the same run, and prints markdown
 * tables with the machine it ran on: first request/reply on paced traffic
 * (shmchan against the runtime's sockets, paced the same way, interleaved
 * run by run), then the rest, then the goals, each held or not held.
 *
 *   node bench/run.mjs                 full run (about 7 minutes)
 *   node bench/run.mjs --quick         smoke run, about a minute
 *   options: --runtime=deno|bun|node (repeatable)  --repeat=N  --no-c  --no-js  --no-build
 *            --no-paced  --only=REGEX (case names)  --json=FILE  --md=FILE
 *   env: DENO, BUN, NODE_BIN: runtime binaries (default node_modules/.bin/{deno,bun,node})
 *
 * Every case runs in its own process group under a timeout; the group is
 * killed when the case ends or times out, so no child outlives the run.
 * Figures are the median of --repeat runs (3 in a full run, 1 with --quick).
 * The machine has few cores, so other work skews the figures: before each run
 * the driver waits a little for the machine to be idle, measures the CPU that
 * other processes took during the run (/proc/stat less its own children), takes
 * the median over the clean runs, and flags cases that had none.
 * Exit status: 0 when every case ran (whether goals hold or not), 1 otherwise.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const OUT_DIR = path.join(ROOT, "build", "bench");
const argv = process.argv.slice(2);
const flag = (name) => argv.includes(`--${name}`);
const opt = (name) => argv.filter((a) => a.startsWith(`--${name}=`)).map((a) => a.slice(name.length + 3));

const QUICK = flag("quick");
const REPEAT = Number(opt("repeat")[0] ?? (QUICK ? 1 : 3));
const ONLY = opt("only")[0] ? new RegExp(opt("only")[0]) : null;
/**
 * The runtimes bench/bench.ts runs under: how to start it, and which sockets
 * are its baselines (bench.ts transports; "net" is node:net, "native" the
 * runtime's own Unix socket API). Another runtime plugs in with one entry.
 */
const RUNTIME_CMD = {
  deno: {
    name: "Deno",
    bin: process.env.DENO || path.join(ROOT, "node_modules", ".bin", "deno"),
    args: (a) => ["run", "-A", "--quiet", "bench/bench.ts", ...a],
    sockets: ["native", "net"],
  },
  bun: {
    name: "Bun",
    bin: process.env.BUN || path.join(ROOT, "node_modules", ".bin", "bun"),
    args: (a) => ["bench/bench.ts", ...a],
    sockets: ["native", "net"],
  },
  node: {
    name: "Node",
    // Not NODE: npm sets that to the node running npm itself.
    bin: process.env.NODE_BIN || path.join(ROOT, "node_modules", ".bin", "node"),
    args: (a) => ["bench/bench.ts", ...a],
    // Node's own sockets are node:net.
    sockets: ["net"],
  },
};
const RUNTIMES = flag("no-js")
  ? []
  : opt("runtime").length
  ? opt("runtime").flatMap((r) => r.split(","))
  : Object.keys(RUNTIME_CMD);
for (const rt of RUNTIMES) {
  if (!RUNTIME_CMD[rt]) {
    console.error(`unknown runtime ${rt}: use --runtime=${Object.keys(RUNTIME_CMD).join("|")}`);
    process.exit(2);
  }
}
if (flag("help")) {
  console.log(readFileSync(fileURLToPath(import.meta.url), "utf8").split("*/")[0].replace(/^#!.*\n\/\*\*\n/, "").replace(/^ \* ?/gm, ""));
  process.exit(0);
}
const CASE_TIMEOUT_MS = 60_000;
const failures = [];

const log = (...a) => console.error(...a);

// ---- processes ------------------------------------------------------------------

/** Process groups of the cases running now: killed if the driver is interrupted. */
const groups = new Set();
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    for (const g of groups) {
      try {
        process.kill(-g, "SIGKILL");
      } catch { /* gone */ }
    }
    process.exit(130);
  });
}

/** Runs a command in its own process group; resolves with its stdout. Kills the group at the end. */
function run(cmd, args, timeoutMs = CASE_TIMEOUT_MS) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: ROOT, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    groups.add(child.pid);
    let stdout = "", stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const killGroup = () => {
      try {
        process.kill(-child.pid, "SIGKILL");
      } catch { /* already gone */ }
    };
    const timer = setTimeout(() => {
      stderr += `\n[run.mjs] timed out after ${timeoutMs} ms; killed`;
      killGroup();
    }, timeoutMs);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      killGroup(); // peers left behind by a failed case
      groups.delete(child.pid);
      resolve({ code: code ?? 128, signal, stdout, stderr });
    });
  });
}

function parseLines(stdout) {
  return stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
}

// ---- the machine ------------------------------------------------------------------

function cpuTimes() {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + (f[4] || 0);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return { idle, total };
}

/** Share of CPU time the machine spends busy over `ms` (while we run nothing). */
async function busyShare(ms) {
  const a = cpuTimes();
  await new Promise((r) => setTimeout(r, ms));
  const b = cpuTimes();
  const total = b.total - a.total;
  return total > 0 ? 1 - (b.idle - a.idle) / total : 0;
}

/** Milliseconds a run may spend in all waiting for the machine to calm down. */
let quietBudgetMs = Number(opt("wait-quiet")[0] ?? (QUICK ? 0 : 30)) * 1000;

const WAIT_STEP_MS = 10_000 + Math.max(0, quietBudgetMs - 30_000) / 4;

/**
 * Samples how busy the machine is before a case; in a full run waits (up to
 * 10 s at a time, 30 s in all, or what --wait-quiet=SECONDS allows) while
 * other work keeps it over 20% busy.
 */
async function quiet() {
  let share = await busyShare(QUICK ? 100 : 200);
  const start = Date.now();
  const until = start + Math.min(WAIT_STEP_MS, quietBudgetMs);
  while (share > 0.2 && Date.now() < until) share = await busyShare(500);
  quietBudgetMs -= Date.now() - start;
  return share;
}

function version(bin, args) {
  try {
    return execFileSync(bin, args, { encoding: "utf8" }).split("\n")[0].trim();
  } catch {
    return "not found";
  }
}

function machine() {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  const model = (cpuinfo.match(/^model name\s*:\s*(.*)$/m) || [])[1] || os.cpus()[0]?.model || "unknown";
  return {
    nproc: execFileSync("nproc", { encoding: "utf8" }).trim(),
    cpu: model,
    kernel: `${os.type()} ${os.release()}`,
    memory_gib: Math.round(os.totalmem() / 2 ** 30),
    ...Object.fromEntries(
      Object.entries(RUNTIME_CMD).map(([k, r]) => [k, RUNTIMES.includes(k) ? version(r.bin, ["--version"]) : "-"]),
    ),
    // Not `node`: that key is the Node runtime measured (RUNTIME_CMD.node).
    driver_node: process.version,
    loadavg_start: os.loadavg().map((x) => x.toFixed(2)).join(" "),
  };
}

// ---- cases ----------------------------------------------------------------------

const CBENCH = path.join(OUT_DIR, "cbench");
const q = (full, quick) => String(QUICK ? quick : full);
const C_CASES = [
  ["pair", q(10_000_000, 1_000_000)],
  ["ring-rt", q(200_000, 20_000)],
  ["shmc-rt", q(200_000, 20_000)],
  ["ring-tput", "64", q(20_000_000, 2_000_000)],
  ["shmc-tput", "64", q(3_000_000, 300_000)],
  ["shmc-tput-batch", "64", q(10_000_000, 1_000_000)],
  ["sock-tput", "64", q(1_000_000, 100_000)],
  ["ring-tput", "4096", q(2_000_000, 200_000)],
  ["shmc-tput", "4096", q(1_000_000, 100_000)],
  ["sock-tput", "4096", q(200_000, 20_000)],
  ["ring-tput", "65536", q(150_000, 15_000)],
  ["shmc-tput", "65536", q(150_000, 15_000)],
  ["sock-tput", "65536", q(30_000, 3_000)],
  // Large messages, filled by the producer and checksummed by the consumer:
  // the plain ring (in place), zero copy, the copying API, a socketpair.
  ...["ring", "zc", "copy", "sock"].flatMap((how) => [
    ["fill-tput", how, "65536", q(60_000, 6_000)],
    ["fill-tput", how, "1048576", q(4_000, 400)],
  ]),
  // The same, the consumer reading only a 64-byte header of each message.
  ...["ring-head", "zc-head", "copy-head", "sock-head"].flatMap((how) => [
    ["fill-tput", how, "65536", q(60_000, 6_000)],
    ["fill-tput", how, "1048576", q(4_000, 400)],
  ]),
];

// Round trips of the default API (and the sockets) are in the paced cases below.
const JS_CASES = [
  "pair",
  "rt-shmc-spin",
  "tput-shmc-64", "tput-shmc-many-64", "tput-net-64", "tput-native-64",
  "tput-shmc-4096", "tput-net-4096", "tput-native-4096",
  "tput-shmc-65536", "tput-net-65536", "tput-native-65536",
  "bcast-shmc", "bcast-net", "mcast-shmc", "mcast-net",
  "idle-shmc", "idle-net",
  "loop-shmc", "loop-net", "loop-native",
  ...[65536, 1048576].flatMap((size) => ["zc", "copy", "net", "native"].map((t) => `fill-${t}-${size}`)),
];

/** The repeat whose headline figure is the median. */
function median(results) {
  const key = (r) => r.p50_ns ?? r.p50_us ?? r.msgs_per_s ?? r.ns_per_pair ?? r.cpu_pct ?? 0;
  const sorted = [...results].sort((a, b) => key(a) - key(b));
  return { ...sorted[Math.floor((sorted.length - 1) / 2)], repeats: results.map(key) };
}

/** CPU ticks (USER_HZ) the whole machine spent busy, and this driver with its reaped children. */
function ticks() {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  const busy = f.slice(0, 8).reduce((a, b) => a + b, 0) - f[3] - (f[4] || 0);
  const st = readFileSync("/proc/self/stat", "utf8");
  const g = st.slice(st.lastIndexOf(")") + 2).split(" ").map(Number);
  return { busy, ours: g[11] + g[12] + g[13] + g[14] }; // utime stime cutime cstime
}

const NCPU = os.cpus().length || 1;

/**
 * Runs a case `repeat` times. Each run also measures the CPU that other work
 * on the machine took meanwhile (machine busy ticks minus ours and our
 * reaped children's, as a share of all CPUs); the median is taken over the
 * runs with little such load when there are any.
 */
async function runCase(label, cmd, args, repeat) {
  const got = [];
  const t0 = Date.now();
  for (let i = 0; i < repeat; i++) {
    const before = await quiet();
    const a = ticks(), ta = Date.now();
    const r = await run(cmd, args);
    const b = ticks(), secs = (Date.now() - ta) / 1000;
    const lines = parseLines(r.stdout);
    if (r.code !== 0 || lines.length === 0) {
      failures.push(`${label}: exit ${r.code}${r.signal ? ` (${r.signal})` : ""}: ${r.stderr.trim().slice(-400)}`);
      log(`  ${label}: FAILED (exit ${r.code}) ${r.stderr.trim().split("\n").slice(-2).join(" | ")}`);
      return undefined;
    }
    const res = lines[lines.length - 1];
    res.busy_before = before;
    res.other_load = Math.max(0, (b.busy - a.busy - (b.ours - a.ours)) / 100 / (secs * NCPU));
    got.push(res);
  }
  const clean = got.filter((r) => r.other_load < 0.1);
  const m = median(clean.length ? clean : got);
  m.repeats_all = got.length;
  m.repeats_clean = clean.length;
  m.other_load_max = Math.max(...got.map((r) => r.other_load));
  m.seconds = (Date.now() - t0) / 1000;
  const noisy = clean.length < got.length
    ? `  (other load: ${got.map((r) => (r.other_load * 100).toFixed(0) + "%").join(" ")}; ${clean.length}/${got.length} clean)`
    : "";
  log(`  ${label}: ${headline(m)}${noisy}  [${m.seconds.toFixed(1)} s]`);
  return m;
}

// ---- paced request/reply ------------------------------------------------------------

/** Traffic patterns of bench/bench.ts and cbench `paced-*` (the same names and timing in both). */
const PATTERNS = ["b2b", "50us", "1ms", "10ms", "burst"];
const PATTERN_LABEL = {
  b2b: "back-to-back",
  "50us": "gap 50 µs (client computes)",
  "1ms": "gap 1 ms (client sleeps)",
  "10ms": "gap 10 ms (client sleeps)",
  burst: "bursts of 16 back-to-back, 10 ms idle",
};
/** Forced-mode variants of the JS client and server, run for these patterns (not goals: for comparison). */
const FORCED = { "shmc-park": "`spin: 0` (always park)", "shmc-spin": "`spin: 30` (always spin 30 µs)" };
const FORCED_PATTERNS = ["b2b", "1ms"];
const C_PACED_N = { b2b: q(20_000, 2_000), "50us": q(5_000, 500), "1ms": q(2_000, 150), "10ms": q(300, 30), burst: q(1_600, 160) };
const SOCKET_NAME = {
  sock: "socketpair",
  net: "node:net",
  native: { deno: "Deno.listen/connect", bun: "Bun.listen/connect" },
};
const socketName = (k, rt) => (typeof SOCKET_NAME[k] === "object" ? SOCKET_NAME[k][rt] : SOCKET_NAME[k]) ?? k;
const PACED_KEYS = ["p50_us", "p90_us", "p99_us", "mean_us", "cpu_us", "client_cpu_us", "server_cpu_us", "gap_mean_us"];

/** Per-metric medians over the runs of one paced case (the clean runs, if any). */
function pacedMedian(runs) {
  const clean = runs.filter((r) => r.other_load < 0.1);
  const use = clean.length ? clean : runs;
  const out = { ...use[0], repeats: runs.map((r) => r.p50_us), repeats_clean: clean.length, repeats_all: runs.length };
  for (const k of PACED_KEYS) {
    if (!(k in use[0])) continue;
    const v = use.map((r) => r[k]).sort((a, b) => a - b);
    out[k] = v[Math.floor((v.length - 1) / 2)];
  }
  return out;
}

/**
 * Runs one pattern for every transport, REPEAT rounds, the transports
 * interleaved within each round so that all see the same machine.
 */
async function runPaced(group, pattern, transports, cmdFor) {
  const runs = Object.fromEntries(transports.map((t) => [t, []]));
  for (let i = 0; i < REPEAT; i++) {
    for (const t of transports) {
      const [cmd, args] = cmdFor(t);
      const r = await runCase(`${group} ${t} ${pattern}`, cmd, args, 1);
      if (r) runs[t].push(r);
    }
  }
  return Object.fromEntries(Object.entries(runs).filter(([, v]) => v.length).map(([t, v]) => [t, pacedMedian(v)]));
}

/** The socket baseline of one paced row: the one with the lowest p50. */
function bestSocket(cases, sockets) {
  return sockets.filter((k) => cases[k]).map((k) => ({ k, r: cases[k] })).sort((a, b) => a.r.p50_us - b.r.p50_us)[0];
}

const ratio = (a, b) => (b > 0 ? a / b : Infinity);
const fmtRatio = (x) => `${x.toFixed(2)}×`;
const mark = (x) => (x <= 1 ? `held (${fmtRatio(x)})` : `**not held** (${fmtRatio(x)})`);

/** The paced table (leads the results) and its goals. */
function pacedTable(res) {
  const lines = [];
  const goals = [];
  lines.push("| runtime | traffic | shmchan p50 / p99 | fastest socket p50 / p99 | p50 ÷ socket | p99 ÷ socket | CPU per request, shmchan / socket (client + server) | CPU ÷ socket |");
  lines.push("|---|---|---|---|---|---|---|---|");
  const groups = [...(res.paced?.c ? [["c", "C", ["sock"]]] : []),
    ...RUNTIMES.filter((rt) => res.paced?.[rt]).map((rt) => [rt, RUNTIME_CMD[rt].name, RUNTIME_CMD[rt].sockets])];
  for (const [g, G, sockets] of groups) {
    const what = g === "c" ? "blocking `shmc_send`/`shmc_recv`" : "default `await send()` / `await recv()`";
    for (const pattern of PATTERNS) {
      const cases = res.paced[g][pattern];
      if (!cases) continue;
      const best = bestSocket(cases, sockets);
      const variants = [["shmc", ""], ...(g === "c" ? [] : Object.entries(FORCED).map(([k, v]) => [k, `, forced ${v}`]))];
      for (const [k, suffix] of variants) {
        const a = cases[k];
        if (!a) continue;
        const b = best?.r;
        const cpu = (r) => `${fmtUs(r.cpu_us)} (${fmtUs(r.client_cpu_us)} + ${fmtUs(r.server_cpu_us)})`;
        const label = `${PATTERN_LABEL[pattern]}${suffix}`;
        lines.push(`| ${G} | ${label} | ${fmtUs(a.p50_us)} / ${fmtUs(a.p99_us)} | ` +
          (b ? `${fmtUs(b.p50_us)} / ${fmtUs(b.p99_us)} ${socketName(best.k, g)}` : "—") + " | " +
          (b ? `${fmtRatio(ratio(a.p50_us, b.p50_us))} | ${fmtRatio(ratio(a.p99_us, b.p99_us))}` : "— | —") + " | " +
          (b ? `${cpu(a)} / ${cpu(b)}` : cpu(a)) + " | " + (b ? fmtRatio(ratio(a.cpu_us, b.cpu_us)) : "—") + " |");
        if (k === "shmc" && b) {
          goals.push(`| ${G} | ${PATTERN_LABEL[pattern]} | ${mark(ratio(a.p50_us, b.p50_us))} | ${mark(ratio(a.p99_us, b.p99_us))} | ${mark(ratio(a.cpu_us, b.cpu_us))} |`);
        }
      }
    }
    const b2b = res.paced[g].b2b?.shmc;
    if (b2b) {
      goals.push(`| ${G} | back-to-back round trip p50 ≤ 2 µs (${what}) | ${b2b.p50_us <= 2 ? "held" : "**not held**"} (${fmtUs(b2b.p50_us)}) | | |`);
    }
  }
  return { lines, goals };
}

// ---- formatting -------------------------------------------------------------------

const fmtUs = (us) => (us < 10 ? us.toFixed(2) : us < 100 ? us.toFixed(1) : us.toFixed(0)) + " µs";
const fmtRate = (r) =>
  r >= 1e6 ? `${(r / 1e6).toFixed(2)} M msg/s` : r >= 1e3 ? `${(r / 1e3).toFixed(1)} k msg/s` : `${r.toFixed(0)} msg/s`;
const fmtGB = (g) => `${g >= 1 ? g.toFixed(2) : g.toFixed(3)} GB/s`;
const us = (r) => (r.p50_us !== undefined ? r : { ...r, p50_us: r.p50_ns / 1000, p99_us: r.p99_ns / 1000 });

function headline(r) {
  if (r.kind === "paced") {
    return `p50 ${fmtUs(r.p50_us)}, p99 ${fmtUs(r.p99_us)}, CPU ${fmtUs(r.client_cpu_us)} + ${fmtUs(r.server_cpu_us)} per request`;
  }
  if (r.kind === "rt") {
    const x = us(r);
    return `p50 ${fmtUs(x.p50_us)}, p99 ${fmtUs(x.p99_us)}`;
  }
  if (r.kind === "tput") return `${fmtRate(r.msgs_per_s)}, ${fmtGB(r.gb_per_s)}`;
  if (r.kind === "fan") return `${fmtRate(r.msgs_per_s)} (${fmtRate(r.deliveries_per_s)} delivered)`;
  if (r.kind === "pair") return `${r.ns_per_pair.toFixed(1)} ns per pair`;
  if (r.kind === "idle") return `${r.cpu_pct.toFixed(2)} % CPU`;
  if (r.kind === "loop") return `${fmtUs(r.us_per_rt)} per round trip, CPU ${fmtUs(r.cpu_us_per_rt)}`;
  return JSON.stringify(r);
}

const SIZE = { 64: "64 B", 4096: "4 KiB", 65536: "64 KiB", 1048576: "1 MiB" };
const FILL_SIZES = [65536, 1048576];

/**
 * The zero-copy table: large messages filled by the producer and summed by
 * the consumer, zero copy beside the copying API and the fastest socket (and
 * in C the plain ring, filled and summed in place), with its goals.
 */
function fillTable(res) {
  const lines = [], goals = [];
  lines.push("| runtime | size | zero copy (loan → view) | copying API (trySend → tryRecvInto) | fastest socket | zero copy ÷ copying | zero copy ÷ socket | C plain ring, in place | zero copy ÷ ring |");
  lines.push("|---|---|---|---|---|---|---|---|---|");
  const gb = (r) => (r ? fmtGB(r.gb_per_s) : "—");
  const x = (a, b) => (a && b ? `${(a.gb_per_s / b.gb_per_s).toFixed(2)}×` : "—");
  const groups = [...(res.c ? [["C", (k) => res.c[k], ["sock"]]] : []),
    ...RUNTIMES.filter((rt) => res[rt]).map((rt) => [RUNTIME_CMD[rt].name, (k) => res[rt][k], RUNTIME_CMD[rt].sockets, rt])];
  for (const [G, get, sockets, rt] of groups) {
    for (const size of FILL_SIZES) {
      const isC = G === "C";
      const zc = get(isC ? `c.fill.zc.${size}` : `fill-zc-${size}`);
      const copy = get(isC ? `c.fill.copy.${size}` : `fill-copy-${size}`);
      const ring = isC ? get(`c.fill.ring.${size}`) : undefined;
      const socks = sockets.map((k) => ({ k, r: get(isC ? `c.fill.${k}.${size}` : `fill-${k}-${size}`) })).filter((o) => o.r);
      const sock = socks.sort((a, b) => b.r.gb_per_s - a.r.gb_per_s)[0];
      if (!zc && !copy) continue;
      const sname = sock ? (isC ? "socketpair" : socketName(sock.k, rt)) : "";
      lines.push(`| ${G} | ${SIZE[size]} | ${gb(zc)} | ${gb(copy)} | ${sock ? `${gb(sock.r)} ${sname}` : "—"} | ${x(zc, copy)} | ${x(zc, sock?.r)} | ${ring ? gb(ring) : "—"} | ${ring ? x(zc, ring) : "—"} |`);
      if (!zc) continue;
      if (size === 1048576 && copy) {
        goals.push({ what: `${G}: 1 MiB zero copy ≥ 2× the copying API`, holds: zc.gb_per_s >= 2 * copy.gb_per_s,
          shows: `${(zc.gb_per_s / copy.gb_per_s).toFixed(2)}× (${gb(zc)} vs ${gb(copy)})` });
      }
      if (sock) {
        goals.push({ what: `${G}: ${SIZE[size]} zero copy ≥ 10× the fastest socket`, holds: zc.gb_per_s >= 10 * sock.r.gb_per_s,
          shows: `${(zc.gb_per_s / sock.r.gb_per_s).toFixed(2)}× (${gb(zc)} vs ${gb(sock.r)} ${sname})` });
      }
      if (ring) {
        goals.push({ what: `C: ${SIZE[size]} zero copy ≥ 80% of the plain ring (same entries and slot geometry, both in place)`,
          holds: zc.gb_per_s >= 0.8 * ring.gb_per_s,
          shows: `${((zc.gb_per_s / ring.gb_per_s) * 100).toFixed(0)}% (${gb(zc)} vs ${gb(ring)})` });
      }
    }
  }
  return { lines, goals };
}

/** C only: the filled messages again, the consumer reading a 64-byte header of each (no goals). */
function headTable(res) {
  const lines = [];
  const get = (k) => res.c?.[k];
  const gb = (r) => (r ? fmtGB(r.gb_per_s) : "—");
  const x = (a, b) => (a && b ? `${(a.gb_per_s / b.gb_per_s).toFixed(2)}×` : "—");
  for (const size of FILL_SIZES) {
    const [zc, copy, sock, ring] = ["zc", "copy", "sock", "ring"].map((h) => get(`c.fill.${h}-head.${size}`));
    if (!zc) continue;
    if (!lines.length) {
      lines.push("| size | zero copy | copying API | socketpair | plain ring | zero copy ÷ copying | zero copy ÷ socket | zero copy ÷ ring |");
      lines.push("|---|---|---|---|---|---|---|---|");
    }
    lines.push(`| ${SIZE[size]} | ${gb(zc)} | ${gb(copy)} | ${gb(sock)} | ${gb(ring)} | ${x(zc, copy)} | ${x(zc, sock)} | ${x(zc, ring)} |`);
  }
  return lines;
}
const NAMES = {
  "tput-net": "node:net",
  "tput-native": { deno: "Deno.listen/connect", bun: "Bun.listen/connect" },
};
const nameOf = (k, rt) => (typeof NAMES[k] === "object" ? NAMES[k][rt] : NAMES[k]);

function table(res, mach) {
  const noisyCases = [];
  for (const [group, cases] of Object.entries(res)) {
    if (group === "paced") continue;
    for (const [k, r] of Object.entries(cases)) if (r.repeats_clean === 0) noisyCases.push(`${group} ${k}`);
  }
  for (const [group, pats] of Object.entries(res.paced ?? {})) {
    for (const [p, cases] of Object.entries(pats)) {
      for (const [k, r] of Object.entries(cases)) if (r.repeats_clean === 0) noisyCases.push(`${group} ${k} ${p}`);
    }
  }
  const rows = [];
  const goals = [];
  const row = (runtime, what, a, b, ratio, note = "") => rows.push({ runtime, what, a, b, ratio, note });
  const goal = (what, holds, shows) => goals.push({ what, holds, shows });
  const c = (k) => res.c[k];

  // C floor
  if (res.c) {
    const pair = c("c.shmc.pair");
    if (pair) {
      row("C", "one process: 64 B try_send + try_recv pair", `${pair.ns_per_pair.toFixed(1)} ns`, "—", "—", "goal < 100 ns");
      goal("C: single-process 64 B try_send+try_recv pair < 100 ns", pair.ns_per_pair < 100, `${pair.ns_per_pair.toFixed(1)} ns`);
    }
    const sp = c("c.shmc.rt_spin"), ring = c("c.ring.rt");
    if (sp && ring) {
      row("C", "64 B round trip, both spinning (shmchan try_* vs plain SPSC ring)",
        `${fmtUs(sp.p50_ns / 1000)} (p99 ${fmtUs(sp.p99_ns / 1000)})`,
        `${fmtUs(ring.p50_ns / 1000)} (p99 ${fmtUs(ring.p99_ns / 1000)})`,
        `${(ring.p50_ns / sp.p50_ns).toFixed(2)}×`);
    }
    for (const size of [64, 4096, 65536]) {
      const a = res.c[`c.shmc.tput.${size}`], b = res.c[`c.ring.tput.${size}`], so = res.c[`c.sock.tput.${size}`];
      if (!a || !b) continue;
      row("C", `throughput ${SIZE[size]} (shmchan try_* vs plain SPSC ring)`,
        `${fmtRate(a.msgs_per_s)}, ${fmtGB(a.gb_per_s)}`, `${fmtRate(b.msgs_per_s)}, ${fmtGB(b.gb_per_s)}`,
        `${(a.msgs_per_s / b.msgs_per_s).toFixed(2)}×`,
        so ? `socketpair: ${fmtRate(so.msgs_per_s)}, ${fmtGB(so.gb_per_s)}` : "");
      goal(`C: shmchan ≥ 50% of the plain SPSC ring, ${SIZE[size]} throughput`, a.msgs_per_s >= 0.5 * b.msgs_per_s,
        `${((a.msgs_per_s / b.msgs_per_s) * 100).toFixed(0)}% (${fmtRate(a.msgs_per_s)} vs ${fmtRate(b.msgs_per_s)})`);
    }
    {
      const a = res.c["c.shmc.tput_batch.64"], b = res.c["c.ring.tput.64"];
      if (a && b) {
        row("C", "throughput 64 B, batched (shmc_try_send_many/recv_many, 32 a call, vs plain SPSC ring)",
          `${fmtRate(a.msgs_per_s)}, ${fmtGB(a.gb_per_s)}`, `${fmtRate(b.msgs_per_s)}, ${fmtGB(b.gb_per_s)}`,
          `${(a.msgs_per_s / b.msgs_per_s).toFixed(2)}×`);
        goal("C: shmchan batched ≥ 50% of the plain SPSC ring, 64 B throughput", a.msgs_per_s >= 0.5 * b.msgs_per_s,
          `${((a.msgs_per_s / b.msgs_per_s) * 100).toFixed(0)}% (${fmtRate(a.msgs_per_s)} vs ${fmtRate(b.msgs_per_s)})`);
      }
    }
    if (sp && ring) {
      goal("C: shmchan ≥ 50% of the plain SPSC ring, 64 B round trip", ring.p50_ns / sp.p50_ns >= 0.5,
        `${((ring.p50_ns / sp.p50_ns) * 100).toFixed(0)}% (p50 ${fmtUs(sp.p50_ns / 1000)} vs ${fmtUs(ring.p50_ns / 1000)})`);
    }
  }

  for (const rt of RUNTIMES) {
    const j = res[rt];
    if (!j) continue;
    const R = RUNTIME_CMD[rt].name;
    const pr = j["pair"], cpair = res.c?.["c.shmc.pair"];
    if (pr) {
      row(R, "one process: 64 B `trySend` + `tryRecvInto` pair, vs the same pair from C",
        `${pr.ns_per_pair.toFixed(1)} ns`, cpair ? `${cpair.ns_per_pair.toFixed(1)} ns (C)` : "—",
        cpair ? `${(cpair.ns_per_pair / pr.ns_per_pair).toFixed(2)}×` : "—");
    }
    const sp = j["rt-shmc-spin"];
    if (sp) {
      row(R, "64 B round trip, both sides spinning on `tryRecvInto()` (the floor under the default API)",
        `${fmtUs(sp.p50_us)} (p99 ${fmtUs(sp.p99_us)})`, "—", "—");
    }
    // throughput
    for (const size of [64, 4096, 65536]) {
      const a = j[`tput-shmc-${size}`];
      const bs = [`tput-net-${size}`, `tput-native-${size}`].filter((k) => j[k]).map((k) => ({ k, r: j[k] }));
      const b = bs.sort((x, y) => y.r.msgs_per_s - x.r.msgs_per_s)[0];
      if (!a) continue;
      row(R, `throughput ${SIZE[size]}, trySend → spinning tryRecvInto, vs fastest Unix socket`,
        `${fmtRate(a.msgs_per_s)}, ${fmtGB(a.gb_per_s)}`,
        b ? `${fmtRate(b.r.msgs_per_s)}, ${fmtGB(b.r.gb_per_s)} ${nameOf(b.k.replace(/-\d+$/, ""), rt)}` : "—",
        b ? `${(a.msgs_per_s / b.r.msgs_per_s).toFixed(2)}×` : "—");
      const many = size === 64 ? j["tput-shmc-many-64"] : undefined;
      if (many) {
        row(R, "throughput 64 B, batch calls `trySendMany` (64) → `tryRecvManyInto`, vs fastest Unix socket",
          `${fmtRate(many.msgs_per_s)}, ${fmtGB(many.gb_per_s)}`,
          b ? `${fmtRate(b.r.msgs_per_s)}, ${fmtGB(b.r.gb_per_s)} ${nameOf(b.k.replace(/-\d+$/, ""), rt)}` : "—",
          b ? `${(many.msgs_per_s / b.r.msgs_per_s).toFixed(2)}×` : "—",
          "one native call per batch");
      }
      if (size === 64 && b) {
        const floor = rt === "bun" ? 10e6 : 5e6;
        const top = many && many.msgs_per_s > a.msgs_per_s ? many : a;
        goal(`${R}: 64 B throughput ≥ 10× the socket and ≥ ${floor / 1e6} M msg/s`,
          top.msgs_per_s >= 10 * b.r.msgs_per_s && top.msgs_per_s >= floor,
          `${fmtRate(top.msgs_per_s)}${top === many ? " (batch calls)" : ""}: ${(top.msgs_per_s / b.r.msgs_per_s).toFixed(2)}× ${fmtRate(b.r.msgs_per_s)} (${nameOf(b.k.replace(/-\d+$/, ""), rt)})`);
      }
      if (size === 65536) {
        goal(`${R}: 64 KiB throughput ≥ 5 GB/s`, a.gb_per_s >= 5, fmtGB(a.gb_per_s));
      }
    }
    for (const [k, b, what] of [
      ["bcast-shmc", "bcast-net", "broadcast 64 B to 4 receiver processes (`await recvInto()`), vs writing to 4 sockets"],
      ["mcast-shmc", "mcast-net", "multicast 64 B to 2 competing workers (`await recvInto()`), vs alternating over 2 sockets"],
    ]) {
      const x = j[k], y = j[b];
      if (!x) continue;
      row(R, what, `${fmtRate(x.msgs_per_s)} (${fmtRate(x.deliveries_per_s)} delivered)`,
        y ? `${fmtRate(y.msgs_per_s)} (${fmtRate(y.deliveries_per_s)} delivered)` : "—",
        y ? `${(x.msgs_per_s / y.msgs_per_s).toFixed(2)}×` : "—");
    }
    const loop = j["loop-shmc"];
    const loopSock = ["loop-net", "loop-native"].filter((k) => j[k]).map((k) => ({ k, r: j[k] }))
      .sort((x, y) => x.r.us_per_rt - y.r.us_per_rt)[0];
    if (loop) {
      row(R, "one thread, an echo server and its client as two async loops: `spin: 0` on both sides (every wait " +
        "parks, every message rung), vs the fastest socket: what the parked path costs, with no wakeup in it",
        `${fmtUs(loop.us_per_rt)} per round trip`,
        loopSock ? `${fmtUs(loopSock.r.us_per_rt)} ${socketName(loopSock.k.replace(/^loop-/, ""), rt)}` : "—",
        loopSock ? `${(loopSock.r.us_per_rt / loop.us_per_rt).toFixed(2)}×` : "—");
    }
    const idle = j["idle-shmc"], idleNet = j["idle-net"];
    if (idle) {
      row(R, `idle receiver parked in \`await recv()\` for ${idle.secs.toFixed(0)} s, vs one waiting on a node:net socket`,
        `${idle.cpu_pct.toFixed(2)} % CPU`, idleNet ? `${idleNet.cpu_pct.toFixed(2)} % CPU` : "—", "—");
      goal(`${R}: idle parked receiver < 1% CPU`, idle.cpu_pct < 1,
        `${idle.cpu_pct.toFixed(2)} % (${idle.cpu_ms.toFixed(1)} ms CPU in ${idle.secs.toFixed(1)} s; utime+stime ${idle.cpu_pct_ticks.toFixed(2)} %)`);
    }
  }

  const lines = [];
  const versions = RUNTIMES.map((rt) => `${RUNTIME_CMD[rt].name} ${mach[rt].replace(/^deno /, "")}`).join(", ");
  lines.push(`Machine: ${mach.nproc} CPUs, ${mach.cpu}, ${mach.memory_gib} GiB, ${mach.kernel}; ` +
    `${versions}${versions ? "; " : ""}driver Node ${mach.driver_node}. ` +
    `Load average at start: ${mach.loadavg_start}. Median of ${REPEAT} run${REPEAT > 1 ? "s" : ""}${QUICK ? " (--quick)" : ""}.`);
  const paced = pacedTable(res);
  if (paced.goals.length || paced.lines.length > 2) {
    lines.push("");
    lines.push("### Request/reply on paced traffic");
    lines.push("");
    lines.push("64 B requests, each answered by an echo server in another process; the client waits for each reply, " +
      "then keeps the gap. shmchan and the sockets run the same pattern, interleaved run by run. " +
      "CPU is the on-CPU time of every thread of both processes (schedstat), per request, less the client's own computing in the 50 µs gap.");
    lines.push("");
    lines.push(...paced.lines);
  }
  const fill = fillTable(res);
  if (fill.lines.length > 2) {
    lines.push("");
    lines.push("### Large messages: zero copy");
    lines.push("");
    lines.push("One producer, one consumer in another process, 8 ring entries; the producer fills every message " +
      "(64-bit counter words over all of it), the consumer sums all of it and checks the sum. Zero copy fills " +
      "the loaned slot and sums the view in place; the copying API fills a private buffer and receives into " +
      "another; sockets write and read (and reassemble) whole messages. The C plain ring is a Lamport SPSC " +
      "ring with the same entries, slot stride and payload offset, filled and summed in place: the floor.");
    lines.push("");
    lines.push(...fill.lines);
    for (const g of fill.goals) goals.push(g);
    const head = headTable(res);
    if (head.length) {
      lines.push("");
      lines.push("The same messages in C, the consumer reading only the first 64 bytes of each (a header; a frame handed on): the producer still fills every byte.");
      lines.push("");
      lines.push(...head);
    }
  }
  lines.push("");
  lines.push("### Other cases");
  lines.push("");
  lines.push("| runtime | case | shmchan | baseline | shmchan advantage | note |");
  lines.push("|---|---|---|---|---|---|");
  for (const r of rows) lines.push(`| ${r.runtime} | ${r.what} | ${r.a} | ${r.b} | ${r.ratio} | ${r.note} |`);
  lines.push("");
  lines.push("\"shmchan advantage\" is baseline ÷ shmchan for times and shmchan ÷ baseline for rates: above 1× shmchan is faster.");
  if (noisyCases.length) {
    lines.push("");
    lines.push(`† other work took over 10% of the machine during every run of: ${noisyCases.join(", ")}. Re-run those when it is quiet.`);
  }
  if (paced.goals.length) {
    lines.push("");
    lines.push("### Goals on paced traffic: shmchan ≤ 1.0× the fastest socket, paced the same way");
    lines.push("");
    lines.push("| runtime | traffic | p50 | p99 | CPU per request |");
    lines.push("|---|---|---|---|---|");
    lines.push(...paced.goals);
  }
  lines.push("");
  lines.push("### Other goals");
  lines.push("");
  lines.push("| goal | held | measured |");
  lines.push("|---|---|---|");
  for (const g of goals) {
    lines.push(`| ${g.what} | ${g.holds ? "held" : "**not held**"} | ${g.shows} |`);
  }
  return lines.join("\n");
}

// ---- main ---------------------------------------------------------------------------

async function main() {
  const started = Date.now();
  mkdirSync(OUT_DIR, { recursive: true });
  if (!flag("no-build")) {
    log("building the library and bench/c ...");
    if (!existsSync(path.join(ROOT, "build", "CMakeCache.txt"))) {
      execFileSync("cmake", ["-S", ROOT, "-B", path.join(ROOT, "build")], { stdio: "inherit" });
    }
    execFileSync("cmake", ["--build", path.join(ROOT, "build"), "--target", "shmchan"], { stdio: ["ignore", "ignore", "inherit"] });
    execFileSync("make", ["-s", "-C", path.join(ROOT, "bench", "c")], { stdio: "inherit" });
  }
  const mach = machine();
  log(`machine: ${mach.nproc} CPUs, ${mach.cpu}, ${mach.kernel}; ${mach.deno.split("\n")[0]}; bun ${mach.bun}; load ${mach.loadavg_start}`);
  const share = await busyShare(1000);
  if (share > 0.2) log(`warning: the machine is ${(share * 100).toFixed(0)}% busy with other work; figures will be noisy`);

  const res = {};
  if (!flag("no-c")) {
    log("C floor (bench/c/cbench.c):");
    res.c = {};
    for (const [name, ...args] of C_CASES) {
      const label = `c ${name} ${args.join(" ")}`;
      if (ONLY && !ONLY.test(`c-${name}`)) continue;
      const r = await runCase(label, CBENCH, [name, ...args], REPEAT);
      if (r) res.c[r.kind === "tput" ? `${r.case}.${r.size}` : r.case] = r;
    }
  }
  for (const rt of RUNTIMES) {
    log(`${rt} (bench/bench.ts):`);
    res[rt] = {};
    for (const k of JS_CASES) {
      if (k === "rt-ipc" && rt !== "bun") continue;
      if (!RUNTIME_CMD[rt].sockets.includes("native") && /^(rt|tput|fill|loop)-native/.test(k)) continue;
      if (ONLY && !ONLY.test(k)) continue;
      const args = RUNTIME_CMD[rt].args(QUICK ? [k, "--quick"] : [k]);
      const repeat = k.startsWith("idle-") ? 1 : REPEAT;
      const r = await runCase(`${rt} ${k}`, RUNTIME_CMD[rt].bin, args, repeat);
      if (r) res[rt][k] = r;
    }
  }
  if (!flag("no-paced")) {
    res.paced = {};
    if (!flag("no-c")) {
      log("C, paced request/reply (cbench paced-*):");
      res.paced.c = {};
      for (const p of PATTERNS) {
        if (ONLY && !ONLY.test(`c-paced-${p}`)) continue;
        res.paced.c[p] = await runPaced("c", p, ["shmc", "sock"], (t) => [CBENCH, [`paced-${t}`, p, C_PACED_N[p]]]);
      }
    }
    for (const rt of RUNTIMES) {
      log(`${rt}, paced request/reply (bench.ts paced-*):`);
      res.paced[rt] = {};
      for (const p of PATTERNS) {
        if (ONLY && !ONLY.test(`paced-${p}`)) continue;
        const transports = ["shmc", ...RUNTIME_CMD[rt].sockets,
          ...(QUICK || !FORCED_PATTERNS.includes(p) ? [] : Object.keys(FORCED))];
        res.paced[rt][p] = await runPaced(rt, p, transports, (t) =>
          [RUNTIME_CMD[rt].bin, RUNTIME_CMD[rt].args(QUICK ? [`paced-${t}-${p}`, "--quick"] : [`paced-${t}-${p}`])]);
      }
    }
  }
  mach.loadavg_end = os.loadavg().map((x) => x.toFixed(2)).join(" ");
  mach.seconds = (Date.now() - started) / 1000;

  const md = table(res, mach);
  console.log(md);
  console.log(`\nLoad average at end: ${mach.loadavg_end}; the run took ${mach.seconds.toFixed(0)} s.`);
  if (failures.length) {
    console.log(`\n${failures.length} case(s) failed:`);
    for (const f of failures) console.log(`- ${f}`);
  }
  const json = opt("json")[0] ?? path.join(OUT_DIR, QUICK ? "results-quick.json" : "results.json");
  writeFileSync(json, JSON.stringify({ machine: mach, results: res, failures }, null, 2));
  const mdFile = opt("md")[0] ?? path.join(OUT_DIR, QUICK ? "results-quick.md" : "results.md");
  writeFileSync(mdFile, md + "\n");
  log(`wrote ${json} and ${mdFile}`);
  process.exitCode = failures.length ? 1 : 0;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
