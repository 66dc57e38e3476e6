/**
 * How long this process was kept from running its callbacks: its own CPU work (parsing pages, building
 * rows) or a machine too busy to schedule it. A response that arrived while the event loop could not
 * take it is counted late by exactly such a delay, which says nothing about a queue in WAHA.
 *
 * A timer is asked to fire every `intervalMs`; whatever it fires later than that is local delay. The
 * total only grows. While a tick is overdue, the overdue part counts at once, so a response handled
 * right after a long block already sees that block.
 */
export interface LocalDelayMeter {
  /** Local delay in ms accumulated since the meter was made (ticks while stopped count nothing). */
  totalMs(): number;
  /** Measures from now on (idempotent); the timer does not keep the process alive. */
  start(): void;
  /** Stops the timer (idempotent); the total is kept. */
  stop(): void;
}

/** Delay below this per tick is timer granularity, not a blocked loop. */
const TICK_SLACK_MS = 1;

export function createLocalDelayMeter(
  intervalMs = 10,
  now: () => number = () => performance.now(),
): LocalDelayMeter {
  let total = 0;
  let lastTick = 0;
  let timer: NodeJS.Timeout | undefined;
  const overdue = (at: number): number => Math.max(0, at - lastTick - intervalMs - TICK_SLACK_MS);
  return {
    totalMs() {
      return timer === undefined ? total : total + overdue(now());
    },
    start() {
      if (timer !== undefined) return;
      lastTick = now();
      timer = setInterval(() => {
        const at = now();
        total += overdue(at);
        lastTick = at;
      }, intervalMs);
      timer.unref();
    },
    stop() {
      if (timer === undefined) return;
      total += overdue(now());
      clearInterval(timer);
      timer = undefined;
    },
  };
}
