/** SPEC §3: unicast, broadcast, multicast and targeted sends, within one process. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Channel, type Subscriber } from "../mod.ts";
import { text, throwsCode, uniqueKey } from "./helpers.ts";

/** Drains every subscriber round-robin, one message at a time, until all are empty. */
function drainRoundRobin(subs: Subscriber[]): string[][] {
  const got: string[][] = subs.map(() => []);
  for (let progress = true; progress;) {
    progress = false;
    subs.forEach((s, i) => {
      const m = s.tryRecv();
      if (m !== null) {
        got[i].push(text(m)!);
        progress = true;
      }
    });
  }
  return got;
}

const numbered = (n: number) => Array.from({ length: n }, (_, i) => `m${i}`);

describe("unicast", () => {
  test("messages from one sender arrive in order", () => {
    const key = uniqueKey();
    using _ch = Channel.create({ key, ringEntries: 128 });
    using tx = Channel.attach({ key }, "send");
    using rx = Channel.attach({ key }, "recv");
    for (const m of numbered(100)) tx.trySend(m);
    const got = rx.tryRecvMany();
    assert.deepEqual(got.map(text), numbered(100));
    assert.equal(rx.tryRecv(), null);
  });

  test("each message is received once, whichever receiver asks first", () => {
    const key = uniqueKey();
    using ch = Channel.create({ key, ringEntries: 128 });
    using a = Channel.attach({ key }, "recv");
    using b = Channel.attach({ key }, "recv");
    for (const m of numbered(100)) ch.trySend(m);
    const [ga, gb] = drainRoundRobin([a, b]);
    assert.equal(ga.length + gb.length, 100);
    assert.deepEqual([...ga, ...gb].sort(), numbered(100).sort());
    // Each receiver still sees its share in send order.
    assert.deepEqual(ga, [...ga].sort((x, y) => +x.slice(1) - +y.slice(1)));
  });

  test("messages wait in the ring for a receiver that attaches later", () => {
    const key = uniqueKey();
    using ch = Channel.create({ key });
    ch.trySend("early");
    using rx = Channel.attach({ key }, "recv");
    assert.equal(text(rx.tryRecv()), "early");
  });
});

describe("broadcast", () => {
  test("every receiver gets every message, in the same order", () => {
    const key = uniqueKey();
    using ch = Channel.create({ key, delivery: "broadcast", ringEntries: 64 });
    using a = Channel.attach({ key }, "recv");
    using b = Channel.attach({ key }, "both");
    using c = Channel.attach({ key }, "recv");
    for (const m of numbered(50)) ch.trySend(m);
    for (const s of [a, b, c]) assert.deepEqual(s.tryRecvMany().map(text), numbered(50));
  });

  test("a receiver that attaches later starts with the next message sent", () => {
    const key = uniqueKey();
    using ch = Channel.create({ key, delivery: "broadcast" });
    using early = Channel.attach({ key }, "recv");
    ch.trySend("before");
    using late = Channel.attach({ key }, "recv");
    assert.equal(late.tryRecv(), null);
    ch.trySend("after");
    assert.deepEqual(early.tryRecvMany().map(text), ["before", "after"]);
    assert.deepEqual(late.tryRecvMany().map(text), ["after"]);
  });

  test("a broadcast with no receivers succeeds and goes nowhere", () => {
    const key = uniqueKey();
    using ch = Channel.create({ key, delivery: "broadcast", ringEntries: 4 });
    for (let i = 0; i < 20; i++) assert.equal(ch.trySend(`lost ${i}`), i < 10 ? 6 : 7);
    using rx = Channel.attach({ key }, "recv");
    assert.equal(rx.tryRecv(), null);
  });

  test("the slowest receiver applies backpressure (ENOBUFS), and reading frees a slot", () => {
    const key = uniqueKey();
    using ch = Channel.create({ key, delivery: "broadcast", ringEntries: 4 });
    using fast = Channel.attach({ key }, "recv");
    using slow = Channel.attach({ key }, "recv");
    for (let i = 0; i < 4; i++) {
      ch.trySend(`m${i}`);
      assert.equal(text(fast.tryRecv()), `m${i}`);
    }
    throwsCode(() => ch.trySend("m4"), "ENOBUFS");
    assert.equal(text(slow.tryRecv()), "m0");
    ch.trySend("m4");
    assert.deepEqual(slow.tryRecvMany().map(text), ["m1", "m2", "m3", "m4"]);
    assert.deepEqual(fast.tryRecvMany().map(text), ["m4"]);
  });
});

describe("multicast", () => {
  test("each message goes to exactly one receiver", () => {
    const key = uniqueKey();
    using ch = Channel.create({ key, delivery: "multicast", ringEntries: 256 });
    const subs = [0, 1, 2].map(() => Channel.attach({ key }, "recv"));
    try {
      for (const m of numbered(200)) ch.trySend(m);
      const got = drainRoundRobin(subs);
      const all = got.flat();
      assert.equal(all.length, 200);
      assert.equal(new Set(all).size, 200);
      assert.deepEqual(all.sort(), numbered(200).sort());
    } finally {
      for (const s of subs) s.detach();
    }
  });
});

describe("targeted send", () => {
  for (const delivery of ["unicast", "broadcast", "multicast"] as const) {
    test(`${delivery}: only the target receives it`, () => {
      const key = uniqueKey();
      using ch = Channel.create({ key, delivery });
      using a = Channel.attach({ key }, "recv");
      using b = Channel.attach({ key }, "both");
      using c = Channel.attach({ key }, "recv");
      // Several, so that a wrong routing would show on some receiver.
      for (let i = 0; i < 5; i++) assert.equal(ch.trySend(`to b ${i}`, { target: b.id }), 6);
      assert.equal(a.tryRecv(), null);
      assert.equal(c.tryRecv(), null);
      assert.deepEqual(b.tryRecvMany().map(text), [0, 1, 2, 3, 4].map((i) => `to b ${i}`));
      // A subscriber may target another (request/reply).
      b.trySend("reply", { target: c.id });
      assert.equal(a.tryRecv(), null);
      assert.equal(b.tryRecv(), null);
      assert.equal(text(c.tryRecv()), "reply");
    });
  }

  test("targeted and normal messages keep one sender's order for the target", () => {
    const key = uniqueKey();
    using ch = Channel.create({ key });
    using rx = Channel.attach({ key }, "recv");
    ch.trySend("1");
    ch.trySend("2", { target: rx.id });
    ch.trySend("3");
    assert.deepEqual(rx.tryRecvMany().map(text), ["1", "2", "3"]);
  });

  test("a target that is not a receiving subscriber is ENOENT", () => {
    const key = uniqueKey();
    using ch = Channel.create({ key });
    using tx = Channel.attach({ key }, "send");
    using rx = Channel.attach({ key }, "recv");
    throwsCode(() => ch.trySend("x", { target: tx.id }), "ENOENT"); // send-only
    throwsCode(() => ch.trySend("x", { target: 0x7fff0000 }), "ENOENT"); // nobody
    throwsCode(() => tx.trySend("x", { target: 0xffffffff }), "ENOENT");
    // Subscriber ids are per channel: another channel's subscriber is not a target here.
    const other = uniqueKey();
    using _ch2 = Channel.create({ key: other });
    using foreign = Channel.attach({ key: other }, "recv");
    if (foreign.id !== rx.id) throwsCode(() => ch.trySend("x", { target: foreign.id }), "ENOENT");
    assert.equal(rx.tryRecv(), null);
  });
});
