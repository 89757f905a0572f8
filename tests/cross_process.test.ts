/**
 * Channels between processes, against a child of each runtime: under
 * `deno test` this covers Deno→Deno, Deno→Bun and Deno→Node, under
 * `bun test` Bun→Bun, Bun→Deno and Bun→Node, under `node --test`
 * Node→Node, Node→Deno and Node→Bun.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, test } from "node:test";
import { Channel } from "../mod.ts";
import {
  type Child,
  peer,
  rejectsCode,
  runtime,
  runtimes,
  sleep,
  text,
  throwsCode,
  uniqueKey,
  within,
} from "./helpers.ts";
import { checkFlood } from "./flood.ts";

const T = { timeout: 60_000 };

/** Whether `p` has settled already (it then settles within a few microtask turns; a parked wait needs I/O). */
async function settledNow(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  p.then(() => (settled = true), () => (settled = true));
  for (let i = 0; i < 4; i++) await Promise.resolve();
  return settled;
}

/** Kills whatever children a test left running, even when it failed. */
async function withChildren(fn: (spawn: typeof peer) => Promise<void>): Promise<void> {
  const children: Child[] = [];
  try {
    await fn((rt, args, opts) => {
      const c = peer(rt, args, opts);
      children.push(c);
      return c;
    });
  } finally {
    for (const c of children) c.kill();
  }
}

