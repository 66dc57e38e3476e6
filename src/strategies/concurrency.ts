import { setMaxListeners } from 'node:events';
import pMap from 'p-map';
import type { MessageRecord } from '../domain.js';

/**
 * Runs `work` over `items` at most `concurrency` at a time. Unlike a bare p-map, it returns only once
 * every started call has settled, so no fetch or commit keeps running behind the caller's back; the
 * first failure (or the outer abort) aborts the signal handed to the others and is rethrown.
 */
export async function forEachConcurrently<T>(
  items: readonly T[],
  concurrency: number,
  outer: AbortSignal,
  work: (item: T, signal: AbortSignal) => Promise<void>,
): Promise<void> {
  const controller = new AbortController();
  // Every fetch in flight listens on this signal; hundreds at once are expected, not a leak.
  setMaxListeners(0, controller.signal);
  const onOuterAbort = (): void => controller.abort(outer.reason);
  if (outer.aborted) onOuterAbort();
  else outer.addEventListener('abort', onOuterAbort, { once: true });
  let firstError: { error: unknown } | undefined;
  try {
    await pMap(
      items,
      async (item) => {
        if (controller.signal.aborted) return;
        try {
          await work(item, controller.signal);
        } catch (error) {
          firstError ??= { error };
          controller.abort(error);
        }
      },
      { concurrency, stopOnError: false },
    );
  } finally {
    outer.removeEventListener('abort', onOuterAbort);
  }
  if (firstError) throw firstError.error;
  if (outer.aborted) throw outer.reason;
}

/** All of one chat's pages in memory: the per-chat strategies commit a chat as a whole. */
export async function collectChat(
  pages: AsyncIterable<{ messages: MessageRecord[] }>,
): Promise<MessageRecord[]> {
  const messages: MessageRecord[] = [];
  for await (const page of pages) messages.push(...page.messages);
  return messages;
}
