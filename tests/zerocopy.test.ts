/**
 * Zero copy: loans (a message written straight into its slot) and views (a
 * message read where it lies), csrc/DESIGN.md §7 "Zero copy". In every
 * delivery mode, across processes and runtimes, and the rule that a view
 * kept too long shows stale bytes but never crashes the process.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Channel, type Delivery } from "../mod.ts";
import { peer, rejectsCode, runtimes, sleep, text, throwsCode, uniqueKey, within } from "./helpers.ts";

const MODES: Delivery[] = ["unicast", "multicast", "broadcast"];
const encoder = new TextEncoder();

function channel(delivery: Delivery, opts: { ringEntries?: number; maxMessageSize?: number } = {}) {
  const key = uniqueKey();
  const ch = Channel.create({ key, delivery, ...opts });
  const tx = Channel.attach({ key }, "send");
  const rx = Channel.attach({ key }, "recv");
  return {
    key,
    ch,
    tx,
    rx,
    [Symbol.dispose]() {
      rx[Symbol.dispose]();
      tx[Symbol.dispose]();
      ch[Symbol.dispose]();
    },
  };
}

/** Writes `s` into a loan and commits it. */
function loanSend(tx: { tryLoan(): { bytes: Uint8Array; commit(n: number): number } }, s: string): void {
  const loan = tx.tryLoan();
  loan.commit(encoder.encodeInto(s, loan.bytes).written);
}

