/** `shmchan tail`: attach a receiver and print messages as they arrive. */
import { Channel, type Subscriber } from "../index.ts";
import { formatKey, parseArgs, parseCount, UsageError } from "./args.ts";
import { targetOf } from "./channels.ts";
import { EXIT_OK, type Io } from "./main.ts";

export const summary = "attach a receiver and print messages as they arrive";

export const help = `usage: shmchan tail <key|id> [--format utf8|hex|json] [--count <n>]
       shmchan tail --id <id> [options]

Attaches a receiver to a live channel and prints each message as it
arrives, until interrupted (SIGINT, SIGTERM) or --count messages. On a
broadcast channel it gets a copy of every message sent from now on; on a
unicast or multicast channel it competes with the other receivers: the
messages it prints are taken from them.

  <key|id>           the channel's key, decimal or 0x hex (or an id, as in stat)
  --id <id>          the channel with this id
  --format <f>       utf8 (default): each message as text, one a line;
                     hex: its bytes in hex; json: one object a line,
                     { "seq", "bytes", "utf8" } or, for bytes that are not
                     UTF-8, { "seq", "bytes", "hex" }
  --count <n>        stop after n messages
  --help             this text

Once attached it says so on stderr ("shmchan tail: receiving ...").

exit status: 0 stopped (by a signal or --count), 1 failure (no such channel,
no read right), 2 bad usage`;

const FORMATS = ["utf8", "hex", "json"] as const;
type Format = (typeof FORMATS)[number];

const strict = new TextDecoder("utf-8", { fatal: true });
const lenient = new TextDecoder();
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

function show(msg: Uint8Array, seq: number, format: Format): string {
  if (format === "hex") return hex(msg);
  if (format === "utf8") return lenient.decode(msg);
  try {
    return JSON.stringify({ seq, bytes: msg.byteLength, utf8: strict.decode(msg) });
  } catch {
    return JSON.stringify({ seq, bytes: msg.byteLength, hex: hex(msg) });
  }
}

export async function run(args: string[], io: Io): Promise<number> {
  const { flags, positionals } = parseArgs(args, { format: "string", count: "string", id: "string" });
  if (flags.help) {
    io.out(help);
    return EXIT_OK;
  }
  const format = (flags.format ?? "utf8") as Format;
  if (!FORMATS.includes(format)) throw new UsageError(`--format must be utf8, hex or json, not "${flags.format}"`);
  const count = flags.count === undefined ? Infinity : parseCount(flags.count as string, "count", 1);
  const target = targetOf(flags, positionals);
  const sub: Subscriber = Channel.attach(target, "recv");
  try {
    // The signal handlers first: whoever reads the line below may interrupt at once.
    const stop = new AbortController();
    io.interrupted().then(() => stop.abort());
    io.err(`shmchan tail: receiving from channel ${formatKey(sub.key)} (id ${sub.channelId}, ${sub.delivery}) ` +
      `as subscriber ${sub.id}`);
    for (let seq = 1; seq <= count; seq++) {
      let msg: Uint8Array;
      try {
        msg = await sub.recv({ signal: stop.signal });
      } catch (err) {
        if (stop.signal.aborted) break; // interrupted: the wait was aborted
        throw err;
      }
      io.out(show(msg, seq, format));
    }
  } finally {
    sub[Symbol.dispose]();
  }
  return EXIT_OK;
}
