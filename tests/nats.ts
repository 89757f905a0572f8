/**
 * A real nats-server for the bridge tests (Debian's `nats-server` package;
 * .ci/run installs it), started on a free port of its own, and optionally a
 * pair of network namespaces joined by a veth pair, as two hosts. Every
 * server and namespace made here is removed when the test ends, and at exit
 * if a test failed before it could.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as net from "node:net";
import process from "node:process";
import { sleep } from "./helpers.ts";

const servers = new Set<NatsServer>();
const namespaces = new Set<string>();

process.on("exit", () => {
  for (const s of servers) s.kill();
  for (const ns of namespaces) spawnSync("ip", ["netns", "del", ns], { stdio: "ignore" });
});

/** Why no nats-server can run here, or null when one can. */
export function natsServerMissing(): string | null {
  const r = spawnSync("nats-server", ["--version"], { encoding: "utf8" });
  if (r.error || r.status !== 0) return "nats-server is not installed (apt-get install nats-server)";
  return null;
}

/** A free TCP port on `host` (the kernel's choice; another process could take it before us). */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface ServerOptions {
  /** Address to listen on; default 127.0.0.1. */
  host?: string;
  /** Require these credentials. */
  user?: string;
  pass?: string;
  /** Run inside this network namespace (the port is then any high port). */
  netns?: string;
  /** Enable JetStream, storing in a fresh directory that restarts keep. */
  jetstream?: boolean;
}

/** One nats-server process; restart() starts it again on the same port. */
export class NatsServer {
  readonly host: string;
  readonly port: number;
  readonly options: ServerOptions;
  #child?: ChildProcess;
  #log = "";
  #storeDir?: string;

  private constructor(port: number, options: ServerOptions) {
    this.host = options.host ?? "127.0.0.1";
    this.port = port;
    this.options = options;
    if (options.jetstream) this.#storeDir = mkdtempSync(join(tmpdir(), "shmchan-js-"));
  }

  /** Starts a server on a free port and waits until it is ready. */
  static async start(options: ServerOptions = {}): Promise<NatsServer> {
    let lastError: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      const port = options.netns ? 20000 + Math.floor(Math.random() * 40000) : await freePort(options.host);
      const s = new NatsServer(port, options);
      servers.add(s);
      try {
        await s.#spawn();
        return s;
      } catch (err) {
        lastError = err;
        await s.dispose();
      }
    }
    throw lastError;
  }

  /** nats://host:port, with the credentials if `withCredentials`. */
  url(withCredentials = false): string {
    const { user, pass } = this.options;
    const cred = withCredentials && user !== undefined ? `${user}:${pass ?? ""}@` : "";
    return `nats://${cred}${this.host}:${this.port}`;
  }

  get log(): string {
    return this.#log;
  }

  #spawn(): Promise<void> {
    const args = ["-a", this.host, "-p", String(this.port)];
    if (this.options.user !== undefined) args.push("--user", this.options.user, "--pass", this.options.pass ?? "");
    if (this.#storeDir !== undefined) args.push("-js", "-sd", this.#storeDir);
    const [cmd, argv] = this.options.netns
      ? ["ip", ["netns", "exec", this.options.netns, "nats-server", ...args]]
      : ["nats-server", args];
    const child = spawn(cmd, argv as string[], { stdio: ["ignore", "ignore", "pipe"] });
    this.#child = child;
    this.#log = "";
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nats-server not ready after 10 s:\n${this.#log}`)), 10_000);
      child.stderr!.setEncoding("utf8");
      child.stderr!.on("data", (chunk: string) => {
        this.#log += chunk;
        if (this.#log.includes("Server is ready")) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`nats-server exited (${code ?? signal}):\n${this.#log}`));
      });
      child.on("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  /** Kills the server (SIGKILL: whatever it holds is lost) and waits for it to go. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGKILL");
    await gone;
  }

  /** Kills the server, waits `downMs`, starts it again on the same port. */
  async restart(downMs = 0): Promise<void> {
    await this.stop();
    if (downMs > 0) await sleep(downMs);
    for (let attempt = 0;; attempt++) {
      try {
        await this.#spawn();
        return;
      } catch (err) {
        if (attempt >= 20) throw err; // the port may take a moment to be free again
        await sleep(100);
      }
    }
  }

  /** Kills without waiting (for the exit handler). */
  kill(): void {
    if (this.#child && this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill("SIGKILL");
  }

  /** Stops the server for good. */
  async dispose(): Promise<void> {
    await this.stop();
    servers.delete(this);
    if (this.#storeDir !== undefined) rmSync(this.#storeDir, { recursive: true, force: true });
  }
}

/** Two network namespaces joined by a veth pair, as two hosts. */
export interface TwoHosts {
  a: { netns: string; address: string };
  b: { netns: string; address: string };
  /** Deletes both namespaces (and so the veth pair). */
  dispose(): void;
}

function ip(args: string[]): void {
  const r = spawnSync("ip", args, { encoding: "utf8" });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`ip ${args.join(" ")}: ${r.stderr.trim()}`);
}

/**
 * Makes two hosts, or returns why it cannot (not root, no `ip`, no
 * namespaces in this sandbox). Addresses are from 192.0.2.0/24, a range
 * reserved for documentation, on a link that only these namespaces see.
 */
export function makeTwoHosts(): TwoHosts | string {
  if (typeof process.getuid !== "function" || process.getuid() !== 0) return "not root (ip netns needs it)";
  const probe = spawnSync("ip", ["-V"], { stdio: "ignore" });
  if (probe.error || probe.status !== 0) return "iproute2 (ip) is not installed";
  const tag = Math.random().toString(16).slice(2, 8);
  const a = `shmchan-a-${tag}`, b = `shmchan-b-${tag}`;
  const va = `shca${tag}`, vb = `shcb${tag}`;
  const made: string[] = [];
  const dispose = () => {
    for (const ns of made) {
      spawnSync("ip", ["netns", "del", ns], { stdio: "ignore" });
      namespaces.delete(ns);
    }
    made.length = 0;
  };
  try {
    for (const ns of [a, b]) {
      ip(["netns", "add", ns]);
      made.push(ns);
      namespaces.add(ns);
    }
    ip(["link", "add", va, "type", "veth", "peer", "name", vb]);
    ip(["link", "set", va, "netns", a]);
    ip(["link", "set", vb, "netns", b]);
    ip(["-n", a, "addr", "add", "192.0.2.1/24", "dev", va]);
    ip(["-n", b, "addr", "add", "192.0.2.2/24", "dev", vb]);
    for (const [ns, dev] of [[a, va], [b, vb]]) {
      ip(["-n", ns, "link", "set", "lo", "up"]);
      ip(["-n", ns, "link", "set", dev, "up"]);
    }
  } catch (err) {
    spawnSync("ip", ["link", "del", va], { stdio: "ignore" });
    dispose();
    return `network namespaces unavailable here (${(err as Error).message})`;
  }
  return { a: { netns: a, address: "192.0.2.1" }, b: { netns: b, address: "192.0.2.2" }, dispose };
}
