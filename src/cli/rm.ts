/** `shmchan rm`: take a channel out of lookup, like ipcrm. */
import { Channel } from "../index.ts";
import { parseArgs } from "./args.ts";
import { describeTarget, targetOf } from "./channels.ts";
import { EXIT_OK, type Io } from "./main.ts";

export const summary = "remove a channel from lookup (its owner or root), like ipcrm";

export const help = `usage: shmchan rm <key|id>
       shmchan rm --id <id>

Removes a live channel from lookup: from now on attaching to it fails with
ENOENT and its key is free for a new channel. Processes already attached
(its creator included) keep working until they detach; its files go with
the last of them. Allowed for the channel's owner uid and root; anyone else
is refused (EACCES).

  <key|id>    the channel's key, decimal or 0x hex (or an id, as in stat)
  --id <id>   the channel with this id
  --help      this text

exit status: 0 removed, 1 failure (no such channel, not yours), 2 bad usage`;

export function run(args: string[], io: Io): Promise<number> {
  const { flags, positionals } = parseArgs(args, { id: "string" });
  if (flags.help) {
    io.out(help);
    return Promise.resolve(EXIT_OK);
  }
  const target = targetOf(flags, positionals);
  Channel.remove(target);
  io.err(`shmchan rm: removed ${describeTarget(target)} from lookup`);
  return Promise.resolve(EXIT_OK);
}
