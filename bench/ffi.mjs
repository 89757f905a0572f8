#!/usr/bin/env node
/**
 * The routes from Node.js into libshmchan.so, priced side by side in one run:
 * the Node-API addon (csrc/node/shmchan_node.c, the one shmchan uses), koffi
 * (npm, prebuilt binaries in its package) and node:ffi (Node >= 26.1,
 * experimental), under every supported Node line (scripts/node-lines.mjs).
 *
 *   node bench/ffi.mjs            full run (about three minutes)
 *   node bench/ffi.mjs --quick    fewer calls per round
 *
 * Every figure is ns per call, the median of 9 rounds of 1 M calls (100 k
 * with --quick) after warm-up, each route in its own loop:
 *   version()        shmc_version(): a call with no arguments
 *   send u8          shmc_try_send(h, Uint8Array, 64, 0)
 *   send number      shmc_try_send(h, the buffer's address as a number, 64, 0)
 *   send bigint      shmc_try_send(h, the buffer's address as a bigint, 64, 0)
 *   pair             shmc_try_send + shmc_try_recv of 64 B (Uint8Arrays)
 * shmc_try_send goes to a broadcast channel with no receivers: the full send
 * path (claim, copy, publish) that never fills. "C" is the same send called
 * in a loop from C, the library's own share of each figure. The addon has no
 * pointer arguments; bench/ffi/variants.c prices them through Node-API.
 *
 * Then the wake path, which is the same whatever the route (the doorbell on
 * node:net): bench/bench.ts's 64 B round trips between two Node processes,
 * p50 in µs, median of 3 runs (1 with --quick), under each line (compiled
 * to ES2022 for Node 22):
 *   parked           `await recvInto(buf, { spin: 0 })` on both sides: every
 *                    message wakes a parked receiver through its doorbell
 *   spin, then park  the default `await recvInto(buf)`
 *   node:net         a node:net Unix socket echo, the baseline
 *
 * Needs a C compiler (it builds the addon and bench/ffi/variants.c) and the
 * npm registry the first time (koffi into build/bench/ffi-deps/, the Node
 * lines into build/node-lines/). Run it alone: `flock -x` on a shared machine.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const OUT = path.join(ROOT, "build", "bench");
const LIB = path.join(ROOT, "build", "libshmchan.so");
const ADDON = path.join(ROOT, "build", "shmchan_node.node");
const VARIANTS = path.join(OUT, "ffi_variants.node");
const DEPS = path.join(OUT, "ffi-deps");
const KOFFI_VERSION = "3.3.4";
const QUICK = process.argv.includes("--quick");
const WAKE_REPEATS = QUICK ? 1 : 3;

// ---- the measuring child (one Node line) ---------------------------------------

const ROUNDS = 9;
const CALLS = QUICK ? 100_000 : 1_000_000;
const MSG = 64;

function nativeModule(file) {
  const m = { exports: {} };
  process.dlopen(m, file);
  return m.exports;
}

let cases = 0;

/** ns per call of `body` (a statement using the names in `env`), median of ROUNDS. */
function price(body, env) {
  const names = Object.keys(env);
  // A fresh function per case, so that its call sites see one target only
  // (the comment makes each source unique: V8 caches compiled sources).
  const source = `/* case ${++cases} */ let rc = 0; for (let i = 0; i < n; i++) rc = ${body}; return rc;`;
  const loop = new Function(...names, "n", source);
  const values = names.map((k) => env[k]);
  const rounds = [];
  for (let r = 0; r < 3 + ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    const rc = loop(...values, CALLS);
    const ns = Number(process.hrtime.bigint() - t0) / CALLS;
    if (typeof rc === "number" && rc < 0) throw new Error(`${body}: returned ${rc}`);
    if (r >= 3) rounds.push(ns);
  }
  rounds.sort((a, b) => a - b);
  return rounds[ROUNDS >> 1];
}

