/**
 * Multicast work queue: competing workers; each job goes to exactly one of
 * them, and wakeups rotate so the work spreads. Results come back on a
 * unicast channel.
 *
 *   deno run --allow-ffi --allow-net --allow-read=/tmp --allow-write=/tmp --allow-env --allow-run examples/workqueue.ts
 *   bun run examples/workqueue.ts
 *   node examples/workqueue.ts
 */
import process from "node:process";
import { Channel } from "../mod.ts";
import { decode, keyFrom, runtime, spawnSame, waitAll } from "./_util.ts";

const fib = (n: number): number => (n < 2 ? n : fib(n - 1) + fib(n - 2));
const [role, keyArg, name] = process.argv.slice(2);

if (role === "worker") {
  const key = BigInt(keyArg);
  using jobs = Channel.attach({ key }, "recv");
  using results = Channel.attach({ key: key + 1n }, "send");
  results.trySend(JSON.stringify({ worker: name, id: jobs.id }));
  for await (const msg of jobs) {
    const job = JSON.parse(decode(msg)) as { n?: number; stop?: true };
    if (job.stop) break;
    await results.send(JSON.stringify({ worker: name, n: job.n, fib: fib(job.n!) }));
  }
} else {
  const key = keyFrom(undefined);
  const workers = ["worker-1", "worker-2", "worker-3"];
  using jobs = Channel.create({ key, delivery: "multicast", ringEntries: 64 });
  using _resultsChannel = Channel.create({ key: key + 1n });
  using results = Channel.attach({ key: key + 1n }, "recv");
  const children = workers.map((w) => spawnSame(import.meta.url, ["worker", String(key), w]));
  const ids: number[] = [];
  for (const _ of workers) ids.push(JSON.parse(decode(await results.recv({ timeout: 30_000 }))).id);
  console.log(`queue (${runtime}): ${workers.length} workers ready`);

  const ns = Array.from({ length: 12 }, (_, i) => 20 + i);
  for (const n of ns) await jobs.send(JSON.stringify({ n }));
  const perWorker = new Map<string, number[]>();
  for (const _ of ns) {
    const r = JSON.parse(decode(await results.recv({ timeout: 30_000 })));
    console.log(`  fib(${r.n}) = ${r.fib}  by ${r.worker}`);
    perWorker.set(r.worker, [...(perWorker.get(r.worker) ?? []), r.n]);
  }
  for (const [w, done] of perWorker) console.log(`${w} did ${done.length} job(s)`);
  // A targeted "stop" reaches each worker exactly once.
  for (const id of ids) await jobs.send(JSON.stringify({ stop: true }), { target: id });
  await waitAll(children);
}
