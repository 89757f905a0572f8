/**
 * A child process for the cross-process tests; runs under Deno, Bun or Node.
 * Usage: peer.ts <command> <key> [args...]; it writes one JSON object per
 * stdout line and exits by itself (every wait has a timeout).
 *
 *   attach <key> <access>          try to attach: {ok, id} or {ok: false, code}
 *   recv <key> <count>             attach "recv", {ready, id}, receive <count>: {messages}
 *   recv-forever <key>             attach "recv", {ready, id}, one recv() without a timeout: {message}
 *   recv-until-stop <key>          attach "recv", {ready, id}, for-await until "STOP": {messages}
 *   send <key> <msg>...            attach "send", send each (waiting for room): {sent}
 *   send-to <key> <target> <msg>   targeted send: {sent}
 *   send-later <key> <ms> <msg>    attach "send", {ready}, wait <ms>, send: {sent}
 *   stage-dead-writer <key> <channel id> <pid>
 *                                  make the member of the (dead) process <pid> look as
 *                                  if it died between claiming the next position and
 *                                  publishing it (csrc/DESIGN.md §3), by writing the
 *                                  control segment: {position}
 *   create <key> <delivery>        create, {ready, id}, then stay alive until killed
 *   stay <key> <access>            attach, {ready, id}, then stay alive (never reading) until killed
 *   echo <key>                     attach "both", {ready, id}; answer {"from", "body"} requests
 *                                  with a send targeted at "from"; stop on body "STOP"
 *   detach-pending <key>           a recv() pending when detach() runs: {code}, then exit by itself
 *   idle-cpu <key> <ms>            park in recv() for <ms> ms: {code, cpuMs}
 *   cluster-recv <key>             Node only: fork a node:cluster worker that attaches "recv",
 *                                  {ready, id}, and parks in recv() (spin 0): {message};
 *                                  then the primary {workerExit} once it disconnects
 *   consume <key>                  attach "recv", {ready}, then receive as fast as it can
 *                                  until killed, reporting nothing
 *   flood <key> <producer>         attach "send", {ready}, then send checksummed messages
 *                                  (see floodMessage) as fast as it can until killed
 */
import { Buffer } from "node:buffer";
import { closeSync, openSync, readdirSync, readSync, writeSync } from "node:fs";
import process from "node:process";
import { Channel, ChannelError } from "../../mod.ts";
import { floodMessage } from "../flood.ts";

const WAIT = { timeout: 15_000 };
const out = (value: Record<string, unknown>) => console.log(JSON.stringify(value));
const decode = (b: Uint8Array) => new TextDecoder().decode(b);
const toKey = (s: string) => BigInt(s);

const [command, keyArg, ...rest] = process.argv.slice(2);
const key = toKey(keyArg ?? "0");

/**
 * Offsets in the control segment (csrc/layout.h; the header records where
 * the member table and the slots start).
 */
const CTL = { ringEntries: 16, membersOffset: 68, slotsOffset: 72, tail: 128, memberSize: 192, slotSize: 64 };
const MEMBER = { pid: 12, claim: 32, claimN: 80 };
const SLOT = { seq: 0, target: 8, writer: 12, len: 16 };
const WRITING = 1n;

/** See the usage above; returns the position left unpublished. */
function stageDeadWriter(channelId: number, pid: number): string {
  const name = readdirSync("/dev/shm").find((f) => f.startsWith(`shmchan.${channelId}.`) && f.endsWith(".c"));
  if (!name) throw new Error(`no control segment for channel ${channelId}`);
  const fd = openSync(`/dev/shm/${name}`, "r+");
  try {
    const read = (off: number, n: number) => {
      const b = Buffer.alloc(n);
      readSync(fd, b, 0, n, off);
      return b;
    };
    const write = (off: number, b: Buffer) => writeSync(fd, b, 0, b.length, off);
    const u32 = (v: number) => {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(v);
      return b;
    };
    const u64 = (v: bigint) => {
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(v);
      return b;
    };
    const hdr = read(0, CTL.tail + 8);
    const entries = BigInt(hdr.readUInt32LE(CTL.ringEntries));
    const members = hdr.readUInt32LE(CTL.membersOffset), slots = hdr.readUInt32LE(CTL.slotsOffset);
    let idx = -1;
    for (let i = 0; i < 64 && idx < 0; i++) {
      if (read(members + i * CTL.memberSize + MEMBER.pid, 4).readUInt32LE() === pid) idx = i;
    }
    if (idx < 0) throw new Error(`no member of pid ${pid}`);
    const t = hdr.readBigUInt64LE(CTL.tail);
    const m = members + idx * CTL.memberSize;
    const s = slots + Number(t % entries) * CTL.slotSize;
    // The claim steps in order: record the claim, take the position, mark it.
    write(m + MEMBER.claim, u64(t));
    write(m + MEMBER.claimN, u32(1));
    write(CTL.tail, u64(t + 1n));
    write(s + SLOT.target, u32(0));
    write(s + SLOT.writer, u32(idx + 1));
    write(s + SLOT.len, u32(5));
    write(s + SLOT.seq, u64(t * 4n + WRITING));
    return String(t);
  } finally {
    closeSync(fd);
  }
}

