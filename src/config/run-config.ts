import fs from 'node:fs';
import path from 'node:path';
import type { WindowRequest } from '../checkpoint/checkpoint.js';
import type { TimeWindow } from '../domain.js';
import { UsageError } from '../errors.js';
import { DEFAULT_TIMEOUTS, type DatabaseTimeouts } from '../db/connect.js';
import { STRATEGY_NAMES, type StrategyName } from '../strategies/types.js';
import {
  boolean,
  httpUrl,
  instant,
  integer,
  oneOf,
  postgresUrl,
  resolveOptions,
  text,
  type OptionSpec,
  type Parsed,
  type ResolvedOption,
} from './options.js';

/** A WAHA session name; `.` and `..` alone would collapse the URL path they are put in. */
const SESSION_NAME = /^(?!\.{1,2}$)[A-Za-z0-9_.-]{1,64}$/;
/** A schema of our own: not one of PostgreSQL's (pg_*, information_schema). */
const SCHEMA_NAME = /^(?!pg_)(?!information_schema$)[a-z_][a-z0-9_]{0,62}$/;

/** `a,b` (flag, environment) or `["a", "b"]` (.importrc): one or more session names, each once. */
function sessionList(raw: unknown): Parsed<string[]> {
  const names = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',') : [];
  const cleaned = names.map((name) => (typeof name === 'string' ? name.trim() : name));
  const wrong = cleaned.filter((name) => typeof name !== 'string' || !SESSION_NAME.test(name));
  if (cleaned.length === 0 || wrong.length > 0) {
    return {
      ok: false,
      problem: `must be a WAHA session name or a comma-separated list of them (letters, digits, _ . -), got ${JSON.stringify(raw)}`,
    };
  }
  return { ok: true, value: [...new Set(cleaned as string[])] };
}

/** `auto` or a whole number of chats in flight. */
function concurrencySetting(raw: unknown): Parsed<number | 'auto'> {
  if (typeof raw === 'string' && raw.trim().toLowerCase() === 'auto') return { ok: true, value: 'auto' };
  const fixed = integer(1, 1000)(raw);
  return fixed.ok
    ? fixed
    : { ok: false, problem: `must be auto or a whole number from 1 to 1000, got ${JSON.stringify(raw)}` };
}

/** Without --concurrency: the adaptive limit where many chats share a transaction, the study's 20 otherwise. */
export function defaultConcurrency(strategy: StrategyName): number | 'auto' {
  return strategy === 'streaming' || strategy === 'chunked' ? 'auto' : strategy === 'sequential' ? 1 : 20;
}

/** Connection settings shared by every command that talks to WAHA or PostgreSQL. */
export const CONNECTION_OPTIONS: ReadonlyArray<OptionSpec<unknown>> = [
  {
    key: 'wahaUrl',
    flag: '--waha-url <url>',
    env: 'WAHA_URL',
    description: 'base URL of the WAHA server',
    defaultValue: 'http://localhost:3000',
    parse: httpUrl,
  },
  {
    key: 'apiKey',
    flag: '--api-key <key>',
    env: 'WAHA_API_KEY',
    description: 'WAHA API key, sent as X-Api-Key (never printed)',
    secret: true,
    parse: text(),
  },
  {
    key: 'apiKeyFile',
    flag: '--api-key-file <file>',
    env: 'WAHA_API_KEY_FILE',
    description:
      'read the WAHA API key from this file (a trailing newline is dropped); unlike --api-key it does not show in ps',
    parse: text(),
  },
  {
    key: 'session',
    flag: '--session <name>',
    env: 'WAHA_SESSION',
    description: 'WAHA session (WhatsApp number) to import',
    defaultValue: 'default',
    parse: text(SESSION_NAME, 'must be a WAHA session name (letters, digits, _ . -; not . or ..)'),
  },
  {
    key: 'databaseUrl',
    flag: '--database-url <url>',
    env: 'DATABASE_URL',
    description: 'PostgreSQL URL; without one an embedded PostgreSQL is started (password never printed)',
    secret: true,
    parse: postgresUrl,
  },
  {
    key: 'databaseUrlFile',
    flag: '--database-url-file <file>',
    env: 'DATABASE_URL_FILE',
    description:
      'read the PostgreSQL URL from this file (a trailing newline is dropped); unlike --database-url it does not show in ps',
    parse: text(),
  },
  {
    key: 'dataDir',
    flag: '--data-dir <dir>',
    env: 'WAHA_IMPORT_DATA_DIR',
    description:
      'data directory of the embedded PostgreSQL; default ~/.local/share/waha-import/postgres ($XDG_DATA_HOME/waha-import/postgres when set), as root /var/lib/waha-import/postgres',
    parse: text(),
  },
  {
    key: 'schema',
    flag: '--schema <name>',
    env: 'WAHA_IMPORT_SCHEMA',
    description: 'PostgreSQL schema for the tables',
    defaultValue: 'waha',
    parse: text(
      SCHEMA_NAME,
      "must be a lower-case SQL identifier (a-z, 0-9, _; at most 63) and not one of PostgreSQL's own (pg_*, information_schema)",
    ),
  },
];

