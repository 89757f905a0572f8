/** `shmchan send`: send one message, or one per line of stdin. */
import { Channel, type Subscriber } from "../index.ts";
import { parseArgs, parseCount, UsageError } from "./args.ts";
import { channelOf, parseMs } from "./channels.ts";
import { EXIT_OK, type Io } from "./main.ts";

export const summary = "send a message (or, with -, one per line of stdin)";

export const help = `usage: shmchan send <key|id> <text> [--target <id>] [--timeout <ms>]
       shmchan send <key|id> - [options]      (one message per line of stdin)
       shmchan send --id <id> <text> [options]

Attaches a sender to a live channel and sends <text> as one UTF-8 message,
or, with -, each line of standard input as one message (without its
newline). Waits for room while the ring is full, up to --timeout per
message.

  <key|id>          the channel's key, decimal or 0x hex (or an id, as in stat)
  --id <id>         the channel with this id
  --target <id>     deliver to this subscriber only
  --timeout <ms>    longest wait for room per message (default 10000; 0: do
                    not wait, a full ring fails at once)
  --help            this text

exit status: 0 sent, 1 failure (no such channel, no write right, a full ring
past the timeout, a message over maxMessageSize), 2 bad usage`;

export async function run(args: string[], io: Io): Promise<number> {
  const { flags, positionals } = parseArgs(args, { target: "string", timeout: "string", id: "string" });
  if (flags.help) {
    io.out(help);
    return EXIT_OK;
  }
  const byId = flags.id !== undefined;
  const rest = byId ? positionals : positionals.slice(1);
  if (rest.length === 0) throw new UsageError("what to send? give the text, or - for stdin");
  if (rest.length > 1) throw new UsageError(`unexpected argument "${rest[1]}" (quote a text with spaces)`);
  const target = channelOf(byId ? (flags.id as string) : positionals[0], byId);
  const to = flags.target === undefined ? undefined : parseCount(flags.target as string, "target", 1);
  const timeout = parseMs(flags.timeout, "timeout", 10_000, 0);
  const sub: Subscriber = Channel.attach(target, "send");
  try {
    const opts = to === undefined ? {} : { target: to };
    const one = (text: string) =>
      timeout === 0 ? Promise.resolve(sub.trySend(text, opts)) : sub.send(text, { ...opts, timeout });
    if (rest[0] !== "-") await one(rest[0]);
    else for await (const line of io.lines()) await one(line);
  } finally {
    sub[Symbol.dispose]();
  }
  return EXIT_OK;
}
