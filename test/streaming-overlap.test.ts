import type { ReservedSql } from 'postgres';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Batch, BatchOrder, BatchWriter, ChatRecord, MessageRecord } from '../src/domain.js';
import { openDatabase, type Database } from '../src/db/connect.js';
import { COPY_TAKEN_CHECK } from '../src/db/copy-in.js';
import { createBatchWriter, migrate } from '../src/db/index.js';
import { runImport, type ImportOutcome } from '../src/import/runner.js';
import type { Reporter } from '../src/report/reporter.js';
import {
  generateDataset,
  startSimulator,
  type SimChat,
  type Simulator,
  type WaMessage,
} from '../src/sim/index.js';
import { strategyNamed } from '../src/strategies/registry.js';
import { createWahaClient, type WahaClient } from '../src/waha/client.js';
import { jsonSummary, runCli } from './support/cli.js';
import { FAST_RETRY } from './support/contract.js';
import { testDatabaseUrl, useTestDatabase } from './support/db.js';
import { expectDatabaseMatches } from './support/truth.js';

/**
 * Streaming commits two batches at once: the next one is staged on a second connection while the one
 * before it is written, and commits only after it. These tests hold the first of the pair inside
 * PostgreSQL (an advisory lock its check constraint waits for) until the second is staged and waiting,
 * then let the first fail, and check that nothing of the second went in that the first's failure
 * should have kept out.
 */

const db = useTestDatabase();
const DATASET = generateDataset({
  chats: 6,
  messages: 240,
  bigChats: [120],
  seed: 41,
  nulBodies: 0,
  loneSurrogateBodies: 0,
});
const ANCHOR_S = DATASET.options.anchorS!;
const WINDOW = { fromS: ANCHOR_S - 40 * 86_400, toS: ANCHOR_S };
const LOCK_KEY = 741_205;
/** NOWEB lists a person as `N@s.whatsapp.net`; the stored chat id (and the dataset's) is `N@c.us`. */
const listed = (id: string): string => id.replace(/@c\.us$/, '@s.whatsapp.net');

let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator({ sessions: [{ name: 'default', dataset: DATASET }] });
});
afterAll(() => sim.close());

const SILENT: Reporter = new Proxy({} as Reporter, { get: () => () => undefined });

/** The writer, telling how many batches are staged and waiting for the batch before them. */
function watchedWriter(inner: BatchWriter): BatchWriter & { waiting: () => number; passed: Batch[] } {
  let waiting = 0;
  const passed: Batch[] = [];
  return {
    waiting: () => waiting,
    /** Batches whose turn to run their statements came while the batch before was not committed. */
    passed,
    get transactions() {
      return inner.transactions;
    },
    writeBatch(batch: Batch, order?: BatchOrder) {
      const statements = order?.statements;
      if (!statements) return inner.writeBatch(batch, order);
      return inner.writeBatch(batch, {
        ...order,
        statements: async () => {
          waiting++;
          try {
            await statements();
            passed.push(batch);
          } finally {
            waiting--;
          }
        },
      });
    },
  };
}

async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 3000; i++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`never happened: ${what}`);
}

function wahaClient(): WahaClient {
  return createWahaClient({
    baseUrl: sim.url,
    requestTimeoutMs: 10_000,
    maxResponseBytes: 16 << 20,
    retry: FAST_RETRY,
  });
}

/** The import under test: streaming, one chat at a time, a page (20 messages) per batch. */
function importStreaming(writer: BatchWriter): Promise<ImportOutcome> {
  return runImport(
    {
      waha: wahaClient(),
      writer,
      runLog: { start: () => Promise.resolve(1), finish: () => Promise.resolve() },
      reporter: SILENT,
      signal: new AbortController().signal,
    },
    {
      session: 'default',
      window: WINDOW,
      strategy: strategyNamed('streaming'),
      // The big chat's pages are consecutive batches.
      strategyOptions: { concurrency: 1, chunkSize: 10, batchSize: 20, flushMs: 50 },
      pageSize: 20,
      pageEnd: 'auto',
      chatPageSize: 100,
      recordedOptions: {},
    },
  );
}

