/**
 * The runtime-neutral channel API: Channel (the owner handle) and Subscriber.
 * Everything here goes through lib() (the bound C library) and wait.ts.
 */
import {
  INFO,
  type Native,
  LIST,
  LOOKUP,
  MSTATS,
  SHMC_BOTH,
  SHMC_BROADCAST,
  SHMC_F_PRIVATE,
  SHMC_MAX_MESSAGE_SIZE,
  SHMC_MAX_RING_ENTRIES,
  SHMC_MULTICAST,
  SHMC_RECV,
  SHMC_SEND,
  SHMC_TAKE_UNPARK,
  SHMC_UNICAST,
  SHMC_WAIT_RECV,
  SHMC_WAIT_SEND,
  STATS,
} from "./backend.ts";
import { ChannelError, check, errnoOf } from "./errors.ts";
import { backend, lib } from "./library.ts";
import { closeDoorbells, EBUSY, failWaiters, SpinPolicy, waitFor, type WaitOp, type WaitOptions } from "./wait.ts";

export type { WaitOptions } from "./wait.ts";

/** How a channel routes its messages. */
export type Delivery = "unicast" | "broadcast" | "multicast";
/** What a subscriber may do. */
export type Access = "send" | "recv" | "both";
/** A message: bytes (any ArrayBufferView or ArrayBuffer) or a string, sent as UTF-8. */
export type MessageData = string | ArrayBufferView | ArrayBuffer;

/** Options of Channel.create(). */
export interface CreateOptions {
  /** 64-bit name, 1 .. 2^64-1, as a bigint or a safe integer. */
  key: bigint | number;
  /** Default "unicast". */
  delivery?: Delivery;
  /** Message slots: a power of two, 1 .. 32768. Default 256. */
  ringEntries?: number;
  /** Bytes per message, 1 .. 1048576. Default 4096. */
  maxMessageSize?: number;
  /** Permission bits as for chmod; only the 0o666 bits count. Default 0o600. */
  mode?: number;
  /** Only the creator's uid may attach, whatever `mode` says. Default false. */
  private?: boolean;
}

/**
 * What Channel.attach() looks a channel up by: its key or its id, and
 * optionally the uid that must own it (a key or id is first come, first
 * served, as with System V keys: another owner is EACCES).
 */
export type AttachTarget =
  | { key: bigint | number; id?: undefined; owner?: number }
  | { id: number; key?: undefined; owner?: number };

/** Options of a send. */
export interface SendOptions {
  /** A subscriber id: deliver to that subscriber only. */
  target?: number;
}

const DELIVERY: Record<Delivery, number> = {
  unicast: SHMC_UNICAST,
  broadcast: SHMC_BROADCAST,
  multicast: SHMC_MULTICAST,
};
const DELIVERY_NAMES: Delivery[] = ["unicast", "broadcast", "multicast"];
const ACCESS: Record<Access, number> = { send: SHMC_SEND, recv: SHMC_RECV, both: SHMC_BOTH };
const ACCESS_NAMES: Record<number, Access> = { [SHMC_SEND]: "send", [SHMC_RECV]: "recv", [SHMC_BOTH]: "both" };

const MAX_KEY = (1n << 64n) - 1n;
const MAX_U32 = 0xffff_ffff;
const MAX_I32 = 0x7fff_ffff;
const EAGAIN = -errnoOf("EAGAIN");
const ENOBUFS = -errnoOf("ENOBUFS");
const ENOENT = -errnoOf("ENOENT");
const EEXIST = -errnoOf("EEXIST");
const EACCES = -errnoOf("EACCES");
const ESTALE = -errnoOf("ESTALE");

const encoder = new TextEncoder();
const identity = (rc: number) => rc;
/** Messages per batch call, and the most bytes a batch scratch takes. */
const BATCH = 64;
const BATCH_BYTES = 1 << 20;
/** Guards the constructors: handles come from create() and attach() only. */
const INTERNAL = Symbol("shmchan.internal");

const einval = (detail: string) => ChannelError.of("EINVAL", detail);
/** EMSGSIZE that names both sizes. */
const tooLong = (bytes: number, max: number) =>
  ChannelError.of("EMSGSIZE", `message of ${bytes} bytes, maxMessageSize ${max}`);
/** The UTF-8 length of a string (for error messages only: it encodes). */
const utf8Length = (s: string) => encoder.encode(s).byteLength;
/** A key as a message shows it: decimal and hex. */
const showKey = (key: bigint) => `${key} (0x${key.toString(16)})`;
const closedError = (what: string) => ChannelError.of("ENOENT", `handle is closed (${what})`);

function hasOwn(o: object, k: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, k);
}

function toKey(key: unknown): bigint {
  if (typeof key === "bigint") {
    if (key < 1n || key > MAX_KEY) throw einval("key must be 1 .. 2^64-1");
    return key;
  }
  if (typeof key === "number") {
    if (!Number.isSafeInteger(key) || key < 1) {
      throw einval("key must be a safe integer >= 1 (use a bigint above 2^53-1)");
    }
    return BigInt(key);
  }
  throw new TypeError("key must be a bigint or a number");
}

function toInt(value: unknown, name: string, min: number, max: number, dflt: number): number {
  if (value === undefined) return dflt;
  if (typeof value !== "number") throw new TypeError(`${name} must be a number`);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw einval(`${name} must be an integer in ${min} .. ${max}`);
  }
  return value;
}

function toTarget(opts: SendOptions | undefined): number {
  if (opts === undefined) return 0;
  if (typeof opts !== "object" || opts === null) throw new TypeError("options must be an object");
  const { target } = opts;
  if (target === undefined) return 0;
  if (typeof target !== "number") throw new TypeError("target must be a subscriber id (number)");
  if (!Number.isInteger(target) || target < 1 || target > MAX_U32) {
    throw einval("target must be a subscriber id, a positive integer");
  }
  return target;
}

/** A Uint8Array view of message bytes (no copy). */
function bytesOf(data: ArrayBufferView | ArrayBuffer): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (typeof SharedArrayBuffer !== "undefined" && (data as unknown) instanceof SharedArrayBuffer) {
    return new Uint8Array(data as SharedArrayBuffer);
  }
  throw new TypeError("message must be a string, an ArrayBufferView or an ArrayBuffer");
}