for (const delivery of MODES) {
  describe(`zero copy, ${delivery}: loans`, () => {
    test("a loaned slot is invisible until committed, then delivered as written", () => {
      using c = channel(delivery, { maxMessageSize: 65536 });
      const loan = c.tx.tryLoan();
      assert.equal(loan.bytes.byteLength, 65536);
      assert.equal(loan.pending, true);
      for (let i = 0; i < 65536; i++) loan.bytes[i] = (i * 7) & 0xff;
      assert.equal(c.rx.tryRecv(), null);
      assert.equal(loan.commit(65536), 65536);
      assert.equal(loan.pending, false);
      const got = c.rx.tryRecv()!;
      assert.equal(got.byteLength, 65536);
      assert.ok(got.every((b, i) => b === ((i * 7) & 0xff)));
    });

    test("an aborted loan delivers nothing; disposal aborts a loan not committed", () => {
      using c = channel(delivery);
      const loan = c.tx.tryLoan();
      encoder.encodeInto("never", loan.bytes);
      loan.abort();
      {
        using l2 = c.tx.tryLoan();
        encoder.encodeInto("never either", l2.bytes);
      }
      c.tx.trySend("after");
      assert.equal(text(c.rx.tryRecv()), "after");
      assert.equal(c.rx.tryRecv(), null);
    });

    test("EMSGSIZE and ENOENT on commit keep the loan; a finished loan is EINVAL", () => {
      using c = channel(delivery, { maxMessageSize: 64 });
      const loan = c.tx.tryLoan();
      encoder.encodeInto("kept", loan.bytes);
      throwsCode(() => loan.commit(65), "EMSGSIZE");
      throwsCode(() => loan.commit(4, { target: 0x7fff_fff0 }), "ENOENT");
      assert.equal(loan.pending, true);
      assert.equal(c.rx.tryRecv(), null);
      assert.equal(loan.commit(4), 4);
      throwsCode(() => loan.commit(4), "EINVAL");
      throwsCode(() => loan.abort(), "EINVAL");
      assert.equal(text(c.rx.tryRecv()), "kept");
    });

    test("a targeted commit reaches its target only", () => {
      using c = channel(delivery);
      using other = Channel.attach({ key: c.key }, "recv");
      const loan = c.tx.tryLoan();
      loan.commit(encoder.encodeInto("for other", loan.bytes).written, { target: other.id });
      assert.equal(c.rx.tryRecv(), null);
      assert.equal(text(other.tryRecv()), "for other");
    });

    test("while a loan is outstanding, sends and loans on that handle are EBUSY; another handle sends", async () => {
      using c = channel(delivery);
      using tx2 = Channel.attach({ key: c.key }, "send");
      const loan = c.tx.tryLoan();
      throwsCode(() => c.tx.tryLoan(), "EBUSY");
      throwsCode(() => c.tx.trySend("x"), "EBUSY");
      throwsCode(() => c.tx.trySendMany(["x"]), "EBUSY");
      await rejectsCode(c.tx.send("x"), "EBUSY");
      await rejectsCode(c.tx.loan(), "EBUSY");
      tx2.trySend("second");
      loan.commit(encoder.encodeInto("first", loan.bytes).written);
      // Unicast/multicast deliver by position: the loan's message first.
      if (delivery !== "broadcast") assert.equal(text(c.rx.tryRecv()), "first");
      else assert.deepEqual([text(c.rx.tryRecv()), text(c.rx.tryRecv())], ["first", "second"]);
    });

    test("the owner handle loans; a receive-only handle cannot (EACCES), a send-only one cannot view", () => {
      using c = channel(delivery);
      loanSendOwner(c.ch);
      assert.equal(text(c.rx.tryRecv()), "from the owner");
      throwsCode(() => c.rx.tryLoan(), "EACCES");
      throwsCode(() => c.tx.tryRecvView(), "EACCES");
    });

    test("a full ring is ENOBUFS for tryLoan; loan() waits for room, or times out", async () => {
      using c = channel(delivery, { ringEntries: 2 });
      c.tx.trySend("a");
      c.tx.trySend("b");
      throwsCode(() => c.tx.tryLoan(), "ENOBUFS");
      await rejectsCode(c.tx.loan({ timeout: 20 }), "ETIMEDOUT");
      const waiting = c.tx.loan({ timeout: 5000 });
      await sleep(10);
      assert.equal(text(c.rx.tryRecv()), "a");
      const loan = await within(waiting, 5000, "loan() after room was made");
      loan.commit(encoder.encodeInto("c", loan.bytes).written);
      assert.deepEqual([text(c.rx.tryRecv()), text(c.rx.tryRecv())], ["b", "c"]);
    });
  });

  describe(`zero copy, ${delivery}: views`, () => {
    test("a view reads the message in place; a held view is never overwritten; release frees its slot", () => {
      using c = channel(delivery, { ringEntries: 4, maxMessageSize: 256 });
      c.tx.trySend("held message");
      const view = c.rx.tryRecvView()!;
      assert.equal(text(view.bytes), "held message");
      assert.equal(view.held, true);
      for (let i = 0; i < 3; i++) c.tx.trySend(`m${i}`);
      throwsCode(() => c.tx.trySend("one too many"), "ENOBUFS");
      throwsCode(() => c.tx.tryLoan(), "ENOBUFS");
      assert.equal(text(view.bytes), "held message");
      assert.equal(view.release(), true);
      assert.equal(view.held, false);
      throwsCode(() => view.release(), "EINVAL");
      c.tx.trySend("room again");
      const rest: string[] = [];
      for (let v = c.rx.tryRecvView(); v; v = c.rx.tryRecvView()) {
        rest.push(text(v.bytes)!);
        v.release();
      }
      assert.deepEqual(rest, ["m0", "m1", "m2", "room again"]);
    });

    test("while a view is held, receives and views on that handle are EBUSY; using releases it", async () => {
      using c = channel(delivery);
      c.tx.trySend("one");
      c.tx.trySend("two");
      {
        using view = c.rx.tryRecvView()!;
        assert.equal(text(view.bytes), "one");
        throwsCode(() => c.rx.tryRecvView(), "EBUSY");
        throwsCode(() => c.rx.tryRecv(), "EBUSY");
        throwsCode(() => c.rx.tryRecvMany(), "EBUSY");
        await rejectsCode(c.rx.recv(), "EBUSY");
        await rejectsCode(c.rx.recvView(), "EBUSY");
      }
      assert.equal(text(c.rx.tryRecv()), "two");
    });

    test("recvView() waits for a message, times out, and rejects with ENOENT when detached", async () => {
      using c = channel(delivery);
      await rejectsCode(c.rx.recvView({ timeout: 20 }), "ETIMEDOUT");
      const waiting = c.rx.recvView({ timeout: 5000 });
      await sleep(10);
      loanSend(c.tx, "woken");
      const view = await within(waiting, 5000, "recvView() after a commit");
      assert.equal(text(view.bytes), "woken");
      view.release();
      const pending = c.rx.recvView();
      c.rx.detach();
      await rejectsCode(pending, "ENOENT");
    });

    test("a receive-only handle's writes into a view stay its own: the channel keeps the message", () => {
      using c = channel(delivery, { ringEntries: 2, maxMessageSize: 16384 });
      using both = Channel.attach({ key: c.key }, "recv");
      const msg = new Uint8Array(16384).map((_, i) => i & 0xff);
      c.tx.trySend(msg);
      const view = c.rx.tryRecvView()!;
      view.bytes.fill(0xee); // allowed, and private to this process
      if (delivery === "broadcast") assert.deepEqual(both.tryRecv(), msg);
      view.release();
      for (let lap = 0; lap < 4; lap++) {
        const next = msg.map((b) => b ^ (lap + 1));
        c.tx.trySend(next);
        const v = c.rx.tryRecvView()!;
        assert.deepEqual(v.bytes, next, `lap ${lap}: the view shows the channel, not an old private copy`);
        v.bytes[0] = 1;
        v.release();
        if (delivery === "broadcast") both.tryRecv();
      }
    });
  });
}

