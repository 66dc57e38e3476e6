import { Chalk, type ChalkInstance } from 'chalk';
import cliProgress from 'cli-progress';
import ora, { type Ora } from 'ora';
import type { TimeWindow } from '../domain.js';
import { errorMessage, KnownError } from '../errors.js';
import { jsonText, terminalText } from '../util/terminal-text.js';
import {
  formatCount,
  formatWindow,
  summaryRows,
  totalRows,
  type ImportSummary,
  type SessionOutcome,
  type TotalSummary,
} from '../import/summary.js';

export interface Progress {
  /** Chats whose messages in the window are all committed. */
  chatsDone: number;
  /** Chats fetched to their last page (or failed), committed or not yet: moves ahead of chatsDone. */
  chatsFetched: number;
  chatsTotal: number;
  messagesFetched: number;
  messagesWritten: number;
  /** Chats fetched at once right now (moves with --concurrency auto). */
  concurrency: number;
}

/** Everything the tool tells a person or a program while it works. Progress goes to stderr, results to stdout. */
export interface Reporter {
  step(text: string): void;
  stepDone(text: string): void;
  info(text: string): void;
  warn(text: string): void;
  importStarted(info: { chats: number; strategy: string; window: TimeWindow }): void;
  progress(progress: Progress): void;
  importFinished(): void;
  summary(summary: ImportSummary): void;
  /** One session's summary when a run covers several; `totals` comes last. */
  sessionSummary(summary: ImportSummary): void;
  /** The last word of a run over several sessions: each session's outcome and the sums. */
  totals(outcomes: SessionOutcome[], total: TotalSummary): void;
  error(error: unknown): void;
}

export type OutputMode = 'tty' | 'plain' | 'json' | 'quiet';

export interface ReporterOptions {
  mode: OutputMode;
  /** Masks secrets in every line written. */
  mask: (text: string) => string;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  env?: NodeJS.ProcessEnv;
  now?: () => Date;
}

/** Chosen once: --json and --quiet win, otherwise a TTY on stderr gets the live display. */
export function chooseOutputMode(
  flags: { json?: boolean; quiet?: boolean },
  stderrIsTty: boolean,
): OutputMode {
  if (flags.json) return 'json';
  if (flags.quiet) return 'quiet';
  return stderrIsTty ? 'tty' : 'plain';
}

/**
 * A terminal the live display can draw on: a TTY that reports its width. A pseudo-terminal without a
 * size (some `docker exec -t`, `script` into a file) reports 0 columns, and spinners that redraw by
 * counting wrapped lines would never stop erasing: such a stream gets the plain output.
 */
export function isLiveTerminal(stream: { isTTY?: boolean; columns?: number } = process.stderr): boolean {
  return Boolean(stream.isTTY) && (stream.columns ?? 0) > 0;
}

/** NO_COLOR wins over everything; FORCE_COLOR turns colour on off a TTY; otherwise colour follows the TTY. */
export function colourLevel(env: NodeJS.ProcessEnv, isTty: boolean): 0 | 1 | 2 | 3 {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return 0;
  const forced = env.FORCE_COLOR;
  if (forced !== undefined) {
    if (forced === '0' || forced === 'false') return 0;
    return forced === '2' ? 2 : forced === '3' ? 3 : 1;
  }
  return isTty ? 1 : 0;
}

/** A reporter that says nothing (the bench's imports, a job's steps); spread it and override what speaks. */
export const SILENT_REPORTER: Reporter = {
  step: () => undefined,
  stepDone: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  importStarted: () => undefined,
  progress: () => undefined,
  importFinished: () => undefined,
  summary: () => undefined,
  sessionSummary: () => undefined,
  totals: () => undefined,
  error: () => undefined,
};

export function createReporter(options: ReporterOptions): Reporter {
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  const env = options.env ?? process.env;
  const now = options.now ?? (() => new Date());
  const mask = options.mask;
  const isTty = options.mode === 'tty';
  const colour = new Chalk({ level: colourLevel(env, isTty) });
  const write = (stream: NodeJS.WritableStream, text: string): void => {
    stream.write(mask(text) + '\n');
  };

  switch (options.mode) {
    case 'json':
      return jsonReporter((event) => write(stdout, jsonText(event)), now);
    case 'quiet':
      return {
        ...silentReporter(),
        error: (error) => write(stderr, formatError(error, colour)),
      };
    case 'plain':
      return escapingText(
        plainReporter(
          (text) => write(stderr, `${now().toISOString()} ${text}`),
          (text) => write(stdout, text),
          colour,
        ),
      );
    case 'tty':
      return escapingText(ttyReporter(stderr, stdout, mask, colour));
  }
}

/**
 * Text handed to the reporter can come from WAHA (session names in warnings, error bodies): its control
 * characters are shown, not obeyed. Errors and summaries are escaped where they are formatted.
 */
