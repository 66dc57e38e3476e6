import type { TimeWindow } from '../domain.js';
import type { PagingStats } from '../waha/client.js';

export interface ImportSummary {
  session: string;
  strategy: string;
  window: TimeWindow;
  /** `partial`: every chat was tried and the run finished, but some chats failed (`failedChats`). */
  status: 'running' | 'succeeded' | 'partial' | 'failed' | 'interrupted';
  /** The session's WAHA engine (its own, else the server's default), when WAHA says. */
  engine: string | null;
  /** The page-end rule in force: `empty` (safe) or `short`. */
  pageEnd: 'empty' | 'short' | null;
  /** Chats read: those WAHA listed, and `chatsUnlisted`. */
  chats: number;
  /**
   * Of `chats`, those an earlier run failed that WAHA no longer lists under that id, read by it all the
   * same (src/import/runner.ts unlistedFailedChats).
   */
  chatsUnlisted: number;
  /** Chats whose messages in the window are all committed (by this run or the one it resumed). */
  chatsImported: number;
  /** Chats the interrupted run had already committed, skipped by this one. */
  chatsResumed: number;
  /** Chats this run could not import; the next run retries them. */
  chatsFailed: number;
  failedChats: Array<{ chatId: string; reason: string; error: string }>;
  /** Messages stored without a time: neither WAHA's `timestamp` nor the engine's `_data` held one. */
  messagesWithoutTimestamp: number;
  /** What paging cost beyond plain pages (src/waha/client.ts PagingStats); null before the import. */
  paging: PagingStats | null;
  /**
   * Time slicing (src/import/slices.ts), when it was on: the most slices per chat, the slices split off,
   * the chats read in more than one, and the slices that brought nothing (a request spent for nothing).
   */
  slicing: { maxSlices: number; slices: number; chatsSliced: number; emptySlices: number } | null;
  /**
   * Incremental runs only: the overlap, the chats skipped without a request because they had no activity
   * since their last import, the chats seen for the first time, the chats still failed from an earlier
   * run (retried), and the chats whose stored span starts after the window does (back-filled): those
   * three are fetched over the full window.
   */
  incremental: {
    overlapS: number;
    chatsQuiet: number;
    chatsNew: number;
    chatsRetried: number;
    chatsBackfilled: number;
  } | null;
  messagesFetched: number;
  inserted: number;
  updated: number;
  unchanged: number;
  /** Messages stored with NUL or lone surrogates replaced (see README). */
  cleaned: number;
  /** HTTP requests sent to WAHA, retries included. */
  wahaRequests: number;
  retries: number;
  dbTransactions: number;
  elapsedMs: number;
  messagesPerSecond: number;
  error: string | null;
  /** The process's peak resident memory. */
  peakRssMb: number;
  concurrency: ConcurrencySummary;
}

/** A summary before anything happened: every count zero. The runner fills it in as the run goes. */
export function startingSummary(
  fields: Pick<ImportSummary, 'session' | 'strategy' | 'window' | 'status' | 'incremental' | 'concurrency'>,
): ImportSummary {
  return {
    ...fields,
    engine: null,
    pageEnd: null,
    chats: 0,
    chatsUnlisted: 0,
    chatsImported: 0,
    chatsResumed: 0,
    chatsFailed: 0,
    failedChats: [],
    messagesWithoutTimestamp: 0,
    paging: null,
    slicing: null,
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
  };
}

/**
 * Chats fetched at once: a fixed number, or what `--concurrency auto` did: the limit at the end, the
 * time-weighted mean over the second half of the run (where it settled), its range, and the overload
 * answers (429/503/504/timeouts) and Retry-After pauses that drove it down.
 */
export type ConcurrencySummary =
  | { mode: 'fixed'; limit: number }
  | {
      mode: 'auto';
      limit: number;
      settled?: number;
      lowest?: number;
      highest?: number;
      max?: number;
      overloads?: number;
      pauses?: number;
      pausedMs?: number;
    };