for (const rt of runtimes) {
  describe(`${runtime} parent, ${rt} child`, () => {
    test("the child receives what this process sends, in order", T, () =>
      withChildren(async (spawn) => {
        const key = uniqueKey();
        using ch = Channel.create({ key, ringEntries: 8 });
        const child = spawn(rt, ["recv", key, 20]);
        assert.equal((await child.next()).ready, true);
        const msgs = Array.from({ length: 20 }, (_, i) => `msg ${i}`);
        // 20 messages through an 8-slot ring: send() waits for the child to make room.
        for (const m of msgs) await within(ch.send(m), 20_000, "send");
        assert.deepEqual(await child.next(), { messages: msgs });
        assert.equal(await child.exit(), 0);
      }));

    test("a pending recv here wakes when the child sends", T, () =>
      withChildren(async (spawn) => {
        const key = uniqueKey();
        using _ch = Channel.create({ key });
        using rx = Channel.attach({ key }, "recv");
        const pending = rx.recv();
        const child = spawn(rt, ["send", key, "wake up", "and again"]);
        assert.equal(text(await within(pending, 20_000, "recv")), "wake up");
        assert.equal(text(await within(rx.recv(), 20_000, "recv")), "and again");
        assert.deepEqual(await child.next(), { sent: 2 });
        assert.equal(await child.exit(), 0);
      }));

    test("a send waiting for room here wakes when the child receives", T, () =>
      withChildren(async (spawn) => {
        const key = uniqueKey();
        using ch = Channel.create({ key, ringEntries: 2 });
        ch.trySend("1");
        ch.trySend("2");
        throwsCode(() => ch.trySend("3"), "ENOBUFS");
        const pending = ch.send("3");
        const child = spawn(rt, ["recv", key, 3]);
        assert.equal(await within(pending, 20_000, "send"), 1);
        assert.equal((await child.next()).ready, true);
        assert.deepEqual(await child.next(), { messages: ["1", "2", "3"] });
        assert.equal(await child.exit(), 0);
      }));

    test("broadcast reaches every child process", T, () =>
      withChildren(async (spawn) => {
        const key = uniqueKey();
        using ch = Channel.create({ key, delivery: "broadcast", ringEntries: 4 });
        const kids = [spawn(rt, ["recv", key, 10]), spawn(runtime, ["recv", key, 10])];
        for (const k of kids) assert.equal((await k.next()).ready, true);
        const msgs = Array.from({ length: 10 }, (_, i) => `b${i}`);
        for (const m of msgs) await within(ch.send(m), 20_000, "send");
        for (const k of kids) {
          assert.deepEqual(await k.next(), { messages: msgs });
          assert.equal(await k.exit(), 0);
        }
      }));

    test("multicast gives each message to exactly one child process", T, () =>
      withChildren(async (spawn) => {
        const key = uniqueKey();
        using ch = Channel.create({ key, delivery: "multicast", ringEntries: 16 });
        const kids = [spawn(rt, ["recv-until-stop", key]), spawn(runtime, ["recv-until-stop", key])];
        const ids: number[] = [];
        for (const k of kids) {
          const line = await k.next();
          assert.equal(line.ready, true);
          ids.push(line.id as number);
        }
        const msgs = Array.from({ length: 100 }, (_, i) => `w${i}`);
        for (const m of msgs) await within(ch.send(m), 20_000, "send");
        for (const id of ids) await within(ch.send("STOP", { target: id }), 20_000, "send STOP");
        const got: string[] = [];
        for (const k of kids) {
          got.push(...((await k.next()).messages as string[]));
          assert.equal(await k.exit(), 0);
        }
        assert.equal(got.length, msgs.length);
        assert.deepEqual([...got].sort(), [...msgs].sort());
      }));

    test("request/reply: targeted replies reach only the requester", T, () =>
      withChildren(async (spawn) => {
        const key = uniqueKey();
        using _ch = Channel.create({ key });
        using me = Channel.attach({ key }, "both");
        using bystander = Channel.attach({ key }, "recv");
        const server = spawn(rt, ["echo", key]);
        const { id: serverId } = await server.next<{ id: number }>();
        for (const body of ["ping", "pong", "é✓"]) {
          await me.send(JSON.stringify({ from: me.id, body }), { target: serverId });
          const reply = JSON.parse(text(await within(me.recv(), 20_000, "reply"))!);
          assert.deepEqual(reply, { echo: body, by: serverId });
        }
        await me.send(JSON.stringify({ from: me.id, body: "STOP" }), { target: serverId });
        assert.deepEqual(await server.next(), { served: 3 });
        assert.equal(await server.exit(), 0);
        assert.equal(bystander.tryRecv(), null);
      }));

    test(
      "a channel whose creator is killed leaves lookup; attached processes keep working",
      T,
      () =>
        withChildren(async (spawn) => {
          const key = uniqueKey();
          const creator = spawn(rt, ["create", key]);
          const { id } = await creator.next<{ id: number }>();
          using sub = Channel.attach({ key }, "both");
          assert.equal(sub.channelId, id);
          creator.kill("SIGKILL");
          assert.equal(await creator.exit(), "SIGKILL");
          throwsCode(() => Channel.attach({ key }, "recv"), "ENOENT");
          throwsCode(() => Channel.attach({ id }, "recv"), "ENOENT");
          sub.trySend("still works");
          assert.equal(text(sub.tryRecv()), "still works");
          using again = Channel.create({ key });
          assert.equal(again.key, key);
        }),
    );

    test(
      "producers killed with -9 at random moments: every message received is intact, in order, once",
      T,
      () =>
        withChildren(async (spawn) => {
          const key = uniqueKey();
          using _ch = Channel.create({ key, ringEntries: 16, maxMessageSize: 256 });
          using rx = Channel.attach({ key }, "recv");
          const ROUNDS = 6;
          let checked = 0;
          for (let round = 0; round < ROUNDS; round++) {
            const producer = spawn(rt, ["flood", key, round]);
            assert.equal((await producer.next()).ready, true);
            // Receive for a random while, then kill it wherever it is (it
            // may be mid-write: the slot must be skipped, never delivered).
            const until = performance.now() + 5 + Math.random() * 40;
            let next = 0;
            while (performance.now() < until || next === 0) {
              const msg = await within(rx.recv(), 20_000, "a flood message");
              const got = checkFlood(msg);
              assert.ok(got, `round ${round}: a torn or foreign message`);
              assert.deepEqual(got, { producer: round, seq: next }, `round ${round}: out of order`);
              next++;
            }
            producer.kill("SIGKILL");
            assert.equal(await producer.exit(), "SIGKILL");
            // What it published before dying is still there, in order.
            for (;;) {
              const msg = rx.tryRecv() ?? (await rx.recv({ timeout: 50 }).catch(() => null));
              if (msg === null) break;
              assert.deepEqual(checkFlood(msg), { producer: round, seq: next }, `round ${round}: after the kill`);
              next++;
            }
            checked += next;
          }
          // The ring still works for the living.
          using tx = Channel.attach({ key }, "send");
          tx.trySend("after the kills");
          assert.equal(text(await within(rx.recv(), 20_000, "after the kills")), "after the kills");
          assert.ok(checked >= ROUNDS);
        }),
    );

    for (const delivery of ["unicast", "multicast"] as const) {
      test(
        `${delivery}: competing consumers killed with -9 lose at most what they had taken; the ring keeps going`,
        T,
        () =>
          withChildren(async (spawn) => {
            const key = uniqueKey();
            using ch = Channel.create({ key, delivery, ringEntries: 8, maxMessageSize: 256 });
            using rx = Channel.attach({ key }, "recv");
            let sent = 0;
            const seen = new Set<number>();
            for (let round = 0; round < 4; round++) {
              const victim = spawn(rt, ["consume", key]);
              assert.equal((await victim.next()).ready, true);
              // Both consume while this process sends; then the victim dies,
              // maybe in the middle of taking a message.
              const until = performance.now() + 5 + Math.random() * 30;
              while (performance.now() < until) {
                if (ch.trySendMany([String(sent)]) === 1) sent++;
                const msg = rx.tryRecv();
                if (msg !== null) seen.add(Number(text(msg)));
                await sleep(0);
              }
              victim.kill("SIGKILL");
              assert.equal(await victim.exit(), "SIGKILL");
            }
            // Several laps of the 8-slot ring with only the live consumer: a
            // slot the dead had taken must come back, or sends would stall.
            const base = sent;
            for (let i = 0; i < 40; i++, sent++) {
              await within(ch.send(String(sent)), 20_000, `send ${sent} after the kills`);
              for (let msg = rx.tryRecv(); msg !== null; msg = rx.tryRecv()) seen.add(Number(text(msg)));
            }
            for (;;) {
              const msg = await rx.recv({ timeout: 200 }).catch(() => null);
              if (msg === null) break;
              seen.add(Number(text(msg)));
            }
            // Everything sent after the kills arrived here, once.
            for (let i = base; i < sent; i++) assert.ok(seen.has(i), `message ${i} after the kills`);
          }),
      );
    }

    test(
      "a killed creator's files leave /dev/shm at the next attach of its uid",
      T,
      () =>
        withChildren(async (spawn) => {
          const key = uniqueKey();
          const creator = spawn(rt, ["create", key]);
          const { id } = await creator.next<{ id: number }>();
          // Listed by ls: Deno grants /dev paths only with --allow-all. A
          // channel's names: its directory and its id link.
          const names = [`shmchan.${key.toString(16).padStart(16, "0")}`, `shmchan.id.${id}`];
          const files = () =>
            execFileSync("ls", ["/dev/shm"], { encoding: "utf8" })
              .split("\n")
              .filter((f) => names.includes(f));
          assert.equal(files().length, 2);
          creator.kill("SIGKILL");
          assert.equal(await creator.exit(), "SIGKILL");
          throwsCode(() => Channel.attach({ key }, "recv"), "ENOENT"); // and sweeps
          assert.deepEqual(files(), []);
        }),
    );

    test(
      "a killed broadcast receiver stops holding back a sender waiting for room",
      T,
      () =>
        withChildren(async (spawn) => {
          const key = uniqueKey();
          using ch = Channel.create({ key, delivery: "broadcast", ringEntries: 2 });
          using live = Channel.attach({ key }, "recv");
          const child = spawn(rt, ["stay", key, "recv"]);
          assert.equal((await child.next()).ready, true);
          ch.trySend("1");
          ch.trySend("2");
          assert.deepEqual(live.tryRecvMany().map(text), ["1", "2"]);
          throwsCode(() => ch.trySend("3"), "ENOBUFS"); // the child has read nothing
          const pending = ch.send("3");
          child.kill("SIGKILL");
          assert.equal(await child.exit(), "SIGKILL");
          assert.equal(await within(pending, 20_000, "send after the receiver died"), 1);
          assert.equal(text(live.tryRecv()), "3");
        }),
    );

    test(
      "a pending recv() alone keeps the child alive until its message comes",
      T,
      () =>
        withChildren(async (spawn) => {
          const key = uniqueKey();
          using ch = Channel.create({ key });
          const child = spawn(rt, ["recv-forever", key]);
          assert.equal((await child.next()).ready, true);
          await sleep(300); // long enough for a child that is not kept alive to exit
          ch.trySend("worth the wait");
          assert.deepEqual(await child.next(), { message: "worth the wait" });
          assert.equal(await child.exit(), 0);
        }),
    );

    test(
      "a receive here that timed out does not take the wakeup meant for a waiting child",
      T,
      () =>
        withChildren(async (spawn) => {
          const key = uniqueKey();
          using ch = Channel.create({ key });
          using mine = Channel.attach({ key }, "recv");
          const child = spawn(rt, ["recv-forever", key]);
          assert.equal((await child.next()).ready, true);
          await sleep(100); // let the child park
          await rejectsCode(mine.recv({ timeout: 20 }), "ETIMEDOUT");
          ch.trySend("for whoever waits");
          assert.deepEqual(await child.next(), { message: "for whoever waits" });
          assert.equal(mine.tryRecv(), null);
          assert.equal(await child.exit(), 0);
        }),
    );

    test(
      "a recv pending at detach rejects ENOENT, and the child then exits by itself",
      T,
      () =>
        withChildren(async (spawn) => {
          const key = uniqueKey();
          using _ch = Channel.create({ key });
          const child = spawn(rt, ["detach-pending", key]);
          assert.deepEqual(await child.next(), { code: "ENOENT" });
          assert.equal(await child.exit(), 0);
        }),
    );

    test("`spin: N` keeps trying for N µs: a message another process sends meanwhile is taken without parking", T, () =>
      withChildren(async (spawn) => {
        const key = uniqueKey();
        using _ch = Channel.create({ key });
        using rx = Channel.attach({ key }, "recv");
        const sender = spawn(rt, ["send-later", key, 200, "caught spinning"]);
        assert.equal((await sender.next()).ready, true);
        // Blocks this thread for up to 1 s, retrying: the message comes after about 200 ms.
        const pending = rx.recv({ spin: 1_000_000 });
        assert.equal(await settledNow(pending), true, "the wait ended within its spin");
        assert.equal(text(await pending), "caught spinning");
        assert.equal(await sender.exit(), 0);
      }));

    test("`spin: 0` parks at once: the wait ends with the doorbell byte", T, () =>
      withChildren(async (spawn) => {
        const key = uniqueKey();
        using _ch = Channel.create({ key });
        using rx = Channel.attach({ key }, "recv");
        const sender = spawn(rt, ["send-later", key, 200, "rung"]);
        assert.equal((await sender.next()).ready, true);
        const pending = rx.recv({ spin: 0 });
        assert.equal(await settledNow(pending), false, "parked, not spinning");
        assert.equal(text(await within(pending, 20_000, "the parked receive")), "rung");
        assert.equal(await sender.exit(), 0);
      }));

    test("a parked receiver, no timer armed, skips a dead writer's slot once a send rings it", T, () =>
      withChildren(async (spawn) => {
        const key = uniqueKey();
        using ch = Channel.create({ key, ringEntries: 8, maxMessageSize: 64 });
        using rx = Channel.attach({ key }, "recv");
        ch.trySend("before"); // the dead slot is not the channel's first position
        assert.equal(text(rx.tryRecv()), "before");
        const writer = spawn(rt, ["stay", key, "send"]);
        assert.equal((await writer.next()).ready, true);
        writer.kill("SIGKILL");
        assert.equal(await writer.exit(), "SIGKILL");
        // The dead writer "claimed" the next position and never published it.
        // (Bun stages it: Deno opens /dev/shm files only with --allow-all.)
        const stager = spawn("bun", ["stage-dead-writer", key, writer.process.pid!]);
        assert.ok((await stager.next<{ position: string }>()).position !== undefined);
        assert.equal(await stager.exit(), 0);
        const pending = rx.recv(); // parks: the next position is unpublished
        assert.equal(await settledNow(pending), false);
        // Published behind the stalled slot, and rings rx: its retry finds the
        // slot stalled for under 10 ms, too soon to probe the writer, so it
        // looks again 25 ms later (the one probe timer) and skips the slot.
        ch.trySend("after the dead writer");
        assert.equal(text(await within(pending, 20_000, "the message behind the dead slot")), "after the dead writer");
        ch.trySend("and the next");
        assert.equal(text(await within(rx.recv(), 20_000, "the next message")), "and the next");
      }));

    test("a receiver parked for 500 ms uses almost no CPU", T, () =>
      withChildren(async (spawn) => {
        const key = uniqueKey();
        using _ch = Channel.create({ key });
        const child = spawn(rt, ["idle-cpu", key, 500]);
        const line = await child.next<{ code: string; cpuMs: number }>();
        assert.equal(line.code, "ETIMEDOUT");
        // A busy-polling waiter would burn close to 500 ms here.
        assert.ok(line.cpuMs < 150, `parked receiver used ${line.cpuMs} ms of CPU in 500 ms`);
        assert.equal(await child.exit(), 0);
      }));
  });
}

describe(`${runtime} parent, a Node cluster worker`, () => {
  test(
    "a worker's pending recv wakes on its own doorbell when this process sends",
    T,
    () =>
      withChildren(async (spawn) => {
        const key = uniqueKey();
        using ch = Channel.create({ key });
        const child = spawn("node", ["cluster-recv", key]);
        assert.equal((await child.next()).ready, true, child.stderr);
        ch.trySend("to the worker");
        assert.deepEqual(await child.next(), { message: "to the worker" });
        assert.deepEqual(await child.next(), { workerExit: 0 });
        assert.equal(await child.exit(), 0);
      }),
  );
});
