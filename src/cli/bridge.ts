/**
 * `shmchan bridge`: runs one bridge (src/bridge.ts) until SIGINT or SIGTERM.
 */
import type { BridgeStats, Direction } from "../bridge.ts";
import { formatKey, parseArgs, parseCount, parseKey, UsageError } from "./args.ts";
import { EXIT_FAILURE, EXIT_OK, type Io, oneLine } from "./main.ts";

export const summary = "carry a channel's messages over NATS (out, in or both)";

export const help =
  `usage: shmchan bridge --nats <url> --key <key> --subject <subject> --direction out|in|both [options]

Carries a local channel's messages to a NATS subject (out: a receiver on the
channel; broadcast: one more receiver, unicast/multicast: a competing
consumer), a subject's messages into the channel (in: waiting for room,
holding at most --max-pending, counting what it drops), or both ways (both:
broadcast channels; nothing is echoed back). Core NATS is at-most-once:
losses are counted, not hidden (README, "Across machines"). Runs until
SIGINT or SIGTERM, then closes and prints its counters.

  --nats <url>            NATS server, nats://host:4222 (several: comma-separated;
                          credentials: nats://user:password@host); default $NATS_URL
  --key <key>             the local channel, decimal or 0x hex; it must exist
  --subject <subject>     NATS subject (in: wildcards allowed)
  --direction <d>         out | in | both
  --queue <group>         in/both: subscribe in this queue group
  --jetstream <stream>    at least once through this JetStream stream (created
                          for the subject if missing; the server needs -js)
  --durable <name>        with --jetstream, in/both: the durable consumer
                          (default shmchan-<subject>; bridges sharing it share
                          the messages)
  --user <name>           credentials; default $NATS_USER, $NATS_PASSWORD
  --password <password>
  --token <token>         token authentication; default $NATS_TOKEN
  --max-pending <n>       in: messages held while the ring is full (default 65536)
  --reconnect-wait <ms>   pause between reconnect attempts (default 250)
  --stats <ms>            print the counters every <ms> milliseconds
  --json                  one JSON object per line on stdout (events: ready,
                          disconnect, reconnect, error, stats, closed)
  --help                  this text

Needs the NATS client installed beside shmchan: npm install @nats-io/transport-node
(and, for --jetstream, npm install @nats-io/jetstream)

exit status: 0 stopped by a signal, 1 failure (cannot connect or attach, or
the connection was lost for good), 2 bad usage`;

const FLAGS = {
  nats: "string",
  key: "string",
  subject: "string",
  direction: "string",
  queue: "string",
  jetstream: "string",
  durable: "string",
  user: "string",
  password: "string",
  token: "string",
  "max-pending": "string",
  "reconnect-wait": "string",
  stats: "string",
  json: "boolean",
} as const;

function describe(s: BridgeStats, direction: Direction): string {
  const parts: string[] = [];
  if (direction !== "in") {
    const o = s.outbound;
    parts.push(
      `out: received ${o.received}, published ${o.published}, dropped ${o.dropped}, echoes ${o.echoes}, ` +
        `retried ${o.retried}`,
    );
  }
  if (direction !== "out") {
    const i = s.inbound;
    parts.push(
      `in: received ${i.received}, delivered ${i.delivered}, dropped ${i.dropped}, lost ${i.lost}, ` +
        `pending ${i.pending}, duplicates ${i.duplicates}`,
    );
  }
  parts.push(`reconnects ${s.connection.reconnects}`);
  return parts.join("; ");
}