function loanSendOwner(ch: Channel): void {
  const loan = ch.tryLoan();
  loan.commit(encoder.encodeInto("from the owner", loan.bytes).written);
}

describe("zero copy: bad input", () => {
  test("commit needs a length: the wrong type is a TypeError, out of range EINVAL or EMSGSIZE; the loan stays", () => {
    using c = channel("unicast", { maxMessageSize: 64 });
    const loan = c.tx.tryLoan();
    assert.throws(() => loan.commit(undefined as unknown as number), TypeError);
    assert.throws(() => loan.commit("4" as unknown as number), TypeError);
    throwsCode(() => loan.commit(-1), "EINVAL");
    throwsCode(() => loan.commit(1.5), "EINVAL");
    throwsCode(() => loan.commit(2 ** 32), "EINVAL");
    throwsCode(() => loan.commit(65), "EMSGSIZE");
    assert.throws(() => loan.commit(1, { target: "x" as unknown as number }), TypeError);
    throwsCode(() => loan.commit(1, { target: 0 }), "EINVAL");
    assert.equal(loan.pending, true);
    assert.equal(loan.commit(0), 0);
    assert.equal(c.rx.tryRecv()!.byteLength, 0);
  });
});

describe("zero copy, broadcast: the slowest receiver rule", () => {
  test("a held view gates every producer while a faster receiver reads on", () => {
    using c = channel("broadcast", { ringEntries: 4 });
    using fast = Channel.attach({ key: c.key }, "recv");
    c.tx.trySend("m0");
    const view = c.rx.tryRecvView()!;
    let sent = 1;
    assert.equal(text(fast.tryRecv()), "m0");
    for (; sent < 8; sent++) {
      try {
        c.tx.trySend(`m${sent}`);
      } catch (err) {
        assert.equal((err as { code?: string }).code, "ENOBUFS");
        break;
      }
      assert.equal(text(fast.tryRecv()), `m${sent}`);
    }
    assert.equal(sent, 4);
    assert.equal(text(view.bytes), "m0");
    view.release();
    c.tx.trySend("m4");
  });
});

