/**
 * The NATS bridge (bridge.ts) against a real nats-server that each case
 * starts on a free loopback port of its own and kills when it ends.
 */
import assert from "node:assert/strict";
import process from "node:process";
import { describe, test } from "node:test";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import { Channel, ChannelError, type Subscriber } from "../mod.ts";
import { type Bridge, bridge, MARK_PREFIX, ORIGIN_HEADER, SEQ_HEADER } from "../bridge.ts";
import { checkFlood, floodMessage } from "./flood.ts";
import { rejectsCode, sleep, text, uniqueKey, within } from "./helpers.ts";
import { NatsServer, natsServerMissing } from "./nats.ts";

const T = { timeout: 60_000 };
// CI installs nats-server: there a missing one is a failure, not a skip.
const missing = process.env.CI ? null : natsServerMissing();

/** Polls `cond` every 10 ms until it holds (hang-guarded). */
async function until(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`hang guard: ${what} not within ${ms} ms`);
    await sleep(10);
  }
}

/** Resources of one case, released even when it fails. */
class Scope {
  #cleanups: Array<() => unknown> = [];
  add<T>(value: T, cleanup: (v: T) => unknown): T {
    this.#cleanups.push(() => cleanup(value));
    return value;
  }
  channel(opts: Parameters<typeof Channel.create>[0]): Channel {
    return this.add(Channel.create(opts), (c) => c[Symbol.dispose]());
  }
  attach(key: bigint, access: "recv" | "send" | "both"): Subscriber {
    return this.add(Channel.attach({ key }, access), (s) => s[Symbol.dispose]());
  }
  async server(opts?: Parameters<typeof NatsServer.start>[0]): Promise<NatsServer> {
    return this.add(await NatsServer.start(opts), (s) => s.dispose());
  }
  async bridge(opts: Parameters<typeof bridge>[0]): Promise<Bridge> {
    return this.add(await bridge(opts), (b) => b.close());
  }
  async nats(url: string): Promise<NatsConnection> {
    return this.add(await connect({ servers: url, reconnectTimeWait: 100 }), (nc) => nc.close());
  }
  async run(fn: (scope: Scope) => Promise<void>): Promise<void> {
    try {
      await fn(this);
    } finally {
      for (const c of this.#cleanups.reverse()) {
        try {
          await c();
        } catch {
          // Already closed by the case itself.
        }
      }
    }
  }
}
const scoped = (fn: (s: Scope) => Promise<void>) => () => new Scope().run(fn);

/** Sends `count` checksummed messages into `ch`, `perTick` per 10 ms, waiting for room. */
async function produce(ch: Channel, count: number, perTick: number): Promise<void> {
  for (let seq = 0; seq < count; seq++) {
    await within(ch.send(floodMessage(1, seq)), 30_000, `send ${seq}`);
    if ((seq + 1) % perTick === 0) await sleep(10);
  }
}

/** Receives until stopped; checks each message and the order. */
function consume(rx: Subscriber) {
  const state = { received: 0, intact: 0, ordered: true, lastSeq: -1, stop: false };
  const tally = (m: Uint8Array) => {
    state.received++;
    const c = checkFlood(m);
    if (c === null) return;
    state.intact++;
    if (c.seq <= state.lastSeq) state.ordered = false;
    state.lastSeq = c.seq;
  };
  const done = (async () => {
    while (!state.stop) {
      try {
        tally(await rx.recv({ timeout: 50 }));
      } catch (err) {
        if (!(err instanceof ChannelError && err.code === "ETIMEDOUT")) throw err;
      }
    }
    for (const m of rx.tryRecvMany()) tally(m);
  })();
  return { state, stop: () => ((state.stop = true), done) };
}

