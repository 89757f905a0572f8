/**
 * Command-line parsing shared by the `shmchan` subcommands: flags, keys,
 * numbers, and UsageError (exit status 2).
 */

/** Bad usage: the dispatcher prints the message and exits with status 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Each flag a subcommand accepts: "string" takes a value, "boolean" does not. */
export type FlagSpec = Record<string, "string" | "boolean">;

/** Parsed arguments: flags by name (without the dashes) and the positionals. */
export interface Parsed {
  flags: Record<string, string | boolean | undefined>;
  positionals: string[];
}

/**
 * Parses `--name value`, `--name=value`, boolean `--name`, `-h` (as
 * `--help`) and `--` (the rest are positionals). An unknown flag or a
 * missing value is a UsageError.
 */
export function parseArgs(argv: string[], spec: FlagSpec): Parsed {
  const flags: Parsed["flags"] = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg === "-h") {
      flags.help = true;
      continue;
    }
    if (!arg.startsWith("--") || arg === "-") {
      if (arg.startsWith("-") && arg !== "-") throw new UsageError(`unknown option ${arg}`);
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const kind = name === "help" ? "boolean" : spec[name];
    if (kind === undefined) throw new UsageError(`unknown option --${name}`);
    if (kind === "boolean") {
      if (eq >= 0) throw new UsageError(`--${name} takes no value`);
      flags[name] = true;
      continue;
    }
    let value: string | undefined;
    if (eq >= 0) value = arg.slice(eq + 1);
    else if (i + 1 < argv.length) value = argv[++i];
    if (value === undefined) throw new UsageError(`--${name} needs a value`);
    flags[name] = value;
  }
  return { flags, positionals };
}

const MAX_KEY = (1n << 64n) - 1n;

/** A channel key written as decimal or 0x hex, 1 .. 2^64-1. */
export function parseKey(text: string, what = "key"): bigint {
  if (!/^(0[xX][0-9a-fA-F]+|[0-9]+)$/.test(text)) {
    throw new UsageError(`${what} "${text}" is not a number (decimal or 0x hex)`);
  }
  const key = BigInt(text);
  if (key < 1n || key > MAX_KEY) throw new UsageError(`${what} ${text} is out of range (1 .. 2^64-1)`);
  return key;
}

/** A non-negative integer option (decimal). */
export function parseCount(text: string, name: string, min = 0): number {
  if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(Number(text)) || Number(text) < min) {
    throw new UsageError(`--${name} must be an integer >= ${min}, not "${text}"`);
  }
  return Number(text);
}

/** A key as users write it: 0x hex. */
export const formatKey = (key: bigint) => `0x${key.toString(16)}`;
