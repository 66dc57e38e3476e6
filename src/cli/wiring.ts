import type { ConnectionConfig } from '../config/run-config.js';
import type { BatchWriter } from '../domain.js';
import {
  acquireImportLock,
  createBatchWriter,
  createRunLog,
  databaseIdentity,
  checkedWriter,
  isConnectionGone,
  loadCheckpointProgress,
  loadSyncMarks,
  LATEST_SCHEMA_VERSION,
  migrate,
  openDatabase,
  toDatabaseError,
  type AdvisoryLock,
  type CheckpointProgress,
  type DatabaseIdentity,
  type SyncMarks,
} from '../db/index.js';
import { answerDeadlineMs, DEFAULT_TIMEOUTS, type DatabaseTimeouts, type Sql } from '../db/connect.js';
import type { RunFinish } from '../db/runs.js';
import { KnownError } from '../errors.js';
import type { RunLog } from '../import/run-log.js';
import { createFailedChatStore, type FailedChatStore } from '../db/failed-chats.js';
import type { Reporter } from '../report/reporter.js';
import { createConcurrencyController, type ConcurrencyController } from '../concurrency/limiter.js';
import { createWahaClient, type WahaClient } from '../waha/client.js';
import { DEFAULT_RETRY_POLICY } from '../waha/retry.js';
import { countMessages, generateDataset, startSimulator } from '../sim/index.js';
import { formatCount } from '../import/summary.js';

/** What a WAHA client is made from: the server, the key, request limits and the concurrency setting. */
export interface WahaSettings {
  url: string;
  apiKey: string | undefined;
  requestTimeoutMs: number;
  maxResponseBytes: number;
  maxRetries: number;
  /** A fixed number of chats in flight, or `auto` (an adaptive controller fed by this client). */
  concurrency: number | 'auto';
  maxConcurrency: number;
}

/** A client for one WAHA server and the concurrency its strategies use (the controller it feeds, or the number). */
export function connectWaha(
  settings: WahaSettings,
  reporter: Reporter,
): { waha: WahaClient; concurrency: number | ConcurrencyController } {
  const concurrency =
    settings.concurrency === 'auto'
      ? createConcurrencyController({ max: settings.maxConcurrency })
      : settings.concurrency;
  const waha = createWahaClient({
    ...(typeof concurrency === 'number' ? {} : { observer: concurrency }),
    baseUrl: settings.url,
    apiKey: settings.apiKey,
    requestTimeoutMs: settings.requestTimeoutMs,
    maxResponseBytes: settings.maxResponseBytes,
    retry: { ...DEFAULT_RETRY_POLICY, maxRetries: settings.maxRetries },
    onRetry: (event) =>
      reporter.warn(
        `${event.endpoint}: ${event.reason}; retry ${event.retryNumber} in ${Math.round(event.delayMs)} ms`,
      ),
  });
  return { waha, concurrency };
}

export interface Store {
  /** The pool, for the queue's own bookkeeping (src/queue). */
  sql: Sql;
  /** The connection URL, password included, for another client of the same server: never print it. */
  url: string;
  /** Seconds an unused pooled connection stays open (see Database.poolIdleS): other pools keep to it. */
  poolIdleS: number;
  /** The schema's migrations: the versions applied by this opening (empty: it was up to date). */
  migration: { applied: number[]; version: number };
  writer: BatchWriter;
  /** Per chat of a session, the span of time already complete in the database. */
  syncMarks(session: string): Promise<SyncMarks>;
  runLog: RunLog;
  failedChats: FailedChatStore;
  /** Takes the database-wide lock for one session's import in this schema (LockedError when held). */
  lockImport(session: string): Promise<AdvisoryLock>;
  /** Which database this is (the schema's instance token, the cluster's identifier). */
  identity(): Promise<DatabaseIdentity>;
  /** What the database holds of one checkpoint's commits. */
  checkpointProgress(checkpointId: string): Promise<CheckpointProgress | undefined>;
  close(): Promise<void>;
}