function escapingText(reporter: Reporter): Reporter {
  return {
    ...reporter,
    step: (text) => reporter.step(terminalText(text)),
    stepDone: (text) => reporter.stepDone(terminalText(text)),
    info: (text) => reporter.info(terminalText(text)),
    warn: (text) => reporter.warn(terminalText(text)),
    importStarted: (info) => reporter.importStarted({ ...info, strategy: terminalText(info.strategy) }),
  };
}

function silentReporter(): Reporter {
  const nothing = (): void => undefined;
  return {
    step: nothing,
    stepDone: nothing,
    info: nothing,
    warn: nothing,
    importStarted: nothing,
    progress: nothing,
    importFinished: nothing,
    summary: nothing,
    sessionSummary: nothing,
    totals: nothing,
    error: nothing,
  };
}

export function formatError(error: unknown, colour: ChalkInstance): string {
  if (error instanceof KnownError) {
    return (
      `${colour.red('error:')} ${terminalText(error.message)}` +
      (error.hint ? `\n${colour.dim('hint:')} ${terminalText(error.hint)}` : '')
    );
  }
  const detail = terminalText(error instanceof Error ? (error.stack ?? error.message) : String(error));
  return `${colour.red('unexpected error:')} ${detail}\n${colour.dim('hint:')} this is a bug in waha-import; please report it with this output.`;
}

function totalsText(outcomes: SessionOutcome[], total: TotalSummary, colour: ChalkInstance): string {
  const rows = totalRows(outcomes, total).map((row) =>
    row.map((cell) => terminalText(cell, { singleLine: true })),
  );
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  const title =
    total.status === 'succeeded'
      ? colour.green(`All ${total.sessions} sessions imported`)
      : colour.red(`${total.sessionsFailed} of ${total.sessions} sessions did not finish`);
  return [
    title,
    ...rows.map((row) =>
      row
        .map((cell, column) => (column < 2 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!)))
        .join('  ')
        .trimEnd()
        .replace(/^/, '  '),
    ),
  ].join('\n');
}

