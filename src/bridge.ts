/**
 * The NATS bridge: carries a channel's messages to a NATS subject, and a
 * subject's messages into a channel, so that a pipeline can span machines.
 * shmchan speaks no network protocol of its own; NATS does the network.
 *
 *   out   a receiver on the channel (broadcast: one more receiver;
 *         unicast/multicast: a competing consumer) publishes each message;
 *   in    a subscription (optionally in a queue group) sends each message
 *         into the channel, waiting for room, holding at most `maxPending`;
 *   both  both, on a broadcast channel, without echoing a message back.
 *
 * Core NATS is at most once; with `jetstream` the bridge goes through a
 * stream instead: at least once, de-duplicated by message id when
 * publishing and by sequence number when delivering.
 *
 * Accounting (README "Across machines"). Every message a bridge publishes
 * carries two headers: `Shmchan-Origin`, a random id of the bridge, and
 * `Shmchan-Seq`, 1, 2, 3, … per origin. A receiving bridge (not in a queue
 * group) counts the numbers it never saw as `lost`. So that a loss at the
 * end of a stream is counted too, a publishing bridge sends a mark, an
 * empty message on `_SHMCHAN.mark.<subject>` with the last number, when it
 * falls idle (after `markAfter` ms), after a reconnect and when it closes.
 * Echoes: a bridge skips NATS messages that carry its own origin; in `both`
 * it also remembers what it put into the ring, in order, and does not
 * publish those messages when its own receiver takes them.
 *
 * The NATS client (@nats-io/transport-node, an optional peer dependency) is
 * loaded on the first bridge(), the JetStream client (@nats-io/jetstream,
 * optional too) on the first JetStream bridge: applications that never
 * bridge never load either.
 */
import type { JetStreamClient, JetStreamManager, JsMsg } from "@nats-io/jetstream";
import type { Msg, NatsConnection, NodeConnectionOptions, Subscription } from "@nats-io/transport-node";
import { Channel, type Delivery, type Subscriber } from "./channel.ts";
import { ChannelError } from "./errors.ts";

/** Which way a bridge carries messages. */
export type Direction = "out" | "in" | "both";

/** Options of bridge(). */
export interface BridgeOptions {
  /**
   * The NATS server: a URL (`nats://host:4222`, `host:4222`, credentials as
   * `nats://user:password@host`), several URLs of one cluster, or a
   * connection the caller owns (the bridge then never closes it, and the
   * connection options below do not apply).
   */
  nats: string | string[] | NatsConnection;
  /** Key of the local channel, which must exist. */
  key: bigint | number;
  /** NATS subject. `in` may use wildcards; `out` and `both` publish to it. */
  subject: string;
  direction: Direction;
  /** `in`/`both`: subscribe in this queue group (each message to one member). */
  queue?: string;
  /**
   * At-least-once through a JetStream stream instead of core NATS (the
   * server needs JetStream: `nats-server -js`). `out` publishes into
   * `stream` (created for the subject if missing) and keeps each message
   * until the stream acknowledges it, retrying with the same message id, so
   * that the stream drops a retry that had landed after all; `in` reads
   * through the durable consumer `durable` (created if missing; bridges
   * sharing it share the messages) and acknowledges each message once it is
   * in the ring, skipping redeliveries it has already delivered.
   */
  jetstream?: { stream: string; durable?: string };
  /** Credentials, unless they are in the URL. */
  user?: string;
  pass?: string;
  token?: string;
  /** Connection name shown by the server's monitoring. */
  name?: string;
  /**
   * `in`: while the ring is full, messages are held (in order) up to this
   * many, and this many bytes; more are dropped and counted. Defaults 65536
   * messages, 64 MiB.
   */
  maxPending?: number;
  maxPendingBytes?: number;
  /** Milliseconds to wait for the server when connecting. Default 5000. */
  connectTimeout?: number;
  /** Milliseconds between reconnect attempts. Default 250 (plus up to 100 ms jitter). */
  reconnectWait?: number;
  /** Reconnect attempts per server before giving up; -1 (default): never give up. */
  maxReconnectAttempts?: number;
  /** Milliseconds between pings that detect a dead connection. Default 5000 (2 missed: reconnect). */
  pingInterval?: number;
  /** `out`/`both`: milliseconds of idleness after which the last number is marked. Default 1000. */
  markAfter?: number;
  /** `in`/`both`: milliseconds close() waits for room for held messages. Default 2000. */
  closeTimeout?: number;
  /** Called on connection events (after the bridge is up). */
  onEvent?: (event: BridgeEvent) => void;
}

/** A connection event. */
export interface BridgeEvent {
  type: "disconnect" | "reconnect" | "error";
  /** The server concerned, when known. */
  server?: string;
  /** For "error": what the server or the client reported. */
  error?: Error;
}

/** A bridge's counters (a snapshot). */
export interface BridgeStats {
  /** Channel → NATS (`out`, `both`). */
  outbound: {
    /** Messages taken from the channel. */
    received: number;
    /** Messages handed to NATS while connected (each got a sequence number). */
    published: number;
    /**
     * Taken but not published: NATS down (broadcast), longer than the
     * server's max_payload, or (JetStream) still unacknowledged at close().
     */
    dropped: number;
    /** `both`: taken back from the ring after this bridge had put them there, not published. */
    echoes: number;
    /** JetStream: publishes repeated because no acknowledgement came. */
    retried: number;
  };
  /** NATS → channel (`in`, `both`). */
  inbound: {
    /** Messages that arrived from NATS (echoes and marks excluded). */
    received: number;
    /** Sent into the channel. */
    delivered: number;
    /** Arrived but not delivered: longer than maxMessageSize, maxPending exceeded, or left at close(). */
    dropped: number;
    /** Published by another bridge but never arrived here (gaps in its sequence numbers). */
    lost: number;
    /** Held now, waiting for room in the ring. */
    pending: number;
    /** Arrived from NATS with this bridge's own origin, not delivered. */
    echoes: number;
    /** JetStream: redeliveries of messages already delivered, acknowledged and skipped. */
    duplicates: number;
  };
  connection: {
    connected: boolean;
    /** The server connected to (or last connected to). */
    server: string;
    disconnects: number;
    reconnects: number;
  };
}

