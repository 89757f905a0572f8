/**
 * Loading the C library: the default path, SHMCHAN_LIB, and a missing or
 * broken library; and the runtime detection's answer to a Node.js too old.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { Channel, libraryVersion } from "../mod.ts";
import { binary, commandFor, ext, peer, root, runtimes, uniqueKey } from "./helpers.ts";

describe("the C library", () => {
  test("is found next to the package and reports its version", () => {
    const [major, minor, patch] = libraryVersion();
    assert.ok([major, minor, patch].every((n) => Number.isInteger(n) && n >= 0));
    assert.ok(major + minor + patch > 0, "version 0.0.0");
  });

  test("reports the version of the package", () => {
    const pkg = JSON.parse(readFileSync(`${root}package.json`, "utf8")) as { version: string };
    assert.equal(libraryVersion().join("."), pkg.version);
  });

  for (const rt of runtimes) {
    test(`${rt}: SHMCHAN_LIB points at another copy of the library`, { timeout: 60_000 }, async () => {
      const dir = mkdtempSync(join(tmpdir(), "shmchan-lib-"));
      try {
        const copy = join(dir, "libshmchan-copy.so");
        copyFileSync(`${root}build/libshmchan.so`, copy);
        const key = uniqueKey();
        using _ch = Channel.create({ key });
        const child = peer(rt, ["attach", key, "recv"], { env: { SHMCHAN_LIB: copy } });
        assert.equal((await child.next()).ok, true, child.stderr);
        assert.equal(await child.exit(), 0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    test(`${rt}: SHMCHAN_LIB naming a missing file is an Error that says so and how to build one`, {
      timeout: 60_000,
    }, async () => {
      const child = peer(rt, ["attach", 1, "recv"], { env: { SHMCHAN_LIB: "/nonexistent/libshmchan.so" } });
      const line = await child.next<{ ok: boolean; code: string }>();
      assert.equal(line.ok, false);
      assert.match(
        line.code,
        /^Error: shmchan: SHMCHAN_LIB points at \/nonexistent\/libshmchan\.so, which does not exist/,
      );
      assert.match(line.code, /cmake -S .* -B .*build .*-DSHMCHAN_TESTS=OFF && cmake --build /);
      assert.equal(await child.exit(), 0);
    });

    test(`${rt}: SHMCHAN_LIB naming a file that is no library is an Error with the loader's reason`, {
      timeout: 60_000,
    }, async () => {
      const child = peer(rt, ["attach", 1, "recv"], { env: { SHMCHAN_LIB: `${root}README.md` } });
      const line = await child.next<{ ok: boolean; code: string }>();
      assert.equal(line.ok, false);
      assert.match(
        line.code,
        /^Error: shmchan: cannot load the C library .*README\.md \(SHMCHAN_LIB\): .*invalid ELF header/,
      );
      assert.equal(await child.exit(), 0);
    });

    test(`${rt}: a checkout whose library is not built says to run npm run build`, {
      timeout: 60_000,
      // Compiled, the sources are the package's JavaScript: the packaging test covers that case.
      skip: ext === ".ts" ? undefined : "the suite runs compiled",
    }, () => {
      // The sources without build/: a fresh checkout before `npm run build`.
      const dir = mkdtempSync(join(tmpdir(), "shmchan-checkout-"));
      try {
        cpSync(`${root}src`, join(dir, "src"), { recursive: true });
        cpSync(`${root}mod.ts`, join(dir, "mod.ts"));
        const script = join(dir, "attach.ts");
        writeFileSync(
          script,
          'import { Channel } from "./mod.ts";\n' +
            'try { Channel.attach({ key: 1n }, "recv"); } catch (err) { console.log(String(err)); }\n',
        );
        const [cmd, args] = commandFor(rt, script, []);
        const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: "1" };
        delete env.SHMCHAN_LIB;
        const r = spawnSync(cmd, args, { cwd: dir, encoding: "utf8", env });
        assert.equal(r.status, 0, r.stderr);
        assert.match(
          r.stdout,
          /^Error: shmchan: the C library .*shmchan-checkout-[^/]*\/build\/libshmchan\.so is not built/,
        );
        assert.match(r.stdout, /run `npm run build` in /);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

/** A Node.js older than 22 on PATH (outside node_modules), such as a system's own. */
function olderNode(): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (!dir || dir.includes("node_modules")) continue;
    const r = spawnSync(join(dir, "node"), ["--version"], { encoding: "utf8" });
    if (r.status === 0 && Number(r.stdout.trim().replace(/^v/, "").split(".")[0]) < 22) return join(dir, "node");
  }
  return undefined;
}

const older = olderNode();

describe("Node.js versions", () => {
  // The installed package is compiled JavaScript, which any Node can load:
  // the detection in src/library.ts must then say what is wrong.
  test(
    "a Node.js older than 22 gets one clear error when it imports shmchan",
    { skip: older ? undefined : "no Node.js older than 22 on PATH", timeout: 60_000 },
    () => {
      let dir: string | undefined;
      let entry = `${root}mod.js`;
      try {
        if (ext === ".ts") {
          dir = mkdtempSync(join(tmpdir(), "shmchan-js-"));
          const tsc = spawnSync(binary("node"), [
            `${root}node_modules/typescript/bin/tsc`,
            "--ignoreConfig",
            "--noCheck",
            "--skipLibCheck",
            "--target",
            "ES2022",
            "--module",
            "ESNext",
            "--moduleResolution",
            "bundler",
            "--allowImportingTsExtensions",
            "--rewriteRelativeImportExtensions",
            "--rootDir",
            root,
            "--outDir",
            dir,
            `${root}mod.ts`,
          ], { encoding: "utf8" });
          assert.equal(tsc.status, 0, tsc.stdout + tsc.stderr);
          copyFileSync(`${root}src/prebuilds.json`, join(dir, "src", "prebuilds.json"));
          writeFileSync(join(dir, "package.json"), '{ "type": "module" }\n');
          entry = join(dir, "mod.js");
        }
        const r = spawnSync(older!, [entry], { encoding: "utf8" });
        const version = spawnSync(older!, ["--version"], { encoding: "utf8" }).stdout.trim();
        assert.equal(r.status, 1, r.stderr);
        assert.equal(r.stdout, "");
        assert.ok(
          r.stderr.includes(`Error: shmchan needs Node.js 22 or newer; this is Node.js ${version}\n`),
          r.stderr,
        );
        assert.doesNotMatch(r.stderr, /ERR_|Cannot find|SyntaxError/);
      } finally {
        if (dir) rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