function intoBuffer(buf: unknown): Uint8Array {
  if (buf instanceof Uint8Array) return buf;
  if (ArrayBuffer.isView(buf)) return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  throw new TypeError("buffer must be a Uint8Array (or another ArrayBufferView)");
}

/** Descriptive fields read once from shmc_info(). */
interface Info {
  ownerUid: number;
  key: bigint;
  channelId: number;
  delivery: Delivery;
  ringEntries: number;
  maxMessageSize: number;
  memberId: number;
  access: Access;
  mode: number;
  private: boolean;
}

function readInfo(h: number): Info {
  const out = new BigUint64Array(INFO.COUNT);
  check(lib().shmc_info(h, out), "shmc_info");
  return {
    ownerUid: Number(out[INFO.OWNER_UID]),
    key: out[INFO.KEY],
    channelId: Number(out[INFO.CHANNEL_ID]),
    delivery: DELIVERY_NAMES[Number(out[INFO.DELIVERY])] ?? "unicast",
    ringEntries: Number(out[INFO.RING_ENTRIES]),
    maxMessageSize: Number(out[INFO.MAX_MESSAGE_SIZE]),
    memberId: Number(out[INFO.MEMBER_ID]),
    access: ACCESS_NAMES[Number(out[INFO.ACCESS])] ?? "both",
    mode: Number(out[INFO.MODE]),
    private: (Number(out[INFO.FLAGS]) & SHMC_F_PRIVATE) !== 0,
  };
}

/**
 * attemptPark of an operation whose try does not park by itself (a send, a
 * loan, a view): the try, then shmc_park (1: the condition holds already,
 * EBUSY; 0: parked, the retry code).
 */
function tryThenPark(op: WaitOp<unknown>, native: Native): number {
  const rc = op.attempt();
  if (rc !== op.retryCode) return rc;
  const parked = native.shmc_park(op.h, op.what);
  return parked === 0 ? op.retryCode : parked === 1 ? EBUSY : parked;
}

/** A waiting send of one message. */
class SendOp implements WaitOp<number> {
  readonly what = SHMC_WAIT_SEND;
  readonly retryCode = ENOBUFS;
  readonly name = "send";
  readonly oneCall = false;
  readonly h: number;
  readonly native: Native;
  readonly bytes: Uint8Array;
  readonly target: number;
  constructor(h: number, native: Native, bytes: Uint8Array, target: number) {
    this.h = h;
    this.native = native;
    this.bytes = bytes;
    this.target = target;
  }
  attempt(): number {
    return this.native.shmc_try_send(this.h, this.bytes, this.bytes.byteLength, this.target);
  }
  attemptPark(): number {
    return tryThenPark(this, this.native);
  }
  finish(rc: number): number {
    return rc;
  }
}

/**
 * A waiting operation of one native try that does not park by itself (a
 * loan, a view): a try, then shmc_park (tryThenPark).
 */
class TryOp<T> implements WaitOp<T> {
  readonly oneCall = false;
  readonly h: number;
  readonly what: number;
  readonly retryCode: number;
  readonly name: string;
  readonly attempt: () => number;
  readonly finish: (rc: number) => T;
  constructor(h: number, what: number, retryCode: number, name: string, attempt: () => number, finish: (rc: number) => T) {
    this.h = h;
    this.what = what;
    this.retryCode = retryCode;
    this.name = name;
    this.attempt = attempt;
    this.finish = finish;
  }
  attemptPark(): number {
    return tryThenPark(this, lib());
  }
}