async function main(): Promise<void> {
  switch (command) {
    case "attach": {
      try {
        const sub = Channel.attach({ key }, rest[0] as "send" | "recv" | "both");
        out({ ok: true, id: sub.id });
        sub.detach();
      } catch (err) {
        out({ ok: false, code: (err as ChannelError).code ?? String(err) });
      }
      return;
    }
    case "recv": {
      using sub = Channel.attach({ key }, "recv");
      out({ ready: true, id: sub.id });
      const messages: string[] = [];
      for (let i = 0; i < Number(rest[0]); i++) messages.push(decode(await sub.recv(WAIT)));
      out({ messages });
      return;
    }
    case "recv-forever": {
      // Nothing but the pending recv() keeps this process alive.
      using sub = Channel.attach({ key }, "recv");
      out({ ready: true, id: sub.id });
      out({ message: decode(await sub.recv()) });
      return;
    }
    case "recv-until-stop": {
      using sub = Channel.attach({ key }, "recv");
      out({ ready: true, id: sub.id });
      const messages: string[] = [];
      const timer = setTimeout(() => sub.detach(), WAIT.timeout);
      for await (const msg of sub) {
        const s = decode(msg);
        if (s === "STOP") break;
        messages.push(s);
      }
      clearTimeout(timer);
      out({ messages });
      return;
    }
    case "send": {
      using sub = Channel.attach({ key }, "send");
      let sent = 0;
      for (const msg of rest) {
        await sub.send(msg, WAIT);
        sent++;
      }
      out({ sent });
      return;
    }
    case "send-later": {
      using sub = Channel.attach({ key }, "send");
      out({ ready: true });
      await new Promise((resolve) => setTimeout(resolve, Number(rest[0])));
      out({ sent: await sub.send(rest[1], WAIT) });
      return;
    }
    case "stage-dead-writer": {
      out({ position: stageDeadWriter(Number(rest[0]), Number(rest[1])) });
      return;
    }
    case "send-to": {
      using sub = Channel.attach({ key }, "send");
      await sub.send(rest[1], { ...WAIT, target: Number(rest[0]) });
      out({ sent: 1 });
      return;
    }
    case "create": {
      const ch = Channel.create({ key, delivery: (rest[0] ?? "unicast") as "unicast" });
      out({ ready: true, id: ch.id });
      (globalThis as { keep?: unknown }).keep = ch;
      setInterval(() => {}, 1 << 30); // stay alive until killed
      return;
    }
    case "stay": {
      const sub = Channel.attach({ key }, rest[0] as "send" | "recv" | "both");
      out({ ready: true, id: sub.id });
      // Stay alive until killed. A global keeps `sub` reachable: an
      // unreachable subscriber is detached by the garbage collector.
      (globalThis as { keep?: unknown }).keep = sub;
      setInterval(() => {}, 1 << 30);
      return;
    }
    case "echo": {
      using sub = Channel.attach({ key }, "both");
      out({ ready: true, id: sub.id });
      let served = 0;
      for (;;) {
        const req = JSON.parse(decode(await sub.recv(WAIT))) as { from: number; body: string };
        if (req.body === "STOP") break;
        await sub.send(JSON.stringify({ echo: req.body, by: sub.id }), { ...WAIT, target: req.from });
        served++;
      }
      out({ served });
      return;
    }
    case "detach-pending": {
      const sub = Channel.attach({ key }, "recv");
      const pending = sub.recv();
      setTimeout(() => sub.detach(), 50);
      try {
        await pending;
        out({ code: "resolved" });
      } catch (err) {
        out({ code: (err as ChannelError).code ?? String(err) });
      }
      return; // nothing keeps the process alive now: it must exit by itself
    }
    case "cluster-recv": {
      const { default: cluster } = await import("node:cluster");
      if (cluster.isPrimary) {
        const worker = cluster.fork();
        out({ workerExit: await new Promise((resolve) => worker.on("exit", resolve)) });
        return;
      }
      // The worker's doorbell must be its own, not the primary's.
      using sub = Channel.attach({ key }, "recv");
      const pending = sub.recv({ ...WAIT, spin: 0 });
      out({ ready: true, id: sub.id });
      out({ message: decode(await pending) });
      cluster.worker!.disconnect();
      return;
    }
    case "consume": {
      const sub = Channel.attach({ key }, "recv");
      (globalThis as { keep?: unknown }).keep = sub;
      out({ ready: true });
      for (;;) await sub.recv();
    }
    case "flood": {
      const sub = Channel.attach({ key }, "send");
      (globalThis as { keep?: unknown }).keep = sub;
      const producer = Number(rest[0]);
      out({ ready: true });
      for (let seq = 0;; seq++) await sub.send(floodMessage(producer, seq), WAIT);
    }
    case "idle-cpu": {
      using sub = Channel.attach({ key }, "recv");
      const before = process.cpuUsage();
      let code = "resolved";
      try {
        await sub.recv({ timeout: Number(rest[0]) });
      } catch (err) {
        code = (err as ChannelError).code ?? String(err);
      }
      const used = process.cpuUsage(before);
      out({ code, cpuMs: (used.user + used.system) / 1000 });
      return;
    }
    default:
      throw new Error(`unknown command ${command}`);
  }
}

main().catch((err) => {
  out({ error: String(err), code: (err as ChannelError)?.code });
  process.exitCode = 1;
});
