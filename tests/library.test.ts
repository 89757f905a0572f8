/** Loading the C library: the default path, SHMCHAN_LIB, and a missing library. */
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { Channel, libraryVersion } from "../mod.ts";
import { peer, root, runtimes, uniqueKey } from "./helpers.ts";

describe("the C library", () => {
  test("is found next to the package and reports its version", () => {
    const [major, minor, patch] = libraryVersion();
    assert.ok([major, minor, patch].every((n) => Number.isInteger(n) && n >= 0));
    assert.ok(major + minor + patch > 0, "version 0.0.0");
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

    test(`${rt}: a missing library is an Error that says how to build it`, { timeout: 60_000 }, async () => {
      const child = peer(rt, ["attach", 1, "recv"], { env: { SHMCHAN_LIB: "/nonexistent/libshmchan.so" } });
      const line = await child.next<{ ok: boolean; code: string }>();
      assert.equal(line.ok, false);
      assert.match(line.code, /^Error: shmchan: cannot load the C library \/nonexistent\/libshmchan\.so/);
      assert.match(line.code, /npm install/);
      assert.match(line.code, /npm run build/);
      assert.equal(await child.exit(), 0);
    });
  }
});
