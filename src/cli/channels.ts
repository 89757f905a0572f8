/**
 * What the `shmchan` subcommands that look at channels share: naming a
 * channel on the command line (a key, decimal or 0x hex, or an id), and the
 * shapes `--json` prints.
 */
import { Channel, ChannelError, type ChannelListing, type ChannelStats, type ChannelTarget, type Counters } from "../index.ts";
import { formatKey, parseKey, UsageError } from "./args.ts";

const MAX_ID = 0x7fff_ffff;

/**
 * The channel a command line names: `text` is a key (decimal or 0x hex);
 * with `byId`, an id. A number that no live channel has as its key but one
 * has as its id names that channel (ids are at most 2^31-1, keys are
 * usually larger): `shmchan stat <key|id>`.
 */
export function channelOf(text: string | undefined, byId = false): ChannelTarget {
  if (text === undefined) throw new UsageError("which channel? give its key (decimal or 0x hex) or --id <id>");
  const n = parseKey(text, byId ? "id" : "key");
  if (byId) {
    if (n > BigInt(MAX_ID)) throw new UsageError(`id ${text} is out of range (1 .. 2^31-1)`);
    return { id: Number(n) };
  }
  if (n <= BigInt(MAX_ID) && !exists({ key: n }) && exists({ id: Number(n) })) return { id: Number(n) };
  return { key: n };
}

/**
 * The one channel a command names: `--id <id>`, or its only positional
 * argument (channelOf). Any other positional is a UsageError. With
 * `optional`, naming none is undefined instead.
 */
export function targetOf(flags: { id?: unknown }, positionals: string[]): ChannelTarget;
export function targetOf(flags: { id?: unknown }, positionals: string[], optional: true): ChannelTarget | undefined;
export function targetOf(
  flags: { id?: unknown },
  positionals: string[],
  optional = false,
): ChannelTarget | undefined {
  const byId = flags.id !== undefined;
  if (positionals.length > (byId ? 0 : 1)) throw new UsageError(`unexpected argument "${positionals[byId ? 0 : 1]}"`);
  if (optional && !byId && positionals.length === 0) return undefined;
  return channelOf(byId ? (flags.id as string) : positionals[0], byId);
}

function exists(target: ChannelTarget): boolean {
  try {
    Channel.stats(target);
    return true;
  } catch (err) {
    if (err instanceof ChannelError && err.code !== "ENOENT") return true; // there, but not ours to look into
    return false;
  }
}

/** A target as a message names it. */
export const describeTarget = (t: ChannelTarget) => t.key !== undefined ? `key ${formatKey(BigInt(t.key))}` : `id ${t.id}`;

/** Permission bits as chmod writes them: "0644". */
export const formatMode = (mode: number) => `0${mode.toString(8).padStart(3, "0")}`;

/** One `shmchan ls --json` entry. */
export function listingJson(c: ChannelListing) {
  return {
    key: c.key.toString(),
    id: c.id,
    delivery: c.delivery,
    mode: formatMode(c.mode),
    private: c.private,
    uid: c.ownerUid,
    pid: c.creatorPid,
    members: c.members,
    ringEntries: c.ringEntries,
    maxMessageSize: c.maxMessageSize,
    waiting: c.waiting,
  };
}

/** The `shmchan stat --json` object. */
export function statsJson(s: ChannelStats) {
  return {
    key: s.key.toString(),
    id: s.id,
    delivery: s.delivery,
    mode: formatMode(s.mode),
    private: s.private,
    uid: s.ownerUid,
    pid: s.creatorPid,
    live: s.live,
    ringEntries: s.ringEntries,
    maxMessageSize: s.maxMessageSize,
    waiting: s.waiting,
    counters: s.counters,
    members: s.members.map((m) => ({
      id: m.id,
      slot: m.slot,
      pid: m.pid,
      uid: m.uid,
      access: m.access,
      owner: m.owner,
      alive: m.alive,
      parked: m.parked.recv || m.parked.send,
      parkedFor: m.parked.recv && m.parked.send ? "both" : m.parked.recv ? "recv" : m.parked.send ? "send" : null,
      behind: m.behind,
      counters: m.counters,
    })),
  };
}

/** Columns padded to their widest cell, two spaces apart. */
export function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]))).join("  ").trimEnd())
    .join("\n");
}

/** A count with its bytes: "10 (640 B)". */
export function withBytes(n: number, bytes: number): string {
  const unit = bytes >= 1 << 30 ? [1 << 30, "GiB"] : bytes >= 1 << 20 ? [1 << 20, "MiB"] : bytes >= 1 << 10 ? [1 << 10, "KiB"] : [1, "B"];
  const v = bytes / (unit[0] as number);
  return `${n} (${unit[0] === 1 ? v : v.toFixed(1)} ${unit[1]})`;
}

/** The counters on one line. */
export function countersLine(c: Counters): string {
  return `sent ${withBytes(c.sent, c.sentBytes)}, received ${withBytes(c.received, c.receivedBytes)}, ` +
    `full ${c.full}, dropped ${c.dropped}, skipped ${c.skipped}, parks ${c.parks}, wakes ${c.wakes}`;
}

/** A decimal number of milliseconds option, at least `min`. */
export function parseMs(text: string | boolean | undefined, name: string, dflt: number, min = 1): number {
  if (text === undefined) return dflt;
  if (typeof text !== "string" || !/^[0-9]+$/.test(text) || Number(text) < min || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`--${name} must be an integer >= ${min}, not "${text}"`);
  }
  return Number(text);
}
