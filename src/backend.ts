/**
 * The boundary between the runtime-neutral channel code and one runtime's
 * FFI and sockets: the C symbol table, the typed native surface derived from
 * it, and the Backend interface that backend_deno.ts, backend_bun.ts and
 * backend_node.ts implement.
 */

/**
 * The C functions bound, with their declarations (csrc/shmchan.h).
 * Argument types: "u64" is passed as a BigInt (keys, create/attach only),
 * "buffer" as a Uint8Array, every other integer as a plain number, so Deno
 * and Bun keep their fast-call paths on send and receive (under Node the
 * addon csrc/node/shmchan_node.c wraps each function with these types).
 */
export const SYMBOLS = {
  /** int shmc_create(uint64_t key, uint32_t delivery, uint32_t ring_entries, uint32_t max_msg_size, uint32_t mode, uint32_t flags); */
  shmc_create: { args: ["u64", "u32", "u32", "u32", "u32", "u32"], result: "i32" },
  /** int shmc_destroy(int owner); */
  shmc_destroy: { args: ["i32"], result: "i32" },
  /** int shmc_attach_key(uint64_t key, uint32_t access); */
  shmc_attach_key: { args: ["u64", "u32"], result: "i32" },
  /** int shmc_attach_id(int32_t channel_id, uint32_t access); */
  shmc_attach_id: { args: ["i32", "u32"], result: "i32" },
  /** int shmc_attach_key_owned(uint64_t key, uint32_t access, uint32_t owner_uid); */
  shmc_attach_key_owned: { args: ["u64", "u32", "u32"], result: "i32" },
  /** int shmc_attach_id_owned(int32_t channel_id, uint32_t access, uint32_t owner_uid); */
  shmc_attach_id_owned: { args: ["i32", "u32", "u32"], result: "i32" },
  /** int shmc_lookup_key(uint64_t key, uint64_t *out); — out: BigUint64Array(SHMC_LOOKUP_COUNT) */
  shmc_lookup_key: { args: ["u64", "buffer"], result: "i32" },
  /** int shmc_lookup_id(int32_t channel_id, uint64_t *out); */
  shmc_lookup_id: { args: ["i32", "buffer"], result: "i32" },
  /** int shmc_detach(int sub); */
  shmc_detach: { args: ["i32"], result: "i32" },
  /** int shmc_info(int handle, uint64_t *out); — out: BigUint64Array(SHMC_INFO_COUNT) */
  shmc_info: { args: ["i32", "buffer"], result: "i32" },
  /** int shmc_try_send(int handle, const void *buf, uint32_t len, uint32_t target); */
  shmc_try_send: { args: ["i32", "buffer", "u32", "u32"], result: "i32" },
  /** int shmc_try_recv(int handle, void *buf, uint32_t cap); */
  shmc_try_recv: { args: ["i32", "buffer", "u32"], result: "i32" },
  /** int shmc_try_send_many(int handle, const void *buf, const uint32_t *lens, uint32_t count, uint32_t target); */
  shmc_try_send_many: { args: ["i32", "buffer", "buffer", "u32", "u32"], result: "i32" },
  /** int shmc_try_recv_many(int handle, void *buf, uint32_t cap, uint32_t *lens, uint32_t max_count); */
  shmc_try_recv_many: { args: ["i32", "buffer", "u32", "buffer", "u32"], result: "i32" },
  /** int shmc_doorbell_path(int handle, uint32_t what, char *buf, uint32_t cap); */
  shmc_doorbell_path: { args: ["i32", "u32", "buffer", "u32"], result: "i32" },
  /** int shmc_doorbell_seal(int handle, uint32_t what); */
  shmc_doorbell_seal: { args: ["i32", "u32"], result: "i32" },
  /** int shmc_park(int handle, uint32_t what); */
  shmc_park: { args: ["i32", "u32"], result: "i32" },
  /** int shmc_unpark(int handle, uint32_t what); */
  shmc_unpark: { args: ["i32", "u32"], result: "i32" },
  /** int shmc_try_loan_at(int handle, uint32_t *offset); — offset: Uint32Array(1) */
  shmc_try_loan_at: { args: ["i32", "buffer"], result: "i32" },
  /** int shmc_commit(int handle, uint32_t len, uint32_t target); */
  shmc_commit: { args: ["i32", "u32", "u32"], result: "i32" },
  /** int shmc_abort(int handle); */
  shmc_abort: { args: ["i32"], result: "i32" },
  /** int shmc_try_recv_view_at(int handle, uint32_t *offset); — offset: Uint32Array(1) */
  shmc_try_recv_view_at: { args: ["i32", "buffer"], result: "i32" },
  /** int shmc_release(int handle); */
  shmc_release: { args: ["i32"], result: "i32" },
  /** int shmc_view_region(int handle, uint64_t *out); — out: BigUint64Array(3): address, length, token */
  shmc_view_region: { args: ["i32", "buffer"], result: "i32" },
  /** int shmc_view_region_drop(int token); */
  shmc_view_region_drop: { args: ["i32"], result: "i32" },
  /** int shmc_try_recv_park(int handle, void *buf, uint32_t cap, uint32_t flags); */
  shmc_try_recv_park: { args: ["i32", "buffer", "u32", "u32"], result: "i32" },
  /** int shmc_version(void); */
  shmc_version: { args: [], result: "i32" },
  /** int shmc_stats(int handle, uint64_t *out, uint32_t cap); — out: BigUint64Array(cap) */
  shmc_stats: { args: ["i32", "buffer", "u32"], result: "i32" },
  /** int shmc_stats_key(uint64_t key, uint64_t *out, uint32_t cap); */
  shmc_stats_key: { args: ["u64", "buffer", "u32"], result: "i32" },
  /** int shmc_stats_id(int32_t channel_id, uint64_t *out, uint32_t cap); */
  shmc_stats_id: { args: ["i32", "buffer", "u32"], result: "i32" },
  /** int shmc_list(uint64_t *out, uint32_t cap); — out: BigUint64Array(cap), rows of LIST.COUNT */
  shmc_list: { args: ["buffer", "u32"], result: "i32" },
  /** int shmc_remove_key(uint64_t key); */
  shmc_remove_key: { args: ["u64"], result: "i32" },
  /** int shmc_remove_id(int32_t channel_id); */
  shmc_remove_id: { args: ["i32"], result: "i32" },
  /** int shmc_gc(void); */
  shmc_gc: { args: [], result: "i32" },
} as const;

