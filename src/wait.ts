/**
 * Waiting without waste: spin when it is likely to pay, else park on this
 * the handle's doorbell at once (csrc/DESIGN.md §4, "Adaptive spinning").
 *
 * The handshake (csrc/shmchan.h, "event-loop integration"):
 *   1. try the operation; when SpinPolicy says so, keep trying for a short,
 *      bounded spin;
 *   2. park: whoever next sends (or frees a slot) writes one byte to the
 *      handle's doorbell socket for that direction. A receive tries and
 *      parks in one native call (shmc_try_recv_park); a send tries, then
 *      calls shmc_park (1: the condition already holds, retry now; 0:
 *      parked);
 *   3. on any byte, retry the pending waiters of that doorbell (bytes are only
 *      hints) and park again those that still find nothing;
 *   4. a waiter that ends (done, timeout, abort, detach) withdraws its park
 *      once no other waiter of its handle needs it: a receive that takes its
 *      message does so in the same call (SHMC_TAKE_UNPARK), anything else
 *      with shmc_unpark.
 * A wait that the rule says should not spin goes straight to step 2: a
 * message that is there is taken by that same call. So a parked receive
 * costs two native calls per message: one that parks, one that takes.
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
import { SHMC_DOORBELL_PATH_MAX, SHMC_WAIT_RECV, SHMC_WAIT_SEND } from "./backend.ts";
import { ChannelError, check, errnoOf } from "./errors.ts";
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
const PROBE_GAP_MAX = 1024;
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
    this.#us = this.#refilled(now);
    this.#at = now;
    return this.#us > 0;
  }
  /** What allows(now) would say, changing nothing. */
  wouldAllow(now: number): boolean {
    return this.#refilled(now) > 0;
  }
  /** The budget at `now`, refilled. */
  #refilled(now: number): number {
    if (this.#at === -Infinity) return this.#us;
    return Math.min(this.capUs, this.#us + (now - this.#at) * 1000 * this.refill);
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
    return this.#decide(now, true);
  }

  /**
   * Whether budget(now) would spin, changing nothing: a wait asks first, so
   * that one that will not spin can try and park in one native call.
   */
  wouldSpin(now: number): boolean {
    return this.#decide(now, false) > 0;
  }

  #decide(now: number, commit: boolean): number {
    let period = this.#period;
    if (this.#lastStart !== -Infinity) {
      // Time between wait starts, less this handle's own spinning in it.
      const sample = Math.min(Math.max(0, (now - this.#lastStart) * 1000 - this.#lastSpun), 1e6);
      period += (sample - period) * PERIOD_WEIGHT;
    }
    if (commit) {
      this.#period = period;
      this.#lastStart = now;
      this.#lastSpun = 0;
    }
    if (!(commit ? this.#misses.allows(now) : this.#misses.wouldAllow(now))) return 0;
    if (this.#credit > 0 || period <= DENSE_PERIOD_US) return SPIN_US;
    const untilProbe = this.#untilProbe - 1;
    if (commit) this.#untilProbe = untilProbe;
    return untilProbe > 0 ? 0 : SPIN_US; // else a probe
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

/**
 * One waiting operation, as waitFor drives it: a receive keeps one per
 * handle (it reads into the handle's scratch), other operations make one per
 * call. `finish` is called synchronously after the attempt that succeeded,
 * so it may read a scratch buffer that the next attempt would overwrite.
 */
export interface WaitOp<T> {
  readonly h: number;
  /** SHMC_WAIT_RECV or SHMC_WAIT_SEND. */
  readonly what: number;
  /** What attempt() returns when it would have to wait (-EAGAIN, -ENOBUFS). */
  readonly retryCode: number;
  /** For error messages. */
  readonly name: string;
  /** One try. */
  attempt(): number;
  /**
   * One try that parks when it would wait: the result of a try, `retryCode`
   * when parked, or EBUSY when neither (call again). `unpark`: this is the
   * handle's last waiter, so a try that succeeds should also withdraw the
   * park (only when `oneCall`).
   */
  attemptPark(unpark: boolean): number;
  /**
   * attemptPark is one native call (a receive: shmc_try_recv_park), which
   * withdraws the park itself when asked to. Then a wait that will not spin
   * starts with it; otherwise (a send: a try, then shmc_park) with attempt().
   */
  readonly oneCall: boolean;
  finish(rc: number): T;
}

/** "Neither done nor parked: call again" from attemptPark. */
export const EBUSY = -errnoOf("EBUSY");

/** What the doorbell and the probe timer retry. */
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

const parkKey = (h: number, what: number) => h * 4 + what;

/**
 * Per handle and direction: its pending waits, in arrival order (they share
 * the handle's one park, withdrawn when the last ends), and whether a park of
 * theirs may stand (a wake or a withdrawing take may have cleared it since).
 */
interface ParkState {
  readonly waiters: Set<Waiter>;
  standing: boolean;
}
/** By parkKey; an entry stays until its handle closes (failWaiters). */
const parks = new Map<number, ParkState>();

function parkState(h: number, what: number): ParkState {
  const k = parkKey(h, what);
  let st = parks.get(k);
  if (st === undefined) parks.set(k, st = { waiters: new Set(), standing: false });
  return st;
}

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
  // Polling never adds a waiter; one that ends leaves its set, which the
  // iteration then skips.
  for (const st of parks.values()) {
    for (const w of st.waiters) {
      if (w.probeAt <= now) {
        w.probeAt = Infinity;
        w.poll(false);
      }
      if (st.waiters.has(w)) next = Math.min(next, w.probeAt);
    }
  }
  if (next !== Infinity) probeBy(next);
}

/** Bytes arrived on doorbell `k`: retry its waiters; bound what a flood costs. */
function ring(k: number): void {
  const bell = doorbells.get(k);
  if (!bell || bell.resumeTimer !== undefined) return;
  let completed = false;
  // Retry in arrival order (as runProbes: polling never adds a waiter, and
  // one that ends leaves the set, which the iteration then skips).
  const st = parks.get(k);
  if (st) {
    for (const w of st.waiters) if (w.poll(true)) completed = true;
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
  for (const what of [SHMC_WAIT_RECV, SHMC_WAIT_SEND]) {
    const k = parkKey(h, what);
    const bell = doorbells.get(k);
    if (!bell) continue;
    doorbells.delete(k);
    if (bell.resumeTimer !== undefined) clearTimeout(bell.resumeTimer);
    bell.sock.close();
  }
}

/** Adds a waiter of a handle whose doorbell for its direction exists. */
function register(w: Waiter, st: ParkState): void {
  st.waiters.add(w);
  if (st.waiters.size === 1) doorbells.get(parkKey(w.h, w.what))?.sock.ref();
}

/**
 * Removes a waiter; withdraws the park when it was its handle's last, unless
 * `withdrawn` (its last try did that already).
 */
function unregister(w: Waiter, st: ParkState, withdrawn: boolean): void {
  if (!st.waiters.delete(w)) return;
  if (st.waiters.size > 0) {
    // The handle's other waiters share its park, which this one's last try
    // may have withdrawn (a re-check that found a message withdraws it):
    // make sure it stands. 1: there is something to take already.
    const rc = lib().shmc_park(w.h, w.what);
    st.standing = rc === 0;
    if (rc === 1) probeBy(performance.now());
  } else {
    if (st.standing && !withdrawn) lib().shmc_unpark(w.h, w.what);
    st.standing = false;
    doorbells.get(parkKey(w.h, w.what))?.sock.unref();
  }
}

/** Rejects every waiter of handle `h` (before it is closed). */
export function failWaiters(h: number, err: () => unknown): void {
  for (const what of [SHMC_WAIT_RECV, SHMC_WAIT_SEND]) {
    for (const w of [...(parks.get(parkKey(h, what))?.waiters ?? [])]) w.fail(err());
  }
  parks.delete(parkKey(h, SHMC_WAIT_RECV));
  parks.delete(parkKey(h, SHMC_WAIT_SEND));
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

const timedOut = (name: string) => ChannelError.of("ETIMEDOUT", `timed out (${name})`);

/** A wait that parked: retried on doorbell bytes and probes until it ends. */
class ParkedWait<T> implements Waiter {
  readonly h: number;
  readonly what: number;
  probeAt = Infinity;
  readonly #op: WaitOp<T>;
  readonly #resolve: (value: T) => void;
  readonly #reject: (err: unknown) => void;
  readonly #signal: AbortSignal | undefined;
  #onAbort: (() => void) | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #done = false;
  readonly #parks: ParkState;
  /** Kept reachable while the wait is pending (the waiter set holds this). */
  readonly #keepAlive: object;

  constructor(
    op: WaitOp<T>,
    parks: ParkState,
    resolve: (value: T) => void,
    reject: (err: unknown) => void,
    timeoutMs: number,
    signal: AbortSignal | undefined,
    keepAlive: object,
  ) {
    this.#parks = parks;
    this.h = op.h;
    this.what = op.what;
    this.#op = op;
    this.#resolve = resolve;
    this.#reject = reject;
    this.#signal = signal;
    this.#keepAlive = keepAlive;
    if (timeoutMs !== Infinity) this.#arm(timeoutMs);
    if (signal) {
      this.#onAbort = () => {
        if (this.#done) return;
        this.#end(false);
        this.#reject(signal.reason);
      };
      signal.addEventListener("abort", this.#onAbort, { once: true });
    }
  }

  poll(rung: boolean): boolean {
    if (this.#done) return false;
    const op = this.#op;
    for (let round = 0; round < MAX_PARK_ROUNDS; round++) {
      const st = this.#parks;
      const unpark = op.oneCall && st.standing && st.waiters.size === 1;
      const r = op.attemptPark(unpark);
      if (r === op.retryCode) {
        st.standing = true;
        this.parked(rung);
        return false;
      }
      // EBUSY: the condition came and went while parking; try again.
      if (r !== EBUSY) {
        this.#complete(r, unpark && r >= 0);
        return true;
      }
    }
    // Others keep taking what we are woken for: yield, then go on.
    this.#probeAfter(0);
    return false;
  }

  /**
   * Parked (`rung`: after a doorbell byte). Slow paths only when something
   * looks stalled, and a receiver's re-check once a second in any case.
   */
  parked(rung: boolean, now = performance.now()): void {
    if (this.what === SHMC_WAIT_SEND) this.#probeAfter(SEND_PROBE_MS, now);
    else this.#probeAfter(rung ? STALL_RETRY_MS : RECHECK_MS, now);
  }

  fail(err: unknown): void {
    if (this.#done) return;
    this.#end(false);
    this.#reject(err);
  }

  #complete(rc: number, withdrawn: boolean): void {
    this.#end(withdrawn);
    try {
      this.#resolve(this.#op.finish(check(rc, this.#op.name)));
    } catch (err) {
      this.#reject(err);
    }
  }

  /** `withdrawn`: the last try withdrew the park. */
  #end(withdrawn: boolean): void {
    this.#done = true;
    unregister(this, this.#parks, withdrawn);
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (this.#onAbort) this.#signal!.removeEventListener("abort", this.#onAbort);
    void this.#keepAlive;
  }

  #arm(remaining: number): void {
    const delay = Math.min(remaining, MAX_TIMER_MS);
    this.#timer = setTimeout(() => (remaining > delay ? this.#arm(remaining - delay) : this.#onTimeout()), delay);
  }

  #onTimeout(): void {
    if (this.#done) return;
    // A last try: a message may have arrived with its doorbell byte unread.
    const last = this.#op.attempt();
    if (last !== this.#op.retryCode) return this.#complete(last, false);
    this.#end(false);
    this.#reject(timedOut(this.#op.name));
  }

  #probeAfter(ms: number, now = performance.now()): void {
    const at = now + ms;
    // A sender's probe moves on with every poll (it made no progress till now).
    if (this.what === SHMC_WAIT_SEND || at < this.probeAt) this.probeAt = at;
    probeBy(this.probeAt);
  }
}

/**
 * Waits until `op.attempt()` returns something other than `op.retryCode`,
 * then resolves with `op.finish(rc)` or rejects for rc < 0. `policy`
 * decides the spin (unless `opts.spin` forces one) and learns from it.
 * `keepAlive` (the handle object) stays reachable while the wait is pending.
 */
export function waitFor<T>(
  op: WaitOp<T>,
  opts: WaitOptions | undefined,
  policy: SpinPolicy,
  keepAlive: object,
): Promise<T> {
  let timeoutMs = Infinity, signal: AbortSignal | undefined, forcedSpin: number | undefined;
  if (opts !== undefined) {
    try {
      [timeoutMs, signal, forcedSpin] = waitOptions(opts);
    } catch (err) {
      return Promise.reject(err);
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
  }
  const retry = op.retryCode;
  let rc: number;
  let parked = false;
  let start = 0;
  // (Until the handle has its doorbell, the first park below makes it.)
  if (
    op.oneCall && doorbells.has(parkKey(op.h, op.what)) && timeoutMs > 0 &&
    (forcedSpin === undefined ? !policy.wouldSpin(start = performance.now()) : forcedSpin === 0)
  ) {
    // 1'. No spin: try and park in one go (a message there is taken).
    rc = op.attemptPark(false);
    if (rc === retry || rc === EBUSY) {
      if (forcedSpin === undefined) policy.budget(start); // a wait starts (no spin, as foreseen)
      parked = rc === retry;
      rc = retry;
    }
  } else {
    // 1. Try; then spin for a bounded time if forced, or if the policy says so.
    rc = op.attempt();
    if (rc === retry && timeoutMs > 0) {
      start = performance.now();
      const spinUs = forcedSpin ?? policy.budget(start);
      if (spinUs > 0) {
        const deadline = start + spinUs / 1000;
        let now = start;
        do rc = op.attempt(); while (rc === retry && (now = performance.now()) < deadline);
        if (forcedSpin === undefined) policy.record(rc !== retry, (now - start) * 1000);
      }
    }
  }
  if (rc !== retry) {
    try {
      return Promise.resolve(op.finish(check(rc, op.name)));
    } catch (err) {
      return Promise.reject(err);
    }
  }
  if (timeoutMs === 0) return Promise.reject(timedOut(op.name));

  // 2. Park (or, after a spin, try and park) and wait for the doorbell.
  if (!parked) {
    try {
      ensureDoorbell(op.h, op.what);
    } catch (err) {
      return Promise.reject(err);
    }
  }
  let resolve!: (value: T) => void, reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const parks = parkState(op.h, op.what);
  if (parked) parks.standing = true;
  const w = new ParkedWait(op, parks, resolve, reject, timeoutMs, signal, keepAlive);
  register(w, parks);
  // (`start` is the policy's clock reading, taken unless the spin was forced.)
  if (parked) w.parked(false, forcedSpin === undefined ? start : performance.now());
  else w.poll(false);
  return promise;
}