export const RUN_OPTIONS: ReadonlyArray<OptionSpec<unknown>> = [
  ...CONNECTION_OPTIONS.map((spec): OptionSpec<unknown> =>
    spec.key === 'session'
      ? {
          ...spec,
          flag: '--session <names>',
          description:
            'WAHA session (WhatsApp number) to import; several as a,b (each with its own checkpoint and lock)',
          defaultValue: ['default'],
          parse: sessionList,
        }
      : spec,
  ),
  {
    key: 'allSessions',
    flag: '--all-sessions',
    description: 'import every session WAHA lists as WORKING (GET /api/sessions), one after another',
    parse: boolean,
  },
  {
    key: 'strategy',
    flag: '--strategy <name>',
    env: 'WAHA_IMPORT_STRATEGY',
    description: `how chats are fetched and grouped into transactions: ${STRATEGY_NAMES.join(' | ')}`,
    defaultValue: 'streaming',
    parse: oneOf(STRATEGY_NAMES),
  },
  {
    key: 'days',
    flag: '--days <n>',
    description: 'import the last N days (not together with --since)',
    defaultValue: 30,
    parse: integer(1, 36_500),
  },
  {
    key: 'since',
    flag: '--since <when>',
    description: 'start of the window: 2026-10-01, 2026-10-01T12:00:00Z or unix seconds (UTC)',
    parse: instant,
  },
  {
    key: 'until',
    flag: '--until <when>',
    description: 'end of the window, inclusive; not later than now (default: the moment the run starts)',
    parse: instant,
  },
  {
    key: 'incremental',
    flag: '--incremental',
    env: 'WAHA_IMPORT_INCREMENTAL',
    description:
      'fetch each chat only from where its last import ended (minus --overlap); new chats, and every chat on a first run, use the --days/--since window',
    parse: boolean,
  },
  {
    key: 'overlap',
    flag: '--overlap <s>',
    description:
      "incremental: seconds before the end of a chat's last import to fetch again, for late and same-second messages",
    defaultValue: 3600,
    parse: integer(0, 30 * 86_400),
  },
  {
    key: 'concurrency',
    flag: '--concurrency <n|auto>',
    env: 'WAHA_IMPORT_CONCURRENCY',
    description:
      'chats fetched from WAHA at once: a number, or auto (found while running, up to --max-concurrency); default auto for streaming and chunked, 20 for parallel',
    parse: concurrencySetting,
  },
  {
    key: 'maxConcurrency',
    flag: '--max-concurrency <n>',
    env: 'WAHA_IMPORT_MAX_CONCURRENCY',
    description: '--concurrency auto: the most chats it may fetch at once',
    defaultValue: 100,
    parse: integer(1, 1000),
  },
  {
    key: 'chunk',
    flag: '--chunk <n>',
    description: 'chunked: chats per transaction',
    defaultValue: 50,
    parse: integer(1, 100_000),
  },
  {
    key: 'batchSize',
    flag: '--batch-size <n>',
    description:
      'messages per transaction (streaming, which also seals a batch at this many chats); the most one holds (parallel, sequential, chunked: a bigger chat or chunk commits in parts; parallel also commits a part of a chat once its chats hold this many together)',
    defaultValue: 2000,
    parse: integer(1, 1_000_000),
  },
  {
    key: 'flushMs',
    flag: '--flush-ms <ms>',
    description: 'streaming: commit a partial batch after this many ms without reaching --batch-size',
    defaultValue: 1000,
    parse: integer(1, 3_600_000),
  },
  {
    key: 'pageSize',
    flag: '--page-size <n>',
    description: 'messages per WAHA request (WAHA deployments cap this at 100)',
    defaultValue: 100,
    parse: integer(1, 100),
  },
  {
    key: 'chatPageSize',
    flag: '--chat-page-size <n>',
    description: 'chats per WAHA request when listing chats',
    defaultValue: 500,
    parse: integer(1, 100_000),
  },
  {
    key: 'pageEnd',
    flag: '--page-end <rule>',
    description:
      'when a chat is finished: empty = at the first empty page (see --empty-pages), short = at the first short page (fewer requests; can miss messages on NOWEB/GOWS), auto = short on WEBJS, empty otherwise',
    defaultValue: 'auto',
    parse: oneOf(['auto', 'empty', 'short'] as const),
  },
  {
    key: 'emptyPages',
    flag: '--empty-pages <n>',
    description:
      'with the empty rule: pages bringing nothing new that end a chat; 2 or more looks one page (or more) further by offset first, past runs of hidden rows (GOWS reactions, edits), one request more per chat',
    defaultValue: 1,
    parse: integer(1, 10),
  },
  {
    key: 'maxSlices',
    flag: '--max-slices <n>',
    description:
      'time slices one long chat may be read in at once, from WAHA capacity left free by the other chats (NOWEB and GOWS; 1 = never)',
    defaultValue: 8,
    parse: integer(1, 64),
  },
  {
    key: 'requestTimeout',
    flag: '--request-timeout <s>',
    description: 'seconds one WAHA request may take, body included, before it is retried',
    defaultValue: 60,
    parse: integer(1, 3600),
  },
  {
    key: 'maxRetries',
    flag: '--max-retries <n>',
    description: 'retries of one WAHA request on 408/429/5xx/timeouts/network errors',
    defaultValue: 6,
    parse: integer(0, 100),
  },
  {
    key: 'maxResponseMb',
    flag: '--max-response-mb <n>',
    description: 'largest WAHA response accepted, in MiB',
    defaultValue: 64,
    parse: integer(1, 4096),
  },
  {
    key: 'dbConnectTimeout',
    flag: '--db-connect-timeout <s>',
    env: 'WAHA_IMPORT_DB_CONNECT_TIMEOUT',
    description: 'seconds opening a PostgreSQL connection may take (TCP, TLS, login); 0 waits forever',
    defaultValue: DEFAULT_TIMEOUTS.connectS,
    parse: integer(0, 3600),
  },
  {
    key: 'dbStatementTimeout',
    flag: '--db-statement-timeout <s>',
    env: 'WAHA_IMPORT_DB_STATEMENT_TIMEOUT',
    description:
      "seconds one SQL statement may take (the server's statement_timeout); a connection silent 5 s longer than that while awaiting an answer is dropped as dead; 0 waits forever",
    defaultValue: DEFAULT_TIMEOUTS.statementS,
    parse: integer(0, 86_400),
  },
  {
    key: 'dbIdleTimeout',
    flag: '--db-idle-timeout <s>',
    env: 'WAHA_IMPORT_DB_IDLE_TIMEOUT',
    description:
      "seconds an unused pooled PostgreSQL connection is kept open (not the lock's; at most half a server idle_session_timeout); 0 keeps it",
    defaultValue: DEFAULT_TIMEOUTS.idleS,
    parse: integer(0, 86_400),
  },
  {
    key: 'dbKeepalive',
    flag: '--db-keepalive <s>',
    env: 'WAHA_IMPORT_DB_KEEPALIVE',
    description:
      'seconds without traffic before TCP keepalive probes start on PostgreSQL connections; 0 turns them off',
    defaultValue: DEFAULT_TIMEOUTS.keepaliveS,
    parse: integer(0, 86_400),
  },
  {
    key: 'checkpoint',
    flag: '--checkpoint <file>',
    description:
      'resume cursor (default: .waha-import/checkpoint-<session>-<schema>.json in the working directory; ' +
      'checkpoint-simulate-<session>-<schema>.json with --simulate)',
    parse: text(),
  },
  {
    key: 'fresh',
    flag: '--fresh',
    description: 'ignore an unfinished checkpoint and start the window over (writes stay idempotent)',
    parse: boolean,
  },
  {
    key: 'simulate',
    flag: '--simulate',
    description:
      'start the built-in WAHA simulator with its default dataset and import from it (ignores --waha-url)',
    parse: boolean,
  },
  {
    key: 'json',
    flag: '--json',
    description: 'newline-delimited JSON events and a final summary on stdout',
    parse: boolean,
  },
  {
    key: 'quiet',
    flag: '--quiet',
    description: 'print only errors (for cron)',
    parse: boolean,
  },
];

