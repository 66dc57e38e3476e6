import type { BatchWriter, ChatRecord, TimeWindow } from '../domain.js';
import { errorMessage, InterruptedError, KnownError } from '../errors.js';
import type { Strategy, StrategyOptions, CommitSink, MessageSource } from '../strategies/types.js';
import { resolvePageEnd, type PageEndRule, type WahaClient } from '../waha/client.js';
import type { Reporter } from '../report/reporter.js';
import type { RunLog } from './run-log.js';
import { formatCount, type ConcurrencySummary, type ImportSummary } from './summary.js';
import { currentLimit, type ConcurrencyController, type ConcurrencyLimit } from '../concurrency/limiter.js';

export interface ImportPlan {
  session: string;
  window: TimeWindow;
  strategy: Strategy;
  strategyOptions: StrategyOptions;
  pageSize: number;
  pageEnd: PageEndRule;
  /** Empty pages in a row that end a chat under the `empty` rule (see ChatPagingOptions). */
  emptyPagesToEnd?: number;
  chatPageSize: number;
  /**
   * Fetch each chat only from where its last completed import ended (`chat_sync`), minus `overlapS`
   * seconds; chats with no such record (new ones, or a first run) use `window`.
   */
  incremental?: { overlapS: number };
  /** Recorded in the runs table; must hold no secrets. */
  recordedOptions: Record<string, unknown>;
}

/** The resume cursor as the runner uses it (src/checkpoint implements it). */
export interface ResumeCursor {
  isCompleted(chatId: string): boolean;
  startOffset(chatId: string): number;
  /** Called after each commit, never before. */
  recordCommit(unit: {
    chatsCompleted: string[];
    chatsInProgress: Array<{ chatId: string; nextOffset: number }>;
    messages: number;
  }): Promise<void>;
  complete(): Promise<void>;
  flush(): Promise<void>;
}

export interface ImportDeps {
  waha: WahaClient;
  /** Absent: nothing is resumed and nothing recorded (the bench runs so). */
  checkpoint?: ResumeCursor;
  writer: BatchWriter;
  /** Per chat, the span already complete in the database; required by incremental plans. */
  syncMarks?: (session: string) => Promise<Map<string, TimeWindow>>;
  runLog: RunLog;
  reporter: Reporter;
  signal: AbortSignal;
  now?: () => number;
}

export interface ImportOutcome {
  /** Status `running` means the import never started (the session check or the chat listing failed). */
  summary: ImportSummary;
  /** Why the run failed or stopped; InterruptedError after a Ctrl-C. */
  error?: unknown;
}

/**
 * One import of one session: check the session, list its chats, hand them to the strategy, and keep
 * the books. Never throws: the outcome carries the summary and, when it failed, the error, both
 * already recorded in the runs table.
 */
