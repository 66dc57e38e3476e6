import type { ConcurrencyLimit } from '../concurrency/limiter.js';
import type { Batch, ChatRecord, MessageRecord, WriteResult } from '../domain.js';
import type { ResumePoint } from '../import/resume-point.js';

/**
 * The contract every strategy shares. A strategy decides only the order of fetching and how fetched
 * messages are grouped into transactions; it never sees HTTP or SQL. All strategies must leave the same
 * database for the same data and window.
 */

export const STRATEGY_NAMES = ['sequential', 'parallel', 'chunked', 'streaming'] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];

export interface SourcePage {
  messages: MessageRecord[];
  /**
   * An opaque resume point: once this page and the chat's earlier pages are committed, the chat
   * continues from here (src/import/resume-point.ts: a time cursor, or the time spans left of a chat
   * read in slices).
   */
  resumeAt: ResumePoint;
  /** The chat's last page: once it commits, every message of the chat in the window is stored. */
  last: boolean;
}

export interface MessageSource {
  /**
   * One chat's messages in the run's window, page by page, from `resumeAt` (or the start); a chat's
   * pages must be committed in the order they come (a page's resume point counts on the pages before it). An iteration that ends without a `last` page means the chat failed (the source recorded
   * why): the chat must not be marked complete, and nothing more of it is expected in this run.
   */
  pages(chat: ChatRecord, signal: AbortSignal, resumeAt?: ResumePoint): AsyncIterable<SourcePage>;
}

/** What one transaction carries, and what it proves once committed (for the checkpoint). */
export interface CommitUnit {
  batch: Batch;
  /** Chats whose every message in the window is now committed. */
  chatsCompleted: string[];
  /** Chats committed only up to a page boundary: where each continues. */
  chatsInProgress: Array<{ chatId: string; resumeAt: ResumePoint }>;
}

export interface CommitSink {
  /**
   * Writes the unit in exactly one transaction; resolves after the commit (and the checkpoint) are durable.
   * With `after` (the commit of the unit before, still in flight), the unit is prepared at once but
   * commits only after `after` has resolved, and fails if it rejects: units still commit in order.
   */
  commit(unit: CommitUnit, after?: Promise<unknown>): Promise<WriteResult>;
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
  /** Chats still to import, each with where to continue (absent: from the start). */
  chats: ReadonlyArray<{ chat: ChatRecord; resumeAt?: ResumePoint | undefined }>;
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
