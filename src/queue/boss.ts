import PgBoss from 'pg-boss';
import { answerDeadlineMs, DEFAULT_TIMEOUTS, type DatabaseTimeouts, type Sql } from '../db/connect.js';
import { DatabaseError } from '../errors.js';

/**
 * The job queue is pg-boss's, in a schema of its own beside the importer's tables (`<schema>_queue`):
 * jobs in the user's own PostgreSQL, retries with backoff, expiry that hands a dead worker's job to
 * another worker, and cron schedules that fire once across all workers.
 */
export const UNIT_QUEUE = 'waha-import-unit';
/** A schedule's firings arrive on a queue of its own: pg-boss 10 keeps one schedule per queue name. */
export const PLAN_QUEUE_PREFIX = 'waha-import-plan-';

export function bossSchema(schema: string): string {
  const name = `${schema}_queue`;
  if (name.length > 63) {
    throw new DatabaseError(
      `the job queue's schema "${name}" would be longer than PostgreSQL allows (63)`,
      'Use a --schema of at most 57 characters for the queue commands.',
    );
  }
  return name;
}

export interface BossOptions {
  /** The connection URL, password included (pg-boss opens its own small pool). */
  url: string;
  schema: string;
  /** Runs cron schedules (and the clock-skew check) in this process. */
  schedule?: boolean;
  /** Runs maintenance (expiring the jobs of dead workers, archiving) in this process. */
  supervise?: boolean;
  /** How often maintenance runs: how soon an expired job is handed to another worker. */
  maintenanceIntervalSeconds?: number;
  cronMonitorIntervalSeconds?: number;
  cronWorkerIntervalSeconds?: number;
  /** Connections of pg-boss's own pool. */
  max?: number;
  /**
   * Seconds an unused connection of pg-boss's pool stays open (0: kept; default: its driver's 10 s), so
   * that it closes them before a server idle_session_timeout ends one as it is taken (Store.poolIdleS).
   */
  idleS?: number;
  /**
   * The database timeouts of the process (--db-connect-timeout and friends; default DEFAULT_TIMEOUTS),
   * applied to pg-boss's own pool as to ours: without them a statement on a black-holed connection
   * waited for ever, and a worker with it.
   */
  timeouts?: DatabaseTimeouts;
}

/** Seconds between two maintenance passes of a worker: the expiry of a dead worker's job is found this late at most. */
export const MAINTENANCE_INTERVAL_S = 10;

/** Starts pg-boss (creating or migrating its schema) and turns its errors into warnings. */
export async function startBoss(options: BossOptions, onError: (error: Error) => void): Promise<PgBoss> {
  const timeouts = options.timeouts ?? DEFAULT_TIMEOUTS;
  // node-postgres's pool, under pg-boss (which hands it these; its typings omit them): 0 turns each off,
  // as in postgres.js. A statement not answered by its deadline (the server-side timeout plus a margin)
  // fails instead of holding its connection, and the worker waiting on it, for ever.
  const pool: Record<string, number | boolean> = {
    connectionTimeoutMillis: timeouts.connectS * 1000,
    ...(timeouts.statementS > 0
      ? { statement_timeout: timeouts.statementS * 1000, query_timeout: answerDeadlineMs(timeouts) }
      : {}),
    keepAlive: timeouts.keepaliveS > 0,
    keepAliveInitialDelayMillis: timeouts.keepaliveS * 1000,
  };
  const boss = new PgBoss({
    ...pool,
    connectionString: options.url,
    schema: bossSchema(options.schema),
    application_name: 'waha-import (queue)',
    max: options.max ?? 4,
    ...(options.idleS === undefined ? {} : { idleTimeoutMillis: options.idleS * 1000 }),
    schedule: options.schedule ?? false,
    supervise: options.supervise ?? false,
    maintenanceIntervalSeconds: options.maintenanceIntervalSeconds ?? MAINTENANCE_INTERVAL_S,
    ...(options.cronMonitorIntervalSeconds === undefined
      ? {}
      : { cronMonitorIntervalSeconds: options.cronMonitorIntervalSeconds }),
    ...(options.cronWorkerIntervalSeconds === undefined
      ? {}
      : { cronWorkerIntervalSeconds: options.cronWorkerIntervalSeconds }),
  });
  boss.on('error', onError);
  try {
    await boss.start();
  } catch (error) {
    await boss.stop({ graceful: false, wait: true }).catch(() => undefined);
    throw new DatabaseError(
      `could not start the job queue in schema "${bossSchema(options.schema)}": ${(error as Error).message}`,
      'The queue needs the CREATE privilege on the database the first time (pg-boss creates its schema).',
      { cause: error },
    );
  }
  await ensureQueue(boss, UNIT_QUEUE);
  return boss;
}

export async function ensureQueue(boss: PgBoss, name: string): Promise<void> {
  if (!(await boss.getQueue(name))) {
    try {
      await boss.createQueue(name, { name, policy: 'standard' });
    } catch (error) {
      // Two processes creating it at once: the other one won.
      if (!(await boss.getQueue(name))) throw error;
    }
  }
}

/**
 * pg-boss running a statement inside a transaction of ours (postgres.js), so what it writes commits with
 * our rows. `jsonFirst`: the statement's first parameter is JSON text for a `::json` parameter (pg-boss's
 * `insert` hands the jobs over so); postgres.js, which serialises json parameters itself, would encode
 * that text again as one JSON string, so it gets the parsed value.
 */
export function bossTxDb(
  tx: Sql,
  options: { jsonFirst?: boolean } = {},
): { executeSql(text: string, values: unknown[]): Promise<{ rows: unknown[] }> } {
  return {
    async executeSql(text, values) {
      const params = [...(values ?? [])];
      if (options.jsonFirst && typeof params[0] === 'string') params[0] = JSON.parse(params[0]) as unknown;
      const rows = await tx.unsafe(
        text,
        params.map((value) => (value === undefined ? null : value)) as never[],
      );
      return { rows: [...rows] };
    },
  };
}

/** The state pg-boss holds for a job (null once archived or deleted). */
export async function jobState(
  sql: Sql,
  schema: string,
  jobId: string,
): Promise<{ state: string; retryCount: number; startedOn: Date | null } | null> {
  const rows = await sql<Array<{ state: string; retry_count: number; started_on: Date | null }>>`
    select state::text as state, retry_count, started_on from ${sql(bossSchema(schema))}.job where id = ${jobId}`;
  const row = rows[0];
  return row ? { state: row.state, retryCount: row.retry_count, startedOn: row.started_on } : null;
}

/** Does pg-boss's schema exist yet (no queue command has run against this schema otherwise)? */
export async function bossInstalled(sql: Sql, schema: string): Promise<boolean> {
  const [row] = await sql<[{ found: boolean }]>`
    select to_regclass(${`${bossSchema(schema)}.job`}) is not null as found`;
  return row?.found === true;
}
