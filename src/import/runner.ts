import type {
  Batch,
  BatchOrder,
  BatchWriter,
  ChatKind,
  ChatRecord,
  MessageRecord,
  TimeWindow,
  WriteResult,
} from '../domain.js';
import {
  errorMessage,
  InterruptedError,
  KnownError,
  WahaRefusedError,
  WahaUnavailableError,
} from '../errors.js';
import type { ChatFailure, ChatFailureReason, StoredChat } from '../db/failed-chats.js';
import { formKey, type SyncMarks } from '../db/sync.js';
import { ChatPagingError } from '../waha/client.js';
import type {
  Strategy,
  StrategyOptions,
  CommitSink,
  CommitUnit,
  MessageSource,
} from '../strategies/types.js';
import { resolvePageEnd, type ChatListOptions, type PageEndRule, type WahaClient } from '../waha/client.js';
import { canonicalId, mergesPersonForms, otherPersonForms, type LidMap } from '../waha/ids.js';
import { chatKind, withLids, type SessionInfo, type VersionInfo } from '../waha/parse.js';
import type { Progress, Reporter } from '../report/reporter.js';
import type { RunLog } from './run-log.js';
import {
  formatCount,
  formatDuration,
  startingSummary,
  type ConcurrencySummary,
  type ImportSummary,
} from './summary.js';
import { currentLimit, type ConcurrencyController, type ConcurrencyLimit } from '../concurrency/limiter.js';
import type { ResumePoint } from './resume-point.js';
import { SliceBudget, slicedPages } from './slices.js';

export interface ImportPlan {
  session: string;
  window: TimeWindow;
  strategy: Strategy;
  strategyOptions: StrategyOptions;
  pageSize: number;
  pageEnd: PageEndRule;
  /** Empty pages in a row that end a chat under the `empty` rule (see ChatPagingOptions). */
  emptyPagesToEnd?: number;
  /**
   * Time slices one chat may be read in at once, on engines that filter by time in their store (NOWEB,
   * GOWS): src/import/slices.ts. Default 1: a chat is read in one slice.
   */
  maxSlices?: number;
  chatPageSize: number;
  /**
   * WAHA's version and the session, when the caller has checked them already (the CLI does so before it
   * opens the database); absent: the runner checks them first.
   */
  checked?: { version: VersionInfo | null; session: SessionInfo };
  /**
   * Fetch each chat only from where its last completed import ended (`chat_sync`), minus `overlapS`
   * seconds; chats with no such record (new ones, or a first run) use `window`.
   */
  incremental?: { overlapS: number };
  /**
   * A full (not incremental) run straight after a resumed one, which completed `chats` over an earlier
   * window ending at `endS`: those chats are read only from `endS` (their earlier part is in the
   * database); every other chat (one that failed, or a new one) is read over the whole window.
   */
  continuing?: { chats: ReadonlySet<string>; endS: number };
  /** Recorded in the runs table; must hold no secrets. */
  recordedOptions: Record<string, unknown>;
  /**
   * The chats to import, as an earlier listing found them (a queued job carries its share of a plan):
   * WAHA's chat list is not asked again. Absent: every chat WAHA lists.
   */
  chats?: ChatRecord[];
}

/** The resume cursor as the runner uses it (src/checkpoint implements it). */
export interface ResumeCursor {
  /**
   * Every batch is counted under this id in the database, in its own transaction (`checkpoint_progress`);
   * undefined for a cursor read from the database itself (a queued job's, from `chat_sync`).
   */
  readonly id: string | undefined;
  isCompleted(chatId: string): boolean;
  resumeAt(chatId: string): ResumePoint | undefined;
  /** Called after each commit, never before. */
  recordCommit(unit: {
    chatsCompleted: string[];
    chatsInProgress: Array<{ chatId: string; resumeAt: ResumePoint }>;
    messages: number;
  }): Promise<void>;
  complete(): Promise<void>;
  /** The run read every chat and some failed; absent: `flush` is called instead. */
  endPartial?(): Promise<void>;
  flush(): Promise<void>;
}

export interface ImportDeps {
  waha: WahaClient;
  /** Absent: nothing is resumed and nothing recorded (the bench runs so). */
  checkpoint?: ResumeCursor;
  writer: BatchWriter;
  /** Per chat, the span already complete in the database; required by incremental plans. */
  syncMarks?: (session: string) => Promise<SyncMarks>;
  runLog: RunLog;
  /** Where chats that could not be imported are recorded; absent: only the summary names them. */
  failedChats?: {
    record(failure: ChatFailure, runId: number | null): Promise<void>;
    /**
     * The chats still failed (ids as listed), with the window each failed in: every run reads them over
     * it too, and incremental plans retry them whatever the marks say.
     */
    list?(session: string): Promise<Array<{ chatId: string; window?: TimeWindow | null }>>;
    /** What is stored of chats (by stored id): a failed chat WAHA no longer lists is read with it. */
    storedChats?(session: string, ids: readonly string[]): Promise<StoredChat[]>;
  };
  reporter: Reporter;
  signal: AbortSignal;
  now?: () => number;
}

export interface ImportOutcome {
  /** Status `running` means the import never started (the session check or the chat listing failed). */
  summary: ImportSummary;
  /** Why the run failed or stopped; InterruptedError after a Ctrl-C. */
  error?: unknown;
  /** What the runner held per chat beyond the chat list, for tests: it must not grow with the chats. */
  memory: RunnerMemory;
}

