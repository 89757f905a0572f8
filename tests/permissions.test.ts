/** SPEC §2: access rights, mode bits, private channels; the OS check (as root). */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Channel, ChannelError } from "../mod.ts";
import { isRoot, peer, rejectsCode, runtime, text, throwsCode, uniqueKey, unprivilegedBlocker } from "./helpers.ts";

describe("access", () => {
  test("a receive-only subscriber that sends gets EACCES", async () => {
    const key = uniqueKey();
    using _ch = Channel.create({ key });
    using rx = Channel.attach({ key }, "recv");
    throwsCode(() => rx.trySend("x"), "EACCES");
    throwsCode(() => rx.trySendMany(["x"]), "EACCES");
    await rejectsCode(rx.send("x"), "EACCES");
  });

  test("a send-only subscriber that receives gets EACCES", async () => {
    const key = uniqueKey();
    using ch = Channel.create({ key });
    using tx = Channel.attach({ key }, "send");
    ch.trySend("waiting");
    throwsCode(() => tx.tryRecv(), "EACCES");
    throwsCode(() => tx.tryRecvInto(new Uint8Array(4)), "EACCES");
    throwsCode(() => tx.tryRecvMany(), "EACCES");
    await rejectsCode(tx.recv(), "EACCES");
    await rejectsCode(tx.recvInto(new Uint8Array(4)), "EACCES");
  });
});

describe("owners", () => {
  test("ownerUid is the creator's uid, on the owner handle and on subscribers", () => {
    const key = uniqueKey();
    using ch = Channel.create({ key });
    using sub = Channel.attach({ key }, "recv");
    const uid = typeof process.getuid === "function" ? process.getuid() : ch.ownerUid;
    assert.equal(ch.ownerUid, uid);
    assert.equal(sub.ownerUid, uid);
  });

  test("attach with owner: the owner's uid attaches, another is EACCES naming both", () => {
    const key = uniqueKey();
    using ch = Channel.create({ key });
    using mine = Channel.attach({ key, owner: ch.ownerUid }, "recv");
    assert.equal(mine.ownerUid, ch.ownerUid);
    using byId = Channel.attach({ id: ch.id, owner: ch.ownerUid }, "send");
    assert.equal(byId.channelId, ch.id);
    const other = ch.ownerUid + 1;
    assert.throws(() => Channel.attach({ key, owner: other }, "recv"), (err: unknown) => {
      assert.ok(err instanceof ChannelError);
      assert.equal(err.code, "EACCES");
      assert.match(err.message, new RegExp(`uid ${ch.ownerUid}.*not of uid ${other}`));
      return true;
    });
    throwsCode(() => Channel.attach({ id: ch.id, owner: other }, "recv"), "EACCES");
    assert.throws(() => Channel.attach({ key, owner: -1 }, "recv"), ChannelError);
    assert.throws(() => Channel.attach({ key, owner: "0" as unknown as number }, "recv"), TypeError);
  });

  test("a key in use: EEXIST says whose channel holds it", () => {
    const key = uniqueKey();
    using ch = Channel.create({ key });
    assert.throws(() => Channel.create({ key }), (err: unknown) => {
      assert.ok(err instanceof ChannelError);
      assert.equal(err.code, "EEXIST");
      assert.match(err.message, new RegExp(`a live channel of uid ${ch.ownerUid}`));
      return true;
    });
  });
});

describe("mode bits (the caller is the owner: owner bits; root gets no bypass)", () => {
  test("write-only (0o200): attach to send works, to receive is EACCES", () => {
    const key = uniqueKey();
    using _ch = Channel.create({ key, mode: 0o200 });
    using tx = Channel.attach({ key }, "send");
    assert.equal(tx.access, "send");
    throwsCode(() => Channel.attach({ key }, "recv"), "EACCES");
    throwsCode(() => Channel.attach({ key }, "both"), "EACCES");
  });

  test("read-only (0o400): attach to receive works; sending, the owner's too, is EACCES", () => {
    const key = uniqueKey();
    using ch = Channel.create({ key, mode: 0o400 });
    using rx = Channel.attach({ key }, "recv");
    assert.equal(rx.access, "recv");
    throwsCode(() => Channel.attach({ key }, "send"), "EACCES");
    throwsCode(() => Channel.attach({ key }, "both"), "EACCES");
    throwsCode(() => ch.trySend("x"), "EACCES");
  });

  test("no bits (0o000): everything is EACCES", () => {
    const key = uniqueKey();
    using ch = Channel.create({ key, mode: 0 });
    for (const access of ["send", "recv", "both"] as const) throwsCode(() => Channel.attach({ key }, access), "EACCES");
    throwsCode(() => Channel.attach({ id: ch.id }, "recv"), "EACCES");
    throwsCode(() => ch.trySend("x"), "EACCES");
  });

  test("group and other bits do not grant the owner anything (0o066)", () => {
    const key = uniqueKey();
    using _ch = Channel.create({ key, mode: 0o066 });
    throwsCode(() => Channel.attach({ key }, "recv"), "EACCES");
  });
});

const NOBODY = 65534;
/** Starting a runtime as another uid compiles the sources afresh: allow time. */
const SLOW = { timeout: 60_000 };
const blocker = isRoot() ? unprivilegedBlocker(NOBODY) : "not running as root";
const childEnv = {
  // The unprivileged child cannot write root's caches.
  DENO_DIR: `/tmp/shmchan-test-deno-${NOBODY}`,
  BUN_RUNTIME_TRANSPILER_CACHE_PATH: "0",
  HOME: "/tmp",
};

