import { setMaxListeners } from 'node:events';
import type { ConcurrencyLimit } from '../concurrency/limiter.js';

/**
 * Runs `work` over `items`, in order, at most `concurrency` at a time. `concurrency` is a fixed number or
 * a limit that changes while this runs (adaptive concurrency): a raise starts more items at once; a cut
 * lets the items in flight finish and starts no new one until fewer than the new limit are running.
 * It returns only once every started call has settled, so no fetch or commit keeps running behind the
 * caller's back; the first failure (or the outer abort) aborts the signal handed to the others and is
 * rethrown.
 */
export async function forEachConcurrently<T>(
  items: readonly T[],
  concurrency: number | ConcurrencyLimit,
  outer: AbortSignal,
  work: (item: T, signal: AbortSignal) => Promise<void>,
): Promise<void> {
  const limitNow =
    typeof concurrency === 'number' ? () => concurrency : () => Math.max(1, Math.floor(concurrency.limit));
  if (typeof concurrency === 'number' && !(concurrency >= 1)) {
    throw new RangeError(`concurrency must be at least 1, got ${concurrency}`);
  }
  const controller = new AbortController();
  // Every fetch in flight listens on this signal; hundreds at once are expected, not a leak.
  setMaxListeners(0, controller.signal);
  const onOuterAbort = (): void => controller.abort(outer.reason);
  if (outer.aborted) onOuterAbort();
  else outer.addEventListener('abort', onOuterAbort, { once: true });
  let firstError: { error: unknown } | undefined;
  let unsubscribe: (() => void) | undefined;
  try {
    await new Promise<void>((resolve) => {
      let next = 0;
      let running = 0;
      const runOne = async (item: T): Promise<void> => {
        try {
          await work(item, controller.signal);
        } catch (error) {
          firstError ??= { error };
          controller.abort(error);
        }
      };
      const pump = (): void => {
        while (!controller.signal.aborted && next < items.length && running < limitNow()) {
          const item = items[next++]!;
          running++;
          void runOne(item).then(() => {
            running--;
            pump();
          });
        }
        if (running === 0 && (next >= items.length || controller.signal.aborted)) resolve();
      };
      if (typeof concurrency !== 'number') unsubscribe = concurrency.onChange(() => pump());
      pump();
    });
  } finally {
    unsubscribe?.();
    outer.removeEventListener('abort', onOuterAbort);
  }
  if (firstError) throw firstError.error;
  if (outer.aborted) throw outer.reason;
}