export interface RunnerMemory {
  /** Most chats tracked at once: fetched to their last page, their completion not committed yet. */
  peakChatsTracked: number;
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
  const summary: ImportSummary = startingSummary({
    session: plan.session,
    strategy: plan.strategy.name,
    window: plan.window,
    status: 'running',
    incremental: plan.incremental
      ? {
          overlapS: plan.incremental.overlapS,
          chatsQuiet: 0,
          chatsNew: 0,
          chatsRetried: 0,
          chatsBackfilled: 0,
        }
      : null,
    concurrency: describeConcurrency(plan.strategyOptions.concurrency),
  });
  const requestsAtStart = waha.stats.requests;
  const retriesAtStart = waha.stats.retries;
  const transactionsAtStart = deps.writer.transactions;
  let runId: number | null = null;
  let budgetInUse: SliceBudget | undefined;

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

  const runnerMemory: RunnerMemory = { peakChatsTracked: 0 };
  let failuresInARow = 0;
  let refusedInARow = 0;
  /** Chats that failed in this run, by listed id: nothing more of theirs is fetched or committed. */
  const failed = new Map<string, ChatFailure>();
  /** Chats of this run fetched to their last page, or failed: what the progress line counts. */
  let settled = 0;
  /**
   * Chats fetched to their last page whose completion is not committed yet: a chat that fails now (its
   * batch refused) is settled already. It holds what the strategy's buffers hold, not every chat.
   */
  const lastPageFetched = new Set<string>();
  const fetchedToLastPage = (chatId: string): void => {
    settled++;
    lastPageFetched.add(chatId);
    runnerMemory.peakChatsTracked = Math.max(runnerMemory.peakChatsTracked, lastPageFetched.size);
  };
  let settledBefore = 0;
  const progressNow = (): Progress => ({
    chatsDone: summary.chatsImported,
    chatsFetched: settledBefore + settled,
    chatsTotal: summary.chats,
    messagesFetched: summary.messagesFetched,
    messagesWritten: summary.inserted + summary.updated + summary.unchanged,
    concurrency: currentLimit(plan.strategyOptions.concurrency),
  });
  // Progress moves with pages fetched, not only with commits (a batch can take seconds to fill).
  let pageProgressMs = 0;
  /** Each chat's window where it is not the run's (incremental, resumed, or owed an earlier one). */
  const windows = new Map<string, TimeWindow>();
  const windowOf = (chatId: string): TimeWindow => windows.get(chatId) ?? plan.window;
  const failChat = async (chat: ChatRecord, reason: ChatFailureReason, error: unknown): Promise<void> => {
    if (failed.has(chat.id)) return;
    const failure: ChatFailure = {
      session: plan.session,
      chatId: chat.id,
      reason,
      error: errorMessage(error),
      window: windowOf(chat.id),
    };
    failed.set(chat.id, failure);
    if (!lastPageFetched.delete(chat.id)) settled++;
    summary.chatsFailed = failed.size;
    summary.failedChats.push({ chatId: chat.id, reason, error: failure.error });
    reporter.warn(`chat ${chat.id} failed (${describeReason(reason)}): ${failure.error}`);
    try {
      await deps.failedChats?.record(failure, runId);
    } catch (recordError) {
      reporter.warn(`could not record the failed chat in the database: ${errorMessage(recordError)}`);
    }
  };

