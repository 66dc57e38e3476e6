import type { ConcurrencyLimit } from '../concurrency/limiter.js';
import type { Batch, ChatRecord, MessageRecord, WriteResult } from '../domain.js';

/**
 * The contract every strategy shares. A strategy decides only the order of fetching and how fetched
 * messages are grouped into transactions; it never sees HTTP or SQL. All strategies must leave the same
 * database for the same data and window.
 */

export const STRATEGY_NAMES = ['sequential', 'parallel', 'chunked', 'streaming'] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];

export interface SourcePage {
  messages: MessageRecord[];
  /** Offset this page was asked for; resuming a chat at this offset re-reads this page. */
  offset: number;
  /** Offset of the page after this one. */
  nextOffset: number;
  last: boolean;
}

export interface MessageSource {
  /** One chat's messages in the run's window, page by page, newest first, starting at `startOffset`. */
  pages(chat: ChatRecord, signal: AbortSignal, startOffset?: number): AsyncIterable<SourcePage>;
}

/** What one transaction carries, and what it proves once committed (for the checkpoint). */
export interface CommitUnit {
  batch: Batch;
  /** Chats whose every message in the window is now committed. */
  chatsCompleted: string[];
  /** Chats committed only up to a page boundary: the offset to continue from. */
  chatsInProgress: Array<{ chatId: string; nextOffset: number }>;
}

export interface CommitSink {
  /** Writes the unit in exactly one transaction; resolves after the commit (and the checkpoint) are durable. */
  commit(unit: CommitUnit): Promise<WriteResult>;
}

export interface StrategyOptions {
  /**
   * Chats fetched at once: a fixed number, or a limit that changes while the run goes (the adaptive
   * controller of src/concurrency/limiter.ts); the fan-out follows it as it moves.
   */
  concurrency: number | ConcurrencyLimit;
  /** chunked: chats per transaction. */
  chunkSize: number;
  /** streaming: messages per transaction. */
  batchSize: number;
  /** streaming: flush a partial batch after this long without reaching batchSize. */
  flushMs: number;
}

export interface StrategyContext {
  /** Chats still to import, each with the offset to start from (0 unless resuming). */
  chats: ReadonlyArray<{ chat: ChatRecord; startOffset: number }>;
  source: MessageSource;
  sink: CommitSink;
  options: StrategyOptions;
  /** Aborted on Ctrl-C: stop fetching, let a commit in flight finish, return or throw promptly. */
  signal: AbortSignal;
}

export interface Strategy {
  name: StrategyName;
  /** One line for --help: which situation it fits. */
  fits: string;
  run(context: StrategyContext): Promise<void>;
}
