import type { TimeWindow } from '../domain.js';

export interface ImportSummary {
  session: string;
  strategy: string;
  window: TimeWindow;
  status: 'running' | 'succeeded' | 'failed' | 'interrupted';
  /** WAHA engine as reported by /api/version, when it answers. */
  engine: string | null;
  /** The page-end rule in force: `empty` (safe) or `short`. */
  pageEnd: 'empty' | 'short' | null;
  /** Chats WAHA listed. */
  chats: number;
  /** Chats whose messages in the window are all committed (by this run or the one it resumed). */
  chatsImported: number;
  /** Chats the interrupted run had already committed, skipped by this one. */
  chatsResumed: number;
  /**
   * Incremental runs only: the overlap, the chats skipped without a request because they had no activity
   * since their last import, and the chats seen for the first time (fetched over the full window).
   */
  incremental: { overlapS: number; chatsQuiet: number; chatsNew: number } | null;
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
}

const number = new Intl.NumberFormat('en-US');

export function formatCount(value: number): string {
  return number.format(value);
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} min ${Math.round((ms % 60_000) / 1000)} s`;
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
              `${formatCount(summary.incremental.chatsNew)} new; overlap ${formatDuration(summary.incremental.overlapS * 1000)}`,
          ] as [string, string],
        ]
      : []),
    [
      'chats',
      `${formatCount(summary.chatsImported)} imported of ${formatCount(summary.chats)} listed` +
        (summary.chatsResumed ? ` (${formatCount(summary.chatsResumed)} by the interrupted run)` : ''),
    ],
    ['messages fetched', formatCount(summary.messagesFetched)],
    [
      'messages written',
      `${formatCount(summary.inserted)} inserted, ${formatCount(summary.updated)} updated, ${formatCount(summary.unchanged)} unchanged` +
        (summary.cleaned ? ` (${formatCount(summary.cleaned)} with text cleaned)` : ''),
    ],
    ['WAHA requests', `${formatCount(summary.wahaRequests)} (${formatCount(summary.retries)} retries)`],
    ['DB transactions', formatCount(summary.dbTransactions)],
    [
      'elapsed',
      `${formatDuration(summary.elapsedMs)} (${formatCount(Math.round(summary.messagesPerSecond))} msgs/s)`,
    ],
  ];
}