  try {
    const { version, session } = plan.checked ?? (await checkSession(waha, plan.session, reporter, signal));
    // The session's own engine decides paging and ids; the server's default engine may be another.
    const engine = session.engine ?? version?.engine ?? null;
    summary.engine = engine;
    const pageEnd = resolvePageEnd(plan.pageEnd, engine ?? undefined);
    summary.pageEnd = pageEnd;
    const skewS = Math.round(waha.clockSkewMs() / 1000);
    if (Math.abs(skewS) >= CLOCK_WARNING_S) {
      reporter.warn(
        `WAHA's clock (the Date of its answers) is ${formatDuration(Math.abs(skewS) * 1000)} ${skewS < 0 ? 'behind' : 'ahead of'} this machine's: ` +
          (skewS < 0
            ? 'chats are recorded as read up to the time on WAHA, not beyond it. '
            : 'the time on WAHA is used to check the times it sends. ') +
          'Set both clocks right (NTP): times are compared with the ones WhatsApp gives the messages.',
      );
    }

    reporter.step(plan.chats ? 'Asking WAHA which hidden numbers it knows' : 'Listing chats');
    const failedLookup =
      deps.failedChats?.list && deps.failedChats.storedChats
        ? { list: deps.failedChats.list, storedChats: deps.failedChats.storedChats }
        : undefined;
    const {
      lids,
      chats: listed,
      otherForms,
      unlistedFailed,
    } = await lidsAndChats(
      waha,
      plan.session,
      plan.chats ? undefined : { pageSize: plan.chatPageSize, engine },
      signal,
      version,
      failedLookup,
    );
    const chats = plan.chats ?? listed!;
    summary.chats = chats.length;
    summary.chatsUnlisted = chats.filter((chat) => chat.unlisted).length;
    reporter.stepDone(
      `${formatCount(chats.length - unlistedFailed.length)} chats ${plan.chats ? 'to import' : 'listed'}` +
        otherFormsNote(otherForms, version) +
        unlistedFailedNote(unlistedFailed),
    );
    if (unlistedFailed.length > 0) reporter.warn(unlistedFailedWarning(unlistedFailed));

    const quiet = new Set<string>();
    const failedBefore = (await deps.failedChats?.list?.(plan.session)) ?? [];
    if (plan.incremental) {
      if (!deps.syncMarks) throw new Error('an incremental import needs the sync marks');
      const marks = await deps.syncMarks(plan.session);
      const failed = new Set(failedBefore.map((f) => f.chatId));
      const planned = planIncremental(chats, marks, plan.window, plan.incremental.overlapS, failed);
      for (const [chatId, window] of planned.windows) windows.set(chatId, window);
      for (const chatId of planned.quiet) quiet.add(chatId);
      summary.incremental = {
        overlapS: plan.incremental.overlapS,
        chatsQuiet: planned.quiet.length,
        chatsNew: planned.chatsNew,
        chatsRetried: planned.chatsRetried,
        chatsBackfilled: planned.chatsBackfilled,
      };
      reporter.info(
        marks.size === 0 && failed.size === 0
          ? `Incremental: no chat has been imported into this schema yet; every chat uses the full window`
          : `Incremental: ${formatCount(planned.windows.size)} chats continue from their last import, ` +
              `${formatCount(planned.chatsNew)} are new, ${formatCount(planned.quiet.length)} had no activity since` +
              (planned.chatsRetried
                ? `; ${formatCount(planned.chatsRetried)} still failed from an earlier run are retried over the whole window`
                : '') +
              (planned.chatsBackfilled
                ? `; ${formatCount(planned.chatsBackfilled)} whose last import started after ${new Date(plan.window.fromS * 1000).toISOString()} are read over the whole window`
                : ''),
      );
    }
    if (plan.continuing && !plan.incremental) {
      const fromS = Math.max(plan.window.fromS, plan.continuing.endS);
      for (const chat of chats) {
        if (plan.continuing.chats.has(chat.id)) windows.set(chat.id, { fromS, toS: plan.window.toS });
      }
    }
    const owed = owedWindows(chats, failedBefore, windowOf);
    for (const [chatId, window] of owed) windows.set(chatId, window);
    if (owed.size > 0) {
      const fromS = Math.min(...[...owed.values()].map((w) => w.fromS));
      reporter.info(
        `${formatCount(owed.size)} ${owed.size === 1 ? 'chat' : 'chats'} still failed from an earlier run ` +
          `${owed.size === 1 ? 'is' : 'are'} read over the window ${owed.size === 1 ? 'it' : 'they'} failed in too ` +
          `(back to ${new Date(fromS * 1000).toISOString()}): a completion over a shorter window would leave those days unread`,
      );
    }

    runId = await deps.runLog.start({
      session: plan.session,
      strategy: plan.strategy.name,
      window: plan.window,
      options: { ...plan.recordedOptions, pageEnd, engine },
    });

    // Slicing needs a store that filters by time (WEBJS reads a chat from its newest message in the
    // browser whatever the filter, and can fail on a window that holds nothing: #1885); `sequential`
    // promises WAHA one request at a time.
    const sliceable = (engine === 'NOWEB' || engine === 'GOWS') && plan.strategy.name !== 'sequential';
    const maxSlices = sliceable ? Math.max(1, plan.maxSlices ?? 1) : 1;
    const budget = maxSlices > 1 ? new SliceBudget(plan.strategyOptions.concurrency) : undefined;
    budgetInUse = budget;
    const slicing = budget ? { options: { maxSlices }, budget } : undefined;
    const source: MessageSource = {
      async *pages(chat: ChatRecord, pageSignal: AbortSignal, resumeAt?: ResumePoint) {
        try {
          const paging = {
            pageSize: plan.pageSize,
            pageEnd,
            ...(plan.emptyPagesToEnd === undefined ? {} : { emptyPagesToEnd: plan.emptyPagesToEnd }),
            meId: session.me?.id ?? null,
            lids: lids.map,
            merge: true,
          };
          const window = windowOf(chat.id);
          for await (const page of slicedPages(
            waha,
            plan.session,
            chat,
            paging,
            window,
            resumeAt,
            slicing,
            pageSignal,
          )) {
            if (failed.has(chat.id)) return;
            if (page.last) failuresInARow = 0;
            summary.messagesFetched += page.messages.length;
            summary.messagesWithoutTimestamp += page.messages.filter((m) => m.timestampS === null).length;
            if (page.last) fetchedToLastPage(chat.id);
            if (Date.now() - pageProgressMs >= PAGE_PROGRESS_MS) {
              pageProgressMs = Date.now();
              reporter.progress(progressNow());
            }
            yield { messages: page.messages, resumeAt: page.resume, last: page.last };
          }
        } catch (error) {
          const reason = pageSignal.aborted ? null : await chatFailureReason(error);
          if (reason === null) throw error;
          // One chat failing is that chat; every chat failing is WAHA, and waiting out the rest helps nobody.
          // A chat WAHA no longer lists may well be refused (deleted in WhatsApp): that says nothing of WAHA.
          if (!chat.unlisted && ++failuresInARow >= MAX_CHAT_FAILURES_IN_A_ROW) throw error;
          await failChat(chat, reason, error);
        }
      },
    };

    /** Is this error one chat's, or the run's? A chat's when WAHA still serves the session. */
    const chatFailureReason = async (error: unknown): Promise<ChatFailureReason | null> => {
      if (error instanceof ChatPagingError) return 'unstable-paging';
      let reason: ChatFailureReason;
      if (error instanceof WahaRefusedError && (error.status === 400 || error.status === 404)) {
        reason = 'waha-cannot-route';
      } else if (error instanceof WahaUnavailableError) {
        reason = 'waha-failing';
      } else {
        return null;
      }
      // WAHA down, or the session gone, fails every chat alike: that is the run's failure, not this chat's.
      try {
        await waha.requireWorkingSession(plan.session, signal);
      } catch {
        return null;
      }
      return reason;
    };

    const byId = new Map(chats.map((chat) => [chat.id, chat]));
    const commitOne = async (unit: CommitUnit, order?: BatchOrder): Promise<WriteResult> => {
      // Every page of the batch was read before now on WAHA's clock: a span ends no later (a machine
      // whose clock runs ahead of WAHA's, its database's with it, would mark seconds WAHA had not reached).
      const wahaNowS = Math.floor((now() + waha.clockSkewMs()) / 1000);
      const result = await deps.writer.writeBatch(
        {
          ...unit.batch,
          synced: unit.chatsCompleted.flatMap((listedId) => {
            const { fromS, toS } = windowOf(listedId);
            const endS = Math.min(toS, wahaNowS);
            const chatId = byId.get(listedId)?.chatId ?? listedId;
            return endS < fromS ? [] : [{ session: plan.session, chatId, listedId, fromS, toS: endS }];
          }),
          completedListed: unit.chatsCompleted.map((chatId) => ({
            session: plan.session,
            chatId,
            window: windowOf(chatId),
          })),
          ...(deps.checkpoint?.id === undefined
            ? {}
            : { progress: { checkpointId: deps.checkpoint.id, session: plan.session } }),
        },
        order,
      );
      // Counted before the checkpoint is saved: if saving fails, the summary still shows what committed.
      summary.inserted += result.inserted;
      summary.updated += result.updated;
      summary.unchanged += result.unchanged;
      summary.cleaned += result.cleaned;
      summary.chatsImported += unit.chatsCompleted.length;
      for (const chatId of unit.chatsCompleted) lastPageFetched.delete(chatId);
      await deps.checkpoint?.recordCommit({
        chatsCompleted: unit.chatsCompleted,
        chatsInProgress: unit.chatsInProgress,
        messages: unit.batch.messages.length,
      });
      return result;
    };
    /** Each unit's first attempt, as the unit after it follows it: by the promise commit() returned. */
    const tickets = new WeakMap<Promise<unknown>, Steps>();
    /**
     * A unit prepared while the one before it commits (`after`): it is staged at once, runs its
     * statements once those of the one before have run (only its commit left: this unit may then wait
     * for its row locks, never the other way round), and commits once the one before has committed.
     * When the first attempt of the one before fails, this one rolls back at once (the retries of the
     * one before, a chat at a time, must not wait for its locks) and, once those are through, is written
     * again alone, without the chats they failed: a chat whose records the unit before could not store
     * must not get its later pages, nor its completion, from this one.
     */
    const commitAfter = async (
      unit: CommitUnit,
      after: Promise<unknown>,
      ticket: Ticket,
    ): Promise<WriteResult | null> => {
      const before = tickets.get(after) ?? { ran: after, committed: after };
      const kept = withoutChats(unit, failed, byId);
      const turn = (step: Promise<unknown>) => () =>
        step.then(
          () => undefined,
          () => {
            throw new WriteAgainError('the batch before it failed');
          },
        );
      try {
        const result = await commitOne(kept, {
          statements: turn(before.ran),
          ran: ticket.markRan,
          commit: turn(before.committed),
        });
        ticket.markCommitted();
        return result;
      } catch (error) {
        ticket.markFailed();
        // The unit before decides first: its failure is the run's, whatever this one met.
        await after;
        if (isWriteAgain(error) || isRefusedRecord(error)) return null;
        throw error;
      }
    };
    const sink: CommitSink = {
      commit(unit, after) {
        const ticket = newTicket();
        const done = commitUnit(unit, after, ticket);
        tickets.set(done, ticket);
        return done;
      },
    };
    const commitUnit = async (
      unit: CommitUnit,
      after: Promise<unknown> | undefined,
      ticket: Ticket,
    ): Promise<WriteResult> => {
      if (after) {
        const result = await commitAfter(unit, after, ticket);
        if (result) {
          reporter.progress(progressNow());
          return result;
        }
      }
      const kept = withoutChats(unit, failed, byId);
      let result: WriteResult;
      try {
        result = await commitOne(kept, { ran: ticket.markRan });
        ticket.markCommitted();
      } catch (error) {
        ticket.markFailed();
        if (!isRefusedRecord(error)) throw error;
        // PostgreSQL refused something in the batch: find the chat it belongs to, one transaction per
        // chat, and let the others through.
        result = { inserted: 0, updated: 0, unchanged: 0, cleaned: 0 };
        for (const part of splitByChat(kept, byId)) {
          try {
            const partResult = await commitOne(part.unit);
            refusedInARow = 0;
            result.inserted += partResult.inserted;
            result.updated += partResult.updated;
            result.unchanged += partResult.unchanged;
            result.cleaned += partResult.cleaned;
          } catch (partError) {
            if (!isRefusedRecord(partError) || !part.chat) throw partError;
            // A constraint that refuses every chat is the database's problem, not the chats'.
            if (++refusedInARow >= MAX_CHAT_FAILURES_IN_A_ROW) throw partError;
            await failChat(part.chat, 'database-refused', partError);
          }
        }
      }
      reporter.progress(progressNow());
      return result;
    };

    const cursor = deps.checkpoint;
    const unquiet = chats.filter((chat) => !quiet.has(chat.id));
    const todo = cursor ? unquiet.filter((chat) => !cursor.isCompleted(chat.id)) : unquiet;
    summary.chatsResumed = unquiet.length - todo.length;
    // Quiet chats are done without a request: nothing of theirs can be in the window they would use.
    summary.chatsImported = summary.chatsResumed + quiet.size;
    settledBefore = summary.chatsImported;
    if (summary.chatsResumed > 0) {
      reporter.info(
        `${formatCount(summary.chatsResumed)} chats were already imported by the interrupted run; skipping them`,
      );
    }
    reporter.importStarted({ chats: chats.length, strategy: plan.strategy.name, window: plan.window });
    reporter.progress(progressNow());
    await plan.strategy.run({
      chats: (FETCHES_ACROSS_CHATS.has(plan.strategy.name) ? mostRecentFirst(todo) : todo).map((chat) => ({
        chat,
        resumeAt: cursor?.resumeAt(chat.id),
      })),
      source,
      sink,
      // Slices and chats share the limit: the chats' fan-out leaves room for the slices.
      options: budget ? { ...plan.strategyOptions, concurrency: budget.fanOut } : plan.strategyOptions,
      signal,
    });
    reporter.importFinished();
    summary.paging = { ...waha.paging };
    summary.slicing = budget ? { maxSlices, ...budget.stats } : null;
    budget?.dispose();
    if (failed.size > 0) {
      // The checkpoint stays open: the next run with the same window retries exactly these chats (and a
      // run asking for another window, which reads them too, starts over instead of being refused).
      if (cursor?.endPartial) await cursor.endPartial();
      else await cursor?.flush();
      summary.status = 'partial';
    } else {
      await cursor?.complete();
      summary.status = 'succeeded';
    }
  } catch (caught) {
    budgetInUse?.dispose();
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
    if (runId === null) {
      // Refused before importing (WAHA unreachable, the API key refused, the session unknown or not
      // WORKING) or the listing failed: recorded all the same, so `status` shows it and exits non-zero.
      // The summary keeps status `running` for the caller: nothing was imported, there is nothing to sum up.
      try {
        const id = await deps.runLog.start({
          session: plan.session,
          strategy: plan.strategy.name,
          window: plan.window,
          options: { ...plan.recordedOptions, pageEnd: summary.pageEnd, engine: summary.engine },
        });
        await deps.runLog.finish(id, {
          ...summary,
          chats: 0,
          status: interrupted ? 'interrupted' : 'failed',
          error: errorMessage(error),
        });
      } catch (logError) {
        reporter.warn(`could not record the failed run in the runs table: ${errorMessage(logError)}`);
      }
      return { summary, error, memory: runnerMemory };
    }
    summary.status = interrupted ? 'interrupted' : 'failed';
    summary.error = errorMessage(error);
    try {
      await deps.runLog.finish(runId, summary);
    } catch (logError) {
      reporter.warn(`could not record the run's failure in the runs table: ${errorMessage(logError)}`);
    }
    return { summary, error, memory: runnerMemory };
  }
  settle();
  try {
    await deps.runLog.finish(runId, summary);
  } catch (logError) {
    return { summary, error: logError, memory: runnerMemory };
  }
  return { summary, memory: runnerMemory };
}

