import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Sql } from '../../src/db/connect.js';
import { createBatchWriter, createRunLog, migrate } from '../../src/db/index.js';
import { createFailedChatStore } from '../../src/db/failed-chats.js';
import type { TimeWindow } from '../../src/domain.js';
import { runImport, type ImportOutcome } from '../../src/import/runner.js';
import { DEFAULT_MAX_SLICES } from '../../src/import/slices.js';
import type { Reporter } from '../../src/report/reporter.js';
import type { GroundTruth, Simulator } from '../../src/sim/index.js';
import { strategyNamed } from '../../src/strategies/registry.js';
import type { StrategyName } from '../../src/strategies/types.js';
import { createWahaClient } from '../../src/waha/client.js';
import { DEFAULT_RETRY_POLICY } from '../../src/waha/retry.js';
import { jsonSummary, runArgs, runCli, runUntilImportStarts } from './cli.js';
import type { TestDatabase } from './db.js';

/**
 * The contract every strategy must keep against every engine profile: the harness runs one in-process
 * import (the same runner, client and writer as `run`) and compares the database with the simulator's
 * model of what it held before and after.
 */

/** Swallows everything but keeps the warnings, which tests may read. */
export function recordingReporter(): Reporter & { warnings: string[] } {
  const warnings: string[] = [];
  return new Proxy({ warnings } as unknown as Reporter & { warnings: string[] }, {
    get(target, key) {
      if (key === 'warnings') return warnings;
      if (key === 'warn') return (text: string) => warnings.push(text);
      return () => undefined;
    },
  });
}

export const FAST_RETRY = { ...DEFAULT_RETRY_POLICY, baseDelayMs: 2, maxDelayMs: 10, maxRetries: 2 };

export async function importOnce(options: {
  sql: Sql;
  schema: string;
  sim: Pick<Simulator, 'url'>;
  strategy: StrategyName;
  window: TimeWindow;
  pageSize: number;
  emptyPagesToEnd?: number;
  /** Time slices per chat; default `run`'s. */
  maxSlices?: number;
}): Promise<ImportOutcome> {
  await migrate(options.sql, options.schema);
  const waha = createWahaClient({
    baseUrl: options.sim.url,
    requestTimeoutMs: 10_000,
    maxResponseBytes: 16 * 1024 * 1024,
    retry: FAST_RETRY,
  });
  const runs = createRunLog(options.sql, options.schema);
  return runImport(
    {
      waha,
      writer: createBatchWriter(options.sql, options.schema),
      runLog: {
        start: (run) => runs.start(run),
        finish: (runId, summary) =>
          runs.finish(runId, {
            ...summary,
            status: summary.status === 'running' ? 'failed' : summary.status,
            error: summary.error ?? undefined,
          }),
      },
      failedChats: createFailedChatStore(options.sql, options.schema),
      reporter: recordingReporter(),
      signal: new AbortController().signal,
    },
    {
      session: 'default',
      window: options.window,
      strategy: strategyNamed(options.strategy),
      strategyOptions: { concurrency: 4, chunkSize: 5, batchSize: 60, flushMs: 50 },
      pageSize: options.pageSize,
      pageEnd: 'auto',
      ...(options.emptyPagesToEnd === undefined ? {} : { emptyPagesToEnd: options.emptyPagesToEnd }),
      maxSlices: options.maxSlices ?? DEFAULT_MAX_SLICES,
      chatPageSize: 7,
      recordedOptions: {},
    },
  );
}

interface StoredRow {
  id: string;
  wa_id: string;
  chat_id: string;
  sender: string | null;
  from_me: boolean;
  timestamp_s: string | null;
  participant: string | null;
  raw: unknown;
}

/**
 * Checks the contract after a run, by waId (the one id that survives a move between `@c.us` and `@lid`):
 * - every message that existed at the start and still exists at the end is stored exactly once, with
 *   the fields the simulator's model says (as it was at the start or as it is at the end: a message moved
 *   mid-run may be stored under either form), and `raw` exactly as one of those was served;
 * - nothing else is stored but messages that existed at some point of the run (deleted or arrived ones
 *   may or may not be there);
 * - messages of `skipChats` (failed chats) are not required.
 * Returns the problems, first few of each kind; an empty list means the contract holds.
 */
