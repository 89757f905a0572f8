/**
 * The package as its users get it (`npm run test:package`, part of `npm test`).
 *
 * `npm pack`, then, in a temporary folder, a fresh Bun app (`bun init -y`,
 * `bun add ./shmchan-<v>.tgz`) and a fresh Deno app (a package.json
 * dependency on the tarball, deno.json `nodeModulesDir: "manual"`,
 * `npm install --ignore-scripts`) install it with install scripts disabled
 * and with no CMake, compiler or make on PATH (stand-ins that record any call
 * are there instead). Each app type-checks as generated (and with
 * skipLibCheck off), and a producer in one runtime sends to a consumer in the
 * other, both importing "shmchan" by name; the consumer's process maps the
 * prebuilt library from its own node_modules. Without that prebuilt library
 * the error gives a cmake command, and what it builds is used. Then C: a program linked
 * against the prebuilt library with an rpath, and one built against
 * `cmake --install` of the package's sources through pkg-config.
 *
 * A fresh Node app (a package.json dependency on the tarball, `npm install
 * --ignore-scripts`, tsc with Node's types) is the third. To add a runtime,
 * add an entry to APPS: every ordered pair of apps exchanges messages.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { highestGlibc, readElf } from "../../scripts/elf.mjs";
import { sourcesHash } from "../../scripts/prebuild.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const spec = JSON.parse(readFileSync(join(root, "src", "prebuilds.json"), "utf8"));
const hostPlatform = `${process.platform}-${process.arch}`;
const devBin = (name) => realpathSync(join(root, "node_modules", ".bin", name));
/** Tools a user's machine may lack: called, they fail and leave their name in trap.log. */
const TRAPPED = ["cmake", "ctest", "make", "gmake", "cc", "gcc", "clang", "c99", "zig", "node-gyp"];
/** The tarball's files must match one of these; `npm pack` must stay small. */
const ALLOWED = [
  /^(package\.json|README\.md|LICENSE|CHANGELOG\.md|CMakeLists\.txt)$/,
  /^dist\/(cli\/)?[a-z_]+\.(js|d\.ts|json)$/,
  /^prebuilds\/manifest\.json$/,
  new RegExp(
    `^prebuilds\\/(${Object.keys(spec.platforms).join("|")})\\/(${
      spec.artifacts.map((a) => a.file.replace(".", "\\.")).join("|")
    })$`,
  ),
  /^csrc\/[a-z_]+\.(c|h|map|pc\.in|md)$/,
  // The Node addon's sources, for a source build (CMakeLists.txt adds csrc/node).
  /^csrc\/node\/(shmchan_node\.c|CMakeLists\.txt)$/,
];
// About 230 kB with zero copy (its C file, the header's docs, both prebuilt
// libraries and addons, the README section), the shmchan subcommands and the
// inspection API (csrc/inspect.c).
const MAX_TARBALL_BYTES = 260_000;
/** The Node types of the fresh Node app, pinned like everything else here. */
const NODE_TYPES = "24.19.4";

let tmp, tarball, userEnv, trapLog;

/** Runs a command to completion; fails the test with its output unless it exits 0. */
function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: "utf8", env: userEnv, ...opts });
  const where = `${cmd} ${args.join(" ")} (in ${opts.cwd ?? process.cwd()})`;
  assert.ifError(r.error);
  assert.equal(r.status, 0, `${where} exited ${r.status}\n${r.stdout}\n${r.stderr}`);
  return r;
}

const write = (path, text) => (mkdirSync(dirname(path), { recursive: true }), writeFileSync(path, text));

/**
 * The two scripts of every app; they import "shmchan" by name. `args` is how
 * the app's runtime gives the command-line arguments, with its own types.
 */