/**
 * The chats still owed a window they failed in that their window in this run does not cover (a chat
 * failed in a back-fill of 90 days, read now by a nightly run of 30): each gets the union of the two.
 * Otherwise its completion over the shorter window would clear its failure with the rest never read.
 * A failure without a window (recorded before migration 10 by a run whose window is unknown) owes none.
 */
export function owedWindows(
  chats: readonly ChatRecord[],
  failures: ReadonlyArray<{ chatId: string; window?: TimeWindow | null }>,
  windowOf: (chatId: string) => TimeWindow,
): Map<string, TimeWindow> {
  const failedIn = new Map<string, TimeWindow>();
  for (const failure of failures) if (failure.window) failedIn.set(failure.chatId, failure.window);
  const owed = new Map<string, TimeWindow>();
  for (const chat of chats) {
    const failedWindow = failedIn.get(chat.id);
    if (!failedWindow) continue;
    const own = windowOf(chat.id);
    if (failedWindow.fromS >= own.fromS && failedWindow.toS <= own.toS) continue;
    owed.set(chat.id, {
      fromS: Math.min(own.fromS, failedWindow.fromS),
      toS: Math.max(own.toS, failedWindow.toS),
    });
  }
  return owed;
}

/** What finding the chats an earlier run failed needs: the failures, and what is stored of their chats. */
export interface FailedChatLookup {
  list(session: string): Promise<Array<{ chatId: string }>>;
  storedChats(session: string, ids: readonly string[]): Promise<StoredChat[]>;
}