/** The big chat's messages, newest first, and the rest of the truth. */
function truthSplit(): { big: SimChat; inBig: WaMessage[]; others: WaMessage[] } {
  const truth = sim.groundTruth('default', WINDOW).messages;
  const big = DATASET.chats[0]!;
  const inBig = truth.filter((m) => m.from === big.id).sort((a, b) => b.timestamp - a.timestamp);
  expect(inBig.length).toBe(120);
  return { big, inBig, others: truth.filter((m) => m.from !== big.id) };
}

/** The run failed the big chat (its record refused) and left every other chat whole. */
async function expectBigChatFailedOnly(outcome: ImportOutcome, big: SimChat, others: WaMessage[]) {
  expect(outcome.error).toBeUndefined();
  expect(outcome.summary).toMatchObject({ status: 'partial', chatsFailed: 1 });
  expect(outcome.summary.failedChats).toEqual([
    { chatId: listed(big.id), reason: 'database-refused', error: expect.stringContaining('refuse') },
  ]);
  await expectNothingOf(big, others);
}

/** Nothing of the failed chat (not its later pages, not a mark saying it is complete); the rest whole. */
async function expectNothingOf(big: SimChat, others: WaMessage[]): Promise<void> {
  const { sql, schema } = db;
  const stored = await sql`select id from ${sql(schema)}.messages where chat_id = ${big.id}`;
  expect(stored).toHaveLength(0);
  const marks = await sql`select chat_id from ${sql(schema)}.chat_sync where chat_id = ${big.id}`;
  expect(marks).toHaveLength(0);
  await expectDatabaseMatches(sql, schema, 'default', others);
}

type WatchedWriter = ReturnType<typeof watchedWriter>;

/**
 * The import, with the test holding the advisory lock the schema's refusal waits for, until `held` says
 * the batches are where the test wants them (it is told how many transactions wait for the lock); then
 * the lock is let go and the import's outcome returned.
 */
async function importWhileHeld(
  held: (writer: WatchedWriter, lockWaiters: number) => boolean,
  what: string,
): Promise<ImportOutcome> {
  const writer = watchedWriter(createBatchWriter(db.sql, db.schema));
  return whileLockHeld(
    () => importStreaming(writer),
    async (holder) => {
      const [row] = await holder<[{ n: number }]>`
        select count(*)::int as n from pg_locks
        where locktype = 'advisory' and objid = ${LOCK_KEY} and not granted`;
      return held(writer, row!.n);
    },
    what,
  );
}

/**
 * Takes the advisory lock LOCK_KEY, starts `work`, and lets the lock go once `ready` (asked over the
 * lock's own connection) says so; returns what `work` comes to.
 */
async function whileLockHeld<T>(
  work: () => Promise<T>,
  ready: (holder: ReservedSql) => Promise<boolean>,
  what: string,
): Promise<T> {
  const holder = await db.sql.reserve();
  await holder`select pg_advisory_lock(${LOCK_KEY})`;
  const working = work();
  try {
    await until(() => ready(holder), what);
  } finally {
    await holder`select pg_advisory_unlock(${LOCK_KEY})`;
    holder.release();
  }
  return working;
}

/**
 * The schema refuses the message `victimId` (a check constraint), and only once it has waited for the
 * advisory lock LOCK_KEY: the refused batch stays inside PostgreSQL while the test holds that lock.
 */
async function refuseWhenHeld(victimId: string): Promise<void> {
  const { sql, schema } = db;
  await sql.unsafe(`
    create function "${schema}".held_check(id text) returns boolean language plpgsql as $$
    begin
      if id = '${victimId}' then
        perform pg_advisory_xact_lock(${LOCK_KEY});
        return false;
      end if;
      return true;
    end $$`);
  await sql.unsafe(
    `alter table "${schema}".messages add constraint refuse_one check ("${schema}".held_check(id))`,
  );
}

it('a batch refused while the next one is staged: the next holds the refused chat and commits none of it', async () => {
  const { sql, schema } = db;
  await migrate(sql, schema);
  const { big, inBig, others } = truthSplit();
  // The newest message is on the chat's first page: the chat's later pages (and its completion) come
  // in the batches after the refused one.
  const victim = inBig[0]!;
  await refuseWhenHeld(victim.id);
  // The refused batch waits for the lock inside its INSERT, and the batch after it is staged.
  const outcome = await importWhileHeld(
    (writer, lockWaiters) => lockWaiters === 1 && writer.waiting() === 1,
    'the refused batch held while the next one waits',
  );
  await expectBigChatFailedOnly(outcome, big, others);
});