describe("zero copy: a view kept too long never crashes the process", () => {
  test("past release it shows whatever the slot holds later", () => {
    using c = channel("unicast", { ringEntries: 1 });
    c.tx.trySend("first");
    const view = c.rx.tryRecvView()!;
    const kept = view.bytes;
    view.release();
    c.tx.trySend("later");
    assert.equal(text(kept), "later"); // documented: stale, not a copy
    assert.equal(text(c.rx.tryRecv()), "later");
  });

  test("past detach, destroy and the process's last handle, views and loans read zeros", () => {
    const c = channel("broadcast", { maxMessageSize: 8192 });
    c.tx.trySend(new Uint8Array(8192).fill(7));
    const view = c.rx.tryRecvView()!;
    const loan = c.tx.tryLoan();
    loan.bytes.fill(9);
    const ownerLoan = c.ch.tryLoan();
    c.rx.detach();
    assert.equal(view.held, false);
    assert.ok(view.bytes.every((b) => b === 0));
    c.tx.detach();
    assert.equal(loan.pending, false);
    assert.ok(loan.bytes.every((b) => b === 0));
    throwsCode(() => loan.commit(1), "ENOENT");
    throwsCode(() => view.release(), "ENOENT");
    c.ch.destroy();
    assert.ok(ownerLoan.bytes.every((b) => b === 0));
    // Writable too: private memory now.
    view.bytes[0] = 1;
    loan.bytes.fill(3);
    assert.equal(view.bytes[0], 1);
    // The whole region stays mapped, not just the views' slots.
    const whole = new Uint8Array(view.bytes.buffer);
    let sum = 0;
    for (let i = 0; i < whole.byteLength; i += 4096) sum += whole[i];
    assert.ok(sum >= 0);
  });

  test("regions whose buffers are collected go back; live ones still read", async () => {
    const g = globalThis as { Bun?: { gc(sync: boolean): void }; gc?: () => void };
    const keep: Uint8Array[] = [];
    for (let round = 0; round < 20; round++) {
      using c = channel("unicast", { maxMessageSize: 65536 });
      c.tx.trySend("x");
      const view = c.rx.tryRecvView()!;
      if (round % 5 === 0) keep.push(view.bytes);
    }
    g.Bun?.gc(true);
    g.gc?.();
    await sleep(10);
    g.Bun?.gc(true);
    for (const k of keep) assert.equal(k[0], 0);
  });
});

describe("zero copy across processes and runtimes", () => {
  for (const rt of runtimes) {
    test(`loans from ${rt} reach views here, and views in ${rt} get loans from here`, async () => {
      using c = channel("unicast");
      const sender = peer(rt, ["loan-send", c.key, "α", "β", "γ"]);
      assert.deepEqual(await sender.next(), { sent: 3 });
      assert.equal(await sender.exit(), 0);
      const got: string[] = [];
      for (let i = 0; i < 3; i++) {
        using v = await c.rx.recvView({ timeout: 5000 });
        got.push(text(v.bytes)!);
      }
      assert.deepEqual(got, ["α", "β", "γ"]);
      const receiver = peer(rt, ["view-recv", c.key, 2]);
      await receiver.next();
      loanSend(c.tx, "one");
      loanSend(c.tx, "two");
      assert.deepEqual(await receiver.next(), { messages: ["one", "two"] });
      assert.equal(await receiver.exit(), 0);
    });

    test(`kill -9 of a ${rt} process holding a loan: its slot is skipped, the messages after it flow`, async () => {
      using c = channel("unicast", { ringEntries: 4 });
      const holder = peer(rt, ["hold-loan", c.key]);
      await holder.next();
      c.tx.trySend("behind the loan");
      assert.equal(c.rx.tryRecv(), null);
      holder.kill();
      await holder.exit();
      const got = await c.rx.recv({ timeout: 5000 });
      assert.equal(text(got), "behind the loan");
      for (let i = 0; i < 8; i++) {
        await c.tx.send(`lap ${i}`, { timeout: 2000 });
        assert.equal(text(await c.rx.recv({ timeout: 2000 })), `lap ${i}`);
      }
    });

    test(`kill -9 of a ${rt} process holding a view: its message is lost, the ring keeps turning`, async () => {
      using c = channel("unicast", { ringEntries: 4 });
      const holder = peer(rt, ["hold-view", c.key]);
      await holder.next();
      c.tx.trySend("taken by the holder");
      assert.deepEqual(await holder.next(), { held: "taken by the holder" });
      holder.kill();
      await holder.exit();
      for (let i = 0; i < 3; i++) c.tx.trySend(`m${i}`);
      // The dead holder's slot comes back when a send needs it.
      await c.tx.send("m3", { timeout: 2000 });
      const got: string[] = [];
      for (let i = 0; i < 4; i++) got.push(text(await c.rx.recv({ timeout: 2000 }))!);
      assert.deepEqual(got, ["m0", "m1", "m2", "m3"]);
    });
  }
});