/** A running bridge, from bridge(). */
export interface Bridge extends AsyncDisposable {
  readonly key: bigint;
  readonly subject: string;
  readonly direction: Direction;
  /** The local channel's delivery mode. */
  readonly delivery: Delivery;
  /** This bridge's origin id (the `Shmchan-Origin` header of what it publishes). */
  readonly origin: string;
  /** The counters now. */
  stats(): BridgeStats;
  /**
   * Resolves when the bridge stops: with undefined after close(), or with the
   * ChannelError that stopped it (NATS gave up reconnecting, the channel failed).
   */
  readonly finished: Promise<ChannelError | undefined>;
  /**
   * Stops taking messages, publishes the last mark, delivers what is held
   * (waiting up to closeTimeout for room), closes the connection if the
   * bridge opened it and detaches. Resolves with the final counters. Safe
   * to call twice.
   */
  close(): Promise<BridgeStats>;
}

/** Header names and the mark subject prefix. */
export const ORIGIN_HEADER = "Shmchan-Origin";
export const SEQ_HEADER = "Shmchan-Seq";
export const MARK_PREFIX = "_SHMCHAN.mark.";

const DEFAULTS = {
  maxPending: 65536,
  maxPendingBytes: 64 << 20,
  connectTimeout: 5000,
  reconnectWait: 250,
  maxReconnectAttempts: -1,
  pingInterval: 5000,
  markAfter: 1000,
  closeTimeout: 2000,
};
/** Messages taken from the channel per call. */
const BATCH = 64;
/** Published since the last flush before the next one is started: messages, bytes. */
const FLUSH_MESSAGES = 4096;
const FLUSH_BYTES = 1 << 20;
/** JetStream: publishes awaiting their acknowledgement, at most. */
const JS_WINDOW = 256;
/** JetStream: milliseconds to wait for an acknowledgement before retrying. */
const JS_ACK_TIMEOUT = 5000;
/** Origins whose numbers a receiving bridge remembers. */
const MAX_ORIGINS = 4096;
/** JetStream: numbers skipped by one jump that are still expected. */
const MAX_MISSING = 65536;

type Nats = typeof import("@nats-io/transport-node");
let natsModule: Promise<Nats> | undefined;

/** The NATS client, loaded on first use. */
function loadNats(): Promise<Nats> {
  natsModule ??= import("@nats-io/transport-node").catch((cause) => {
    natsModule = undefined;
    throw new Error(
      "the NATS bridge needs the NATS client, an optional peer dependency of shmchan: " +
        "npm install @nats-io/transport-node",
      { cause },
    );
  });
  return natsModule;
}

type JetStreamModule = typeof import("@nats-io/jetstream");
let jetStreamModule: Promise<JetStreamModule> | undefined;

/** The JetStream client, loaded on the first bridge that asks for it. */
function loadJetStream(): Promise<JetStreamModule> {
  jetStreamModule ??= import("@nats-io/jetstream").catch((cause) => {
    jetStreamModule = undefined;
    throw new Error(
      "a JetStream bridge needs the JetStream client, an optional peer dependency: npm install @nats-io/jetstream",
      { cause },
    );
  });
  return jetStreamModule;
}

/** What a JetStream bridge works with. */
interface JetStreamParts {
  client: JetStreamClient;
  manager: JetStreamManager;
  stream: string;
  durable: string;
}

const einval = (detail: string) => ChannelError.of("EINVAL", detail);

/** A subject as NATS accepts it: dot-separated non-empty tokens, no whitespace. */
function checkSubject(subject: unknown, name: string, wildcards: boolean): string {
  if (typeof subject !== "string") throw new TypeError(`${name} must be a string`);
  if (subject === "" || /[\s]/.test(subject) || subject.split(".").some((t) => t === "")) {
    throw einval(`${name} "${subject}" is not a NATS subject (dot-separated tokens, no spaces)`);
  }
  const tokens = subject.split(".");
  const wild = tokens.some((t, i) => t === "*" || (t === ">" && i === tokens.length - 1));
  if (
    tokens.some((t, i) => (t.includes("*") && t !== "*") || (t.includes(">") && (t !== ">" || i < tokens.length - 1)))
  ) {
    throw einval(`${name} "${subject}": "*" and ">" must be whole tokens, ">" only last`);
  }
  if (wild && !wildcards) {
    throw einval(`${name} "${subject}": a bridge that publishes needs a subject without wildcards`);
  }
  return subject;
}

function toCount(value: unknown, name: string, min: number, dflt: number): number {
  if (value === undefined) return dflt;
  if (typeof value !== "number") throw new TypeError(`${name} must be a number`);
  if (!Number.isInteger(value) || value < min) throw einval(`${name} must be an integer >= ${min}`);
  return value;
}

function toText(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw new TypeError(`${name} must be a string`);
  return value;
}

/** One server URL, checked, with credentials taken out. */
interface Server {
  server: string;
  user?: string;
  pass?: string;
}

function parseServer(raw: unknown): Server {
  if (typeof raw !== "string") throw new TypeError("nats must be a URL string, an array of them, or a connection");
  const withScheme = raw.includes("://") ? raw : `nats://${raw}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw einval(`bad NATS URL "${raw}" (expected nats://host:port)`);
  }
  if (url.protocol !== "nats:" && url.protocol !== "tls:") {
    throw einval(`bad NATS URL "${raw}": scheme must be nats:// or tls://`);
  }
  if (url.hostname === "" || (url.pathname !== "" && url.pathname !== "/") || url.search !== "" || url.hash !== "") {
    throw einval(`bad NATS URL "${raw}" (expected nats://host:port)`);
  }
  const out: Server = { server: `${url.protocol}//${url.host}` };
  if (url.username !== "") out.user = decodeURIComponent(url.username);
  if (url.password !== "") out.pass = decodeURIComponent(url.password);
  return out;
}

