// `npm run demo`: a Node.js producer and three consumers (Deno, Bun and
// Node.js), each its own process, sharing one broadcast channel. Exits by itself.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (rt) => join(root, "node_modules", ".bin", rt);
const key = (randomBytes(8).readBigUInt64BE() >> 2n) + 1n;
const colors = { producer: 33, "deno-consumer": 36, "bun-consumer": 35, "node-consumer": 32 };

function start(name, rt, script, args) {
  const argv = rt === "deno"
    ? ["run", "--allow-ffi", "--allow-net", "--allow-read=/tmp", "--allow-write=/tmp", script, ...args]
    : rt === "bun"
    ? ["run", script, ...args]
    : [script, ...args];
  const child = spawn(bin(rt), argv, { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  const tag = process.stdout.isTTY ? `\x1b[${colors[name]}m[${name}]\x1b[0m` : `[${name}]`;
  for (const stream of [child.stdout, child.stderr]) {
    let buf = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        console.log(`${tag} ${line}`);
        if (name === "producer" && line.includes("waiting for")) child.emit("ready");
      }
    });
  }
  const exited = new Promise((resolve) => child.on("close", (code) => resolve(code ?? 1)));
  return { child, exited };
}

const consumers = [
  ["deno-consumer", "deno"],
  ["bun-consumer", "bun"],
  ["node-consumer", "node"],
];
console.log(`shmchan demo: key ${key}, one Node.js producer, ${consumers.length} consumers (Deno, Bun, Node.js)\n`);
const producer = start("producer", "node", "examples/producer.ts", [String(key), String(consumers.length), "5"]);
const guard = setTimeout(() => {
  console.error("demo: timed out");
  process.exit(1);
}, 60_000);

await Promise.race([new Promise((resolve) => producer.child.once("ready", resolve)), producer.exited]);
const started = consumers.map(([name, rt]) => start(name, rt, "examples/consumer.ts", [String(key), name]));
const codes = await Promise.all([producer.exited, ...started.map((c) => c.exited)]);
clearTimeout(guard);
const ok = codes.every((c) => c === 0);
console.log(ok ? "\ndemo: all processes exited cleanly" : `\ndemo: exit codes ${codes.join(", ")}`);
process.exitCode = ok ? 0 : 1;
