import { setMaxListeners } from 'node:events';
import type { ChatRecord, MessageRecord } from '../domain.js';
import { forEachConcurrently } from './concurrency.js';
import type { ResumePoint } from '../import/resume-point.js';
import type { CommitUnit, SourcePage, Strategy, StrategyContext } from './types.js';

/**
 * The seed's option C: fetchers, a batcher and a writer overlap. Fetchers (at --concurrency) hand whole
 * pages to the batcher; it seals a batch when it holds --batch-size messages or has been quiet for
 * --flush-ms; one writer commits sealed batches in order while fetching goes on.
 *
 * Bounds: two batches are committed at once, at most one sealed batch waits for the writer and one is
 * being filled, so memory stays near 4 x batch-size + concurrency x page-size messages; a fetcher whose
 * page would overfill that waits.
 * A batch also seals at batch-size chats, so chats with nothing in the window do not gather in one.
 * Pages are never split across batches, so a checkpoint can say "chat X is committed up to point Y".
 * Batches commit in order, so a chat whose last page is in batch N has all earlier pages committed too.
 */

/** Batches being committed at once: one written, the next one prepared (see Pipeline.write). */
const COMMITS_IN_FLIGHT = 2;

interface OpenBatch {
  chats: Map<string, ChatRecord>;
  messages: MessageRecord[];
  completed: string[];
  inProgress: Map<string, ResumePoint>;
}

function emptyBatch(): OpenBatch {
  return { chats: new Map(), messages: [], completed: [], inProgress: new Map() };
}

function toUnit(batch: OpenBatch): CommitUnit {
  return {
    batch: { chats: [...batch.chats.values()], messages: batch.messages },
    chatsCompleted: batch.completed,
    chatsInProgress: [...batch.inProgress].map(([chatId, resumeAt]) => ({ chatId, resumeAt })),
  };
}

class Pipeline {
  private open = emptyBatch();
  private sealed: CommitUnit | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  /** The quiet timer fired while the writer was busy: seal as soon as it is free. */
  private flushDue = false;
  private finished = false;
  private failure: { error: unknown } | undefined;
  /** Wakes the writer (a batch was sealed, or the input ended) and the fetchers waiting for room. */
  private wakeWriter: (() => void) | undefined;
  private roomWaiters: Array<() => void> = [];

  constructor(
    private readonly context: StrategyContext,
    /** Aborted by Ctrl-C or by a failure of either side, so fetches in flight stop at once. */
    private readonly stop: AbortController,
  ) {}

  private get signal(): AbortSignal {
    return this.stop.signal;
  }

  /** Called by fetchers, one whole page at a time. Resolves once the page is buffered. */
  async addPage(chat: ChatRecord, page: SourcePage): Promise<void> {
    // The open batch may always take one page past batchSize; beyond that, wait for the writer.
    while (this.sealed && this.full(this.open) && !this.failure) {
      await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    }
    this.signal.throwIfAborted();
    if (this.failure) throw this.failure.error;
    const batch = this.open;
    if (!batch.chats.has(chat.id)) batch.chats.set(chat.id, chat);
    for (const message of page.messages) batch.messages.push(message);
    if (page.last) {
      batch.inProgress.delete(chat.id);
      batch.completed.push(chat.id);
    } else {
      batch.inProgress.set(chat.id, page.resumeAt);
    }
    if (this.full(batch)) this.trySeal();
    else this.armFlushTimer();
  }

  /**
   * A batch is full at --batch-size messages, or at --batch-size chats: chats with nothing in the window
   * (a single empty page each) add no messages, and arriving faster than --flush-ms they would otherwise
   * pile up in one batch without bound.
   */
  private full(batch: OpenBatch): boolean {
    const { batchSize } = this.context.options;
    return batch.messages.length >= batchSize || batch.chats.size >= batchSize;
  }

  /** No more pages will come: seal what is left and let the writer drain. */
  end(): void {
    this.finished = true;
    this.trySeal();
    this.wakeWriter?.();
  }

  fail(error: unknown): void {
    this.failure ??= { error };
    if (!this.stop.signal.aborted) this.stop.abort(error);
    this.releaseRoom();
    this.wakeWriter?.();
  }