/** A stream or consumer name as JetStream accepts it. */
const JS_NAME = /^[^\s.*>/\\]+$/;

function checkJetStream(value: unknown, subject: string): { stream: string; durable: string } | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "object" || value === null) throw new TypeError("jetstream must be { stream, durable? }");
  const { stream, durable } = value as { stream?: unknown; durable?: unknown };
  if (typeof stream !== "string") throw new TypeError("jetstream.stream must be a string");
  if (durable !== undefined && typeof durable !== "string") throw new TypeError("jetstream.durable must be a string");
  if (!JS_NAME.test(stream)) throw einval(`jetstream.stream "${stream}" is not a stream name (no spaces, . * > / \\)`);
  const name = durable ?? `shmchan-${subject.replace(/[.*>]/g, "_")}`;
  if (!JS_NAME.test(name)) throw einval(`jetstream.durable "${name}" is not a consumer name (no spaces, . * > / \\)`);
  return { stream, durable: name };
}

/**
 * The JetStream side of a bridge: the stream (created for the subject if
 * missing) and, for `in`, the durable consumer (created if missing).
 */
async function setUpJetStream(
  nc: NatsConnection,
  where: string,
  o: { stream: string; durable: string },
  subject: string,
  consumes: boolean,
): Promise<JetStreamParts> {
  const js = await loadJetStream();
  let jsm;
  try {
    jsm = await js.jetstreamManager(nc);
  } catch (err) {
    throw ChannelError.of("EOPNOTSUPP", `NATS server ${where} has no JetStream (start it with -js)`, { cause: err });
  }
  try {
    await jsm.streams.info(o.stream);
  } catch (err) {
    if (!(err instanceof js.JetStreamApiError && err.code === js.JetStreamApiCodes.StreamNotFound)) throw err;
    await jsm.streams.add({ name: o.stream, subjects: [subject] });
  }
  if (consumes) {
    await jsm.consumers.add(o.stream, {
      durable_name: o.durable,
      ack_policy: js.AckPolicy.Explicit,
      deliver_policy: js.DeliverPolicy.All,
      filter_subject: subject,
      max_ack_pending: 1024,
    });
  }
  return { client: js.jetstream(nc), manager: jsm, ...o };
}

function isConnection(value: unknown): value is NatsConnection {
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    typeof (value as NatsConnection).publish === "function" &&
    typeof (value as NatsConnection).subscribe === "function";
}

/** A ChannelError naming what went wrong with the connection to `where`. */
function connectError(err: unknown, where: string): ChannelError {
  const e = err as { name?: string; message?: string; code?: string; cause?: { code?: string } } | undefined;
  const name = e?.name ?? "";
  const message = e?.message ?? String(err);
  const code = e?.code ?? e?.cause?.code ?? "";
  const opts = { cause: err };
  if (name === "AuthorizationError" || /authorization violation|authentication/i.test(message)) {
    return ChannelError.of("EACCES", `NATS server ${where} refused the credentials (${message})`, opts);
  }
  if (code === "ECONNREFUSED" || /connection refused/i.test(message)) {
    return ChannelError.of("ECONNREFUSED", `no NATS server at ${where} (connection refused)`, opts);
  }
  if (code === "ENOTFOUND" || code === "EAI_AGAIN" || /getaddrinfo|ENOTFOUND/i.test(message)) {
    return ChannelError.of("EHOSTUNREACH", `cannot resolve the NATS server ${where} (${message})`, opts);
  }
  if (name === "TimeoutError" || /timeout/i.test(message)) {
    return ChannelError.of("ETIMEDOUT", `NATS server ${where} did not answer in time`, opts);
  }
  if (name === "InvalidArgumentError" || name === "TypeError") {
    return ChannelError.of("EINVAL", `NATS: ${message}`, opts);
  }
  return ChannelError.of("EIO", `NATS server ${where}: ${message}`, opts);
}