const appSources = (args) => ({
  "consumer.ts": `import { Channel, libraryVersion } from "shmchan";

// consumer.ts <key> <count>: create a channel, attach to receive, print
// {ready}, then the <count> messages that arrive.
const [keyArg, countArg] = ${args};
const key = BigInt(keyArg ?? "0");
const count = Number(countArg ?? "0");
const owner = Channel.create({ key });
const sub = Channel.attach({ key }, "recv");
console.log(JSON.stringify({ ready: true, version: libraryVersion().join(".") }));
const messages: string[] = [];
for (let i = 0; i < count; i++) messages.push(new TextDecoder().decode(await sub.recv({ timeout: 20_000 })));
sub.detach();
owner.destroy();
console.log(JSON.stringify({ messages }));
`,
  "producer.ts": `import { Channel, type Subscriber } from "shmchan";

// producer.ts <key> <name> <count>: attach to send, send "<name> <i>" <count> times.
const [keyArg, name, countArg] = ${args};
const key = BigInt(keyArg ?? "0");
const count = Number(countArg ?? "0");
const pub: Subscriber = Channel.attach({ key }, "send");
for (let i = 0; i < count; i++) await pub.send(\`\${name} \${i}\`, { timeout: 20_000 });
pub.detach();
console.log(JSON.stringify({ sent: count }));
`,
  "holder.ts": `import { Channel } from "shmchan";

// holder.ts <key> <sent> <received>: create a channel, send <sent> messages
// to a receiver of its own, receive <received> of them, print {ready, id},
// then stay alive until killed.
const [keyArg, sentArg, receivedArg] = ${args};
const key = BigInt(keyArg ?? "0");
const owner = Channel.create({ key, ringEntries: 64 });
const sub = Channel.attach({ key }, "recv");
for (let i = 0; i < Number(sentArg ?? "0"); i++) owner.trySend(\`message \${i}\`);
for (let i = 0; i < Number(receivedArg ?? "0"); i++) sub.tryRecv();
console.log(JSON.stringify({ ready: true, id: owner.id }));
(globalThis as { keep?: unknown }).keep = [owner, sub];
setInterval(() => {}, 1 << 30);
`,
  "attach.ts": `import { Channel, ChannelError } from "shmchan";

// attach.ts <key>: try to attach a receiver: {ok: true} or {ok: false, code}.
const [keyArg] = ${args};
try {
  Channel.attach({ key: BigInt(keyArg ?? "0") }, "recv").detach();
  console.log(JSON.stringify({ ok: true }));
} catch (err) {
  console.log(JSON.stringify({ ok: false, code: err instanceof ChannelError ? err.code : String(err) }));
}
`,
});

/** A tsconfig that extends the app's own with skipLibCheck off. */
const STRICT_TSCONFIG = JSON.stringify({ extends: "./tsconfig.json", compilerOptions: { skipLibCheck: false } });

/**
 * Each app: how to create it (with the tarball installed), how to
 * type-check it, the command line that runs one of its scripts, and how
 * its scripts read their arguments.
 */
