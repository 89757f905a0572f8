/**
 * Broadcast fan-out: one publisher, three listener processes; every listener
 * gets every message, in the same order.
 *
 *   deno run --allow-ffi --allow-net --allow-read=/tmp --allow-write=/tmp --allow-env --allow-run examples/broadcast.ts
 *   bun run examples/broadcast.ts
 *   node examples/broadcast.ts
 */
import process from "node:process";
import { Channel } from "../mod.ts";
import { decode, keyFrom, runtime, spawnSame, waitAll } from "./_util.ts";

const [role, keyArg, name] = process.argv.slice(2);

if (role === "listener") {
  const key = BigInt(keyArg);
  using sub = Channel.attach({ key }, "recv");
  // Tell the publisher we are attached (broadcast only reaches attached receivers).
  using ready = Channel.attach({ key: key + 1n }, "send");
  ready.trySend(name);
  const got: string[] = [];
  for await (const msg of sub) {
    const text = decode(msg);
    if (text === "end") break;
    got.push(text);
  }
  console.log(`${name} (pid ${process.pid}) received: ${got.join(", ")}`);
} else {
  const key = keyFrom(undefined);
  using ch = Channel.create({ key, delivery: "broadcast", ringEntries: 16 });
  using _readyChannel = Channel.create({ key: key + 1n });
  using ready = Channel.attach({ key: key + 1n }, "recv");
  const names = ["listener-a", "listener-b", "listener-c"];
  const children = names.map((n) => spawnSame(import.meta.url, ["listener", String(key), n]));
  for (const _ of names) {
    console.log(`publisher (${runtime}): ${decode(await ready.recv({ timeout: 30_000 }))} is attached`);
  }
  for (const word of ["alpha", "beta", "gamma", "delta"]) await ch.send(word);
  await ch.send("end");
  await waitAll(children);
}