/**
 * The session's lid map and (given listing options) its chats, asked at once: the chats' stored ids
 * (hidden-number `@lid` ids become the phone number's wherever WAHA knows it) are made once both are in.
 * On a WAHA that does not merge a person's `@lid` and phone-number histories (before 2026.3.1, or a
 * version it does not state), each person's other form is read too where the listing lacks it
 * (`otherForms` of them, appended to `chats`). With `failed`, so is every chat an earlier run failed
 * that the listing no longer holds under that id (`unlistedFailed`, appended last; see
 * unlistedFailedChats).
 */
export async function lidsAndChats(
  waha: WahaClient,
  session: string,
  listing: Omit<ChatListOptions, 'lids'> | undefined,
  signal: AbortSignal,
  version: VersionInfo | null,
  failed?: FailedChatLookup,
): Promise<{
  lids: { map: LidMap; available: boolean };
  chats: ChatRecord[] | undefined;
  otherForms: number;
  unlistedFailed: ChatRecord[];
}> {
  const [lids, listed] = await Promise.all([
    waha.lids(session, signal),
    listing ? waha.listChats(session, listing, signal) : undefined,
  ]);
  const chats = listed?.map((chat) => withLids(chat, lids.map));
  const others = chats && !mergesPersonForms(version?.version) ? otherPersonForms(chats, lids.map) : [];
  const withOthers = chats && [...chats, ...others];
  const unlisted =
    withOthers && failed ? await unlistedFailedChats(withOthers, failed, session, lids.map) : [];
  return {
    lids,
    chats: withOthers && [...withOthers, ...unlisted],
    otherForms: others.length,
    unlistedFailed: unlisted,
  };
}