it('a batch refused at its commit, the next one past its statements: it rolls back, nothing waits for ever', async () => {
  const { sql, schema } = db;
  await migrate(sql, schema);
  const { big, inBig, others } = truthSplit();
  const victim = inBig[0]!;
  // Refused only when the transaction commits: by then the batch after it has been told to go on.
  await sql.unsafe(`
    create function "${schema}".held_refusal() returns trigger language plpgsql as $$
    begin
      if new.id = '${victim.id}' then
        perform pg_advisory_xact_lock(${LOCK_KEY});
        raise exception 'refused at commit' using errcode = 'check_violation';
      end if;
      return null;
    end $$`);
  await sql.unsafe(`
    create constraint trigger refuse_at_commit after insert or update on "${schema}".messages
    deferrable initially deferred for each row execute function "${schema}".held_refusal()`);
  // The refused batch waits at its commit; the one after it has its turn to run its statements.
  const outcome = await importWhileHeld(
    (writer, lockWaiters) =>
      lockWaiters === 1 &&
      writer.passed.some(
        (batch) =>
          batch.messages.some((m) => m.chatId === big.id) && !batch.messages.some((m) => m.id === victim.id),
      ),
    'the refused batch held at its commit while the next one goes on',
  );
  await expectBigChatFailedOnly(outcome, big, others);
});

/**
 * The refused-batch case for an import in another process (`run`, a queue worker), connected to
 * PostgreSQL as its own application_name. `work` gets the URL to give it, a scratch directory, and
 * `whileHeld`, which runs the process while the test holds the refused batch, until that batch is held
 * and the next one is either staged and waiting (idle in its transaction after its COPY and the check
 * queued behind it, which tells it from a queue's own sessions) or, were the order lost on the way to the
 * writer, committed past it.
 * Afterwards nothing of the refused chat may be stored, and every other chat whole.
 */
