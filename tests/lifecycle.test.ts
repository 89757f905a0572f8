/** SPEC §1, §2, §5: creating, attaching, detaching, destroying; ids; disposal. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Channel, ChannelError, Subscriber } from "../mod.ts";
import { rejectsCode, throwsCode, uniqueKey, uniqueNumberKey } from "./helpers.ts";

describe("create", () => {
  test("returns an owner handle with the defaults", () => {
    const key = uniqueKey();
    using ch = Channel.create({ key });
    assert.ok(ch instanceof Channel);
    assert.equal(ch.key, key);
    assert.equal(ch.delivery, "unicast");
    assert.equal(ch.ringEntries, 256);
    assert.equal(ch.maxMessageSize, 4096);
    assert.equal(ch.mode, 0o600);
    assert.equal(ch.private, false);
    assert.ok(Number.isInteger(ch.id) && ch.id > 0 && ch.id <= 0x7fffffff, `id ${ch.id}`);
    assert.equal(ch.closed, false);
  });

  test("reports the options it was given", () => {
    using ch = Channel.create({
      key: uniqueKey(),
      delivery: "broadcast",
      ringEntries: 1024,
      maxMessageSize: 100,
      mode: 0o640,
      private: true,
    });
    assert.equal(ch.delivery, "broadcast");
    assert.equal(ch.ringEntries, 1024);
    assert.equal(ch.maxMessageSize, 100);
    assert.equal(ch.mode, 0o640);
    assert.equal(ch.private, true);
    using m = Channel.create({ key: uniqueKey(), delivery: "multicast" });
    assert.equal(m.delivery, "multicast");
  });

  test("only the 0o666 bits of mode count", () => {
    using ch = Channel.create({ key: uniqueKey(), mode: 0o777 });
    assert.equal(ch.mode, 0o666);
  });

  test("accepts the extreme valid values", () => {
    using a = Channel.create({ key: (1n << 64n) - 1n, ringEntries: 1, maxMessageSize: 1 });
    assert.equal(a.key, (1n << 64n) - 1n);
    using b = Channel.create({ key: uniqueKey(), ringEntries: 32768, maxMessageSize: 64 });
    assert.equal(b.ringEntries, 32768);
    using c = Channel.create({ key: uniqueKey(), ringEntries: 2, maxMessageSize: 1048576 });
    assert.equal(c.maxMessageSize, 1048576);
    using d = Channel.create({ key: Number.MAX_SAFE_INTEGER - Math.floor(Math.random() * 1e6) });
    assert.equal(typeof d.key, "bigint");
  });

  test("a key given as a number is the same key as the bigint", () => {
    const key = uniqueNumberKey();
    using ch = Channel.create({ key });
    assert.equal(ch.key, BigInt(key));
    throwsCode(() => Channel.create({ key: BigInt(key) }), "EEXIST");
    using sub = Channel.attach({ key: BigInt(key) }, "recv");
    assert.equal(sub.channelId, ch.id);
    using sub2 = Channel.attach({ key }, "recv");
    assert.equal(sub2.channelId, ch.id);
  });

  test("a key in use by a live channel is EEXIST", () => {
    const key = uniqueKey();
    using _ch = Channel.create({ key });
    throwsCode(() => Channel.create({ key }), "EEXIST");
    throwsCode(() => Channel.create({ key, delivery: "broadcast" }), "EEXIST");
  });

  test("a region over 2^31-1 bytes is EINVAL", () => {
    throwsCode(() => Channel.create({ key: uniqueKey(), ringEntries: 32768, maxMessageSize: 1048576 }), "EINVAL");
  });

  test("channel ids are unique among live channels", () => {
    const channels = Array.from(
      { length: 16 },
      () => Channel.create({ key: uniqueKey(), ringEntries: 1, maxMessageSize: 1 }),
    );
    try {
      assert.equal(new Set(channels.map((c) => c.id)).size, channels.length);
    } finally {
      for (const c of channels) c.destroy();
    }
  });
});

describe("attach", () => {
  test("by key and by id reach the same channel; subscriber ids are positive and unique", () => {
    const key = uniqueKey();
    using ch = Channel.create({ key });
    using a = Channel.attach({ key }, "both");
    using b = Channel.attach({ id: ch.id }, "recv");
    using c = Channel.attach({ id: ch.id }, "send");
    for (const s of [a, b, c]) {
      assert.ok(s instanceof Subscriber);
      assert.equal(s.channelId, ch.id);
      assert.equal(s.key, key);
      assert.equal(s.delivery, ch.delivery);
      assert.equal(s.ringEntries, ch.ringEntries);
      assert.equal(s.maxMessageSize, ch.maxMessageSize);
      assert.ok(Number.isInteger(s.id) && s.id > 0, `id ${s.id}`);
    }
    assert.equal(new Set([a.id, b.id, c.id]).size, 3);
    assert.deepEqual([a.access, b.access, c.access], ["both", "recv", "send"]);
    ch.trySend("x");
    assert.equal(new TextDecoder().decode(a.tryRecv()!), "x");
  });

  test("an unknown key or id is ENOENT", () => {
    throwsCode(() => Channel.attach({ key: uniqueKey() }, "both"), "ENOENT");
    throwsCode(() => Channel.attach({ id: 0x7ffffff0 }, "both"), "ENOENT");
  });

  test("a bad access is EINVAL", () => {
    const key = uniqueKey();
    using _ch = Channel.create({ key });
    for (const access of ["", "read", "SEND", "rw", undefined, null, 3, {}]) {
      throwsCode(() => Channel.attach({ key }, access as "send"), "EINVAL");
    }
  });

  test("the member limit is an error, not a crash", () => {
    const key = uniqueKey();
    using _ch = Channel.create({ key });
    const subs: Subscriber[] = [];
    let error: unknown;
    try {
      for (let i = 0; i < 200; i++) subs.push(Channel.attach({ key }, "recv"));
    } catch (err) {
      error = err;
    } finally {
      for (const s of subs) s.detach();
    }
    assert.ok(error instanceof ChannelError, `no error after ${subs.length} subscribers`);
    assert.equal(error.code, "EUSERS");
    assert.ok(subs.length >= 1);
    // Slots come back after detach.
    using again = Channel.attach({ key }, "recv");
    assert.ok(again.id > 0);
  });
});

describe("destroy", () => {
  test("removes the channel from lookup by key and by id; the key is free again", () => {
    const key = uniqueKey();
    const ch = Channel.create({ key });
    const id = ch.id;
    ch.destroy();
    assert.equal(ch.closed, true);
    throwsCode(() => Channel.attach({ key }, "both"), "ENOENT");
    throwsCode(() => Channel.attach({ id }, "both"), "ENOENT");
    using again = Channel.create({ key });
    assert.equal(again.key, key);
  });

  test("subscribers attached before keep working until they detach", () => {
    const key = uniqueKey();
    const ch = Channel.create({ key });
    using tx = Channel.attach({ key }, "send");
    using rx = Channel.attach({ key }, "recv");
    ch.destroy();
    assert.equal(tx.trySend("still here"), 10);
    assert.equal(new TextDecoder().decode(rx.tryRecv()!), "still here");
  });

  test("a second destroy() is ENOENT; disposal after destroy() does not throw", () => {
    const ch = Channel.create({ key: uniqueKey() });
    ch.destroy();
    throwsCode(() => ch.destroy(), "ENOENT");
    ch[Symbol.dispose]();
    ch[Symbol.dispose]();
  });

  test("the owner handle is ENOENT after destroy()", async () => {
    const ch = Channel.create({ key: uniqueKey() });
    ch.destroy();
    throwsCode(() => ch.trySend("x"), "ENOENT");
    throwsCode(() => ch.trySendMany(["x"]), "ENOENT");
    await rejectsCode(ch.send("x"), "ENOENT");
  });

  test("`using` destroys the channel at the end of the block", () => {
    const key = uniqueKey();
    {
      using _ch = Channel.create({ key });
      Channel.attach({ key }, "recv").detach();
    }
    throwsCode(() => Channel.attach({ key }, "recv"), "ENOENT");
  });
});

describe("detach", () => {
  test("a second detach() is ENOENT; disposal after detach() does not throw", () => {
    const key = uniqueKey();
    using _ch = Channel.create({ key });
    const sub = Channel.attach({ key }, "both");
    assert.equal(sub.closed, false);
    sub.detach();
    assert.equal(sub.closed, true);
    throwsCode(() => sub.detach(), "ENOENT");
    sub[Symbol.dispose]();
    sub[Symbol.dispose]();
  });

  test("every operation on a detached subscriber is ENOENT", async () => {
    const key = uniqueKey();
    using _ch = Channel.create({ key });
    const sub = Channel.attach({ key }, "both");
    sub.detach();
    throwsCode(() => sub.trySend("x"), "ENOENT");
    throwsCode(() => sub.trySendMany(["x"]), "ENOENT");
    throwsCode(() => sub.tryRecv(), "ENOENT");
    throwsCode(() => sub.tryRecvInto(new Uint8Array(8)), "ENOENT");
    throwsCode(() => sub.tryRecvMany(), "ENOENT");
    await rejectsCode(sub.send("x"), "ENOENT");
    await rejectsCode(sub.recv(), "ENOENT");
    await rejectsCode(sub.recvInto(new Uint8Array(8)), "ENOENT");
  });

  test("`using` detaches at the end of the block", () => {
    const key = uniqueKey();
    using ch = Channel.create({ key, delivery: "broadcast", ringEntries: 1 });
    {
      using _slow = Channel.attach({ key }, "recv");
      ch.trySend("a");
      throwsCode(() => ch.trySend("b"), "ENOBUFS"); // the unread receiver holds the slot
    }
    ch.trySend("c"); // detached: it no longer holds the ring back
  });

  test("a detached subscriber's id no longer receives targeted sends", () => {
    const key = uniqueKey();
    using ch = Channel.create({ key });
    const sub = Channel.attach({ key }, "recv");
    const id = sub.id;
    sub.detach();
    throwsCode(() => ch.trySend("x", { target: id }), "ENOENT");
  });
});