function summaryText(summary: ImportSummary, colour: ChalkInstance): string {
  const rows = summaryRows(summary).map(([label, value]) => [label, terminalText(value)] as [string, string]);
  const width = Math.max(...rows.map(([label]) => label.length));
  const title =
    summary.status === 'succeeded'
      ? colour.green('Import finished')
      : summary.status === 'interrupted'
        ? colour.yellow('Import interrupted')
        : summary.status === 'partial'
          ? colour.yellow('Import finished, but some chats could not be imported')
          : colour.red('Import failed');
  return [title, ...rows.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`)].join('\n');
}

/** Off a TTY (cron, CI, a pipe): timestamped lines, progress at most every few seconds, no escapes. */
function plainReporter(
  log: (text: string) => void,
  result: (text: string) => void,
  colour: ChalkInstance,
): Reporter {
  const intervalMs = 5000;
  let lastProgressMs = 0;
  return {
    step: (text) => log(`${text}...`),
    stepDone: (text) => log(text),
    info: (text) => log(text),
    warn: (text) => log(`warning: ${text}`),
    importStarted: ({ chats, strategy, window }) =>
      log(`Importing ${formatCount(chats)} chats with strategy ${strategy}, window ${formatWindow(window)}`),
    progress: (p) => {
      const nowMs = Date.now();
      if (nowMs - lastProgressMs < intervalMs && p.chatsDone < p.chatsTotal) return;
      lastProgressMs = nowMs;
      log(
        `progress: ${formatCount(p.chatsFetched)}/${formatCount(p.chatsTotal)} chats fetched, ${formatCount(p.chatsDone)} committed, ` +
          `${formatCount(p.messagesFetched)} messages fetched, ${p.concurrency} at once`,
      );
    },
    importFinished: () => undefined,
    summary: (summary) => result(summaryText(summary, colour)),
    sessionSummary: (summary) => result(summaryText(summary, colour)),
    totals: (outcomes, total) => result(totalsText(outcomes, total, colour)),
    error: (error) => log(formatError(error, colour)),
  };
}

/** Newline-delimited JSON events on stdout; the last line is the summary object. */
function jsonReporter(emit: (event: Record<string, unknown>) => void, now: () => Date): Reporter {
  const event = (type: string, fields: Record<string, unknown> = {}): void =>
    emit({ type, time: now().toISOString(), ...fields });
  let lastProgressMs = 0;
  return {
    step: (text) => event('step', { text }),
    stepDone: (text) => event('step-done', { text }),
    info: (text) => event('info', { text }),
    warn: (text) => event('warning', { text }),
    importStarted: (info) => event('import-started', info),
    progress: (p) => {
      const nowMs = Date.now();
      if (nowMs - lastProgressMs < 1000 && p.chatsDone < p.chatsTotal) return;
      lastProgressMs = nowMs;
      event('progress', { ...p });
    },
    importFinished: () => undefined,
    summary: (summary) => event('summary', { summary }),
    sessionSummary: (summary) => event('session-summary', { summary }),
    // The final line, like `summary` for one session: the sums, with every session's outcome.
    totals: (outcomes, total) => event('summary', { summary: total, sessions: outcomes }),
    error: (error) => event('error', { error: jsonError(error) }),
  };
}

/** An error as `--json` output carries it: `{"type":"error","time":...,"error":{name,message,hint}}`. */
export function jsonError(error: unknown): { name: string; message: string; hint: string | null } {
  return {
    name: error instanceof Error ? error.name : 'Error',
    message: errorMessage(error),
    hint: error instanceof KnownError ? (error.hint ?? null) : null,
  };
}

/** The `error` event as one line, for failures that come before (or outside) a command's reporter. */
export function jsonErrorLine(error: unknown, now: Date = new Date()): string {
  return jsonText({ type: 'error', time: now.toISOString(), error: jsonError(error) });
}

/** The live progress line after its bar: chats fetched (to their last page), messages, speed, limit. */
export const PROGRESS_FORMAT =
  '{fetched}/{chats} chats | {messages} msgs, {rate}/s | {limit} at once | ETA {left}';
/** PROGRESS_FORMAT's width for 1,172 chats, 99,999 messages, 9,999 a second, 100 at once, ETA 59m 59s. */
const PROGRESS_TEXT_WIDTH = 68;

/**
 * Time left at the rate chats were fetched so far in this run; `-` until one chat has been (the first
 * seconds say nothing about the rest).
 */
export function formatEta(chatsLeft: number, chatsFetched: number, elapsedS: number): string {
  if (chatsLeft <= 0) return '0s';
  if (chatsFetched <= 0) return '-';
  const s = Math.round((chatsLeft * elapsedS) / chatsFetched);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  if (s < 100 * 3600) return `${Math.floor(s / 3600)}h ${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
  return '>99h';
}

/** A person at a terminal: a spinner for setup steps, a bar over chats, colour. */
function ttyReporter(
  stderr: NodeJS.WritableStream,
  stdout: NodeJS.WritableStream,
  mask: (text: string) => string,
  colour: ChalkInstance,
): Reporter {
  let spinner: Ora | undefined;
  let bar: cliProgress.SingleBar | undefined;
  let startedMs = 0;
  /** Chats already settled when the bar started (resumed, quiet): not counted in the rate. */
  let fetchedAtStart: number | undefined;
  const line = (text: string): void => {
    if (bar) bar.stop();
    stderr.write(mask(text) + '\n');
    bar = undefined;
  };
  return {
    step: (text) => {
      spinner?.stop();
      // Colours come from our own chalk (NO_COLOR / FORCE_COLOR), never from ora's defaults.
      spinner = ora({
        text: mask(text),
        stream: stderr as NodeJS.WriteStream,
        color: colour.level > 0 ? 'cyan' : false,
      }).start();
    },
    stepDone: (text) => {
      if (spinner) spinner.stopAndPersist({ symbol: colour.green('✔'), text: mask(text) });
      else line(`${colour.green('✔')} ${text}`);
      spinner = undefined;
    },
    info: (text) => line(text),
    warn: (text) => line(`${colour.yellow('warning:')} ${text}`),
    importStarted: ({ chats, strategy }) => {
      spinner?.stop();
      spinner = undefined;
      startedMs = Date.now();
      fetchedAtStart = undefined;
      stderr.write(mask(`Importing ${formatCount(chats)} chats with strategy ${strategy}`) + '\n');
      const columns = (stderr as NodeJS.WriteStream).columns || 80;
      bar = new cliProgress.SingleBar(
        {
          stream: stderr as NodeJS.WriteStream,
          // Fits 80 columns: the bar takes what the text (68 characters at most, usually) leaves.
          format: `${colour.cyan('{bar}')} ${PROGRESS_FORMAT}`,
          barsize: Math.max(10, Math.min(40, columns - 2 - PROGRESS_TEXT_WIDTH)),
          hideCursor: true,
          clearOnComplete: false,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(chats, 0, {
        fetched: '0',
        chats: formatCount(chats),
        messages: '0',
        rate: '0',
        limit: '-',
        left: '-',
      });
    },
    progress: (p) => {
      fetchedAtStart ??= p.chatsFetched;
      const elapsedS = Math.max(0.001, (Date.now() - startedMs) / 1000);
      bar?.update(p.chatsFetched, {
        fetched: formatCount(p.chatsFetched),
        messages: formatCount(p.messagesFetched),
        rate: formatCount(Math.round(p.messagesFetched / elapsedS)),
        limit: String(p.concurrency),
        left: formatEta(p.chatsTotal - p.chatsFetched, p.chatsFetched - fetchedAtStart, elapsedS),
      });
    },
    importFinished: () => {
      bar?.stop();
      bar = undefined;
    },
    summary: (summary) => stdout.write(mask(summaryText(summary, colour)) + '\n'),
    sessionSummary: (summary) => stdout.write(mask(summaryText(summary, colour)) + '\n'),
    totals: (outcomes, total) => stdout.write(mask(totalsText(outcomes, total, colour)) + '\n'),
    error: (error) => {
      spinner?.stopAndPersist({ symbol: colour.red('✖') });
      spinner = undefined;
      line(formatError(error, colour));
    },
  };
}