describe("bridge over a real nats-server", { skip: missing ?? undefined }, () => {
  test(
    "an out bridge on A and an in bridge on B carry 10,000 checksummed messages in order",
    T,
    scoped(async (s) => {
      const server = await s.server();
      const ka = uniqueKey(), kb = uniqueKey();
      const a = s.channel({ key: ka });
      s.channel({ key: kb });
      const rx = s.attach(kb, "recv");
      const inB = await s.bridge({ nats: server.url(), key: kb, subject: "pipeline.a", direction: "in" });
      const outA = await s.bridge({ nats: server.url(), key: ka, subject: "pipeline.a", direction: "out" });
      const c = consume(rx);
      await produce(a, 10_000, 1000);
      await until(() => c.state.received === 10_000, "10,000 messages at B");
      await c.stop();
      assert.deepEqual(c.state, { received: 10_000, intact: 10_000, ordered: true, lastSeq: 9_999, stop: true });
      const out = await outA.close(), inn = await inB.close();
      assert.deepEqual(out.outbound, { received: 10_000, published: 10_000, dropped: 0, echoes: 0, retried: 0 });
      assert.deepEqual(inn.inbound, {
        received: 10_000,
        delivered: 10_000,
        dropped: 0,
        lost: 0,
        pending: 0,
        echoes: 0,
        duplicates: 0,
      });
    }),
  );

  test(
    "what an out bridge publishes carries its origin and numbers 1, 2, 3, …",
    T,
    scoped(async (s) => {
      const server = await s.server();
      const ka = uniqueKey();
      const a = s.channel({ key: ka });
      const nc = await s.nats(server.url());
      const seen: Array<[string, string, string]> = [];
      nc.subscribe("numbered", {
        callback: (_e, m) => {
          seen.push([m.string(), m.headers?.get(ORIGIN_HEADER) ?? "", m.headers?.get(SEQ_HEADER) ?? ""]);
        },
      });
      await nc.flush();
      const outA = await s.bridge({ nats: server.url(), key: ka, subject: "numbered", direction: "out" });
      for (const m of ["one", "two", "three"]) a.trySend(m);
      await until(() => seen.length === 3, "3 messages on the subject");
      assert.deepEqual(seen, [["one", outA.origin, "1"], ["two", outA.origin, "2"], ["three", outA.origin, "3"]]);
    }),
  );

  test(
    "the server restarted mid-stream: both bridges reconnect, and delivered + counted lost = sent",
    T,
    scoped(async (s) => {
      const server = await s.server();
      const ka = uniqueKey(), kb = uniqueKey();
      const a = s.channel({ key: ka });
      s.channel({ key: kb });
      const rx = s.attach(kb, "recv");
      const opts = { nats: server.url(), subject: "restart", reconnectWait: 50 };
      const inB = await s.bridge({ ...opts, key: kb, direction: "in" });
      const outA = await s.bridge({ ...opts, key: ka, direction: "out" });
      const c = consume(rx);
      const producing = produce(a, 10_000, 50); // about 2 s of traffic
      await until(() => c.state.received >= 3_000, "3,000 messages before the restart");
      await server.restart(300);
      await producing;
      await until(() => outA.stats().outbound.received === 10_000, "the out bridge to take all 10,000");
      const out = await outA.close(); // publishes the last number
      await until(() => {
        const i = inB.stats().inbound;
        return i.received + i.lost === out.outbound.published;
      }, "the in bridge to account for every published number");
      await until(() => c.state.received === inB.stats().inbound.delivered, "B to be read");
      await c.stop();
      const inn = await inB.close();
      assert.ok(out.connection.reconnects >= 1 && inn.connection.reconnects >= 1, "both bridges reconnected");
      assert.ok(out.connection.disconnects >= 1 && inn.connection.disconnects >= 1);
      assert.equal(c.state.intact, c.state.received, "every message intact");
      assert.equal(c.state.ordered, true, "in order");
      assert.equal(c.state.received, inn.inbound.delivered);
      assert.equal(out.outbound.received, out.outbound.published + out.outbound.dropped);
      assert.equal(inn.inbound.received, inn.inbound.delivered + inn.inbound.dropped);
      assert.equal(
        c.state.received + out.outbound.dropped + inn.inbound.lost + inn.inbound.dropped,
        10_000,
        `received ${c.state.received}, lost ${inn.inbound.lost}, dropped ${out.outbound.dropped} + ${inn.inbound.dropped}`,
      );
    }),
  );

  test(
    "gaps in a publisher's numbers and its marks are counted as lost",
    T,
    scoped(async (s) => {
      const server = await s.server();
      const kb = uniqueKey();
      s.channel({ key: kb, ringEntries: 16 });
      const rx = s.attach(kb, "recv");
      const inB = await s.bridge({ nats: server.url(), key: kb, subject: "gaps", direction: "in" });
      const nc = await s.nats(server.url());
      const pub = (subject: string, seq: number, body = "") => {
        const h = headers();
        h.set(ORIGIN_HEADER, "feedc0de");
        h.set(SEQ_HEADER, String(seq));
        nc.publish(subject, body, { headers: h });
      };
      for (const seq of [1, 2, 5, 6]) pub("gaps", seq, `m${seq}`); // 3 and 4 lost
      pub(MARK_PREFIX + "gaps", 9); // 7, 8 and 9 lost
      nc.publish("gaps", "plain"); // no numbers: delivered, never counted
      await nc.flush();
      await until(() => inB.stats().inbound.received === 5, "5 messages");
      assert.deepEqual(rx.tryRecvMany().map(text), ["m1", "m2", "m5", "m6", "plain"]);
      assert.equal(inB.stats().inbound.lost, 5);
      pub("gaps", 8, "late"); // counted lost, then arrived after all
      await nc.flush();
      await until(() => inB.stats().inbound.received === 6, "the late message");
      assert.equal(inB.stats().inbound.lost, 4);
    }),
  );

  test(
    "a unicast out bridge leaves messages in the ring while NATS is down and sends them after",
    T,
    scoped(async (s) => {
      const server = await s.server();
      const ka = uniqueKey(), kb = uniqueKey();
      const a = s.channel({ key: ka });
      s.channel({ key: kb });
      const rx = s.attach(kb, "recv");
      // One connection for both bridges: it resubscribes before it publishes again.
      const nc = await s.nats(server.url());
      const inB = await s.bridge({ nats: nc, key: kb, subject: "outage", direction: "in" });
      const outA = await s.bridge({ nats: nc, key: ka, subject: "outage", direction: "out" });
      a.trySend("before");
      assert.equal(text(await within(rx.recv(), 10_000, "before")), "before");
      await server.stop();
      await until(() => !outA.stats().connection.connected, "the bridge to see the server go");
      for (let i = 0; i < 5; i++) a.trySend(`during ${i}`);
      await sleep(200);
      assert.equal(outA.stats().outbound.received, 1, "nothing taken while NATS is down");
      await server.restart();
      const got: string[] = [];
      for (let i = 0; i < 5; i++) got.push(text(await within(rx.recv(), 20_000, `during ${i}`))!);
      assert.deepEqual(got, ["during 0", "during 1", "during 2", "during 3", "during 4"]);
      assert.equal(inB.stats().inbound.lost, 0);
    }),
  );

  test(
    "an in bridge holds what does not fit, up to maxPending, then drops and counts",
    T,
    scoped(async (s) => {
      const server = await s.server();
      const kb = uniqueKey();
      s.channel({ key: kb, ringEntries: 4 });
      const rx = s.attach(kb, "recv");
      const inB = await s.bridge({ nats: server.url(), key: kb, subject: "full", direction: "in", maxPending: 10 });
      const nc = await s.nats(server.url());
      for (let i = 0; i < 30; i++) nc.publish("full", `m${i}`);
      await nc.flush();
      await until(() => inB.stats().inbound.received === 30, "30 messages");
      assert.deepEqual(inB.stats().inbound, {
        received: 30,
        delivered: 4,
        dropped: 16,
        lost: 0,
        pending: 10,
        echoes: 0,
        duplicates: 0,
      });
      const got: string[] = [];
      while (got.length < 14) got.push(text(await within(rx.recv(), 10_000, "held messages"))!);
      assert.deepEqual(got, Array.from({ length: 14 }, (_, i) => `m${i}`));
      await until(() => inB.stats().inbound.pending === 0, "nothing held");
      assert.equal(inB.stats().inbound.delivered, 14);
    }),
  );

  test(
    "both on broadcast channels: each side gets the other's messages once, nothing comes back",
    T,
    scoped(async (s) => {
      const server = await s.server();
      const kx = uniqueKey(), ky = uniqueKey();
      const x = s.channel({ key: kx, delivery: "broadcast" });
      const y = s.channel({ key: ky, delivery: "broadcast" });
      const rxX = s.attach(kx, "recv"), rxY = s.attach(ky, "recv");
      const nc = await s.nats(server.url());
      let onSubject = 0;
      nc.subscribe("chat", {
        callback: () => {
          onSubject++;
        },
      });
      await nc.flush();
      const bx = await s.bridge({ nats: server.url(), key: kx, subject: "chat", direction: "both" });
      const by = await s.bridge({ nats: server.url(), key: ky, subject: "chat", direction: "both" });
      for (let i = 0; i < 5; i++) x.trySend(`x${i}`);
      for (let i = 0; i < 5; i++) y.trySend(`y${i}`);
      const read = async (rx: Subscriber) => {
        const got: string[] = [];
        while (got.length < 10) got.push(text(await within(rx.recv(), 10_000, "10 messages"))!);
        return got;
      };
      const [atX, atY] = await Promise.all([read(rxX), read(rxY)]);
      const sorted = (l: string[]) => [...l].sort();
      const all = ["x0", "x1", "x2", "x3", "x4", "y0", "y1", "y2", "y3", "y4"];
      assert.deepEqual(sorted(atX), all);
      assert.deepEqual(sorted(atY), all);
      assert.deepEqual(atX.filter((m) => m[0] === "y"), ["y0", "y1", "y2", "y3", "y4"], "in order");
      await sleep(300); // an echo would arrive by now
      assert.equal(rxX.tryRecv(), null);
      assert.equal(rxY.tryRecv(), null);
      assert.equal(onSubject, 10, "each message on the subject once");
      for (const b of [bx, by]) {
        const st = b.stats();
        assert.deepEqual(st.outbound, { received: 10, published: 5, dropped: 0, echoes: 5, retried: 0 });
        assert.equal(st.inbound.delivered, 5);
      }
    }),
  );

  test(
    "two in bridges in one queue group share the messages",
    T,
    scoped(async (s) => {
      const server = await s.server();
      const k1 = uniqueKey(), k2 = uniqueKey(), ka = uniqueKey();
      const a = s.channel({ key: ka });
      s.channel({ key: k1 });
      s.channel({ key: k2 });
      const opts = { nats: server.url(), subject: "work", direction: "in" as const, queue: "workers" };
      const b1 = await s.bridge({ ...opts, key: k1 });
      const b2 = await s.bridge({ ...opts, key: k2 });
      await s.bridge({ nats: server.url(), key: ka, subject: "work", direction: "out" });
      for (let i = 0; i < 200; i++) await a.send(`job ${i}`);
      await until(() => b1.stats().inbound.received + b2.stats().inbound.received === 200, "200 jobs");
      const [s1, s2] = [b1.stats().inbound, b2.stats().inbound];
      assert.ok(s1.delivered > 0 && s2.delivered > 0, `both got some (${s1.delivered}, ${s2.delivered})`);
      assert.equal(s1.delivered + s2.delivered, 200);
      assert.equal(s1.lost + s2.lost, 0, "gaps within a queue group are no loss");
    }),
  );

  test(
    "close() twice and await using are safe; close() returns the final counters",
    T,
    scoped(async (s) => {
      const server = await s.server();
      const ka = uniqueKey();
      s.channel({ key: ka });
      {
        await using b = await bridge({ nats: server.url(), key: ka, subject: "c", direction: "out" });
        assert.equal(b.direction, "out");
      }
      const b = await bridge({ nats: server.url(), key: ka, subject: "c", direction: "out" });
      const first = await b.close();
      assert.deepEqual(await b.close(), first);
      assert.equal(await b.finished, undefined);
      assert.equal(first.connection.connected, false);
    }),
  );
});

