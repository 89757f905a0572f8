/**
 * Bad input: every wrong type is a TypeError, every out-of-range value a
 * ChannelError EINVAL, a closed handle ENOENT; never a crash, a hang or a
 * synchronous throw from an async method.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Channel, ChannelError, Subscriber } from "../mod.ts";
import { text, throwsCode, uniqueKey } from "./helpers.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

const TYPE = "TypeError";
type Expect = typeof TYPE | "EINVAL" | "ENOENT" | "EACCES" | "EMSGSIZE";

function expectSync(fn: () => unknown, expected: Expect, what: string): void {
  if (expected === TYPE) assert.throws(fn, TypeError, what);
  else {
    try {
      throwsCode(fn, expected);
    } catch (err) {
      throw new Error(`${what}: ${(err as Error).message}`);
    }
  }
}

async function expectAsync(fn: () => Promise<unknown>, expected: Expect, what: string): Promise<void> {
  let p: Promise<unknown>;
  try {
    p = fn();
  } catch (err) {
    assert.fail(`${what}: threw synchronously (${err}) instead of rejecting`);
  }
  assert.ok(p instanceof Promise, `${what}: not a promise`);
  await assert.rejects(p, (err: unknown) => {
    if (expected === TYPE) assert.ok(err instanceof TypeError, `${what}: ${err}`);
    else {
      assert.ok(err instanceof ChannelError, `${what}: ${err}`);
      assert.equal(err.code, expected, what);
    }
    return true;
  });
}

/** A readable rendering of a test value, for test names. */
function show(v: unknown): string {
  if (typeof v === "bigint") return `${v}n`;
  if (typeof v === "number" || typeof v === "symbol" || typeof v === "function" || v === undefined) return String(v);
  if (v instanceof ArrayBuffer) return `ArrayBuffer(${v.byteLength})`;
  if (Array.isArray(v)) return `[${v.map(show).join(", ")}]`;
  if (typeof v === "object" && v !== null) {
    return `{${Object.entries(v).map(([k, x]) => `${k}: ${show(x)}`).join(", ")}}`;
  }
  return JSON.stringify(v);
}

describe("Channel.create()", () => {
  test("options that are not an object are TypeError", () => {
    for (const options of [undefined, null, "key", 42, 42n, true]) {
      expectSync(() => Channel.create(options as Any), TYPE, `create(${show(options)})`);
    }
  });

  const cases: Array<[string, unknown, Expect]> = [
    ["key", undefined, TYPE],
    ["key", null, TYPE],
    ["key", "5", TYPE],
    ["key", true, TYPE],
    ["key", {}, TYPE],
    ["key", 0, "EINVAL"],
    ["key", 0n, "EINVAL"],
    ["key", -1, "EINVAL"],
    ["key", -1n, "EINVAL"],
    ["key", 1.5, "EINVAL"],
    ["key", NaN, "EINVAL"],
    ["key", Infinity, "EINVAL"],
    ["key", 2 ** 53, "EINVAL"],
    ["key", 2 ** 64, "EINVAL"],
    ["key", 1n << 64n, "EINVAL"],
    ["key", -(1n << 64n), "EINVAL"],
    ["delivery", "UNICAST", "EINVAL"],
    ["delivery", "", "EINVAL"],
    ["delivery", "toString", "EINVAL"],
    ["delivery", 0, "EINVAL"],
    ["delivery", null, "EINVAL"],
    ["ringEntries", 0, "EINVAL"],
    ["ringEntries", 3, "EINVAL"],
    ["ringEntries", 65536, "EINVAL"],
    ["ringEntries", -1, "EINVAL"],
    ["ringEntries", 1.5, "EINVAL"],
    ["ringEntries", NaN, "EINVAL"],
    ["ringEntries", Infinity, "EINVAL"],
    ["ringEntries", 2 ** 32 + 1, "EINVAL"],
    ["ringEntries", "256", TYPE],
    ["ringEntries", 256n, TYPE],
    ["ringEntries", null, TYPE],
    ["maxMessageSize", 0, "EINVAL"],
    ["maxMessageSize", 1048577, "EINVAL"],
    ["maxMessageSize", -4096, "EINVAL"],
    ["maxMessageSize", NaN, "EINVAL"],
    ["maxMessageSize", 2 ** 32 + 16, "EINVAL"],
    ["maxMessageSize", "4096", TYPE],
    ["mode", -1, "EINVAL"],
    ["mode", 0o10000, "EINVAL"],
    ["mode", 0.5, "EINVAL"],
    ["mode", NaN, "EINVAL"],
    ["mode", "600", TYPE],
    ["private", "yes", TYPE],
    ["private", 1, TYPE],
    ["private", null, TYPE],
  ];
  for (const [field, value, expected] of cases) {
    test(`${field}: ${show(value)} is ${expected}`, () => {
      const options: Record<string, unknown> = { key: uniqueKey(), [field]: value };
      if (field === "key" && value === undefined) delete options.key;
      let created: Channel | undefined;
      try {
        expectSync(() => (created = Channel.create(options as Any)), expected, `create({${field}: ${show(value)}})`);
      } finally {
        created?.destroy();
      }
    });
  }
});