export async function runImport(deps: ImportDeps, plan: ImportPlan): Promise<ImportOutcome> {
  const now = deps.now ?? Date.now;
  const startedMs = now();
  const { waha, reporter, signal } = deps;
  const summary: ImportSummary = {
    session: plan.session,
    strategy: plan.strategy.name,
    window: plan.window,
    status: 'running',
    engine: null,
    pageEnd: null,
    chats: 0,
    chatsImported: 0,
    chatsResumed: 0,
    incremental: plan.incremental
      ? { overlapS: plan.incremental.overlapS, chatsQuiet: 0, chatsNew: 0 }
      : null,
    messagesFetched: 0,
    inserted: 0,
    updated: 0,
    unchanged: 0,
    cleaned: 0,
    wahaRequests: 0,
    retries: 0,
    dbTransactions: 0,
    elapsedMs: 0,
    messagesPerSecond: 0,
    error: null,
    peakRssMb: 0,
    concurrency: describeConcurrency(plan.strategyOptions.concurrency),
  };
  const requestsAtStart = waha.stats.requests;
  const retriesAtStart = waha.stats.retries;
  const transactionsAtStart = deps.writer.transactions;
  let runId: number | null = null;

  const settle = (): void => {
    summary.wahaRequests = waha.stats.requests - requestsAtStart;
    summary.retries = waha.stats.retries - retriesAtStart;
    summary.dbTransactions = deps.writer.transactions - transactionsAtStart;
    summary.elapsedMs = now() - startedMs;
    summary.messagesPerSecond =
      summary.elapsedMs > 0 ? (summary.messagesFetched * 1000) / summary.elapsedMs : 0;
    summary.peakRssMb = Math.round(process.resourceUsage().maxRSS / 1024);
    summary.concurrency = describeConcurrency(plan.strategyOptions.concurrency);
  };

  try {
    reporter.step(`Checking WAHA session "${plan.session}" at ${waha.displayUrl}`);
    const version = await waha.version(signal);
    const session = await waha.requireWorkingSession(plan.session, signal);
    summary.engine = version?.engine ?? null;
    const pageEnd = resolvePageEnd(plan.pageEnd, version?.engine);
    summary.pageEnd = pageEnd;
    reporter.stepDone(
      `Session "${session.name}" is WORKING` +
        (session.me ? ` as ${session.me.pushName ?? session.me.id}` : '') +
        (version ? ` (WAHA ${version.version}, ${version.engine})` : ''),
    );

    reporter.step('Listing chats');
    const chats = await waha.listChats(plan.session, plan.chatPageSize, signal);
    summary.chats = chats.length;
    reporter.stepDone(`${formatCount(chats.length)} chats listed`);

    const windows = new Map<string, TimeWindow>();
    const quiet = new Set<string>();
    if (plan.incremental) {
      if (!deps.syncMarks) throw new Error('an incremental import needs the sync marks');
      const marks = await deps.syncMarks(plan.session);
      const planned = planIncremental(chats, marks, plan.window, plan.incremental.overlapS);
      for (const [chatId, window] of planned.windows) windows.set(chatId, window);
      for (const chatId of planned.quiet) quiet.add(chatId);
      summary.incremental = {
        overlapS: plan.incremental.overlapS,
        chatsQuiet: planned.quiet.length,
        chatsNew: planned.chatsNew,
      };
      reporter.info(
        marks.size === 0
          ? `Incremental: no chat has been imported into this schema yet; every chat uses the full window`
          : `Incremental: ${formatCount(chats.length - planned.quiet.length - planned.chatsNew)} chats continue from their last import, ` +
              `${formatCount(planned.chatsNew)} are new, ${formatCount(planned.quiet.length)} had no activity since`,
      );
    }
    const windowOf = (chatId: string): TimeWindow => windows.get(chatId) ?? plan.window;

    runId = await deps.runLog.start({
      session: plan.session,
      strategy: plan.strategy.name,
      window: plan.window,
      options: { ...plan.recordedOptions, pageEnd },
    });

    const source: MessageSource = {
      async *pages(chat: ChatRecord, pageSignal: AbortSignal, startOffset = 0) {
        for await (const page of waha.chatMessages(plan.session, chat, {
          window: windowOf(chat.id),
          pageSize: plan.pageSize,
          pageEnd,
          ...(plan.emptyPagesToEnd === undefined ? {} : { emptyPagesToEnd: plan.emptyPagesToEnd }),
          startOffset,
          signal: pageSignal,
        })) {
          summary.messagesFetched += page.messages.length;
          yield { ...page, nextOffset: page.offset + plan.pageSize };
        }
      },
    };
    const sink: CommitSink = {
      async commit(unit) {
        const result = await deps.writer.writeBatch({
          ...unit.batch,
          synced: unit.chatsCompleted.map((chatId) => ({
            session: plan.session,
            chatId,
            ...windowOf(chatId),
          })),
        });
        // Counted before the checkpoint is saved: if saving fails, the summary still shows what committed.
        summary.inserted += result.inserted;
        summary.updated += result.updated;
        summary.unchanged += result.unchanged;
        summary.cleaned += result.cleaned;
        summary.chatsImported += unit.chatsCompleted.length;
        await deps.checkpoint?.recordCommit({
          chatsCompleted: unit.chatsCompleted,
          chatsInProgress: unit.chatsInProgress,
          messages: unit.batch.messages.length,
        });
        reporter.progress({
          chatsDone: summary.chatsImported,
          chatsTotal: summary.chats,
          messagesFetched: summary.messagesFetched,
          messagesWritten: summary.inserted + summary.updated + summary.unchanged,
          concurrency: currentLimit(plan.strategyOptions.concurrency),
        });
        return result;
      },
    };

    const cursor = deps.checkpoint;
    const unquiet = chats.filter((chat) => !quiet.has(chat.id));
    const todo = cursor ? unquiet.filter((chat) => !cursor.isCompleted(chat.id)) : unquiet;
    summary.chatsResumed = unquiet.length - todo.length;
    // Quiet chats are done without a request: nothing of theirs can be in the window they would use.
    summary.chatsImported = summary.chatsResumed + quiet.size;
    if (summary.chatsResumed > 0) {
      reporter.info(
        `${formatCount(summary.chatsResumed)} chats were already imported by the interrupted run; skipping them`,
      );
    }
    reporter.importStarted({ chats: chats.length, strategy: plan.strategy.name, window: plan.window });
    reporter.progress({
      chatsDone: summary.chatsImported,
      chatsTotal: chats.length,
      messagesFetched: 0,
      messagesWritten: 0,
      concurrency: currentLimit(plan.strategyOptions.concurrency),
    });
    await plan.strategy.run({
      chats: todo.map((chat) => ({ chat, startOffset: cursor?.startOffset(chat.id) ?? 0 })),
      source,
      sink,
      options: plan.strategyOptions,
      signal,
    });
    reporter.importFinished();
    await cursor?.complete();
    summary.status = 'succeeded';
  } catch (caught) {
    reporter.importFinished();
    // An abort surfaces as whatever the interrupted operation threw; a real failure keeps its own error.
    const interrupted =
      signal.aborted && !(caught instanceof KnownError && !(caught instanceof InterruptedError));
    const error = interrupted ? new InterruptedError() : caught;
    try {
      await deps.checkpoint?.flush();
    } catch (flushError) {
      reporter.warn(errorMessage(flushError));
    }
    settle();
    if (runId === null) return { summary, error };
    summary.status = interrupted ? 'interrupted' : 'failed';
    summary.error = errorMessage(error);
    try {
      await deps.runLog.finish(runId, summary);
    } catch (logError) {
      reporter.warn(`could not record the run's failure in the runs table: ${errorMessage(logError)}`);
    }
    return { summary, error };
  }
  settle();
  try {
    await deps.runLog.finish(runId, summary);
  } catch (logError) {
    return { summary, error: logError };
  }
  return { summary };
}