describe("bridge errors", { skip: missing ?? undefined }, () => {
  test(
    "a bad URL is EINVAL",
    T,
    scoped(async (s) => {
      const ka = uniqueKey();
      s.channel({ key: ka });
      for (const nats of ["nats://bad host:4222", "http://127.0.0.1:4222", "nats://127.0.0.1:4222/path", ""]) {
        await rejectsCode(bridge({ nats, key: ka, subject: "x", direction: "out" }), "EINVAL");
      }
    }),
  );

  test(
    "a refused connection is ECONNREFUSED, naming the server",
    T,
    scoped(async (s) => {
      const server = await s.server();
      const url = server.url();
      await server.stop(); // nobody listens on that port now
      const ka = uniqueKey();
      s.channel({ key: ka });
      const err = await bridge({ nats: url, key: ka, subject: "x", direction: "out" }).catch((e) => e);
      assert.ok(err instanceof ChannelError, String(err));
      assert.equal(err.code, "ECONNREFUSED");
      assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${server.port}`));
    }),
  );

  test(
    "bad credentials are EACCES; good ones connect, in the URL or as options",
    T,
    scoped(async (s) => {
      const server = await s.server({ user: "bridge", pass: "s3cret" });
      const ka = uniqueKey();
      s.channel({ key: ka });
      const base = { key: ka, subject: "x", direction: "out" as const };
      await rejectsCode(bridge({ ...base, nats: server.url() }), "EACCES");
      await rejectsCode(bridge({ ...base, nats: server.url(), user: "bridge", pass: "wrong" }), "EACCES");
      await rejectsCode(bridge({ ...base, nats: `nats://bridge:wrong@127.0.0.1:${server.port}` }), "EACCES");
      await (await bridge({ ...base, nats: server.url(true) })).close();
      await (await bridge({ ...base, nats: server.url(), user: "bridge", pass: "s3cret" })).close();
    }),
  );

  test(
    "no channel with the key is ENOENT, before any connection is made",
    T,
    scoped(async (s) => {
      const server = await s.server();
      await rejectsCode(bridge({ nats: server.url(), key: uniqueKey(), subject: "x", direction: "in" }), "ENOENT");
    }),
  );

  test(
    "bad options: EINVAL for values out of range, TypeError for the wrong type",
    T,
    scoped(async (s) => {
      const server = await s.server();
      const ka = uniqueKey();
      s.channel({ key: ka }); // unicast
      const base = { nats: server.url(), key: ka, subject: "x" };
      await rejectsCode(bridge({ ...base, direction: "sideways" as "out" }), "EINVAL");
      await rejectsCode(bridge({ ...base, direction: "out", subject: "a.*" }), "EINVAL"); // publishing needs a literal subject
      await rejectsCode(bridge({ ...base, direction: "in", subject: "a..b" }), "EINVAL");
      await rejectsCode(bridge({ ...base, direction: "in", subject: "a b" }), "EINVAL");
      await rejectsCode(bridge({ ...base, direction: "out", queue: "q" }), "EINVAL");
      await rejectsCode(bridge({ ...base, direction: "both" }), "EINVAL"); // both needs broadcast
      await rejectsCode(bridge({ ...base, direction: "in", maxPending: -1 }), "EINVAL");
      await assert.rejects(bridge({ ...base, direction: "in", subject: 5 as unknown as string }), TypeError);
      await assert.rejects(bridge(null as unknown as Parameters<typeof bridge>[0]), TypeError);
      // A wildcard subscription is fine for "in".
      await (await bridge({ ...base, direction: "in", subject: "a.*.>" })).close();
    }),
  );
});

