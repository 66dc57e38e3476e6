import type { ConnectionConfig } from '../config/run-config.js';
import type { BatchWriter, TimeWindow } from '../domain.js';
import {
  acquireImportLock,
  createBatchWriter,
  createRunLog,
  databaseIdentity,
  isConnectionGone,
  loadCheckpointProgress,
  loadSyncMarks,
  migrate,
  openDatabase,
  toDatabaseError,
  type AdvisoryLock,
  type CheckpointProgress,
  type DatabaseIdentity,
} from '../db/index.js';
import type { RunLog } from '../import/run-log.js';
import { createFailedChatStore, type FailedChatStore } from '../db/failed-chats.js';
import type { Reporter } from '../report/reporter.js';
import { countMessages, generateDataset, startSimulator } from '../sim/index.js';
import { formatCount } from '../import/summary.js';

export interface Store {
  writer: BatchWriter;
  /** Per chat of a session, the span of time already complete in the database. */
  syncMarks(session: string): Promise<Map<string, TimeWindow>>;
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
  config: Pick<ConnectionConfig, 'databaseUrl' | 'dataDir' | 'schema'>,
  reporter: Reporter,
): Promise<Store> {
  reporter.step(config.databaseUrl ? 'Connecting to PostgreSQL' : 'Starting the embedded PostgreSQL');
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  try {
    reporter.stepDone(`${db.embedded ? 'Embedded PostgreSQL' : 'PostgreSQL'} ready at ${db.displayUrl}`);
    reporter.step(`Applying migrations to schema "${config.schema}"`);
    const { applied } = await migrate(db.sql, config.schema);
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
  const writer = createBatchWriter(db.sql, config.schema);
  const failedChats = createFailedChatStore(db.sql, config.schema);
  // A statement refused or a connection lost after connecting becomes a DatabaseError saying what
  // happened and what to do, not an "unexpected error".
  let connectionLost = false;
  const explained = <T>(work: Promise<T>): Promise<T> =>
    work.catch((error: unknown) => {
      if (isConnectionGone(error)) connectionLost = true;
      throw toDatabaseError(error, { displayUrl: db.displayUrl, databaseUrl: config.databaseUrl });
    });
  return {
    writer: {
      writeBatch: (batch) => explained(writer.writeBatch(batch)),
      get transactions() {
        return writer.transactions;
      },
    },
    syncMarks: (session) => explained(loadSyncMarks(db.sql, config.schema, session)),
    failedChats: {
      record: (failure, runId) => explained(failedChats.record(failure, runId)),
      list: (session) => explained(failedChats.list(session)),
    },
    runLog: {
      start: (run) => explained(runs.start(run)),
      finish: (runId, summary) =>
        explained(
          runs.finish(runId, {
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
          }),
        ),
    },
    lockImport: async (session) => {
      const lock = await explained(acquireImportLock(db.sql, config.schema, session));
      // With the server gone, an unlock on the lock's connection would crash inside postgres.js; the
      // lock went with the connection anyway, and closing the pool tidies up.
      // Holding the lock, no other run of this session is going on: a row still `running` is abandoned.
      try {
        await explained(runs.closeAbandoned(session));
      } catch (error) {
        await lock.release();
        throw error;
      }
      return { release: () => (connectionLost ? Promise.resolve() : lock.release()) };
    },
    identity: () => explained(databaseIdentity(db.sql, config.schema)),
    checkpointProgress: (id) => explained(loadCheckpointProgress(db.sql, config.schema, id)),
    close: () => db.close(),
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
