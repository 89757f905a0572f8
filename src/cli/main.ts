/**
 * The `shmchan` command: a dispatcher over subcommands, each in its own
 * module, loaded only when it runs (so `bridge` alone loads the NATS client).
 *
 * Exit status: 0 success, 1 failure (one line on stderr saying why), 2 bad
 * usage. Every subcommand takes `--help`.
 *
 * A subcommand module exports `summary` (one line for `shmchan --help`),
 * `help` (its usage text) and `run(args, io)`, which resolves with the exit
 * status, throws a UsageError for bad usage, and any other error for a
 * failure. To add one, add its module to COMMANDS.
 */
import process from "node:process";
import { createInterface } from "node:readline";
import { UsageError } from "./args.ts";

/** Where a subcommand writes and what it reads from its environment. */
export interface Io {
  /** One line (or block) to standard output. */
  out(text: string): void;
  /** One line (or block) to standard error. */
  err(text: string): void;
  /** Environment variables. */
  env: Record<string, string | undefined>;
  /**
   * Resolves with the signal's name when the user asks the command to stop
   * (SIGINT, SIGTERM). Calling it takes those signals over: only a command
   * that ends by itself on them should.
   */
  interrupted(): Promise<string>;
  /** Standard input, line by line (without the newlines). */
  lines(): AsyncIterable<string>;
  /** Whether standard output is a terminal (watch redraws in place there). */
  tty: boolean;
}

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** What a subcommand module exports. */
export interface Command {
  summary: string;
  help: string;
  run(args: string[], io: Io): Promise<number>;
}

/** The subcommands, loaded on demand. */
const COMMANDS: Record<string, () => Promise<Command>> = {
  ls: () => import("./ls.ts"),
  stat: () => import("./stat.ts"),
  watch: () => import("./watch.ts"),
  tail: () => import("./tail.ts"),
  send: () => import("./send.ts"),
  rm: () => import("./rm.ts"),
  gc: () => import("./gc.ts"),
  bridge: () => import("./bridge.ts"),
};

/** One line of an error, for stderr. */
export function oneLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split("\n")[0];
}

async function usage(): Promise<string> {
  const lines = ["usage: shmchan <command> [options]   (shmchan <command> --help for each)", "", "commands:"];
  for (const [name, load] of Object.entries(COMMANDS)) {
    const cmd = await load().catch(() => undefined);
    lines.push(`  ${name.padEnd(8)} ${cmd?.summary ?? ""}`);
  }
  lines.push("", "exit status: 0 ok, 1 failure (the reason on stderr), 2 bad usage");
  return lines.join("\n");
}

/** Runs `shmchan <argv>`; resolves with the exit status. */
export async function main(argv: string[], io: Io = processIo()): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    if (name === undefined) {
      io.err(await usage());
      return EXIT_USAGE;
    }
    io.out(await usage());
    return EXIT_OK;
  }
  const load = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (load === undefined) {
    io.err(`shmchan: unknown command "${name}" (shmchan --help lists them)`);
    return EXIT_USAGE;
  }
  let cmd: Command;
  try {
    cmd = await load();
  } catch (err) {
    io.err(`shmchan ${name}: ${oneLine(err)}`);
    return EXIT_FAILURE;
  }
  try {
    return await cmd.run(rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`shmchan ${name}: ${err.message} (shmchan ${name} --help)`);
      return EXIT_USAGE;
    }
    io.err(`shmchan ${name}: ${oneLine(err)}`);
    return EXIT_FAILURE;
  }
}

/** The real process: stdout, stderr, environment and signals. */
export function processIo(): Io {
  let interrupted: Promise<string> | undefined;
  return {
    out: (text) => void process.stdout.write(text + "\n"),
    err: (text) => void process.stderr.write(text + "\n"),
    env: process.env,
    interrupted: () => (interrupted ??= new Promise<string>((resolve) => {
      process.once("SIGINT", () => resolve("SIGINT"));
      process.once("SIGTERM", () => resolve("SIGTERM"));
    })),
    lines: () => createInterface({ input: process.stdin, crlfDelay: Infinity }),
    tty: process.stdout.isTTY === true,
  };
}
