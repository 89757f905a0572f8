/**
 * The `shmchan` subcommands that look at and manage channels (ls, stat,
 * watch, tail, send, rm, gc), run as processes of this suite's runtime
 * against channels that other processes made: their output (text and
 * --json), their exit status (0 ok, 1 failure with a one-line reason, 2 bad
 * usage), --help, keys in decimal and 0x hex, ids, and permissions.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { describe, test } from "node:test";
import { Channel } from "../mod.ts";
import {
  cliScript,
  commandFor,
  isRoot,
  peer,
  root,
  runtime,
  sleep,
  text,
  uniqueKey,
  unprivilegedBlocker,
  within,
} from "./helpers.ts";

const T = { timeout: 60_000 };
const hex = (key: bigint) => `0x${key.toString(16)}`;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `shmchan <args>` to completion (optionally as another uid, with stdin). */
function shmchan(args: string[], opts: { input?: string; asUser?: number; env?: Record<string, string> } = {}): Run {
  let [cmd, argv] = commandFor(runtime, cliScript, args);
  if (opts.asUser !== undefined) {
    const id = String(opts.asUser);
    argv = [`--reuid=${id}`, `--regid=${id}`, "--clear-groups", cmd, ...argv];
    cmd = "setpriv";
  }
  const r = spawnSync(cmd, argv, {
    cwd: root,
    encoding: "utf8",
    input: opts.input ?? "",
    timeout: 50_000,
    env: { ...process.env, NO_COLOR: "1", ...opts.env },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** One JSON value from a run that must have succeeded. */
function json<T = Record<string, unknown>>(r: Run): T {
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as T;
}

/** A failed run: status 1 and one line on stderr that matches `re`. */
function failed(r: Run, re: RegExp): void {
  assert.equal(r.status, 1, `stdout: ${r.stdout} stderr: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], re);
}

const usage = (r: Run) => assert.equal(r.status, 2, `stdout: ${r.stdout} stderr: ${r.stderr}`);

describe("shmchan ls", () => {
  test("--json lists a channel another process created", T, async () => {
    const key = uniqueKey();
    const child = peer(runtime, ["create", key, "multicast", 0o644]);
    try {
      const { id } = await child.next<{ id: number }>();
      const list = json<Array<Record<string, unknown>>>(shmchan(["ls", "--json"]));
      const entry = list.find((c) => c.key === key.toString());
      assert.deepEqual(entry, {
        key: key.toString(),
        id,
        delivery: "multicast",
        mode: "0644",
        private: false,
        uid: process.getuid!(),
        pid: child.process.pid,
        members: 1,
        ringEntries: 256,
        maxMessageSize: 4096,
        waiting: 0,
      });
      const plain = shmchan(["ls"]);
      assert.equal(plain.status, 0, plain.stderr);
      const line = plain.stdout.split("\n").find((l) => l.startsWith(hex(key) + " "));
      assert.ok(line, plain.stdout);
      assert.match(line, new RegExp(`^${hex(key)}\\s+${id}\\s+multicast\\s+0644\\s`));
      assert.match(plain.stdout.split("\n")[0], /^KEY\s+ID\s+DELIVERY\s+MODE\s+UID\s+PID\s+MEMBERS\s+RING\s+MAXMSG\s+WAITING$/);
    } finally {
      child.kill();
      await child.exit();
    }
  });

  test("bad usage is status 2", () => {
    usage(shmchan(["ls", "extra"]));
    usage(shmchan(["ls", "--bogus"]));
    usage(shmchan(["nonesuch"]));
  });
});

describe("shmchan stat", () => {
  test("--json: counters that match what other processes sent and received", T, async () => {
    const key = uniqueKey();
    using ch = Channel.create({ key, ringEntries: 64 });
    const receiver = peer(runtime, ["recv", key, 2]);
    const { id: rid } = await receiver.next<{ id: number }>();
    const sender = peer(runtime, ["send", key, "alpha", "beta", "gamma"]);
    assert.deepEqual(await sender.next(), { sent: 3 });
    assert.deepEqual(await receiver.next(), { messages: ["alpha", "beta"] });
    await Promise.all([sender.exit(), receiver.exit()]);
    for (const name of [key.toString(), hex(key), String(ch.id)]) {
      const s = json<Record<string, any>>(shmchan(["stat", name, "--json"]));
      assert.equal(s.key, key.toString(), `stat ${name}`);
      assert.equal(s.id, ch.id);
      assert.equal(s.delivery, "unicast");
      assert.equal(s.mode, "0600");
      assert.equal(s.uid, process.getuid!());
      assert.equal(s.pid, process.pid);
      assert.equal(s.waiting, 1);
      assert.deepEqual(s.counters, {
        sent: 3,
        sentBytes: 14,
        received: 2,
        receivedBytes: 9,
        full: 0,
        dropped: 0,
        skipped: 0,
        parks: s.counters.parks,
        wakes: s.counters.wakes,
      });
      assert.equal(s.members.length, 1, "both peers left: their counts are folded");
      assert.deepEqual(Object.keys(s.members[0]).sort(), [
        "access", "alive", "behind", "counters", "id", "owner", "parked", "parkedFor", "pid", "slot", "uid",
      ]);
      assert.equal(s.members[0].owner, true);
    }
    assert.ok(rid > 0);
    const byId = json<Record<string, unknown>>(shmchan(["stat", "--id", String(ch.id), "--json"]));
    assert.equal(byId.key, key.toString());
  });

  test("text: the channel, its counters and a line per member", T, async () => {
    const key = uniqueKey();
    using ch = Channel.create({ key, delivery: "broadcast" });
    const stay = peer(runtime, ["stay", key, "recv"]);
    try {
      const { id } = await stay.next<{ id: number }>();
      ch.trySend("x");
      const r = shmchan(["stat", hex(key)]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^channel ${hex(key)} \\(${key}\\): id ${ch.id}, broadcast, mode 0600`));
      assert.match(r.stdout, /counters: sent 1 \(1 B\), received 0 \(0 B\), full 0/);
      assert.match(r.stdout, new RegExp(`\\n${id}\\s+${stay.process.pid}\\s+\\d+\\s+recv\\s+alive\\s+\\S+\\s+1\\s`));
    } finally {
      stay.kill();
      await stay.exit();
    }
  });

  test("bad keys are status 2, an unknown channel status 1 with one line", () => {
    usage(shmchan(["stat"]));
    usage(shmchan(["stat", "zzz"]));
    usage(shmchan(["stat", "0"]));
    usage(shmchan(["stat", "0x"]));
    usage(shmchan(["stat", "-5"]));
    usage(shmchan(["stat", (1n << 64n).toString()]));
    usage(shmchan(["stat", "--id", "4294967296"]));
    usage(shmchan(["stat", "1", "2"]));
    failed(shmchan(["stat", hex(uniqueKey())]), /^shmchan stat: ENOENT: no live channel with key \d+ \(0x[0-9a-f]+\)/);
  });
});