describe("Channel.attach()", () => {
  const key = uniqueKey();
  const ch = Channel.create({ key });
  const cases: Array<[unknown, Expect]> = [
    [undefined, TYPE],
    [null, TYPE],
    ["key", TYPE],
    [42n, TYPE],
    [{}, TYPE],
    [{ key, id: ch.id }, TYPE],
    [{ key: "1" }, TYPE],
    [{ key: 0 }, "EINVAL"],
    [{ key: -1n }, "EINVAL"],
    [{ key: NaN }, "EINVAL"],
    [{ id: "1" }, TYPE],
    [{ id: 1n }, TYPE],
    [{ id: 0 }, "EINVAL"],
    [{ id: -5 }, "EINVAL"],
    [{ id: 1.5 }, "EINVAL"],
    [{ id: NaN }, "EINVAL"],
    [{ id: 2 ** 31 }, "EINVAL"],
    [{ id: Infinity }, "EINVAL"],
  ];
  for (const [target, expected] of cases) {
    test(`attach(${show(target)}) is ${expected}`, () => {
      expectSync(() => Channel.attach(target as Any, "both").detach(), expected, `attach(${show(target)})`);
    });
  }
  test("(cleanup)", () => ch.destroy());
});

describe("messages and options", () => {
  const key = uniqueKey();
  const ch = Channel.create({ key, maxMessageSize: 16 });
  const sub = Channel.attach({ key }, "both");

  const badData: unknown[] = [undefined, null, 42, 42n, true, {}, [1, 2, 3], Symbol("x"), () => 1];
  for (const data of badData) {
    test(`sending ${show(data)} is TypeError`, async () => {
      expectSync(() => sub.trySend(data as Any), TYPE, "trySend");
      expectSync(() => ch.trySend(data as Any), TYPE, "owner trySend");
      expectSync(() => sub.trySendMany([data as Any]), TYPE, "trySendMany");
      await expectAsync(() => sub.send(data as Any), TYPE, "send");
    });
  }

  const badSendOptions: Array<[unknown, Expect]> = [
    ["x", TYPE],
    [null, TYPE],
    [5, TYPE],
    [{ target: "1" }, TYPE],
    [{ target: 1n }, TYPE],
    [{ target: null }, TYPE],
    [{ target: 0 }, "EINVAL"],
    [{ target: -1 }, "EINVAL"],
    [{ target: 1.5 }, "EINVAL"],
    [{ target: NaN }, "EINVAL"],
    [{ target: 2 ** 32 }, "EINVAL"],
    [{ target: Infinity }, "EINVAL"],
  ];
  for (const [opts, expected] of badSendOptions) {
    test(`send options ${show(opts)} are ${expected}`, async () => {
      expectSync(() => sub.trySend("x", opts as Any), expected, "trySend");
      await expectAsync(() => sub.send("x", opts as Any), expected, "send");
    });
  }

  const badWaitOptions: Array<[unknown, Expect]> = [
    ["x", TYPE],
    [null, TYPE],
    [{ timeout: "10" }, TYPE],
    [{ timeout: 10n }, TYPE],
    [{ timeout: -1 }, "EINVAL"],
    [{ timeout: NaN }, "EINVAL"],
    [{ timeout: -Infinity }, "EINVAL"],
    [{ signal: {} }, TYPE],
    [{ signal: "abort" }, TYPE],
    [{ signal: null }, TYPE],
    [{ spin: -1 }, "EINVAL"],
    [{ spin: NaN }, "EINVAL"],
    [{ spin: 1e9 }, "EINVAL"],
    [{ spin: "5" }, TYPE],
  ];
  for (const [opts, expected] of badWaitOptions) {
    test(`wait options ${show(opts)} are ${expected}`, async () => {
      await expectAsync(() => sub.recv(opts as Any), expected, "recv");
      await expectAsync(() => sub.recvInto(new Uint8Array(4), opts as Any), expected, "recvInto");
    });
  }

  const badBuffers: unknown[] = [undefined, null, 4, "abcd", [0, 0, 0, 0], new ArrayBuffer(4), {}];
  for (const buf of badBuffers) {
    test(`receiving into ${show(buf)} is TypeError`, async () => {
      expectSync(() => sub.tryRecvInto(buf as Any), TYPE, "tryRecvInto");
      await expectAsync(() => sub.recvInto(buf as Any), TYPE, "recvInto");
    });
  }

  test("tryRecvMany(max) takes a count", () => {
    expectSync(() => sub.tryRecvMany(-1), "EINVAL", "tryRecvMany(-1)");
    expectSync(() => sub.tryRecvMany(1.5), "EINVAL", "tryRecvMany(1.5)");
    expectSync(() => sub.tryRecvMany(NaN), "EINVAL", "tryRecvMany(NaN)");
    expectSync(() => sub.tryRecvMany("2" as Any), TYPE, "tryRecvMany('2')");
  });

  test("a message over maxMessageSize is EMSGSIZE, whatever its form", async () => {
    for (const data of [new Uint8Array(17), new ArrayBuffer(17), new Float64Array(3), "x".repeat(17)]) {
      expectSync(() => sub.trySend(data), "EMSGSIZE", "trySend");
      await expectAsync(() => sub.send(data), "EMSGSIZE", "send");
    }
  });

  test("the channel still works after all of the above", async () => {
    assert.equal(sub.tryRecv(), null, "no bad input left a message behind");
    sub.trySend("fine");
    assert.equal(text(await sub.recv()), "fine");
    sub.detach();
    ch.destroy();
  });
});

