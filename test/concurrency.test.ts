import {
  createConcurrencyController,
  LIMIT_HISTORY_ENTRIES,
  LimitHistory,
  type Clock,
  type ConcurrencyController,
} from '../src/concurrency/limiter.js';
import { createLocalDelayMeter } from '../src/concurrency/local-delay.js';
import { startSimulator, type Simulator } from '../src/sim/index.js';
import { createWahaHttp, type RequestObserver } from '../src/waha/http.js';
import { DEFAULT_RETRY_POLICY } from '../src/waha/retry.js';

/** Time that moves only when the test says so; sleepers wake in `advance`. */
class FakeClock implements Clock {
  private t = 1_000;
  private sleepers: Array<{ at: number; wake: () => void }> = [];

  now(): number {
    return this.t;
  }

  get sleeping(): number {
    return this.sleepers.length;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const sleeper = {
        at: this.t + ms,
        wake: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        this.sleepers = this.sleepers.filter((s) => s !== sleeper);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.sleepers.push(sleeper);
    });
  }

  advance(ms: number): void {
    this.t += ms;
    const due = this.sleepers.filter((s) => s.at <= this.t);
    this.sleepers = this.sleepers.filter((s) => s.at > this.t);
    for (const s of due) s.wake();
  }

  set(t: number): void {
    this.advance(t - this.t);
  }
}

/** Lets every settled promise run its callbacks. */
const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

/** One round trip at full use: `limit` requests sent together, all answered after `latencyMs`. */
function round(
  controller: ConcurrencyController,
  clock: FakeClock,
  latencyMs: number,
  outcome: 'ok' | 'overload' | 'error' = 'ok',
): void {
  const finishes = Array.from({ length: controller.limit }, () => controller.attemptStarted());
  clock.advance(latencyMs);
  for (const finish of finishes) finish({ outcome, latencyMs });
}