/**
 * The chats an earlier run failed (`failed_chats`) that `listed` does not hold under the id the failure
 * was recorded with: deleted in WhatsApp, or listed under another id since (GOWS lists people by `@lid`
 * since 2026.1.3; another engine spells ids its own way). Only a commit of that id clears its failure,
 * so unread it would stay failed for ever and `status` exit 5 every night. Each is read by that id:
 * what WAHA still serves of it is imported, and an answer of no messages completes it. It carries what
 * the listing says of the same stored chat under its new id, or else what the database stored of it
 * (name, raw), so writing it changes nothing there.
 */
export async function unlistedFailedChats(
  listed: readonly ChatRecord[],
  failed: FailedChatLookup,
  session: string,
  lids: LidMap,
): Promise<ChatRecord[]> {
  const listedIds = new Set(listed.map((chat) => chat.id));
  const ids = [...new Set((await failed.list(session)).map((f) => f.chatId))].filter(
    (id) => !listedIds.has(id),
  );
  if (ids.length === 0) return [];
  const storedIds = ids.map((id) => canonicalId(id, lids));
  // The person listed under another id: that listing is the chat now, and both write one chats row.
  const sameChat = new Map(listed.map((chat) => [chat.chatId, chat]));
  const unlistedStored = storedIds.filter((chatId) => !sameChat.has(chatId));
  const stored = new Map(
    (await failed.storedChats(session, [...new Set(unlistedStored)])).map((row) => [row.id, row]),
  );
  return ids.map((id, index) => {
    const chatId = storedIds[index]!;
    const sibling = sameChat.get(chatId);
    if (sibling) return { ...sibling, id, unlisted: true };
    const row = stored.get(chatId);
    return {
      session,
      id,
      chatId,
      name: row?.name ?? null,
      kind: row ? (row.kind as ChatKind) : chatKind(chatId),
      lastActivityAt: row?.lastActivityAt ?? null,
      raw: row ? row.raw : { id },
      unlisted: true,
    };
  });
}

/** The listing step's note on failed chats read although WAHA no longer lists them (not counted as listed). */
export function unlistedFailedNote(unlisted: readonly ChatRecord[]): string {
  if (unlisted.length === 0) return '';
  return `, and ${formatCount(unlisted.length)} failed in an earlier run that WAHA no longer lists, read by their ids`;
}

/** Names them (the first few): their failure is cleared only if WAHA still answers for them. */
export function unlistedFailedWarning(unlisted: readonly ChatRecord[]): string {
  const shown = unlisted.slice(0, 5).map((chat) => chat.id);
  return (
    `${formatCount(unlisted.length)} ${unlisted.length === 1 ? 'chat' : 'chats'} failed in an earlier run ` +
    `${unlisted.length === 1 ? 'is' : 'are'} no longer listed by WAHA (${shown.join(', ')}` +
    `${unlisted.length > shown.length ? ', ...' : ''}): read by ${unlisted.length === 1 ? 'its id' : 'their ids'}, ` +
    'as the failure was recorded; a chat deleted in WhatsApp may come back empty, which completes it'
  );
}

/** Says how many listed chats are a person's other form, read because this WAHA does not merge them. */
export function otherFormsNote(otherForms: number, version: VersionInfo | null): string {
  if (otherForms === 0) return '';
  return (
    `, ${formatCount(otherForms)} of them a person's other id (@lid or number), read too: ` +
    `WAHA ${version?.version ?? 'of unknown version'} does not merge the two (2026.3.1+ does)`
  );
}

