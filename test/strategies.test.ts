import type { ConcurrencyLimit } from '../src/concurrency/limiter.js';
import type { ChatRecord, MessageRecord, WriteResult } from '../src/domain.js';
import { forEachConcurrently } from '../src/strategies/concurrency.js';
import { availableStrategies } from '../src/strategies/registry.js';
import type {
  CommitUnit,
  MessageSource,
  SourcePage,
  StrategyContext,
  StrategyOptions,
} from '../src/strategies/types.js';

/**
 * Strategy invariants with an in-memory source and sink (fakes, no HTTP, no SQL): every message is
 * committed exactly once, a chat is reported complete only in the transaction holding its last page,
 * and failures stop the run without anything running on behind it. The same invariants against the
 * simulator and a real PostgreSQL are in the end-to-end tests.
 */

const PAGE = 10;

function chat(index: number): ChatRecord {
  const id = `${index}@c.us`;
  return { session: 's', id, chatId: id, name: null, kind: 'person', lastActivityAt: null, raw: {} };
}

function message(chatId: string, index: number): MessageRecord {
  return {
    session: 's',
    id: `false_${chatId}_${index}`,
    chatId,
    waId: `${chatId}-${index}`,
    fromMe: false,
    sender: chatId,
    recipient: null,
    participant: null,
    body: `m${index}`,
    type: 'text',
    hasMedia: false,
    ack: 1,
    timestampS: 1_700_000_000 + index,
    replyToId: null,
    raw: {},
  };
}

/** Chat i has sizes[i] messages; pages of PAGE, the last one short or empty like the safe page-end rule. */
function fakeSource(sizes: number[], options: { failChat?: number; delayMs?: number } = {}) {
  let pagesServed = 0;
  let messagesServed = 0;
  let inFlight = 0;
  const source: MessageSource = {
    // The fake's resume point is an offset: strategies treat it as opaque.
    async *pages(c, signal, resumeAt) {
      const startOffset = typeof resumeAt === 'number' ? resumeAt : 0;
      const index = Number(c.id.split('@')[0]);
      const total = sizes[index]!;
      for (let offset = startOffset; ; offset += PAGE) {
        inFlight++;
        await new Promise((r) => setTimeout(r, options.delayMs ?? 0));
        inFlight--;
        signal.throwIfAborted();
        if (options.failChat === index && offset > 0) throw new Error(`fetch failed for chat ${index}`);
        const messages: MessageRecord[] = [];
        for (let i = offset; i < Math.min(total, offset + PAGE); i++) messages.push(message(c.id, i));
        pagesServed++;
        messagesServed += messages.length;
        const page: SourcePage = { messages, resumeAt: offset + PAGE, last: messages.length === 0 };
        yield page;
        if (page.last) return;
      }
    },
  };
  return {
    source,
    pagesServed: () => pagesServed,
    messagesServed: () => messagesServed,
    inFlight: () => inFlight,
  };
}

function recordingSink(options: { failAt?: number; delayMs?: number } = {}) {
  const units: CommitUnit[] = [];
  let writing = 0;
  let maxConcurrentCommits = 0;
  /** Commits started while another was in flight without being told to follow it. */
  let unorderedOverlaps = 0;
  return {
    units,
    maxConcurrentCommits: () => maxConcurrentCommits,
    unorderedOverlaps: () => unorderedOverlaps,
    sink: {
      async commit(unit: CommitUnit, after?: Promise<unknown>): Promise<WriteResult> {
        if (writing > 0 && !after) unorderedOverlaps++;
        writing++;
        maxConcurrentCommits = Math.max(maxConcurrentCommits, writing);
        try {
          await new Promise((r) => setTimeout(r, options.delayMs ?? 0));
          // As the real sink: a unit prepared ahead commits after the one before, and not if it failed.
          await after;
          if (options.failAt !== undefined && units.length === options.failAt)
            throw new Error('write failed');
          units.push(unit);
          return { inserted: unit.batch.messages.length, updated: 0, unchanged: 0, cleaned: 0 };
        } finally {
          writing--;
        }
      },
    },
  };
}

const OPTIONS = { concurrency: 4, chunkSize: 3, batchSize: 25, flushMs: 5 } satisfies StrategyOptions;