/** Connects (or starts the embedded server), migrates, and hands out the writer and the run log. */
export async function openStore(
  config: Pick<ConnectionConfig, 'databaseUrl' | 'dataDir' | 'schema'> & {
    dbTimeouts?: Partial<DatabaseTimeouts> | undefined;
  },
  reporter: Reporter,
): Promise<Store> {
  reporter.step(config.databaseUrl ? 'Connecting to PostgreSQL' : 'Starting the embedded PostgreSQL');
  const db = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    ...(config.dbTimeouts ? { timeouts: config.dbTimeouts } : {}),
  });
  // A statement refused or a connection lost after connecting becomes a DatabaseError saying what
  // happened and what to do, not an "unexpected error". Every operation also ends when postgres.js is
  // found writing to a closed connection (db.broken): its statement would never settle.
  let connectionLost = false;
  const explained = <T>(work: Promise<T>): Promise<T> =>
    Promise.race([work, db.broken]).catch((error: unknown) => {
      throw explain(error);
    });
  const explain = (error: unknown): KnownError => {
    // The import lock lost with its connection (the lock's own, not the pool's) is taken as the server or
    // the path to it gone as well: the run record goes straight to a fresh connection, instead of waiting
    // a whole answer deadline more on a pool connection that is probably black-holed too.
    const cause = error instanceof Error ? error.cause : undefined;
    if (isConnectionGone(error) || isConnectionGone(cause) || db.brokenError) connectionLost = true;
    // postgres.js reports a connection given up for want of an answer as merely closed: say why.
    const reported = connectionLost && db.lastFault && !(error instanceof KnownError) ? db.lastFault : error;
    return toDatabaseError(reported, { displayUrl: db.displayUrl, databaseUrl: config.databaseUrl });
  };
  let applied: number[] = [];
  try {
    reporter.stepDone(`${db.embedded ? 'Embedded PostgreSQL' : 'PostgreSQL'} ready at ${db.displayUrl}`);
    reporter.step(`Applying migrations to schema "${config.schema}"`);
    ({ applied } = await explained(migrate(db.sql, config.schema)));
    reporter.stepDone(
      applied.length
        ? `Schema "${config.schema}" migrated to version ${applied.at(-1)}`
        : `Schema "${config.schema}" is up to date`,
    );
  } catch (error) {
    await db.close();
    throw error;
  }
  const runs = createRunLog(db.sql, config.schema);
  // A batch may wait for the one before it as long as a connection may wait for an answer.
  const writer = createBatchWriter(db.sql, config.schema, {
    orderWaitMs: answerDeadlineMs({ ...DEFAULT_TIMEOUTS, ...config.dbTimeouts }),
    onDeadlock: (attempt) =>
      reporter.warn(
        `PostgreSQL ended a batch to break a deadlock with another batch written into this schema (attempt ${attempt}); writing it again`,
      ),
  });
  const failedChats = createFailedChatStore(db.sql, config.schema);
  /** The lock of the session being imported: checked before every batch is written. */
  let heldLock: AdvisoryLock | undefined;

  /**
   * After a lost connection the pool may hold connections postgres.js left half-closed: what must still
   * be recorded goes over a new connection of its own, within a deadline.
   */
  const onFreshConnection = async <T>(work: (sql: Sql) => Promise<T>): Promise<T> => {
    const single = db.openSingle('(recording the outcome)');
    const timeouts = { ...DEFAULT_TIMEOUTS, ...config.dbTimeouts };
    const deadlineMs = ((timeouts.connectS || DEFAULT_TIMEOUTS.connectS) + 5) * 1000;
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        work(single.sql),
        new Promise<never>(
          (_, reject) =>
            (timer = setTimeout(
              () => reject(Object.assign(new Error('no answer'), { code: 'CONNECT_TIMEOUT' })),
              deadlineMs,
            )),
        ),
      ]);
    } finally {
      clearTimeout(timer);
      await single.end().catch(() => undefined);
    }
  };

  return {
    sql: db.sql,
    url: db.url,
    poolIdleS: db.poolIdleS,
    migration: { applied, version: LATEST_SCHEMA_VERSION },
    // A run that lost its lock stops before writing: another run may be importing by now.
    writer: checkedWriter(writer, async () => heldLock?.check(), explained),
    syncMarks: (session) => explained(loadSyncMarks(db.sql, config.schema, session)),
    failedChats: {
      record: (failure, runId) => explained(failedChats.record(failure, runId)),
      list: (session) => explained(failedChats.list(session)),
      storedChats: (session, ids) => explained(failedChats.storedChats(session, ids)),
    },
    runLog: {
      start: (run) => explained(runs.start(run)),
      finish: async (runId, summary) => {
        const outcome: RunFinish = {
          status: summary.status === 'running' ? 'failed' : summary.status,
          chats: summary.chats,
          chatsFailed: summary.chatsFailed,
          messagesFetched: summary.messagesFetched,
          inserted: summary.inserted,
          updated: summary.updated,
          unchanged: summary.unchanged,
          wahaRequests: summary.wahaRequests,
          retries: summary.retries,
          dbTransactions: summary.dbTransactions,
          elapsedMs: summary.elapsedMs,
          error: summary.error ?? undefined,
        };
        if (!connectionLost) {
          try {
            return await explained(runs.finish(runId, outcome));
          } catch (error) {
            if (!connectionLost) throw error;
          }
        }
        // Not raced against db.broken: this connection is not the broken pool's.
        return onFreshConnection((sql) => createRunLog(sql, config.schema).finish(runId, outcome)).catch(
          (error: unknown) => {
            throw explain(error);
          },
        );
      },
    },
    lockImport: async (session) => {
      const lock = await explained(
        acquireImportLock(db.openSingle('(import lock)', { idle: false }), config.schema, session),
      );
      // Holding the lock, no other run of this session is going on: a row still `running` is abandoned.
      try {
        await explained(runs.closeAbandoned(session));
      } catch (error) {
        await lock.release();
        throw error;
      }
      heldLock = lock;
      return {
        check: () => lock.check(),
        release: async () => {
          if (heldLock === lock) heldLock = undefined;
          await lock.release();
        },
      };
    },
    identity: () => explained(databaseIdentity(db.sql, config.schema)),
    checkpointProgress: (id) => explained(loadCheckpointProgress(db.sql, config.schema, id)),
    close: () => db.close({ now: connectionLost }),
  };
}

/**
 * `run --simulate`: the seed's dataset (1,172 chats, 5,683 messages over 30 days) behind a WAHA with a
 * modest latency, so a first try shows the tool at work without taking long.
 */
export async function startDemoSimulator(): Promise<{
  url: string;
  description: string;
  close: () => Promise<void>;
}> {
  const dataset = generateDataset();
  const sim = await startSimulator({
    latencyMs: 40,
    jitterMs: 20,
    capacity: 64,
    sessions: [{ name: 'default', dataset }],
  });
  return {
    url: sim.url,
    description: `${formatCount(dataset.chats.length)} chats, ${formatCount(countMessages(dataset).visible)} messages, ~40 ms per request`,
    close: () => sim.close(),
  };
}