export interface ConnectionConfig {
  wahaUrl: string;
  apiKey: string | undefined;
  session: string;
  databaseUrl: string | undefined;
  dataDir: string | undefined;
  schema: string;
}

export interface RunConfig extends Omit<ConnectionConfig, 'session'> {
  /** Every WAHA server named (`enqueue --waha-url a,b`); `[wahaUrl]` for the commands that take one. */
  wahaUrls: string[];
  /** The sessions to import, in order (ignored with allSessions). */
  sessions: string[];
  /** Import every session WAHA lists as WORKING. */
  allSessions: boolean;
  strategy: StrategyName;
  window: TimeWindow;
  /** What was asked (`--days 30`), kept in the checkpoint: a resumed run keeps the window it started with. */
  windowRequest: WindowRequest;
  checkpoint: string | undefined;
  fresh: boolean;
  /** Set for `--incremental`. */
  incremental: { overlapS: number } | undefined;
  /** Chats in flight, or `auto` (the adaptive controller, bounded by maxConcurrency). */
  concurrency: number | 'auto';
  maxConcurrency: number;
  chunk: number;
  batchSize: number;
  flushMs: number;
  pageSize: number;
  chatPageSize: number;
  pageEnd: 'auto' | 'empty' | 'short';
  emptyPages: number;
  maxSlices: number;
  requestTimeoutMs: number;
  maxRetries: number;
  maxResponseBytes: number;
  /** PostgreSQL connect, statement and idle timeouts and TCP keepalive, in seconds (0 = off). */
  dbTimeouts: DatabaseTimeouts;
  simulate: boolean;
  json: boolean;
  quiet: boolean;
}