function contextFor(
  sizes: number[],
  sink: StrategyContext['sink'],
  source: MessageSource,
  signal = new AbortController().signal,
  options: Partial<StrategyOptions> = {},
): StrategyContext {
  return {
    chats: sizes.map((_, i) => ({ chat: chat(i) })),
    source,
    sink,
    options: { ...OPTIONS, ...options },
    signal,
  };
}

const SIZES = [0, 1, 9, 10, 11, 57, 3, 120, 2, 30, 5, 44];

describe.each(availableStrategies().map((s) => [s.name, s] as const))('strategy %s', (name, strategy) => {
  it('commits every message exactly once and completes each chat after its last page', async () => {
    const { source } = fakeSource(SIZES);
    const recorder = recordingSink();
    await strategy.run(contextFor(SIZES, recorder.sink, source));

    const committedIds = recorder.units.flatMap((u) => u.batch.messages.map((m) => m.id));
    const expected = SIZES.flatMap((size, chatIndex) =>
      Array.from({ length: size }, (_, i) => message(`${chatIndex}@c.us`, i).id),
    );
    expect(new Set(committedIds).size).toBe(committedIds.length);
    expect([...committedIds].sort()).toEqual([...expected].sort());

    const completed = recorder.units.flatMap((u) => u.chatsCompleted);
    expect([...completed].sort()).toEqual(SIZES.map((_, i) => `${i}@c.us`).sort());
    // Each chat row is written in the same transaction as (or before) its completion.
    recorder.units.forEach((unit, n) => {
      for (const chatId of unit.chatsCompleted) {
        const firstWithChat = recorder.units.findIndex((u) => u.batch.chats.some((c) => c.id === chatId));
        expect(firstWithChat).toBeGreaterThanOrEqual(0);
        expect(firstWithChat).toBeLessThanOrEqual(n);
      }
    });
    // The per-chat parallel strategy commits several transactions at once (at most one per fetcher);
    // streaming prepares the next batch while one commits, and orders the two; the others, one at a time.
    expect(recorder.maxConcurrentCommits()).toBeLessThanOrEqual(
      name === 'parallel' ? OPTIONS.concurrency : name === 'streaming' ? 2 : 1,
    );
    if (name !== 'parallel') expect(recorder.unorderedOverlaps()).toBe(0);
  });

  it('stops on a failed fetch: the error surfaces and nothing is committed afterwards', async () => {
    const { source, inFlight } = fakeSource(SIZES, { failChat: 7 });
    const recorder = recordingSink();
    await expect(strategy.run(contextFor(SIZES, recorder.sink, source))).rejects.toThrow(
      'fetch failed for chat 7',
    );
    const unitsAtFailure = recorder.units.length;
    await new Promise((r) => setTimeout(r, 30));
    expect(recorder.units.length).toBe(unitsAtFailure);
    expect(inFlight()).toBe(0);
    expect(recorder.units.flatMap((u) => u.chatsCompleted)).not.toContain('7@c.us');
  });

  it('stops on a failed write without committing anything after it', async () => {
    const { source } = fakeSource(SIZES);
    const recorder = recordingSink({ failAt: 1 });
    await expect(strategy.run(contextFor(SIZES, recorder.sink, source))).rejects.toThrow('write failed');
    const unitsAtFailure = recorder.units.length;
    await new Promise((r) => setTimeout(r, 30));
    expect(recorder.units.length).toBe(unitsAtFailure);
  });

  it('stops promptly when aborted, leaving no fetch or commit running', async () => {
    const { source, inFlight } = fakeSource(SIZES, { delayMs: 2 });
    const recorder = recordingSink({ delayMs: 2 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('stop')), 15);
    await expect(strategy.run(contextFor(SIZES, recorder.sink, source, controller.signal))).rejects.toThrow();
    const unitsAtStop = recorder.units.length;
    await new Promise((r) => setTimeout(r, 30));
    expect(recorder.units.length).toBe(unitsAtStop);
    expect(inFlight()).toBe(0);
  });
});

