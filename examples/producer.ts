/**
 * A producer: creates a broadcast channel, waits until <consumers> consumers
 * have said hello on a second (control) channel, sends <count> messages and
 * "bye", then destroys both channels.
 *
 *   deno run --allow-ffi --allow-net --allow-read=/tmp --allow-write=/tmp examples/producer.ts <key> [consumers] [count]
 *   bun run examples/producer.ts <key> [consumers] [count]
 *   node examples/producer.ts <key> [consumers] [count]
 * and, in other terminals, examples/consumer.ts <key> <name>.
 */
import process from "node:process";
import { Channel } from "../mod.ts";
import { decode, keyFrom, runtime, sleep } from "./_util.ts";

const key = keyFrom(process.argv[2]);
const consumers = Number(process.argv[3] ?? 1);
const count = Number(process.argv[4] ?? 5);

using data = Channel.create({ key, delivery: "broadcast", mode: 0o666 });
using _control = Channel.create({ key: key + 1n, mode: 0o666 });
using inbox = Channel.attach({ key: key + 1n }, "recv");
console.log(
  `producer (${runtime}, pid ${process.pid}): channel ${data.id}, key ${key}; waiting for ${consumers} consumer(s)`,
);

for (let i = 0; i < consumers; i++) {
  console.log(`producer: hello from ${decode(await inbox.recv({ timeout: 30_000 }))}`);
}
for (let i = 1; i <= count; i++) {
  await data.send(`tick ${i}/${count} from ${runtime} at ${new Date().toISOString()}`);
  await sleep(200);
}
await data.send("bye");
console.log("producer: done");
