// The Node.js lines shmchan supports, each pinned to an exact version, and
// the binaries to run them. `npm test` uses the `node` devDependency (line
// 24); CI also runs the suite under the others:
//
//   node scripts/node-lines.mjs            run the suite under every line
//   node scripts/node-lines.mjs 22 26      ... under these lines only
//   node scripts/node-lines.mjs --path 26  print the binary of a line (installs it)
//
// A line other than the devDependency's is installed on first use from the
// npm registry (the node-linux-<arch> package at the pinned version) into
// build/node-lines/<version>/. Node 22 cannot parse `using` declarations,
// which the tests use: under it the suite runs as compiled by
// scripts/compile-tests.mjs (tsc, target ES2022), the same files otherwise.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));

/** Supported lines and their pinned versions; 24 is the devDependency. */
export const NODE_LINES = {
  24: pkg.devDependencies.node,
  22: "22.23.3",
  26: "26.10.0",
};

/** Lines whose V8 cannot run `using` declarations: the tests run compiled. */
export const COMPILED_LINES = new Set(["22"]);

function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit", ...opts });
  if (r.error) throw new Error(`cannot run ${cmd}: ${r.error.message}`);
  return r.status ?? 1;
}

/** The node binary of a line (installing it on first use). */
export function nodeBinary(line) {
  const version = NODE_LINES[line];
  if (!version) throw new Error(`unknown Node line ${line}: use one of ${Object.keys(NODE_LINES).join(", ")}`);
  if (version === pkg.devDependencies.node) {
    const bin = join(root, "node_modules", ".bin", "node");
    if (existsSync(bin)) return bin;
  }
  const arch = { x64: "x64", arm64: "arm64" }[process.arch];
  if (!arch) throw new Error(`no pinned Node binary for ${process.arch}`);
  const dir = join(root, "build", "node-lines", version);
  const name = `node-linux-${arch}`;
  const bin = join(dir, "node_modules", name, "bin", "node");
  if (!existsSync(bin)) {
    const rc = sh("npm", [
      "install", "--prefix", dir, "--no-save", "--no-package-lock", "--no-audit", "--no-fund",
      "--loglevel=error", `${name}@${version}`,
    ], { stdio: ["ignore", "inherit", "inherit"] });
    if (rc !== 0 || !existsSync(bin)) throw new Error(`installing ${name}@${version} failed`);
  }
  return bin;
}

/** Runs the test suite under one line; returns the exit status. */
export function testLine(line) {
  const bin = nodeBinary(line);
  let dir = root;
  if (COMPILED_LINES.has(line)) {
    const rc = sh(process.execPath, [join(root, "scripts", "compile-tests.mjs")]);
    if (rc !== 0) return rc;
    dir = join(root, "build", "es2022");
  }
  const ext = COMPILED_LINES.has(line) ? "js" : "ts";
  console.log(`\n== the suite under Node ${line} (${NODE_LINES[line]})${ext === "js" ? ", compiled to ES2022" : ""}`);
  return sh(bin, ["--test", "--test-concurrency=1", "--test-reporter=spec", `tests/*.test.${ext}`], { cwd: dir });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  if (args[0] === "--path") {
    console.log(nodeBinary(args[1] ?? "24"));
  } else {
    const lines = args.length ? args : Object.keys(NODE_LINES);
    let failed = 0;
    for (const line of lines) if (testLine(line) !== 0) failed++;
    process.exitCode = failed ? 1 : 0;
  }
}
