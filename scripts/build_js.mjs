// Compiles src/*.ts to dist/*.js and dist/*.d.ts: the JavaScript and the
// declarations of the package (`npm run build:js`; `npm pack` runs it).
//
// tsc rewrites the relative `.ts` imports of the JavaScript to `.js`
// (rewriteRelativeImportExtensions) but leaves them in the declarations; they
// are rewritten here, so that every resolver (tsc's node16 and bundler modes,
// deno check) finds dist/*.d.ts. Then the declarations are checked on their
// own with no runtime's types at all (types: [], lib ESNext + DOM): they must
// need nothing from Deno or Bun.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");
const tsc = join(root, "node_modules", ".bin", "tsc");

function run(cmd, args) {
  console.log(`$ ${cmd} ${args.join(" ")}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit" });
  if (r.error || r.status !== 0) {
    console.error(`build:js: ${cmd} failed${r.error ? `: ${r.error.message}` : ""}`);
    process.exit(r.status || 1);
  }
}

rmSync(dist, { recursive: true, force: true });
run(tsc, ["-p", "tsconfig.build.json"]);

const RELATIVE_TS = /((?:from|import)\s*\(?\s*["'])(\.\.?\/[^"']+)\.ts(["'])/g;
/** Every file under dist/, relative to it (src/cli/ compiles to dist/cli/). */
const walk = (dir, prefix = "") =>
  readdirSync(dir).flatMap((name) =>
    statSync(join(dir, name)).isDirectory() ? walk(join(dir, name), `${prefix}${name}/`) : [`${prefix}${name}`]
  );
const files = walk(dist);
const declarations = files.filter((f) => f.endsWith(".d.ts"));
for (const file of files) {
  const path = join(dist, file);
  let text = readFileSync(path, "utf8");
  if (file.endsWith(".d.ts")) {
    text = text.replace(RELATIVE_TS, "$1$2.js$3");
    writeFileSync(path, text);
  }
  // Whatever tsc left behind must not point at a source file.
  const left = [...text.matchAll(RELATIVE_TS)].map((m) => m[0]);
  if (left.length) {
    console.error(`build:js: ${file} still imports TypeScript sources: ${left.join(", ")}`);
    process.exit(1);
  }
}

// The declarations alone, without Deno's or Bun's types, strict, skipLibCheck off.
const check = mkdtempSync(join(tmpdir(), "shmchan-dts-"));
try {
  writeFileSync(
    join(check, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        target: "ES2022",
        module: "NodeNext",
        moduleResolution: "NodeNext",
        lib: ["ESNext", "DOM"],
        types: [],
        strict: true,
        noEmit: true,
        skipLibCheck: false,
      },
      files: declarations.map((f) => join(dist, f)),
    }),
  );
  run(tsc, ["-p", join(check, "tsconfig.json")]);
} finally {
  rmSync(check, { recursive: true, force: true });
}
console.log(`build:js: dist/ holds ${files.length} files; the declarations need no runtime's types`);
