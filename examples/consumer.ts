/**
 * A consumer: attaches to the producer's broadcast channel, says hello on the
 * control channel, prints every message until "bye", then detaches.
 *
 *   deno run --allow-ffi --allow-net --allow-read=/tmp --allow-write=/tmp examples/consumer.ts <key> [name]
 *   bun run examples/consumer.ts <key> [name]
 *   node examples/consumer.ts <key> [name]
 */
import process from "node:process";
import { Channel } from "../mod.ts";
import { decode, runtime } from "./_util.ts";

const key = BigInt(process.argv[2] ?? "0");
const name = process.argv[3] ?? `consumer-${process.pid}`;

using sub = Channel.attach({ key }, "recv");
{
  using control = Channel.attach({ key: key + 1n }, "send");
  control.trySend(`${name} (${runtime}, pid ${process.pid}, subscriber ${sub.id})`);
}
for await (const msg of sub) {
  const text = decode(msg);
  console.log(`${name}: ${text}`);
  if (text === "bye") break;
}
