import type { TimeWindow } from '../domain.js';
import type { Sql } from './connect.js';
import { validateSchemaName } from './schema.js';

export type RunStatus = 'running' | 'succeeded' | 'partial' | 'failed' | 'interrupted';

export interface RunStart {
  session: string;
  strategy: string;
  window: TimeWindow;
  /**
   * The options the run was started with, stored as jsonb for later comparison. Stored as given: the
   * caller must leave out or redact secrets (API key, database password) before passing them.
   */
  options: Record<string, unknown>;
}

export interface RunFinish {
  status: Exclude<RunStatus, 'running'>;
  chats: number;
  /** Chats the run could not import (status `partial`). */
  chatsFailed?: number;
  messagesFetched: number;
  inserted: number;
  updated: number;
  unchanged: number;
  wahaRequests: number;
  retries: number;
  dbTransactions: number;
  elapsedMs: number;
  /** What went wrong, for failed and interrupted runs; redacted by the caller like `options`. */
  error?: string;
}

export interface RunRecord extends Partial<Omit<RunFinish, 'status'>> {
  id: number;
  session: string;
  strategy: string;
  window: TimeWindow | null;
  startedAt: Date;
  finishedAt: Date | null;
  status: RunStatus;
  options: Record<string, unknown> | null;
}

export interface RunLogStore {
  /** Records a run as `running` and returns its id. */
  start(run: RunStart): Promise<number>;
  /** Records how the run ended. */
  finish(id: number, result: RunFinish): Promise<void>;
  /** The latest runs, newest first; only one session's when `session` is given. */
  recent(limit: number, session?: string): Promise<RunRecord[]>;
  /**
   * Marks the session's runs still shown as `running` as interrupted: their process died without saying
   * so (killed, or cut off from the database). Call only while holding the session's import lock, when
   * no other run of the session can be going on. Returns how many were marked.
   */
  closeAbandoned(session: string): Promise<number>;
}

/** The history of runs in `<schema>.import_runs`, one row per run. */
export function createRunLog(sql: Sql, schema: string): RunLogStore {
  validateSchemaName(schema);
  return {
    async start(run) {
      const [row] = await sql<Array<{ id: string }>>`
        insert into ${sql(schema)}.import_runs (session, strategy, window_from, window_to, options)
        values (
          ${run.session},
          ${run.strategy},
          to_timestamp(${run.window.fromS}),
          to_timestamp(${run.window.toS}),
          ${sql.json(run.options as Parameters<typeof sql.json>[0])}
        )
        returning id`;
      return Number(row!.id);
    },

    async closeAbandoned(session) {
      const rows = await sql`
        update ${sql(schema)}.import_runs set
          status = 'interrupted',
          error = 'the run ended without recording how (its process was killed or lost the database); the next run continued from its checkpoint'
        where session = ${session} and status = 'running'
        returning id`;
      return rows.length;
    },

    async finish(id, result) {
      await sql`
        update ${sql(schema)}.import_runs set
          finished_at = now(),
          status = ${result.status},
          chats = ${result.chats},
          chats_failed = ${result.chatsFailed ?? 0},
          messages_fetched = ${result.messagesFetched},
          inserted = ${result.inserted},
          updated = ${result.updated},
          unchanged = ${result.unchanged},
          waha_requests = ${result.wahaRequests},
          retries = ${result.retries},
          db_transactions = ${result.dbTransactions},
          elapsed_ms = ${Math.round(result.elapsedMs)},
          error = ${result.error ?? null}
        where id = ${id}`;
    },

    async recent(limit, session) {
      const rows = await sql<RunRow[]>`
        select id, session, strategy, extract(epoch from window_from)::float8 as window_from_s,
          extract(epoch from window_to)::float8 as window_to_s, started_at, finished_at, status, chats,
          messages_fetched, inserted, updated, unchanged, waha_requests, retries, db_transactions, elapsed_ms,
          options, error
        from ${sql(schema)}.import_runs
        ${session === undefined ? sql`` : sql`where session = ${session}`}
        order by id desc
        limit ${limit}`;
      return rows.map(toRunRecord);
    },
  };
}

interface RunRow {
  id: string;
  session: string;
  strategy: string;
  window_from_s: number | null;
  window_to_s: number | null;
  started_at: Date;
  finished_at: Date | null;
  status: RunStatus;
  chats: number | null;
  messages_fetched: number | null;
  inserted: number | null;
  updated: number | null;
  unchanged: number | null;
  waha_requests: number | null;
  retries: number | null;
  db_transactions: number | null;
  elapsed_ms: number | null;
  options: Record<string, unknown> | null;
  error: string | null;
}

function toRunRecord(row: RunRow): RunRecord {
  const optional = <T>(value: T | null): T | undefined => (value === null ? undefined : value);
  return {
    id: Number(row.id),
    session: row.session,
    strategy: row.strategy,
    window:
      row.window_from_s === null || row.window_to_s === null
        ? null
        : { fromS: row.window_from_s, toS: row.window_to_s },
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    status: row.status,
    options: row.options,
    chats: optional(row.chats),
    messagesFetched: optional(row.messages_fetched),
    inserted: optional(row.inserted),
    updated: optional(row.updated),
    unchanged: optional(row.unchanged),
    wahaRequests: optional(row.waha_requests),
    retries: optional(row.retries),
    dbTransactions: optional(row.db_transactions),
    elapsedMs: optional(row.elapsed_ms),
    error: optional(row.error),
  };
}