export function formatConcurrency(c: ConcurrencySummary): string {
  if (c.mode === 'fixed') return `${c.limit} (fixed)`;
  if (c.settled === undefined) return `auto, ${c.limit} at the end`;
  // Short enough for an 80-column terminal beside its label; the overloads get a row of their own.
  return `auto: settled at ${c.settled} (range ${c.lowest}..${c.highest} of ${c.max}, ${c.limit} at the end)`;
}

/** What pushed `auto` back: overload answers and Retry-After pauses (undefined for a fixed value). */
export function formatOverloads(c: ConcurrencySummary): string | undefined {
  if (c.mode === 'fixed' || c.settled === undefined) return undefined;
  return (
    `${formatCount(c.overloads ?? 0)} overload answers, ${formatCount(c.pauses ?? 0)} Retry-After pauses` +
    (c.pausedMs ? ` (${formatDuration(c.pausedMs)})` : '')
  );
}

const number = new Intl.NumberFormat('en-US');

export function formatCount(value: number): string {
  return number.format(value);
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Math.round((ms % 60_000) / 1000);
  return seconds === 0 ? `${minutes} min` : `${minutes} min ${seconds} s`;
}

export function formatWindow(window: TimeWindow): string {
  const iso = (s: number): string => new Date(s * 1000).toISOString().replace('.000Z', 'Z');
  return `${iso(window.fromS)} .. ${iso(window.toS)}`;
}

/** The summary as label/value rows, shared by every text output mode. */
export function summaryRows(summary: ImportSummary): Array<[string, string]> {
  return [
    ['session', summary.session],
    ['strategy', summary.strategy],
    ['window', formatWindow(summary.window)],
    ...(summary.incremental
      ? [
          [
            'incremental',
            `${formatCount(summary.incremental.chatsQuiet)} chats quiet since their last import, ` +
              `${formatCount(summary.incremental.chatsNew)} new` +
              (summary.incremental.chatsRetried
                ? `, ${formatCount(summary.incremental.chatsRetried)} failed before (retried whole)`
                : '') +
              (summary.incremental.chatsBackfilled
                ? `, ${formatCount(summary.incremental.chatsBackfilled)} back-filled`
                : '') +
              `; overlap ${formatDuration(summary.incremental.overlapS * 1000)}`,
          ] as [string, string],
        ]
      : []),
    [
      'chats',
      `${formatCount(summary.chatsImported)} imported of ${formatCount(summary.chats - summary.chatsUnlisted)} listed` +
        (summary.chatsUnlisted ? ` and ${formatCount(summary.chatsUnlisted)} no longer listed` : '') +
        (summary.chatsResumed ? ` (${formatCount(summary.chatsResumed)} by the interrupted run)` : ''),
    ],
    ...(summary.chatsFailed
      ? [
          [
            'failed chats',
            `${formatCount(summary.chatsFailed)} (retried by the next run; \`waha-import status\` lists them): ` +
              summary.failedChats
                .slice(0, 3)
                .map((f) => `${f.chatId} (${f.reason})`)
                .join(', ') +
              (summary.failedChats.length > 3 ? ', ...' : ''),
          ] as [string, string],
        ]
      : []),
    [
      'messages fetched',
      formatCount(summary.messagesFetched) +
        (summary.messagesWithoutTimestamp
          ? ` (${formatCount(summary.messagesWithoutTimestamp)} without any timestamp, stored with none)`
          : ''),
    ],
    [
      'messages written',
      `${formatCount(summary.inserted)} inserted, ${formatCount(summary.updated)} updated, ${formatCount(summary.unchanged)} unchanged` +
        (summary.cleaned ? ` (${formatCount(summary.cleaned)} with text cleaned)` : ''),
    ],
    ['WAHA requests', `${formatCount(summary.wahaRequests)} (${formatCount(summary.retries)} retries)`],
    ...(summary.slicing && summary.slicing.slices > 0
      ? [
          [
            'time slices',
            `${formatCount(summary.slicing.chatsSliced)} long chats read in ${formatCount(summary.slicing.slices)} more slices ` +
              `(${formatCount(summary.slicing.emptySlices)} found nothing)`,
          ] as [string, string],
        ]
      : []),
    ['concurrency', formatConcurrency(summary.concurrency)],
    ...(formatOverloads(summary.concurrency) === undefined
      ? []
      : [['overloads', formatOverloads(summary.concurrency)!] as [string, string]]),
    ['DB transactions', formatCount(summary.dbTransactions)],
    [
      'elapsed',
      `${formatDuration(summary.elapsedMs)} (${formatCount(Math.round(summary.messagesPerSecond))} msgs/s, peak memory ${formatCount(summary.peakRssMb)} MB)`,
    ],
  ];
}