  private armFlushTimer(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = setTimeout(() => {
      this.flushDue = true;
      this.trySeal();
    }, this.context.options.flushMs);
  }

  /** Seals the open batch if the writer has room for it; otherwise the writer seals it when it frees up. */
  private trySeal(): void {
    clearTimeout(this.flushTimer);
    if (this.sealed || this.open.chats.size === 0) return;
    this.flushDue = false;
    this.sealed = toUnit(this.open);
    this.open = emptyBatch();
    this.releaseRoom();
    this.wakeWriter?.();
  }

  private releaseRoom(): void {
    const waiters = this.roomWaiters;
    this.roomWaiters = [];
    for (const wake of waiters) wake();
  }

  /**
   * The writer: commits sealed batches in order until the input ends or something fails. Two are in
   * flight at once: while one is written, the next one's rows are built and staged on a second
   * connection (CommitSink's `after`), so PostgreSQL does not wait for Node between batches, nor Node
   * for PostgreSQL. The second still commits after the first, and not at all if the first fails.
   */
  async write(): Promise<void> {
    const inFlight = new Set<Promise<unknown>>();
    let previous: Promise<unknown> | undefined;
    let firstFailure: { error: unknown } | undefined;
    for (;;) {
      if (this.failure || this.signal.aborted || firstFailure) break;
      const unit = this.sealed;
      if (unit && inFlight.size < COMMITS_IN_FLIGHT) {
        this.sealed = undefined;
        const committing = this.context.sink.commit(unit, inFlight.size > 0 ? previous : undefined);
        previous = committing;
        const tracked = committing.then(
          () => undefined,
          (error: unknown) => {
            // The first to fail in order is the cause: a batch whose predecessor failed fails with it.
            firstFailure ??= { error };
          },
        );
        inFlight.add(tracked);
        void tracked.then(() => {
          inFlight.delete(tracked);
          this.wakeWriter?.();
        });
        // A batch that filled up meanwhile goes next, without waiting for its timer.
        if (this.full(this.open) || this.finished || this.flushDue) {
          this.trySeal();
        }
        this.releaseRoom();
        continue;
      }
      if (!unit && this.finished && inFlight.size === 0) return;
      await new Promise<void>((resolve) => {
        this.wakeWriter = resolve;
      });
      this.wakeWriter = undefined;
    }
    // Stopping (Ctrl-C, or a failure): what is in flight finishes or fails before we return.
    while (inFlight.size > 0) await Promise.all([...inFlight]);
    if (firstFailure) throw firstFailure.error;
  }

  dispose(): void {
    clearTimeout(this.flushTimer);
    this.releaseRoom();
  }
}

export const streaming: Strategy = {
  name: 'streaming',
  fits: 'the default and the fastest measured: fetching never waits for writing; bounded memory',
  async run(context) {
    const stop = new AbortController();
    setMaxListeners(0, stop.signal);
    const onAbort = (): void => stop.abort(context.signal.reason);
    if (context.signal.aborted) onAbort();
    else context.signal.addEventListener('abort', onAbort, { once: true });
    const pipeline = new Pipeline(context, stop);
    const fetching = forEachConcurrently(
      context.chats,
      context.options.concurrency,
      stop.signal,
      async ({ chat, resumeAt }, signal) => {
        for await (const page of context.source.pages(chat, signal, resumeAt)) {
          await pipeline.addPage(chat, page);
        }
      },
    ).then(
      () => pipeline.end(),
      (error: unknown) => {
        pipeline.fail(error);
        throw error;
      },
    );
    const writing = pipeline.write().catch((error: unknown) => {
      pipeline.fail(error);
      throw error;
    });
    try {
      const [fetched, written] = await Promise.allSettled([fetching, writing]);
      // The writer's error is the cause when both failed: fetchers stop because the writer did.
      if (written.status === 'rejected') throw written.reason;
      if (fetched.status === 'rejected') throw fetched.reason;
      context.signal.throwIfAborted();
    } finally {
      context.signal.removeEventListener('abort', onAbort);
      pipeline.dispose();
    }
  },
};
