/**
 * The two ends of a bridged pipeline, for the bridge tests; runs under Deno
 * or Bun. One JSON object per stdout line; each stays alive until SIGTERM
 * (or SIGKILL), so that its channel stays in lookup.
 *
 *   produce <key> <count> <perTick>   create a unicast channel, {ready}, then send
 *                                     <count> checksummed messages (floodMessage,
 *                                     producer 1), <perTick> per 10 ms, waiting
 *                                     for room: {sent}
 *   consume <key>                     create a unicast channel, {ready}, receive,
 *                                     {received} every 1000; on SIGTERM:
 *                                     {received, intact, ordered, lastSeq}
 */
import process from "node:process";
import { Channel } from "../../mod.ts";
import { checkFlood, floodMessage } from "../flood.ts";

const out = (value: Record<string, unknown>) => console.log(JSON.stringify(value));
const [command, keyArg, ...rest] = process.argv.slice(2);
const key = BigInt(keyArg ?? "0");
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  switch (command) {
    case "produce": {
      const ch = Channel.create({ key, ringEntries: 256 });
      const count = Number(rest[0]), perTick = Number(rest[1]);
      process.once("SIGTERM", () => {
        ch.destroy();
        process.exit(0);
      });
      out({ ready: true, id: ch.id });
      for (let seq = 0; seq < count; seq++) {
        await ch.send(floodMessage(1, seq), { timeout: 60_000 });
        if ((seq + 1) % perTick === 0) await sleep(10);
      }
      out({ sent: count });
      setInterval(() => {}, 1 << 30);
      return;
    }
    case "consume": {
      const ch = Channel.create({ key, ringEntries: 256 });
      const rx = Channel.attach({ key }, "recv");
      let received = 0, intact = 0, ordered = true, lastSeq = -1;
      process.once("SIGTERM", () => {
        // What is still in the ring counts too.
        for (const m of rx.tryRecvMany()) tally(m);
        out({ received, intact, ordered, lastSeq });
        rx.detach();
        ch.destroy();
        process.exit(0);
      });
      const tally = (m: Uint8Array) => {
        received++;
        const c = checkFlood(m);
        if (c === null || c.producer !== 1) return;
        intact++;
        if (c.seq <= lastSeq) ordered = false;
        lastSeq = c.seq;
      };
      out({ ready: true, id: ch.id });
      for await (const m of rx) {
        tally(m);
        if (received % 1000 === 0) out({ received });
      }
      return;
    }
    default:
      throw new Error(`unknown command ${command}`);
  }
}

main().catch((err) => {
  out({ error: String(err), code: (err as { code?: string })?.code });
  process.exit(1);
});
