/**
 * Looking inside channels from the API: Channel.list(), stats() on a handle
 * and Channel.stats() by key or id, Channel.remove(), Channel.gc(), against
 * channels and members of other processes (csrc/DESIGN.md §11).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, test } from "node:test";
import { Channel } from "../mod.ts";
import { isRoot, peer, runtime, sleep, text, throwsCode, uniqueKey, unprivilegedBlocker } from "./helpers.ts";

const T = { timeout: 30_000 };
const dirOf = (key: bigint) => `/dev/shm/shmchan.${key.toString(16).padStart(16, "0")}`;
/** Whether a path exists (through test(1): Deno needs --allow-all to look into /dev). */
const existsSync = (path: string) => spawnSync("test", ["-e", path]).status === 0;

/** Polls `fn` until it returns true (a hang guard of `ms`). */
async function until(fn: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`hang guard: ${what}`);
    await sleep(10);
  }
}

describe("Channel.list()", () => {
  test("lists a channel another process created, with its description", T, async () => {
    const key = uniqueKey();
    const child = peer(runtime, ["create", key, "broadcast", 0o640]);
    try {
      const { id } = await child.next<{ id: number }>();
      const entry = Channel.list().find((c) => c.key === key);
      assert.ok(entry, "the channel is listed");
      assert.deepEqual(entry, {
        key,
        id,
        delivery: "broadcast",
        mode: 0o640,
        private: false,
        ownerUid: process.getuid!(),
        creatorPid: child.process.pid,
        members: 1,
        ringEntries: 256,
        maxMessageSize: 4096,
        waiting: 0,
      });
    } finally {
      child.kill();
      await child.exit();
    }
    assert.equal(Channel.list().find((c) => c.key === key), undefined, "gone with its creator");
  });

  test("counts the members and the messages waiting", T, () => {
    const key = uniqueKey();
    using ch = Channel.create({ key, ringEntries: 8 });
    using sub = Channel.attach({ key }, "recv");
    ch.trySend("a");
    ch.trySend("b");
    ch.trySend("c");
    assert.equal(text(sub.tryRecv()), "a");
    const entry = Channel.list().find((c) => c.key === key)!;
    assert.equal(entry.members, 2);
    assert.equal(entry.waiting, 2);
    assert.equal(entry.ringEntries, 8);
  });
});

describe("stats()", () => {
  test("counters match what another process sent and what this one received", T, async () => {
    const key = uniqueKey();
    using ch = Channel.create({ key });
    using sub = Channel.attach({ key }, "recv");
    const child = peer(runtime, ["send", key, "one", "two", "three"]);
    assert.deepEqual(await child.next(), { sent: 3 });
    assert.equal(await child.exit(), 0);
    assert.equal(text(await sub.recv({ timeout: 5000 })), "one");
    assert.equal(text(await sub.recv({ timeout: 5000 })), "two");
    const s = Channel.stats({ key });
    assert.equal(s.key, key);
    assert.equal(s.id, ch.id);
    assert.equal(s.counters.sent, 3);
    assert.equal(s.counters.sentBytes, 3 + 3 + 5);
    assert.equal(s.counters.received, 2);
    assert.equal(s.counters.receivedBytes, 6);
    assert.equal(s.counters.full, 0);
    assert.equal(s.waiting, 1);
    assert.equal(s.live, 2, "the sender detached: its counts were folded into the channel's");
    const me = s.members.find((m) => m.id === sub.id)!;
    assert.equal(me.access, "recv");
    assert.equal(me.alive, true);
    assert.equal(me.counters.received, 2);
    assert.equal(me.behind, 1);
    assert.deepEqual(sub.stats().counters, s.counters);
    assert.deepEqual(ch.stats().counters, s.counters);
    assert.deepEqual(Channel.stats({ id: ch.id }).counters, s.counters);
  });

  test("a killed sender's counts are kept: where it lies, then folded when its slot is reclaimed", T, async () => {
    const key = uniqueKey();
    using ch = Channel.create({ key, ringEntries: 16, maxMessageSize: 256 });
    const child = peer(runtime, ["flood", key, 1]);
    await child.next();
    await until(() => Channel.stats({ key }).counters.sent === 16, "the flood to fill the ring");
    await until(() => Channel.stats({ key }).counters.full >= 1, "a refused send");
    child.kill("SIGKILL");
    await child.exit();
    let s = Channel.stats({ key });
    const dead = s.members.find((m) => !m.owner)!;
    assert.equal(dead.alive, false);
    assert.equal(dead.counters.sent, 16);
    assert.equal(s.counters.sent, 16);
    using again = Channel.attach({ key }, "send"); // takes the dead member's slot
    s = Channel.stats({ key });
    assert.equal(s.members.length, 2);
    assert.ok(s.members.every((m) => m.alive), "the dead member's file is gone");
    assert.equal(s.counters.sent, 16, "its counts were folded in");
    assert.ok(s.counters.full >= 1);
    assert.equal(s.waiting, 16);
    assert.equal(again.stats().counters.sent, 16);
    ch.destroy();
  });

  test("a parked receiver counts its parks; the sender that woke it, its wakes", T, async () => {
    const key = uniqueKey();
    using ch = Channel.create({ key });
    using sub = Channel.attach({ key }, "recv");
    const got = sub.recv({ timeout: 5000, spin: 0 });
    await until(() => Channel.stats({ key }).members.some((m) => m.parked.recv), "the receiver to park");
    ch.trySend("wake up");
    assert.equal(text(await got), "wake up");
    const s = ch.stats();
    assert.ok(s.members.find((m) => m.id === sub.id)!.counters.parks >= 1);
    assert.ok(s.members.find((m) => m.owner)!.counters.wakes >= 1);
  });

  test("bad targets: EINVAL, ENOENT, TypeError; a closed handle: ENOENT", () => {
    throwsCode(() => Channel.stats({ key: 0n }), "EINVAL");
    throwsCode(() => Channel.stats({ id: 0 }), "EINVAL");
    throwsCode(() => Channel.stats({ key: uniqueKey() }), "ENOENT");
    assert.throws(() => Channel.stats({} as { key: bigint }), TypeError);
    assert.throws(() => Channel.stats({ key: 1n, id: 1 } as unknown as { key: bigint }), TypeError);
    const ch = Channel.create({ key: uniqueKey() });
    ch.destroy();
    throwsCode(() => ch.stats(), "ENOENT");
  });
});

