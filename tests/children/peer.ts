/**
 * A child process for the cross-process tests; runs under Deno, Bun or Node.
 * Usage: peer.ts <command> <key> [args...]; it writes one JSON object per
 * stdout line and exits by itself (every wait has a timeout).
 *
 *   attach <key> <access>          try to attach: {ok, id} or {ok: false, code}
 *   attach-why <key> [owner]       try to attach "recv" (owned by [owner]): {ok} or {ok: false, code, message}
 *   create-why <key>               try to create (and destroy): {ok} or {ok: false, code, message}
 *   remove-why <key>               try Channel.remove: {ok} or {ok: false, code, message}
 *   recv <key> <count>             attach "recv", {ready, id}, receive <count>: {messages}
 *   recv-forever <key>             attach "recv", {ready, id}, one recv() without a timeout: {message}
 *   recv-until-stop <key>          attach "recv", {ready, id}, for-await until "STOP": {messages}
 *   send <key> <msg>...            attach "send", send each (waiting for room): {sent}
 *   send-to <key> <target> <msg>   targeted send: {sent}
 *   send-later <key> <ms> <msg>    attach "send", {ready}, wait <ms>, send: {sent}
 *   stage-dead-writer <key> <pid>  make the member of the (dead) process <pid> look as
 *                                  if it died between claiming the next position and
 *                                  publishing it (csrc/DESIGN.md §7), by writing the
 *                                  channel's files (unicast): {position}
 *   create <key> <delivery> [mode] create, {ready, id}, then stay alive until killed
 *   stay <key> <access>            attach, {ready, id}, then stay alive (never reading) until killed
 *   echo <key>                     attach "both", {ready, id}; answer {"from", "body"} requests
 *                                  with a send targeted at "from"; stop on body "STOP"
 *   detach-pending <key>           a recv() pending when detach() runs: {code}, then exit by itself
 *   idle-cpu <key> <ms> [ready]    park in recv() for <ms> ms (first {ready, id} if asked): {code, cpuMs}
 *   cluster-recv <key>             Node only: fork a node:cluster worker that attaches "recv",
 *                                  {ready, id}, and parks in recv() (spin 0): {message};
 *                                  then the primary {workerExit} once it disconnects
 *   consume <key>                  attach "recv", {ready}, then receive as fast as it can
 *                                  until killed, reporting nothing
 *   flood <key> <producer>         attach "send", {ready}, then send checksummed messages
 *                                  (see floodMessage) as fast as it can until killed
 *   loan-send <key> <msg>...       attach "send", send each through a loan (waiting for
 *                                  room), written in place: {sent}
 *   view-recv <key> <count>        attach "recv", {ready, id}, receive <count> through
 *                                  views (copied out, then released): {messages}
 *   hold-loan <key>                attach "send", loan a slot, write "POISON" into it,
 *                                  {ready}, then stay alive (never committing) until killed
 *   hold-view <key>                attach "recv", {ready, id}, take one message as a view,
 *                                  {held}, then stay alive (never releasing) until killed
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
 * Offsets in the channel's files (csrc/layout.h): the descriptor `id`, the
 * member files m<i>, dat's header and slot headers, ctl's slot states.
 */
const DESC = { ringEntries: 16, slotStride: 24, start: 56 };
const MEMBER = { pid: 28, claim: 128, claimN: 136 };
const DAT = { tail: 64, slots: 128, len: 8, target: 12 };
const CTL = { qslots: 256 + 64 * 64, qslotSize: 64 };
const WRITING = 1n;
const U64 = (1n << 64n) - 1n;

