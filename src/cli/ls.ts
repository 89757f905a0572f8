/** `shmchan ls`: the live channels, one line each. */
import { Channel } from "../index.ts";
import { formatKey, parseArgs, UsageError } from "./args.ts";
import { formatMode, listingJson, table } from "./channels.ts";
import { EXIT_OK, type Io } from "./main.ts";

export const summary = "list the live channels you may look into";

export const help = `usage: shmchan ls [--json]

Lists the live channels this user may look into (a right on the channel, or
root): key, id, delivery, mode, owner uid, creator pid, live members, ring
size, max message size and messages waiting (broadcast: for the slowest
receiver). Reads the channels' files; joins none of them.

  --json    an array of objects: key (decimal string), id, delivery, mode
            ("0644"), private, uid, pid, members, ringEntries,
            maxMessageSize, waiting
  --help    this text

exit status: 0 ok, 1 failure, 2 bad usage`;

export function run(args: string[], io: Io): Promise<number> {
  const { flags, positionals } = parseArgs(args, { json: "boolean" });
  if (flags.help) {
    io.out(help);
    return Promise.resolve(EXIT_OK);
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const list = Channel.list().sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  if (flags.json) {
    io.out(JSON.stringify(list.map(listingJson)));
    return Promise.resolve(EXIT_OK);
  }
  if (list.length === 0) {
    io.out("no live channels");
    return Promise.resolve(EXIT_OK);
  }
  const rows = [["KEY", "ID", "DELIVERY", "MODE", "UID", "PID", "MEMBERS", "RING", "MAXMSG", "WAITING"]];
  for (const c of list) {
    rows.push([
      formatKey(c.key),
      String(c.id),
      c.delivery,
      formatMode(c.mode) + (c.private ? " private" : ""),
      String(c.ownerUid),
      String(c.creatorPid),
      String(c.members),
      String(c.ringEntries),
      String(c.maxMessageSize),
      String(c.waiting),
    ]);
  }
  io.out(table(rows));
  return Promise.resolve(EXIT_OK);
}