describe("Channel.remove() and Channel.gc()", () => {
  test("remove: attaches fail with ENOENT, the key is free, members go on", T, async () => {
    const key = uniqueKey();
    using ch = Channel.create({ key });
    using sub = Channel.attach({ key }, "recv");
    Channel.remove({ key });
    throwsCode(() => Channel.attach({ key }, "send"), "ENOENT");
    throwsCode(() => Channel.remove({ key }), "ENOENT");
    ch.trySend("still here");
    assert.equal(text(sub.tryRecv()), "still here");
    Channel.create({ key }).destroy(); // the key is free
    const child = peer(runtime, ["attach", key, "recv"]);
    assert.deepEqual(await child.next(), { ok: false, code: "ENOENT" });
  });

  test("remove by id", () => {
    const key = uniqueKey();
    using ch = Channel.create({ key });
    Channel.remove({ id: ch.id });
    throwsCode(() => Channel.attach({ id: ch.id }, "recv"), "ENOENT");
  });

  test("gc sweeps a killed creator's channel", T, async () => {
    const key = uniqueKey();
    const child = peer(runtime, ["create", key]);
    await child.next();
    child.kill("SIGKILL");
    await child.exit();
    assert.ok(existsSync(dirOf(key)), "left behind by kill -9");
    assert.ok(Channel.gc() >= 2, "its directory and id link");
    assert.ok(!existsSync(dirOf(key)));
  });
});

const NOBODY = 65534;
const blocker = isRoot() ? unprivilegedBlocker(NOBODY) : "not running as root";
const childEnv = { DENO_DIR: `/tmp/shmchan-test-deno-${NOBODY}`, BUN_RUNTIME_TRANSPILER_CACHE_PATH: "0", HOME: "/tmp" };

describe(`remove as another uid (setpriv --reuid=${NOBODY}), as root only`, { skip: blocker ?? undefined }, () => {
  test("a non-owner is refused with EACCES and the channel stays", { timeout: 60_000 }, async () => {
    const key = uniqueKey();
    using _ch = Channel.create({ key, mode: 0o666 });
    const child = peer(runtime, ["remove-why", key], { asUser: NOBODY, env: childEnv });
    const line = await child.next<{ ok: boolean; code: string; message: string }>(50_000);
    assert.equal(line.ok, false);
    assert.equal(line.code, "EACCES");
    assert.match(line.message, /uid 0/);
    using sub = Channel.attach({ key }, "recv");
    assert.ok(sub.id > 0);
  });
});
