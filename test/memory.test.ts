import { HEAP_GROWING_PERCENT, limitHeapGrowth } from '../src/cli/heap.js';
import type { Progress, Reporter } from '../src/report/reporter.js';
import { startSimulator, type Simulator } from '../src/sim/index.js';
import type { StrategyName, StrategyOptions } from '../src/strategies/types.js';
import { useTestDatabase } from './support/db.js';
import { runAgainstSim } from './support/run.js';

/**
 * Flat memory: what the runner keeps per chat, beyond the chat list itself, is bounded by what the
 * strategy buffers (a batch, a chunk, a chat per fetcher), never by the number of chats. Counts, not RSS.
 */

const db = useTestDatabase();

const CHATS = 150;
const CONCURRENCY = 4;
const OPTIONS: StrategyOptions = { concurrency: CONCURRENCY, chunkSize: 10, batchSize: 20, flushMs: 50 };

/** Chats the runner may track at once: those whose last page is fetched and whose completion is not committed. */
const BOUND: Record<StrategyName, number> = {
  // Two batches being committed, a sealed one and an open one, each at most --batch-size chats, and a
  // page per fetcher waiting.
  streaming: 4 * OPTIONS.batchSize + CONCURRENCY,
  // A chunk.
  chunked: OPTIONS.chunkSize,
  // A chat per fetcher.
  parallel: CONCURRENCY,
  sequential: 1,
};

function lastProgress(): Reporter & { last: () => Progress | undefined } {
  let last: Progress | undefined;
  return new Proxy({} as Reporter & { last: () => Progress | undefined }, {
    get(_target, key) {
      if (key === 'last') return () => last;
      if (key === 'progress') return (p: Progress) => (last = p);
      return () => undefined;
    },
  });
}

describe('memory per chat', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator({
      sessions: [{ name: 'default', datasetOptions: { chats: CHATS, messages: 450, seed: 5 } }],
    });
  });
  afterAll(async () => {
    await sim.close();
  });

  it.each(['streaming', 'chunked', 'parallel', 'sequential'] as const)(
    '%s: the runner tracks a bounded number of chats, not every chat of the run',
    async (name) => {
      const reporter = lastProgress();
      const outcome = await runAgainstSim(name, {
        sim,
        db,
        strategyOptions: OPTIONS,
        chatPageSize: 100,
        reporter: () => reporter,
      });
      expect(outcome.error).toBeUndefined();
      expect(outcome.summary).toMatchObject({ chats: CHATS, chatsImported: CHATS, messagesFetched: 450 });
      // The progress line still counts every chat fetched, from a counter rather than a set of ids.
      expect(reporter.last()).toMatchObject({ chatsFetched: CHATS, chatsDone: CHATS });
      expect(outcome.memory.peakChatsTracked).toBeGreaterThan(0);
      expect(outcome.memory.peakChatsTracked).toBeLessThanOrEqual(BOUND[name]);
    },
  );
});

describe('heap growth', () => {
  it('is limited unless node was given a heap flag of its own, on its command line or in NODE_OPTIONS', () => {
    expect(HEAP_GROWING_PERCENT).toBeGreaterThan(0);
    for (const flag of [
      '--max-old-space-size=512',
      '--max_old_space_size=512',
      '--heap-growing-percent=300',
      '--max-heap-size=1024',
    ]) {
      expect([flag, limitHeapGrowth([flag], '')]).toEqual([flag, false]);
      expect([flag, limitHeapGrowth([], `--enable-source-maps ${flag}`)]).toEqual([flag, false]);
    }
    // Other flags, and flags that only look alike, leave it to us.
    expect(
      limitHeapGrowth(['--enable-source-maps', '--max-semi-space-size=16'], '--max-old-space-sizes'),
    ).toBe(true);
  });
});
