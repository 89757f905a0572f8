/** SPEC §4, §5: waiting sends and receives, timeouts, AbortSignal, detach while waiting, for await. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Channel, ChannelError } from "../mod.ts";
import { bytes, rejectsCode, text, tick, uniqueKey, within } from "./helpers.ts";

function pair(opts: { ringEntries?: number; delivery?: "unicast" | "broadcast" | "multicast" } = {}) {
  const key = uniqueKey();
  const ch = Channel.create({ key, ...opts });
  const sub = Channel.attach({ key }, "both");
  return {
    key,
    ch,
    sub,
    [Symbol.dispose]() {
      sub[Symbol.dispose]();
      ch[Symbol.dispose]();
    },
  };
}

/** Settles state: lets several event-loop turns (and doorbell bytes) pass. */
async function turns(n = 5): Promise<void> {
  for (let i = 0; i < n; i++) await tick();
}

describe("recv", () => {
  test("resolves at once when a message is waiting", async () => {
    using p = pair();
    p.ch.trySend("ready");
    assert.equal(text(await p.sub.recv()), "ready");
  });

  test("waits for a message sent later", async () => {
    using p = pair();
    const pending = p.sub.recv({ spin: 0 });
    let settled = false;
    pending.then(() => (settled = true), () => (settled = true));
    await turns();
    assert.equal(settled, false, "recv() must wait while there is nothing");
    p.ch.trySend("later");
    assert.equal(text(await within(pending, 10_000, "recv")), "later");
  });

  test("recvInto waits, then truncates like tryRecvInto", async () => {
    using p = pair();
    const buf = new Uint8Array(2);
    const pending = p.sub.recvInto(buf);
    await turns();
    p.ch.trySend(bytes(1, 2, 3));
    assert.equal(await within(pending, 10_000, "recvInto"), 2);
    assert.deepEqual(buf, bytes(1, 2));
    assert.equal(p.sub.tryRecv(), null);
  });

  test("several pending receives on one subscriber each get their own message", async () => {
    using p = pair();
    const pending = [p.sub.recv(), p.sub.recv(), p.sub.recv()];
    await turns();
    for (const m of ["a", "b", "c"]) p.ch.trySend(m);
    const got = (await within(Promise.all(pending), 10_000, "3 receives")).map(text);
    assert.deepEqual(got, ["a", "b", "c"]);
  });

  test("a receive that parks at once takes a message that is already there", async () => {
    using p = pair();
    // A first wait that parks (the process then has its doorbell).
    const first = p.sub.recv({ spin: 0 });
    await turns();
    p.ch.trySend("one");
    assert.equal(text(await within(first, 10_000, "recv")), "one");
    p.ch.trySend("two");
    assert.equal(text(await p.sub.recv({ spin: 0 })), "two");
  });

  test("receives pending on one subscriber: one that ends leaves the others parked", async () => {
    using p = pair();
    const short = p.sub.recv({ spin: 0, timeout: 20 });
    const long = p.sub.recv({ spin: 0 });
    await rejectsCode(short, "ETIMEDOUT");
    p.ch.trySend("for the other");
    assert.equal(text(await within(long, 10_000, "the remaining recv")), "for the other");
  });

  test("pending receives on several subscribers of a broadcast all resolve", async () => {
    using p = pair({ delivery: "broadcast" });
    using other = Channel.attach({ key: p.key }, "recv");
    const pending = [p.sub.recv(), other.recv()];
    await turns();
    p.ch.trySend("all");
    assert.deepEqual((await within(Promise.all(pending), 10_000, "broadcast receives")).map(text), ["all", "all"]);
  });

  test("a timeout rejects with ETIMEDOUT", async () => {
    using p = pair();
    await rejectsCode(p.sub.recv({ timeout: 20 }), "ETIMEDOUT");
    await rejectsCode(p.sub.recvInto(new Uint8Array(4), { timeout: 5 }), "ETIMEDOUT");
  });

  test("timeout 0 is one try", async () => {
    using p = pair();
    await rejectsCode(p.sub.recv({ timeout: 0 }), "ETIMEDOUT");
    p.ch.trySend("x");
    assert.equal(text(await p.sub.recv({ timeout: 0 })), "x");
  });

  test("a message sent after a timeout is not lost", async () => {
    using p = pair();
    await rejectsCode(p.sub.recv({ timeout: 10 }), "ETIMEDOUT");
    p.ch.trySend("after");
    assert.equal(text(await within(p.sub.recv(), 10_000, "recv")), "after");
  });
});

describe("AbortSignal", () => {
  test("an already aborted signal rejects with its reason", async () => {
    using p = pair();
    p.ch.trySend("not taken");
    const reason = new Error("stop");
    await assert.rejects(p.sub.recv({ signal: AbortSignal.abort(reason) }), (e) => e === reason);
    assert.equal(text(p.sub.tryRecv()), "not taken");
  });

  test("aborting while waiting rejects with the signal's reason", async () => {
    using p = pair();
    const ac = new AbortController();
    const reason = { custom: "reason" };
    const pending = p.sub.recv({ signal: ac.signal });
    await turns();
    ac.abort(reason);
    await assert.rejects(pending, (e) => e === reason);
  });

  test("the default reason is the runtime's AbortError", async () => {
    using p = pair();
    const ac = new AbortController();
    const pending = p.sub.recv({ signal: ac.signal });
    ac.abort();
    await assert.rejects(pending, (e) => e === ac.signal.reason && (e as Error).name === "AbortError");
  });

  test("after an abort, the next message goes to the next receive", async () => {
    using p = pair();
    const ac = new AbortController();
    const aborted = p.sub.recv({ signal: ac.signal });
    await turns();
    ac.abort();
    await assert.rejects(aborted);
    const next = p.sub.recv();
    p.ch.trySend("next");
    assert.equal(text(await within(next, 10_000, "recv")), "next");
  });

  test("a send waiting for room is aborted the same way", async () => {
    using p = pair({ ringEntries: 1 });
    p.sub.trySend("fills");
    const ac = new AbortController();
    const pending = p.sub.send("waits", { signal: ac.signal });
    await turns();
    ac.abort("gone");
    await assert.rejects(pending, (e) => e === "gone");
    assert.deepEqual(p.sub.tryRecvMany().map(text), ["fills"]);
  });
});