describe("shmchan rm", () => {
  test("makes the next attach fail with ENOENT; the creator's process goes on", T, async () => {
    const key = uniqueKey();
    const child = peer(runtime, ["create", key]);
    try {
      await child.next();
      const r = shmchan(["rm", hex(key)]);
      assert.equal(r.status, 0, r.stderr);
      const attach = peer(runtime, ["attach", key, "recv"]);
      assert.deepEqual(await attach.next(), { ok: false, code: "ENOENT" });
      failed(shmchan(["rm", key.toString()]), /ENOENT/);
      assert.equal(Channel.list().find((c) => c.key === key), undefined);
    } finally {
      child.kill();
      await child.exit();
    }
  });

  test("bad usage is status 2", () => {
    usage(shmchan(["rm"]));
    usage(shmchan(["rm", "nope"]));
  });
});

describe("shmchan send", () => {
  test("a text, and one message per line of stdin, to a receiver in this process", T, async () => {
    const key = uniqueKey();
    using _ch = Channel.create({ key });
    using sub = Channel.attach({ key }, "recv");
    assert.equal(shmchan(["send", hex(key), "hello there"]).status, 0);
    assert.equal(text(await sub.recv({ timeout: 5000 })), "hello there");
    const r = shmchan(["send", key.toString(), "-"], { input: "one\ntwo\nthree\n" });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual([1, 2, 3].map(() => text(sub.tryRecv())), ["one", "two", "three"]);
    assert.equal(sub.tryRecv(), null);
    assert.equal(shmchan(["send", hex(key), "to you", "--target", String(sub.id)]).status, 0);
    assert.equal(text(await sub.recv({ timeout: 5000 })), "to you");
  });

  test("failures: a full ring with --timeout 0, a message too long, no such channel", () => {
    const key = uniqueKey();
    using _ch = Channel.create({ key, ringEntries: 1, maxMessageSize: 8 });
    assert.equal(shmchan(["send", hex(key), "a", "--timeout", "0"]).status, 0);
    failed(shmchan(["send", hex(key), "b", "--timeout", "0"]), /ENOBUFS/);
    failed(shmchan(["send", hex(key), "b", "--timeout", "100"]), /ETIMEDOUT/);
    failed(shmchan(["send", hex(key), "far too long", "--timeout", "0"]), /EMSGSIZE/);
    failed(shmchan(["send", hex(uniqueKey()), "x"]), /ENOENT/);
    usage(shmchan(["send", hex(key)]));
    usage(shmchan(["send", hex(key), "a", "b"]));
    usage(shmchan(["send", hex(key), "a", "--timeout", "soon"]));
  });
});