/** The argument and result types used in SYMBOLS. */
export type NativeType = "u64" | "u32" | "i32" | "buffer";

type JsArg<T> = T extends "u64" ? bigint : T extends "buffer" ? ArrayBufferView : number;
type JsArgs<A extends readonly NativeType[]> = { -readonly [I in keyof A]: JsArg<A[I]> };

/** The bound library as JavaScript sees it, derived from SYMBOLS. */
export type Native = {
  readonly [K in keyof typeof SYMBOLS]: (
    ...args: JsArgs<(typeof SYMBOLS)[K]["args"]>
  ) => number;
};

/* Constants from csrc/shmchan.h. */
export const SHMC_UNICAST = 0;
export const SHMC_BROADCAST = 1;
export const SHMC_MULTICAST = 2;
export const SHMC_F_PRIVATE = 1;
export const SHMC_SEND = 1;
export const SHMC_RECV = 2;
export const SHMC_BOTH = 3;
export const SHMC_MAX_RING_ENTRIES = 32768;
export const SHMC_MAX_MESSAGE_SIZE = 1048576;
export const SHMC_MAX_REGION = 2147483647;
export const SHMC_DOORBELL_PATH_MAX = 108;
export const SHMC_WAIT_RECV = 1;
export const SHMC_WAIT_SEND = 2;
export const SHMC_TAKE_UNPARK = 1;

/** Indices into the array that shmc_info() fills (enum shmc_info_field). */
export const INFO = {
  KEY: 0,
  CHANNEL_ID: 1,
  DELIVERY: 2,
  RING_ENTRIES: 3,
  MAX_MESSAGE_SIZE: 4,
  MEMBER_ID: 5,
  ACCESS: 6,
  IS_OWNER: 7,
  MODE: 8,
  FLAGS: 9,
  DROPPED: 10,
  SKIPPED: 11,
  OWNER_UID: 12,
  COUNT: 13,
} as const;

/** Indices into the array that shmc_lookup_key() fills (enum shmc_lookup_field), and its states. */
export const LOOKUP = {
  STATE: 0,
  OWNER_UID: 1,
  CREATOR_PID: 2,
  CHANNEL_ID: 3,
  COUNT: 4,
  LIVE: 1,
  STALE: 2,
  NOT_CHANNEL: 3,
  UNKNOWN: 4,
} as const;

/** Indices of shmc_stats()'s header (enum shmc_stats_field). */
export const STATS = {
  KEY: 0,
  CHANNEL_ID: 1,
  DELIVERY: 2,
  RING_ENTRIES: 3,
  MAX_MESSAGE_SIZE: 4,
  MODE: 5,
  FLAGS: 6,
  OWNER_UID: 7,
  CREATOR_PID: 8,
  MEMBERS: 9,
  WAITING: 10,
  TAIL: 11,
  SENT: 12,
  SENT_BYTES: 13,
  RECEIVED: 14,
  RECEIVED_BYTES: 15,
  FULL: 16,
  DROPPED: 17,
  SKIPPED: 18,
  PARKS: 19,
  WAKES: 20,
  ROWS: 21,
  COUNT: 22,
} as const;

