/** The Deno backend: Deno.dlopen and Deno.listen. */
import { type Backend, type DoorbellSocket, mapSymbols, type Native } from "./backend.ts";

function env(name: string): string | undefined {
  // Read only with permission already granted: never prompt, never throw.
  const state = Deno.permissions.querySync?.({ name: "env", variable: name });
  if (state?.state !== "granted") return undefined;
  return Deno.env.get(name);
}

function open(path: string): Native {
  const symbols = mapSymbols((args, result) => ({ parameters: [...args], result }));
  const lib = Deno.dlopen(path, symbols as Deno.ForeignLibraryInterface);
  return lib.symbols as unknown as Native;
}

function listenDoorbell(name: string, onRing: () => void): DoorbellSocket {
  const listener = Deno.listen({ transport: "unix", path: "\0" + name });
  const conns = new Set<Deno.Conn>();
  let referenced = false;
  let closed = false;
  listener.unref();

  const serve = async (conn: Deno.Conn) => {
    const buf = new Uint8Array(256);
    try {
      // Any byte is a hint to retry every waiter; the content is irrelevant.
      while ((await conn.read(buf)) !== null) onRing();
    } catch {
      // A reset connection or our own close(): nothing to do.
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch { /* already closed */ }
    }
  };

  (async () => {
    try {
      for await (const conn of listener) {
        if (closed) {
          conn.close();
          break;
        }
        conns.add(conn);
        if (!referenced) conn.unref();
        serve(conn);
      }
    } catch {
      // The listener was closed.
    }
  })();

  return {
    ref() {
      referenced = true;
      listener.ref();
      for (const c of conns) c.ref();
    },
    unref() {
      referenced = false;
      listener.unref();
      for (const c of conns) c.unref();
    },
    close() {
      closed = true;
      try {
        listener.close();
      } catch { /* already closed */ }
      for (const c of conns) {
        try {
          c.close();
        } catch { /* already closed */ }
      }
      conns.clear();
    },
  };
}

export const backend: Backend = {
  runtime: "deno",
  pid: () => Deno.pid,
  env,
  open,
  listenDoorbell,
  unrefTimer: (timer) => Deno.unrefTimer(timer as unknown as number),
};
