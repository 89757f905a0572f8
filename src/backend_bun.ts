/**
 * The Bun backend: bun:ffi and Bun.listen. This module is imported only under
 * Bun, through a specifier held in a variable so Deno's checker never sees it.
 */
import type { Socket } from "bun";
import {
  type Backend,
  DOORBELL_MAX_CONNECTIONS,
  type DoorbellSocket,
  mapSymbols,
  type Native,
  regionFromAddress,
} from "./backend.ts";

const FFI_MODULE = "bun:ffi";
const ffi: typeof import("bun:ffi") = await import(FFI_MODULE);

function open(path: string): Native {
  const symbols = mapSymbols((args, result) => ({
    args: [...args] as import("bun:ffi").FFITypeOrString[],
    returns: result as import("bun:ffi").FFITypeOrString,
  }));
  const lib = ffi.dlopen(path, symbols);
  return lib.symbols as unknown as Native;
}

function listenDoorbell(path: string, onRing: () => void): DoorbellSocket {
  const conns = new Set<Socket<undefined>>();
  // Only the listener keeps the process alive (while a waiter is pending);
  // connections never do, but their bytes still come in while it lives.
  let paused = false;
  const listener = Bun.listen<undefined>({
    unix: path,
    socket: {
      open(conn) {
        // The oldest goes first: a waker whose connection was closed reconnects.
        if (conns.size >= DOORBELL_MAX_CONNECTIONS) {
          const oldest = conns.values().next().value!;
          conns.delete(oldest);
          oldest.end();
        }
        conns.add(conn);
        conn.unref();
        if (paused) conn.pause();
      },
      // Any byte is a hint to retry the doorbell's waiters; the content is irrelevant.
      data() {
        onRing();
      },
      close(conn) {
        conns.delete(conn);
      },
      error(conn) {
        conns.delete(conn);
      },
    },
  });
  listener.unref();

  return {
    ref() {
      listener.ref();
    },
    unref() {
      listener.unref();
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
      listener.stop(true);
      conns.clear();
    },
  };
}

export const backend: Backend = {
  runtime: "bun",
  pid: () => process.pid,
  platform: () => `${process.platform}-${process.arch}`,
  env: (name) => process.env[name],
  ffiDenied: () => null,
  open,
  listenDoorbell,
  unrefTimer: (timer) => (timer as unknown as { unref(): void }).unref(),
  viewRegion: (native, h) =>
    regionFromAddress(
      native,
      h,
      (address, length) => ffi.toArrayBuffer(Number(address) as import("bun:ffi").Pointer, 0, length),
    ),
};