describe("send", () => {
  test("waits for room while the ring is full", async () => {
    using p = pair({ ringEntries: 2 });
    p.sub.trySend("1");
    p.sub.trySend("2");
    const pending = p.sub.send("3");
    let settled = false;
    pending.then(() => (settled = true), () => (settled = true));
    await turns();
    assert.equal(settled, false, "send() must wait while the ring is full");
    assert.equal(text(p.sub.tryRecv()), "1");
    assert.equal(await within(pending, 10_000, "send"), 1);
    assert.deepEqual(p.sub.tryRecvMany().map(text), ["2", "3"]);
  });

  test("the owner's send waits for room too", async () => {
    using p = pair({ ringEntries: 1 });
    p.ch.trySend("1");
    const pending = p.ch.send("2", { timeout: 10_000 });
    await turns();
    assert.equal(text(p.sub.tryRecv()), "1");
    assert.equal(await within(pending, 10_000, "send"), 1);
    assert.equal(text(p.sub.tryRecv()), "2");
  });

  test("a timeout rejects with ETIMEDOUT and sends nothing", async () => {
    using p = pair({ ringEntries: 1 });
    p.sub.trySend("1");
    await rejectsCode(p.sub.send("2", { timeout: 20 }), "ETIMEDOUT");
    assert.deepEqual(p.sub.tryRecvMany().map(text), ["1"]);
  });

  test("a targeted send waits too, and reaches only its target", async () => {
    using p = pair({ ringEntries: 1 });
    using other = Channel.attach({ key: p.key }, "recv");
    p.sub.trySend("fill");
    const pending = p.sub.send("to other", { target: other.id });
    await turns();
    assert.equal(text(p.sub.tryRecv()), "fill");
    await within(pending, 10_000, "send");
    assert.equal(p.sub.tryRecv(), null);
    assert.equal(text(other.tryRecv()), "to other");
  });
});

describe("detach while waiting", () => {
  test("a pending recv() rejects with ENOENT when its subscriber detaches", async () => {
    using p = pair();
    const pending = p.sub.recv();
    await turns();
    p.sub.detach();
    await rejectsCode(pending, "ENOENT");
  });

  test("a pending send() rejects with ENOENT when its subscriber detaches", async () => {
    using p = pair({ ringEntries: 1 });
    p.sub.trySend("fill");
    const pending = p.sub.send("waits");
    p.sub.detach();
    await rejectsCode(pending, "ENOENT");
  });

  test("a pending owner send() rejects with ENOENT on destroy()", async () => {
    const key = uniqueKey();
    const ch = Channel.create({ key, ringEntries: 1 });
    using rx = Channel.attach({ key }, "recv");
    ch.trySend("fill");
    const pending = ch.send("waits");
    ch.destroy();
    await rejectsCode(pending, "ENOENT");
    assert.equal(text(rx.tryRecv()), "fill");
  });

  test("disposal with a pending recv() rejects it and does not throw", async () => {
    const p = pair();
    const pending = p.sub.recv();
    p[Symbol.dispose]();
    await rejectsCode(pending, "ENOENT");
  });

  test("other subscribers' waits are unaffected", async () => {
    using p = pair({ delivery: "broadcast" });
    const other = Channel.attach({ key: p.key }, "recv");
    const mine = p.sub.recv();
    const theirs = other.recv();
    other.detach();
    await rejectsCode(theirs, "ENOENT");
    p.ch.trySend("still");
    assert.equal(text(await within(mine, 10_000, "recv")), "still");
  });
});

describe("for await", () => {
  test("yields messages as they come and ends when the subscriber detaches", async () => {
    using p = pair();
    const seen: string[] = [];
    const loop = (async () => {
      for await (const msg of p.sub) {
        seen.push(text(msg)!);
        if (seen.length === 3) setTimeout(() => p.sub.detach(), 0);
      }
    })();
    p.ch.trySend("a");
    await turns();
    p.ch.trySend("b");
    p.ch.trySend("c");
    await within(loop, 10_000, "for await to end");
    assert.deepEqual(seen, ["a", "b", "c"]);
  });

  test("ends at once on a subscriber that is already detached", async () => {
    const p = pair();
    p.sub.detach();
    let n = 0;
    for await (const _ of p.sub) n++;
    assert.equal(n, 0);
    p.ch.destroy();
  });

  test("breaking out of the loop leaves the subscriber attached", async () => {
    using p = pair();
    p.ch.trySend("1");
    p.ch.trySend("2");
    for await (const _ of p.sub) break;
    assert.equal(p.sub.closed, false);
    assert.equal(text(p.sub.tryRecv()), "2");
  });

  test("errors other than detach propagate", async () => {
    const key = uniqueKey();
    using _ch = Channel.create({ key });
    using tx = Channel.attach({ key }, "send");
    await assert.rejects(
      (async () => {
        for await (const _ of tx) { /* never */ }
      })(),
      (e) => e instanceof ChannelError && e.code === "EACCES",
    );
  });
});