describe('transactions per strategy', () => {
  const byName = Object.fromEntries(availableStrategies().map((s) => [s.name, s]));

  it('sequential and parallel commit once per chat, chunked once per chunk, below --batch-size messages', async () => {
    for (const [name, expected] of [
      ['sequential', SIZES.length],
      ['parallel', SIZES.length],
      ['chunked', Math.ceil(SIZES.length / OPTIONS.chunkSize)],
    ] as const) {
      const recorder = recordingSink();
      // Every chunk of SIZES holds fewer than 200 messages.
      await byName[name]!.run(
        contextFor(SIZES, recorder.sink, fakeSource(SIZES).source, undefined, { batchSize: 200 }),
      );
      expect([name, recorder.units.length]).toEqual([name, expected]);
    }
  });

  it('parallel: chats of one page commit once each, even when together they hold more than --batch-size', async () => {
    // Each chat is one full page and the empty page that ends it; eight at once hold 80 messages.
    const sizes = Array.from({ length: 24 }, () => PAGE);
    const recorder = recordingSink({ delayMs: 2 });
    await byName.parallel!.run(
      contextFor(sizes, recorder.sink, fakeSource(sizes, { delayMs: 1 }).source, undefined, {
        batchSize: 30,
        concurrency: 8,
      }),
    );
    expect(recorder.units).toHaveLength(sizes.length);
    expect(
      recorder.units.every((u) => u.chatsCompleted.length === 1 && u.batch.messages.length === PAGE),
    ).toBe(true);
  });

  describe.each(['sequential', 'parallel', 'chunked'] as const)('%s past --batch-size', (name) => {
    const sizes = [300, 7, 0, 250, 64, 301, 12, 290, 280, 270, 260, 310];
    const batchSize = 30;
    // Eight big chats at once: were each to hold up to --batch-size, they would go far past the bound below.
    const concurrency = 8;

    it('commits a big chat (or chunk) in parts, in order, holding only a bounded part in memory', async () => {
      const fake = fakeSource(sizes, { delayMs: 1 });
      const recorder = recordingSink({ delayMs: 2 });
      const committed = (): number => recorder.units.reduce((n, u) => n + u.batch.messages.length, 0);
      let maxAhead = 0;
      const source: MessageSource = {
        async *pages(c, signal, startOffset) {
          for await (const page of fake.source.pages(c, signal, startOffset)) {
            maxAhead = Math.max(maxAhead, fake.messagesServed() - committed());
            yield page;
          }
        },
      };
      await byName[name]!.run(
        contextFor(sizes, recorder.sink, source, undefined, { batchSize, concurrency, chunkSize: 3 }),
      );

      const ids = recorder.units.flatMap((u) => u.batch.messages.map((m) => m.id));
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids).toHaveLength(sizes.reduce((a, b) => a + b, 0));
      recorder.units.forEach((unit, n) => {
        // A part is cut at the first page that reaches --batch-size: never more than a page past it.
        expect(unit.batch.messages.length).toBeLessThanOrEqual(batchSize + PAGE - 1);
        if (name !== 'chunked') expect(unit.batch.chats).toHaveLength(1);
        const before = recorder.units.slice(0, n + 1).flatMap((u) => u.batch.messages);
        for (const { chatId, resumeAt } of unit.chatsInProgress) {
          // The cursor recorded is the end of what is committed of that chat, in this part or before
          // (the fake's cursor is the next page's offset).
          const committedOfChat = before.filter((m) => m.chatId === chatId).length;
          expect(resumeAt).toBe(Math.ceil(committedOfChat / PAGE) * PAGE);
          expect(unit.chatsCompleted).not.toContain(chatId);
        }
        for (const chatId of unit.chatsCompleted) {
          // Completed only once every one of its messages is committed, by this part or an earlier one.
          const size = sizes[Number(chatId.split('@')[0])]!;
          expect(before.filter((m) => m.chatId === chatId)).toHaveLength(size);
        }
      });
      // Each big chat took several parts; each chat completed exactly once.
      const completed = recorder.units.flatMap((u) => u.chatsCompleted);
      expect([...completed].sort()).toEqual(sizes.map((_, i) => `${i}@c.us`).sort());
      const partsOf300 = recorder.units.filter((u) => u.batch.messages.some((m) => m.chatId === '0@c.us'));
      expect(partsOf300.length).toBeGreaterThanOrEqual(Math.ceil(300 / (batchSize + PAGE)));
      // Fetched but not committed, whatever the concurrency: --batch-size across the run, and for
      // per-chat strategies two pages per fetcher (a chat commits its part once the run holds that many
      // and it holds its share, but one holding a single page fetches on), for chunked one page per
      // fetcher and the page that waits for the next part.
      const bound = batchSize + (name === 'chunked' ? (concurrency + 1) * PAGE : 2 * concurrency * PAGE);
      expect(maxAhead).toBeLessThanOrEqual(bound);
    });
  });

  it('streaming never splits a page, keeps batches near --batch-size, and records in-progress offsets', async () => {
    const recorder = recordingSink({ delayMs: 3 });
    const sizes = [250, 7, 130, 0, 64];
    await byName.streaming!.run(
      contextFor(sizes, recorder.sink, fakeSource(sizes).source, undefined, { batchSize: 40 }),
    );
    const total = sizes.reduce((a, b) => a + b, 0);
    expect(recorder.units.flatMap((u) => u.batch.messages)).toHaveLength(total);
    for (const unit of recorder.units) {
      // One page past batchSize at most: a page is never split between transactions.
      expect(unit.batch.messages.length).toBeLessThanOrEqual(40 + PAGE - 1);
      for (const { chatId, resumeAt: nextOffset } of unit.chatsInProgress) {
        const committedSoFar = recorder.units
          .slice(0, recorder.units.indexOf(unit) + 1)
          .flatMap((u) => u.batch.messages)
          .filter((m) => m.chatId === chatId).length;
        // Offsets advance a page at a time; every committed page of this fake but the last is full.
        expect(nextOffset).toBe(Math.ceil(committedSoFar / PAGE) * PAGE);
        expect(nextOffset).toBeGreaterThan(0);
      }
    }
    expect(recorder.units.length).toBeGreaterThanOrEqual(Math.ceil(total / (40 + PAGE - 1)));
  });

  it('streaming seals a batch at --batch-size chats too: chats without messages in the window do not pile up in one', async () => {
    // 500 chats with nothing in the window (each a single empty last page), arriving faster than
    // --flush-ms: without a bound on chats the open batch would take them all.
    const sizes = Array.from({ length: 500 }, (_, i) => (i % 100 === 0 ? 3 : 0));
    const recorder = recordingSink();
    await byName.streaming!.run(
      contextFor(sizes, recorder.sink, fakeSource(sizes).source, undefined, {
        batchSize: 40,
        flushMs: 60_000,
      }),
    );
    for (const unit of recorder.units) {
      expect(unit.batch.chats.length).toBeLessThanOrEqual(40);
      expect(unit.chatsCompleted.length).toBeLessThanOrEqual(40);
    }
    const completed = recorder.units.flatMap((u) => u.chatsCompleted);
    expect([...completed].sort()).toEqual(sizes.map((_, i) => `${i}@c.us`).sort());
    expect(recorder.units.flatMap((u) => u.batch.messages)).toHaveLength(15);
  });

  it('streaming holds back fetchers while the writer is slow (bounded buffer)', async () => {
    const sizes = Array.from({ length: 40 }, () => 50);
    const fake = fakeSource(sizes);
    const recorder = recordingSink({ delayMs: 20 });
    let maxAhead = 0;
    const sink = {
      async commit(unit: CommitUnit) {
        const committed = recorder.units.reduce((n, u) => n + u.batch.messages.length, 0);
        const fetched = fake.messagesServed();
        maxAhead = Math.max(maxAhead, fetched - committed);
        return recorder.sink.commit(unit);
      },
    };
    await byName.streaming!.run(
      contextFor(sizes, sink, fake.source, undefined, { batchSize: 30, concurrency: 8 }),
    );
    // Fetched but uncommitted: the batch being written, one sealed, one open, and a page per fetcher.
    expect(maxAhead).toBeLessThanOrEqual(3 * (30 + PAGE) + 8 * PAGE);
  });
});

