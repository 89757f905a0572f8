/** `shmchan stat`: one channel's counters and members. */
import { Channel } from "../index.ts";
import { formatKey, parseArgs } from "./args.ts";
import { countersLine, formatMode, statsJson, table, targetOf } from "./channels.ts";
import { EXIT_OK, type Io } from "./main.ts";

export const summary = "show a channel's counters and its members";

export const help = `usage: shmchan stat <key|id> [--json]
       shmchan stat --id <id> [--json]

Shows a live channel's counters (messages and bytes sent and received, sends
refused because the ring was full, targeted messages dropped, slots skipped
after a dead writer, parks and wakes: the sum over its members, departed
ones included) and each member: id, pid, uid, access, alive, parked or not,
how far behind. Reads the channel's files without joining it.

  <key|id>    the channel's key, decimal or 0x hex (a number no channel has
              as its key but one has as its id names that one)
  --id <id>   the channel with this id
  --json      one object: key (decimal string), id, delivery, mode, private,
              uid, pid, live, ringEntries, maxMessageSize, waiting,
              counters { sent, sentBytes, received, receivedBytes, full,
              dropped, skipped, parks, wakes }, members [ { id, slot, pid,
              uid, access, owner, alive, parked, parkedFor, behind,
              counters } ]
  --help      this text

exit status: 0 ok, 1 failure (no such channel, not yours to look into), 2 bad usage`;

export function run(args: string[], io: Io): Promise<number> {
  const { flags, positionals } = parseArgs(args, { json: "boolean", id: "string" });
  if (flags.help) {
    io.out(help);
    return Promise.resolve(EXIT_OK);
  }
  const target = targetOf(flags, positionals);
  const s = Channel.stats(target);
  if (flags.json) {
    io.out(JSON.stringify(statsJson(s)));
    return Promise.resolve(EXIT_OK);
  }
  const lines = [
    `channel ${formatKey(s.key)} (${s.key}): id ${s.id}, ${s.delivery}, mode ${formatMode(s.mode)}` +
    `${s.private ? " private" : ""}, owner uid ${s.ownerUid}, created by pid ${s.creatorPid}`,
    `ring ${s.ringEntries} x ${s.maxMessageSize} B; ${s.live} live member${s.live === 1 ? "" : "s"}; ` +
    `${s.waiting} waiting`,
    `counters: ${countersLine(s.counters)}`,
    "",
  ];
  const rows = [["MEMBER", "PID", "UID", "ACCESS", "STATE", "PARKED", "BEHIND", "SENT", "RECEIVED", "FULL", "PARKS", "WAKES"]];
  for (const m of s.members) {
    rows.push([
      String(m.id),
      String(m.pid),
      String(m.uid),
      m.access + (m.owner ? " (owner)" : ""),
      m.alive ? "alive" : "dead",
      m.parked.recv && m.parked.send ? "both" : m.parked.recv ? "recv" : m.parked.send ? "send" : "-",
      String(m.behind),
      String(m.counters.sent),
      String(m.counters.received),
      String(m.counters.full),
      String(m.counters.parks),
      String(m.counters.wakes),
    ]);
  }
  io.out(lines.join("\n") + table(rows));
  return Promise.resolve(EXIT_OK);
}