describe("handles", () => {
  test("handles cannot be constructed directly", () => {
    assert.throws(() => new (Channel as Any)(), TypeError);
    assert.throws(() => new (Channel as Any)(Symbol("x"), 1), TypeError);
    assert.throws(() => new (Subscriber as Any)(Symbol("x"), 1), TypeError);
  });

  test("a method called on another object is TypeError", () => {
    const key = uniqueKey();
    using _ch = Channel.create({ key });
    using sub = Channel.attach({ key }, "both");
    const tryRecv = sub.tryRecv;
    assert.throws(() => tryRecv.call({}), TypeError);
  });

  test("a destroyed owner and a detached subscriber are ENOENT everywhere, disposal excepted", async () => {
    const key = uniqueKey();
    const ch = Channel.create({ key });
    const sub = Channel.attach({ key }, "both");
    sub.detach();
    ch.destroy();
    for (
      const [name, fn] of [
        ["trySend", () => sub.trySend("x")],
        ["tryRecv", () => sub.tryRecv()],
        ["detach", () => sub.detach()],
        ["owner trySend", () => ch.trySend("x")],
        ["destroy", () => ch.destroy()],
      ] as const
    ) expectSync(fn, "ENOENT", name);
    await expectAsync(() => sub.recv({ timeout: 1 }), "ENOENT", "recv");
    await expectAsync(() => sub.send("x", { timeout: 1 }), "ENOENT", "send");
    sub[Symbol.dispose]();
    ch[Symbol.dispose]();
  });

  test("a stale handle never reaches another channel", () => {
    const a = uniqueKey();
    const chA = Channel.create({ key: a });
    const subA = Channel.attach({ key: a }, "both");
    subA.detach();
    chA.destroy();
    // New handles may reuse the C handle numbers of the closed ones.
    const b = uniqueKey();
    using chB = Channel.create({ key: b });
    using subB = Channel.attach({ key: b }, "both");
    throwsCode(() => subA.trySend("wrong channel"), "ENOENT");
    throwsCode(() => chA.trySend("wrong channel"), "ENOENT");
    assert.equal(subB.tryRecv(), null);
    chB.trySend("right");
    assert.equal(text(subB.tryRecv()), "right");
  });
});