function child() {
  const [koffiDir] = process.argv.slice(process.argv.indexOf("--child") + 1);
  const variants = nativeModule(VARIANTS);
  if (variants.open(LIB) !== 0) throw new Error("variants: cannot open the library");
  const addon = nativeModule(ADDON).open(LIB);
  const rand = () => (BigInt(Math.floor(Math.random() * 2 ** 30)) << 32n) | BigInt(Math.floor(Math.random() * 2 ** 32));
  const kb = rand() + 1n, ku = rand() + 1n;
  const bcast = addon.shmc_create(kb, 1, 256, MSG, 0o600, 0);
  const uni = addon.shmc_create(ku, 0, 256, MSG, 0o600, 0);
  const sub = addon.shmc_attach_key(ku, 2);
  if (bcast < 0 || uni < 0 || sub < 0) throw new Error(`create/attach failed: ${bcast} ${uni} ${sub}`);
  const msg = new Uint8Array(new ArrayBuffer(4096), 0, MSG).fill(7);
  const into = new Uint8Array(new ArrayBuffer(4096), 0, MSG);
  const big = variants.address(msg);
  const num = Number(big);
  const env = { h: bcast, u: uni, s: sub, msg, into, big, num };
  const routes = {};

  routes["C"] = { "send u8": (() => {
    const r = [];
    for (let i = 0; i < 3 + ROUNDS; i++) r.push(variants.c_loop(bcast, msg, MSG, CALLS));
    return r.slice(3).sort((a, b) => a - b)[ROUNDS >> 1];
  })() };

  routes["Node-API addon"] = {
    "version()": price("f()", { f: addon.shmc_version }),
    "send u8": price("f(h, msg, 64, 0)", { ...env, f: addon.shmc_try_send }),
    "send number": price("f(h, num, 64, 0)", { ...env, f: variants.try_send_number }),
    "send bigint": price("f(h, big, 64, 0)", { ...env, f: variants.try_send_bigint }),
    pair: price("(f(u, msg, 64, 0), g(s, into, 64))", { ...env, f: addon.shmc_try_send, g: addon.shmc_try_recv }),
  };

  if (koffiDir) {
    const koffi = createRequire(path.join(koffiDir, "noop.js"))("koffi");
    const lib = koffi.load(LIB);
    const fn = (ret, name, args) => lib.func(name, ret, args);
    routes[`koffi ${koffi.version}`] = {
      "version()": price("f()", { f: fn("int", "shmc_version", []) }),
      "send u8": price("f(h, msg, 64, 0)", { ...env, f: fn("int", "shmc_try_send", ["int", "const void *", "uint32_t", "uint32_t"]) }),
      "send number": price("f(h, num, 64, 0)", { ...env, f: koffi.load(LIB).func("shmc_try_send", "int", ["int", "uintptr_t", "uint32_t", "uint32_t"]) }),
      "send bigint": price("f(h, big, 64, 0)", { ...env, f: koffi.load(LIB).func("shmc_try_send", "int", ["int", "uint64_t", "uint32_t", "uint32_t"]) }),
      pair: price("(f(u, msg, 64, 0), g(s, into, 64))", {
        ...env,
        f: fn("int", "shmc_try_send", ["int", "const void *", "uint32_t", "uint32_t"]),
        g: fn("int", "shmc_try_recv", ["int", "void *", "uint32_t"]),
      }),
    };
  }

  let ffi;
  try {
    ffi = createRequire(import.meta.url)("node:ffi");
  } catch { /* before Node 26.1 */ }
  if (ffi) {
    // One signature per symbol and library object: a fresh object per variant.
    const get = (name, args, ret = "i32") => new ffi.DynamicLibrary(LIB).getFunction(name, { arguments: args, return: ret });
    const send = get("shmc_try_send", ["i32", "buffer", "u32", "u32"]);
    routes["node:ffi"] = {
      "version()": price("f()", { f: get("shmc_version", []) }),
      "send u8": price("f(h, msg, 64, 0)", { ...env, f: send }),
      // node:ffi takes a pointer or 64-bit integer only as a bigint (a number is a TypeError).
      "send number": null,
      "send bigint": price("f(h, big, 64, 0)", { ...env, f: get("shmc_try_send", ["i32", "pointer", "u32", "u32"]) }),
      pair: price("(f(u, msg, 64, 0), g(s, into, 64))", { ...env, f: send, g: get("shmc_try_recv", ["i32", "buffer", "u32"]) }),
    };
  }
  addon.shmc_detach(sub);
  addon.shmc_destroy(uni);
  addon.shmc_destroy(bcast);
  console.log(JSON.stringify({ node: process.version, routes }));
}

// ---- the driver ---------------------------------------------------------------------