async function refusedInAnotherProcess(
  what: string,
  work: (process: {
    url: string;
    dir: string;
    whileHeld: <T>(run: () => Promise<T>) => Promise<T>;
  }) => Promise<void>,
): Promise<void> {
  const { sql, schema } = db;
  await migrate(sql, schema);
  const { big, inBig, others } = truthSplit();
  await refuseWhenHeld(inBig[0]!.id);
  const name = `waha-import overlap ${what} ${process.pid}`;
  const url = new URL(testDatabaseUrl());
  url.searchParams.set('application_name', name);
  const stagedOrPast = async (holder: ReservedSql): Promise<boolean> => {
    const [row] = await holder<[{ held: number; waiting: number; committed: number }]>`
      select
        (select count(*)::int from pg_locks
          where locktype = 'advisory' and objid = ${LOCK_KEY} and not granted) as held,
        (select count(*)::int from pg_stat_activity
          where application_name = ${name} and state = 'idle in transaction'
            and query = ${COPY_TAKEN_CHECK}) as waiting,
        (select count(*)::int from ${sql(schema)}.messages where chat_id = ${big.id}) as committed`;
    return row!.held === 1 && (row!.waiting === 1 || row!.committed > 0);
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-overlap-'));
  try {
    await work({
      url: url.toString(),
      dir,
      whileHeld: (run) =>
        whileLockHeld(run, stagedOrPast, 'the refused batch held, the next one staged or committed'),
    });
    await expectNothingOf(big, others);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

it('through the CLI: the next batch waits for the refused one as well (the run wires the order through)', async () => {
  await refusedInAnotherProcess('cli', async ({ url, dir, whileHeld }) => {
    const result = await whileHeld(() =>
      runCli([
        ...['run', '--waha-url', sim.url, '--database-url', url, '--schema', db.schema, '--json'],
        ...['--strategy', 'streaming', '--concurrency', '1', '--batch-size', '20', '--flush-ms', '50'],
        ...['--page-size', '20', '--since', String(WINDOW.fromS), '--until', String(WINDOW.toS)],
        ...['--checkpoint', path.join(dir, 'checkpoint.json')],
      ]),
    );
    expect(result.code).toBe(5);
    expect(jsonSummary(result.stdout).summary).toMatchObject({ status: 'partial', chatsFailed: 1 });
  });
});

it('through a queue worker: the next batch waits for the refused one as well (the worker wires the order through)', async () => {
  const { sql, schema } = db;
  try {
    await refusedInAnotherProcess('worker', async ({ url, dir, whileHeld }) => {
      const planned = await runCli(
        [
          ...['enqueue', '--waha-url', sim.url, '--database-url', testDatabaseUrl(), '--schema', schema],
          ...['--strategy', 'streaming', '--batch-size', '20', '--flush-ms', '50', '--page-size', '20'],
          ...['--since', String(WINDOW.fromS), '--until', String(WINDOW.toS), '--json'],
        ],
        { cwd: dir },
      );
      expect(planned.code).toBe(0);
      await whileHeld(() =>
        runCli(
          [
            ...['worker', '--once', '--poll', '1', '--jobs', '1', '--concurrency', '1'],
            ...['--database-url', url, '--schema', schema, '--json'],
          ],
          { cwd: dir },
        ),
      );
      const units = await sql<{ state: string; chats_failed: number }[]>`
        select state, chats_failed from ${sql(schema)}.queue_units`;
      expect(units).toEqual([{ state: 'partial', chats_failed: 1 }]);
    });
  } finally {
    await sql`drop schema if exists ${sql(`${schema}_queue`)} cascade`;
  }
});

async function expectNothingStored(): Promise<void> {
  const { sql, schema } = db;
  expect(await sql`select 1 from ${sql(schema)}.messages`).toHaveLength(0);
  expect(await sql`select 1 from ${sql(schema)}.chats`).toHaveLength(0);
  expect(await sql`select 1 from ${sql(schema)}.chat_sync`).toHaveLength(0);
}

/** One chat as the importer reads it (the chat of the truth's first message), with all its messages. */
async function oneChat(): Promise<{ chat: ChatRecord; messages: MessageRecord[] }> {
  const first = sim.groundTruth('default', WINDOW).messages[0]!;
  const client = wahaClient();
  const chats = await client.listChats('default', { pageSize: 100, engine: 'NOWEB' });
  const chat = chats.find((c) => c.chatId === first.from)!;
  const messages: MessageRecord[] = [];
  for await (const page of client.chatMessages('default', chat, {
    window: WINDOW,
    pageSize: 100,
    pageEnd: 'short',
    meId: null,
  })) {
    messages.push(...page.messages);
  }
  expect(messages.length).toBeGreaterThan(3);
  return { chat, messages };
}

it('writeBatch whose order hooks throw commits nothing of the batch and throws their error', async () => {
  const { sql, schema } = db;
  await migrate(sql, schema);
  const writer = createBatchWriter(sql, schema);
  const { chat, messages } = await oneChat();
  const refusal = new Error('the batch before failed');
  await expect(
    writer.writeBatch(
      {
        chats: [chat],
        messages,
        synced: [{ session: 'default', chatId: chat.chatId, ...WINDOW }],
      },
      { statements: () => Promise.reject(refusal) },
    ),
  ).rejects.toBe(refusal);
  await expectNothingStored();
  // Refused at the last moment, its messages and marks written: nothing either. The refusal comes before
  // `ran`: the @lid/@c.us clean-up, its last statement, waits for the commit of the batch before (it must
  // see what that one wrote), and the batch after must not run its statements before it.
  let ran = 0;
  await expect(
    writer.writeBatch(
      { chats: [chat], messages, synced: [{ session: 'default', chatId: chat.chatId, ...WINDOW }] },
      { ran: () => ran++, commit: () => Promise.reject(refusal) },
    ),
  ).rejects.toBe(refusal);
  expect(ran).toBe(0);
  await expectNothingStored();
  // Without messages, nothing waits for the commit before its statements have run: `ran` comes first.
  await expect(
    writer.writeBatch(
      { chats: [chat], messages: [], synced: [{ session: 'default', chatId: chat.chatId, ...WINDOW }] },
      { ran: () => ran++, commit: () => Promise.reject(refusal) },
    ),
  ).rejects.toBe(refusal);
  expect(ran).toBe(1);
  await expectNothingStored();
  // The same batch, its turn come at once, goes in whole.
  const result = await writer.writeBatch(
    { chats: [chat], messages },
    { statements: () => Promise.resolve(), ran: () => ran++, commit: () => Promise.resolve() },
  );
  expect(result.inserted).toBe(messages.length);
  expect(ran).toBe(2);
});

describe('a server that ends idle transactions and lock waits early', () => {
  /** The server's limits, in the connection URL as a user could set them (or their DBA, for the role). */
  const LIMIT_MS = 200;
  /** How long a batch waits its turn here: well past the limit. */
  const TURN_MS = 4 * LIMIT_MS;
  const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
  const STRICT_NAME = `waha-import strict limits ${process.pid}`;

  /** The importer's own connection, one only (so `show` sees the writer's session). */
  async function strictDatabase(): Promise<Database> {
    const url = new URL(testDatabaseUrl());
    url.searchParams.set('idle_in_transaction_session_timeout', String(LIMIT_MS));
    url.searchParams.set('lock_timeout', String(LIMIT_MS));
    // Its own name, so the test finds its backend among those of the test files running beside it.
    url.searchParams.set('application_name', STRICT_NAME);
    return openDatabase({ databaseUrl: url.toString(), maxConnections: 1 });
  }

  it('a batch waiting its turn, idle or on the row locks of the batch before, is not ended; other transactions keep the limits', async () => {
    const { sql, schema } = db;
    await migrate(sql, schema);
    const { chat, messages } = await oneChat();
    const strict = await strictDatabase();
    try {
      const writer = createBatchWriter(strict.sql, schema);
      // Idle with its rows staged, then idle with its statements run, each wait past the limit.
      const waitTwice = { statements: () => pause(TURN_MS), commit: () => pause(TURN_MS) };
      await writer.writeBatch({ chats: [chat], messages: messages.slice(0, 1) }, waitTwice);
      // Nothing to stage: idle from its BEGIN on.
      const mark = { session: 'default', chatId: chat.chatId, ...WINDOW };
      await writer.writeBatch({ chats: [], messages: [], synced: [mark] }, waitTwice);
      // Waiting for the row of its chat, which another transaction holds past the limit.
      const holder = await sql.reserve();
      try {
        await holder`begin`;
        await holder`update ${sql(schema)}.chats set name = name where id = ${chat.chatId}`;
        const writing = writer.writeBatch(
          { chats: [chat], messages: messages.slice(1) },
          { statements: () => Promise.resolve() },
        );
        await until(async () => {
          const [row] = await holder<[{ n: number }]>`
            select count(*)::int as n from pg_stat_activity
            where application_name = ${STRICT_NAME} and wait_event_type = 'Lock'`;
          return row!.n === 1;
        }, 'the batch waiting for the chat row');
        await pause(TURN_MS);
        await holder`commit`;
        expect(await writing).toMatchObject({ inserted: messages.length - 1 });
      } finally {
        holder.release();
      }
      const stored = await sql<{ id: string }[]>`select id from ${sql(schema)}.messages order by id`;
      expect(stored.map((m) => m.id)).toEqual(messages.map((m) => m.id).sort());
      expect(await sql`select 1 from ${sql(schema)}.chat_sync`).toHaveLength(1);
      // The limits were the batches' own: the session has them back, and the server still ends a
      // transaction of it that idles past them (which is what the batches above were spared).
      const [limits] = await strict.sql<[{ idle: string; lock: string }]>`
        select current_setting('idle_in_transaction_session_timeout') as idle,
               current_setting('lock_timeout') as lock`;
      expect(limits).toEqual({ idle: `${LIMIT_MS}ms`, lock: `${LIMIT_MS}ms` });
      await expect(
        strict.sql.begin(async (tx) => {
          await tx`select 1`;
          await pause(TURN_MS);
          await tx`select 2`;
        }),
      ).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
    } finally {
      await strict.close({ now: true });
    }
  });
});
