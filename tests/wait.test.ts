/**
 * csrc/DESIGN.md §4, "Adaptive spinning": the rule that decides whether a
 * wait spins before it parks, driven with a synthetic clock (no timing is
 * asserted); and shmc_try_recv_park, the one native call in which a parked
 * receive takes or parks, through each runtime's binding. The cross-process
 * behaviour of the `spin` option is in cross_process.test.ts.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Channel } from "../mod.ts";
import { SHMC_DOORBELL_PATH_MAX, SHMC_RECV, SHMC_SEND, SHMC_TAKE_UNPARK, SHMC_WAIT_RECV } from "../src/backend.ts";
import { errnoOf } from "../src/errors.ts";
import { backend, lib } from "../src/library.ts";
import { MissBudget, SpinPolicy } from "../src/wait.ts";
import { uniqueKey } from "./helpers.ts";

/** Runs `n` waits starting `everyUs` apart from `t0` ms; `outcome` says whether each spin pays. */
function drive(
  p: SpinPolicy,
  n: number,
  everyUs: number,
  outcome: (i: number) => boolean,
  t0 = 0,
): { spins: boolean[]; end: number } {
  const spins: boolean[] = [];
  let t = t0;
  for (let i = 0; i < n; i++, t += everyUs / 1000) {
    const us = p.budget(t);
    spins.push(us > 0);
    if (us > 0) {
      assert.ok(us <= 30, `a spin is bounded (${us} µs)`);
      const hit = outcome(i);
      p.record(hit, hit ? 1 : us);
    }
  }
  return { spins, end: t };
}

const count = (v: boolean[]) => v.filter(Boolean).length;

describe("adaptive spinning", () => {
  test("a wait spins while recent spins paid", () => {
    const p = new SpinPolicy(new MissBudget());
    const { spins } = drive(p, 500, 1000, () => true);
    assert.equal(count(spins), 500);
  });

  test("when spins miss, sparse waits park at once and probe at most one wait in 1024", () => {
    const p = new SpinPolicy(new MissBudget());
    const { spins } = drive(p, 4096, 1000, () => false);
    assert.ok(count(spins.slice(0, 16)) <= 8, "the credit runs out after a few misses");
    // The probe gap doubles with each probe that misses, up to 1024 waits.
    const late = spins.slice(2048);
    assert.ok(count(late) <= 2048 / 1024 + 1, `late probes: ${count(late)}`);
    assert.ok(count(late) >= 1, "it still probes");
  });

  test("a probe that pays brings spinning back at once", () => {
    const p = new SpinPolicy(new MissBudget());
    const { end } = drive(p, 2048, 1000, () => false);
    // Waits until the next probe, which now finds what it waits for.
    let t = end;
    while (p.budget(t) === 0) t += 1;
    p.record(true, 1);
    const after = drive(p, 100, 1000, () => true, t + 1);
    assert.equal(count(after.spins), 100);
  });

  test("dense traffic spins though spins miss, within the miss budget, which refills with time", () => {
    const budget = new MissBudget(50_000, 0.01);
    const p = new SpinPolicy(budget);
    // Waits 5 µs apart, every spin missing its full 30 µs.
    const first = drive(p, 4000, 5, () => false);
    const spunUs = count(first.spins) * 30;
    assert.ok(count(first.spins.slice(100, 200)) === 100, "dense waits keep spinning");
    assert.ok(spunUs >= 50_000 && spunUs <= 50_000 + 30 + 4000 * 5 * 0.01 + 30, `spun ${spunUs} µs`);
    // Spent: only what 1% of the time refills (500 waits of 5 µs: 25 µs, one spin at most).
    assert.ok(count(first.spins.slice(-500)) <= 1, "almost no spinning once the budget is spent");
    // A second later the budget holds 1% of it again: 10 ms, about 333 spins.
    const later = drive(p, 1000, 5, () => false, first.end + 1000);
    assert.ok(count(later.spins) >= 300 && count(later.spins) <= 340, `spins after a second: ${count(later.spins)}`);
  });

  test("the miss budget bounds all the handles of a process together", () => {
    const budget = new MissBudget(50_000, 0.01);
    const a = new SpinPolicy(budget), b = new SpinPolicy(budget);
    let t = 0, spun = 0;
    for (let i = 0; i < 8000; i++, t += 0.005) {
      for (const p of [a, b]) {
        const us = p.budget(t);
        if (us > 0) {
          p.record(false, us);
          spun += us;
        }
      }
    }
    assert.ok(spun <= 50_000 + 8000 * 5 * 0.01 + 60, `spun ${spun} µs in all`);
  });

  test("wouldSpin foresees budget exactly and changes nothing", () => {
    const p = new SpinPolicy(new MissBudget(2_000, 0.01));
    const q = new SpinPolicy(new MissBudget(2_000, 0.01));
    // Dense, then sparse, then dense waits; spins pay every third time.
    let t = 0;
    for (let i = 0; i < 3000; i++) {
      t += (i % 1000 < 500 ? 5 : 2000) / 1000;
      const foreseen = p.wouldSpin(t);
      assert.equal(p.wouldSpin(t), foreseen, "asking again changes nothing");
      const us = p.budget(t), other = q.budget(t);
      assert.equal(us > 0, foreseen, `wait ${i}: foreseen ${foreseen}, budget ${us}`);
      assert.equal(us, other, `wait ${i}: a policy that was never asked decides the same`);
      if (us > 0) {
        p.record(i % 3 === 0, i % 3 === 0 ? 1 : us);
        q.record(i % 3 === 0, i % 3 === 0 ? 1 : us);
      }
    }
  });
});

