/**
 * Request/reply with targeted sends: clients send requests that carry the id
 * of their reply subscriber; the server answers each with a send targeted at
 * that id, so a reply reaches only the client that asked.
 *
 *   deno run --allow-ffi --allow-net --allow-read=/tmp --allow-write=/tmp --allow-env --allow-run examples/request_reply.ts
 *   bun run examples/request_reply.ts
 *   node examples/request_reply.ts
 */
import process from "node:process";
import { Channel } from "../mod.ts";
import { decode, keyFrom, runtime, spawnSame, waitAll } from "./_util.ts";

interface Request {
  replyTo: number;
  op: "upper" | "done";
  text?: string;
}

const [role, keyArg, name] = process.argv.slice(2);

if (role === "client") {
  const key = BigInt(keyArg);
  using requests = Channel.attach({ key }, "send");
  using replies = Channel.attach({ key: key + 1n }, "recv");
  for (const text of [`hello from ${name}`, "shared memory", "targeted reply"]) {
    await requests.send(JSON.stringify({ replyTo: replies.id, op: "upper", text } satisfies Request));
    console.log(`${name} asked "${text}", got "${decode(await replies.recv({ timeout: 30_000 }))}"`);
  }
  await requests.send(JSON.stringify({ replyTo: replies.id, op: "done" } satisfies Request));
} else {
  const key = keyFrom(undefined);
  using _requestChannel = Channel.create({ key });
  using replyChannel = Channel.create({ key: key + 1n });
  using requests = Channel.attach({ key }, "recv");
  const clients = ["client-a", "client-b"].map((n) => spawnSame(import.meta.url, ["client", String(key), n]));
  console.log(`server (${runtime}): serving on key ${key}`);
  let open = clients.length;
  while (open > 0) {
    const req = JSON.parse(decode(await requests.recv({ timeout: 30_000 }))) as Request;
    if (req.op === "done") open--;
    else await replyChannel.send(req.text!.toUpperCase(), { target: req.replyTo });
  }
  await waitAll(clients);
}
