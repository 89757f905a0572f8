/**
 * Waiting without waste: spin when it is likely to pay, else park on this
 * process's doorbell at once (csrc/DESIGN.md §4, "Adaptive spinning").
 *
 * The handshake (csrc/shmchan.h, "event-loop integration"):
 *   1. try the operation; when SpinPolicy says so, keep trying for a short,
 *      bounded spin;
 *   2. shmc_park(h, what): 1 means the condition already holds (retry now),
 *      0 means parked: whoever next sends (or frees a slot) writes one byte
 *      to the handle's doorbell socket for that direction;
 *   3. on any byte, retry the pending waiters of that doorbell (bytes are only
 *      hints) and park again those that still find nothing;
 *   4. a waiter that ends (done, timeout, abort, detach) withdraws its park
 *      with shmc_unpark once no other waiter of its handle needs it.
 * A doorbell is a Unix socket in the channel's directory, one per handle and
 * direction, created on the handle's first park in that direction
 * (shmc_doorbell_path, listen, shmc_doorbell_seal: only those who may wake
 * it can connect) and closed with the handle. It keeps the process alive
 * only while a waiter of it is pending. A flood of bytes costs bounded CPU
 * (csrc/DESIGN.md §8): bytes that arrive together are one retry, and a
 * doorbell whose retries found nothing too often stops reading for the rest
 * of a 100 ms window.
 */
import type { DoorbellSocket } from "./backend.ts";
import { SHMC_DOORBELL_PATH_MAX, SHMC_WAIT_SEND } from "./backend.ts";
import { ChannelError, check } from "./errors.ts";
import { backend, lib } from "./library.ts";

/** Options of every waiting call. */
export interface WaitOptions {
  /** Milliseconds to wait before rejecting with ETIMEDOUT; default: forever. */
  timeout?: number;
  /** Rejects with `signal.reason` when aborted. */
  signal?: AbortSignal;
  /**
   * Microseconds to keep retrying before parking, every time (0 parks at
   * once). By default a wait spins up to 30 µs only when recent waits say
   * that is likely to pay, and otherwise parks at once.
   */
  spin?: number;
}

/** The adaptive spin: how long a wait spins when the rule says spin (µs). */
const SPIN_US = 30;
/** Longest setTimeout delay; longer timeouts re-arm. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Park/retry rounds in one go before yielding to the event loop. */
const MAX_PARK_ROUNDS = 64;
/**
 * A receiver that a doorbell byte found with nothing to take is polled again
 * this much later (ms): a slot left half-written by a dead sender is skipped
 * only when seen stalled twice, 10 ms apart (csrc/DESIGN.md §5), and nothing
 * else would ring again.
 */
const STALL_RETRY_MS = 25;
/**
 * A sender that has waited this long for room with no doorbell byte is
 * polled, and again at this interval (ms): a dead broadcast receiver that
 * gates the ring frees nothing and rings nobody. (C's blocking calls sleep in
 * 100 ms steps for the same reason.) Receivers never poll.
 */
const SEND_PROBE_MS = 100;
/**
 * A parked receiver re-checks this often (ms) in any case: the bound on a wake
 * that a participant suppressed by rewriting the shared wait words, or that
 * could not be delivered (csrc/DESIGN.md §4). One timer per process, unref'd.
 */
const RECHECK_MS = 1000;
/** A doorbell's flood bound: retries that found nothing, per window (ms). */
const FLOOD_WINDOW_MS = 100;
const FLOOD_MAX_IDLE_RINGS = 64;

/** Credit ceiling; a hit adds 1, a miss takes 2. */
const CREDIT_MAX = 8;
const CREDIT_MISS = 2;
/** Probes grow to one in this many waits while spins miss. */
const PROBE_GAP_MAX = 256;
/** Traffic is dense when waits start on average at most this far apart (µs). */
const DENSE_PERIOD_US = SPIN_US;
/** Weight of a new sample in the mean period. */
const PERIOD_WEIGHT = 1 / 64;

