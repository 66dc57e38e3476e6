import type { Batch, BatchWriter } from '../src/domain.js';
import { createBatchWriter, migrate } from '../src/db/index.js';
import { runImport } from '../src/import/runner.js';
import type { Reporter } from '../src/report/reporter.js';
import { generateDataset, startSimulator, type Simulator } from '../src/sim/index.js';
import { strategyNamed } from '../src/strategies/registry.js';
import { createWahaClient } from '../src/waha/client.js';
import { FAST_RETRY } from './support/contract.js';
import { useTestDatabase } from './support/db.js';
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
function watchedWriter(inner: BatchWriter): BatchWriter & { waiting: () => number } {
  let waiting = 0;
  return {
    waiting: () => waiting,
    get transactions() {
      return inner.transactions;
    },
    writeBatch(batch: Batch, ready?: () => Promise<void>) {
      if (!ready) return inner.writeBatch(batch);
      return inner.writeBatch(batch, async () => {
        waiting++;
        try {
          await ready();
        } finally {
          waiting--;
        }
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

it('a batch refused while the next one is staged: the next holds the refused chat and commits none of it', async () => {
  const { sql, schema } = db;
  await migrate(sql, schema);
  const truth = sim.groundTruth('default', WINDOW).messages;
  const big = DATASET.chats[0]!;
  const inBig = truth.filter((m) => m.from === big.id).sort((a, b) => b.timestamp - a.timestamp);
  expect(inBig.length).toBe(120);
  // The newest message is on the chat's first page: the chat's later pages (and its completion) come
  // in the batches after the refused one.
  const victim = inBig[0]!;
  await sql.unsafe(`
    create function "${schema}".held_check(id text) returns boolean language plpgsql as $$
    begin
      if id = '${victim.id}' then
        perform pg_advisory_xact_lock(${LOCK_KEY});
        return false;
      end if;
      return true;
    end $$`);
  await sql.unsafe(
    `alter table "${schema}".messages add constraint refuse_one check ("${schema}".held_check(id))`,
  );
  const holder = await sql.reserve();
  await holder`select pg_advisory_lock(${LOCK_KEY})`;

  const writer = watchedWriter(createBatchWriter(sql, schema));
  const importing = runImport(
    {
      waha: createWahaClient({
        baseUrl: sim.url,
        requestTimeoutMs: 10_000,
        maxResponseBytes: 16 << 20,
        retry: FAST_RETRY,
      }),
      writer,
      runLog: { start: () => Promise.resolve(1), finish: () => Promise.resolve() },
      reporter: SILENT,
      signal: new AbortController().signal,
    },
    {
      session: 'default',
      window: WINDOW,
      strategy: strategyNamed('streaming'),
      // One chat at a time, a page per batch: the big chat's pages are consecutive batches.
      strategyOptions: { concurrency: 1, chunkSize: 10, batchSize: 20, flushMs: 50 },
      pageSize: 20,
      pageEnd: 'auto',
      chatPageSize: 100,
      recordedOptions: {},
    },
  );
  try {
    // The refused batch waits for the lock inside its INSERT, and the batch after it is staged.
    await until(async () => {
      const [row] = await holder<[{ n: number }]>`
        select count(*)::int as n from pg_locks
        where locktype = 'advisory' and objid = ${LOCK_KEY} and not granted`;
      return row!.n === 1 && writer.waiting() === 1;
    }, 'the refused batch held while the next one waits');
  } finally {
    await holder`select pg_advisory_unlock(${LOCK_KEY})`;
    holder.release();
  }
  const outcome = await importing;
  expect(outcome.error).toBeUndefined();
  expect(outcome.summary).toMatchObject({ status: 'partial', chatsFailed: 1 });
  expect(outcome.summary.failedChats).toEqual([
    { chatId: listed(big.id), reason: 'database-refused', error: expect.stringContaining('refuse_one') },
  ]);
  // Nothing of the failed chat: not its later pages, not a mark saying it is complete.
  const stored = await sql`select id from ${sql(schema)}.messages where chat_id = ${big.id}`;
  expect(stored).toHaveLength(0);
  const marks = await sql`select chat_id from ${sql(schema)}.chat_sync where chat_id = ${big.id}`;
  expect(marks).toHaveLength(0);
  // Every other chat whole.
  await expectDatabaseMatches(
    sql,
    schema,
    'default',
    truth.filter((m) => m.from !== big.id),
  );
});

it('writeBatch with a `ready` that throws commits nothing of the batch and throws its error', async () => {
  const { sql, schema } = db;
  await migrate(sql, schema);
  const writer = createBatchWriter(sql, schema);
  const truth = sim.groundTruth('default', WINDOW).messages.slice(0, 5);
  const client = createWahaClient({
    baseUrl: sim.url,
    requestTimeoutMs: 10_000,
    maxResponseBytes: 16 << 20,
    retry: FAST_RETRY,
  });
  const chats = await client.listChats('default', { pageSize: 100, engine: 'NOWEB' });
  const chat = chats.find((c) => c.chatId === truth[0]!.from)!;
  const messages = [];
  for await (const page of client.chatMessages('default', chat, {
    window: WINDOW,
    pageSize: 100,
    pageEnd: 'short',
    meId: null,
  })) {
    messages.push(...page.messages);
  }
  expect(messages.length).toBeGreaterThan(0);
  const refusal = new Error('the batch before failed');
  await expect(
    writer.writeBatch(
      {
        chats: [chat],
        messages,
        synced: [{ session: 'default', chatId: chat.chatId, ...WINDOW }],
      },
      () => Promise.reject(refusal),
    ),
  ).rejects.toBe(refusal);
  expect(await sql`select 1 from ${sql(schema)}.messages`).toHaveLength(0);
  expect(await sql`select 1 from ${sql(schema)}.chats`).toHaveLength(0);
  expect(await sql`select 1 from ${sql(schema)}.chat_sync`).toHaveLength(0);
  // The same batch, ready at once, goes in whole.
  const result = await writer.writeBatch({ chats: [chat], messages }, () => Promise.resolve());
  expect(result.inserted).toBe(messages.length);
});