const APPS = {
  bun: {
    setup(dir) {
      mkdirSync(dir);
      run("bun", ["init", "-y"], { cwd: dir });
      // bun init asks for "latest" types: pin them to this repository's versions.
      const app = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
      app.devDependencies = {
        "@types/bun": pkg.devDependencies["bun-types"],
        typescript: pkg.devDependencies.typescript,
      };
      writeFileSync(join(dir, "package.json"), JSON.stringify(app, null, 2));
      run("bun", ["install", "--ignore-scripts"], { cwd: dir });
      run("bun", ["add", "--ignore-scripts", `./${relative(dir, tarball)}`], { cwd: dir });
      writeFileSync(join(dir, "tsconfig.strict.json"), STRICT_TSCONFIG);
    },
    typecheck(dir) {
      run(join(dir, "node_modules", ".bin", "tsc"), ["--noEmit", "-p", "tsconfig.json"], { cwd: dir });
      run(join(dir, "node_modules", ".bin", "tsc"), ["--noEmit", "-p", "tsconfig.strict.json"], { cwd: dir });
      run("bun", ["check"], { cwd: dir });
      run("bun", ["check", "-p", "tsconfig.strict.json"], { cwd: dir });
    },
    command: (script, args) => ["bun", ["run", script, ...args]],
    args: "process.argv.slice(2)",
  },
  deno: {
    setup(dir) {
      mkdirSync(dir);
      write(
        join(dir, "package.json"),
        JSON.stringify({
          name: "deno-app",
          private: true,
          type: "module",
          dependencies: { shmchan: `file:${relative(dir, tarball)}` },
        }),
      );
      write(join(dir, "deno.json"), JSON.stringify({ nodeModulesDir: "manual" }));
      run("npm", ["install", "--ignore-scripts", "--no-audit", "--no-fund"], { cwd: dir });
    },
    typecheck(dir) {
      run("deno", ["check", "consumer.ts", "producer.ts"], { cwd: dir });
    },
    // The flags the README gives.
    command: (
      script,
      args,
    ) => ["deno", [
      "run",
      "--allow-ffi",
      "--allow-net",
      "--allow-read=/tmp",
      "--allow-write=/tmp",
      "--allow-env=SHMCHAN_LIB",
      script,
      ...args,
    ]],
    args: "Deno.args",
  },
  node: {
    setup(dir) {
      mkdirSync(dir);
      write(
        join(dir, "package.json"),
        JSON.stringify({
          name: "node-app",
          private: true,
          type: "module",
          dependencies: { shmchan: `file:${relative(dir, tarball)}` },
          devDependencies: { "@types/node": NODE_TYPES, typescript: pkg.devDependencies.typescript },
        }),
      );
      // As `tsc --init` would for Node: Node's module rules, .ts imports allowed (Node strips the types).
      write(
        join(dir, "tsconfig.json"),
        JSON.stringify({
          compilerOptions: {
            target: "esnext",
            module: "nodenext",
            strict: true,
            noEmit: true,
            allowImportingTsExtensions: true,
            erasableSyntaxOnly: true,
            types: ["node"],
            skipLibCheck: true,
          },
        }),
      );
      writeFileSync(join(dir, "tsconfig.strict.json"), STRICT_TSCONFIG);
      run("npm", ["install", "--ignore-scripts", "--no-audit", "--no-fund"], { cwd: dir });
    },
    typecheck(dir) {
      run(join(dir, "node_modules", ".bin", "tsc"), ["-p", "tsconfig.json"], { cwd: dir });
      run(join(dir, "node_modules", ".bin", "tsc"), ["-p", "tsconfig.strict.json"], { cwd: dir });
    },
    // Node 22.18+ runs .ts files outside node_modules by stripping their types.
    command: (script, args) => ["node", [script, ...args]],
    args: "process.argv.slice(2)",
  },
};

const appDir = (name) => join(tmp, `${name}-app`);

/** Starts an app's script; resolves lines of JSON and the exit. */
function start(name, script, args) {
  const [cmd, argv] = APPS[name].command(script, args);
  const child = spawn(cmd, argv, { cwd: appDir(name), env: userEnv, stdio: ["ignore", "pipe", "pipe"] });
  let out = "", err = "";
  const waiting = [];
  const lines = [];
  child.stdout.setEncoding("utf8").on("data", (chunk) => {
    out += chunk;
    let nl;
    while ((nl = out.indexOf("\n")) >= 0) {
      const line = out.slice(0, nl);
      out = out.slice(nl + 1);
      if (!line.trim()) continue;
      const value = JSON.parse(line);
      const w = waiting.shift();
      if (w) w(value);
      else lines.push(value);
    }
  });
  child.stderr.setEncoding("utf8").on("data", (chunk) => (err += chunk));
  const exit = new Promise((resolve) => child.on("close", (code) => resolve(code)));
  const guard = (p, what) =>
    Promise.race([
      p,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error(`${name} ${script}: ${what} took over 30 s; stderr:\n${err}`)), 30_000)
          .unref()
      ),
    ]);
  return {
    pid: child.pid,
    next: () => guard(lines.length ? Promise.resolve(lines.shift()) : new Promise((r) => waiting.push(r)), "a line"),
    exit: () => guard(exit, "exit"),
    get stderr() {
      return err;
    },
  };
}