describe("shmc_try_recv_park through the binding", () => {
  const EAGAIN = -errnoOf("EAGAIN"), EINVAL = -errnoOf("EINVAL"), EACCES = -errnoOf("EACCES");
  const ENOTCONN = -errnoOf("ENOTCONN");

  test("takes a message that is there, parks when there is none, withdraws with SHMC_TAKE_UNPARK", () => {
    const key = uniqueKey();
    using ch = Channel.create({ key, maxMessageSize: 16 });
    const native = lib();
    const rx = native.shmc_attach_key(key, SHMC_RECV), tx = native.shmc_attach_key(key, SHMC_SEND);
    assert.ok(rx > 0 && tx > 0);
    let bell: { close(): void } | undefined;
    try {
      const buf = new Uint8Array(16);
      assert.equal(native.shmc_try_send(tx, new Uint8Array([1, 2, 3]), 3, 0), 3);
      assert.equal(native.shmc_try_recv_park(rx, buf, buf.byteLength, 0), 3, "taken");
      assert.deepEqual(buf.subarray(0, 3), new Uint8Array([1, 2, 3]));
      assert.equal(native.shmc_try_recv_park(rx, buf, buf.byteLength, 0), ENOTCONN, "nothing, no doorbell: not parked");
      // The handle's receive doorbell, made as the waits make it.
      const path = new Uint8Array(SHMC_DOORBELL_PATH_MAX);
      const n = native.shmc_doorbell_path(rx, SHMC_WAIT_RECV, path, path.byteLength);
      assert.ok(n > 0);
      bell = backend.listenDoorbell(new TextDecoder().decode(path.subarray(0, n)), () => {});
      assert.equal(native.shmc_doorbell_seal(rx, SHMC_WAIT_RECV), 0);
      assert.equal(native.shmc_try_recv_park(rx, buf, buf.byteLength, 0), EAGAIN, "nothing: parked");
      // A send wakes the parked handle; the take withdraws what is left of the park.
      assert.equal(native.shmc_try_send(tx, new Uint8Array([4]), 1, 0), 1);
      assert.equal(native.shmc_try_recv_park(rx, buf, buf.byteLength, SHMC_TAKE_UNPARK), 1);
      assert.equal(buf[0], 4);
      assert.equal(native.shmc_unpark(rx, SHMC_WAIT_RECV), 0);
      assert.equal(native.shmc_try_recv_park(rx, buf, buf.byteLength, 2), EINVAL, "unknown flags");
      assert.equal(native.shmc_try_recv_park(tx, buf, buf.byteLength, 0), EACCES, "a send-only handle");
      assert.equal(native.shmc_try_recv_park(rx, buf, buf.byteLength, 0), EAGAIN);
      assert.equal(native.shmc_unpark(rx, SHMC_WAIT_RECV), 0);
      void ch;
    } finally {
      native.shmc_detach(rx);
      native.shmc_detach(tx);
      bell?.close();
    }
  });
});
