/**
 * Error messages lead with their cause: the sizes of a message that is too
 * long, the key or id that attach did not find, the Deno flag that is
 * missing, the runtime that has no backend.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Channel, ChannelError } from "../mod.ts";
import { detectRuntime } from "../src/library.ts";
import { DENO_FLAGS, peer, uniqueKey } from "./helpers.ts";

/** The ChannelError that `fn` throws (or its promise rejects with). */
async function caught(fn: () => unknown): Promise<ChannelError> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof ChannelError, `expected a ChannelError, got ${err}`);
    return err;
  }
  assert.fail("did not throw");
}

describe("EMSGSIZE", () => {
  test("names the message's size and maxMessageSize, for the owner and for a subscriber, in every send", async () => {
    const key = uniqueKey();
    using ch = Channel.create({ key, maxMessageSize: 8 });
    using sub = Channel.attach({ key }, "send");
    // 9 bytes, 9 bytes, 10 bytes of UTF-8 in 5 characters.
    const cases: Array<[unknown, number]> = [["123456789", 9], [new Uint8Array(9), 9], ["ééééé", 10]];
    for (const [who, handle] of [["owner", ch], ["subscriber", sub]] as const) {
      for (const [data, size] of cases) {
        const sends: Array<[string, () => unknown]> = [
          ["trySend", () => handle.trySend(data as string)],
          ["send", () => handle.send(data as string, { timeout: 1000 })],
          ["trySendMany", () => handle.trySendMany([data as string])],
        ];
        for (const [call, fn] of sends) {
          const err = await caught(fn);
          assert.equal(err.code, "EMSGSIZE", `${who} ${call}`);
          assert.match(
            err.message,
            new RegExp(`^EMSGSIZE: message of ${size} bytes, maxMessageSize 8`),
            `${who} ${call}`,
          );
        }
      }
    }
  });
});

describe("ENOENT from attach", () => {
  test("names the key it looked for, in decimal and hex", async () => {
    const key = uniqueKey();
    const err = await caught(() => Channel.attach({ key }, "recv"));
    assert.equal(err.code, "ENOENT");
    assert.equal(err.message, `ENOENT: no live channel with key ${key} (0x${key.toString(16)}) (attach)`);
  });

  test("names the id it looked for", async () => {
    const key = uniqueKey();
    const ch = Channel.create({ key });
    const id = ch.id;
    ch.destroy();
    const err = await caught(() => Channel.attach({ id }, "send"));
    assert.equal(err.code, "ENOENT");
    assert.equal(err.message, `ENOENT: no live channel with id ${id} (attach)`);
  });

  test("other attach errors name the key too", async () => {
    const key = uniqueKey();
    using _ch = Channel.create({ key, mode: 0 });
    const err = await caught(() => Channel.attach({ key }, "recv"));
    assert.equal(err.code, "EACCES");
    assert.match(err.message, new RegExp(`\\(attach to key ${key} \\(0x${key.toString(16)}\\)\\)$`));
  });
});

describe("the runtime", () => {
  test("Node.js, Deno and Bun are told apart by their globals", () => {
    assert.equal(detectRuntime({ Deno: {} }), "deno");
    assert.equal(detectRuntime({ Bun: {}, process: { versions: { node: "24.0.0" } } }), "bun");
    assert.equal(detectRuntime({ process: { versions: { node: "22.0.0" } } }), "node");
  });

  test("a Node.js older than 22 is told the version it needs", () => {
    assert.throws(
      () => detectRuntime({ process: { versions: { node: "20.20.2" } } }),
      { message: "shmchan needs Node.js 22 or newer; this is Node.js v20.20.2" },
    );
  });

  test("a runtime that is none of them gets one sentence", () => {
    assert.throws(
      () => detectRuntime({}),
      { message: "shmchan runs under Node.js 22+, Deno 2 and Bun 1, and this runtime is none of them." },
    );
  });
});

describe("Deno permissions", () => {
  test("without --allow-ffi, the error leads with the missing flag, and says nothing else", {
    timeout: 60_000,
  }, async () => {
    // Neither ffi nor env: the missing ffi flag is the one thing said.
    const flags = DENO_FLAGS.filter((f) => f !== "--allow-ffi" && f !== "--allow-env");
    const child = peer("deno", ["attach", uniqueKey(), "recv"], { denoFlags: flags });
    const line = await child.next<{ ok: boolean; code: string }>();
    assert.equal(line.ok, false);
    assert.match(
      line.code,
      /^Error: shmchan: run Deno with --allow-ffi \(and --allow-net --allow-read=\/tmp --allow-write=\/tmp/,
    );
    assert.doesNotMatch(line.code, /npm (install|run build)/);
    assert.equal(await child.exit(), 0);
    assert.doesNotMatch(child.stderr, /SHMCHAN_LIB/);
  });

  test("without --allow-env, SHMCHAN_LIB is ignored and a notice says so once", { timeout: 60_000 }, async () => {
    const key = uniqueKey();
    using _ch = Channel.create({ key });
    const flags = DENO_FLAGS.filter((f) => f !== "--allow-env");
    // SHMCHAN_LIB names no library: if it were read, the attach would fail.
    const child = peer("deno", ["attach", key, "recv"], {
      denoFlags: flags,
      env: { SHMCHAN_LIB: "/nonexistent/libshmchan.so" },
    });
    assert.equal((await child.next()).ok, true, child.stderr);
    assert.equal(await child.exit(), 0);
    const notices = child.stderr.split("\n").filter((l) => l.includes("SHMCHAN_LIB is not read"));
    assert.equal(notices.length, 1, child.stderr);
    assert.match(notices[0], /^shmchan: SHMCHAN_LIB is not read: .*--allow-env=SHMCHAN_LIB/);
  });

  test("with --deny-env=SHMCHAN_LIB there is no notice", { timeout: 60_000 }, async () => {
    const key = uniqueKey();
    using _ch = Channel.create({ key });
    const flags = [...DENO_FLAGS.filter((f) => f !== "--allow-env"), "--deny-env=SHMCHAN_LIB"];
    const child = peer("deno", ["attach", key, "recv"], { denoFlags: flags });
    assert.equal((await child.next()).ok, true, child.stderr);
    assert.equal(await child.exit(), 0);
    assert.doesNotMatch(child.stderr, /SHMCHAN_LIB/);
  });
});
