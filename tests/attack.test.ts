/**
 * The attacks that worked against 0.2.0 where the path is the runtime's (csrc/DESIGN.md §1, §8,
 * §9): doorbells (listened on by Deno.listen, Bun.listen or node:net) and
 * SIGBUS in the runtime's own process. The attacker is a child running as uid
 * 65534 (setpriv, under Node: it does not use the library); the victims are
 * root's: this process, or a child of this suite's runtime. As root only.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, test } from "node:test";
import { Channel } from "../mod.ts";
import {
  Child,
  isRoot,
  peer,
  rejectsCode,
  runtime,
  sleep,
  text,
  throwsCode,
  uniqueKey,
  unprivilegedBlocker,
  within,
} from "./helpers.ts";

const NOBODY = 65534;
const SLOW = { timeout: 60_000 };
const blocker = isRoot() ? unprivilegedBlocker(NOBODY) : "not running as root";
const attackerScript = decodeURIComponent(
  new URL(`./children/attacker${import.meta.url.slice(import.meta.url.lastIndexOf("."))}`, import.meta.url).pathname,
);

/** The channel's directory in /dev/shm. */
const dirOf = (key: bigint) => `/dev/shm/shmchan.${key.toString(16).padStart(16, "0")}`;

/** Runs the attacker (Node, as uid 65534) once: its one line. */
async function attack(args: Array<string | number>): Promise<Record<string, unknown>> {
  const child = new Child("node", args.map(String), {
    script: attackerScript,
    asUser: NOBODY,
    env: { HOME: "/tmp" },
  });
  try {
    const line = await child.next(30_000);
    assert.equal(await child.exit(), 0, child.stderr);
    return line;
  } finally {
    child.kill();
  }
}

/**
 * The receive doorbell of member `id` of the channel `key`, once its handle
 * has parked (listed with ls: Deno reads /dev only with --allow-all).
 */
async function doorbellOf(key: bigint, id: number): Promise<string> {
  const prefix = `b${(id - 1) % 64}.`;
  for (let i = 0; i < 500; i++) {
    const name = execFileSync("ls", [dirOf(key)], { encoding: "utf8" })
      .split("\n")
      .find((f) => f.startsWith(prefix) && f.endsWith(".r"));
    if (name) return `${dirOf(key)}/${name}`;
    await sleep(10);
  }
  throw new Error(`no doorbell of member ${id} in ${dirOf(key)}`);
}

describe(`attacks by another uid (setpriv --reuid=${NOBODY}), as root only`, { skip: blocker ?? undefined }, () => {
  test("an outsider cannot reach a parked receiver's doorbell; the receiver still wakes", SLOW, async () => {
    const key = uniqueKey();
    using ch = Channel.create({ key, mode: 0o600 });
    using rx = Channel.attach({ key }, "recv");
    const pending = rx.recv({ spin: 0 });
    const bell = await doorbellOf(key, rx.id);
    assert.deepEqual(await attack(["list", dirOf(key)]), { code: "EACCES" });
    assert.deepEqual(await attack(["connect", bell]), { code: "EACCES" });
    ch.trySend("for root");
    assert.equal(text(await within(pending, 20_000, "recv")), "for root");
  });

  test("a reader cannot ring a parked receiver (EACCES), though it may read the channel", SLOW, async () => {
    const key = uniqueKey();
    using ch = Channel.create({ key, mode: 0o644 });
    using rx = Channel.attach({ key }, "recv");
    const pending = rx.recv({ spin: 0 });
    const bell = await doorbellOf(key, rx.id);
    assert.deepEqual(await attack(["list", dirOf(key)]), { code: "ok" });
    assert.deepEqual(await attack(["connect", bell]), { code: "EACCES" });
    assert.deepEqual(await attack(["flood", bell, 200, 4]), { code: "EACCES", conns: 0, bytes: 0 });
    ch.trySend("for root");
    assert.equal(text(await within(pending, 20_000, "recv")), "for root");
  });

  test(
    `a sender flooding a ${runtime} receiver's doorbell costs it bounded CPU, and it wakes after the flood`,
    SLOW,
    async () => {
      const key = uniqueKey();
      // Others may send (0o602): the attacker is a legitimate sender.
      using ch = Channel.create({ key, mode: 0o602 });
      const victim = peer(runtime, ["idle-cpu", key, 2000, "ready"]);
      try {
        const { id } = await victim.next<{ id: number }>();
        const bell = await doorbellOf(key, id);
        const flood = await attack(["flood", bell, 1500, 200]);
        const line = await victim.next<{ code: string; cpuMs: number }>();
        assert.equal(line.code, "ETIMEDOUT");
        // Unbounded, the victim spent 97-99% of a core (0.2.0); the
        // doorbell's flood bound keeps it to a small part of one.
        assert.ok(
          line.cpuMs < 600,
          `flooded (${JSON.stringify(flood)}) receiver used ${line.cpuMs} ms of CPU in 2000 ms`,
        );
        assert.ok((flood.bytes as number) > 0, `the flood wrote nothing: ${JSON.stringify(flood)}`);
        assert.equal(await victim.exit(), 0);
      } finally {
        victim.kill();
      }

      // 0.2.0's "stayed deaf after the attacker left".
      const waiter = peer(runtime, ["recv-forever", key]);
      try {
        const { id } = await waiter.next<{ id: number }>();
        const bell = await doorbellOf(key, id);
        await attack(["flood", bell, 800, 200]);
        ch.trySend("after the flood");
        assert.deepEqual(await waiter.next(), { message: "after the flood" });
        assert.equal(await waiter.exit(), 0);
      } finally {
        waiter.kill();
      }
    },
  );

  test(
    `a reader that shrinks ctl makes this ${runtime} process's calls fail with EIO; it does not die`,
    SLOW,
    async () => {
      const key = uniqueKey();
      using ch = Channel.create({ key, mode: 0o644 });
      using tx = Channel.attach({ key }, "send");
      using rx = Channel.attach({ key }, "recv");
      tx.trySend("before");
      assert.equal(text(rx.tryRecv()), "before");
      const pending = rx.recv({ spin: 0 });
      assert.deepEqual(await attack(["truncate", `${dirOf(key)}/dat`]), { code: "EACCES" });
      assert.deepEqual(await attack(["truncate", `${dirOf(key)}/ctl`]), { code: "ok" });
      throwsCode(() => tx.trySend("after"), "EIO");
      throwsCode(() => rx.tryRecv(), "EIO");
      throwsCode(() => ch.trySend("after"), "EIO");
      await rejectsCode(rx.recv({ timeout: 50 }), "EIO");
      // A receive pending when it happened: its re-check (at most 1 s) fails it.
      await rejectsCode(within(pending, 10_000, "the pending recv"), "EIO");
      rx.detach();
      tx.detach();
      ch.destroy();
    },
  );
});