/** Indices of each member row after the shmc_stats() header (enum shmc_member_stats_field). */
export const MSTATS = {
  ID: 0,
  SLOT: 1,
  PID: 2,
  UID: 3,
  ACCESS: 4,
  IS_OWNER: 5,
  ALIVE: 6,
  PARKED: 7,
  BEHIND: 8,
  SENT: 9,
  SENT_BYTES: 10,
  RECEIVED: 11,
  RECEIVED_BYTES: 12,
  FULL: 13,
  DROPPED: 14,
  SKIPPED: 15,
  PARKS: 16,
  WAKES: 17,
  COUNT: 18,
} as const;

/** Indices of each row of shmc_list() (enum shmc_list_field). */
export const LIST = {
  KEY: 0,
  CHANNEL_ID: 1,
  DELIVERY: 2,
  MODE: 3,
  FLAGS: 4,
  OWNER_UID: 5,
  CREATOR_PID: 6,
  MEMBERS: 7,
  RING_ENTRIES: 8,
  MAX_MESSAGE_SIZE: 9,
  WAITING: 10,
  COUNT: 11,
} as const;

/** A listening doorbell socket and the connections it accepted. */
export interface DoorbellSocket {
  /** Keep the process alive while the socket is open (waiters pending). */
  ref(): void;
  /** Let the process exit although the socket is open (nobody waits). */
  unref(): void;
  /** Stop reading (bytes queue up in the kernel) until resume(). */
  pause(): void;
  resume(): void;
  /** Stop listening and close every accepted connection. */
  close(): void;
}

/** The most connections a doorbell keeps; the oldest goes first (a waker reconnects). */
export const DOORBELL_MAX_CONNECTIONS = 128;

/** What the channel code needs from a runtime. */
export interface Backend {
  readonly runtime: "deno" | "bun" | "node";
  /** This process's id. */
  pid(): number;
  /** `<os>-<arch>` in Node's names: "linux-x64", "linux-arm64", "darwin-arm64", ... */
  platform(): string;
  /**
   * An environment variable: its value, undefined when unset (or explicitly
   * denied), null when the runtime's permissions hide it (Deno without
   * --allow-env).
   */
  env(name: string): string | undefined | null;
  /** Why this process may not dlopen `path` (Deno without --allow-ffi), or null. */
  ffiDenied(path: string): string | null;
  /** dlopen the library at `path` (throws the runtime's error on failure). */
  open(path: string): Native;
  /**
   * Listen on the Unix socket at `path` (a file system path, from
   * shmc_doorbell_path); call `onRing` whenever bytes arrive on an accepted
   * connection. Keeps at most DOORBELL_MAX_CONNECTIONS connections. The
   * socket starts unref'ed. Throws the runtime's error when it cannot listen.
   */
  listenDoorbell(path: string, onRing: () => void): DoorbellSocket;
  /** Let the process exit although this timer (from setTimeout) is pending. */
  unrefTimer(timer: ReturnType<typeof setTimeout>): void;
  /**
   * An ArrayBuffer over handle `h`'s view region (shmc_view_region), or the
   * negative errno. The runtime must call shmc_view_region_drop(token) once
   * the buffer is collected (and never before): only then may the region's
   * address range go back.
   */
  viewRegion(native: Native, h: number): ArrayBuffer | number;
}

/**
 * viewRegion for runtimes that make an ArrayBuffer from an address
 * (Deno, Bun): the region's address, length and token from C, the buffer
 * from `bufferAt`, and a FinalizationRegistry that drops the region once
 * the buffer is collected.
 */
export function regionFromAddress(
  native: Native,
  h: number,
  bufferAt: (address: bigint, length: number) => ArrayBuffer,
): ArrayBuffer | number {
  const out = new BigUint64Array(3);
  const rc = native.shmc_view_region(h, out);
  if (rc < 0) return rc;
  const buffer = bufferAt(out[0], Number(out[1]));
  droppedRegions.register(buffer, { native, token: Number(out[2]) });
  return buffer;
}

const droppedRegions = new FinalizationRegistry<{ native: Native; token: number }>(({ native, token }) => {
  native.shmc_view_region_drop(token);
});

/** SYMBOLS in a runtime's own shape, for dlopen. */
export function mapSymbols<T>(
  shape: (args: readonly NativeType[], result: NativeType) => T,
): Record<keyof typeof SYMBOLS, T> {
  const out = {} as Record<keyof typeof SYMBOLS, T>;
  for (const [name, decl] of Object.entries(SYMBOLS)) {
    out[name as keyof typeof SYMBOLS] = shape(decl.args, decl.result);
  }
  return out;
}