/** One session of a run over several: its summary when its import started, else why it did not. */
export interface SessionOutcome {
  session: string;
  status: 'succeeded' | 'partial' | 'failed' | 'interrupted' | 'skipped';
  /** Absent when the session never got as far as listing its chats. */
  summary?: ImportSummary;
  error?: string;
}

/** The counts of a session's summary that add up across sessions. */
const SUMMED = [
  'chats',
  'chatsImported',
  'chatsFailed',
  'messagesFetched',
  'inserted',
  'updated',
  'unchanged',
  'cleaned',
  'wahaRequests',
  'retries',
  'dbTransactions',
] as const;

/** The totals of a run over several sessions: the summed counts of every session, and these. */
export type TotalSummary = Pick<ImportSummary, (typeof SUMMED)[number]> & {
  status: 'succeeded' | 'partial' | 'failed' | 'interrupted';
  sessions: number;
  sessionsSucceeded: number;
  sessionsFailed: number;
  /** Wall time of the whole run, all sessions. */
  elapsedMs: number;
};

export function totalSummary(outcomes: readonly SessionOutcome[], elapsedMs: number): TotalSummary {
  return {
    status: outcomes.some((o) => o.status === 'interrupted')
      ? 'interrupted'
      : outcomes.every((o) => o.status === 'succeeded')
        ? 'succeeded'
        : outcomes.every((o) => o.status === 'succeeded' || o.status === 'partial')
          ? 'partial'
          : 'failed',
    sessions: outcomes.length,
    sessionsSucceeded: outcomes.filter((o) => o.status === 'succeeded' || o.status === 'partial').length,
    sessionsFailed: outcomes.filter((o) => o.status !== 'succeeded' && o.status !== 'partial').length,
    elapsedMs,
    ...(Object.fromEntries(
      SUMMED.map((key) => [key, outcomes.reduce((sum, o) => sum + (o.summary?.[key] ?? 0), 0)]),
    ) as Pick<ImportSummary, (typeof SUMMED)[number]>),
  };
}

/** The per-session table and the total line, as text rows (header first). */
export function totalRows(outcomes: readonly SessionOutcome[], total: TotalSummary): string[][] {
  const row = (
    name: string,
    status: string,
    s: Pick<TotalSummary, 'chatsImported' | 'chats' | 'inserted' | 'updated' | 'unchanged' | 'wahaRequests'> &
      Partial<Pick<TotalSummary, 'elapsedMs'>>,
  ): string[] => [
    name,
    status,
    `${formatCount(s.chatsImported)}/${formatCount(s.chats)}`,
    formatCount(s.inserted),
    formatCount(s.updated),
    formatCount(s.unchanged),
    formatCount(s.wahaRequests),
    s.elapsedMs === undefined ? '' : formatDuration(s.elapsedMs),
  ];
  const zero = { chatsImported: 0, chats: 0, inserted: 0, updated: 0, unchanged: 0, wahaRequests: 0 };
  return [
    ['session', 'status', 'chats', 'inserted', 'updated', 'unchanged', 'requests', 'elapsed'],
    ...outcomes.map((o) => row(o.session, o.status, o.summary ?? zero)),
    row('total', total.status, total),
  ];
}
