/**
 * Adaptive concurrency: how many chats to fetch from WAHA at once, found while running instead of guessed.
 *
 * The controller works like TCP congestion control, with latency as the early signal:
 * - it measures in windows of about one round trip (as many finished requests as the limit allows in
 *   flight), counting only requests sent after the last change of the limit, so a window describes the
 *   limit it is judged by;
 * - the latency floor is the lowest window mean seen: what WAHA needs without a queue. Held above it for
 *   many windows, the controller drains the queue for one window (a "probe", as BBR does) to tell a
 *   queue that never empties from a WAHA that got slower, and relearns the floor in the latter case;
 * - at first ("slow start") every answer near the floor, with the limit actually used, raises the limit
 *   by one, as TCP does per acknowledgement: the limit doubles each round trip, smoothly rather than in
 *   one step per window, and without waiting for a window of answers to requests sent after the last
 *   step (that took two round trips per doubling). Its windows are judged by the limits their requests
 *   were sent under, and a window starts afresh from requests sent after the last one closed;
 * - after the first cut (or shrink), a window whose mean stays near the floor, with the limit actually
 *   used, grows the limit by sqrt(limit);
 * - a window whose mean rose clearly above the floor shrinks the limit in proportion (twice the latency
 *   means twice the requests WAHA can serve at once: halve);
 * - an overload answer (429, 503, 504, 408 or no answer in time) cuts the limit at once by a factor,
 *   once per round trip: answers to requests sent before the last cut are the same congestion;
 * - a Retry-After pauses every new request, not just the one that got it.
 * Other errors (500, network errors) say nothing about load and leave the limit alone.
 *
 * Latency is measured in this process, so it also holds our own slowness: a response that arrived while
 * the event loop was busy (parsing, writing, a machine with more work than cores) is handled late. The
 * event loop's delay during each request (src/concurrency/local-delay.ts) is taken off its latency
 * before it counts, never below the floor: local slowness is not WAHA's queue, and cutting concurrency
 * for it only makes the import slower.
 */

import type { RequestObserver } from '../waha/http.js';
import { createLocalDelayMeter } from './local-delay.js';