/** See the usage above; returns the position left unpublished. */
function stageDeadWriter(pid: number): string {
  const dir = `/dev/shm/shmchan.${key.toString(16).padStart(16, "0")}`;
  const file = (name: string) => {
    const fd = openSync(`${dir}/${name}`, "r+");
    return {
      read(off: number, n: number) {
        const b = Buffer.alloc(n);
        readSync(fd, b, 0, n, off);
        return b;
      },
      write(off: number, b: Buffer) {
        writeSync(fd, b, 0, b.length, off);
      },
      close: () => closeSync(fd),
    };
  };
  const u32 = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    return b;
  };
  const u64 = (v: bigint) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(v & U64);
    return b;
  };
  const id = file("id"), ctl = file("ctl"), dat = file("dat");
  try {
    const desc = id.read(0, 64);
    const entries = BigInt(desc.readUInt32LE(DESC.ringEntries));
    const stride = desc.readUInt32LE(DESC.slotStride);
    const start = desc.readBigUInt64LE(DESC.start);
    const name = readdirSync(dir).find((f) => {
      if (!/^m\d+$/.test(f)) return false;
      const m = file(f);
      try {
        return m.read(MEMBER.pid, 4).readUInt32LE() === pid;
      } finally {
        m.close();
      }
    });
    if (!name) throw new Error(`no member of pid ${pid}`);
    const member = file(name);
    try {
      const t = dat.read(DAT.tail, 8).readBigUInt64LE();
      const slot = Number(t % entries);
      // Slot words are relative to the slot's first position (DESIGN.md §6).
      const first = start + ((t - start) & (entries - 1n));
      // The claim steps in order: record the claim, take the position, mark it.
      member.write(MEMBER.claim, u64(t));
      member.write(MEMBER.claimN, u32(1));
      dat.write(DAT.tail, u64(t + 1n));
      const hdr = DAT.slots + slot * stride;
      dat.write(hdr + DAT.target, u32(0));
      dat.write(hdr + DAT.len, u32(5));
      ctl.write(CTL.qslots + slot * CTL.qslotSize, u64(t * 4n + WRITING - first * 4n));
      return String(t);
    } finally {
      member.close();
    }
  } finally {
    id.close();
    ctl.close();
    dat.close();
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
    case "remove-why": {
      try {
        Channel.remove({ key });
        out({ ok: true });
      } catch (err) {
        out({ ok: false, code: (err as ChannelError).code ?? String(err), message: String((err as Error).message) });
      }
      return;
    }
    case "attach-why":
    case "create-why": {
      // The error's whole message, for the cases that must say whose a key is.
      try {
        if (command === "create-why") Channel.create({ key }).destroy();
        else Channel.attach({ key, owner: rest[0] === undefined ? undefined : Number(rest[0]) }, "recv").detach();
        out({ ok: true });
      } catch (err) {
        out({ ok: false, code: (err as ChannelError).code ?? String(err), message: String((err as Error).message) });
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
    case "loan-send": {
      using sub = Channel.attach({ key }, "send");
      const encoder = new TextEncoder();
      let sent = 0;
      for (const msg of rest) {
        using loan = await sub.loan(WAIT);
        const { written } = encoder.encodeInto(msg, loan.bytes);
        loan.commit(written);
        sent++;
      }
      out({ sent });
      return;
    }
    case "view-recv": {
      using sub = Channel.attach({ key }, "recv");
      out({ ready: true, id: sub.id });
      const messages: string[] = [];
      for (let i = 0; i < Number(rest[0]); i++) {
        using view = await sub.recvView(WAIT);
        messages.push(decode(view.bytes));
      }
      out({ messages });
      return;
    }
    case "hold-loan": {
      const sub = Channel.attach({ key }, "send");
      const loan = sub.tryLoan();
      new TextEncoder().encodeInto("POISON", loan.bytes);
      out({ ready: true });
      (globalThis as { keep?: unknown }).keep = [sub, loan];
      setInterval(() => {}, 1 << 30);
      return;
    }
    case "hold-view": {
      const sub = Channel.attach({ key }, "recv");
      out({ ready: true, id: sub.id });
      const view = await sub.recvView(WAIT);
      out({ held: decode(view.bytes) });
      (globalThis as { keep?: unknown }).keep = [sub, view];
      setInterval(() => {}, 1 << 30);
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
      out({ position: stageDeadWriter(Number(rest[0])) });
      return;
    }
    case "send-to": {
      using sub = Channel.attach({ key }, "send");
      await sub.send(rest[1], { ...WAIT, target: Number(rest[0]) });
      out({ sent: 1 });
      return;
    }
    case "create": {
      const mode = rest[1] === undefined ? undefined : Number(rest[1]);
      const ch = Channel.create({ key, delivery: (rest[0] ?? "unicast") as "unicast", mode });
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
      if (rest[1] === "ready") out({ ready: true, id: sub.id });
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
