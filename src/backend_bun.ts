/**
 * The Bun backend: bun:ffi and Bun.listen. This module is imported only under
 * Bun, through a specifier held in a variable so Deno's checker never sees it.
 */
import type { Socket } from "bun";
import { type Backend, type DoorbellSocket, mapSymbols, type Native } from "./backend.ts";

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

function listenDoorbell(name: string, onRing: () => void): DoorbellSocket {
  const conns = new Set<Socket<undefined>>();
  // Only the listener keeps the process alive (while a waiter is pending);
  // connections never do, but their bytes still come in while it lives.
  const listener = Bun.listen<undefined>({
    unix: "\0" + name,
    socket: {
      open(conn) {
        conns.add(conn);
        conn.unref();
      },
      // Any byte is a hint to retry every waiter; the content is irrelevant.
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
};