/**
 * Each chat's window in an incremental run. A chat with a sync mark continues from the mark's end minus
 * the overlap (late messages and messages sharing the last second are fetched again and written
 * idempotently); a chat without one is new and takes the run's full window. A chat whose last activity,
 * as WAHA lists it, is older than the start of its window holds nothing to fetch: it is quiet.
 */
export function planIncremental(
  chats: readonly ChatRecord[],
  marks: ReadonlyMap<string, TimeWindow>,
  runWindow: TimeWindow,
  overlapS: number,
): { windows: Map<string, TimeWindow>; quiet: string[]; chatsNew: number } {
  const windows = new Map<string, TimeWindow>();
  const quiet: string[] = [];
  let chatsNew = 0;
  for (const chat of chats) {
    const mark = marks.get(chat.id);
    if (!mark) {
      chatsNew++;
      continue;
    }
    const fromS = mark.toS - overlapS;
    const lastActivityS =
      chat.lastActivityAt === null ? null : Math.floor(chat.lastActivityAt.getTime() / 1000);
    if (fromS > runWindow.toS || (lastActivityS !== null && lastActivityS < fromS)) quiet.push(chat.id);
    else windows.set(chat.id, { fromS, toS: runWindow.toS });
  }
  return { windows, quiet, chatsNew };
}

/** The concurrency as the summary shows it: the fixed number, or what the adaptive controller did. */
function describeConcurrency(concurrency: number | ConcurrencyLimit): ConcurrencySummary {
  if (typeof concurrency === 'number') return { mode: 'fixed', limit: concurrency };
  const stats = 'stats' in concurrency ? (concurrency as ConcurrencyController).stats() : undefined;
  if (!stats) return { mode: 'auto', limit: concurrency.limit };
  return {
    mode: 'auto',
    limit: stats.current,
    settled: stats.settled,
    lowest: stats.lowest,
    highest: stats.highest,
    max: stats.max,
    overloads: stats.overloads,
    pauses: stats.pauses,
    pausedMs: Math.round(stats.pausedMs),
  };
}
