/** `shmchan watch`: rates per second, refreshed until interrupted. */
import { Channel, ChannelError, type ChannelStats, type ChannelTarget } from "../index.ts";
import { formatKey, parseArgs, parseCount } from "./args.ts";
import { describeTarget, parseMs, table, targetOf } from "./channels.ts";
import { EXIT_OK, type Io } from "./main.ts";

export const summary = "show messages per second, refreshed, until interrupted";

export const help = `usage: shmchan watch [<key|id>] [--interval <ms>] [--count <n>] [--json]
       shmchan watch --id <id> [options]

Every --interval, shows for each live channel you may look into (or for the
one named, with a line per member) the messages sent, received, refused
(ring full), dropped and skipped per second over the last interval, the
messages waiting and the live members. On a terminal it redraws in place;
otherwise it prints one block per interval. Runs until interrupted (SIGINT,
SIGTERM) or for --count refreshes.

  <key|id>          one channel: its key, decimal or 0x hex (or an id, as in stat)
  --id <id>         the channel with this id
  --interval <ms>   refresh period (default 1000)
  --count <n>       stop after n refreshes
  --json            one object a line per refresh: { "time", "interval",
                    "channels": [ { key, id, delivery, live, waiting,
                    sent, received, full, dropped, skipped (per second),
                    members?: [ { id, pid, alive, behind, sent, received } ] } ] }
  --help            this text

exit status: 0 stopped, 1 failure (the channel named is gone), 2 bad usage`;

interface Sample {
  at: number;
  stats: Map<bigint, ChannelStats>;
}

function sample(target: ChannelTarget | undefined): Sample {
  const stats = new Map<bigint, ChannelStats>();
  if (target !== undefined) {
    const s = Channel.stats(target);
    stats.set(s.key, s);
  } else {
    for (const c of Channel.list()) {
      try {
        stats.set(c.key, Channel.stats({ key: c.key }));
      } catch (err) {
        if (!(err instanceof ChannelError)) throw err; // gone since the list: left out
      }
    }
  }
  return { at: performance.now(), stats };
}

const sleep = (ms: number, stop: Promise<unknown>) =>
  Promise.race([new Promise<void>((r) => setTimeout(r, ms)), stop.then(() => undefined)]);

export async function run(args: string[], io: Io): Promise<number> {
  const { flags, positionals } = parseArgs(args, { interval: "string", count: "string", json: "boolean", id: "string" });
  if (flags.help) {
    io.out(help);
    return EXIT_OK;
  }
  const interval = parseMs(flags.interval, "interval", 1000, 10);
  const count = flags.count === undefined ? Infinity : parseCount(flags.count as string, "count", 1);
  const target = targetOf(flags, positionals, true);
  let stopped = false;
  const stop = io.interrupted().then(() => (stopped = true));
  let prev = sample(target);
  for (let n = 0; n < count && !stopped; n++) {
    await sleep(interval, stop);
    if (stopped) break;
    let cur: Sample;
    try {
      cur = sample(target);
    } catch (err) {
      if (target !== undefined && err instanceof ChannelError && err.code === "ENOENT") {
        throw new Error(`${describeTarget(target)} is gone`);
      }
      throw err;
    }
    const secs = (cur.at - prev.at) / 1000;
    const rate = (now: number, before: number | undefined) => Math.max(0, now - (before ?? now)) / secs;
    const channels = [...cur.stats.values()].map((s) => {
      const p = prev.stats.get(s.key);
      const pc = p?.counters;
      const row = {
        key: s.key.toString(),
        id: s.id,
        delivery: s.delivery,
        live: s.live,
        waiting: s.waiting,
        sent: rate(s.counters.sent, pc?.sent),
        received: rate(s.counters.received, pc?.received),
        full: rate(s.counters.full, pc?.full),
        dropped: rate(s.counters.dropped, pc?.dropped),
        skipped: rate(s.counters.skipped, pc?.skipped),
      };
      if (target === undefined) return row;
      const members = s.members.map((m) => {
        const pm = p?.members.find((x) => x.id === m.id)?.counters;
        return {
          id: m.id,
          pid: m.pid,
          alive: m.alive,
          behind: m.behind,
          sent: rate(m.counters.sent, pm?.sent),
          received: rate(m.counters.received, pm?.received),
        };
      });
      return { ...row, members };
    });
    prev = cur;
    if (flags.json) {
      io.out(JSON.stringify({ time: new Date().toISOString(), interval, channels }));
      continue;
    }
    const f = (x: number) => (x >= 10 ? x.toFixed(0) : x.toFixed(1));
    const rows = [["KEY", "ID", "DELIVERY", "LIVE", "WAITING", "SENT/s", "RECV/s", "FULL/s", "DROP/s", "SKIP/s"]];
    for (const c of channels) {
      rows.push([
        formatKey(BigInt(c.key)),
        String(c.id),
        c.delivery,
        String(c.live),
        String(c.waiting),
        f(c.sent),
        f(c.received),
        f(c.full),
        f(c.dropped),
        f(c.skipped),
      ]);
    }
    let text = channels.length ? table(rows) : "no live channels";
    const one = channels[0] as (typeof channels)[number] & { members?: { id: number; pid: number; alive: boolean; behind: number; sent: number; received: number }[] };
    if (one?.members) {
      const mrows = [["MEMBER", "PID", "STATE", "BEHIND", "SENT/s", "RECV/s"]];
      for (const m of one.members) {
        mrows.push([String(m.id), String(m.pid), m.alive ? "alive" : "dead", String(m.behind), f(m.sent), f(m.received)]);
      }
      text += "\n\n" + table(mrows);
    }
    const stamp = `every ${interval} ms, ${new Date().toISOString()} (Ctrl-C to stop)`;
    io.out(io.tty ? `\x1b[H\x1b[2J${stamp}\n\n${text}` : `${stamp}\n${text}\n`);
  }
  return EXIT_OK;
}