/** Asks WAHA its version and whether the session is WORKING (throws a WahaRefusedError when it is not). */
export async function checkSession(
  waha: WahaClient,
  sessionName: string,
  reporter: Reporter,
  signal: AbortSignal,
): Promise<{ version: VersionInfo | null; session: SessionInfo }> {
  reporter.step(`Checking WAHA session "${sessionName}" at ${waha.displayUrl}`);
  // Asked at once (one round trip instead of two); a failure of the version request still comes first,
  // as when they were asked one after the other.
  const [versionAnswer, sessionAnswer] = await Promise.allSettled([
    waha.version(signal),
    waha.requireWorkingSession(sessionName, signal),
  ]);
  if (versionAnswer.status === 'rejected') throw versionAnswer.reason;
  if (sessionAnswer.status === 'rejected') throw sessionAnswer.reason;
  const version = versionAnswer.value;
  const session = sessionAnswer.value;
  const engine = session.engine ?? version?.engine ?? null;
  reporter.stepDone(
    `Session "${session.name}" is WORKING` +
      (session.me ? ` as ${session.me.pushName ?? session.me.id}` : '') +
      (version ? ` (WAHA ${version.version}, ${engine ?? version.engine})` : ''),
  );
  return { version, session };
}

/**
 * A full (not incremental) window read after an earlier one of the same request (a resumed run's, a plan
 * still pending) starts this many seconds before that one's end for the chats it covered: a message that
 * reached WAHA late, with an older time, is caught as the nightly full run would.
 */
export const CONTINUE_OVERLAP_S = 3600;

/** WAHA's clock this far from this machine's is worth a warning. */
const CLOCK_WARNING_S = 60;

/**
 * Each chat's window in an incremental run. A chat with a sync mark continues from the mark's end minus
 * the overlap (late messages and messages sharing the last second are fetched again and written
 * idempotently); a chat without one is new and takes the run's full window. A chat whose last activity,
 * as WAHA lists it, is older than the start of its window holds nothing to fetch: it is quiet.
 * The run promises the whole window, not only what is new, so two kinds of chat with a mark take the full
 * window too: one still in `failed_chats` (`failedListed`: an earlier run could not import it, and the
 * next run retries it, quiet or not), and one whose span starts after the window does (imported by a
 * shorter window before, e.g. a first run of `--days 8` under a nightly `--incremental` of 30 days: the
 * days before its span were never read). Each is read whole once; its span then covers the window.
 * One person can be read under two listed ids (a WAHA that does not merge `@lid` and number): the stored
 * chat's mark is set by whichever completed, while the other may have failed or never been read (a run
 * killed between them). So each listed id of a stored chat listed twice continues from its own span
 * (`marks.forms`) and takes the full window without one.
 */
