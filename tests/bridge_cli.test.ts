/**
 * `shmchan bridge` as processes: a producer and an out bridge on one host, an
 * in bridge and a consumer on another (two network namespaces joined by a
 * veth pair, where this machine allows it), a real nats-server, restarted
 * mid-stream. The out bridge runs under this suite's runtime, the in bridge
 * under the other one.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import process from "node:process";
import { describe, test } from "node:test";
import { Channel } from "../mod.ts";
import { BRIDGE_DENO_FLAGS, Child, cliScript, commandFor, ext, root, type Runtime, runtime, uniqueKey } from "./helpers.ts";
import { makeTwoHosts, NatsServer, natsServerMissing } from "./nats.ts";

const T = { timeout: 90_000 };
const missing = process.env.CI ? null : natsServerMissing();
const other: Runtime = runtime === "deno" ? "bun" : "deno";
const bridgePeer = decodeURIComponent(new URL(`./children/bridge_peer${ext}`, import.meta.url).pathname);
const COUNT = 10_000;

type Stats = {
  outbound: { received: number; published: number; dropped: number };
  inbound: { received: number; delivered: number; dropped: number; lost: number; pending: number };
  connection: { reconnects: number; disconnects: number };
};
type Line = Record<string, unknown> & { event?: string; stats?: Stats };

/** The next line of `child` that satisfies `pred`. */
async function lineWhere(child: Child, pred: (l: Line) => boolean, what: string, ms = 30_000): Promise<Line> {
  const deadline = Date.now() + ms;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`hang guard: ${what}`);
    const l = await child.next<Line>(left).catch((err) => {
      throw new Error(`${what}: ${err.message}\nstderr: ${child.stderr}`);
    });
    if (pred(l)) return l;
  }
}

/**
 * A bridge stopped by SIGTERM exits 0. (Deno's node:child_process reports a
 * child that was sent SIGTERM as killed by it even when the child handled the
 * signal and exited 0; under Deno the "closed" line already read is the proof.)
 */
async function exitedCleanly(child: Child): Promise<void> {
  const status = await child.exit();
  if (runtime === "deno" && status === "SIGTERM") return;
  assert.equal(status, 0, child.stderr);
}

/** Where the two ends run: two network namespaces, or this host. */
interface Ends {
  a?: string;
  b?: string;
  server: { host: string; netns?: string };
}

async function pipeline(ends: Ends): Promise<void> {
  const children: Child[] = [];
  const start = (rt: Runtime, script: string, args: Array<string | bigint | number>, netns?: string) => {
    const c = new Child(rt, args.map(String), {
      script,
      denoFlags: BRIDGE_DENO_FLAGS,
      ...(netns === undefined ? {} : { netns }),
    });
    children.push(c);
    return c;
  };
  const server = await NatsServer.start(ends.server);
  try {
    const url = server.url();
    const ka = uniqueKey(), kb = uniqueKey();
    const bridgeArgs = (key: bigint, direction: string) => [
      "bridge",
      "--nats",
      url,
      "--key",
      `0x${key.toString(16)}`,
      "--subject",
      "two.hosts",
      "--direction",
      direction,
      "--reconnect-wait",
      "50",
      "--json",
      "--stats",
      "100",
    ];
    // Host B: the consumer's channel and the in bridge.
    const consumer = start(runtime, bridgePeer, ["consume", kb], ends.b);
    assert.equal((await consumer.next()).ready, true);
    const inB = start(other, cliScript, bridgeArgs(kb, "in"), ends.b);
    await lineWhere(inB, (l) => l.event === "ready", "the in bridge to be ready");
    // Host A: the producer's channel (10,000 messages over about 2 s) and the out bridge.
    const producer = start(runtime, bridgePeer, ["produce", ka, COUNT, 50], ends.a);
    assert.equal((await producer.next()).ready, true);
    const outA = start(runtime, cliScript, bridgeArgs(ka, "out"), ends.a);
    await lineWhere(outA, (l) => l.event === "ready", "the out bridge to be ready");

    await lineWhere(consumer, (l) => (l.received as number) >= 3000, "3,000 messages before the restart");
    await server.restart(300);
    assert.deepEqual(await producer.next(), { sent: COUNT });
    await lineWhere(outA, (l) => l.stats?.outbound.received === COUNT, "the out bridge to take all messages");
    outA.kill("SIGTERM");
    const out = (await lineWhere(outA, (l) => l.event === "closed", "the out bridge's final counters")).stats!;
    await exitedCleanly(outA);
    await lineWhere(inB, (l) => {
      const i = l.stats?.inbound;
      return i !== undefined && i.received + i.lost === out.outbound.published && i.pending === 0;
    }, "the in bridge to account for every published number");
    inB.kill("SIGTERM");
    const inn = (await lineWhere(inB, (l) => l.event === "closed", "the in bridge's final counters")).stats!;
    await exitedCleanly(inB);
    consumer.kill("SIGTERM");
    const got = await lineWhere(consumer, (l) => "ordered" in l, "the consumer's summary");

    assert.ok(out.connection.reconnects >= 1 && inn.connection.reconnects >= 1, "both bridges reconnected");
    assert.equal(got.intact, got.received, "every message intact");
    assert.equal(got.ordered, true, "in order");
    assert.equal(got.received, inn.inbound.delivered);
    assert.equal(
      (got.received as number) + out.outbound.dropped + inn.inbound.lost + inn.inbound.dropped,
      COUNT,
      `delivered ${got.received} + lost ${inn.inbound.lost} + dropped ${out.outbound.dropped}/${inn.inbound.dropped}`,
    );
  } finally {
    for (const c of children) c.kill();
    await Promise.all(children.map((c) => c.exit().catch(() => undefined)));
    await server.dispose();
  }
}