export async function contractProblems(
  sql: Sql,
  schema: string,
  start: GroundTruth,
  end: GroundTruth,
  options: { mayExist?: Iterable<string>; skipWaIds?: ReadonlySet<string> } = {},
): Promise<string[]> {
  const rows = await sql<StoredRow[]>`
    select id, wa_id, chat_id, sender, from_me, timestamp_s::text, participant, raw
    from ${sql(schema)}.messages where session = 'default'`;
  const byWaId = new Map<string, StoredRow[]>();
  for (const row of rows) byWaId.set(row.wa_id, [...(byWaId.get(row.wa_id) ?? []), row]);
  const versions = (truth: GroundTruth) => {
    const map = new Map<string, { expected: GroundTruth['expected'][number]; served: unknown }>();
    truth.expected.forEach((expected, i) => map.set(expected.waId, { expected, served: truth.messages[i] }));
    return map;
  };
  const atStart = versions(start);
  const atEnd = versions(end);
  const mayExist = new Set(options.mayExist ?? []);
  const problems: string[] = [];
  const report = (text: string): void => {
    if (problems.length < 12) problems.push(text);
  };

  for (const [waId, stored] of byWaId) {
    if (stored.length > 1)
      report(`${waId} stored ${stored.length} times: ${stored.map((r) => r.id).join(', ')}`);
    if (!atStart.has(waId) && !atEnd.has(waId) && !mayExist.has(waId))
      report(`${waId} stored but never existed`);
  }
  for (const [waId, first] of atStart) {
    const last = atEnd.get(waId);
    if (!last || options.skipWaIds?.has(waId)) continue;
    const row = byWaId.get(waId)?.[0];
    if (!row) {
      report(`${waId} (${first.expected.id}) existed all along but is not stored`);
      continue;
    }
    const got = {
      chatId: row.chat_id,
      sender: row.sender,
      fromMe: row.from_me,
      timestampS: row.timestamp_s === null ? null : Number(row.timestamp_s),
      participant: row.participant,
    };
    const matches = [first, last].some(({ expected, served }) => {
      const want = {
        chatId: expected.chatId,
        sender: expected.sender,
        fromMe: expected.fromMe,
        timestampS: expected.timestampS,
        participant: expected.participant,
      };
      return (
        row.id === expected.id &&
        JSON.stringify(got) === JSON.stringify(want) &&
        canonical(row.raw) === canonical(cleanedForStorage(served))
      );
    });
    if (!matches) {
      report(
        `${waId} stored wrong: got ${JSON.stringify({ id: row.id, ...got })}, want ${JSON.stringify({
          id: last.expected.id,
          chatId: last.expected.chatId,
          sender: last.expected.sender,
          fromMe: last.expected.fromMe,
          timestampS: last.expected.timestampS,
          participant: last.expected.participant,
        })}`,
      );
    }
  }
  return problems;
}

/** What the README promises for text PostgreSQL refuses: NUL and lone surrogates become U+FFFD. */
function cleanedForStorage(value: unknown): unknown {
  if (typeof value === 'string') return value.replaceAll('\u0000', '\uFFFD').toWellFormed();
  if (Array.isArray(value)) return value.map(cleanedForStorage);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => [cleanedForStorage(k) as string, cleanedForStorage(v)]),
    );
  }
  return value;
}

/** A served value as PostgreSQL should hold it, as comparable text: cleaned, keys in order. */
export function storedForm(value: unknown): string {
  return canonical(cleanedForStorage(value));
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) =>
    item && typeof item === 'object' && !Array.isArray(item)
      ? Object.fromEntries(Object.entries(item).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : item,
  );
}

/** The simulator's own seeded generator: the same seed always makes the same mid-run changes. */
export { mulberry32 as seeded } from '../../src/sim/random.js';

/**
 * Revokes messages while a run reads (as NOWEB deletes a revoked message's row): on each message request,
 * with probability `share`, one message of the window chosen at random is deleted.
 */
export function deleteAtRandom(
  server: Simulator,
  window: { fromS: number; toS: number },
  random: () => number,
  share: number,
): void {
  server.onRequest((request) => {
    if (request.route !== 'messages' || random() < 1 - share) return;
    const { expected } = server.groundTruth('default', window);
    const victim = expected[Math.floor(random() * expected.length)];
    if (victim) server.deleteMessage('default', victim.waId);
  });
}

/**
 * Kill, resume, check: runs the built CLI on `server` into a new schema with its own checkpoint and
 * `flags`, waits for `killWhen` (given the checkpoint file and the run), SIGKILLs the run, runs the same
 * command again and expects that run to succeed and the database to keep the contract between the
 * ground truth before the first run and after the second (which must hold fewer messages: something
 * like deleteAtRandom deletes them meanwhile). Returns what `killWhen` resolved to, and whether the kill
 * really interrupted a run that the second run resumed (or the test proved nothing about resuming).
 */
export async function killResumeAndCheck<T>(options: {
  server: Simulator;
  db: Pick<TestDatabase, 'sql' | 'newSchema'>;
  window: TimeWindow;
  /** The run's flags besides the database, the schema, --json and --checkpoint (see runArgs). */
  flags: string[];
  /** The name of the checkpoint's temporary directory. */
  tmpPrefix: string;
  killWhen: (checkpoint: string, victim: ReturnType<typeof runCli>) => Promise<T>;
}): Promise<{ waited: T; resumedPartWay: boolean }> {
  const { server, db, window } = options;
  const start = server.groundTruth('default', window);
  const schema = db.newSchema();
  const checkpoint = path.join(fs.mkdtempSync(path.join(os.tmpdir(), options.tmpPrefix)), 'cp.json');
  const args = runArgs(server.url, schema, ['--checkpoint', checkpoint, ...options.flags]);
  const { run: victimRun, started } = runUntilImportStarts(args);
  await started;
  const waited = await options.killWhen(checkpoint, victimRun);
  victimRun.child.kill('SIGKILL');
  const killed = await victimRun;
  const resumed = await runCli(args);
  expect(resumed.code).toBe(0);
  const resumedPartWay = killed.signal === 'SIGKILL' && resumed.stdout.includes('Resuming the run started');
  expect(jsonSummary(resumed.stdout).summary.status).toBe('succeeded');
  const end = server.groundTruth('default', window);
  expect(end.expected.length).toBeLessThan(start.expected.length);
  expect(await contractProblems(db.sql, schema, start, end)).toEqual([]);
  return { waited, resumedPartWay };
}