export async function run(args: string[], io: Io): Promise<number> {
  const { flags, positionals } = parseArgs(args, FLAGS);
  if (flags.help) {
    io.out(help);
    return EXIT_OK;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const str = (name: keyof typeof FLAGS) => flags[name] as string | undefined;
  const natsUrl = str("nats") ?? io.env.NATS_URL;
  if (natsUrl === undefined || natsUrl === "") throw new UsageError("--nats <url> is required (or set NATS_URL)");
  const keyText = str("key");
  if (keyText === undefined) throw new UsageError("--key <key> is required");
  const key = parseKey(keyText);
  const subject = str("subject");
  if (subject === undefined) throw new UsageError("--subject <subject> is required");
  const direction = str("direction");
  if (direction === undefined) throw new UsageError("--direction out|in|both is required");
  if (direction !== "out" && direction !== "in" && direction !== "both") {
    throw new UsageError(`--direction must be out, in or both, not "${direction}"`);
  }
  const queue = str("queue");
  const stream = str("jetstream");
  const durable = str("durable");
  if (durable !== undefined && stream === undefined) throw new UsageError("--durable needs --jetstream <stream>");
  if (queue !== undefined && direction === "out") throw new UsageError("--queue applies to --direction in or both");
  const maxPending = str("max-pending") === undefined ? undefined : parseCount(str("max-pending")!, "max-pending");
  const reconnectWait = str("reconnect-wait") === undefined
    ? undefined
    : parseCount(str("reconnect-wait")!, "reconnect-wait");
  const statsEvery = str("stats") === undefined ? undefined : parseCount(str("stats")!, "stats", 1);
  const json = flags.json === true;
  const user = str("user") ?? io.env.NATS_USER;
  const pass = str("password") ?? io.env.NATS_PASSWORD;
  const token = str("token") ?? io.env.NATS_TOKEN;

  const emit = (event: string, fields: Record<string, unknown>, human: string) => {
    if (json) io.out(JSON.stringify({ event, ...fields }));
    else io.err(`shmchan bridge: ${human}`);
  };

  // Loaded here: the other subcommands never load the bridge or NATS.
  const { bridge } = await import("../bridge.ts");
  const b = await bridge({
    nats: natsUrl.split(",").map((s) => s.trim()),
    key,
    subject,
    direction,
    ...(queue === undefined ? {} : { queue }),
    ...(stream === undefined ? {} : { jetstream: durable === undefined ? { stream } : { stream, durable } }),
    ...(user === undefined ? {} : { user }),
    ...(pass === undefined ? {} : { pass }),
    ...(token === undefined ? {} : { token }),
    ...(maxPending === undefined ? {} : { maxPending }),
    ...(reconnectWait === undefined ? {} : { reconnectWait }),
    onEvent: (e) => {
      if (e.type === "error") {
        emit("error", { message: e.error?.message ?? "" }, `NATS error: ${e.error?.message ?? "?"}`);
      } else {
        const verb = e.type === "disconnect" ? "disconnected from" : "reconnected to";
        emit(e.type, { server: e.server ?? "" }, `${verb} ${e.server ?? "the server"}`);
      }
    },
  });
  const arrow = direction === "out" ? "->" : direction === "in" ? "<-" : "<->";
  // The signal handlers before "ready": whoever reads it may interrupt at once.
  const interrupted = io.interrupted();
  emit(
    "ready",
    {
      key: b.key.toString(),
      delivery: b.delivery,
      direction,
      subject,
      server: b.stats().connection.server,
      origin: b.origin,
    },
    `channel ${formatKey(b.key)} (${b.delivery}) ${arrow} subject ${subject} on ${b.stats().connection.server}`,
  );
  const timer = statsEvery === undefined
    ? undefined
    : setInterval(() => emit("stats", { stats: b.stats() }, describe(b.stats(), direction)), statsEvery);

  const outcome = await Promise.race([
    interrupted.then((signal) => ({ signal, error: undefined })),
    b.finished.then((error) => ({ signal: undefined, error })),
  ]);
  if (timer !== undefined) clearInterval(timer);
  const final = await b.close();
  if (outcome.error !== undefined) {
    emit("closed", { error: outcome.error.message, stats: final }, `stopped: ${describe(final, direction)}`);
    io.err(`shmchan bridge: ${oneLine(outcome.error)}`);
    return EXIT_FAILURE;
  }
  emit("closed", { signal: outcome.signal, stats: final }, `closed (${outcome.signal}): ${describe(final, direction)}`);
  return EXIT_OK;
}