describe('concurrency controller', () => {
  it('starts at the initial limit, clamped into [min, max]', () => {
    expect(createConcurrencyController({ initial: 7, max: 50 }).limit).toBe(7);
    expect(createConcurrencyController({ initial: 500, max: 50 }).limit).toBe(50);
    expect(createConcurrencyController({ initial: 0, max: 50, min: 3 }).limit).toBe(3);
    expect(createConcurrencyController({}).limit).toBe(10);
  });

  it('grows while latency stays at its floor, doubling at first, and never passes max', () => {
    const clock = new FakeClock();
    const controller = createConcurrencyController({ initial: 4, max: 50, clock });
    const seen: number[] = [];
    for (let i = 0; i < 10; i++) {
      round(controller, clock, 100);
      seen.push(controller.limit);
    }
    expect(seen).toEqual([8, 16, 32, 50, 50, 50, 50, 50, 50, 50]);
    expect(controller.limit).toBe(50);
    expect(controller.stats()).toMatchObject({ initial: 4, lowest: 4, highest: 50, current: 50, max: 50 });
  });

  it('in slow start raises the limit with every answer at the floor, not once a window is complete', () => {
    const clock = new FakeClock();
    const controller = createConcurrencyController({ initial: 10, max: 100, clock });
    round(controller, clock, 100); // the first window: the floor is 100 ms, the limit 20
    expect(controller.limit).toBe(20);
    const finishes = Array.from({ length: 20 }, () => controller.attemptStarted());
    clock.advance(100);
    for (const finish of finishes.slice(0, 5)) finish({ outcome: 'ok', latencyMs: 100 });
    expect(controller.limit).toBe(25);
    // Answers that met a queue (twice the floor) raise nothing.
    clock.advance(100);
    for (const finish of finishes.slice(5, 10)) finish({ outcome: 'ok', latencyMs: 200 });
    expect(controller.limit).toBe(25);
  });

  it('in slow start grows by at most one window while only half the limit is in flight, then holds', () => {
    // The steps before the messages (the chat list, lid pages a few at a time) use half of the first limit.
    const clock = new FakeClock();
    const controller = createConcurrencyController({ initial: 10, max: 100, clock });
    for (let i = 0; i < 10; i++) {
      const finishes = Array.from({ length: 5 }, () => controller.attemptStarted());
      clock.advance(100);
      for (const finish of finishes) finish({ outcome: 'ok', latencyMs: 100 });
    }
    expect(controller.limit).toBe(20);
  });

  it('in slow start scales a queue back from the limit its requests were sent under, not the one it grew to since', () => {
    const clock = new FakeClock();
    const controller = createConcurrencyController({ initial: 10, max: 100, clock });
    round(controller, clock, 100); // floor 100 ms, limit 20
    const sent = Array.from({ length: 20 }, () => controller.attemptStarted()); // at 20
    clock.advance(100);
    for (const finish of sent.slice(0, 10)) finish({ outcome: 'ok', latencyMs: 100 });
    expect(controller.limit).toBe(30);
    const more = Array.from({ length: 10 }, () => controller.attemptStarted()); // at 30
    clock.advance(200);
    // The other half met a queue: the window's mean is twice the floor; its requests went out at 20.
    for (const finish of sent.slice(10)) finish({ outcome: 'ok', latencyMs: 300 });
    expect(controller.stats().lastLatencyRatio).toBe(2);
    expect(controller.limit).toBe(10); // 20 x 1.05 / 2, not 30 x 1.05 / 2
    for (const finish of more) finish({ outcome: null, latencyMs: 0 });
  });

  it('against a fast WAHA, a rise of a few ms is not a queue: it keeps growing until the rise passes the tolerance', () => {
    const clock = new FakeClock();
    const controller = createConcurrencyController({ initial: 8, max: 200, clock, latencyToleranceMs: 25 });
    round(controller, clock, 5); // floor 5 ms -> 16
    round(controller, clock, 20); // 4x the floor, but 15 ms above it: still the floor -> 32
    expect(controller.limit).toBe(32);
    round(controller, clock, 60); // 55 ms above the floor: a queue -> shrink
    expect(controller.limit).toBeLessThan(32);
  });

  it('does not grow while the limit is not used (one request at a time)', () => {
    const clock = new FakeClock();
    const controller = createConcurrencyController({ initial: 10, max: 50, clock });
    for (let i = 0; i < 200; i++) {
      const finish = controller.attemptStarted();
      clock.advance(100);
      finish({ outcome: 'ok', latencyMs: 100 });
    }
    expect(controller.limit).toBe(10);
    expect(controller.stats().observations).toBe(200);
  });

  it('cuts on an overload once per round trip, down to the floor and never below it', () => {
    const clock = new FakeClock();
    const controller = createConcurrencyController({
      initial: 40,
      max: 100,
      min: 2,
      clock,
      overloadFactor: 0.7,
    });
    // Forty requests in flight together; the first overload answer cuts, the others were sent before it.
    const finishes = Array.from({ length: 40 }, () => controller.attemptStarted());
    clock.advance(50);
    for (const finish of finishes) finish({ outcome: 'overload', latencyMs: 50 });
    expect(controller.limit).toBe(28);
    // A request sent after the cut that is refused too: cut again.
    clock.advance(1);
    const later = controller.attemptStarted();
    clock.advance(50);
    later({ outcome: 'overload', latencyMs: 50 });
    expect(controller.limit).toBe(19);
    for (let i = 0; i < 30; i++) {
      clock.advance(10);
      controller.observe({ outcome: 'overload', latencyMs: 5 });
    }
    expect(controller.limit).toBe(2);
    expect(controller.stats()).toMatchObject({ lowest: 2, highest: 40, overloads: 71, min: 2 });
  });

  it('after a cut grows again additively, not by doubling', () => {
    const clock = new FakeClock();
    const controller = createConcurrencyController({ initial: 40, max: 200, clock, overloadFactor: 0.7 });
    clock.advance(10);
    controller.observe({ outcome: 'overload', latencyMs: 5 });
    expect(controller.limit).toBe(28);
    clock.advance(10);
    round(controller, clock, 100);
    expect(controller.limit).toBe(28 + 5);
    round(controller, clock, 100);
    expect(controller.limit).toBe(33 + 6);
  });

  it('shrinks in proportion when latency rises clearly above its floor, and holds in between', () => {
    const clock = new FakeClock();
    const controller = createConcurrencyController({ initial: 40, max: 40, clock });
    for (let i = 0; i < 3; i++) round(controller, clock, 100);
    expect(controller.limit).toBe(40);
    round(controller, clock, 120); // 1.2x the floor: neither grow nor shrink
    expect(controller.limit).toBe(40);
    round(controller, clock, 200); // twice the floor: about half, aiming a little above the floor
    expect(controller.limit).toBe(21);
    expect(controller.stats().floorLatencyMs).toBe(100);
    expect(controller.stats().lastLatencyRatio).toBe(2);
  });

  it("takes this process's own delay off latency: a busy event loop is not WAHA's queue", () => {
    const clock = new FakeClock();
    let localMs = 0;
    const events: string[] = [];
    const controller = createConcurrencyController({
      initial: 40,
      max: 40,
      clock,
      localDelay: {
        totalMs: () => localMs,
        start: () => events.push('start'),
        stop: () => events.push('stop'),
      },
    });
    for (let i = 0; i < 3; i++) round(controller, clock, 100);
    expect(controller.stats().floorLatencyMs).toBe(100);
    // The same answers, handled late: the event loop was held up 150 ms during every request.
    for (let i = 0; i < 5; i++) {
      const finishes = Array.from({ length: controller.limit }, () => controller.attemptStarted());
      clock.advance(250);
      localMs += 150;
      for (const finish of finishes) finish({ outcome: 'ok', latencyMs: 250 });
    }
    expect(controller.limit).toBe(40);
    expect(controller.stats()).toMatchObject({ floorLatencyMs: 100, lastLatencyRatio: 1, decreases: 0 });
    expect(controller.stats().localDelayDiscountedMs).toBe(5 * 40 * 150);
    // Measured only while requests are in flight.
    expect(events.slice(0, 2)).toEqual(['start', 'stop']);
    expect(events.filter((e) => e === 'start')).toHaveLength(8);

    // A real queue, with the event loop idle, still shrinks it.
    round(controller, clock, 250);
    expect(controller.limit).toBeLessThan(40);
  });

  it('never takes latency below the floor for local delay, nor below half of it before there is a floor', () => {
    const clock = new FakeClock();
    let localMs = 0;
    const controller = createConcurrencyController({
      initial: 10,
      max: 10,
      clock,
      localDelay: { totalMs: () => localMs },
    });
    // First window: 100 ms answers, the loop busy for all of it: counted as 50, the floor.
    const finishes = Array.from({ length: 10 }, () => controller.attemptStarted());
    clock.advance(100);
    localMs += 100;
    for (const finish of finishes) finish({ outcome: 'ok', latencyMs: 100 });
    expect(controller.stats().floorLatencyMs).toBe(50);
    // More local delay than latency: counted at the floor, which stays.
    controller.observe({ outcome: 'ok', latencyMs: 60, localDelayMs: 500 });
    for (let i = 0; i < 9; i++) controller.observe({ outcome: 'ok', latencyMs: 60, localDelayMs: 500 });
    expect(controller.stats().floorLatencyMs).toBe(50);
  });

  it('the local delay meter counts how late its timer is, the overdue part at once', () => {
    let t = 1_000;
    const meter = createLocalDelayMeter(10, () => t);
    t = 1_100;
    expect(meter.totalMs()).toBe(0); // not started: nothing measured
    meter.start();
    t = 1_150; // the loop held up 50 ms since the start: 50 - 10 (interval) - 1 (timer slack)
    expect(meter.totalMs()).toBe(39);
    meter.stop();
    t = 5_000;
    expect(meter.totalMs()).toBe(39);
    meter.start();
    t = 5_005;
    expect(meter.totalMs()).toBe(39);
    meter.stop();
  });

  it('ignores answers to requests sent before the limit changed when judging latency', () => {
    const clock = new FakeClock();
    const controller = createConcurrencyController({ initial: 8, max: 100, clock, minWindow: 1 });
    const old = Array.from({ length: 8 }, () => controller.attemptStarted());
    round(controller, clock, 100); // 8 fresh requests at 100 ms: doubles to 16
    expect(controller.limit).toBe(16);
    // The early requests come back very slow; they measured the old limit, so nothing shrinks.
    clock.advance(900);
    for (const finish of old) finish({ outcome: 'ok', latencyMs: 1000 });
    expect(controller.limit).toBe(16);
    round(controller, clock, 100);
    expect(controller.limit).toBe(32);
  });

  it('lets other errors and aborted requests leave the limit alone', () => {
    const clock = new FakeClock();
    const controller = createConcurrencyController({ initial: 12, max: 100, clock });
    for (let i = 0; i < 5; i++) round(controller, clock, 100, 'error');
    const aborted = controller.attemptStarted();
    expect(controller.inFlight).toBe(1);
    aborted({ outcome: null, latencyMs: 3 });
    aborted({ outcome: 'ok', latencyMs: 3 }); // a second call is ignored
    expect(controller.inFlight).toBe(0);
    expect(controller.limit).toBe(12);
    expect(controller.stats()).toMatchObject({
      errors: 60,
      observations: 60,
      overloads: 0,
      peakInFlight: 12,
    });
  });

  it('holds every new request during a Retry-After pause, which extends but never shortens', async () => {
    const clock = new FakeClock();
    const controller = createConcurrencyController({ clock });
    await controller.waitToSend(); // no pause: at once
    controller.pauseFor(1000);
    controller.pauseFor(300); // shorter: changes nothing
    expect(controller.paused).toBe(true);
    const released: string[] = [];
    const a = controller.waitToSend().then(() => released.push('a'));
    const b = controller.waitToSend().then(() => released.push('b'));
    const aborter = new AbortController();
    const c = controller.waitToSend(aborter.signal);
    clock.advance(999);
    await flush();
    expect(released).toEqual([]);
    aborter.abort(new Error('stopped'));
    await expect(c).rejects.toThrow('stopped');
    controller.pauseFor(500); // at 999: now until 1499
    clock.advance(1);
    await flush();
    expect(released).toEqual([]);
    clock.advance(499);
    await Promise.all([a, b]);
    expect(released.sort()).toEqual(['a', 'b']);
    expect(controller.paused).toBe(false);
    expect(controller.stats()).toMatchObject({ pauses: 2, pausedMs: 1499 });
  });

  it('reports the time-weighted settled limit over the second half of the run', () => {
    const clock = new FakeClock();
    const controller = createConcurrencyController({ initial: 10, max: 20, clock, overloadFactor: 0.7 });
    controller.attemptStarted()({ outcome: 'error', latencyMs: 1 }); // the run starts
    round(controller, clock, 100); // -> 20 at t+100
    clock.advance(900); // 20 until t+1000
    controller.observe({ outcome: 'overload', latencyMs: 1 }); // -> 14 at t+1000
    clock.advance(600); // second half is [t+800, t+1600]: 200 ms at 20, 600 ms at 14
    expect(controller.stats()).toMatchObject({ current: 14, lowest: 10, highest: 20, settled: 16 });
    clock.advance(2000); // second half [t+1800, t+3600]: all 14
    expect(controller.stats().settled).toBe(14);
  });

  it('keeps a bounded history of the limit however often it changes, and still reports the settled limit', () => {
    const clock = new FakeClock();
    const controller = createConcurrencyController({ initial: 10, max: 20, clock, overloadFactor: 0.7 });
    controller.attemptStarted()({ outcome: 'error', latencyMs: 1 }); // the run starts
    // Thousands of changes: an overload cut every 100 ms, and rounds at the floor that grow the limit again.
    for (let i = 0; i < 5_000; i++) {
      round(controller, clock, 50);
      controller.observe({ outcome: 'overload', latencyMs: 1 });
      clock.advance(50);
    }
    const stats = controller.stats();
    expect(stats.increases + stats.decreases).toBeGreaterThan(4 * LIMIT_HISTORY_ENTRIES);
    expect(stats.historyEntries).toBeLessThanOrEqual(LIMIT_HISTORY_ENTRIES);
    expect(stats.settled).toBeGreaterThanOrEqual(stats.lowest);
    expect(stats.settled).toBeLessThanOrEqual(stats.highest);
  });

  it('a compacted limit history gives the settled limit of the full one, within one entry', () => {
    const history = new LimitHistory();
    const full: Array<[number, number]> = [];
    let t = 0;
    for (let i = 0; i < 20_000; i++) {
      const value = 1 + ((i * 7919) % 97); // changes of every size, at uneven times
      history.push(t, value);
      full.push([t, value]);
      t += 1 + ((i * 31) % 13);
    }
    expect(history.length).toBeLessThanOrEqual(LIMIT_HISTORY_ENTRIES);
    const from = (full[0]![0] + t) / 2;
    let weighted = 0;
    full.forEach(([start, value], i) => {
      const end = full[i + 1]?.[0] ?? t;
      const overlap = Math.min(end, t) - Math.max(start, from);
      if (overlap > 0) weighted += overlap * value;
    });
    const exact = weighted / (t - from);
    // A merged entry spans at most (run / 2) / (LIMIT_HISTORY_ENTRIES / 4); only the one holding the
    // midpoint is off, by at most its share of the limit's range.
    expect(Math.abs(history.settled(t, 0) - exact)).toBeLessThanOrEqual(1 + (97 * 4) / LIMIT_HISTORY_ENTRIES);
  });

  /**
   * A closed loop against a model of WAHA: `capacity` requests served at once in `serviceMs` (+/- jitter),
   * the rest in a FIFO queue of `queueLimit`, beyond it an immediate 503. The importer keeps `limit`
   * requests in flight. Event-driven on the fake clock: no real time passes.
   */
  function simulate(capacity: number, queueLimit: number, requests: number, maxLimit = 400, initial = 4) {
    const clock = new FakeClock();
    const controller = createConcurrencyController({ initial, max: maxLimit, clock });
    /** When the limit first reached each value (ms since the start). */
    const reached = new Map<number, number>();
    controller.onChange((limit) => {
      for (let n = limit; n > 0 && !reached.has(n); n--) reached.set(n, clock.now() - 1_000);
    });
    type Pending = { at: number; finish: ReturnType<ConcurrencyController['attemptStarted']>; sent: number };
    const events: Array<Pending & { outcome: 'ok' | 'overload' }> = [];
    const queue: Array<Omit<Pending, 'at'>> = [];
    let busy = 0;
    let seed = 7;
    const service = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return 150 + (seed / 2 ** 31) * 100; // 200 ms +/- 50
    };
    const schedule = (event: Pending & { outcome: 'ok' | 'overload' }): void => {
      events.push(event);
      events.sort((x, y) => x.at - y.at);
    };
    let sent = 0;
    let inFlight = 0;
    let rejected = 0;
    let served = 0;
    while (served < requests) {
      while (inFlight < controller.limit && sent < requests + 10_000) {
        const request = { finish: controller.attemptStarted(), sent: clock.now() };
        sent++;
        inFlight++;
        if (busy < capacity) {
          busy++;
          schedule({ ...request, at: clock.now() + service(), outcome: 'ok' });
        } else if (queue.length < queueLimit) queue.push(request);
        else {
          rejected++;
          schedule({ ...request, at: clock.now() + 1, outcome: 'overload' });
        }
      }
      const event = events.shift()!;
      clock.set(event.at);
      inFlight--;
      event.finish({ outcome: event.outcome, latencyMs: clock.now() - event.sent });
      if (event.outcome === 'ok') {
        served++;
        busy--;
        const next = queue.shift();
        if (next) {
          busy++;
          schedule({ ...next, at: clock.now() + service(), outcome: 'ok' });
        }
      }
    }
    const stats = controller.stats();
    return { stats, rejected, elapsedMs: clock.now() - 1_000, reached };
  }

  it('settles near the capacity of a queueing server and keeps it busy', () => {
    const capacity = 50;
    const { stats, rejected, elapsedMs } = simulate(capacity, 10_000, 20_000);
    expect(stats.settled).toBeGreaterThanOrEqual(capacity);
    expect(stats.settled).toBeLessThanOrEqual(capacity * 1.5);
    expect(stats.highest).toBeLessThan(400);
    expect(rejected).toBe(0);
    // Busy at least 90% of the time: 20,000 requests of 200 ms on 50 slots take 80 s at best.
    expect(elapsedMs).toBeLessThan((20_000 * 200) / capacity / 0.9);
  });

  it("in slow start reaches a wide WAHA's capacity in under five round trips: from 10 to 200, doubling each", () => {
    // Latency never rises (1,000 served at once, 200 ms +/- 50); the importer sends again as answers arrive.
    const { reached, rejected } = simulate(1000, 10_000, 3000, 256, 10);
    expect(rejected).toBe(0);
    expect(reached.get(200)).toBeLessThan(5 * 200);
  });

  it('in slow start against a short queue, hits the wall with few refusals and settles near the capacity', () => {
    const capacity = 25; // and a queue of 5: the 31st request at once is refused
    const { stats, rejected } = simulate(capacity, 5, 2000, 256, 10);
    expect(stats.highest).toBeLessThanOrEqual(capacity + 10);
    expect(rejected).toBeLessThan(60);
    expect(stats.settled).toBeGreaterThanOrEqual(capacity * 0.8);
    expect(stats.settled).toBeLessThanOrEqual(capacity + 5);
  });

  it('backs off on 503s from a short queue and still settles near the capacity', () => {
    const capacity = 25;
    const { stats, rejected } = simulate(capacity, 5, 10_000);
    expect(stats.overloads).toBe(rejected);
    expect(stats.settled).toBeGreaterThanOrEqual(capacity * 0.8);
    expect(stats.settled).toBeLessThanOrEqual(capacity + 5);
    // Few refusals per request served: it does not keep running into the wall.
    expect(rejected).toBeLessThan(10_000 * 0.02);
  });
});