export interface ConfigSources {
  flags: Record<string, unknown>;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** --config: a file that must exist; otherwise `.importrc` in cwd is read when present. */
  configPath?: string | undefined;
  nowMs: number;
  /** The command whose --help the usage error points to (default run). */
  helpCommand?: string;
}

/** Settings that may instead be read from a file: value key, file key, how the file's content is checked. */
const SECRET_FILES = [
  { valueKey: 'apiKey', fileKey: 'apiKeyFile', parse: text() },
  { valueKey: 'databaseUrl', fileKey: 'databaseUrlFile', parse: postgresUrl },
] as const;

/**
 * Replaces each `...File` setting by the content of its file (without its trailing newline). A file that
 * is missing, unreadable or empty, and a value given both directly and as a file, are problems.
 */
function readSecretFiles(
  values: Record<string, ResolvedOption<unknown>>,
  problems: string[],
  cwd: string,
): void {
  for (const { valueKey, fileKey, parse } of SECRET_FILES) {
    const file = values[fileKey];
    if (file === undefined || typeof file.value !== 'string') continue;
    const direct = values[valueKey];
    if (direct !== undefined && direct.source !== 'default') {
      problems.push(`${direct.source} and ${file.source} both give the value; give one of them`);
      continue;
    }
    const resolved = path.resolve(cwd, file.value);
    let content: string;
    try {
      content = fs.readFileSync(resolved, 'utf8').replace(/[\r\n]+$/, '');
    } catch (error) {
      problems.push(`${file.source}: cannot read ${resolved} (${(error as Error).message})`);
      continue;
    }
    if (content.trim() === '') {
      problems.push(`${file.source}: ${resolved} is empty`);
      continue;
    }
    const parsed = parse(content);
    if (!parsed.ok) problems.push(`${file.source}: the content of ${resolved} ${parsed.problem}`);
    values[valueKey] = { value: parsed.ok ? parsed.value : undefined, source: file.source };
  }
}

