// Compiles the library, its test suite, the examples and bench/bench.ts to
// ES2022 JavaScript in build/es2022/ (tsc, the compiler of `npm run
// typecheck`), for runtimes that cannot run the sources themselves: Node 22
// has no `using` declarations.
// The tree keeps its layout, with build/ and node_modules/ linked in, so
// paths relative to a file (the C library, the runtimes) hold there too.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "build", "es2022");

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
// The type-checked sources, plus the JavaScript benchmarks (bench/ffi.mjs runs them under Node 22).
const config = join(root, "build", "tsconfig.es2022.json");
writeFileSync(config, JSON.stringify({
  extends: "../tsconfig.json",
  include: ["../mod.ts", "../src/**/*.ts", "../tests/**/*.ts", "../examples/**/*.ts", "../bench/bench.ts"],
}));
const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
const r = spawnSync(process.execPath, [
  tsc, "-p", config, "--noEmit", "false", "--noCheck",
  "--target", "ES2022", "--rootDir", root, "--outDir", out, "--rewriteRelativeImportExtensions",
], { cwd: root, stdio: "inherit" });
if (r.status !== 0) process.exit(r.status ?? 1);
symlinkSync("..", join(out, "build"));
// What the compiled code and the tests read beside the sources.
copyFileSync(join(root, "src", "prebuilds.json"), join(out, "src", "prebuilds.json"));
for (const file of ["package.json", "README.md"]) symlinkSync(join("..", "..", file), join(out, file));
symlinkSync(join("..", "..", "node_modules"), join(out, "node_modules"));
console.log(`compiled the sources and tests into ${out}`);