/** A random id, 16 hex digits. */
function randomOrigin(): string {
  const b = new Uint8Array(8);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const isCode = (err: unknown, code: string) => err instanceof ChannelError && err.code === code;

/**
 * Starts a bridge between the local channel `key` and the NATS subject.
 * Resolves once connected, attached and (for `in`) subscribed. Rejects with
 * a ChannelError: EINVAL for a bad URL, subject or option (TypeError for a
 * value of the wrong type), ECONNREFUSED when no server listens,
 * EHOSTUNREACH when the host name does not resolve, EACCES for credentials
 * the server refuses, ETIMEDOUT, and the channel's own codes (ENOENT when no
 * channel has the key, EACCES without the rights the direction needs).
 */
export async function bridge(options: BridgeOptions): Promise<Bridge> {
  if (typeof options !== "object" || options === null) throw new TypeError("options must be an object");
  const { direction } = options;
  if (direction !== "out" && direction !== "in" && direction !== "both") {
    throw einval(`direction must be "out", "in" or "both"`);
  }
  if (options.key === undefined) throw new TypeError("options.key is required");
  const subject = checkSubject(options.subject, "subject", direction === "in");
  const queue = toText(options.queue, "queue");
  if (queue !== undefined) {
    if (direction === "out") throw einval('queue applies to a subscription: direction "in" or "both"');
    if (queue === "" || /\s/.test(queue)) throw einval(`queue "${queue}" is not a NATS queue group name`);
  }
  const jsOption = checkJetStream(options.jetstream, subject);
  if (jsOption !== undefined && queue !== undefined) {
    throw einval("queue does not apply to JetStream: in bridges that share a durable consumer share its messages");
  }
  const cfg = {
    maxPending: toCount(options.maxPending, "maxPending", 0, DEFAULTS.maxPending),
    maxPendingBytes: toCount(options.maxPendingBytes, "maxPendingBytes", 0, DEFAULTS.maxPendingBytes),
    connectTimeout: toCount(options.connectTimeout, "connectTimeout", 1, DEFAULTS.connectTimeout),
    reconnectWait: toCount(options.reconnectWait, "reconnectWait", 0, DEFAULTS.reconnectWait),
    pingInterval: toCount(options.pingInterval, "pingInterval", 1, DEFAULTS.pingInterval),
    markAfter: toCount(options.markAfter, "markAfter", 1, DEFAULTS.markAfter),
    closeTimeout: toCount(options.closeTimeout, "closeTimeout", 0, DEFAULTS.closeTimeout),
    maxReconnectAttempts: DEFAULTS.maxReconnectAttempts,
  };
  if (options.maxReconnectAttempts !== undefined) {
    cfg.maxReconnectAttempts = toCount(options.maxReconnectAttempts, "maxReconnectAttempts", -1, -1);
  }
  if (options.onEvent !== undefined && typeof options.onEvent !== "function") {
    throw new TypeError("onEvent must be a function");
  }
  let user = toText(options.user, "user");
  let pass = toText(options.pass, "pass");
  const token = toText(options.token, "token");
  const name = toText(options.name, "name");

  // The channel first (local, cheap): a receiver for `out`, a sender for
  // `in`, both for `both`. The receiver is attached first: in `both` it must
  // see every message that the inbound side puts into the ring.
  let rx: Subscriber | undefined;
  let tx: Subscriber | undefined;
  const detach = () => {
    rx?.[Symbol.dispose]();
    tx?.[Symbol.dispose]();
  };
  try {
    if (direction !== "in") rx = Channel.attach({ key: options.key }, "recv");
    if (direction !== "out") tx = Channel.attach({ key: options.key }, "send");
  } catch (err) {
    detach();
    throw err;
  }
  const delivery = (rx ?? tx)!.delivery;
  if (direction === "both" && delivery !== "broadcast") {
    detach();
    throw einval(
      `direction "both" needs a broadcast channel; this one is ${delivery}, where the bridge's own ` +
        `receiver would take back what it puts in (bridge two channels, one "out" and one "in", instead)`,
    );
  }

  // The connection: the caller's, or one opened here.
  let nc: NatsConnection;
  let owned: boolean;
  let where: string;
  if (isConnection(options.nats)) {
    nc = options.nats;
    owned = false;
    where = nc.getServer();
  } else {
    const raw = Array.isArray(options.nats) ? options.nats : [options.nats];
    let servers: Server[];
    try {
      if (raw.length === 0) throw einval("nats: no server URL given");
      servers = raw.map(parseServer);
    } catch (err) {
      detach();
      throw err;
    }
    for (const s of servers) {
      user ??= s.user;
      pass ??= s.pass;
    }
    where = servers.map((s) => s.server).join(", ");
    let nats: Nats;
    try {
      nats = await loadNats();
    } catch (err) {
      detach();
      throw err;
    }
    const copts: NodeConnectionOptions = {
      servers: servers.map((s) => s.server),
      name: name ?? `shmchan bridge ${direction} ${subject}`,
      noEcho: true,
      timeout: cfg.connectTimeout,
      reconnect: true,
      reconnectTimeWait: cfg.reconnectWait,
      reconnectJitter: 100,
      maxReconnectAttempts: cfg.maxReconnectAttempts,
      pingInterval: cfg.pingInterval,
      maxPingOut: 2,
    };
    if (user !== undefined) copts.user = user;
    if (pass !== undefined) copts.pass = pass;
    if (token !== undefined) copts.token = token;
    try {
      nc = await nats.connect(copts);
    } catch (err) {
      detach();
      throw connectError(err, where);
    }
    owned = true;
  }

  try {
    const js = jsOption === undefined
      ? undefined
      : await setUpJetStream(nc, where, jsOption, subject, tx !== undefined);
    const b = new BridgeImpl(await loadNats(), nc, owned, where, options, subject, queue, cfg, rx, tx, js);
    await b.start();
    return b;
  } catch (err) {
    detach();
    if (owned) await nc.close().catch(() => {});
    throw err instanceof ChannelError || err instanceof TypeError ? err : connectError(err, where);
  }
}

interface Config {
  reconnectWait: number;
  maxPending: number;
  maxPendingBytes: number;
  markAfter: number;
  closeTimeout: number;
}

/** A message published into a stream, until acknowledged. */
interface JsEntry {
  msg: Uint8Array;
  seq: number;
  /** The latest attempt: true once acknowledged, false if it failed. */
  acked: Promise<boolean>;
  ok: boolean;
}

/** Per-origin numbers seen by a receiving bridge. */
interface OriginState {
  /** Highest number accounted for (received or counted lost). */
  hi: number;
  /** Of those, counted lost (a late arrival takes one back). */
  lost: number;
  /** JetStream: numbers below `hi` not delivered yet (a retried publish may land late). */
  missing?: Set<number>;
}

class BridgeImpl implements Bridge {
  readonly key: bigint;
  readonly subject: string;
  readonly direction: Direction;
  readonly delivery: Delivery;
  readonly origin = randomOrigin();
  readonly finished: Promise<ChannelError | undefined>;

  #nats: Nats;
  #nc: NatsConnection;
  #owned: boolean;
  #cfg: Config;
  #queue: string | undefined;
  #onEvent: ((e: BridgeEvent) => void) | undefined;

  #rx: Subscriber | undefined;
  #tx: Subscriber | undefined;
  #sub?: Subscription;
  #markSub?: Subscription;
  #js: JetStreamParts | undefined;
  #jsIn?: Promise<void>;
  #jsMessages?: { close(): Promise<void | Error> };
  #status?: AsyncIterable<unknown> & { stop?: () => void };

  #connected = true;
  /** Reconnected, waiting until JetStream answers again. */
  #reconnecting = false;
  #server: string;
  #closing = false;
  #closePromise?: Promise<BridgeStats>;
  #finish!: (err: ChannelError | undefined) => void;
  #failure: ChannelError | undefined;

  // out
  #outLoop?: Promise<void>;
  #seq = 0;
  #markedSeq = 0;
  #markTimer?: ReturnType<typeof setTimeout>;
  #recvAbort?: AbortController;
  #reconnected?: { promise: Promise<void>; resolve: () => void };
  #unflushedMsgs = 0;
  #unflushedBytes = 0;
  #flushing?: Promise<void>;
  #maxPayload = Infinity;
  /** Unicast/multicast: taken just as NATS went away; published after the reconnect. */
  #heldOut: Uint8Array[] = [];
  /** `both`: what the inbound side put into the ring, oldest first. */
  #inserted: Uint8Array[] = [];
  /** JetStream: publishes not yet acknowledged, in order. */
  #jsPending: JsEntry[] = [];
  /** JetStream: set at close() after closeTimeout: stop retrying. */
  #jsGiveUp = false;

  // in
  #held: Uint8Array[] = [];
  #heldBytes = 0;
  /** False once the subscription has drained at close(). */
  #accepting = true;
  #draining?: Promise<void>;
  #heldAbort = new AbortController();
  #origins = new Map<string, OriginState>();

  #stats: BridgeStats;

  constructor(
    nats: Nats,
    nc: NatsConnection,
    owned: boolean,
    where: string,
    options: BridgeOptions,
    subject: string,
    queue: string | undefined,
    cfg: Config,
    rx: Subscriber | undefined,
    tx: Subscriber | undefined,
    js: JetStreamParts | undefined,
  ) {
    this.#nats = nats;
    this.#js = js;
    this.#nc = nc;
    this.#owned = owned;
    this.#server = where;
    this.#cfg = cfg;
    this.#queue = queue;
    this.#onEvent = options.onEvent;
    this.#rx = rx;
    this.#tx = tx;
    this.subject = subject;
    this.direction = options.direction;
    this.key = (rx ?? tx)!.key;
    this.delivery = (rx ?? tx)!.delivery;
    this.finished = new Promise((resolve) => (this.#finish = resolve));
    this.#stats = {
      outbound: { received: 0, published: 0, dropped: 0, echoes: 0, retried: 0 },
      inbound: { received: 0, delivered: 0, dropped: 0, lost: 0, pending: 0, echoes: 0, duplicates: 0 },
      connection: { connected: true, server: "", disconnects: 0, reconnects: 0 },
    };
  }

  /** Subscribes (`in`, `both`), starts taking messages (`out`, `both`). */
  async start(): Promise<void> {
    this.#maxPayload = this.#nc.info?.max_payload ?? Infinity;
    this.#server = this.#nc.getServer() || this.#server;
    this.#watchStatus();
    try {
      await this.#subscribe();
    } catch (err) {
      this.#status?.stop?.();
      throw err;
    }
    if (this.#rx) this.#outLoop = this.#runOut();
    void this.#nc.closed().then((err) => {
      if (!this.#closing) {
        const why = err ? (err as Error).message : "closed";
        this.#fail(ChannelError.of("ENOTCONN", `NATS connection to ${this.#server} ended: ${why}`, { cause: err }));
      }
    });
  }

  /** `in`, `both`: the subscriptions (core NATS) or the consumer (JetStream). */
  async #subscribe(): Promise<void> {
    if (this.#tx && this.#js) {
      const consumer = await this.#js.client.consumers.get(this.#js.stream, this.#js.durable);
      const messages = await consumer.consume({ max_messages: 256 });
      this.#jsMessages = messages;
      this.#jsIn = this.#runJetStreamIn(messages);
    } else if (this.#tx) {
      const sopts = this.#queue === undefined ? {} : { queue: this.#queue };
      this.#sub = this.#nc.subscribe(this.subject, {
        ...sopts,
        callback: (err, msg) => (err ? this.#subscriptionError(err) : this.#onMessage(msg)),
      });
      // A queue group shares the numbers among its members: gaps are no loss there.
      if (this.#queue === undefined) {
        this.#markSub = this.#nc.subscribe(MARK_PREFIX + this.subject, {
          callback: (err, msg) => (err ? this.#subscriptionError(err) : this.#onMark(msg)),
        });
      }
      // The server has the subscriptions once it answers.
      await this.#nc.flush();
    }
  }

  stats(): BridgeStats {
    const s = this.#stats;
    s.inbound.pending = this.#held.length;
    s.connection.connected = this.#connected;
    s.connection.server = this.#server;
    return {
      outbound: { ...s.outbound },
      inbound: { ...s.inbound },
      connection: { ...s.connection },
    };
  }

  close(): Promise<BridgeStats> {
    this.#closePromise ??= this.#shutdown(undefined);
    return this.#closePromise;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ---- connection ---------------------------------------------------------

  #watchStatus(): void {
    const it = this.#nc.status() as AsyncIterable<{ type: string; server?: string; error?: Error }> & {
      stop?: () => void;
    };
    this.#status = it;
    void (async () => {
      try {
        for await (const s of it) {
          if (this.#closing && this.#owned) continue;
          switch (s.type) {
            case "disconnect":
              if (this.#connected) {
                this.#connected = false;
                this.#stats.connection.disconnects++;
                // Unicast/multicast: leave messages in the ring while NATS is away.
                if (this.delivery !== "broadcast") this.#recvAbort?.abort();
                this.#emit({ type: "disconnect", server: s.server });
              }
              break;
            case "reconnect":
              if (!this.#connected && !this.#reconnecting) {
                this.#stats.connection.reconnects++;
                if (s.server) this.#server = s.server;
                this.#maxPayload = this.#nc.info?.max_payload ?? this.#maxPayload;
                this.#emit({ type: "reconnect", server: s.server });
                this.#reconnecting = true;
                void this.#untilUsable().then(() => this.#js && this.#jsResend()).then(() => {
                  this.#reconnecting = false;
                  if (this.#closing) return;
                  this.#connected = true;
                  const r = this.#reconnected;
                  this.#reconnected = undefined;
                  r?.resolve();
                  // What an outage lost at the end of a burst is counted at once.
                  this.#publishMark();
                });
              }
              break;
            case "error":
              this.#emit({ type: "error", error: s.error });
              break;
          }
        }
      } catch {
        // The iterator ends with the connection.
      }
    })();
  }

  #emit(e: BridgeEvent): void {
    if (!this.#onEvent) return;
    try {
      this.#onEvent(e);
    } catch {
      // An observer's failure does not stop the bridge.
    }
  }

  /**
   * After a reconnect: at once for core NATS. JetStream answers only once the
   * restarted server has recovered its streams; a publish before that fails
   * while a later one may land, out of order, so the bridge waits until the
   * stream answers.
   */
  async #untilUsable(): Promise<void> {
    if (!this.#js) return;
    while (!this.#closing && !this.#nc.isClosed()) {
      try {
        await this.#js.manager.streams.info(this.#js.stream);
        return;
      } catch {
        await sleep(this.#cfg.reconnectWait);
      }
    }
  }

  #untilReconnected(): Promise<void> {
    if (!this.#reconnected) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.#reconnected = { promise, resolve };
    }
    return this.#reconnected.promise;
  }

  #subscriptionError(err: Error): void {
    this.#emit({ type: "error", error: err });
    this.#fail(
      ChannelError.of("EACCES", `NATS subscription to ${this.subject} failed: ${err.message}`, { cause: err }),
    );
  }

  /** Stops the bridge because of `err` (once). */
  #fail(err: ChannelError): void {
    if (this.#closing) return;
    this.#failure = err;
    this.#closePromise ??= this.#shutdown(err);
  }

  // ---- out: channel -> NATS -----------------------------------------------

  async #runOut(): Promise<void> {
    const rx = this.#rx!;
    const broadcast = this.delivery === "broadcast";
    try {
      while (!this.#closing) {
        if (!this.#connected && !broadcast) {
          await this.#untilReconnected();
          continue;
        }
        if (this.#heldOut.length > 0) {
          for (const msg of this.#heldOut.splice(0)) this.#publish(msg, broadcast);
          continue;
        }
        let batch = rx.tryRecvMany(BATCH);
        if (batch.length === 0) {
          this.#armMark();
          const abort = (this.#recvAbort = new AbortController());
          try {
            batch = [await rx.recv({ signal: abort.signal })];
          } catch (err) {
            if (abort.signal.aborted) continue; // closing, or NATS went away
            throw err;
          } finally {
            this.#recvAbort = undefined;
          }
        }
        for (const msg of batch) this.#forward(msg, broadcast);
        await this.#window();
      }
    } catch (err) {
      if (!this.#closing) {
        this.#fail(err instanceof ChannelError ? err : ChannelError.of("EIO", `bridge: ${err}`, { cause: err }));
      }
    }
  }

  /** Publishes one message taken from the channel (or counts why not). */
  #forward(msg: Uint8Array, broadcast: boolean): void {
    const out = this.#stats.outbound;
    out.received++;
    const inserted = this.#inserted;
    if (inserted.length > 0 && sameBytes(inserted[0], msg)) {
      inserted.shift();
      out.echoes++;
      return;
    }
    this.#publish(msg, broadcast);
  }

  #publish(msg: Uint8Array, broadcast: boolean): void {
    const out = this.#stats.outbound;
    if (!this.#connected) {
      // A broadcast bridge keeps taking while NATS is away, so as not to hold
      // back the local receivers; unicast/multicast stops taking, and keeps
      // what it took just as the connection went.
      if (broadcast) out.dropped++;
      else this.#heldOut.push(msg);
      return;
    }
    if (msg.byteLength > this.#maxPayload) {
      out.dropped++;
      return;
    }
    if (this.#js) {
      this.#seq++;
      const entry: JsEntry = { msg, seq: this.#seq, acked: Promise.resolve(false), ok: false };
      this.#jsPublish(entry);
      this.#jsPending.push(entry);
      return;
    }
    const h = this.#nats.headers();
    h.set(ORIGIN_HEADER, this.origin);
    h.set(SEQ_HEADER, String(this.#seq + 1));
    try {
      this.#nc.publish(this.subject, msg, { headers: h });
    } catch {
      out.dropped++;
      return;
    }
    this.#seq++;
    out.published++;
    this.#unflushedMsgs++;
    this.#unflushedBytes += msg.byteLength;
  }

  /**
   * Backpressure towards NATS: the client buffers what is published without
   * limit, so every FLUSH_MESSAGES / FLUSH_BYTES a flush (PING/PONG) is
   * started and the previous one awaited: at most two windows in flight.
   */
  async #window(): Promise<void> {
    if (this.#js) {
      while (this.#jsPending.length >= JS_WINDOW) await this.#jsSettle(1);
      return;
    }
    if (this.#unflushedMsgs < FLUSH_MESSAGES && this.#unflushedBytes < FLUSH_BYTES) return;
    this.#unflushedMsgs = 0;
    this.#unflushedBytes = 0;
    const previous = this.#flushing;
    this.#flushing = this.#nc.flush().catch(() => {}); // rejects on a disconnect
    if (previous) await previous;
  }

  /** Marks the last number after `markAfter` ms, unless already marked. */
  #armMark(): void {
    if (this.#markTimer !== undefined || this.#seq === this.#markedSeq) return;
    this.#markTimer = setTimeout(() => {
      this.#markTimer = undefined;
      this.#publishMark();
    }, this.#cfg.markAfter);
  }

  #publishMark(): void {
    if (this.#js) return; // the stream keeps every message: no gaps to count
    if (this.#seq === 0 || !this.#connected || this.#nc.isClosed()) return;
    const h = this.#nats.headers();
    h.set(ORIGIN_HEADER, this.origin);
    h.set(SEQ_HEADER, String(this.#seq));
    try {
      this.#nc.publish(MARK_PREFIX + this.subject, undefined, { headers: h });
      this.#markedSeq = this.#seq;
    } catch {
      // The next mark carries the same information.
    }
  }

  // ---- JetStream ------------------------------------------------------------

  /** Publishes (again) into the stream; `acked` resolves false on any failure. */
  #jsPublish(entry: JsEntry): void {
    const h = this.#nats.headers();
    h.set(ORIGIN_HEADER, this.origin);
    h.set(SEQ_HEADER, String(entry.seq));
    entry.acked = this.#js!.client
      .publish(this.subject, entry.msg, { msgID: `${this.origin}.${entry.seq}`, headers: h, timeout: JS_ACK_TIMEOUT })
      .then(() => (entry.ok = true), () => false);
  }

  /**
   * After a reconnect, before anything new: what was in flight when the
   * connection broke may or may not have landed. Each is published again,
   * in order, waiting for each acknowledgement (the stream drops those that
   * had landed), so nothing published later can overtake it.
   */
  async #jsResend(): Promise<void> {
    for (const entry of this.#jsPending) {
      while (!entry.ok && !this.#closing && !this.#nc.isClosed()) {
        this.#stats.outbound.retried++;
        this.#jsPublish(entry);
        if (!(await entry.acked)) await sleep(this.#cfg.reconnectWait);
      }
    }
  }

  /**
   * Waits until the oldest `count` publishes (all, for Infinity) are
   * acknowledged. When one failed, everything in flight settles first, then
   * the failed ones are published again, one at a time and in order, with
   * their message ids (a retry of one that had landed is dropped by the
   * stream as a duplicate), until acknowledged or close() gives up.
   */
  async #jsSettle(count: number): Promise<void> {
    const out = this.#stats.outbound;
    while (count-- > 0 && this.#jsPending.length > 0) {
      const entry = this.#jsPending[0];
      if (!(await entry.acked)) {
        await Promise.all(this.#jsPending.map((e) => e.acked));
        while (!(await entry.acked)) {
          if (this.#jsGiveUp) return;
          if (!this.#connected) await Promise.race([this.#untilReconnected(), sleep(this.#cfg.reconnectWait)]);
          else await sleep(this.#cfg.reconnectWait);
          if (this.#jsGiveUp) return;
          out.retried++;
          this.#jsPublish(entry);
        }
      }
      this.#jsPending.shift();
      out.published++;
    }
  }

  /** Reads the durable consumer: each message into the ring, then acknowledged. */
  async #runJetStreamIn(messages: AsyncIterable<JsMsg>): Promise<void> {
    try {
      for await (const m of messages) {
        if (!this.#accepting) break; // not acknowledged: redelivered to the next reader
        await this.#jsDeliver(m);
      }
    } catch (err) {
      if (!this.#closing) {
        this.#fail(ChannelError.of("EIO", `JetStream consumer ${this.#js!.durable}: ${err}`, { cause: err }));
      }
    }
  }

  async #jsDeliver(m: JsMsg): Promise<void> {
    const tx = this.#tx!;
    const inb = this.#stats.inbound;
    const h = m.headers;
    const origin = h?.get(ORIGIN_HEADER) ?? "";
    if (origin === this.origin) {
      inb.echoes++;
      m.ack();
      return;
    }
    const seq = origin === "" ? NaN : Number(h!.get(SEQ_HEADER));
    if (Number.isSafeInteger(seq) && seq > 0) {
      // Delivered already? (A redelivery, flagged or not: a restarted server
      // may have lost the consumer's record of what it had delivered.)
      const st = this.#origins.get(origin);
      if (st !== undefined && seq <= st.hi && !st.missing?.delete(seq)) {
        inb.duplicates++;
        m.ack();
        return;
      }
      if (st === undefined) {
        if (this.#origins.size >= MAX_ORIGINS) this.#origins.delete(this.#origins.keys().next().value!);
        this.#origins.set(origin, { hi: seq, lost: 0 });
      } else if (seq > st.hi) {
        for (let n = st.hi + 1; n < seq && n < st.hi + MAX_MISSING; n++) (st.missing ??= new Set()).add(n);
        st.hi = seq;
      }
    }
    // Counted as received once it is delivered or dropped: one that close()
    // interrupts is not acknowledged and comes again to the next reader.
    const data = m.data;
    if (data.byteLength > tx.maxMessageSize) {
      inb.received++;
      inb.dropped++;
      m.term("longer than the channel's maxMessageSize");
      return;
    }
    const both = this.#rx !== undefined;
    if (both) this.#inserted.push(data);
    try {
      try {
        tx.trySend(data);
      } catch (err) {
        if (!isCode(err, "ENOBUFS")) throw err;
        await tx.send(data, { signal: this.#heldAbort.signal });
      }
    } catch (err) {
      if (both) this.#inserted.pop();
      if (this.#heldAbort.signal.aborted) return;
      inb.received++;
      inb.dropped++;
      m.term(String(err));
      return;
    }
    inb.received++;
    inb.delivered++;
    m.ack();
  }

  // ---- in: NATS -> channel ------------------------------------------------

  #onMessage(msg: Msg): void {
    const h = msg.headers;
    const origin = h?.get(ORIGIN_HEADER) ?? "";
    const inb = this.#stats.inbound;
    if (origin === this.origin) {
      inb.echoes++;
      return;
    }
    inb.received++;
    if (origin !== "" && this.#queue === undefined) {
      const seq = Number(h!.get(SEQ_HEADER));
      if (Number.isSafeInteger(seq) && seq > 0) this.#account(origin, seq, false);
    }
    this.#deliver(msg.data);
  }

  #onMark(msg: Msg): void {
    const h = msg.headers;
    const origin = h?.get(ORIGIN_HEADER) ?? "";
    if (origin === "" || origin === this.origin) return;
    const seq = Number(h!.get(SEQ_HEADER));
    if (Number.isSafeInteger(seq) && seq > 0) this.#account(origin, seq, true);
  }

  /** Counts the numbers of `origin` skipped before `seq` (up to it, for a mark). */
  #account(origin: string, seq: number, mark: boolean): void {
    let st = this.#origins.get(origin);
    if (st === undefined) {
      // The first message seen from a publisher starts its count.
      if (this.#origins.size >= MAX_ORIGINS) this.#origins.delete(this.#origins.keys().next().value!);
      this.#origins.set(origin, { hi: seq, lost: 0 });
      return;
    }
    const inb = this.#stats.inbound;
    if (seq > st.hi) {
      const skipped = seq - st.hi - (mark ? 0 : 1);
      st.lost += skipped;
      inb.lost += skipped;
      st.hi = seq;
    } else if (!mark && st.lost > 0) {
      // Counted lost, then arrived after all (overtaken by a mark).
      st.lost--;
      inb.lost--;
    }
  }

  #deliver(data: Uint8Array): void {
    const tx = this.#tx!;
    const inb = this.#stats.inbound;
    if (data.byteLength > tx.maxMessageSize || !this.#accepting) {
      inb.dropped++;
      return;
    }
    if (this.#held.length === 0) {
      const both = this.#rx !== undefined;
      if (both) this.#inserted.push(data);
      try {
        tx.trySend(data);
        inb.delivered++;
        return;
      } catch (err) {
        if (both) this.#inserted.pop();
        if (!isCode(err, "ENOBUFS")) {
          inb.dropped++;
          return;
        }
      }
    }
    if (
      this.#held.length >= this.#cfg.maxPending || this.#heldBytes + data.byteLength > this.#cfg.maxPendingBytes
    ) {
      inb.dropped++;
      return;
    }
    this.#held.push(data);
    this.#heldBytes += data.byteLength;
    this.#draining ??= this.#drainHeld();
  }

  /** Sends the held messages in order, each waiting for room. */
  async #drainHeld(): Promise<void> {
    const tx = this.#tx!;
    const inb = this.#stats.inbound;
    const both = this.#rx !== undefined;
    while (this.#held.length > 0) {
      const data = this.#held[0];
      // Recorded before the send: the receiver may take it before send() resolves.
      if (both) this.#inserted.push(data);
      try {
        await tx.send(data, { signal: this.#heldAbort.signal });
        inb.delivered++;
      } catch (err) {
        if (both) this.#inserted.pop();
        if (this.#heldAbort.signal.aborted) break;
        inb.dropped++;
      }
      this.#held.shift();
      this.#heldBytes -= data.byteLength;
    }
    this.#draining = undefined;
  }

  // ---- shutdown -----------------------------------------------------------

  async #shutdown(err: ChannelError | undefined): Promise<BridgeStats> {
    this.#closing = true;
    if (this.#markTimer !== undefined) clearTimeout(this.#markTimer);
    this.#markTimer = undefined;
    // out: stop taking, finish the window, mark the last number, and stop
    // being a receiver (a broadcast ring is no longer held back by it).
    this.#recvAbort?.abort();
    this.#reconnected?.resolve();
    await this.#outLoop;
    if (this.#flushing) await this.#flushing;
    if (this.#js && this.#jsPending.length > 0) {
      const timer = setTimeout(() => (this.#jsGiveUp = true), this.#cfg.closeTimeout);
      await this.#jsSettle(Infinity);
      clearTimeout(timer);
      this.#stats.outbound.dropped += this.#jsPending.length;
      this.#jsPending.length = 0;
    }
    this.#stats.outbound.dropped += this.#heldOut.length;
    this.#heldOut.length = 0;
    this.#publishMark();
    this.#rx?.[Symbol.dispose]();
    this.#inserted.length = 0;
    // in: no more from NATS; deliver what is held, for a while. (JetStream:
    // what is not acknowledged stays in the stream for the next reader.)
    if (this.#jsMessages) {
      this.#accepting = false;
      this.#heldAbort.abort();
      await this.#jsMessages.close().catch(() => {});
      await this.#jsIn;
    }
    if (this.#sub) {
      try {
        if (!this.#nc.isClosed()) await this.#sub.drain();
      } catch {
        this.#sub.unsubscribe();
      }
      this.#markSub?.unsubscribe();
    }
    this.#accepting = false;
    if (this.#draining) {
      const timer = setTimeout(() => this.#heldAbort.abort(), this.#cfg.closeTimeout);
      await this.#draining;
      clearTimeout(timer);
    }
    this.#stats.inbound.dropped += this.#held.length;
    this.#held.length = 0;
    this.#heldBytes = 0;
    // The connection: drained (so the mark goes out) if ours, flushed if not.
    try {
      if (this.#owned) {
        if (!this.#nc.isClosed()) await this.#nc.drain();
      } else if (!this.#nc.isClosed()) {
        await this.#nc.flush();
      }
    } catch {
      if (this.#owned) await this.#nc.close().catch(() => {});
    }
    this.#status?.stop?.();
    this.#connected = false;
    this.#detach();
    this.#finish(err ?? this.#failure);
    return this.stats();
  }

  #detach(): void {
    this.#rx?.[Symbol.dispose]();
    this.#tx?.[Symbol.dispose]();
  }
}