export function loadConfigFile(
  cwd: string,
  explicitPath: string | undefined,
): { path: string; values: Record<string, unknown> } | undefined {
  const file = explicitPath ? path.resolve(cwd, explicitPath) : path.join(cwd, '.importrc');
  let content: string;
  try {
    content = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if (!explicitPath && (error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UsageError(`cannot read config file ${file}: ${(error as Error).message}`, 'Check --config.');
  }
  let values: unknown;
  try {
    values = JSON.parse(content);
  } catch (error) {
    throw new UsageError(
      `config file ${file} is not valid JSON: ${(error as Error).message}`,
      'Fix the file; .importrc.example shows every key.',
    );
  }
  if (values === null || typeof values !== 'object' || Array.isArray(values)) {
    throw new UsageError(`config file ${file} must hold a JSON object`, '.importrc.example shows every key.');
  }
  return { path: path.relative(cwd, file) || file, values: values as Record<string, unknown> };
}

/**
 * Keys of `.importrc` that belong to the queue commands (enqueue, worker, schedule: src/cli/queue.ts;
 * a test keeps this list equal to their options): one .importrc serves every command, so `run` must
 * not call them unknown.
 */
export const QUEUE_FILE_KEYS: readonly string[] = [
  'chatsPerJob',
  'jobTimeout',
  'jobRetries',
  'jobs',
  'poll',
  'once',
  'shutdownGrace',
  'name',
  'tz',
];

/** The file without the keys another command reads (they are not this command's, nor unknown). */
function withoutOtherCommandsKeys(
  file: { path: string; values: Record<string, unknown> } | undefined,
  specs: ReadonlyArray<OptionSpec<unknown>>,
): { path: string; values: Record<string, unknown> } | undefined {
  if (!file) return file;
  const own = new Set(specs.map((spec) => spec.key));
  const others = new Set([...RUN_OPTIONS.map((spec) => spec.key), ...QUEUE_FILE_KEYS]);
  return {
    path: file.path,
    values: Object.fromEntries(
      Object.entries(file.values).filter(([key]) => own.has(key) || !others.has(key)),
    ),
  };
}

/** `--waha-url a,b`: one or more WAHA servers (enqueue and schedule plan over several). */
export function httpUrlList(raw: unknown): Parsed<string[]> {
  const items = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',') : [raw];
  const urls: string[] = [];
  for (const item of items) {
    const parsed = httpUrl(typeof item === 'string' ? item.trim() : item);
    if (!parsed.ok) return { ok: false, problem: `${JSON.stringify(item)} ${parsed.problem}` };
    urls.push(parsed.value);
  }
  return urls.length > 0 ? { ok: true, value: [...new Set(urls)] } : { ok: false, problem: 'names no URL' };
}

/**
 * The settings of `run`; `specs` replaces RUN_OPTIONS for commands that plan the same import (enqueue,
 * schedule: several WAHA URLs, options of their own), which must hold every key of RUN_OPTIONS.
 */
export function resolveRunConfig(
  sources: ConfigSources,
  specs: ReadonlyArray<OptionSpec<unknown>> = RUN_OPTIONS,
): RunConfig & { extra: Record<string, unknown> } {
  const file = withoutOtherCommandsKeys(loadConfigFile(sources.cwd, sources.configPath), specs);
  const { values, problems } = resolveOptions(specs, { flags: sources.flags, env: sources.env, file });
  readSecretFiles(values, problems, sources.cwd);
  const get = <T>(key: string): T => values[key]!.value as T;

  const nowS = Math.floor(sources.nowMs / 1000);
  const untilS = get<number | undefined>('until') ?? nowS;
  // A chat read to its end is recorded as complete up to the window's end (chat_sync), and incremental
  // runs start there: an end still to come would mark as read what arrives until then.
  if (untilS > nowS) {
    const iso = (s: number): string => new Date(s * 1000).toISOString().replace('.000Z', 'Z');
    problems.push(
      `${values.until!.source} ${iso(untilS)} is later than now (${iso(nowS)}): messages that have not been ` +
        'sent yet cannot be imported, and each chat would be recorded as complete up to it, so incremental ' +
        'runs would skip what arrives until then; leave it out to import up to now',
    );
  }
  const sinceS = get<number | undefined>('since');
  if (sinceS !== undefined && values.days!.source !== 'default') {
    problems.push(
      `${values.since!.source} and ${values.days!.source} both set the window start; give one of them`,
    );
  }
  // WAHA refuses a negative filter.timestamp.gte (HTTP 400), and nothing is older than 1970 anyway.
  const fromS = Math.max(0, sinceS ?? untilS - get<number>('days') * 86_400);
  if (problems.length === 0 && fromS > untilS) {
    problems.push(
      `the window starts after it ends (${values.since!.source} is later than ${values.until!.source})`,
    );
  }
  const incremental = get<boolean | undefined>('incremental')
    ? { overlapS: get<number>('overlap') }
    : undefined;
  // A file may keep an overlap for the incremental runs among others; a flag for a full run is a mistake.
  if (!incremental && values.overlap!.source === '--overlap') {
    problems.push('--overlap only applies to incremental runs; add --incremental');
  }
  const allSessions = get<boolean | undefined>('allSessions') ?? false;
  const sessions = get<string[] | undefined>('session') ?? [];
  if (allSessions && values.session!.source !== 'default') {
    problems.push(
      `${values.allSessions!.source} and ${values.session!.source} both choose the sessions; give one`,
    );
  }
  if ((allSessions || sessions.length > 1) && values.checkpoint!.source !== 'default') {
    problems.push(
      `${values.checkpoint!.source} names one file, but several sessions are imported; leave it out ` +
        '(each session gets .waha-import/checkpoint-<session>-<schema>.json)',
    );
  }
  if (get<boolean>('json') && get<boolean>('quiet'))
    problems.push('--json and --quiet cannot be used together');
  if (problems.length > 0) {
    throw new UsageError(
      problems,
      `Run \`waha-import ${sources.helpCommand ?? 'run'} --help\` for every flag, its default and its environment variable.`,
    );
  }
  const runKeys = new Set(RUN_OPTIONS.map((spec) => spec.key));
  const wahaUrl = get<string | string[]>('wahaUrl');
  return {
    wahaUrl: Array.isArray(wahaUrl) ? wahaUrl[0]! : wahaUrl,
    wahaUrls: Array.isArray(wahaUrl) ? wahaUrl : [wahaUrl],
    extra: Object.fromEntries(
      Object.entries(values)
        .filter(([key]) => !runKeys.has(key))
        .map(([key, option]) => [key, option.value]),
    ),
    apiKey: get('apiKey'),
    sessions,
    allSessions,
    databaseUrl: get('databaseUrl'),
    dataDir: get('dataDir'),
    schema: get('schema'),
    strategy: get('strategy'),
    window: { fromS, toS: untilS },
    windowRequest: {
      ...(sinceS === undefined ? { days: get<number>('days') } : { sinceS }),
      ...(get<number | undefined>('until') === undefined ? {} : { untilS }),
      ...(incremental ? { incrementalOverlapS: incremental.overlapS } : {}),
    },
    incremental,
    checkpoint: get('checkpoint'),
    fresh: get<boolean | undefined>('fresh') ?? false,
    concurrency: get<number | 'auto' | undefined>('concurrency') ?? defaultConcurrency(get('strategy')),
    maxConcurrency: get('maxConcurrency'),
    chunk: get('chunk'),
    batchSize: get('batchSize'),
    flushMs: get('flushMs'),
    pageSize: get('pageSize'),
    chatPageSize: get('chatPageSize'),
    pageEnd: get('pageEnd'),
    emptyPages: get('emptyPages'),
    maxSlices: get('maxSlices'),
    requestTimeoutMs: get<number>('requestTimeout') * 1000,
    maxRetries: get('maxRetries'),
    maxResponseBytes: get<number>('maxResponseMb') * 1024 * 1024,
    dbTimeouts: {
      connectS: get('dbConnectTimeout'),
      statementS: get('dbStatementTimeout'),
      idleS: get('dbIdleTimeout'),
      keepaliveS: get('dbKeepalive'),
    },
    simulate: get<boolean | undefined>('simulate') ?? false,
    json: get<boolean | undefined>('json') ?? false,
    quiet: get<boolean | undefined>('quiet') ?? false,
  };
}

/**
 * Settings for a command that takes only some of the options (migrate, status): the same .importrc is
 * read, its keys checked against everything .importrc may hold, and only this command's keys used.
 */
export function resolveCommandOptions(
  specs: ReadonlyArray<OptionSpec<unknown>>,
  sources: {
    flags: Record<string, unknown>;
    env: NodeJS.ProcessEnv;
    cwd: string;
    configPath?: string | undefined;
  },
  helpCommand: string,
): Record<string, unknown> {
  const file = loadConfigFile(sources.cwd, sources.configPath);
  const problems: string[] = [];
  const ownKeys = new Set(specs.map((spec) => spec.key));
  const fileKeys = new Set([...[...RUN_OPTIONS, ...specs].map((spec) => spec.key), ...QUEUE_FILE_KEYS]);
  for (const key of Object.keys(file?.values ?? {})) {
    if (!fileKeys.has(key) && !key.startsWith('//') && !key.startsWith('$')) {
      problems.push(`${file!.path} has an unknown key "${key}"`);
    }
  }
  const own = file && {
    path: file.path,
    values: Object.fromEntries(Object.entries(file.values).filter(([key]) => ownKeys.has(key))),
  };
  const resolved = resolveOptions(specs, { flags: sources.flags, env: sources.env, file: own });
  problems.push(...resolved.problems);
  readSecretFiles(resolved.values, problems, sources.cwd);
  if (problems.length) throw new UsageError(problems, `Run \`waha-import ${helpCommand} --help\`.`);
  return Object.fromEntries(Object.entries(resolved.values).map(([key, option]) => [key, option.value]));
}