/** Starts `shmchan <args>` in the background: its stdout lines, its stderr, its exit. */
function background(args: string[]) {
  const [cmd, argv] = commandFor(runtime, cliScript, args);
  const p = spawn(cmd, argv, { cwd: root, env: { ...process.env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "", err = "";
  p.stdout!.setEncoding("utf8").on("data", (c: string) => (out += c));
  p.stderr!.setEncoding("utf8").on("data", (c: string) => (err += c));
  const exit = new Promise<number | string>((resolve) => p.on("close", (code, sig) => resolve(code ?? sig ?? -1)));
  return {
    process: p,
    lines: () => out.split("\n").filter((l) => l !== ""),
    stderr: () => err,
    exit: () => within(exit, 30_000, `shmchan ${args[0]} to exit`),
  };
}

async function until(fn: () => boolean, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`hang guard: ${what}`);
    await sleep(10);
  }
}

describe("shmchan tail", () => {
  test("prints what another process sends, as json and hex", T, async () => {
    const key = uniqueKey();
    using _ch = Channel.create({ key, delivery: "broadcast" });
    const tail = background(["tail", hex(key), "--format", "json", "--count", "2"]);
    await until(() => tail.stderr().includes("receiving from channel"), "tail to attach");
    const sender = peer(runtime, ["send", key, "héllo", "second"]);
    assert.deepEqual(await sender.next(), { sent: 2 });
    assert.equal(await tail.exit(), 0, tail.stderr());
    assert.deepEqual(tail.lines().map((l) => JSON.parse(l)), [
      { seq: 1, bytes: 6, utf8: "héllo" },
      { seq: 2, bytes: 6, utf8: "second" },
    ]);
    const hexTail = background(["tail", key.toString(), "--format", "hex", "--count", "1"]);
    await until(() => hexTail.stderr().includes("receiving from channel"), "tail to attach");
    _ch.trySend(new Uint8Array([0, 1, 0xfe]));
    assert.equal(await hexTail.exit(), 0, hexTail.stderr());
    assert.deepEqual(hexTail.lines(), ["0001fe"]);
  });

  test("stops on SIGINT with status 0", T, async () => {
    const key = uniqueKey();
    using _ch = Channel.create({ key });
    const tail = background(["tail", hex(key)]);
    await until(() => tail.stderr().includes("receiving from channel"), "tail to attach");
    tail.process.kill("SIGINT");
    const status = await tail.exit();
    // Deno's child_process reports a child sent a signal as killed by it even when it handled it.
    if (!(runtime === "deno" && status === "SIGINT")) assert.equal(status, 0, tail.stderr());
  });

  test("bad usage and failures", () => {
    usage(shmchan(["tail"]));
    usage(shmchan(["tail", "1", "--format", "yaml"]));
    usage(shmchan(["tail", "1", "--count", "0"]));
    failed(shmchan(["tail", hex(uniqueKey())]), /ENOENT/);
  });
});

describe("shmchan watch", () => {
  test("--json: rates per second of a channel another process sends on", T, async () => {
    const key = uniqueKey();
    using ch = Channel.create({ key, ringEntries: 1024 });
    using sub = Channel.attach({ key }, "recv");
    const watch = background(["watch", hex(key), "--interval", "200", "--count", "3", "--json"]);
    const sender = setInterval(() => {
      ch.trySend("tick");
      sub.tryRecv();
    }, 10);
    try {
      assert.equal(await watch.exit(), 0, watch.stderr());
    } finally {
      clearInterval(sender);
    }
    const lines = watch.lines().map((l) => JSON.parse(l));
    assert.equal(lines.length, 3);
    for (const l of lines) {
      assert.equal(l.interval, 200);
      assert.equal(l.channels.length, 1);
      const c = l.channels[0];
      assert.equal(c.key, key.toString());
      assert.equal(c.id, ch.id);
      for (const f of ["sent", "received", "full", "dropped", "skipped", "waiting", "live"]) {
        assert.equal(typeof c[f], "number", f);
      }
      assert.equal(c.members.length, 2);
    }
    assert.ok(lines.some((l) => l.channels[0].sent > 0 && l.channels[0].received > 0), JSON.stringify(lines));
  });

  test("every channel, as text", T, () => {
    const key = uniqueKey();
    using _ch = Channel.create({ key });
    const r = shmchan(["watch", "--interval", "50", "--count", "1"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /KEY\s+ID\s+DELIVERY\s+LIVE\s+WAITING\s+SENT\/s\s+RECV\/s/);
    assert.ok(r.stdout.includes(hex(key) + " "), r.stdout);
  });

  test("bad usage", () => {
    usage(shmchan(["watch", "--interval", "0"]));
    usage(shmchan(["watch", "--count", "x"]));
    failed(shmchan(["watch", hex(uniqueKey()), "--count", "1"]), /ENOENT/);
  });
});

describe("shmchan gc", () => {
  test("sweeps a killed creator's channel", T, async () => {
    const key = uniqueKey();
    const child = peer(runtime, ["create", key]);
    await child.next();
    child.kill("SIGKILL");
    await child.exit();
    const r = json<{ removed: number }>(shmchan(["gc", "--json"]));
    assert.ok(r.removed >= 2, JSON.stringify(r));
    assert.equal(Channel.list().find((c) => c.key === key), undefined);
    usage(shmchan(["gc", "now"]));
  });
});

describe("--help", () => {
  for (const name of ["ls", "stat", "watch", "tail", "send", "rm", "gc", "bridge"]) {
    test(`shmchan ${name} --help`, () => {
      const r = shmchan([name, "--help"]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^usage: shmchan ${name}`));
      assert.match(r.stdout, /exit status: 0/);
    });
  }
  test("shmchan --help lists every subcommand", () => {
    const r = shmchan(["--help"]);
    assert.equal(r.status, 0);
    for (const name of ["ls", "stat", "watch", "tail", "send", "rm", "gc", "bridge"]) {
      assert.match(r.stdout, new RegExp(`\\n  ${name}\\s+\\S`));
    }
  });
});

const NOBODY = 65534;
const blocker = isRoot() ? unprivilegedBlocker(NOBODY) : "not running as root";
const childEnv = { DENO_DIR: `/tmp/shmchan-test-deno-${NOBODY}`, BUN_RUNTIME_TRANSPILER_CACHE_PATH: "0", HOME: "/tmp" };

describe(`permissions, as uid ${NOBODY} (root only)`, { skip: blocker ?? undefined }, () => {
  test("rm of root's channel is refused with EACCES; ls and stat show only what it may look into", T, () => {
    const open = uniqueKey(), closed = uniqueKey();
    using _a = Channel.create({ key: open, mode: 0o666 });
    using _b = Channel.create({ key: closed, mode: 0o600 });
    failed(shmchan(["rm", hex(open)], { asUser: NOBODY, env: childEnv }), /^shmchan rm: EACCES: .*uid 0/);
    failed(shmchan(["rm", hex(closed)], { asUser: NOBODY, env: childEnv }), /EACCES/);
    const list = json<Array<{ key: string }>>(shmchan(["ls", "--json"], { asUser: NOBODY, env: childEnv }));
    assert.ok(list.some((c) => c.key === open.toString()));
    assert.ok(!list.some((c) => c.key === closed.toString()));
    failed(shmchan(["stat", hex(closed)], { asUser: NOBODY, env: childEnv }), /EACCES/);
    using sub = Channel.attach({ key: open }, "recv"); // still there
    assert.ok(sub.id > 0);
  });
});