/** A waiting receive into `into` (the handle's scratch for recv()). */
class RecvOp<T> implements WaitOp<T> {
  readonly what = SHMC_WAIT_RECV;
  readonly retryCode = EAGAIN;
  readonly oneCall = true;
  readonly h: number;
  readonly native: Native;
  readonly into: Uint8Array;
  readonly name: string;
  readonly finish: (rc: number) => T;
  readonly #cap: number;
  constructor(h: number, native: Native, into: Uint8Array, name: string, finish: (rc: number) => T) {
    this.h = h;
    this.native = native;
    this.into = into;
    this.name = name;
    this.finish = finish;
    this.#cap = Math.min(into.byteLength, MAX_U32);
  }
  attempt(): number {
    return this.native.shmc_try_recv(this.h, this.into, this.#cap);
  }
  attemptPark(unpark: boolean): number {
    return this.native.shmc_try_recv_park(this.h, this.into, this.#cap, unpark ? SHMC_TAKE_UNPARK : 0);
  }
}

/** What members counted (csrc/DESIGN.md 11). */
export interface Counters {
  /** Messages sent. */
  sent: number;
  sentBytes: number;
  /** Messages received (broadcast: by every receiver, summed). */
  received: number;
  receivedBytes: number;
  /** Send attempts refused because the ring was full (each retry of a waiting send counts). */
  full: number;
  /** Targeted messages dropped because their target left, and slots a dead consumer had taken. */
  dropped: number;
  /** Slots skipped because their writer died before publishing. */
  skipped: number;
  /** Times a member parked to wait. */
  parks: number;
  /** Wakes delivered to parked members. */
  wakes: number;
}

/** One member of a channel, as stats() sees it. */
export interface MemberStats {
  /** Subscriber id (the owner handle's member has one too). */
  id: number;
  /** Member slot, 0 .. 63. */
  slot: number;
  pid: number;
  /** The uid that owns its member file. */
  uid: number;
  access: Access | "none";
  /** The creator's handle. */
  owner: boolean;
  /** Its process lives (holds its liveness lock); a dead member's counts stay until its slot is reclaimed. */
  alive: boolean;
  /** Waiting now, for a message (recv) or for room (send). */
  parked: { recv: boolean; send: boolean };
  /** Messages it has yet to receive: broadcast, how far its cursor lags; otherwise the channel's waiting (0 when it does not receive). */
  behind: number;
  counters: Counters;
}

/** A channel as Channel.list() describes it. */
export interface ChannelListing {
  key: bigint;
  id: number;
  delivery: Delivery;
  /** Permission bits (0o666 mask). */
  mode: number;
  private: boolean;
  ownerUid: number;
  creatorPid: number;
  /** Live members, the owner's included. */
  members: number;
  ringEntries: number;
  maxMessageSize: number;
  /** Messages sent and not yet consumed (broadcast: by the slowest receiver). */
  waiting: number;
}

/** A channel's counters and members, from stats(). */
export interface ChannelStats extends Omit<ChannelListing, "members"> {
  /** Live members, the owner's included. */
  live: number;
  /** The channel's totals: the sum over its members, departed ones included. */
  counters: Counters;
  /** Every member file (dead members' included, until their slot is reclaimed). */
  members: MemberStats[];
}

/** What Channel.stats() and Channel.remove() look a channel up by. */
export type ChannelTarget = { key: bigint | number; id?: undefined } | { id: number; key?: undefined };

const STATS_ROOM = STATS.COUNT + 64 * MSTATS.COUNT;

function counters(out: BigUint64Array, base: number, idx: typeof STATS | typeof MSTATS): Counters {
  const at = (i: number) => Number(out[base + i]);
  return {
    sent: at(idx.SENT),
    sentBytes: at(idx.SENT_BYTES),
    received: at(idx.RECEIVED),
    receivedBytes: at(idx.RECEIVED_BYTES),
    full: at(idx.FULL),
    dropped: at(idx.DROPPED),
    skipped: at(idx.SKIPPED),
    parks: at(idx.PARKS),
    wakes: at(idx.WAKES),
  };
}

function toStats(out: BigUint64Array, rows: number): ChannelStats {
  const at = (i: number) => Number(out[i]);
  const members: MemberStats[] = [];
  for (let r = 0; r < rows; r++) {
    const b = STATS.COUNT + r * MSTATS.COUNT;
    const m = (i: number) => Number(out[b + i]);
    members.push({
      id: m(MSTATS.ID),
      slot: m(MSTATS.SLOT),
      pid: m(MSTATS.PID),
      uid: m(MSTATS.UID),
      access: ACCESS_NAMES[m(MSTATS.ACCESS)] ?? "none",
      owner: m(MSTATS.IS_OWNER) !== 0,
      alive: m(MSTATS.ALIVE) !== 0,
      parked: { recv: (m(MSTATS.PARKED) & SHMC_WAIT_RECV) !== 0, send: (m(MSTATS.PARKED) & SHMC_WAIT_SEND) !== 0 },
      behind: m(MSTATS.BEHIND),
      counters: counters(out, b, MSTATS),
    });
  }
  return {
    key: out[STATS.KEY],
    id: at(STATS.CHANNEL_ID),
    delivery: DELIVERY_NAMES[at(STATS.DELIVERY)] ?? "unicast",
    mode: at(STATS.MODE),
    private: (at(STATS.FLAGS) & SHMC_F_PRIVATE) !== 0,
    ownerUid: at(STATS.OWNER_UID),
    creatorPid: at(STATS.CREATOR_PID),
    ringEntries: at(STATS.RING_ENTRIES),
    maxMessageSize: at(STATS.MAX_MESSAGE_SIZE),
    waiting: at(STATS.WAITING),
    live: at(STATS.MEMBERS),
    counters: counters(out, 0, STATS),
    members,
  };
}

/** A handle's channel's stats. */
function handleStats(h: number, what: string): ChannelStats {
  const out = new BigUint64Array(STATS_ROOM);
  const rows = check(lib().shmc_stats(h, out, STATS_ROOM), what);
  return toStats(out, rows);
}

/** A ChannelTarget, checked: the key or the id, and how a message names it. */
function channelTarget(target: unknown): { key?: bigint; id?: number; what: string } {
  if (typeof target !== "object" || target === null) throw new TypeError("needs { key } or { id }");
  const t = target as { key?: unknown; id?: unknown };
  if ((t.key !== undefined) === (t.id !== undefined)) throw new TypeError("needs exactly one of { key } or { id }");
  if (t.key !== undefined) {
    const key = toKey(t.key);
    return { key, what: `key ${showKey(key)}` };
  }
  const id = toInt(t.id, "id", 1, MAX_I32, 0);
  return { id, what: `id ${id}` };
}

/** What holds a key or an id, as a sentence for an error: whose, and what. */
function holder(target: { key?: bigint; id?: number }): string | undefined {
  const out = new BigUint64Array(LOOKUP.COUNT);
  const rc = target.key !== undefined ? lib().shmc_lookup_key(target.key, out) : lib().shmc_lookup_id(target.id!, out);
  if (rc < 0) return undefined;
  const uid = Number(out[LOOKUP.OWNER_UID]);
  const pid = Number(out[LOOKUP.CREATOR_PID]);
  switch (Number(out[LOOKUP.STATE])) {
    case LOOKUP.LIVE:
      return `a live channel of uid ${uid} (created by pid ${pid})`;
    case LOOKUP.STALE:
      return `a stale channel of uid ${uid}: its creator, pid ${pid}, is gone; it frees when uid ${uid} ` +
        `or root next creates or attaches a channel`;
    case LOOKUP.NOT_CHANNEL:
      return `a name of uid ${uid} that is not a channel`;
    case LOOKUP.UNKNOWN:
      return `a channel of uid ${uid}`;
  }
  return undefined;
}

/**
 * The state behind one C handle, shared by Channel and Subscriber (which keep
 * it in a private field). `h` is 0 once the handle is closed: a closed handle
 * never reaches C again, since C may reuse the number.
 */
class Handle {
  h: number;
  readonly maxMessageSize: number;
  #sendScratch?: Uint8Array;
  #recvScratch?: Uint8Array;
  #packScratch?: Uint8Array;
  #lensScratch?: Uint32Array;
  #region?: ArrayBuffer;
  readonly #offset = new Uint32Array(1);
  /** The loan and the view outstanding on this handle (one of each). */
  loan: Loan | null = null;
  view: MessageView | null = null;
  /** recv()'s wait, made once: into the scratch, finished with a copy. */
  #recvOp?: RecvOp<Uint8Array>;
  /** When this handle's waits spin (one policy per direction). */
  readonly recvPolicy = new SpinPolicy();
  readonly sendPolicy = new SpinPolicy();

  constructor(h: number, maxMessageSize: number) {
    this.h = h;
    this.maxMessageSize = maxMessageSize;
  }

  live(what: string): number {
    if (this.h === 0) throw closedError(what);
    return this.h;
  }

  /** Message bytes; a string is encoded into a scratch buffer unless `own`. */
  encode(data: MessageData, own: boolean): Uint8Array {
    let bytes: Uint8Array;
    if (typeof data === "string") {
      if (own) {
        bytes = encoder.encode(data);
      } else {
        const scratch = (this.#sendScratch ??= new Uint8Array(this.maxMessageSize));
        const { read, written } = encoder.encodeInto(data, scratch);
        if (read < data.length) throw tooLong(utf8Length(data), this.maxMessageSize);
        bytes = scratch.subarray(0, written);
      }
    } else {
      bytes = bytesOf(data);
    }
    // Checked here too: a length past 2^32-1 would wrap in the u32 argument.
    if (bytes.byteLength > this.maxMessageSize) throw tooLong(bytes.byteLength, this.maxMessageSize);
    return bytes;
  }

  trySend(data: MessageData, opts: SendOptions | undefined): number {
    const target = toTarget(opts);
    const h = this.live("trySend");
    const bytes = this.encode(data, false);
    const rc = lib().shmc_try_send(h, bytes, bytes.byteLength, target);
    return rc >= 0 ? rc : check(rc, "trySend");
  }

  /** Scratch for batches: packed messages and their lengths. */
  #batch(): [Uint8Array, Uint32Array] {
    this.#packScratch ??= new Uint8Array(
      Math.max(this.maxMessageSize, Math.min(BATCH * this.maxMessageSize, BATCH_BYTES)),
    );
    this.#lensScratch ??= new Uint32Array(BATCH);
    return [this.#packScratch, this.#lensScratch];
  }

  trySendMany(messages: Iterable<MessageData>, opts: SendOptions | undefined): number {
    const target = toTarget(opts);
    const h = this.live("trySendMany");
    if (messages === null || typeof messages !== "object" || !(Symbol.iterator in messages)) {
      throw new TypeError("messages must be an iterable");
    }
    const native = lib();
    const [pack, lens] = this.#batch();
    const max = this.maxMessageSize;
    let sent = 0, n = 0, off = 0;
    // Sends what is packed; false once the ring is full.
    const flush = (): boolean => {
      if (n === 0) return true;
      const rc = native.shmc_try_send_many(h, pack, lens, n, target);
      if (rc === ENOBUFS) return false;
      sent += check(rc, "trySendMany");
      const all = rc === n;
      n = 0;
      off = 0;
      return all;
    };
    for (const data of messages) {
      let len: number;
      if (typeof data === "string") {
        const { read, written } = encoder.encodeInto(data, pack.subarray(off, off + max));
        if (read < data.length) {
          flush();
          throw tooLong(utf8Length(data), max);
        }
        len = written;
      } else {
        const bytes = bytesOf(data);
        if (bytes.byteLength > max) {
          flush();
          throw tooLong(bytes.byteLength, max);
        }
        pack.set(bytes, off);
        len = bytes.byteLength;
      }
      lens[n++] = len;
      off += len;
      if ((n === BATCH || off + max > pack.byteLength) && !flush()) return sent;
    }
    flush();
    return sent;
  }

  send(data: MessageData, opts: (SendOptions & WaitOptions) | undefined, keepAlive: object): Promise<number> {
    let h: number, bytes: Uint8Array, target: number;
    try {
      target = toTarget(opts);
      h = this.live("send");
      bytes = this.encode(data, true);
    } catch (err) {
      return Promise.reject(err);
    }
    return waitFor(new SendOp(h, lib(), bytes, target), opts, this.sendPolicy, keepAlive);
  }

  #scratch(): Uint8Array {
    return (this.#recvScratch ??= new Uint8Array(this.maxMessageSize));
  }

  tryRecv(): Uint8Array | null {
    const h = this.live("tryRecv");
    const scratch = this.#scratch();
    const rc = lib().shmc_try_recv(h, scratch, scratch.byteLength);
    if (rc === EAGAIN) return null;
    return scratch.slice(0, check(rc, "tryRecv"));
  }

  tryRecvInto(buf: unknown): number | null {
    const h = this.live("tryRecvInto");
    const into = intoBuffer(buf);
    const cap = Math.min(into.byteLength, MAX_U32);
    const rc = lib().shmc_try_recv(h, into, cap);
    if (rc === EAGAIN) return null;
    return check(rc, "tryRecvInto");
  }

  tryRecvMany(max: unknown): Uint8Array[] {
    const limit = toInt(max, "max", 0, MAX_I32, MAX_I32);
    const h = this.live("tryRecvMany");
    const native = lib();
    const [pack, lens] = this.#batch();
    const fit = Math.min(BATCH, Math.floor(pack.byteLength / this.maxMessageSize));
    const out: Uint8Array[] = [];
    while (out.length < limit) {
      const want = Math.min(fit, limit - out.length);
      const rc = native.shmc_try_recv_many(h, pack, pack.byteLength, lens, want);
      if (rc === EAGAIN) break;
      check(rc, "tryRecvMany");
      let total = 0;
      for (let i = 0; i < rc; i++) total += lens[i];
      // One copy for the batch; each message is a view of it.
      const copy = pack.slice(0, total);
      for (let i = 0, o = 0; i < rc; o += lens[i], i++) out.push(copy.subarray(o, o + lens[i]));
      if (rc < want) break;
    }
    return out;
  }

  tryRecvManyInto(buf: unknown, lens: unknown): number {
    const into = intoBuffer(buf);
    if (!(lens instanceof Uint32Array)) throw new TypeError("lens must be a Uint32Array");
    const h = this.live("tryRecvManyInto");
    if (into.byteLength < this.maxMessageSize) {
      throw einval("buf must hold at least maxMessageSize bytes");
    }
    const cap = Math.min(into.byteLength, MAX_U32);
    const rc = lib().shmc_try_recv_many(h, into, cap, lens, Math.min(lens.length, MAX_I32));
    if (rc === EAGAIN) return 0;
    return check(rc, "tryRecvManyInto");
  }

  recv(opts: WaitOptions | undefined, keepAlive: object): Promise<Uint8Array> {
    let h: number;
    try {
      h = this.live("recv");
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.#recvOp === undefined) {
      const scratch = this.#scratch();
      this.#recvOp = new RecvOp(h, lib(), scratch, "recv", (rc) => scratch.slice(0, rc));
    }
    return waitFor(this.#recvOp, opts, this.recvPolicy, keepAlive);
  }

  recvInto(buf: unknown, opts: WaitOptions | undefined, keepAlive: object): Promise<number> {
    let h: number, into: Uint8Array;
    try {
      h = this.live("recvInto");
      into = intoBuffer(buf);
    } catch (err) {
      return Promise.reject(err);
    }
    return waitFor(new RecvOp(h, lib(), into, "recvInto", identity), opts, this.recvPolicy, keepAlive);
  }

  /** The ArrayBuffer over this handle's view region, made once. */
  #viewRegion(h: number, what: string): ArrayBuffer {
    if (this.#region) return this.#region;
    const r = backend.viewRegion(lib(), h);
    if (typeof r === "number") check(r, what);
    return (this.#region = r as ArrayBuffer);
  }

  /** A loan from a successful shmc_try_loan_at (rc: the capacity). */
  #newLoan(h: number, rc: number): Loan {
    const region = this.#viewRegion(h, "loan");
    const loan = new Loan(INTERNAL, this, new Uint8Array(region, this.#offset[0], rc));
    this.loan = loan;
    return loan;
  }

  #newView(h: number, rc: number): MessageView {
    const region = this.#viewRegion(h, "recvView");
    const view = new MessageView(INTERNAL, this, new Uint8Array(region, this.#offset[0], rc));
    this.view = view;
    return view;
  }

  tryLoan(): Loan {
    const h = this.live("tryLoan");
    // The region first: an error making it must not leave a loan behind.
    this.#viewRegion(h, "tryLoan");
    const rc = lib().shmc_try_loan_at(h, this.#offset);
    return this.#newLoan(h, check(rc, "tryLoan"));
  }

  loanAsync(opts: WaitOptions | undefined, keepAlive: object): Promise<Loan> {
    let h: number;
    try {
      h = this.live("loan");
      this.#viewRegion(h, "loan");
    } catch (err) {
      return Promise.reject(err);
    }
    const native = lib();
    const offset = this.#offset;
    const op = new TryOp(h, SHMC_WAIT_SEND, ENOBUFS, "loan", () => native.shmc_try_loan_at(h, offset), (rc) =>
      this.#newLoan(h, rc));
    return waitFor(op, opts, this.sendPolicy, keepAlive);
  }

  commit(loan: Loan, length: unknown, opts: SendOptions | undefined): number {
    const target = toTarget(opts);
    const len = toInt(length, "length", 0, MAX_U32, -1);
    if (len < 0) throw new TypeError("commit needs the message's length");
    const h = this.live("commit");
    if (this.loan !== loan) throw ChannelError.of("EINVAL", "this loan was committed or aborted already (commit)");
    if (len > this.maxMessageSize) throw tooLong(len, this.maxMessageSize);
    const rc = check(lib().shmc_commit(h, len, target), "commit");
    this.loan = null;
    return rc;
  }

  abort(loan: Loan): void {
    const h = this.live("abort");
    if (this.loan !== loan) throw ChannelError.of("EINVAL", "this loan was committed or aborted already (abort)");
    check(lib().shmc_abort(h), "abort");
    this.loan = null;
  }

  tryRecvView(): MessageView | null {
    const h = this.live("tryRecvView");
    this.#viewRegion(h, "tryRecvView");
    const rc = lib().shmc_try_recv_view_at(h, this.#offset);
    if (rc === EAGAIN) return null;
    return this.#newView(h, check(rc, "tryRecvView"));
  }

  recvView(opts: WaitOptions | undefined, keepAlive: object): Promise<MessageView> {
    let h: number;
    try {
      h = this.live("recvView");
      this.#viewRegion(h, "recvView");
    } catch (err) {
      return Promise.reject(err);
    }
    const native = lib();
    const offset = this.#offset;
    const op = new TryOp(h, SHMC_WAIT_RECV, EAGAIN, "recvView", () => native.shmc_try_recv_view_at(h, offset), (rc) =>
      this.#newView(h, rc));
    return waitFor(op, opts, this.recvPolicy, keepAlive);
  }

  release(view: MessageView): boolean {
    const h = this.live("release");
    if (this.view !== view) throw ChannelError.of("EINVAL", "this view was released already (release)");
    const rc = lib().shmc_release(h);
    this.view = null;
    if (rc === ESTALE) return false;
    check(rc, "release");
    return true;
  }

  /** Rejects pending waits with ENOENT, closes the doorbells, then closes with `close(h)`. */
  close(what: string, close: (h: number) => number): void {
    const h = this.live(what);
    failWaiters(h, () => ChannelError.of("ENOENT", `handle closed while waiting (${what})`));
    closeDoorbells(h);
    this.h = 0;
    // C aborts the loan and releases the view; their bytes stay readable
    // (zeros once the region is retired), never unmapped under them.
    this.loan = this.view = null;
    check(close(h), what);
  }
}

/**
 * A slot loaned for writing a message in place (zero copy), from tryLoan()
 * or loan(). Write the message into `bytes` (writable, maxMessageSize long),
 * then commit(length) it, or abort() it. One loan per handle at a time:
 * while it is outstanding, sends and other loans on the handle are EBUSY;
 * and unicast/multicast messages sent after it wait for it, so keep it short.
 * Disposal aborts a loan neither committed nor aborted.
 */
export class Loan implements Disposable {
  /** The slot's payload: write the message here, from offset 0. */
  readonly bytes: Uint8Array;
  #handle: Handle;

  /** @internal Use tryLoan() or loan(). */
  constructor(token: typeof INTERNAL, handle: Handle, bytes: Uint8Array) {
    if (token !== INTERNAL) throw new TypeError("use tryLoan() or loan()");
    this.#handle = handle;
    this.bytes = bytes;
  }

  /** True until committed or aborted (or its handle closed). */
  get pending(): boolean {
    return this.#handle.loan === this && this.#handle.h !== 0;
  }

  /**
   * Publishes the first `length` bytes of `bytes` as one message (to
   * `target` only, when given); returns `length`. EMSGSIZE (a length over
   * maxMessageSize) and ENOENT (a target that is not a receiver) keep the
   * loan outstanding: fix and commit again, or abort.
   */
  commit(length: number, options?: SendOptions): number {
    return this.#handle.commit(this, length, options);
  }

  /** Gives the slot back unsent: nothing is delivered. */
  abort(): void {
    this.#handle.abort(this);
  }

  /** abort(), unless committed or aborted already. */
  [Symbol.dispose](): void {
    if (this.pending) this.abort();
  }
}

/**
 * A received message read where it lies (zero copy), from tryRecvView() or
 * recvView(). `bytes` is valid until release(): its slot is not reused
 * until then (a producer gets ENOBUFS or waits; in broadcast every producer
 * waits for it). One view per handle at a time: while it is held, receives
 * and other views on the handle are EBUSY. After release, or after the
 * handle is detached, `bytes` still reads without crashing but shows
 * whatever the slot holds later (another message's bytes, or zeros): copy
 * what you keep. Disposal releases a view not released yet.
 */
export class MessageView implements Disposable {
  /** The message's bytes, in the channel's memory (a receive-only handle's writes stay its own). */
  readonly bytes: Uint8Array;
  #handle: Handle;

  /** @internal Use tryRecvView() or recvView(). */
  constructor(token: typeof INTERNAL, handle: Handle, bytes: Uint8Array) {
    if (token !== INTERNAL) throw new TypeError("use tryRecvView() or recvView()");
    this.#handle = handle;
    this.bytes = bytes;
  }

  /** True until released (or its handle closed). */
  get held(): boolean {
    return this.#handle.view === this && this.#handle.h !== 0;
  }

  /**
   * Gives the slot back. Returns true; false in unicast/multicast when the
   * bytes changed while held (only a participant that rewrites the
   * channel's shared state can cause that: treat what was read as corrupt).
   */
  release(): boolean {
    return this.#handle.release(this);
  }

  /** release(), unless released already. */
  [Symbol.dispose](): void {
    if (this.held) this.release();
  }
}

/** Detaches subscribers that were garbage-collected without detach(). */
const leakedSubscribers = new FinalizationRegistry<Handle>((handle) => {
  if (handle.h === 0) return;
  const h = handle.h;
  handle.h = 0;
  failWaiters(h, () => closedError("detach")); // none can be pending: they hold the subscriber
  closeDoorbells(h);
  lib().shmc_detach(h);
});

/**
 * A channel's owner handle, from Channel.create(). It may send (subject to
 * the same permission check as subscribers) but not receive; destroy() (or
 * disposal) removes the channel from lookup.
 */
export class Channel implements Disposable {
  /** Channel id: a positive 32-bit integer, unique among live channels. */
  readonly id: number;
  /** The uid that owns the channel (its files): the creator's effective uid. */
  readonly ownerUid: number;
  /** The channel key. */
  readonly key: bigint;
  readonly delivery: Delivery;
  readonly ringEntries: number;
  readonly maxMessageSize: number;
  /** Permission bits (0o666 mask). */
  readonly mode: number;
  /** Whether only the creator's uid may attach. */
  readonly private: boolean;
  #handle: Handle;

  /** @internal Use Channel.create(). */
  constructor(token: typeof INTERNAL, h: number) {
    if (token !== INTERNAL) throw new TypeError("use Channel.create() or Channel.attach()");
    const info = readInfo(h);
    this.id = info.channelId;
    this.ownerUid = info.ownerUid;
    this.key = info.key;
    this.delivery = info.delivery;
    this.ringEntries = info.ringEntries;
    this.maxMessageSize = info.maxMessageSize;
    this.mode = info.mode;
    this.private = info.private;
    this.#handle = new Handle(h, info.maxMessageSize);
  }

  /**
   * Creates a channel and returns its owner handle. Out-of-range values throw
   * ChannelError EINVAL, values of the wrong type TypeError; a key held by a
   * live channel (or a stale channel of another uid, or a name that is not a
   * channel) is EEXIST, whose message says whose it is.
   */
  static create(options: CreateOptions): Channel {
    if (typeof options !== "object" || options === null) throw new TypeError("options must be an object");
    if (options.key === undefined) throw new TypeError("options.key is required");
    const key = toKey(options.key);
    const delivery = options.delivery === undefined ? "unicast" : options.delivery;
    if (!hasOwn(DELIVERY, delivery as string)) {
      throw einval(`delivery must be "unicast", "broadcast" or "multicast"`);
    }
    const ringEntries = toInt(options.ringEntries, "ringEntries", 1, SHMC_MAX_RING_ENTRIES, 256);
    if ((ringEntries & (ringEntries - 1)) !== 0) throw einval("ringEntries must be a power of two");
    const maxMessageSize = toInt(options.maxMessageSize, "maxMessageSize", 1, SHMC_MAX_MESSAGE_SIZE, 4096);
    const mode = toInt(options.mode, "mode", 0, 0o7777, 0o600) & 0o666;
    const priv = options.private === undefined ? false : options.private;
    if (typeof priv !== "boolean") throw new TypeError("private must be a boolean");
    const rc = lib().shmc_create(key, DELIVERY[delivery], ringEntries, maxMessageSize, mode, priv ? SHMC_F_PRIVATE : 0);
    if (rc === EEXIST) {
      const who = holder({ key });
      throw ChannelError.of("EEXIST", `key ${showKey(key)} is held by ${who ?? "another channel"} (create)`);
    }
    return new Channel(INTERNAL, check(rc, "create"));
  }

  /**
   * Attaches a subscriber to the channel with this key or id. `access` is
   * "send", "recv" or "both" (anything else is EINVAL). Unknown key or id:
   * ENOENT (its message says whose stale channel holds it, if one does); the
   * mode bits (or `private`) denying the access: EACCES; `owner` given and
   * the channel another uid's: EACCES.
   */
  static attach(target: AttachTarget, access: Access): Subscriber {
    if (typeof target !== "object" || target === null) {
      throw new TypeError("attach needs { key } or { id }");
    }
    const hasKey = target.key !== undefined;
    const hasId = target.id !== undefined;
    if (hasKey === hasId) throw new TypeError("attach needs exactly one of { key } or { id }");
    const bits = typeof access === "string" && hasOwn(ACCESS, access) ? ACCESS[access] : 0;
    if (bits === 0) throw einval(`access must be "send", "recv" or "both"`);
    const owner = target.owner === undefined ? undefined : toInt(target.owner, "owner", 0, MAX_U32, 0);
    const native = lib();
    let rc: number, what: string, name: { key?: bigint; id?: number };
    if (hasKey) {
      const key = toKey(target.key);
      rc = owner === undefined ? native.shmc_attach_key(key, bits) : native.shmc_attach_key_owned(key, bits, owner);
      what = `key ${showKey(key)}`;
      name = { key };
    } else {
      const id = toInt(target.id, "id", 1, MAX_I32, 0);
      rc = owner === undefined ? native.shmc_attach_id(id, bits) : native.shmc_attach_id_owned(id, bits, owner);
      what = `id ${id}`;
      name = { id };
    }
    if (rc === ENOENT) {
      const who = holder(name);
      throw ChannelError.of("ENOENT", `no live channel with ${what}${who ? `: it is held by ${who}` : ""} (attach)`);
    }
    if (rc === EACCES && owner !== undefined) {
      const who = holder(name);
      if (who && !who.includes(`uid ${owner}`)) {
        throw ChannelError.of("EACCES", `${what} is held by ${who}, not of uid ${owner} (attach)`);
      }
    }
    return new Subscriber(INTERNAL, check(rc, `attach to ${what}`));
  }

  /**
   * The live channels this process may look into (a right on the channel,
   * or root), with their descriptions. Reads their files without joining.
   */
  static list(): ChannelListing[] {
    const native = lib();
    let rows = 64;
    for (;;) {
      const out = new BigUint64Array(rows * LIST.COUNT);
      const found = check(native.shmc_list(out, out.length), "list");
      if (found > rows) {
        rows = found + 16; // more appeared than fit: again, with room
        continue;
      }
      const list: ChannelListing[] = [];
      for (let r = 0; r < found; r++) {
        const at = (i: number) => Number(out[r * LIST.COUNT + i]);
        list.push({
          key: out[r * LIST.COUNT + LIST.KEY],
          id: at(LIST.CHANNEL_ID),
          delivery: DELIVERY_NAMES[at(LIST.DELIVERY)] ?? "unicast",
          mode: at(LIST.MODE),
          private: (at(LIST.FLAGS) & SHMC_F_PRIVATE) !== 0,
          ownerUid: at(LIST.OWNER_UID),
          creatorPid: at(LIST.CREATOR_PID),
          members: at(LIST.MEMBERS),
          ringEntries: at(LIST.RING_ENTRIES),
          maxMessageSize: at(LIST.MAX_MESSAGE_SIZE),
          waiting: at(LIST.WAITING),
        });
      }
      return list;
    }
  }

  /**
   * The counters and members of the live channel with this key or id,
   * without attaching (any class with a right on it, or root, may look).
   * ENOENT: no live channel; EACCES: no right on it.
   */
  static stats(target: ChannelTarget): ChannelStats {
    const t = channelTarget(target);
    const out = new BigUint64Array(STATS_ROOM);
    const native = lib();
    const rc = t.key !== undefined ? native.shmc_stats_key(t.key, out, STATS_ROOM) : native.shmc_stats_id(t.id!, out, STATS_ROOM);
    if (rc === ENOENT) throw ChannelError.of("ENOENT", `no live channel with ${t.what} (stats)`);
    return toStats(out, check(rc, `stats of ${t.what}`));
  }

  /**
   * Removes the live channel with this key or id from lookup, like ipcrm:
   * attaches fail with ENOENT from now on and the key is free; its members
   * (the creator's handle included) keep working until they leave. Allowed
   * for the channel's owner uid and root; anyone else gets EACCES.
   */
  static remove(target: ChannelTarget): void {
    const t = channelTarget(target);
    const native = lib();
    const rc = t.key !== undefined ? native.shmc_remove_key(t.key) : native.shmc_remove_id(t.id!);
    if (rc === ENOENT) throw ChannelError.of("ENOENT", `no live channel with ${t.what} (remove)`);
    if (rc === EACCES) {
      const who = holder(t);
      throw ChannelError.of(
        "EACCES",
        `${t.what} is held by ${who ?? "a channel of another uid"}: only its owner uid or root may remove it (remove)`,
      );
    }
    check(rc, `remove ${t.what}`);
  }

  /**
   * Sweeps /dev/shm now: removes what dead processes left that this process
   * may remove (its uid's, or anything as root), as every create and attach
   * does. Returns how many names went.
   */
  static gc(): number {
    return check(lib().shmc_gc(), "gc");
  }

  /** True once destroyed. */
  get closed(): boolean {
    return this.#handle.h === 0;
  }

  /** The channel's counters and members (see Channel.stats). */
  stats(): ChannelStats {
    return handleStats(this.#handle.live("stats"), "stats");
  }

  /** Sends without waiting; returns the byte count. A full ring is ENOBUFS. */
  trySend(data: MessageData, options?: SendOptions): number {
    return this.#handle.trySend(data, options);
  }

  /**
   * Sends as many messages as fit now, packed into batches of up to 64 per
   * native call; returns how many were sent. Messages are taken from the
   * iterable a batch ahead: those past the returned count were not sent.
   */
  trySendMany(messages: Iterable<MessageData>, options?: SendOptions): number {
    return this.#handle.trySendMany(messages, options);
  }

  /** Sends, waiting for room while the ring is full. */
  send(data: MessageData, options?: SendOptions & WaitOptions): Promise<number> {
    return this.#handle.send(data, options, this);
  }

  /**
   * Loans the next slot for writing a message in place (zero copy); a full
   * ring is ENOBUFS, an outstanding loan on this handle EBUSY.
   */
  tryLoan(): Loan {
    return this.#handle.tryLoan();
  }

  /** Loans the next slot, waiting for room while the ring is full. */
  loan(options?: WaitOptions): Promise<Loan> {
    return this.#handle.loanAsync(options, this);
  }

  /**
   * Removes the channel from lookup and closes this handle; subscribers keep
   * working until they detach. A second destroy() throws ENOENT.
   */
  destroy(): void {
    this.#handle.close("destroy", (h) => lib().shmc_destroy(h));
  }

  /** destroy(), unless already destroyed. */
  [Symbol.dispose](): void {
    if (this.#handle.h !== 0) this.destroy();
  }
}

/** A subscriber handle, from Channel.attach(). */
export class Subscriber implements Disposable, AsyncIterable<Uint8Array> {
  /** Subscriber id: positive, unique within the channel; a target for sends. */
  readonly id: number;
  /** The id of the channel. */
  readonly channelId: number;
  /** The uid that owns the channel (its files). */
  readonly ownerUid: number;
  readonly key: bigint;
  readonly delivery: Delivery;
  readonly ringEntries: number;
  readonly maxMessageSize: number;
  readonly access: Access;
  #handle: Handle;

  /** @internal Use Channel.attach(). */
  constructor(token: typeof INTERNAL, h: number) {
    if (token !== INTERNAL) throw new TypeError("use Channel.attach()");
    const info = readInfo(h);
    this.id = info.memberId;
    this.channelId = info.channelId;
    this.ownerUid = info.ownerUid;
    this.key = info.key;
    this.delivery = info.delivery;
    this.ringEntries = info.ringEntries;
    this.maxMessageSize = info.maxMessageSize;
    this.access = info.access;
    this.#handle = new Handle(h, info.maxMessageSize);
    leakedSubscribers.register(this, this.#handle, this.#handle);
  }

  /** True once detached. */
  get closed(): boolean {
    return this.#handle.h === 0;
  }

  /** The channel's counters and members (see Channel.stats); this subscriber is the member with its id. */
  stats(): ChannelStats {
    return handleStats(this.#handle.live("stats"), "stats");
  }

  /** Sends without waiting; returns the byte count. A full ring is ENOBUFS. */
  trySend(data: MessageData, options?: SendOptions): number {
    return this.#handle.trySend(data, options);
  }

  /**
   * Sends as many messages as fit now, packed into batches of up to 64 per
   * native call; returns how many were sent. Messages are taken from the
   * iterable a batch ahead: those past the returned count were not sent.
   */
  trySendMany(messages: Iterable<MessageData>, options?: SendOptions): number {
    return this.#handle.trySendMany(messages, options);
  }

  /** Sends, waiting for room while the ring is full. */
  send(data: MessageData, options?: SendOptions & WaitOptions): Promise<number> {
    return this.#handle.send(data, options, this);
  }

  /**
   * Loans the next slot for writing a message in place (zero copy); a full
   * ring is ENOBUFS, an outstanding loan on this handle EBUSY.
   */
  tryLoan(): Loan {
    return this.#handle.tryLoan();
  }

  /** Loans the next slot, waiting for room while the ring is full. */
  loan(options?: WaitOptions): Promise<Loan> {
    return this.#handle.loanAsync(options, this);
  }

  /** Receives one message without waiting, or null when there is none. */
  tryRecv(): Uint8Array | null {
    return this.#handle.tryRecv();
  }

  /**
   * Receives one message into `buf` without waiting; returns the bytes copied
   * (a longer message is truncated and still consumed), or null.
   */
  tryRecvInto(buf: Uint8Array): number | null {
    return this.#handle.tryRecvInto(buf);
  }

  /**
   * Receives up to `max` messages available now (default: all of them), in
   * batches of up to 64 per native call.
   */
  tryRecvMany(max?: number): Uint8Array[] {
    return this.#handle.tryRecvMany(max);
  }

  /**
   * Receives up to `lens.length` messages available now into `buf`, back to
   * back, with no allocation; `lens[i]` gets each length. Returns how many (0
   * when there was none). Receives only while `maxMessageSize` bytes of `buf`
   * remain, so nothing is truncated; a `buf` smaller than that is EINVAL.
   */
  tryRecvManyInto(buf: Uint8Array, lens: Uint32Array): number {
    return this.#handle.tryRecvManyInto(buf, lens);
  }

  /** Receives one message, waiting for it. */
  recv(options?: WaitOptions): Promise<Uint8Array> {
    return this.#handle.recv(options, this);
  }

  /** Receives one message into `buf`, waiting for it; returns the bytes copied. */
  recvInto(buf: Uint8Array, options?: WaitOptions): Promise<number> {
    return this.#handle.recvInto(buf, options, this);
  }

  /**
   * Takes the next message without copying it (zero copy), or null when
   * there is none; a view already held on this handle is EBUSY.
   */
  tryRecvView(): MessageView | null {
    return this.#handle.tryRecvView();
  }

  /** Takes the next message without copying it, waiting for one. */
  recvView(options?: WaitOptions): Promise<MessageView> {
    return this.#handle.recvView(options, this);
  }

  /** Yields messages as they come; ends when the subscriber is detached. */
  async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array, void, undefined> {
    while (this.#handle.h !== 0) {
      let msg: Uint8Array;
      try {
        msg = await this.recv();
      } catch (err) {
        if (this.#handle.h === 0) return;
        throw err;
      }
      yield msg;
    }
  }

  /**
   * Detaches and closes this handle; a pending recv() rejects with ENOENT.
   * A second detach() throws ENOENT.
   */
  detach(): void {
    this.#handle.close("detach", (h) => lib().shmc_detach(h));
    leakedSubscribers.unregister(this.#handle);
  }

  /** detach(), unless already detached. */
  [Symbol.dispose](): void {
    if (this.#handle.h !== 0) this.detach();
  }
}

/** The C library's version as [major, minor, patch]. */
export function libraryVersion(): [number, number, number] {
  const v = lib().shmc_version();
  return [(v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff];
}