export function planIncremental(
  chats: readonly ChatRecord[],
  marks: SyncMarks,
  runWindow: TimeWindow,
  overlapS: number,
  failedListed: ReadonlySet<string> = new Set(),
): {
  windows: Map<string, TimeWindow>;
  quiet: string[];
  chatsNew: number;
  chatsRetried: number;
  chatsBackfilled: number;
} {
  const windows = new Map<string, TimeWindow>();
  const quiet: string[] = [];
  let chatsNew = 0;
  let chatsRetried = 0;
  let chatsBackfilled = 0;
  const listings = new Map<string, number>();
  for (const chat of chats) listings.set(chat.chatId, (listings.get(chat.chatId) ?? 0) + 1);
  for (const chat of chats) {
    if (failedListed.has(chat.id)) {
      chatsRetried++;
      continue;
    }
    // A stored chat listed under two ids (a person as @lid and as a number, not merged by WAHA): the chat's
    // mark may come from the id that was read while the other never was (failed, or the run was killed
    // between the two). Each id continues from its own span; one without a span is read whole.
    const shared = listings.get(chat.chatId)! > 1;
    const mark = shared ? marks.forms?.get(formKey(chat.chatId, chat.id)) : marks.get(chat.chatId);
    if (!mark) {
      chatsNew++;
      continue;
    }
    const lastActivityS =
      chat.lastActivityAt === null ? null : Math.floor(chat.lastActivityAt.getTime() / 1000);
    if (mark.fromS > runWindow.fromS) {
      // Nothing before the span was read: the whole window, unless the chat was quiet all through it.
      if (lastActivityS !== null && lastActivityS < runWindow.fromS) quiet.push(chat.id);
      else chatsBackfilled++;
      continue;
    }
    const fromS = mark.toS - overlapS;
    if (fromS > runWindow.toS || (lastActivityS !== null && lastActivityS < fromS)) quiet.push(chat.id);
    else windows.set(chat.id, { fromS, toS: runWindow.toS });
  }
  return { windows, quiet, chatsNew, chatsRetried, chatsBackfilled };
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

/**
 * Chats failing one after another, none finishing in between, that stop the run: WAHA (or the engine)
 * fails every chat, not one.
 */
export const MAX_CHAT_FAILURES_IN_A_ROW = 5;

/** The least time between two progress reports made by fetched pages (commits always report). */
const PAGE_PROGRESS_MS = 250;

/** SQLSTATE classes of a value PostgreSQL will not hold: data exceptions, constraints, program limits. */
function isRefusedRecord(error: unknown): boolean {
  const code =
    (error as { code?: unknown; cause?: { code?: unknown } } | null)?.code ??
    (error as { cause?: { code?: unknown } } | null)?.cause?.code;
  return typeof code === 'string' && /^(22|23|54)/.test(code);
}

/** The unit without the chats that failed in this run (their pages may still be in a streaming batch). */
function withoutChats(
  unit: CommitUnit,
  failed: ReadonlyMap<string, unknown>,
  byId: ReadonlyMap<string, ChatRecord>,
): CommitUnit {
  if (failed.size === 0) return unit;
  const failedStored = new Set([...failed.keys()].map((id) => byId.get(id)?.chatId ?? id));
  return {
    batch: {
      chats: unit.batch.chats.filter((chat) => !failed.has(chat.id)),
      messages: unit.batch.messages.filter((m) => !failedStored.has(m.chatId)),
    },
    chatsCompleted: unit.chatsCompleted.filter((id) => !failed.has(id)),
    chatsInProgress: unit.chatsInProgress.filter(({ chatId }) => !failed.has(chatId)),
  };
}

/** A unit prepared ahead whose unit before failed: rolled back, and written again alone. */
class WriteAgainError extends Error {}

/** The batch before failed: seen as thrown, or as the cause of the error the run's writer made of it. */
function isWriteAgain(error: unknown): boolean {
  return (
    error instanceof WriteAgainError ||
    (error as { cause?: unknown } | null)?.cause instanceof WriteAgainError
  );
}

/** A unit's first attempt as the unit after it follows it: both reject when that attempt failed. */
interface Steps {
  /** Its statements have run: only its commit is left. */
  ran: Promise<void>;
  /** It is committed and recorded. */
  committed: Promise<void>;
}

interface Ticket extends Steps {
  markRan: () => void;
  markCommitted: () => void;
  markFailed: () => void;
}

function newTicket(): Ticket {
  let ranOk = (): void => undefined;
  let ranFailed = (_: unknown): void => undefined;
  let committedOk = (): void => undefined;
  let committedFailed = (_: unknown): void => undefined;
  const ran = new Promise<void>((resolve, reject) => {
    ranOk = resolve;
    ranFailed = reject;
  });
  const committed = new Promise<void>((resolve, reject) => {
    committedOk = resolve;
    committedFailed = reject;
  });
  // Nobody may be following this unit.
  ran.catch(() => undefined);
  committed.catch(() => undefined);
  const failure = new Error('the first attempt of the batch failed');
  return {
    ran,
    committed,
    markRan: () => ranOk(),
    markCommitted: () => {
      ranOk();
      committedOk();
    },
    markFailed: () => {
      ranFailed(failure);
      committedFailed(failure);
    },
  };
}

/** One unit per listed chat of the batch (messages go with the chat stored under their chat id). */
function splitByChat(
  unit: CommitUnit,
  byId: ReadonlyMap<string, ChatRecord>,
): Array<{ chat: ChatRecord | undefined; unit: CommitUnit }> {
  const parts = new Map<
    string,
    {
      chat: ChatRecord | undefined;
      batch: Batch;
      completed: string[];
      inProgress: CommitUnit['chatsInProgress'];
    }
  >();
  const part = (listedId: string) => {
    let found = parts.get(listedId);
    if (!found) {
      found = { chat: byId.get(listedId), batch: { chats: [], messages: [] }, completed: [], inProgress: [] };
      parts.set(listedId, found);
    }
    return found;
  };
  const listedOf = new Map<string, string>();
  for (const chat of unit.batch.chats) {
    part(chat.id).batch.chats.push(chat);
    if (!listedOf.has(chat.chatId)) listedOf.set(chat.chatId, chat.id);
  }
  for (const message of unit.batch.messages as MessageRecord[]) {
    part(listedOf.get(message.chatId) ?? message.chatId).batch.messages.push(message);
  }
  for (const id of unit.chatsCompleted) part(id).completed.push(id);
  for (const entry of unit.chatsInProgress) part(entry.chatId).inProgress.push(entry);
  return [...parts.values()].map((p) => ({
    chat: p.chat,
    unit: { batch: p.batch, chatsCompleted: p.completed, chatsInProgress: p.inProgress },
  }));
}

function describeReason(reason: ChatFailureReason): string {
  switch (reason) {
    case 'waha-failing':
      return 'WAHA kept failing on it while serving the session';
    case 'waha-cannot-route':
      return 'WAHA cannot serve this chat id';
    case 'unstable-paging':
      return 'its messages changed faster than they could be read';
    case 'database-refused':
      return 'PostgreSQL refused one of its messages';
  }
}

/**
 * The strategies whose fetchers take the next chat whenever one ends, so the order decides which chats
 * end last. `sequential` takes as long in any order; `chunked` keeps the listing's order, as the study's
 * option B and D did (its chunks, and so its transactions, follow it).
 */
const FETCHES_ACROSS_CHATS = new Set<string>(['streaming', 'parallel']);

/**
 * The order `streaming` and `parallel` fetch chats in: most recently active first, those WAHA gave no
 * time for last, the listing's order otherwise. The chats people write in most are the ones they wrote
 * in last, and the longest chat sets how long an import takes: started among the last (the listing goes
 * by id), it was still being read, a page after another, when everything else was done (seed dataset,
 * 200 requests at once: its 15 pages began at 2.3 s of a 3.8 s import, and the import's last 0.5 s ran
 * under 10 requests at once).
 */
export function mostRecentFirst(chats: readonly ChatRecord[]): ChatRecord[] {
  const activity = (chat: ChatRecord): number => chat.lastActivityAt?.getTime() ?? -Infinity;
  return [...chats].sort((a, b) => activity(b) - activity(a) || 0);
}