/**
 * Spinning that did not pay, bounded per process: at most `capUs` banked,
 * refilled by `refill` of the wall time that passes, drawn on by each miss.
 */
export class MissBudget {
  readonly capUs: number;
  readonly refill: number;
  #us: number;
  #at = -Infinity;
  constructor(capUs = 50_000, refill = 0.01) {
    this.capUs = capUs;
    this.refill = refill;
    this.#us = capUs;
  }
  /** Whether spinning may go on at `now` (ms). */
  allows(now: number): boolean {
    if (this.#at !== -Infinity) this.#us = Math.min(this.capUs, this.#us + (now - this.#at) * 1000 * this.refill);
    this.#at = now;
    return this.#us > 0;
  }
  spend(us: number): void {
    this.#us -= us;
  }
}

/** The process's miss budget (JS is single-threaded: one spin at a time). */
const processMissBudget = new MissBudget();

/**
 * When a wait spins (csrc/DESIGN.md §4, "Adaptive spinning"): one per handle
 * and direction. budget() is asked once per wait whose first try found
 * nothing; record() is told how the spin it allowed ended.
 */
export class SpinPolicy {
  /** Recent spins paid while > 0. */
  #credit = CREDIT_MAX;
  /** Mean µs between the starts of successive waits. */
  #period = 2 * SPIN_US;
  #lastStart = -Infinity;
  /** µs the last wait spun. */
  #lastSpun = 0;
  /** Waits between probes, and waits left until the next one. */
  #probeGap = 1;
  #untilProbe = 0;
  readonly #misses: MissBudget;

  constructor(misses: MissBudget = processMissBudget) {
    this.#misses = misses;
  }

