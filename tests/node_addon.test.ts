/**
 * The Node addon (csrc/node/shmchan_node.c) checks every call before the C
 * library sees it: too few arguments, a wrong type or a BigInt out of range
 * throw; a length past the end of its buffer, or a misaligned array, returns
 * -EINVAL and does nothing. Node only: Deno and Bun call the library through
 * their own FFI.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Channel } from "../mod.ts";
import { INFO, type Native, SHMC_RECV, SHMC_SEND, STATS } from "../src/backend.ts";
import { errnoOf } from "../src/errors.ts";
import { lib } from "../src/library.ts";
import { runtime, uniqueKey } from "./helpers.ts";

const EINVAL = -errnoOf("EINVAL"), EAGAIN = -errnoOf("EAGAIN");

// deno-lint-ignore no-explicit-any
type Any = any;

/** A channel (16-byte messages) and a send and a receive handle on it, detached after `fn`. */
function withHandles(fn: (native: Native, tx: number, rx: number) => void): void {
  const key = uniqueKey();
  using _ch = Channel.create({ key, maxMessageSize: 16 });
  const native = lib();
  const tx = native.shmc_attach_key(key, SHMC_SEND), rx = native.shmc_attach_key(key, SHMC_RECV);
  assert.ok(tx > 0 && rx > 0);
  try {
    fn(native, tx, rx);
  } finally {
    native.shmc_detach(tx);
    native.shmc_detach(rx);
  }
}

describe("the Node addon's argument checks", { skip: runtime === "node" ? undefined : "Node only" }, () => {
  test("too few arguments are a TypeError", () => {
    const native = lib() as Any;
    assert.throws(() => native.shmc_try_send(1, new Uint8Array(1), 1), {
      name: "TypeError",
      message: "shmchan addon: too few arguments",
    });
  });

  test("a number where a BigInt belongs, and a BigInt where a number belongs, are TypeErrors", () => {
    const native = lib() as Any;
    assert.throws(() => native.shmc_attach_key(1, SHMC_RECV), { name: "TypeError", message: /expected a bigint/ });
    assert.throws(() => native.shmc_attach_key(1n, 1n), { name: "TypeError", message: /expected a number/ });
  });

  test("a BigInt outside 0 .. 2^64-1 is a RangeError", () => {
    const native = lib() as Any;
    assert.throws(() => native.shmc_attach_key(2n ** 64n, SHMC_RECV), { name: "RangeError" });
    assert.throws(() => native.shmc_attach_key(-1n, SHMC_RECV), { name: "RangeError" });
  });

  test("a buffer that is no ArrayBufferView is a TypeError", () => {
    const native = lib() as Any;
    for (const notView of [new ArrayBuffer(8), [1, 2], "ab", null]) {
      assert.throws(() => native.shmc_try_send(1, notView, 0, 0), {
        name: "TypeError",
        message: "shmchan addon: expected an ArrayBufferView",
      });
    }
  });

  test("a send length past the end of its buffer is EINVAL and sends nothing", () => {
    withHandles((native, tx, rx) => {
      const buf = new Uint8Array(new ArrayBuffer(16), 4, 8);
      assert.equal(native.shmc_try_send(tx, buf, 9, 0), EINVAL);
      assert.equal(native.shmc_try_recv(rx, new Uint8Array(16), 16), EAGAIN, "nothing was sent");
      assert.equal(native.shmc_try_send(tx, buf, 8, 0), 8, "the whole view may be sent");
    });
  });

  test("a receive capacity past the end of its buffer is EINVAL and takes nothing", () => {
    withHandles((native, tx, rx) => {
      assert.equal(native.shmc_try_send(tx, new Uint8Array([1, 2, 3]), 3, 0), 3);
      assert.equal(native.shmc_try_recv(rx, new Uint8Array(4), 5), EINVAL);
      const into = new Uint8Array(4);
      assert.equal(native.shmc_try_recv(rx, into, 4), 3, "the message is still there");
      assert.deepEqual(into.subarray(0, 3), new Uint8Array([1, 2, 3]));
    });
  });

  test("a batch whose lengths array is shorter than its count is EINVAL and sends nothing", () => {
    withHandles((native, tx, rx) => {
      // Two lengths in view, a third (0) just past its end: only the view counts.
      const lens = new Uint32Array(new Uint32Array([1, 1, 0]).buffer, 0, 2);
      assert.equal(native.shmc_try_send_many(tx, new Uint8Array(8), lens, 3, 0), EINVAL);
      assert.equal(native.shmc_try_recv(rx, new Uint8Array(16), 16), EAGAIN, "nothing was sent");
    });
  });

  test("a batch whose lengths add up past the end of its bytes is EINVAL and sends nothing", () => {
    withHandles((native, tx, rx) => {
      assert.equal(native.shmc_try_send_many(tx, new Uint8Array(8), new Uint32Array([4, 5]), 2, 0), EINVAL);
      assert.equal(native.shmc_try_recv(rx, new Uint8Array(16), 16), EAGAIN, "nothing was sent");
      assert.equal(native.shmc_try_send_many(tx, new Uint8Array(8), new Uint32Array([4, 4]), 2, 0), 2);
    });
  });

  test("a batch's lengths array that is not 4-byte aligned is EINVAL and sends nothing", () => {
    withHandles((native, tx, rx) => {
      // Read from byte 2, its one length would be 1.
      const lens = new Uint8Array(new Uint8Array([0, 0, 1, 0, 0, 0, 0, 0]).buffer, 2, 4);
      assert.equal(native.shmc_try_send_many(tx, new Uint8Array(8), lens, 1, 0), EINVAL);
      assert.equal(native.shmc_try_recv(rx, new Uint8Array(16), 16), EAGAIN, "nothing was sent");
    });
  });

  test("an info array shorter than INFO.COUNT u64, or not 8-byte aligned, is EINVAL", () => {
    withHandles((native, tx) => {
      assert.equal(native.shmc_info(tx, new BigUint64Array(INFO.COUNT - 1)), EINVAL);
      const misaligned = new Uint8Array(new ArrayBuffer(8 * INFO.COUNT + 8), 4, 8 * INFO.COUNT);
      assert.equal(native.shmc_info(tx, misaligned), EINVAL);
      assert.equal(native.shmc_info(tx, new BigUint64Array(INFO.COUNT)), INFO.COUNT);
    });
  });

  test("a stats capacity past the end of its u64 array is EINVAL", () => {
    withHandles((native, tx) => {
      const out = new BigUint64Array(STATS.COUNT);
      assert.equal(native.shmc_stats(tx, out, STATS.COUNT + 1), EINVAL);
      assert.equal(out[STATS.KEY], 0n, "nothing was written");
      assert.ok(native.shmc_stats(tx, out, STATS.COUNT) >= 0);
      assert.notEqual(out[STATS.KEY], 0n);
    });
  });
});