/** The libshmchan.so files that process `pid` has mapped. */
function mappedLibraries(pid) {
  const maps = readFileSync(`/proc/${pid}/maps`, "utf8");
  return [...new Set(maps.split("\n").map((l) => l.split(/\s+/)[5]).filter((p) => p && p.endsWith("/libshmchan.so")))];
}

const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");

before(() => {
  tmp = realpathSync(mkdtempSync(join(tmpdir(), "shmchan-pack-")));
  // The maintainer's side: pack from this checkout (prepack builds dist/ and prebuilds/).
  const packed = spawnSync("npm", ["pack", "--pack-destination", tmp], { cwd: root, encoding: "utf8" });
  assert.equal(packed.status, 0, `npm pack failed:\n${packed.stdout}\n${packed.stderr}`);
  tarball = join(tmp, `shmchan-${pkg.version}.tgz`);
  assert.ok(existsSync(tarball), `npm pack made no ${tarball}:\n${packed.stdout}`);

  // The user's side: a PATH with the runtimes and npm, and traps for build tools.
  const tools = join(tmp, "bin");
  mkdirSync(tools);
  trapLog = join(tmp, "trap.log");
  symlinkSync(process.execPath, join(tools, "node"));
  const npmCli = spawnSync("sh", ["-c", "command -v npm"], { encoding: "utf8" }).stdout.trim();
  symlinkSync(realpathSync(npmCli), join(tools, "npm"));
  symlinkSync(devBin("bun"), join(tools, "bun"));
  symlinkSync(devBin("deno"), join(tools, "deno"));
  // A shell, as every machine has (npm exec runs its commands through sh).
  symlinkSync("/bin/sh", join(tools, "sh"));
  for (const name of TRAPPED) {
    const trap = join(tools, name);
    writeFileSync(trap, `#!/bin/sh\necho "${name} $*" >> "${trapLog}"\nexit 127\n`);
    chmodSync(trap, 0o755);
  }
  userEnv = { ...process.env, PATH: tools, NO_COLOR: "1" };
  delete userEnv.SHMCHAN_LIB;

  for (const [name, app] of Object.entries(APPS)) {
    app.setup(appDir(name));
    for (const [file, text] of Object.entries(appSources(app.args))) writeFileSync(join(appDir(name), file), text);
  }
});