describe("bridge over JetStream (at least once)", { skip: missing ?? undefined }, () => {
  test(
    "10,000 checksummed messages through a server restart arrive all, once each, in order",
    T,
    scoped(async (s) => {
      const server = await s.server({ jetstream: true });
      const ka = uniqueKey(), kb = uniqueKey();
      const a = s.channel({ key: ka });
      s.channel({ key: kb });
      const rx = s.attach(kb, "recv");
      const opts = { nats: server.url(), subject: "durable.pipe", reconnectWait: 50, jetstream: { stream: "PIPE" } };
      const outA = await s.bridge({ ...opts, key: ka, direction: "out" });
      const inB = await s.bridge({ ...opts, key: kb, direction: "in" });
      const c = consume(rx);
      const producing = produce(a, 10_000, 50);
      await until(() => c.state.received >= 3_000, "3,000 messages before the restart");
      await server.restart(300);
      await producing;
      await until(() => c.state.received >= 10_000, "all 10,000 at B", 40_000);
      await sleep(200); // a duplicate would arrive by now
      await c.stop();
      const out = await outA.close(), inn = await inB.close();
      assert.equal(c.state.received, 10_000, "no duplicates");
      assert.deepEqual({ intact: c.state.intact, ordered: c.state.ordered, lastSeq: c.state.lastSeq }, {
        intact: 10_000,
        ordered: true,
        lastSeq: 9_999,
      });
      assert.ok(out.connection.reconnects >= 1 && inn.connection.reconnects >= 1, "both bridges reconnected");
      assert.equal(out.outbound.published, 10_000);
      assert.equal(out.outbound.dropped, 0);
      assert.equal(inn.inbound.delivered, 10_000);
      assert.equal(inn.inbound.lost + inn.inbound.dropped, 0);
    }),
  );

  test(
    "what an in bridge has not taken stays in the stream for the next one",
    T,
    scoped(async (s) => {
      const server = await s.server({ jetstream: true });
      const kb = uniqueKey();
      s.channel({ key: kb });
      const rx = s.attach(kb, "recv");
      const nc = await s.nats(server.url());
      const opts = {
        nats: server.url(),
        key: kb,
        subject: "kept",
        direction: "in" as const,
        jetstream: { stream: "KEPT" },
      };
      await (await bridge(opts)).close(); // makes the stream and the durable consumer
      const { jetstream } = await import("@nats-io/jetstream");
      const js = jetstream(nc);
      for (let i = 0; i < 5; i++) await js.publish("kept", `m${i}`);
      const inB = await s.bridge(opts);
      const got: string[] = [];
      while (got.length < 5) got.push(text(await within(rx.recv(), 10_000, "kept messages"))!);
      assert.deepEqual(got, ["m0", "m1", "m2", "m3", "m4"]);
      assert.equal(inB.stats().inbound.delivered, 5);
    }),
  );

  test(
    "a server without JetStream is EOPNOTSUPP",
    T,
    scoped(async (s) => {
      const server = await s.server();
      const ka = uniqueKey();
      s.channel({ key: ka });
      await rejectsCode(
        bridge({ nats: server.url(), key: ka, subject: "x", direction: "out", jetstream: { stream: "S" } }),
        "EOPNOTSUPP",
      );
      await rejectsCode(
        bridge({ nats: server.url(), key: ka, subject: "x", direction: "out", jetstream: { stream: "a.b" } }),
        "EINVAL",
      );
    }),
  );
});
