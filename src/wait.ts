/**
 * Waiting without waste: spin briefly, then park on this process's doorbell.
 *
 * The handshake (csrc/shmchan.h, "event-loop integration"):
 *   1. try the operation; for a short, bounded spin keep trying;
 *   2. shmc_park(h, what): 1 means the condition already holds (retry now),
 *      0 means parked: whoever next sends (or frees a slot) writes one byte
 *      to this process's doorbell socket;
 *   3. on any byte, retry every pending waiter of the process (bytes are only
 *      hints) and park again those that still find nothing;
 *   4. a waiter that ends (done, timeout, abort, detach) withdraws its park
 *      with shmc_unpark once no other waiter of its handle needs it.
 * The doorbell is one abstract Unix socket per process, created on the first
 * park. It keeps the process alive only while a waiter is pending.
 */
import type { DoorbellSocket } from "./backend.ts";
import { SHMC_DOORBELL_MAX, SHMC_WAIT_SEND } from "./backend.ts";
import { ChannelError, check, errnoOf } from "./errors.ts";
import { backend, lib } from "./library.ts";

/** Options of every waiting call. */
export interface WaitOptions {
  /** Milliseconds to wait before rejecting with ETIMEDOUT; default: forever. */
  timeout?: number;
  /** Rejects with `signal.reason` when aborted. */
  signal?: AbortSignal;
  /**
   * Microseconds to keep retrying before parking (default 30; 0 parks at
   * once). Spinning saves the wakeup (~5–30 µs) when a peer answers fast.
   */
  spin?: number;
}

/** Default spin before parking, in microseconds. */
const DEFAULT_SPIN_US = 30;
/** Longest setTimeout delay; longer timeouts re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Park/retry rounds in one go before yielding to the event loop. */
const MAX_PARK_ROUNDS = 64;
/**
 * A ring that finds nothing is retried once this much later (ms): a slot left
 * half-written by a dead sender is skipped only when seen stalled twice,
 * 10 ms apart (csrc/DESIGN.md §5), and nothing else would ring again.
 */
const STALL_RETRY_MS = 25;
/**
 * A sender waiting for room retries this often (ms): a dead broadcast
 * receiver that gates the ring frees nothing and rings nobody. (C's blocking
 * calls sleep in 100 ms steps for the same reason.) Receivers never poll.
 */
const SEND_PROBE_MS = 100;

/** A waiting operation on one handle. */
interface Waiter {
  readonly h: number;
  readonly what: number;
  /** Retry; park when it would still wait. `rung`: after a doorbell byte. */
  poll(rung: boolean): void;
  /** End with an error (detach, destroy); the handle is still open. */
  fail(err: unknown): void;
}

const waiters = new Set<Waiter>();
/** Pending waiters per (handle, what): the park is withdrawn at zero. */
const parkCounts = new Map<number, number>();
let doorbell: DoorbellSocket | undefined;

const parkKey = (h: number, what: number) => h * 4 + what;

function ring(): void {
  // Retry in arrival order; a waiter that completes leaves the set.
  for (const w of [...waiters]) if (waiters.has(w)) w.poll(true);
}

function ensureDoorbell(): void {
  if (doorbell) return;
  const random = new Uint8Array(8);
  crypto.getRandomValues(random);
  const hex = Array.from(random, (b) => b.toString(16).padStart(2, "0")).join("");
  const name = `shmchan.${backend.pid()}.${hex}`;
  const bytes = new TextEncoder().encode(name);
  if (bytes.length > SHMC_DOORBELL_MAX) throw new ChannelError(errnoOf("EINVAL"), "doorbell name too long");
  // A failure here is the runtime's own error (e.g. Deno without --allow-net).
  const sock = backend.listenDoorbell(name, ring);
  const rc = lib().shmc_set_doorbell(bytes, bytes.length);
  if (rc < 0) {
    sock.close();
    check(rc, "shmc_set_doorbell");
  }
  doorbell = sock;
}

function register(w: Waiter): void {
  ensureDoorbell();
  waiters.add(w);
  const k = parkKey(w.h, w.what);
  parkCounts.set(k, (parkCounts.get(k) ?? 0) + 1);
  if (waiters.size === 1) doorbell!.ref();
}

/** Removes a waiter; withdraws the park when it was its handle's last. */
function unregister(w: Waiter): void {
  if (!waiters.delete(w)) return;
  const k = parkKey(w.h, w.what);
  const n = (parkCounts.get(k) ?? 1) - 1;
  if (n > 0) {
    parkCounts.set(k, n);
  } else {
    parkCounts.delete(k);
    lib().shmc_unpark(w.h, w.what);
  }
  if (waiters.size === 0) doorbell?.unref();
}

/** Rejects every waiter of handle `h` (before it is closed). */
export function failWaiters(h: number, err: () => unknown): void {
  for (const w of [...waiters]) {
    if (w.h === h) w.fail(err());
  }
}