function build() {
  if (!existsSync(path.join(ROOT, "build", "CMakeCache.txt"))) {
    execFileSync("cmake", ["-S", ROOT, "-B", path.join(ROOT, "build")], { stdio: "inherit" });
  }
  execFileSync("cmake", ["--build", path.join(ROOT, "build"), "-j2", "--target", "shmchan", "shmchan_node"], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  mkdirSync(OUT, { recursive: true });
  const headers = path.join(ROOT, "node_modules", "node-api-headers", "include");
  execFileSync("cc", [
    "-O2", "-shared", "-fPIC", "-Wall", "-Wextra", "-Werror", `-I${headers}`,
    path.join(ROOT, "bench", "ffi", "variants.c"), "-o", VARIANTS, "-ldl",
  ], { stdio: "inherit" });
  if (!existsSync(path.join(DEPS, "node_modules", "koffi", "package.json"))) {
    // --ignore-scripts: koffi's prebuilt binary must load without its install script.
    execFileSync("npm", [
      "install", "--prefix", DEPS, "--no-save", "--no-package-lock", "--no-audit", "--no-fund",
      "--ignore-scripts", "--loglevel=error", `koffi@${KOFFI_VERSION}`,
    ], { stdio: "inherit" });
  }
}

function fmt(x) {
  if (x === undefined) return "—";
  if (x === null) return "n/a";
  return x < 10 ? x.toFixed(1) : x.toFixed(0);
}

async function main() {
  if (process.argv.includes("--child")) return child();
  build();
  const { COMPILED_LINES, NODE_LINES, nodeBinary } = await import(path.join(ROOT, "scripts", "node-lines.mjs"));
  const cases = ["version()", "send u8", "send number", "send bigint", "pair"];
  const rows = [];
  for (const line of Object.keys(NODE_LINES)) {
    const bin = nodeBinary(line);
    const args = ["--no-warnings", fileURLToPath(import.meta.url), "--child", DEPS];
    if (QUICK) args.push("--quick");
    console.error(`measuring under Node ${NODE_LINES[line]} ...`);
    const r = spawnSync(bin, args, { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
    if (r.status !== 0) throw new Error(`the Node ${line} child failed (${r.status ?? r.signal})`);
    const { node, routes } = JSON.parse(r.stdout.trim().split("\n").pop());
    for (const [route, figures] of Object.entries(routes)) rows.push({ node, route, figures });
  }
  const wakes = [];
  for (const line of Object.keys(NODE_LINES)) {
    const bin = nodeBinary(line);
    let script = path.join(ROOT, "bench", "bench.ts");
    if (COMPILED_LINES.has(line)) {
      execFileSync(process.execPath, [path.join(ROOT, "scripts", "compile-tests.mjs")], { stdio: ["ignore", "ignore", "inherit"] });
      script = path.join(ROOT, "build", "es2022", "bench", "bench.js");
    }
    const p50 = {};
    for (const k of ["rt-shmc-park", "rt-shmc-await", "rt-net"]) {
      p50[k] = [];
      for (let i = 0; i < WAKE_REPEATS; i++) {
        console.error(`wake path under Node ${NODE_LINES[line]}: ${k} ...`);
        const r = spawnSync(bin, [script, k, ...(QUICK ? ["--quick"] : [])], { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
        if (r.status !== 0) throw new Error(`bench.ts ${k} under Node ${line} failed (${r.status ?? r.signal})`);
        p50[k].push(JSON.parse(r.stdout.trim().split("\n").pop()).p50_us);
      }
    }
    wakes.push({ node: `v${NODE_LINES[line]}`, p50 });
  }
  const lines = [
    `ns per call, median of ${ROUNDS} rounds of ${CALLS.toLocaleString("en")} calls; \`node bench/ffi.mjs${QUICK ? " --quick" : ""}\`.`,
    "",
    `| Node | route | ${cases.join(" | ")} |`,
    `|---|---|${cases.map(() => "---:").join("|")}|`,
  ];
  for (const { node, route, figures } of rows) {
    lines.push(`| ${node} | ${route} | ${cases.map((c) => fmt(figures[c])).join(" | ")} |`);
  }
  lines.push(
    "",
    `64 B round trip between two Node processes, p50 in µs (bench/bench.ts), median of ${WAKE_REPEATS} run${WAKE_REPEATS > 1 ? "s (each run)" : ""}:`,
    "",
    "| Node | parked (doorbell) | spin, then park | node:net |",
    "|---|---:|---:|---:|",
  );
  // Sleeping round trips are bimodal on a VM (see bench/README.md): every run is shown.
  const cell = (runs) => {
    const m = [...runs].sort((a, b) => a - b)[runs.length >> 1];
    return runs.length > 1 ? `${fmt(m)} (${runs.map(fmt).join(", ")})` : fmt(m);
  };
  for (const { node, p50 } of wakes) {
    lines.push(`| ${node} | ${cell(p50["rt-shmc-park"])} | ${cell(p50["rt-shmc-await"])} | ${cell(p50["rt-net"])} |`);
  }
  console.log(lines.join("\n"));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
