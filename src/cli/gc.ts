/** `shmchan gc`: sweep what dead processes left in /dev/shm, now. */
import { Channel } from "../index.ts";
import { parseArgs, UsageError } from "./args.ts";
import { EXIT_OK, type Io } from "./main.ts";

export const summary = "sweep what dead processes left in /dev/shm now";

export const help = `usage: shmchan gc [--json]

Removes what processes that died (kill -9 included) left in /dev/shm and
this user may remove (its own names; as root, anyone's): channels whose
creator is gone, half-built channels, dangling id links. Every create and
attach does the same sweep; this runs it now.

  --json    one object: { "removed": <names removed or taken out of lookup> }
  --help    this text

exit status: 0 ok, 1 failure, 2 bad usage`;

export function run(args: string[], io: Io): Promise<number> {
  const { flags, positionals } = parseArgs(args, { json: "boolean" });
  if (flags.help) {
    io.out(help);
    return Promise.resolve(EXIT_OK);
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const removed = Channel.gc();
  io.out(flags.json ? JSON.stringify({ removed }) : `removed ${removed} name${removed === 1 ? "" : "s"}`);
  return Promise.resolve(EXIT_OK);
}