  /** Microseconds to spin before parking, for a wait starting at `now` (ms). */
  budget(now: number): number {
    if (this.#lastStart !== -Infinity) {
      // Time between wait starts, less this handle's own spinning in it.
      const sample = Math.min(Math.max(0, (now - this.#lastStart) * 1000 - this.#lastSpun), 1e6);
      this.#period += (sample - this.#period) * PERIOD_WEIGHT;
    }
    this.#lastStart = now;
    this.#lastSpun = 0;
    if (!this.#misses.allows(now)) return 0;
    if (this.#credit > 0 || this.#period <= DENSE_PERIOD_US) return SPIN_US;
    if (--this.#untilProbe > 0) return 0;
    return SPIN_US; // a probe
  }

  /** The spin found what it waited for (`hit`), or spun `spunUs` in vain. */
  record(hit: boolean, spunUs: number): void {
    this.#lastSpun = spunUs;
    if (hit) {
      this.#credit = Math.min(CREDIT_MAX, this.#credit + 1);
      this.#probeGap = 1;
      this.#untilProbe = 0;
      return;
    }
    this.#misses.spend(spunUs);
    if (this.#credit === 0 && this.#untilProbe <= 0) {
      this.#probeGap = Math.min(PROBE_GAP_MAX, this.#probeGap * 2); // a probe missed
    }
    this.#credit = Math.max(0, this.#credit - CREDIT_MISS);
    if (this.#credit === 0) this.#untilProbe = this.#probeGap;
  }
}

/** A waiting operation on one handle. */
interface Waiter {
  readonly h: number;
  readonly what: number;
  /** When the process's probe timer should poll it (performance.now() ms); Infinity: never. */
  probeAt: number;
  /** Retry; park when it would still wait. `rung`: after a doorbell byte. True when it completed. */
  poll(rung: boolean): boolean;
  /** End with an error (detach, destroy); the handle is still open. */
  fail(err: unknown): void;
}

const waiters = new Set<Waiter>();
/** Pending waiters per (handle, what): the park is withdrawn at zero. */
const parkCounts = new Map<number, number>();

/** A handle's doorbell for one direction. */
interface Doorbell {
  readonly sock: DoorbellSocket;
  /** Retries in this window that found nothing, and when the window began. */
  idleRings: number;
  windowStart: number;
  /** Stopped reading until this timer resumes it (a flood). */
  resumeTimer?: ReturnType<typeof setTimeout>;
}
/** Doorbells by parkKey(h, what). */
const doorbells = new Map<number, Doorbell>();

/** The process's one probe timer (see probeLater), and when it fires. */
let probeTimer: ReturnType<typeof setTimeout> | undefined;
let probeTimerAt = Infinity;

/** Makes sure the probe timer fires by `at` (performance.now() ms). */
function probeBy(at: number): void {
  if (probeTimer !== undefined) {
    if (probeTimerAt <= at) return;
    clearTimeout(probeTimer);
  }
  probeTimerAt = at;
  probeTimer = setTimeout(runProbes, Math.max(0, at - performance.now()));
  backend.unrefTimer(probeTimer);
}

/** Polls the waiters whose probe is due; re-arms for the next one, if any. */
function runProbes(): void {
  probeTimer = undefined;
  probeTimerAt = Infinity;
  const now = performance.now();
  let next = Infinity;
  for (const w of [...waiters]) {
    if (!waiters.has(w)) continue;
    if (w.probeAt <= now) {
      w.probeAt = Infinity;
      w.poll(false);
    }
    if (waiters.has(w)) next = Math.min(next, w.probeAt);
  }
  if (next !== Infinity) probeBy(next);
}

const parkKey = (h: number, what: number) => h * 4 + what;

/** Bytes arrived on doorbell `k`: retry its waiters; bound what a flood costs. */
function ring(k: number): void {
  const bell = doorbells.get(k);
  if (!bell || bell.resumeTimer !== undefined) return;
  let completed = false;
  // Retry in arrival order; a waiter that completes leaves the set.
  for (const w of [...waiters]) {
    if (waiters.has(w) && parkKey(w.h, w.what) === k && w.poll(true)) completed = true;
  }
  if (completed) return;
  const now = performance.now();
  if (now - bell.windowStart >= FLOOD_WINDOW_MS) {
    bell.windowStart = now;
    bell.idleRings = 0;
  }
  if (++bell.idleRings <= FLOOD_MAX_IDLE_RINGS) return;
  // Rung far more often than anything came: stop reading for the rest of the
  // window; then read what is pending and retry once.
  bell.sock.pause();
  bell.resumeTimer = setTimeout(() => {
    bell.resumeTimer = undefined;
    bell.windowStart = performance.now();
    bell.idleRings = 0;
    bell.sock.resume();
    if (doorbells.get(k) === bell) ring(k);
  }, Math.max(1, bell.windowStart + FLOOD_WINDOW_MS - now));
}

/** The doorbell of handle `h` for `what`, created on first use. */
function ensureDoorbell(h: number, what: number): Doorbell {
  const k = parkKey(h, what);
  const known = doorbells.get(k);
  if (known) return known;
  const native = lib();
  const buf = new Uint8Array(SHMC_DOORBELL_PATH_MAX);
  let sock: DoorbellSocket | undefined;
  for (let attempt = 0; !sock; attempt++) {
    const n = check(native.shmc_doorbell_path(h, what, buf, buf.length), "doorbell");
    const path = new TextDecoder().decode(buf.subarray(0, n));
    try {
      // A failure is the runtime's own error (e.g. Deno without --allow-write).
      sock = backend.listenDoorbell(path, () => ring(k));
    } catch (err) {
      // The channel may have left lookup (renamed) since the path was made.
      if (attempt > 0) throw err;
    }
  }
  const rc = native.shmc_doorbell_seal(h, what);
  if (rc < 0) {
    sock.close();
    check(rc, "doorbell");
  }
  const bell: Doorbell = { sock, idleRings: 0, windowStart: -Infinity };
  doorbells.set(k, bell);
  return bell;
}

/** Closes handle `h`'s doorbells (before the handle is closed: C removes their sockets). */
export function closeDoorbells(h: number): void {
  for (const what of [1, 2]) {
    const k = parkKey(h, what);
    const bell = doorbells.get(k);
    if (!bell) continue;
    doorbells.delete(k);
    if (bell.resumeTimer !== undefined) clearTimeout(bell.resumeTimer);
    bell.sock.close();
  }
}

function register(w: Waiter): void {
  const bell = ensureDoorbell(w.h, w.what);
  waiters.add(w);
  const k = parkKey(w.h, w.what);
  const n = (parkCounts.get(k) ?? 0) + 1;
  parkCounts.set(k, n);
  if (n === 1) bell.sock.ref();
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
    doorbells.get(k)?.sock.unref();
  }
}

/** Rejects every waiter of handle `h` (before it is closed). */
export function failWaiters(h: number, err: () => unknown): void {
  for (const w of [...waiters]) {
    if (w.h === h) w.fail(err());
  }
}

/** Validates WaitOptions; returns [timeout ms or Infinity, signal, spin µs or undefined: adaptive]. */
function waitOptions(opts: WaitOptions | undefined): [number, AbortSignal | undefined, number | undefined] {
  if (opts === undefined) return [Infinity, undefined, undefined];
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
  let us: number | undefined;
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
 * `policy` decides the spin (unless `opts.spin` forces one) and learns from
 * it. `keepAlive` (the handle object) stays reachable while the wait is
 * pending.
 */
export function waitFor<T>(
  h: number,
  what: number,
  retryCode: number,
  op: string,
  attempt: () => number,
  finish: (rc: number) => T,
  opts: WaitOptions | undefined,
  policy: SpinPolicy,
  keepAlive: object,
): Promise<T> {
  let timeoutMs: number, signal: AbortSignal | undefined, forcedSpin: number | undefined;
  try {
    [timeoutMs, signal, forcedSpin] = waitOptions(opts);
  } catch (err) {
    return Promise.reject(err);
  }
  if (signal?.aborted) return Promise.reject(signal.reason);

  // 1. Try; then spin for a bounded time if forced, or if the policy says so.
  let rc = attempt();
  if (rc === retryCode && timeoutMs > 0) {
    const start = performance.now();
    const spinUs = forcedSpin ?? policy.budget(start);
    if (spinUs > 0) {
      const deadline = start + spinUs / 1000;
      let now = start;
      do rc = attempt(); while (rc === retryCode && (now = performance.now()) < deadline);
      if (forcedSpin === undefined) policy.record(rc !== retryCode, (now - start) * 1000);
    }
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
    let done = false;

    const end = () => {
      done = true;
      unregister(waiter);
      if (timer !== undefined) clearTimeout(timer);
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
      probeAt: Infinity,
      poll(rung: boolean) {
        if (done) return false;
        for (let round = 0; round < MAX_PARK_ROUNDS; round++) {
          // A fresh wait has just tried (and maybe spun): park first, which
          // re-checks after publishing the park.
          if (!fresh || round > 0) {
            const r = attempt();
            if (r !== retryCode) {
              complete(r);
              return true;
            }
          }
          fresh = false;
          const parked = lib().shmc_park(h, what);
          if (parked < 0) {
            complete(parked);
            return true;
          }
          if (parked === 0) {
            // Parked. Slow paths only when something looks stalled, and a
            // receiver's re-check once a second in any case.
            if (what === SHMC_WAIT_SEND) probeAfter(SEND_PROBE_MS);
            else probeAfter(rung ? STALL_RETRY_MS : RECHECK_MS);
            return false;
          }
          // parked === 1: the condition holds already; try again.
        }
        // Others keep taking what we are woken for: yield, then go on.
        probeAfter(0);
        return false;
      },
      fail(err: unknown) {
        if (done) return;
        end();
        reject(err);
      },
    };
    let fresh = true;
    const probeAfter = (ms: number) => {
      const at = performance.now() + ms;
      // A sender's probe moves on with every poll (it made no progress till now).
      if (what === SHMC_WAIT_SEND || at < waiter.probeAt) waiter.probeAt = at;
      probeBy(waiter.probeAt);
    };

    try {
      register(waiter);
    } catch (err) {
      done = true;
      return reject(err);
    }
    if (timeoutMs !== Infinity) arm(timeoutMs);
    signal?.addEventListener("abort", onAbort, { once: true });
    waiter.poll(false);
  });
}
