/**
 * The attacker of tests/attack.test.ts: runs as another uid (setpriv), under
 * Node whatever runtime runs the suite (the victim's runtime is the one under
 * test), and does not use the library. One JSON line per command.
 *
 *   connect <path>                 connect to a Unix socket: {code}
 *   list <dir>                     list a directory: {code}
 *   flood <path> <ms> <conns>      open <conns> connections (as many as it may) and
 *                                  write to them as fast as it can for <ms> ms:
 *                                  {code, conns, bytes}
 *   truncate <path>                truncate a file to 0 bytes: {code}
 */
import { readdirSync, truncateSync } from "node:fs";
import * as net from "node:net";
import process from "node:process";

const out = (value: Record<string, unknown>) => console.log(JSON.stringify(value));
const codeOf = (err: unknown) => (err as { code?: string })?.code ?? String(err);
const [command, path, ...rest] = process.argv.slice(2);

function connect(p: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ path: p });
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}

async function main(): Promise<void> {
  switch (command) {
    case "connect": {
      try {
        (await connect(path)).destroy();
        out({ code: "ok" });
      } catch (err) {
        out({ code: codeOf(err) });
      }
      return;
    }
    case "list": {
      try {
        readdirSync(path);
        out({ code: "ok" });
      } catch (err) {
        out({ code: codeOf(err) });
      }
      return;
    }
    case "truncate": {
      try {
        truncateSync(path, 0);
        out({ code: "ok" });
      } catch (err) {
        out({ code: codeOf(err) });
      }
      return;
    }
    case "flood": {
      const until = Date.now() + Number(rest[0]);
      const socks: net.Socket[] = [];
      let code = "ok", bytes = 0;
      for (let i = 0; i < Number(rest[1]); i++) {
        try {
          const s = await connect(path);
          s.on("error", () => {});
          socks.push(s);
        } catch (err) {
          code = codeOf(err);
          if (socks.length === 0) break;
        }
      }
      const chunk = new Uint8Array(64).fill(33);
      while (Date.now() < until && socks.length) {
        for (const s of socks) {
          if (!s.destroyed && s.write(chunk)) bytes += chunk.length;
        }
        await new Promise((r) => setImmediate(r));
      }
      for (const s of socks) s.destroy();
      out({ code, conns: socks.length, bytes });
      return;
    }
    default:
      throw new Error(`unknown command ${command}`);
  }
}

main().catch((err) => {
  out({ error: String(err), code: codeOf(err) });
  process.exitCode = 1;
});
