/** SPEC §4: message contents, sizes, truncation and the try-variants' conditions. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Channel } from "../mod.ts";
import { bytes, rejectsCode, text, throwsCode, uniqueKey } from "./helpers.ts";

function pair(opts: { ringEntries?: number; maxMessageSize?: number } = {}) {
  const key = uniqueKey();
  const ch = Channel.create({ key, ...opts });
  const sub = Channel.attach({ key }, "both");
  return {
    ch,
    sub,
    [Symbol.dispose]() {
      sub[Symbol.dispose]();
      ch[Symbol.dispose]();
    },
  };
}

describe("receiving", () => {
  test("tryRecv and tryRecvInto return null when there is nothing", () => {
    using p = pair();
    assert.equal(p.sub.tryRecv(), null);
    assert.equal(p.sub.tryRecvInto(new Uint8Array(8)), null);
    assert.deepEqual(p.sub.tryRecvMany(), []);
  });

  test("tryRecv returns a copy of exactly the message", () => {
    using p = pair({ maxMessageSize: 64 });
    p.sub.trySend(bytes(1, 2, 3));
    p.sub.trySend(bytes(9));
    const first = p.sub.tryRecv()!;
    const second = p.sub.tryRecv()!;
    assert.deepEqual(first, bytes(1, 2, 3));
    assert.deepEqual(second, bytes(9));
    assert.notEqual(first.buffer, second.buffer);
  });

  test("a buffer shorter than the message gets what fits; the message is consumed", async () => {
    using p = pair();
    p.sub.trySend(bytes(1, 2, 3, 4, 5, 6));
    p.sub.trySend(bytes(7, 8, 9));
    p.sub.trySend(bytes(10, 11, 12, 13));
    const buf = new Uint8Array(4);
    assert.equal(p.sub.tryRecvInto(buf), 4);
    assert.deepEqual(buf, bytes(1, 2, 3, 4));
    assert.equal(p.sub.tryRecvInto(buf), 3);
    assert.deepEqual(buf.subarray(0, 3), bytes(7, 8, 9));
    const small = new Uint8Array(2);
    assert.equal(await p.sub.recvInto(small), 2);
    assert.deepEqual(small, bytes(10, 11));
    assert.equal(p.sub.tryRecv(), null);
  });

  test("tryRecvInto writes into a view at its offset only", () => {
    using p = pair();
    p.sub.trySend(bytes(5, 6));
    const backing = new Uint8Array(8);
    assert.equal(p.sub.tryRecvInto(backing.subarray(3, 6)), 2);
    assert.deepEqual(backing, bytes(0, 0, 0, 5, 6, 0, 0, 0));
  });

  test("tryRecvMany takes at most max messages", () => {
    using p = pair();
    for (const m of ["a", "b", "c"]) p.sub.trySend(m);
    assert.deepEqual(p.sub.tryRecvMany(2).map(text), ["a", "b"]);
    assert.deepEqual(p.sub.tryRecvMany(0), []);
    assert.deepEqual(p.sub.tryRecvMany(5).map(text), ["c"]);
  });
});

describe("message contents", () => {
  test("zero-length messages are valid", async () => {
    using p = pair();
    assert.equal(p.sub.trySend(new Uint8Array(0)), 0);
    assert.equal(p.sub.trySend(""), 0);
    assert.equal(await p.sub.send(new ArrayBuffer(0)), 0);
    assert.equal(p.sub.trySend(bytes(1)), 1);
    const m = p.sub.tryRecv();
    assert.ok(m !== null && m.byteLength === 0, "an empty message, not null");
    assert.equal(p.sub.tryRecvInto(new Uint8Array(4)), 0);
    assert.equal((await p.sub.recv()).byteLength, 0);
    // A zero-length buffer consumes a message too (truncated to nothing).
    assert.equal(p.sub.tryRecvInto(new Uint8Array(0)), 0);
    assert.equal(p.sub.tryRecv(), null);
  });

  test("strings are sent as UTF-8", async () => {
    using p = pair();
    const s = "héllo wörld ✓ 🎉 ∑";
    const utf8 = new TextEncoder().encode(s);
    assert.equal(p.sub.trySend(s), utf8.byteLength);
    assert.deepEqual(p.sub.tryRecv(), utf8);
    assert.equal(await p.sub.send(s), utf8.byteLength);
    assert.deepEqual(await p.sub.recv(), utf8);
  });

  test("any ArrayBufferView or ArrayBuffer is sent as its bytes", () => {
    using p = pair();
    const u16 = new Uint16Array([0x0102, 0x0304]);
    p.sub.trySend(u16);
    assert.deepEqual(p.sub.tryRecv(), new Uint8Array(u16.buffer));
    const dv = new DataView(new ArrayBuffer(3));
    dv.setUint8(0, 7);
    p.sub.trySend(dv);
    assert.deepEqual(p.sub.tryRecv(), bytes(7, 0, 0));
    p.sub.trySend(bytes(1, 2, 3).buffer);
    assert.deepEqual(p.sub.tryRecv(), bytes(1, 2, 3));
    p.sub.trySend(bytes(1, 2, 3, 4, 5).subarray(1, 3));
    assert.deepEqual(p.sub.tryRecv(), bytes(2, 3));
  });

  test("a message is a snapshot: changing the source afterwards does not change it", () => {
    using p = pair();
    const src = bytes(1, 2, 3);
    p.sub.trySend(src);
    src[0] = 99;
    assert.deepEqual(p.sub.tryRecv(), bytes(1, 2, 3));
  });

  test("a message of exactly maxMessageSize fits; one byte more is EMSGSIZE", async () => {
    using p = pair({ maxMessageSize: 8 });
    assert.equal(p.sub.trySend(new Uint8Array(8).fill(1)), 8);
    throwsCode(() => p.sub.trySend(new Uint8Array(9)), "EMSGSIZE");
    throwsCode(() => p.ch.trySend(new Uint8Array(9)), "EMSGSIZE");
    // 4 × "é" (2 bytes each) + "a" = 9 bytes of UTF-8, although only 5 characters.
    throwsCode(() => p.sub.trySend("ééééa"), "EMSGSIZE");
    assert.equal(p.sub.trySend("éééé"), 8);
    await rejectsCode(p.sub.send(new Uint8Array(9)), "EMSGSIZE");
    await rejectsCode(p.sub.send("ééééa"), "EMSGSIZE");
    assert.deepEqual(p.sub.tryRecvMany().map((m) => m.byteLength), [8, 8]);
  });

  test("large messages arrive intact", async () => {
    using p = pair({ maxMessageSize: 1048576, ringEntries: 2 });
    const big = new Uint8Array(1048576);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) & 0xff;
    p.sub.trySend(big);
    assert.deepEqual(await p.sub.recv(), big);
  });
});

describe("a full ring", () => {
  test("trySend is ENOBUFS when the ring is full; a receive makes room", () => {
    using p = pair({ ringEntries: 4 });
    for (let i = 0; i < 4; i++) assert.equal(p.sub.trySend(`m${i}`), 2);
    throwsCode(() => p.sub.trySend("m4"), "ENOBUFS");
    throwsCode(() => p.ch.trySend("m4"), "ENOBUFS");
    assert.equal(text(p.sub.tryRecv()), "m0");
    assert.equal(p.sub.trySend("m4"), 2);
    assert.deepEqual(p.sub.tryRecvMany().map(text), ["m1", "m2", "m3", "m4"]);
  });

  test("trySendMany sends what fits and returns the count", () => {
    using p = pair({ ringEntries: 4 });
    assert.equal(p.sub.trySendMany(["a", "b", "c"]), 3);
    assert.equal(p.sub.trySendMany(["d", "e", "f"]), 1);
    assert.deepEqual(p.sub.tryRecvMany().map(text), ["a", "b", "c", "d"]);
    assert.equal(p.sub.trySendMany([]), 0);
  });

  test("batches longer than one native call keep every message, in order", () => {
    using p = pair({ ringEntries: 512, maxMessageSize: 32 });
    const sent = Array.from({ length: 300 }, (_, i) => (i % 7 === 0 ? "" : `b${i}`));
    assert.equal(p.sub.trySendMany(sent), 300);
    const got = p.sub.tryRecvMany(250).map(text);
    assert.equal(got.length, 250);
    assert.deepEqual([...got, ...p.sub.tryRecvMany().map(text)], sent);
  });

  test("trySendMany sends the messages before an oversized one, then throws EMSGSIZE", () => {
    using p = pair({ maxMessageSize: 4 });
    throwsCode(() => p.sub.trySendMany(["ok", bytes(1, 2, 3, 4, 5), "never"]), "EMSGSIZE");
    assert.deepEqual(p.sub.tryRecvMany().map(text), ["ok"]);
  });

  test("tryRecvManyInto packs messages back to back without allocating", () => {
    using p = pair({ maxMessageSize: 8 });
    p.sub.trySendMany(["one", "", "three", "4"]);
    const buf = new Uint8Array(32);
    const lens = new Uint32Array(3);
    assert.equal(p.sub.tryRecvManyInto(buf, lens), 3);
    assert.deepEqual([...lens], [3, 0, 5]);
    assert.equal(new TextDecoder().decode(buf.subarray(0, 8)), "onethree");
    assert.equal(p.sub.tryRecvManyInto(buf, lens), 1);
    assert.equal(lens[0], 1);
    assert.equal(p.sub.tryRecvManyInto(buf, lens), 0);
    throwsCode(() => p.sub.tryRecvManyInto(new Uint8Array(7), lens), "EINVAL");
    assert.throws(() => p.sub.tryRecvManyInto(buf, [1] as unknown as Uint32Array), TypeError);
  });

  test("the ring wraps around many times without losing or reordering", () => {
    using p = pair({ ringEntries: 2, maxMessageSize: 16 });
    for (let i = 0; i < 1000; i++) {
      p.sub.trySend(`n${i}`);
      assert.equal(text(p.sub.tryRecv()), `n${i}`);
    }
  });
});