/** Time as the controller sees it; tests hand in a fake one. */
export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const SYSTEM_CLOCK: Clock = {
  now: () => performance.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

/** What a fan-out needs from a limit that may change while it runs. */
export interface ConcurrencyLimit {
  /** Current limit, an integer >= 1. */
  readonly limit: number;
  /** Calls `listener` after every change of `limit`; returns the unsubscribe function. */
  onChange(listener: (limit: number) => void): () => void;
}

/** `ok`: a 2xx; `overload`: 408/429/503/504 or no answer in time; `error`: anything else that failed. */
export type AttemptOutcome = 'ok' | 'overload' | 'error';

export interface Observation {
  latencyMs: number;
  outcome: AttemptOutcome;
  /** When the request was sent, on the controller's clock; default: now - latencyMs. */
  startedAtMs?: number;
  /** Of latencyMs, how long this process's event loop was held up while the request ran (default 0). */
  localDelayMs?: number;
  /** The limit when the request was sent; default the limit now. */
  limitAtStart?: number;
}

/** Where the controller reads this process's own delay (a LocalDelayMeter, or a fake in tests). */
export interface LocalDelaySource {
  /** Delay accumulated so far, in ms; only grows. */
  totalMs(): number;
  /** Called when requests start being in flight, and when none is. */
  start?(): void;
  stop?(): void;
}

export interface ConcurrencyStats {
  /** The limit now (at the end of a run: the final limit). */
  current: number;
  initial: number;
  /** Lowest and highest limit reached. */
  lowest: number;
  highest: number;
  /** Time-weighted mean limit over the second half of the time since the first request, rounded. */
  settled: number;
  /** Entries the limit's history holds for `settled`: at most LIMIT_HISTORY_ENTRIES, however long the run. */
  historyEntries: number;
  /** The bounds it moves within. */
  min: number;
  max: number;
  increases: number;
  decreases: number;
  observations: number;
  overloads: number;
  errors: number;
  /** Global Retry-After pauses, and the wall time they covered (overlapping pauses count once). */
  pauses: number;
  pausedMs: number;
  /** Requests in flight at once, at most (counted through attemptStarted). */
  peakInFlight: number;
  /** The latency floor (ms) and the mean of the last complete window relative to it. */
  floorLatencyMs: number | null;
  lastLatencyRatio: number | null;
  /** Latency taken off the successful requests as this process's own delay, in total (ms). */
  localDelayDiscountedMs: number;
}

export interface ConcurrencyControllerOptions {
  /** Limit to start from; default 10, clamped into [min, max]. */
  initial?: number;
  /** Highest limit; default 100. */
  max?: number;
  /** Lowest limit; default 1. */
  min?: number;
  clock?: Clock;
  /** Grow while a window's mean latency is below floor x this. Default 1.15. */
  growBelowRatio?: number;
  /** Shrink when a window's mean latency is above floor x this. Default 1.3. */
  shrinkAboveRatio?: number;
  /** A window's mean within this many ms of the floor counts as at the floor. Default 25. */
  latencyToleranceMs?: number;
  /** Multiplier applied on an overload answer. Default 0.85: a gentle cut keeps the limit near a capacity whose queue is short (measured in `bench --scenario capacity`). */
  overloadFactor?: number;
  /** Fewest samples that make a window. Default 8. */
  minWindow?: number;
  /** Windows in a row held above the floor (not growing, not shrinking) before a probe. Default 20. */
  probeAfterWindows?: number;
  /**
   * This process's own delay, discounted from latency. Default: an event-loop delay meter when the clock
   * is the system's, none with another clock; false for none.
   */
  localDelay?: LocalDelaySource | false;
}

/** What the HTTP layer calls around every attempt (src/waha/http.ts `RequestObserver`). */
export interface ConcurrencyController extends ConcurrencyLimit, RequestObserver {
  readonly limit: number;
  /** Requests being sent right now (between attemptStarted and its finish). */
  readonly inFlight: number;
  /** True while a Retry-After pause holds new requests back. */
  readonly paused: boolean;
  onChange(listener: (limit: number) => void): () => void;
  /** Feeds one finished request. */
  observe(observation: Observation): void;
  /** Holds every new request back for `ms` from now (extends, never shortens, a pause in force). */
  pauseFor(ms: number): void;
  /** Resolves once no pause holds new requests back; rejects when `signal` aborts first. */
  waitToSend(signal?: AbortSignal): Promise<void>;
  /** A request is sent now; call the returned function once when it ends (outcome null: aborted). */
  attemptStarted(): (result: { outcome: AttemptOutcome | null; latencyMs: number }) => void;
  stats(): ConcurrencyStats;
}

/** A shrink aims the next window's mean latency at floor x this: a short queue keeps WAHA busy. */
const SHRINK_TARGET_RATIO = 1.05;
/** A probe lowers the limit by this factor for one window, to see the floor again. */
const PROBE_FACTOR = 0.75;
/** Latency shrinks in a row after which the floor is taken to have moved rather than a queue to persist. */
const MAX_SHRINKS_IN_A_ROW = 3;

export function createConcurrencyController(
  options: ConcurrencyControllerOptions = {},
): ConcurrencyController {
  const clock = options.clock ?? SYSTEM_CLOCK;
  const min = Math.max(1, Math.floor(options.min ?? 1));
  const max = Math.max(min, Math.floor(options.max ?? 100));
  const growBelow = options.growBelowRatio ?? 1.15;
  const shrinkAbove = options.shrinkAboveRatio ?? 1.3;
  const toleranceMs = options.latencyToleranceMs ?? 25;
  const overloadFactor = options.overloadFactor ?? 0.85;
  const minWindow = Math.max(1, Math.floor(options.minWindow ?? 8));
  const probeAfterWindows = Math.max(1, Math.floor(options.probeAfterWindows ?? 20));
  if (!(growBelow >= 1 && shrinkAbove >= growBelow)) {
    throw new RangeError('need 1 <= growBelowRatio <= shrinkAboveRatio');
  }
  if (!(overloadFactor > 0 && overloadFactor < 1)) throw new RangeError('overloadFactor must be in (0, 1)');
  const clamp = (n: number): number => Math.min(max, Math.max(min, Math.floor(n)));
  const localDelay =
    options.localDelay === false
      ? undefined
      : (options.localDelay ?? (options.clock === undefined ? createLocalDelayMeter() : undefined));
  let localDelayDiscountedMs = 0;
  const initial = clamp(options.initial ?? 10);

  let limit = initial;
  let slowStart = true;
  /** Answers to requests sent before this count in no window: they measured another limit. */
  let lastChangeAt = -Infinity;
  let lastCutAt = -Infinity;
  const listeners = new Set<(limit: number) => void>();
  // The window being measured.
  let windowSum = 0;
  let windowCount = 0;
  let windowPeakInFlight = 0;
  /** The last complete window's peak: slow start's steps judge use over it and the window running. */
  let lastWindowPeakInFlight = 0;
  /** Sum of the limits the window's requests were sent under (one limit, except in slow start). */
  let windowLimitSum = 0;
  /** The limit when the window started; as many answers (at least minWindow) close it: one round trip. */
  let windowStartLimit = limit;
  /** The lowest window mean seen: WAHA's latency without a queue. */
  let floorMs: number | null = null;
  let lastRatio: number | null = null;
  let windowsAwayFromFloor = 0;
  let shrinksInARow = 0;
  let probing = false;
  // Figures for stats().
  let lowest = initial;
  let highest = initial;
  let increases = 0;
  let decreases = 0;
  let observations = 0;
  let overloads = 0;
  let errors = 0;
  let inFlight = 0;
  let peakInFlight = 0;
  let pauses = 0;
  let pausedMs = 0;
  let pausedUntil = -Infinity;
  let firstActivityAt: number | undefined;
  /** The limit's history, for the settled limit: bounded (see LimitHistory), however long the run. */
  const history = new LimitHistory();

  const markActive = (): void => {
    if (firstActivityAt === undefined) {
      firstActivityAt = clock.now();
      history.push(firstActivityAt, limit);
    }
  };

  const resetWindow = (): void => {
    windowSum = 0;
    windowCount = 0;
    windowLimitSum = 0;
    windowPeakInFlight = inFlight;
    windowStartLimit = limit;
  };

  /** `step`: a slow-start step of one, which leaves the window being measured alone. */
  const setLimit = (next: number, step = false): void => {
    const value = clamp(next);
    if (value === limit) return;
    if (value > limit) increases++;
    else decreases++;
    limit = value;
    lowest = Math.min(lowest, value);
    highest = Math.max(highest, value);
    const now = clock.now();
    history.push(now, value);
    if (!step) {
      lastChangeAt = now;
      resetWindow();
    }
    for (const listener of [...listeners]) listener(value);
  };

  const closeWindow = (): void => {
    const mean = windowSum / windowCount;
    const windowLimit = windowLimitSum / windowCount;
    // Only a window that used the limit tells whether more would help; an idle one still shows the floor.
    const limitUsed = windowPeakInFlight * 2 >= limit;
    lastWindowPeakInFlight = windowPeakInFlight;
    resetWindow();
    // In slow start the limit moved while this window ran: the next one counts requests sent from now.
    if (slowStart) lastChangeAt = clock.now();
    if (floorMs === null) floorMs = mean;
    // A probe (below) drained the queue; still above the floor means the floor itself moved: relearn it.
    if (probing && mean / floorMs >= growBelow) floorMs = mean;
    probing = false;
    floorMs = Math.min(floorMs, mean);
    // A rise of a few milliseconds is the importer's own work (parsing, the event loop), not a queue in
    // WAHA: a queue adds whole service times. Below the tolerance the window counts as at the floor.
    let ratio = mean - floorMs < toleranceMs ? 1 : mean / floorMs;
    windowsAwayFromFloor = ratio < growBelow ? 0 : windowsAwayFromFloor + 1;
    shrinksInARow = ratio > shrinkAbove ? shrinksInARow + 1 : 0;
    if (shrinksInARow > MAX_SHRINKS_IN_A_ROW) {
      // Proportional cuts should have emptied any queue by now: WAHA got slower, not busier.
      floorMs = mean;
      ratio = 1;
      shrinksInARow = 0;
      windowsAwayFromFloor = 0;
    }
    lastRatio = ratio;
    if (ratio > shrinkAbove) {
      slowStart = false;
      // Latency grows with the queue: scale the limit its requests were sent under back towards what
      // WAHA serves without one.
      setLimit(Math.min(limit - 1, windowLimit * Math.max(0.5, SHRINK_TARGET_RATIO / ratio)));
    } else if (ratio < growBelow) {
      // Slow start grew the limit answer by answer already.
      if (limitUsed && !slowStart) setLimit(limit + Math.max(1, Math.round(Math.sqrt(limit))));
    } else if (windowsAwayFromFloor >= probeAfterWindows) {
      // Held above the floor for long: a small queue that never drains, or a floor that moved. Drain it
      // for one window to tell which (like BBR's PROBE_RTT).
      probing = true;
      windowsAwayFromFloor = 0;
      setLimit(Math.min(limit - 1, limit * PROBE_FACTOR));
    }
  };

  const controller: ConcurrencyController = {
    get limit() {
      return limit;
    },
    get inFlight() {
      return inFlight;
    },
    get paused() {
      return clock.now() < pausedUntil;
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    observe({ latencyMs, outcome, startedAtMs, localDelayMs, limitAtStart }) {
      markActive();
      observations++;
      const now = clock.now();
      const startedAt = startedAtMs ?? now - latencyMs;
      if (outcome === 'error') {
        errors++;
        return;
      }
      if (outcome === 'overload') {
        overloads++;
        // Requests sent before the last cut met the congestion that cut was for.
        if (startedAt > lastCutAt) {
          slowStart = false;
          lastCutAt = now;
          setLimit(Math.min(limit - 1, limit * overloadFactor));
        }
        return;
      }
      // Our own delay is not WAHA's queue. Never below the floor (the delay may have overlapped WAHA's
      // own time), nor below half the latency while there is no floor yet to compare with.
      const lowest = floorMs === null ? latencyMs / 2 : Math.min(latencyMs, floorMs);
      const counted = Math.max(latencyMs - Math.max(0, localDelayMs ?? 0), lowest);
      if (
        slowStart &&
        (lastRatio === null || lastRatio < growBelow) &&
        (floorMs === null || counted - floorMs < toleranceMs || counted <= floorMs * shrinkAbove) &&
        Math.max(windowPeakInFlight, lastWindowPeakInFlight) * 2 >= windowStartLimit
      ) {
        // Slow start: one more per answer that met no queue (a single answer is noisy: only one clearly
        // above the floor, or a last window above it, holds the limit), so the limit doubles per round
        // trip. The limit counts as used when half the limit the window started with was in flight: a
        // stretch with few requests at once (the chat list before the messages) still raises it, by up to
        // one window's answers, as the doubling once per window did, and no further.
        setLimit(limit + 1, true);
      }
      if (startedAt < lastChangeAt) return; // measured a limit no longer in force
      localDelayDiscountedMs += latencyMs - counted;
      windowSum += counted;
      windowLimitSum += limitAtStart ?? limit;
      windowCount++;
      if (windowCount >= Math.max(minWindow, windowStartLimit)) closeWindow();
    },
    pauseFor(ms) {
      markActive();
      const now = clock.now();
      const until = now + Math.max(0, ms);
      if (until <= pausedUntil) return;
      pauses++;
      pausedMs += until - Math.max(now, pausedUntil);
      pausedUntil = until;
    },
    async waitToSend(signal) {
      for (;;) {
        signal?.throwIfAborted();
        const waitMs = pausedUntil - clock.now();
        if (!(waitMs > 0)) return;
        await clock.sleep(waitMs, signal);
      }
    },
    attemptStarted() {
      markActive();
      const startedAt = clock.now();
      const limitAtStart = limit;
      if (inFlight === 0) localDelay?.start?.();
      const delayAtStart = localDelay?.totalMs() ?? 0;
      inFlight++;
      peakInFlight = Math.max(peakInFlight, inFlight);
      windowPeakInFlight = Math.max(windowPeakInFlight, inFlight);
      let done = false;
      return ({ outcome, latencyMs }) => {
        if (done) return;
        done = true;
        const localDelayMs = localDelay ? localDelay.totalMs() - delayAtStart : 0;
        inFlight--;
        if (inFlight === 0) localDelay?.stop?.();
        if (outcome !== null)
          controller.observe({ outcome, latencyMs, startedAtMs: startedAt, localDelayMs, limitAtStart });
      };
    },
    stats() {
      const current = limit;
      return {
        current,
        initial,
        lowest,
        highest,
        settled: history.settled(clock.now(), current),
        historyEntries: history.length,
        min,
        max,
        increases,
        decreases,
        observations,
        overloads,
        errors,
        pauses,
        pausedMs: Math.round(pausedMs),
        peakInFlight,
        floorLatencyMs: floorMs === null ? null : Math.round(floorMs * 10) / 10,
        lastLatencyRatio: lastRatio === null ? null : Math.round(lastRatio * 100) / 100,
        localDelayDiscountedMs: Math.round(localDelayDiscountedMs),
      };
    },
  };
  return controller;
}

/** The most entries LimitHistory keeps. */
export const LIMIT_HISTORY_ENTRIES = 256;

/**
 * The limit over time, as much as the settled limit needs: the time-weighted mean over the second half
 * of the time since the first entry. The limit changes about once a round trip, so a list of every
 * change grows with the run; this one holds at most LIMIT_HISTORY_ENTRIES. Entries that end before the
 * run's midpoint are dropped (the midpoint only moves forward), and when that is not enough, neighbours
 * are merged into one entry holding their time-weighted mean: the integral over the merged span stays
 * exact, only the span the midpoint falls into is averaged, an error of at most one entry's share.
 */
export class LimitHistory {
  /** Start times, and the limit (or a merged mean) from each start to the next. */
  private starts: number[] = [];
  private values: number[] = [];
  /** When the first entry started (kept when that entry is dropped). */
  private first: number | undefined;

  get length(): number {
    return this.starts.length;
  }

  push(at: number, value: number): void {
    this.first ??= at;
    this.starts.push(at);
    this.values.push(value);
    if (this.starts.length > LIMIT_HISTORY_ENTRIES) this.compact(at);
  }

  /** The time-weighted mean limit over the second half of the history, rounded; `current` if none. */
  settled(now: number, current: number): number {
    if (this.first === undefined || now <= this.first) return current;
    const from = (this.first + now) / 2;
    let weighted = 0;
    for (let i = 0; i < this.starts.length; i++) {
      const start = this.starts[i]!;
      const end = this.starts[i + 1] ?? now;
      const overlap = Math.min(end, now) - Math.max(start, from);
      if (overlap > 0) weighted += overlap * this.values[i]!;
    }
    return Math.round(weighted / (now - from));
  }

  private compact(now: number): void {
    // Entries over before the midpoint never count again: later midpoints lie later still.
    const from = (this.first! + now) / 2;
    let drop = 0;
    while (drop < this.starts.length - 1 && this.starts[drop + 1]! <= from) drop++;
    if (drop > 0) {
      this.starts.splice(0, drop);
      this.values.splice(0, drop);
    }
    if (this.starts.length <= LIMIT_HISTORY_ENTRIES / 2) return;
    // Merge neighbours pairwise (the newest entry stays as it is: it is still running).
    const starts: number[] = [];
    const values: number[] = [];
    const last = this.starts.length - 1;
    for (let i = 0; i < last; i += 2) {
      const start = this.starts[i]!;
      if (i + 1 === last) {
        starts.push(start);
        values.push(this.values[i]!);
        break;
      }
      const middle = this.starts[i + 1]!;
      const end = this.starts[i + 2]!;
      const span = end - start;
      starts.push(start);
      values.push(
        span > 0
          ? (this.values[i]! * (middle - start) + this.values[i + 1]! * (end - middle)) / span
          : this.values[i + 1]!,
      );
    }
    starts.push(this.starts[last]!);
    values.push(this.values[last]!);
    this.starts = starts;
    this.values = values;
  }
}

/** True when `concurrency` changes at run time rather than being a fixed number. */
export function isDynamicLimit(concurrency: number | ConcurrencyLimit): concurrency is ConcurrencyLimit {
  return typeof concurrency !== 'number';
}

/** The limit now, for display: a fixed number as it is. */
export function currentLimit(concurrency: number | ConcurrencyLimit): number {
  return typeof concurrency === 'number' ? concurrency : concurrency.limit;
}