/** Validates WaitOptions; returns [timeout ms or Infinity, signal, spin µs]. */
function waitOptions(opts: WaitOptions | undefined): [number, AbortSignal | undefined, number] {
  if (opts === undefined) return [Infinity, undefined, DEFAULT_SPIN_US];
  if (typeof opts !== "object" || opts === null) throw new TypeError("options must be an object");
  const { timeout, signal, spin } = opts;
  let ms = Infinity;
  if (timeout !== undefined) {
    if (typeof timeout !== "number") throw new TypeError("timeout must be a number of milliseconds");
    if (!(timeout >= 0)) throw ChannelError.of("EINVAL", "timeout must be >= 0 milliseconds");
    ms = timeout;
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError("signal must be an AbortSignal");
  }
  let us = DEFAULT_SPIN_US;
  if (spin !== undefined) {
    if (typeof spin !== "number") throw new TypeError("spin must be a number of microseconds");
    if (!(spin >= 0 && spin <= 1e6)) throw ChannelError.of("EINVAL", "spin must be 0 .. 1000000 microseconds");
    us = spin;
  }
  return [ms, signal, us];
}

/**
 * Waits until `attempt()` returns something other than `retryCode`, then
 * resolves with `finish(rc)` (called synchronously, so it may read a scratch
 * buffer that the next attempt would overwrite) or rejects for rc < 0.
 * `keepAlive` (the handle object) stays reachable while the wait is pending.
 */
export function waitFor<T>(
  h: number,
  what: number,
  retryCode: number,
  op: string,
  attempt: () => number,
  finish: (rc: number) => T,
  opts: WaitOptions | undefined,
  keepAlive: object,
): Promise<T> {
  let timeoutMs: number, signal: AbortSignal | undefined, spinUs: number;
  try {
    [timeoutMs, signal, spinUs] = waitOptions(opts);
  } catch (err) {
    return Promise.reject(err);
  }
  if (signal?.aborted) return Promise.reject(signal.reason);

  // 1. Try, then spin for a bounded time.
  let rc = attempt();
  if (rc === retryCode && spinUs > 0 && timeoutMs > 0) {
    const deadline = performance.now() + spinUs / 1000;
    do rc = attempt(); while (rc === retryCode && performance.now() < deadline);
  }
  if (rc !== retryCode) {
    try {
      return Promise.resolve(finish(check(rc, op)));
    } catch (err) {
      return Promise.reject(err);
    }
  }
  if (timeoutMs === 0) return Promise.reject(ChannelError.of("ETIMEDOUT", `timed out (${op})`));

  // 2. Park and wait for the doorbell.
  return new Promise<T>((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let retryTimer: ReturnType<typeof setTimeout> | undefined;
    let probeTimer: ReturnType<typeof setInterval> | undefined;
    let done = false;

    const end = () => {
      done = true;
      unregister(waiter);
      if (timer !== undefined) clearTimeout(timer);
      if (retryTimer !== undefined) clearTimeout(retryTimer);
      if (probeTimer !== undefined) clearInterval(probeTimer);
      signal?.removeEventListener("abort", onAbort);
      void keepAlive;
    };
    const complete = (result: number) => {
      end();
      try {
        resolve(finish(check(result, op)));
      } catch (err) {
        reject(err);
      }
    };
    const onAbort = () => {
      if (done) return;
      end();
      reject(signal!.reason);
    };
    const onTimeout = () => {
      if (done) return;
      // A last try: a message may have arrived with its doorbell byte unread.
      const last = attempt();
      if (last !== retryCode) return complete(last);
      end();
      reject(ChannelError.of("ETIMEDOUT", `timed out (${op})`));
    };
    const arm = (remaining: number) => {
      const delay = Math.min(remaining, MAX_TIMER_MS);
      timer = setTimeout(() => (remaining > delay ? arm(remaining - delay) : onTimeout()), delay);
    };

    const waiter: Waiter = {
      h,
      what,
      poll(rung: boolean) {
        if (done) return;
        for (let round = 0; round < MAX_PARK_ROUNDS; round++) {
          const r = attempt();
          if (r !== retryCode) return complete(r);
          const parked = lib().shmc_park(h, what);
          if (parked < 0) return complete(parked);
          if (parked === 0) {
            if (rung) retryLater(STALL_RETRY_MS);
            return;
          }
          // parked === 1: the condition holds already; try again.
        }
        // Others keep taking what we are woken for: yield, then go on.
        retryLater(0);
      },
      fail(err: unknown) {
        if (done) return;
        end();
        reject(err);
      },
    };

    const retryLater = (ms: number) => {
      if (retryTimer !== undefined) return;
      retryTimer = setTimeout(() => {
        retryTimer = undefined;
        waiter.poll(false);
      }, ms);
    };

    try {
      register(waiter);
    } catch (err) {
      done = true;
      return reject(err);
    }
    if (timeoutMs !== Infinity) arm(timeoutMs);
    if (what === SHMC_WAIT_SEND) probeTimer = setInterval(() => waiter.poll(false), SEND_PROBE_MS);
    signal?.addEventListener("abort", onAbort, { once: true });
    waiter.poll(false);
  });
}