after(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe("the tarball", () => {
  test(`holds only what users need, under ${MAX_TARBALL_BYTES / 1000} kB`, () => {
    const list = run("tar", ["-tzf", tarball], { env: process.env }).stdout.split("\n").filter(Boolean);
    const files = list.filter((f) => !f.endsWith("/")).map((f) => f.replace(/^package\//, ""));
    const stray = files.filter((f) => !ALLOWED.some((re) => re.test(f)));
    assert.deepEqual(stray, [], `files nobody needs: ${stray.join(", ")}`);
    const required = [
      "package.json",
      "README.md",
      "LICENSE",
      "CHANGELOG.md",
      "CMakeLists.txt",
      "dist/index.js",
      "dist/index.d.ts",
      "csrc/shmchan.h",
      "prebuilds/manifest.json",
      ...Object.keys(spec.platforms).flatMap((p) => spec.artifacts.map((a) => `prebuilds/${p}/${a.file}`)),
    ];
    for (const f of required) assert.ok(files.includes(f), `${f} is missing from the tarball`);
    assert.ok(statSync(tarball).size < MAX_TARBALL_BYTES, `the tarball has ${statSync(tarball).size} bytes`);
  });

  test("declares no install-time script, and is public, ESM, Linux x64/arm64", () => {
    const installed = JSON.parse(readFileSync(join(appDir("deno"), "node_modules", "shmchan", "package.json"), "utf8"));
    for (const hook of ["preinstall", "install", "postinstall", "prepare"]) {
      assert.equal(installed.scripts?.[hook], undefined, `scripts.${hook} would run (or be flagged) on install`);
    }
    assert.equal(installed.private, undefined);
    assert.equal(installed.type, "module");
    assert.deepEqual(installed.exports["."], { types: "./dist/index.d.ts", default: "./dist/index.js" });
    assert.deepEqual(installed.os, ["linux"]);
    assert.deepEqual(installed.cpu, ["x64", "arm64"]);
  });

  test("its prebuilt libraries are built from these sources, for their machine, for glibc " + spec.glibc, () => {
    const dir = join(appDir("deno"), "node_modules", "shmchan");
    const manifest = JSON.parse(readFileSync(join(dir, "prebuilds", "manifest.json"), "utf8"));
    assert.equal(manifest.sources, sourcesHash(), "prebuilds/manifest.json names other sources: a stale prebuilt");
    assert.equal(manifest.package, pkg.version);
    const [fx, fy] = spec.glibc.split(".").map(Number);
    for (const [name, p] of Object.entries(spec.platforms)) {
      for (const a of spec.artifacts) {
        const file = `${name}/${a.file}`;
        const bytes = readFileSync(join(dir, "prebuilds", file));
        assert.equal(sha256(bytes), manifest.files[file]?.sha256, `${file} is not the file the manifest names`);
        const elf = readElf(bytes);
        assert.equal(elf.machine, p.machine, file);
        const [x, y] = highestGlibc(elf);
        assert.ok(x < fx || (x === fx && y <= fy), `${file} needs GLIBC_${x}.${y}`);
      }
    }
  });
});

describe("apps that depend on it", () => {
  for (const name of Object.keys(APPS)) {
    test(`${name}: installed without running anything, type-checks (skipLibCheck on and off)`, () => {
      const installed = join(appDir(name), "node_modules", "shmchan");
      assert.ok(existsSync(join(installed, "dist", "index.js")));
      assert.ok(!existsSync(join(installed, "build")), "an install step built the library");
      APPS[name].typecheck(appDir(name));
      assert.ok(
        !existsSync(trapLog),
        `build tools were called:\n${existsSync(trapLog) ? readFileSync(trapLog, "utf8") : ""}`,
      );
    });
  }

  test("the shmchan command runs from the installed package: npx in the Node app, bunx in the Bun app", () => {
    const viaNpx = run("npm", ["exec", "--offline", "--", "shmchan", "--help"], { cwd: appDir("node") });
    assert.match(viaNpx.stdout, /^usage: shmchan <command>/);
    const viaBunx = run("bun", ["x", "shmchan", "--help"], { cwd: appDir("bun") });
    assert.match(viaBunx.stdout, /^usage: shmchan <command>/);
    assert.ok(!existsSync(trapLog), "build tools were called");
  });

  test("npx shmchan ls, stat and rm look at and remove a channel another process made", async () => {
    const key = BigInt(`0x${randomBytes(6).toString("hex")}`) + 1n;
    const holder = start("bun", "holder.ts", [String(key), "5", "3"]);
    try {
      const { id } = await holder.next();
      const npx = (...args) => spawnSync("npm", ["exec", "--offline", "--", "shmchan", ...args], {
        cwd: appDir("node"),
        encoding: "utf8",
        env: userEnv,
      });
      const ls = run("npm", ["exec", "--offline", "--", "shmchan", "ls", "--json"], { cwd: appDir("node") });
      const entry = JSON.parse(ls.stdout).find((c) => c.key === String(key));
      assert.ok(entry, `listed:\n${ls.stdout}`);
      assert.equal(entry.id, id);
      assert.equal(entry.pid, holder.pid);
      assert.equal(entry.members, 2);
      assert.equal(entry.waiting, 2);
      const viaBunx = run("bun", ["x", "shmchan", "ls", "--json"], { cwd: appDir("bun") });
      assert.ok(JSON.parse(viaBunx.stdout).some((c) => c.key === String(key)), viaBunx.stdout);
      const stat = JSON.parse(run("npm", ["exec", "--offline", "--", "shmchan", "stat", String(key), "--json"], {
        cwd: appDir("node"),
      }).stdout);
      assert.equal(stat.key, String(key));
      assert.equal(stat.counters.sent, 5);
      assert.equal(stat.counters.received, 3);
      assert.equal(stat.counters.sentBytes, 5 * "message 0".length);
      assert.equal(stat.waiting, 2);
      const rm = npx("rm", `0x${key.toString(16)}`);
      assert.equal(rm.status, 0, rm.stderr);
      const attach = start("node", "attach.ts", [String(key)]);
      assert.deepEqual(await attach.next(), { ok: false, code: "ENOENT" }, attach.stderr);
      assert.equal(await attach.exit(), 0, attach.stderr);
      const again = npx("stat", String(key));
      assert.equal(again.status, 1);
      assert.match(again.stderr, /ENOENT/);
      assert.ok(!existsSync(trapLog), "build tools were called");
    } finally {
      process.kill(holder.pid, "SIGKILL");
      await holder.exit();
    }
  });

  for (const producer of Object.keys(APPS)) {
    for (const consumer of Object.keys(APPS)) {
      if (producer === consumer) continue;
      test(`${producer} producer → ${consumer} consumer, importing "shmchan" by name`, async () => {
        const key = BigInt(`0x${randomBytes(6).toString("hex")}`) + 1n;
        const count = 20;
        const rx = start(consumer, "consumer.ts", [String(key), String(count)]);
        const ready = await rx.next();
        assert.deepEqual(ready, { ready: true, version: pkg.version }, rx.stderr);
        const prebuilt = join(appDir(consumer), "node_modules", "shmchan", "prebuilds", hostPlatform, "libshmchan.so");
        assert.deepEqual(mappedLibraries(rx.pid), [prebuilt]);
        const tx = start(producer, "producer.ts", [String(key), producer, String(count)]);
        assert.deepEqual(await tx.next(), { sent: count }, tx.stderr);
        const expected = Array.from({ length: count }, (_, i) => `${producer} ${i}`);
        assert.deepEqual(await rx.next(), { messages: expected }, rx.stderr);
        assert.equal(await tx.exit(), 0, tx.stderr);
        assert.equal(await rx.exit(), 0, rx.stderr);
        // The README's command lines run quietly.
        assert.equal(tx.stderr, "");
        assert.equal(rx.stderr, "");
        assert.ok(!existsSync(trapLog), "build tools were called");
      });
    }
  }
});

describe("where no prebuilt library fits", () => {
  test("the error gives the source build, and the library it builds is used", async () => {
    const installed = join(appDir("bun"), "node_modules", "shmchan");
    const prebuilt = join(installed, "prebuilds", hostPlatform);
    const aside = join(tmp, "prebuilt-aside");
    // As on a platform without a prebuilt library: this one's is not there.
    renameSync(prebuilt, aside);
    try {
      writeFileSync(
        join(appDir("bun"), "attach.ts"),
        'import { Channel } from "shmchan";\n' +
          'try { Channel.attach({ key: 1n }, "recv"); } catch (err) { console.log(String(err)); }\n',
      );
      const said = run("bun", ["run", "attach.ts"], { cwd: appDir("bun") }).stdout;
      const command = /build it from source with `([^`]+)`/.exec(said)?.[1];
      assert.ok(command, `no build command in: ${said}`);
      assert.match(command, new RegExp(`^cmake -S ${installed}/ -B ${installed}/build `));
      // The user runs it, with CMake and a compiler.
      run("sh", ["-c", command], { env: process.env });
      const key = BigInt(`0x${randomBytes(6).toString("hex")}`) + 1n;
      const rx = start("bun", "consumer.ts", [String(key), "1"]);
      assert.deepEqual(await rx.next(), { ready: true, version: pkg.version }, rx.stderr);
      assert.deepEqual(mappedLibraries(rx.pid), [join(installed, "build", "libshmchan.so")]);
      const tx = start("deno", "producer.ts", [String(key), "deno", "1"]);
      assert.deepEqual(await tx.next(), { sent: 1 }, tx.stderr);
      assert.deepEqual(await rx.next(), { messages: ["deno 0"] }, rx.stderr);
      assert.equal(await rx.exit(), 0);
      assert.equal(await tx.exit(), 0);
    } finally {
      rmSync(join(installed, "build"), { recursive: true, force: true });
      renameSync(aside, prebuilt);
    }
  });
});

describe("C programs", () => {
  const C_APP = `#include <shmchan.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* A channel to itself: create, attach, send, receive; print the version. */
int main(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	uint64_t key = ((uint64_t)t.tv_nsec << 20) ^ (uint64_t)t.tv_sec ^ 0x5eed;
	int owner = shmc_create(key ? key : 1, SHMC_UNICAST, 8, 64, 0600, 0);
	int sub = owner > 0 ? shmc_attach_key(key ? key : 1, SHMC_BOTH) : owner;
	char buf[64];
	int n = sub > 0 ? shmc_try_send(sub, "hello", 5, 0) : sub;
	n = n > 0 ? shmc_try_recv(sub, buf, sizeof(buf)) : n;
	if (n != 5 || memcmp(buf, "hello", 5) != 0) {
		printf("failed: %s\\n", shmc_strerror(n));
		return 1;
	}
	shmc_detach(sub);
	shmc_destroy(owner);
	int v = shmc_version();
	printf("%d.%d.%d\\n", v >> 16, (v >> 8) & 255, v & 255);
	return 0;
}
`;
  // The C side has CMake and a compiler: the maintainer's PATH.
  const cEnv = () => {
    const env = { ...process.env };
    delete env.LD_LIBRARY_PATH;
    return env;
  };

  test("linked against the prebuilt library with an rpath, it runs without LD_LIBRARY_PATH", () => {
    const installed = join(appDir("bun"), "node_modules", "shmchan");
    const libdir = join(installed, "prebuilds", hostPlatform);
    const src = join(tmp, "c-rpath", "app.c");
    write(src, C_APP);
    const exe = join(tmp, "c-rpath", "app");
    run("cc", [src, `-I${installed}/csrc`, `-L${libdir}`, "-lshmchan", `-Wl,-rpath,${libdir}`, "-o", exe], {
      env: cEnv(),
    });
    assert.equal(run(exe, [], { env: cEnv() }).stdout, `${pkg.version}\n`);
  });

  test("the package's sources build with CMake, install, and link through pkg-config", () => {
    const installed = join(appDir("bun"), "node_modules", "shmchan");
    const build = join(tmp, "c-build"), prefix = join(tmp, "c-prefix");
    const env = cEnv();
    run("cmake", ["-S", installed, "-B", build, "-DCMAKE_BUILD_TYPE=Release", "-DSHMCHAN_TESTS=OFF"], { env });
    run("cmake", ["--build", build, "-j2"], { env });
    run("cmake", ["--install", build, "--prefix", prefix], { env });
    const pcPath = readdirSync(prefix, { recursive: true }).find((f) => String(f).endsWith("pkgconfig/shmchan.pc"));
    assert.ok(pcPath, "cmake --install wrote no shmchan.pc");
    const pcEnv = { ...env, PKG_CONFIG_PATH: dirname(join(prefix, String(pcPath))) };
    assert.equal(run("pkg-config", ["--modversion", "shmchan"], { env: pcEnv }).stdout.trim(), pkg.version);
    const flags = run("pkg-config", ["--cflags", "--libs", "shmchan"], { env: pcEnv }).stdout.trim().split(/\s+/);
    const src = join(tmp, "c-pc", "app.c");
    write(src, C_APP);
    const exe = join(tmp, "c-pc", "app");
    run("cc", [src, ...flags, "-o", exe], { env });
    assert.equal(run(exe, [], { env }).stdout, `${pkg.version}\n`);
  });
});