/** A limit the test moves by hand, at chosen events of the run. */
class ManualLimit implements ConcurrencyLimit {
  private listeners = new Set<(limit: number) => void>();
  constructor(public limit: number) {}
  set(limit: number): void {
    this.limit = limit;
    for (const listener of [...this.listeners]) listener(limit);
  }
  onChange(listener: (limit: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  get subscribers(): number {
    return this.listeners.size;
  }
}

describe.each(['parallel', 'chunked', 'streaming'] as const)(
  'strategy %s under a limit that changes while it runs',
  (name) => {
    const strategy = availableStrategies().find((s) => s.name === name)!;

    it('starts a chat only below the limit in force, follows a raise and a cut, and imports every chat once', async () => {
      const sizes = Array.from({ length: 30 }, (_, i) => 15 + (i % 4) * 10);
      const fake = fakeSource(sizes, { delayMs: 1 });
      const limit = new ManualLimit(2);
      let chatsInFlight = 0;
      let started = 0;
      const startsAboveLimit: Array<{ chat: number; inFlight: number; limit: number }> = [];
      let maxAfterRaise = 0;
      let maxAfterCut = 0;
      let phase: 'before' | 'raised' | 'cut' = 'before';
      const source: MessageSource = {
        async *pages(c, signal, startOffset) {
          chatsInFlight++;
          started++;
          if (chatsInFlight > limit.limit) {
            startsAboveLimit.push({ chat: started, inFlight: chatsInFlight, limit: limit.limit });
          }
          if (phase === 'raised') maxAfterRaise = Math.max(maxAfterRaise, chatsInFlight);
          if (phase === 'cut') maxAfterCut = Math.max(maxAfterCut, chatsInFlight);
          // Moves anchored on chats starting, not on time.
          if (started === 4) {
            phase = 'raised';
            limit.set(6);
          } else if (started === 16) {
            phase = 'cut';
            limit.set(1);
          }
          try {
            yield* fake.source.pages(c, signal, startOffset);
          } finally {
            chatsInFlight--;
          }
        },
      };
      const recorder = recordingSink();
      await strategy.run(
        contextFor(sizes, recorder.sink, source, undefined, {
          concurrency: limit,
          chunkSize: 100,
          batchSize: 40,
        }),
      );

      expect(startsAboveLimit).toEqual([]);
      // The raise let more chats run at once (the two already running may be committing, not fetching).
      expect(maxAfterRaise).toBeGreaterThanOrEqual(5);
      expect(maxAfterRaise).toBeLessThanOrEqual(6);
      // After the cut, chats in flight finished and new ones started one at a time.
      expect(maxAfterCut).toBe(1);
      expect(started).toBe(sizes.length);
      const committedIds = recorder.units.flatMap((u) => u.batch.messages.map((m) => m.id));
      expect(new Set(committedIds).size).toBe(committedIds.length);
      expect(committedIds).toHaveLength(sizes.reduce((a, b) => a + b, 0));
      expect([...recorder.units.flatMap((u) => u.chatsCompleted)].sort()).toEqual(
        sizes.map((_, i) => `${i}@c.us`).sort(),
      );
      // The fan-out let go of the limit when it finished.
      expect(limit.subscribers).toBe(0);
    });
  },
);

describe('the fan-out under a changing limit', () => {
  it('never runs more items than the limit in force when each started, whatever the moves', async () => {
    const limit = new ManualLimit(3);
    const items = Array.from({ length: 200 }, (_, i) => i);
    let running = 0;
    let peak = 0;
    const violations: string[] = [];
    const moves = [7, 1, 12, 2, 5, 1, 20, 4];
    await forEachConcurrently(items, limit, new AbortController().signal, async (item) => {
      running++;
      peak = Math.max(peak, running);
      if (running > limit.limit) violations.push(`item ${item}: ${running} > ${limit.limit}`);
      if (item % 25 === 10) limit.set(moves[(item - 10) / 25]!);
      await new Promise((r) => setTimeout(r, item % 3));
      running--;
    });
    expect(violations).toEqual([]);
    expect(peak).toBe(20);
    expect(running).toBe(0);
  });

  it('rejects a fixed concurrency below 1 instead of running nothing', async () => {
    await expect(
      forEachConcurrently([1, 2], 0, new AbortController().signal, async () => undefined),
    ).rejects.toThrow(RangeError);
  });
});
