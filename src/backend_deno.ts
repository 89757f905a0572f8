/** The Deno backend: Deno.dlopen and Deno.listen. */
import {
  type Backend,
  DOORBELL_MAX_CONNECTIONS,
  type DoorbellSocket,
  mapSymbols,
  type Native,
  regionFromAddress,
} from "./backend.ts";

function env(name: string): string | undefined | null {
  // Read only with permission already granted: never prompt, never throw.
  const state = Deno.permissions.querySync({ name: "env", variable: name }).state;
  if (state === "granted") return Deno.env.get(name);
  return state === "denied" ? undefined : null;
}

function ffiDenied(path: string): string | null {
  if (Deno.permissions.querySync({ name: "ffi", path }).state === "granted") return null;
  return "run Deno with --allow-ffi (and --allow-net --allow-read=/tmp --allow-write=/tmp, for the sockets " +
    "that wake waiting receivers): loading the C library needs it; e.g. deno run --allow-ffi --allow-net " +
    "--allow-read=/tmp --allow-write=/tmp --allow-env=SHMCHAN_LIB app.ts";
}

/** Deno.build.arch in Node's names. */
const ARCH: Record<string, string> = { x86_64: "x64", aarch64: "arm64" };

function open(path: string): Native {
  const symbols = mapSymbols((args, result) => ({ parameters: [...args], result }));
  const lib = Deno.dlopen(path, symbols as Deno.ForeignLibraryInterface);
  return lib.symbols as unknown as Native;
}

function listenDoorbell(path: string, onRing: () => void): DoorbellSocket {
  const listener = Deno.listen({ transport: "unix", path });
  const conns = new Set<Deno.Conn>();
  let closed = false;
  // Only the listener's pending accept keeps the process alive (while a
  // waiter is pending); connections never do, but their bytes still come
  // in while it lives. So ref/unref is one call.
  /** While paused, the read loops wait for this to resolve. */
  let paused: { promise: Promise<void>; resolve: () => void } | undefined;
  listener.unref();

  const drop = (conn: Deno.Conn) => {
    conns.delete(conn);
    try {
      conn.close();
    } catch { /* already closed */ }
  };

  const serve = async (conn: Deno.Conn) => {
    const buf = new Uint8Array(256);
    try {
      // Any byte is a hint to retry the doorbell's waiters; the content is irrelevant.
      // The next read is issued after the microtasks that the ring queued
      // (a resolved recv()'s continuation): off the path to its reply.
      for (;;) {
        if (paused) await paused.promise;
        if ((await conn.read(buf)) === null) break;
        onRing();
        await undefined;
      }
    } catch {
      // A reset connection or our own close(): nothing to do.
    } finally {
      drop(conn);
    }
  };

  (async () => {
    try {
      for await (const conn of listener) {
        if (closed) {
          conn.close();
          break;
        }
        // The oldest goes first: a waker whose connection was closed reconnects.
        if (conns.size >= DOORBELL_MAX_CONNECTIONS) drop(conns.values().next().value!);
        conns.add(conn);
        conn.unref();
        serve(conn);
      }
    } catch {
      // The listener was closed.
    }
  })();

  return {
    ref() {
      listener.ref();
    },
    unref() {
      listener.unref();
    },
    pause() {
      if (paused) return;
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      paused = { promise, resolve };
    },
    resume() {
      const p = paused;
      paused = undefined;
      p?.resolve();
    },
    close() {
      closed = true;
      this.resume();
      try {
        listener.close();
      } catch { /* already closed */ }
      for (const c of [...conns]) drop(c);
    },
  };
}

export const backend: Backend = {
  runtime: "deno",
  pid: () => Deno.pid,
  platform: () => `${Deno.build.os}-${ARCH[Deno.build.arch] ?? Deno.build.arch}`,
  env,
  ffiDenied,
  open,
  listenDoorbell,
  unrefTimer: (timer) => Deno.unrefTimer(timer as unknown as number),
  viewRegion: (native, h) =>
    regionFromAddress(native, h, (address, length) => {
      const ptr = Deno.UnsafePointer.create(address);
      if (ptr === null) throw new Error("shmc_view_region gave a null address");
      return Deno.UnsafePointerView.getArrayBuffer(ptr, length);
    }),
};