describe('concurrency controller wired into the WAHA HTTP client', () => {
  let sim: Simulator | undefined;
  afterEach(async () => {
    await sim?.close();
    sim = undefined;
  });

  async function setup(clock?: FakeClock) {
    sim = await startSimulator({
      sessions: [{ name: 'default', datasetOptions: { chats: 5, messages: 50, seed: 3 } }],
    });
    const controller = createConcurrencyController({ initial: 10, max: 40, clock, overloadFactor: 0.7 });
    const waits: string[] = [];
    // Records who waits to send, so the test can anchor on "B is held back" rather than on time.
    const observer: RequestObserver = {
      waitToSend: (signal) => {
        waits.push('wait');
        return controller.waitToSend(signal);
      },
      attemptStarted: () => controller.attemptStarted(),
      pauseFor: (ms) => controller.pauseFor(ms),
    };
    const http = createWahaHttp({
      baseUrl: sim.url,
      requestTimeoutMs: 300,
      maxResponseBytes: 1024 * 1024,
      retry: { ...DEFAULT_RETRY_POLICY, baseDelayMs: 5, maxDelayMs: 20, maxRetryAfterMs: 40 },
      observer,
    });
    return { sim, controller, http, waits };
  }

  it('reports every attempt: ok, overload (503, 429, timeout) and other errors', async () => {
    // The real clock: a cut and the requests sent after it are told apart by time.
    const { sim, controller, http } = await setup();
    await http.getJson('/api/default/chats', {});
    expect(controller.stats()).toMatchObject({ observations: 1, overloads: 0, errors: 0 });
    sim.failNext(1, { status: 503 });
    sim.failNext(1, { status: 500 });
    sim.failNext(1, { status: 'timeout' });
    await http.getJson('/api/default/chats', {});
    expect(controller.stats()).toMatchObject({ observations: 5, overloads: 2, errors: 1, pauses: 0 });
    expect(http.stats).toEqual({ requests: 5, retries: 3, overloads: 2 });
    expect(controller.limit).toBe(4); // 10 -> 7 -> 4: the timeout was sent after the first cut
    expect(controller.inFlight).toBe(0);
  });

  it('a Retry-After pauses every new request, not only the one that got it', async () => {
    const clock = new FakeClock();
    const { sim, controller, http, waits } = await setup(clock);
    sim.failNext(1, { status: 429, retryAfterS: 30 });
    const first = http.getJson('/api/default/chats', {});
    // The 429 arrives: the controller pauses (capped by maxRetryAfterMs, 40 ms on its clock).
    while (!controller.paused) await new Promise<void>((resolve) => setImmediate(resolve));
    const pausedAt = sim.stats().requests;
    const second = http.getJson('/api/default/chats', {});
    // Both the new request and the retry of the first end up parked on the pause.
    while (clock.sleeping < 2) await new Promise<void>((resolve) => setImmediate(resolve));
    expect(waits.length).toBe(3);
    expect(sim.stats().requests).toBe(pausedAt);
    clock.advance(40);
    await Promise.all([first, second]);
    expect(sim.stats().requests).toBe(pausedAt + 2);
    expect(controller.stats()).toMatchObject({ pauses: 1, pausedMs: 40, overloads: 1 });
  });
});