describe(`another uid (setpriv --reuid=${NOBODY}), as root only`, { skip: blocker ?? undefined }, () => {
  const rt = runtime;

  test("mode 0o600: the other uid cannot attach (EACCES)", SLOW, async () => {
    const key = uniqueKey();
    using _ch = Channel.create({ key, mode: 0o600 });
    for (const access of ["recv", "send"]) {
      const child = peer(rt, ["attach", key, access], { asUser: NOBODY, env: childEnv });
      const line = await child.next();
      assert.deepEqual(line, { ok: false, code: "EACCES" }, child.stderr);
      assert.equal(await child.exit(), 0);
    }
  });

  test("mode 0o666: the other uid attaches and its message arrives", SLOW, async () => {
    const key = uniqueKey();
    using _ch = Channel.create({ key, mode: 0o666 });
    using rx = Channel.attach({ key }, "recv");
    const child = peer(rt, ["send", key, "from nobody"], { asUser: NOBODY, env: childEnv });
    assert.deepEqual(await child.next(), { sent: 1 }, child.stderr);
    assert.equal(await child.exit(), 0);
    assert.equal(text(await rx.recv({ timeout: 10_000 })), "from nobody");
  });

  test("mode 0o644: the other uid may receive but not send", SLOW, async () => {
    const key = uniqueKey();
    using _ch = Channel.create({ key, mode: 0o644 });
    const recvChild = peer(rt, ["attach", key, "recv"], { asUser: NOBODY, env: childEnv });
    assert.equal((await recvChild.next()).ok, true, recvChild.stderr);
    const sendChild = peer(rt, ["attach", key, "send"], { asUser: NOBODY, env: childEnv });
    assert.deepEqual(await sendChild.next(), { ok: false, code: "EACCES" }, sendChild.stderr);
    await Promise.all([recvChild.exit(), sendChild.exit()]);
  });

  test(
    "another uid's channel on a key: attach with owner 0 is EACCES, create is EEXIST, both naming it",
    SLOW,
    async () => {
      const key = uniqueKey();
      const creator = peer(rt, ["create", key], { asUser: NOBODY, env: childEnv });
      try {
        assert.equal((await creator.next()).ready, true, creator.stderr);
        assert.throws(() => Channel.attach({ key, owner: 0 }, "recv"), (err: unknown) => {
          assert.ok(err instanceof ChannelError);
          assert.equal(err.code, "EACCES");
          assert.match(err.message, new RegExp(`live channel of uid ${NOBODY}`));
          return true;
        });
        assert.throws(() => Channel.create({ key }), (err: unknown) => {
          assert.ok(err instanceof ChannelError);
          assert.equal(err.code, "EEXIST");
          assert.match(err.message, new RegExp(`uid ${NOBODY} \\(created by pid \\d+\\)`));
          return true;
        });
      } finally {
        creator.kill();
      }
    },
  );

  test("a stale channel of another uid: its ENOENT and EEXIST say whose it is and how it frees", SLOW, async () => {
    // Any root process's create or attach sweeps stale channels of every uid
    // (other test runs on this machine too): a round whose stale channel was
    // swept before the other uid looked says nothing and is run again.
    for (let round = 0; ; round++) {
      const key = uniqueKey();
      // Root's creator, killed: its channel is stale; the other uid (a reader)
      // may look into it but not sweep it.
      const creator = peer(rt, ["create", key, "unicast", 0o644]);
      const { id } = await creator.next<{ id: number }>();
      assert.ok(id > 0);
      const pid = creator.process.pid!;
      creator.kill("SIGKILL");
      assert.equal(await creator.exit(), "SIGKILL");
      let swept = false;
      for (const cmd of ["attach-why", "create-why"]) {
        const child = peer(rt, [cmd, key], { asUser: NOBODY, env: childEnv });
        const line = await child.next<{ ok: boolean; code: string; message: string }>();
        assert.equal(await child.exit(), 0);
        if (cmd === "attach-why" && line.ok === false && line.code === "ENOENT" && !/ of uid /.test(line.message)) {
          swept = true; // nothing under the key any more: swept by another root process
          break;
        }
        assert.equal(line.ok, false, JSON.stringify(line));
        assert.equal(line.code, cmd === "attach-why" ? "ENOENT" : "EEXIST");
        assert.match(line.message, new RegExp(`stale channel of uid 0: its creator, pid ${pid}, is gone`));
        assert.match(line.message, /frees when uid 0 or root next creates or attaches/);
      }
      if (swept && round < 4) continue;
      assert.ok(!swept, "every round's stale channel was swept by another process before it was looked at");
      // Root (the owner's uid) may: its attach sweeps it, and the key is free.
      throwsCode(() => Channel.attach({ key }, "recv"), "ENOENT");
      using again = Channel.create({ key });
      assert.equal(again.ownerUid, 0);
      return;
    }
  });

  test("private: only the creator's uid may attach, whatever mode says", SLOW, async () => {
    const key = uniqueKey();
    using _ch = Channel.create({ key, mode: 0o666, private: true });
    using mine = Channel.attach({ key }, "both");
    assert.ok(mine.id > 0);
    const child = peer(rt, ["attach", key, "recv"], { asUser: NOBODY, env: childEnv });
    assert.deepEqual(await child.next(), { ok: false, code: "EACCES" }, child.stderr);
    assert.equal(await child.exit(), 0);
  });
});
