/**
 * The Node.js backend: the Node-API addon shmchan_node.node (csrc/node/),
 * which dlopens the same libshmchan.so as Deno and Bun, and node:net for the
 * doorbell. Imported only under Node, through a specifier held in a variable.
 */
import { existsSync } from "node:fs";
import * as net from "node:net";
import process from "node:process";
import { type Backend, DOORBELL_MAX_CONNECTIONS, type DoorbellSocket, type Native, SYMBOLS } from "./backend.ts";

/** What the addon exports (csrc/node/shmchan_node.c). */
interface Addon {
  open(path: string): Native;
  /** Per C function, its argument types and result: "i32,buffer,u32,u32:i32". */
  signatures: Record<string, string>;
}

const fromRoot = (rel: string) => decodeURIComponent(new URL(`../${rel}`, import.meta.url).pathname);
const platform = () => `${process.platform}-${process.arch}`;

/**
 * The addon: the one built from source beside the C library (a checkout,
 * or a package built from source), else, in the compiled package, the
 * prebuilt one of this platform (scripts/prebuild.mjs, src/prebuilds.json).
 */
function addonPath(): string {
  const built = fromRoot("build/shmchan_node.node");
  if (import.meta.url.endsWith(".ts") || existsSync(built)) return built;
  return fromRoot(`prebuilds/${platform()}/shmchan_node.node`);
}

let addon: Addon | undefined;

function loadAddon(): Addon {
  if (addon) return addon;
  const ADDON_PATH = addonPath();
  const module = { exports: {} as Addon };
  try {
    process.dlopen(module, ADDON_PATH);
  } catch (cause) {
    throw new Error(`cannot load the Node addon ${ADDON_PATH}: ${(cause as Error)?.message ?? cause}`, { cause });
  }
  // An addon built from another version of SYMBOLS would mistake arguments.
  for (const [name, decl] of Object.entries(SYMBOLS)) {
    const want = `${decl.args.join(",")}:${decl.result}`;
    const got = module.exports.signatures?.[name];
    if (got !== want) {
      throw new Error(
        `the Node addon ${ADDON_PATH} does not match this version of shmchan ` +
          `(${name}: ${got ?? "missing"}, expected ${want}); rebuild it with \`npm run build\``,
      );
    }
  }
  return (addon = module.exports);
}

function open(path: string): Native {
  // A library that is not there is reported as dlopen reports it (the loader
  // then looks further), before the addon, which sits beside it, is needed.
  if (!existsSync(path)) throw new Error(`${path}: cannot open shared object file: No such file or directory`);
  return loadAddon().open(path);
}

function listenDoorbell(path: string, onRing: () => void): DoorbellSocket {
  const conns = new Set<net.Socket>();
  // Only the server keeps the process alive (while a waiter is pending);
  // connections never do, but their bytes still come in while it lives.
  let paused = false;
  const server = net.createServer((conn) => {
    // The oldest goes first: a waker whose connection was closed reconnects.
    if (conns.size >= DOORBELL_MAX_CONNECTIONS) {
      const oldest = conns.values().next().value!;
      conns.delete(oldest);
      oldest.destroy();
    }
    conns.add(conn);
    conn.unref();
    if (paused) conn.pause();
    // Any byte is a hint to retry the doorbell's waiters; the content is irrelevant.
    conn.on("data", onRing);
    conn.on("close", () => conns.delete(conn));
    // A reset connection: "close" follows; nothing else to do.
    conn.on("error", () => {});
  });
  // Bound in this process even in a cluster worker (`exclusive`), where the
  // primary would otherwise listen. Node binds at once but reports a failure
  // only on the next tick: it is detected here and thrown, as Deno and Bun
  // throw from listen (the late "error" event is then ignored).
  server.on("error", () => {});
  server.listen({ path, exclusive: true });
  if (!server.listening) {
    server.close();
    throw new Error(`cannot listen on the doorbell socket ${path}`);
  }
  server.unref();

  return {
    ref() {
      server.ref();
    },
    unref() {
      server.unref();
    },
    pause() {
      paused = true;
      for (const c of conns) c.pause();
    },
    resume() {
      paused = false;
      for (const c of conns) c.resume();
    },
    close() {
      server.close();
      for (const c of conns) c.destroy();
      conns.clear();
    },
  };
}

export const backend: Backend = {
  runtime: "node",
  pid: () => process.pid,
  platform,
  env: (name) => process.env[name],
  ffiDenied: () => null,
  open,
  listenDoorbell,
  unrefTimer: (timer) => void timer.unref(),
  // The addon makes the buffer itself (an external ArrayBuffer whose
  // finalizer drops the region): no address ever passes through JavaScript.
  viewRegion: (native, h) => (native as Native & { viewBuffer(h: number): ArrayBuffer | number }).viewBuffer(h),
};