/** Why two network namespaces cannot be made here, or null. */
function hostsBlocker(): string | null {
  const h = makeTwoHosts();
  if (typeof h === "string") return h;
  h.dispose();
  return null;
}
const noHosts = missing ?? hostsBlocker();

describe(`shmchan bridge processes (out under ${runtime}, in under ${other})`, { skip: missing ?? undefined }, () => {
  test(
    "two hosts (network namespaces joined by a veth pair): 10,000 checksummed messages through a server restart, every one delivered or counted lost",
    {
      ...T,
      skip: noHosts ?? undefined,
    },
    async () => {
      const hosts = makeTwoHosts();
      if (typeof hosts === "string") throw new Error(hosts);
      try {
        await pipeline({
          a: hosts.a.netns,
          b: hosts.b.netns,
          server: { host: hosts.a.address, netns: hosts.a.netns },
        });
      } finally {
        hosts.dispose();
      }
    },
  );

  test("one host (loopback), where namespaces are unavailable: the same pipeline", {
    ...T,
    skip: noHosts === null ? "the two-host case ran instead" : undefined,
  }, () => pipeline({ server: { host: "127.0.0.1" } }));
});

/** Runs `shmchan <args>` under this runtime; its status and output. */
function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const [cmd, argv] = commandFor(runtime, cliScript, args, BRIDGE_DENO_FLAGS);
  const r = spawnSync(cmd, argv, {
    cwd: root,
    encoding: "utf8",
    timeout: 30_000,
    env: { ...process.env, NO_COLOR: "1" },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Asserts one line on stderr that matches `re`. */
function oneLine(stderr: string, re: RegExp): void {
  const lines = stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line on stderr, got:\n${stderr}`);
  assert.match(lines[0], re);
}

describe("shmchan bridge: usage and failures", { skip: missing ?? undefined }, () => {
  test("--help prints the usage and exits 0", T, () => {
    const r = cli(["bridge", "--help"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stdout,
      /usage: shmchan bridge --nats <url> --key <key> --subject <subject> --direction out\|in\|both/,
    );
    const top = cli(["--help"]);
    assert.equal(top.status, 0);
    assert.match(top.stdout, /bridge/);
  });

  test("bad usage exits 2 with one line", T, () => {
    for (
      const [args, re] of [
        [["bridge", "--key", "5", "--subject", "x", "--direction", "out"], /--nats <url> is required/],
        [["bridge", "--nats", "127.0.0.1:1", "--key", "0xzz", "--subject", "x", "--direction", "out"], /not a number/],
        [
          ["bridge", "--nats", "127.0.0.1:1", "--key", "5", "--subject", "x", "--direction", "up"],
          /--direction must be/,
        ],
        [
          ["bridge", "--nats", "127.0.0.1:1", "--key", "5", "--subject", "x", "--direction", "out", "--bogus"],
          /unknown option --bogus/,
        ],
        [
          ["bridge", "--nats", "127.0.0.1:1", "--key", "5", "--subject", "x", "--direction", "in", "--durable", "d"],
          /--durable needs --jetstream/,
        ],
        [["frobnicate"], /unknown command "frobnicate"/],
      ] as Array<[string[], RegExp]>
    ) {
      const r = cli(args);
      assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
      oneLine(r.stderr, re);
    }
  });

  test("a refused connection, bad credentials and an unknown channel exit 1 with one line", T, async () => {
    const server = await NatsServer.start({ user: "bridge", pass: "s3cret" });
    const k = uniqueKey();
    const ch = Channel.create({ key: k });
    try {
      const base = ["bridge", "--key", `0x${k.toString(16)}`, "--subject", "x", "--direction", "in"];
      const refused = cli([...base, "--nats", "127.0.0.1:1"]);
      assert.equal(refused.status, 1);
      oneLine(refused.stderr, /ECONNREFUSED: no NATS server at nats:\/\/127\.0\.0\.1:1/);
      const denied = cli([...base, "--nats", server.url(), "--user", "bridge", "--password", "wrong"]);
      assert.equal(denied.status, 1);
      oneLine(denied.stderr, /EACCES: NATS server .* refused the credentials/);
      const nokey = ["bridge", "--key", `${uniqueKey()}`, "--subject", "x", "--direction", "in"];
      const unknown = cli([...nokey, "--nats", server.url(true)]);
      assert.equal(unknown.status, 1);
      oneLine(unknown.stderr, /ENOENT/);
    } finally {
      ch.destroy();
      await server.dispose();
    }
  });
});
