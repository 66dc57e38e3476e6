import postgres from 'postgres';
import type { MessageRecord, ChatRecord } from '../src/domain.js';
import { DatabaseError, UsageError } from '../src/errors.js';
import {
  createBatchWriter,
  createRunLog,
  databaseChecksum,
  databaseIdentity,
  loadCheckpointProgress,
  formKey,
  loadSyncMarks,
  migrate,
  openDatabase,
  validateSchemaName,
} from '../src/db/index.js';
import { CopyEndedError } from '../src/db/copy-in.js';
import { createFailedChatStore } from '../src/db/failed-chats.js';
import { runOtherIdForms, STAGE_TABLE_DDL } from '../src/db/writer.js';
import { useTestDatabase, testDatabaseUrl } from './support/db.js';

const db = useTestDatabase();

function message(n: number, overrides: Partial<MessageRecord> = {}): MessageRecord {
  const chatId = `55119${String(n % 7).padStart(8, '0')}@c.us`;
  const waId = `3EB0${n.toString(16).padStart(16, '0').toUpperCase()}`;
  const id = `false_${chatId}_${waId}`;
  const body = `message number ${n}`;
  return {
    session: 'default',
    id,
    chatId,
    waId,
    fromMe: false,
    sender: chatId,
    recipient: null,
    participant: null,
    body,
    type: 'text',
    hasMedia: false,
    ack: 2,
    timestampS: 1_727_745_026 + n,
    replyToId: null,
    raw: {
      id,
      timestamp: 1_727_745_026 + n,
      from: chatId,
      fromMe: false,
      body,
      ack: 2,
      _data: { key: { id: waId } },
    },
    ...overrides,
  };
}

function chat(n: number, overrides: Partial<ChatRecord> = {}): ChatRecord {
  const id = `55119${String(n).padStart(8, '0')}@c.us`;
  return {
    session: 'default',
    id,
    chatId: id,
    name: `Person ${n}`,
    kind: 'person',
    lastActivityAt: new Date(1_727_745_026_000 + n * 1000),
    raw: { id, name: `Person ${n}`, conversationTimestamp: 1_727_745_026 + n },
    ...overrides,
  };
}

function range(count: number, from = 0): number[] {
  return Array.from({ length: count }, (_, i) => from + i);
}

async function countRows(table: 'messages' | 'chats', schema = db.schema): Promise<number> {
  const [row] = await db.sql<
    Array<{ count: number }>
  >`select count(*)::int as count from ${db.sql(schema)}.${db.sql(table)}`;
  return row!.count;
}

async function storedMessage(id: string): Promise<Record<string, unknown>> {
  const [row] =
    await db.sql`select *, jsonb_typeof(raw) as raw_type from ${db.sql(db.schema)}.messages where id = ${id}`;
  if (!row) throw new Error(`message ${id} is not stored`);
  return row;
}

/** A pool of its own, as another process would have, named so its backends can be watched. */
function otherProcess(name: string): postgres.Sql {
  return postgres(testDatabaseUrl(), { max: 2, onnotice: () => {}, connection: { application_name: name } });
}

/** What each backend named in `names` waits for, once all of them wait on a lock (polled). */
async function allWaitingOnLocks(names: string[]): Promise<Map<string, string>> {
  for (;;) {
    const rows = await db.sql<Array<{ name: string; event: string }>>`
      select application_name as name, wait_event as event from pg_stat_activity
      where application_name in ${db.sql(names)} and wait_event_type = 'Lock'`;
    const waiting = new Map(rows.map((r) => [r.name, r.event]));
    if (waiting.size === names.length) return waiting;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Makes every commit that wrote into `schema`'s messages wait until `open()`: a deferred trigger takes,
 * at commit, a shared advisory lock that `gate` holds alone until then.
 */
async function holdCommits(schema: string): Promise<{ open: () => Promise<void>; end: () => Promise<void> }> {
  const gateKey = Math.floor(Math.random() * 2 ** 31);
  await db.sql.unsafe(`
    create function "${schema}".hold_commit() returns trigger language plpgsql as $$
      begin perform pg_advisory_xact_lock_shared(${gateKey}); return null; end $$;
    create constraint trigger hold_commit after insert or update or delete on "${schema}".messages
      deferrable initially deferred for each row execute function "${schema}".hold_commit();`);
  const gate = postgres(testDatabaseUrl(), { max: 1, onnotice: () => {} });
  await gate`select pg_advisory_lock(${gateKey})`;
  return {
    open: async () => {
      await gate`select pg_advisory_unlock(${gateKey})`;
    },
    end: () => gate.end(),
  };
}

describe('validateSchemaName', () => {
  test.each(['waha', '_x', 'a1_b2', 'a'.repeat(63)])('accepts %s', (name) => {
    expect(validateSchemaName(name)).toBe(name);
  });

  test.each(['', 'Waha', '1abc', 'a-b', 'a b', 'a'.repeat(64), 'waha"; drop table x; --', 'pg_waha'])(
    'rejects %j with a UsageError naming --schema',
    (name) => {
      expect(() => validateSchemaName(name)).toThrow(UsageError);
      expect(() => validateSchemaName(name)).toThrow(/--schema/);
    },
  );

  test('every entry point refuses an invalid schema before touching the database', async () => {
    await expect(migrate(db.sql, 'Bad-Name')).rejects.toThrow(UsageError);
    expect(() => createBatchWriter(db.sql, 'Bad-Name')).toThrow(UsageError);
    expect(() => createRunLog(db.sql, 'Bad-Name')).toThrow(UsageError);
  });
});

describe('migrate', () => {
  test('creates the schema and its tables once, then has nothing left to do', async () => {
    expect(await migrate(db.sql, db.schema)).toEqual({ applied: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] });
    expect(await migrate(db.sql, db.schema)).toEqual({ applied: [] });

    const tables = await db.sql<Array<{ table_name: string }>>`
      select table_name from information_schema.tables where table_schema = ${db.schema} order by table_name`;
    expect(tables.map((t) => t.table_name)).toEqual([
      'chat_sync',
      'chat_sync_forms',
      'chats',
      'checkpoint_progress',
      'failed_chats',
      'import_runs',
      'instance',
      'messages',
      'queue_firings',
      'queue_plans',
      'queue_units',
      'queue_workers',
      'schema_migrations',
    ]);
    const versions = await db.sql`select version, name from ${db.sql(db.schema)}.schema_migrations`;
    expect(versions.map((v) => v.version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const indexes = await db.sql<Array<{ indexname: string }>>`
      select indexname from pg_indexes where schemaname = ${db.schema} and tablename = 'messages' order by 1`;
    expect(indexes.map((i) => i.indexname)).toEqual([
      'messages_chat_time_idx',
      'messages_lid_idx',
      'messages_pkey',
      'messages_wa_id_idx',
    ]);
  });

  test('two processes migrating at once: one applies, the other waits and finds it done', async () => {
    const results = await Promise.all([migrate(db.sql, db.schema), migrate(db.sql, db.schema)]);
    expect(results.map((r) => r.applied).sort()).toEqual([[], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]]);
  });

  test('refuses a schema newer than it knows', async () => {
    await migrate(db.sql, db.schema);
    await db.sql`insert into ${db.sql(db.schema)}.schema_migrations (version, name) values (99, 'future')`;
    await expect(migrate(db.sql, db.schema)).rejects.toThrow(/version 99, newer than this waha-import knows/);
  });
});

describe('what lets a run check a checkpoint against the database', () => {
  test('each schema gets its own instance token, kept across migrations, new when created again', async () => {
    await migrate(db.sql, db.schema);
    const first = await databaseIdentity(db.sql, db.schema);
    expect(first.instance).toMatch(/^[0-9a-f-]{36}$/);
    // The test server lets its superuser read the cluster's identifier.
    expect(first.systemIdentifier).toMatch(/^\d+$/);
    await migrate(db.sql, db.schema);
    expect(await databaseIdentity(db.sql, db.schema)).toEqual(first);
    const other = db.newSchema();
    await migrate(db.sql, other);
    const second = await databaseIdentity(db.sql, other);
    expect(second.instance).not.toBe(first.instance);
    expect(second.systemIdentifier).toBe(first.systemIdentifier);
    await db.sql`drop schema ${db.sql(db.schema)} cascade`;
    await migrate(db.sql, db.schema);
    expect((await databaseIdentity(db.sql, db.schema)).instance).not.toBe(first.instance);
  });

  test('every batch counts itself under its checkpoint, in its own transaction; a rolled-back one does not', async () => {
    await migrate(db.sql, db.schema);
    const writer = createBatchWriter(db.sql, db.schema);
    const progress = { checkpointId: 'cp-1', session: 'default' };
    expect(await loadCheckpointProgress(db.sql, db.schema, 'cp-1')).toBeUndefined();
    await writer.writeBatch({ chats: [chat(1)], messages: range(30).map((n) => message(n)), progress });
    // A batch with nothing in it still counts: the checkpoint records it as a transaction.
    await writer.writeBatch({ chats: [], messages: [], progress });
    expect(await loadCheckpointProgress(db.sql, db.schema, 'cp-1')).toEqual({
      transactions: 2,
      messages: 30,
    });
    // A time PostgreSQL cannot hold (its sent_at is out of range): the whole batch is rolled back.
    await expect(
      writer.writeBatch({ chats: [], messages: [message(40), message(41, { timestampS: 1e17 })], progress }),
    ).rejects.toThrow(/out of range/);
    expect(await loadCheckpointProgress(db.sql, db.schema, 'cp-1')).toEqual({
      transactions: 2,
      messages: 30,
    });
    expect(await loadCheckpointProgress(db.sql, db.schema, 'cp-2')).toBeUndefined();
  });

  test('a checkpoint counted before migration 7 keeps its count, and batches after it add to it', async () => {
    await migrate(db.sql, db.schema);
    // The table as version 6 left it, one row per checkpoint.
    await db.sql.unsafe(`
      alter table "${db.schema}".checkpoint_progress drop constraint checkpoint_progress_pkey;
      alter table "${db.schema}".checkpoint_progress drop column slot;
      alter table "${db.schema}".checkpoint_progress add primary key (checkpoint_id);
      delete from "${db.schema}".schema_migrations where version = 7;
      insert into "${db.schema}".checkpoint_progress (checkpoint_id, session, transactions, messages)
        values ('cp-old', 'default', 41, 4100);`);
    expect(await migrate(db.sql, db.schema)).toEqual({ applied: [7] });
    expect(await loadCheckpointProgress(db.sql, db.schema, 'cp-old')).toEqual({
      transactions: 41,
      messages: 4100,
    });
    const progress = { checkpointId: 'cp-old', session: 'default' };
    await createBatchWriter(db.sql, db.schema).writeBatch({ chats: [], messages: [message(1)], progress });
    expect(await loadCheckpointProgress(db.sql, db.schema, 'cp-old')).toEqual({
      transactions: 42,
      messages: 4101,
    });
  });

  test('migration 8 cuts every chat_sync span at the moment it was written: an --until still to come claimed more', async () => {
    await migrate(db.sql, db.schema);
    await db.sql`delete from ${db.sql(db.schema)}.schema_migrations where version = 8`;
    const writtenS = Math.floor(Date.now() / 1000) - 86_400;
    const farS = Date.parse('2030-01-01T00:00:00Z') / 1000;
    // As runs before it wrote them: `--since ... --until 2030-01-01` a day ago (read up to a day ago),
    // `--days 30 --until 2030-01-01` (a window wholly to come: nothing read), and an honest span.
    await db.sql`
      insert into ${db.sql(db.schema)}.chat_sync (session, chat_id, synced_from_s, synced_to_s, updated_at)
      values ('default', 'beyond', ${writtenS - 40 * 86_400}, ${farS}, to_timestamp(${writtenS})),
             ('default', 'nothing-read', ${farS - 30 * 86_400}, ${farS}, to_timestamp(${writtenS})),
             ('default', 'honest', ${writtenS - 40 * 86_400}, ${writtenS - 5}, to_timestamp(${writtenS}))`;
    expect(await migrate(db.sql, db.schema)).toEqual({ applied: [8] });
    const marks = await loadSyncMarks(db.sql, db.schema, 'default');
    expect(Object.fromEntries(marks)).toEqual({
      beyond: { fromS: writtenS - 40 * 86_400, toS: writtenS },
      honest: { fromS: writtenS - 40 * 86_400, toS: writtenS - 5 },
    });
  });

  test('a failed chat keeps the window it failed in; only a completion covering it clears the row', async () => {
    await migrate(db.sql, db.schema);
    const failures = createFailedChatStore(db.sql, db.schema);
    const writer = createBatchWriter(db.sql, db.schema);
    const id = chat(1).id;
    const failure = { session: 'default', chatId: id, reason: 'waha-failing' as const, error: 'x' };
    await failures.record({ ...failure, window: { fromS: 1_000, toS: 5_000 } }, null);
    // Failing again in another window owes both: the union.
    await failures.record({ ...failure, window: { fromS: 3_000, toS: 9_000 } }, null);
    expect((await failures.list('default')).map((f) => [f.chatId, f.window, f.attempts])).toEqual([
      [id, { fromS: 1_000, toS: 9_000 }, 2],
    ]);
    const complete = (window: { fromS: number; toS: number }) =>
      writer.writeBatch({
        chats: [chat(1)],
        messages: [],
        completedListed: [{ session: 'default', chatId: id, window }],
      });
    // Completed over a shorter window (a nightly run of fewer days): the row stays, with its window.
    await complete({ fromS: 2_000, toS: 9_500 });
    expect(await failures.list('default')).toHaveLength(1);
    await complete({ fromS: 1_000, toS: 8_000 });
    expect(await failures.list('default')).toHaveLength(1);
    await complete({ fromS: 500, toS: 9_500 });
    expect(await failures.list('default')).toEqual([]);
  });

  test('migration 10 gives the failed chats of before the window of the run they failed in, where known', async () => {
    await migrate(db.sql, db.schema);
    await db.sql`alter table ${db.sql(db.schema)}.failed_chats drop column window_from_s, drop column window_to_s`;
    await db.sql`delete from ${db.sql(db.schema)}.schema_migrations where version = 10`;
    const [run] = await db.sql<[{ id: string }]>`
      insert into ${db.sql(db.schema)}.import_runs (session, strategy, window_from, window_to)
      values ('default', 'streaming', to_timestamp(1000), to_timestamp(5000)) returning id`;
    await db.sql`
      insert into ${db.sql(db.schema)}.failed_chats (session, chat_id, run_id, reason, error)
      values ('default', 'known', ${run.id}, 'waha-failing', 'x'), ('default', 'unknown', null, 'waha-failing', 'x')`;
    expect(await migrate(db.sql, db.schema)).toEqual({ applied: [10] });
    const rows = await createFailedChatStore(db.sql, db.schema).list('default');
    expect(Object.fromEntries(rows.map((f) => [f.chatId, f.window]))).toEqual({
      known: { fromS: 1000, toS: 5000 },
      unknown: null,
    });
  });

  test('batches of one checkpoint written at once count themselves without waiting for each other', async () => {
    await migrate(db.sql, db.schema);
    const gate = await holdCommits(db.schema);
    const names = range(3).map((n) => `progress-${n}-${process.pid}`);
    const pools = names.map(otherProcess);
    try {
      const progress = { checkpointId: 'cp-1', session: 'default' };
      const written = pools.map((pool, n) =>
        createBatchWriter(pool, db.schema).writeBatch({
          chats: [],
          messages: range(10, n * 10).map((m) => message(m)),
          progress,
        }),
      );
      // All three reach their commits together: none waits for a row another one counted into.
      expect([...(await allWaitingOnLocks(names)).values()]).toEqual(['advisory', 'advisory', 'advisory']);
      await gate.open();
      await Promise.all(written);
      expect(await loadCheckpointProgress(db.sql, db.schema, 'cp-1')).toEqual({
        transactions: 3,
        messages: 30,
      });
    } finally {
      await Promise.all([...pools.map((pool) => pool.end()), gate.end()]);
    }
  });
});

describe('batch writer', () => {
  beforeEach(async () => {
    await migrate(db.sql, db.schema);
  });

  test('counts inserted, unchanged and updated exactly across re-writes', async () => {
    const writer = createBatchWriter(db.sql, db.schema);
    const first = range(50).map((n) => message(n));

    expect(await writer.writeBatch({ chats: [chat(1)], messages: first })).toEqual({
      inserted: 50,
      updated: 0,
      unchanged: 0,
      cleaned: 0,
    });
    expect(await writer.writeBatch({ chats: [chat(1)], messages: first })).toEqual({
      inserted: 0,
      updated: 0,
      unchanged: 50,
      cleaned: 0,
    });

    const changed = first.map((m, i) =>
      i < 3
        ? { ...m, ack: 3 }
        : i < 5
          ? { ...m, body: 'edited', raw: { ...(m.raw as object), body: 'edited' } }
          : m,
    );
    const more = range(10, 50).map((n) => message(n));
    expect(await writer.writeBatch({ chats: [], messages: [...changed, ...more] })).toEqual({
      inserted: 10,
      updated: 5,
      unchanged: 45,
      cleaned: 0,
    });
    expect(writer.transactions).toBe(3);
    expect(await countRows('messages')).toBe(60);
    expect((await storedMessage(first[0]!.id)).ack).toBe(3);
    expect((await storedMessage(first[3]!.id)).body).toBe('edited');
  });

  test('an unchanged re-write leaves the row alone; a change moves updated_at but not imported_at', async () => {
    const writer = createBatchWriter(db.sql, db.schema);
    const original = message(1);
    await writer.writeBatch({ chats: [chat(1)], messages: [original] });
    const before = await storedMessage(original.id);
    const [chatBefore] = await db.sql`select updated_at, first_seen_at from ${db.sql(db.schema)}.chats`;
    const rowVersion = async (): Promise<unknown> =>
      (await db.sql`select xmin::text as xmin from ${db.sql(db.schema)}.messages`)[0]!.xmin;
    const version = await rowVersion();

    await writer.writeBatch({ chats: [chat(1)], messages: [structuredClone(original)] });
    const unchanged = await storedMessage(original.id);
    // Same row version: an idempotent re-write must not even create a new tuple.
    expect(await rowVersion()).toBe(version);
    expect(unchanged.updated_at).toEqual(before.updated_at);
    const [chatUnchanged] = await db.sql`select updated_at from ${db.sql(db.schema)}.chats`;
    expect(chatUnchanged!.updated_at).toEqual(chatBefore!.updated_at);

    await writer.writeBatch({ chats: [chat(1, { name: 'Renamed' })], messages: [{ ...original, ack: 4 }] });
    const updated = await storedMessage(original.id);
    expect(await rowVersion()).not.toBe(version);
    expect((updated.updated_at as Date).getTime()).toBeGreaterThan((before.updated_at as Date).getTime());
    expect(updated.imported_at).toEqual(before.imported_at);
    expect(updated.ack).toBe(4);
    const [chatAfter] = await db.sql`select name, updated_at, first_seen_at from ${db.sql(db.schema)}.chats`;
    expect(chatAfter!.name).toBe('Renamed');
    expect((chatAfter!.updated_at as Date).getTime()).toBeGreaterThan(
      (chatBefore!.updated_at as Date).getTime(),
    );
    expect(chatAfter!.first_seen_at).toEqual(chatBefore!.first_seen_at);
  });

  test('stores every column, with sent_at derived from timestamp_s', async () => {
    const writer = createBatchWriter(db.sql, db.schema);
    const group = message(7, {
      id: 'false_120363025246125888@g.us_3EB0C0FFEE1234567890_5511988887777@c.us',
      chatId: '120363025246125888@g.us',
      waId: '3EB0C0FFEE1234567890',
      fromMe: true,
      sender: '5511999990000@c.us',
      recipient: '120363025246125888@g.us',
      participant: '5511988887777@c.us',
      body: null,
      type: 'image',
      hasMedia: true,
      ack: null,
      timestampS: 1_727_745_026,
      replyToId: 'false_120363025246125888@g.us_3EB0AAAA',
    });
    await writer.writeBatch({ chats: [], messages: [group] });
    const row = await storedMessage(group.id);
    expect(row).toMatchObject({
      session: 'default',
      chat_id: '120363025246125888@g.us',
      wa_id: '3EB0C0FFEE1234567890',
      from_me: true,
      sender: '5511999990000@c.us',
      recipient: '120363025246125888@g.us',
      participant: '5511988887777@c.us',
      body: null,
      type: 'image',
      has_media: true,
      ack: null,
      reply_to_id: 'false_120363025246125888@g.us_3EB0AAAA',
      text_cleaned: false,
    });
    expect(Number(row.timestamp_s)).toBe(1_727_745_026);
    expect(row.sent_at).toEqual(new Date(1_727_745_026_000));
  });

  test('raw is stored as a JSON object, not as a JSON string, and round-trips', async () => {
    const writer = createBatchWriter(db.sql, db.schema);
    const original = message(1, {
      raw: { id: 'x', type: 'chat', nested: { list: [1, 'two', null, { type: 'deep' }] }, emoji: '👍🏽' },
    });
    await writer.writeBatch({ chats: [chat(1)], messages: [original] });
    const row = await storedMessage(original.id);
    expect(row.raw_type).toBe('object');
    expect(row.raw).toEqual(original.raw);
    const [byPath] = await db.sql`
      select raw #>> '{nested,list,3,type}' as deep from ${db.sql(db.schema)}.messages`;
    expect(byPath!.deep).toBe('deep');
    const [chatRaw] = await db.sql`select jsonb_typeof(raw) as type, raw from ${db.sql(db.schema)}.chats`;
    expect(chatRaw).toEqual({ type: 'object', raw: chat(1).raw });
  });

  test('NUL and lone surrogates are replaced in body and raw: the message is stored and flagged', async () => {
    const writer = createBatchWriter(db.sql, db.schema);
    const nul = message(1, { body: 'before\u0000after', raw: { body: 'before\u0000after', 'key\u0000': 1 } });
    const surrogate = message(2, {
      body: 'half an emoji \ud83d',
      raw: { body: 'x\udc00y', list: ['\ud800'] },
    });
    const emoji = message(3, { body: 'a whole emoji 👍 stays', raw: { body: 'a whole emoji 👍 stays' } });
    const result = await writer.writeBatch({ chats: [], messages: [nul, surrogate, emoji] });
    expect(result).toEqual({ inserted: 3, updated: 0, unchanged: 0, cleaned: 2 });

    const storedNul = await storedMessage(nul.id);
    expect(storedNul.body).toBe('before\uFFFDafter');
    expect(storedNul.raw).toEqual({ body: 'before\uFFFDafter', 'key\uFFFD': 1 });
    expect(storedNul.text_cleaned).toBe(true);
    const storedSurrogate = await storedMessage(surrogate.id);
    expect(storedSurrogate.body).toBe('half an emoji \uFFFD');
    expect(storedSurrogate.raw).toEqual({ body: 'x\uFFFDy', list: ['\uFFFD'] });
    expect(storedSurrogate.text_cleaned).toBe(true);
    const storedEmoji = await storedMessage(emoji.id);
    expect(storedEmoji.body).toBe('a whole emoji 👍 stays');
    expect(storedEmoji.text_cleaned).toBe(false);

    // Cleaning is deterministic, so writing the same dirty message again changes nothing.
    expect(await writer.writeBatch({ chats: [], messages: [nul, surrogate, emoji] })).toEqual({
      inserted: 0,
      updated: 0,
      unchanged: 3,
      cleaned: 2,
    });
  });

  test('raw as the bytes WAHA sent: stored as the same JSON as the value, cleaned alike, and idempotent with it', async () => {
    const writer = createBatchWriter(db.sql, db.schema);
    const values = [
      { body: 'before\u0000after', 'key\u0000': 1 },
      { body: 'x\udc00y', list: ['\ud800'], pair: '👍' },
      {
        body: 'olá 👍🏽 a whole emoji',
        escaped: '\\u0000 is text here',
        n: -1.5e-7,
        nested: { a: [null, true] },
      },
    ];
    // As WAHA writes them (JSON.stringify escapes NUL and lone surrogates), with its own spacing.
    const asSent = values.map((raw, i) =>
      message(i + 1, { raw: undefined, rawJson: Buffer.from(JSON.stringify(raw, null, 2)) }),
    );
    const asValues = values.map((raw, i) => message(i + 1, { raw }));
    expect(await writer.writeBatch({ chats: [], messages: asSent })).toEqual({
      inserted: 3,
      updated: 0,
      unchanged: 0,
      cleaned: 2,
    });
    expect((await storedMessage(asSent[0]!.id)).raw).toEqual({ body: 'before\uFFFDafter', 'key\uFFFD': 1 });
    expect((await storedMessage(asSent[1]!.id)).raw).toEqual({
      body: 'x\uFFFDy',
      list: ['\uFFFD'],
      pair: '👍',
    });
    const clean = await storedMessage(asSent[2]!.id);
    expect(clean.raw).toEqual(values[2]);
    expect(clean.text_cleaned).toBe(false);
    // The same messages as values (what an older version stored), and as bytes again: nothing changes.
    for (const batch of [asValues, asSent]) {
      expect(await writer.writeBatch({ chats: [], messages: batch })).toEqual({
        inserted: 0,
        updated: 0,
        unchanged: 3,
        cleaned: 2,
      });
    }
  });

  test("a chat's raw as the bytes WAHA sent: stored as the same JSON object as the value, cleaned alike", async () => {
    const writer = createBatchWriter(db.sql, db.schema);
    const values = [
      { id: 'a', name: 'before\u0000after', 'key\u0000': 1 },
      { id: 'b', name: 'x\udc00y', participants: [{ id: { _serialized: '\ud800' } }], pair: '👍' },
      { id: 'c', name: 'olá 👍🏽', escaped: '\\u0000 is text here', quote: 'say "hi" \\ {x}', n: -1.5e-7 },
    ];
    const asSent = values.map((raw, i) =>
      chat(i + 1, { raw: undefined, rawJson: Buffer.from(JSON.stringify(raw, null, 2)) }),
    );
    await writer.writeBatch({ chats: asSent, messages: [] });
    const stored = await db.sql<{ id: string; type: string; raw: unknown }[]>`
      select id, jsonb_typeof(raw) as type, raw from ${db.sql(db.schema)}.chats order by id`;
    expect(stored.map((row) => row.type)).toEqual(['object', 'object', 'object']);
    expect(stored.map((row) => row.raw)).toEqual([
      { id: 'a', name: 'before\uFFFDafter', 'key\uFFFD': 1 },
      { id: 'b', name: 'x\uFFFDy', participants: [{ id: { _serialized: '\uFFFD' } }], pair: '👍' },
      values[2],
    ]);
    // The same chats as values write nothing new: the stored JSON is the same.
    const before = await db.sql`select id, updated_at from ${db.sql(db.schema)}.chats order by id`;
    await writer.writeBatch({ chats: values.map((raw, i) => chat(i + 1, { raw })), messages: [] });
    expect(await db.sql`select id, updated_at from ${db.sql(db.schema)}.chats order by id`).toEqual(before);
  });

  test('duplicates inside one batch: written once, the last copy wins, counts still add up', async () => {
    const writer = createBatchWriter(db.sql, db.schema);
    const first = message(1, { ack: 1 });
    const last = { ...first, ack: 3 };
    const result = await writer.writeBatch({
      chats: [chat(1), chat(1, { name: 'Second copy' })],
      messages: [first, message(2), last],
    });
    expect(result).toEqual({ inserted: 2, updated: 0, unchanged: 1, cleaned: 0 });
    expect((await storedMessage(first.id)).ack).toBe(3);
    expect(await db.sql`select name from ${db.sql(db.schema)}.chats`).toEqual([{ name: 'Second copy' }]);
  });

  test('a batch far beyond the 65,534-parameter limit is written in one transaction', async () => {
    const messages = range(10_000).map((n) => message(n));
    // Messages go by COPY and chats as arrays: neither is bound by the protocol's 65,534 parameters.
    const writer = createBatchWriter(db.sql, db.schema, { maxRowsPerStatement: 100_000 });
    expect(await writer.writeBatch({ chats: range(20).map((n) => chat(n)), messages })).toEqual({
      inserted: 10_000,
      updated: 0,
      unchanged: 0,
      cleaned: 0,
    });
    expect(writer.transactions).toBe(1);
    expect(await countRows('messages')).toBe(10_000);
    expect(await countRows('chats')).toBe(20);

    const defaults = createBatchWriter(db.sql, db.schema);
    const again = await defaults.writeBatch({ chats: [], messages: [...messages].reverse() });
    expect(again).toEqual({ inserted: 0, updated: 0, unchanged: 10_000, cleaned: 0 });
    expect(defaults.transactions).toBe(1);
  });

  test('a failing batch leaves nothing behind, and the error propagates', async () => {
    const writer = createBatchWriter(db.sql, db.schema, { maxRowsPerStatement: 100 });
    const good = range(999).map((n) => message(n));
    // Sorted last by id, so earlier statements of the same transaction have already succeeded.
    const bad = message(5_000, { id: 'zzz-last', timestampS: Number.NaN });
    await expect(writer.writeBatch({ chats: [chat(1)], messages: [...good, bad] })).rejects.toThrow(/bigint/);
    expect(writer.transactions).toBe(0);
    expect(await countRows('messages')).toBe(0);
    expect(await countRows('chats')).toBe(0);

    // The writer (and the pool) stay usable.
    expect((await writer.writeBatch({ chats: [], messages: good })).inserted).toBe(999);
    expect(writer.transactions).toBe(1);
  });

  test('a row that cannot be stored, in the middle of a large batch: nothing written, named, the writer still usable', async () => {
    const writer = createBatchWriter(db.sql, db.schema);
    const rows = range(3_000).map((n) => message(n));
    // Built while earlier rows are already on their way to PostgreSQL.
    rows[2_000] = { ...rows[2_000]!, ack: 70_000 };
    const error = await writer.writeBatch({ chats: [chat(1)], messages: rows }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as { code?: string }).code).toBe('22003');
    expect((error as Error).message).toBe(
      `message ${rows[2_000]!.id} has ack 70000, not a smallint PostgreSQL can store`,
    );
    expect(writer.transactions).toBe(0);
    expect(await countRows('messages')).toBe(0);
    expect(await countRows('chats')).toBe(0);
    rows[2_000] = message(2_000);
    expect(await writer.writeBatch({ chats: [chat(1)], messages: rows })).toEqual({
      inserted: 3_000,
      updated: 0,
      unchanged: 0,
      cleaned: 0,
    });
  });

  test('an empty batch commits nothing and counts nothing', async () => {
    const writer = createBatchWriter(db.sql, db.schema);
    expect(await writer.writeBatch({ chats: [], messages: [] })).toEqual({
      inserted: 0,
      updated: 0,
      unchanged: 0,
      cleaned: 0,
    });
    expect(writer.transactions).toBe(0);
  });

  test('concurrent batches over the same chats and messages do not deadlock and agree', async () => {
    const writers = range(6).map(() => createBatchWriter(db.sql, db.schema, { maxRowsPerStatement: 16 }));
    const messages = range(400).map((n) => message(n));
    const chats = range(30).map((n) => chat(n));
    const results = await Promise.all(
      writers.map((writer, i) =>
        writer.writeBatch({
          chats: i % 2 ? chats : [...chats].reverse(),
          messages: i % 2 ? messages : [...messages].reverse(),
        }),
      ),
    );
    expect(results.reduce((sum, r) => sum + r.inserted, 0)).toBe(400);
    expect(results.reduce((sum, r) => sum + r.unchanged, 0)).toBe(400 * 5);
    expect(await countRows('messages')).toBe(400);
  });
});

/** Message `n` under the serialized id of `chatId` (and `participant`): one form of its ids. */
function form(n: number, chatId: string, participant?: string): MessageRecord {
  const base = message(n);
  const id = `false_${chatId}_${base.waId}${participant ? `_${participant}` : ''}`;
  return { ...base, id, chatId, participant: participant ?? null, raw: { ...(base.raw as object), id } };
}

/** Message `n` as you sent it, under the serialized id of `idChat`, stored in `chatId` (the canonical chat). */
function sent(n: number, idChat: string, chatId = idChat): MessageRecord {
  const base = message(n);
  const id = `true_${idChat}_${base.waId}`;
  return { ...base, id, chatId, fromMe: true, raw: { ...(base.raw as object), id, fromMe: true } };
}

async function storedIds(): Promise<string[]> {
  return (await db.sql<Array<{ id: string }>>`select id from ${db.sql(db.schema)}.messages order by id`).map(
    (r) => r.id,
  );
}

describe('a COPY PostgreSQL refuses', () => {
  beforeEach(async () => {
    await migrate(db.sql, db.schema);
  });

  /**
   * A writer on one connection whose staging table refuses, as a disk full would, the row whose id holds
   * BOOM (a trigger on the connection's own staging table, made before the writer's first batch).
   */
  async function refusingWriter(): Promise<{ pool: postgres.Sql; allow: () => Promise<void> }> {
    const pool = postgres(testDatabaseUrl(), { max: 1, onnotice: () => {} });
    await pool.unsafe(STAGE_TABLE_DDL);
    await pool.unsafe(`
      create function "${db.schema}".refuse_boom() returns trigger language plpgsql as $$
        begin
          if new.id like '%BOOM%' then
            raise exception 'could not extend file (simulated)' using errcode = '53100';
          end if;
          return new;
        end $$`);
    await pool.unsafe(
      `create trigger refuse_boom before insert on pg_temp.waha_import_stage for each row execute function "${db.schema}".refuse_boom()`,
    );
    return {
      pool,
      allow: async () => {
        await pool.unsafe('drop trigger refuse_boom on pg_temp.waha_import_stage');
      },
    };
  }

  test('after its last row was sent: the batch fails by name instead of waiting for ever, nothing is written', async () => {
    const { pool, allow } = await refusingWriter();
    try {
      const writer = createBatchWriter(pool, db.schema);
      const rows = range(10).map((n) => message(n));
      // The last row: everything is sent before PostgreSQL meets it (postgres.js dropped that answer).
      rows[9] = message(9, { id: `${rows[9]!.id}BOOM` });
      const error = await writer.writeBatch({ chats: [chat(1)], messages: rows }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CopyEndedError);
      expect((error as Error).message).toMatch(
        /^PostgreSQL refused the COPY of a batch of 10 messages after all of it was sent/,
      );
      expect(writer.transactions).toBe(0);
      expect(await countRows('messages')).toBe(0);
      expect(await countRows('chats')).toBe(0);
      // The connection is fine: the same batch goes in once the cause is gone.
      await allow();
      expect(await writer.writeBatch({ chats: [chat(1)], messages: rows })).toEqual({
        inserted: 10,
        updated: 0,
        unchanged: 0,
        cleaned: 0,
      });
    } finally {
      await pool.end({ timeout: 5 });
    }
  });

  test('while its rows are still being sent: the batch fails, nothing is written, the connection stays usable', async () => {
    const { pool, allow } = await refusingWriter();
    try {
      const writer = createBatchWriter(pool, db.schema);
      const long = 'x'.repeat(4_000);
      const rows = range(5_000).map((n) => message(n, { body: `${n} ${long}` }));
      rows[0] = message(0, { id: `${rows[0]!.id}BOOM` });
      const error = await writer.writeBatch({ chats: [], messages: rows }).catch((e: unknown) => e);
      // PostgreSQL's own error when it came while the stream was open; ours when after.
      if (!(error instanceof CopyEndedError)) {
        expect((error as { code?: string }).code).toBe('53100');
        expect((error as Error).message).toBe('could not extend file (simulated)');
      }
      expect(await countRows('messages')).toBe(0);
      await allow();
      expect((await writer.writeBatch({ chats: [], messages: rows })).inserted).toBe(5_000);
    } finally {
      await pool.end({ timeout: 5 });
    }
  });
});

describe('the same message under @c.us and @lid ids', () => {
  beforeEach(async () => {
    await migrate(db.sql, db.schema);
  });

  test('a chat or participant that changes form replaces its row; copies that are all @c.us stay apart', async () => {
    const writer = createBatchWriter(db.sql, db.schema);
    await writer.writeBatch({
      chats: [],
      messages: [
        form(1, '5511900000001@c.us'),
        form(2, '120363000000001@g.us', '5511900000002@c.us'),
        // One waId sent to two people (a broadcast list): two messages, both @c.us.
        form(3, '5511900000003@c.us'),
        form(3, '5511900000004@c.us'),
      ],
    });
    const result = await writer.writeBatch({
      chats: [],
      messages: [
        form(1, '99887766554433@lid'),
        form(2, '120363000000001@g.us', '11223344556677@lid'),
        form(3, '5511900000003@c.us'),
      ],
    });
    expect(result).toEqual({ inserted: 0, updated: 2, unchanged: 1, cleaned: 0 });
    expect(await storedIds()).toEqual(
      [
        form(1, '99887766554433@lid').id,
        form(2, '120363000000001@g.us', '11223344556677@lid').id,
        form(3, '5511900000003@c.us').id,
        form(3, '5511900000004@c.us').id,
      ].sort(),
    );
  });

  test('copies of one broadcast to people under @c.us and under @lid all stay; your message to a person who moved changes form', async () => {
    const writer = createBatchWriter(db.sql, db.schema);
    // Your broadcast: one copy per recipient, one waId, in each recipient's chat.
    const copies = [sent(1, '5511900000001@c.us'), sent(1, '5511900000002@c.us')];
    // Your message to person 3, under the phone number.
    const before = sent(2, '5511900000003@c.us');
    await writer.writeBatch({ chats: [], messages: [...copies, before] });
    // A later batch: the broadcast's copy to a person WAHA shows under @lid (a message of its own), and
    // your message to person 3 under an @lid WAHA maps to person 3 (stored in person 3's chat).
    const hiddenCopy = sent(1, '99887766554433@lid');
    const moved = sent(2, '11223344556677@lid', '5511900000003@c.us');
    expect(await writer.writeBatch({ chats: [], messages: [hiddenCopy, moved] })).toEqual({
      inserted: 1,
      updated: 1,
      unchanged: 0,
      cleaned: 0,
    });
    expect(await storedIds()).toEqual([...copies, hiddenCopy, moved].map((m) => m.id).sort());
    // The other way round: a copy to a person under @c.us after the stored @lid copy.
    const plainCopy = sent(1, '5511900000009@c.us');
    expect(await writer.writeBatch({ chats: [], messages: [plainCopy] })).toMatchObject({ inserted: 1 });
    // And copies of another broadcast under both forms in one batch.
    const together = [
      sent(3, '5511900000004@c.us'),
      sent(3, '99887766554400@lid'),
      sent(3, '5511900000006@c.us'),
    ];
    expect(await writer.writeBatch({ chats: [], messages: together })).toEqual({
      inserted: 3,
      updated: 0,
      unchanged: 0,
      cleaned: 0,
    });
    expect(await storedIds()).toEqual(
      [...copies, hiddenCopy, moved, plainCopy, ...together].map((m) => m.id).sort(),
    );
  });

  test('back from @lid to @c.us, in a batch that also holds new @lid and new @c.us messages', async () => {
    const writer = createBatchWriter(db.sql, db.schema);
    await writer.writeBatch({
      chats: [],
      messages: [form(1, '99887766554433@lid'), form(2, '120363000000001@g.us', '11223344556677@lid')],
    });
    const now = [
      form(1, '5511900000001@c.us'),
      form(2, '120363000000001@g.us', '5511900000002@c.us'),
      form(4, '5511900000004@c.us'),
      form(5, '44556677889900@lid'),
    ];
    expect(await writer.writeBatch({ chats: [], messages: now })).toEqual({
      inserted: 2,
      updated: 2,
      unchanged: 0,
      cleaned: 0,
    });
    // One row per message, under the id form WAHA serves now.
    expect(await storedIds()).toEqual(now.map((m) => m.id).sort());
  });

  test('both forms of one message in one batch: the one read last is kept, the other counts as a copy', async () => {
    const writer = createBatchWriter(db.sql, db.schema);
    const plain = form(1, '5511900000001@c.us');
    const hidden = form(1, '99887766554433@lid');
    // Broadcast copies (all @c.us) stay apart, also beside another form of their waId read before them.
    const copies = [
      form(2, '99887766554400@lid'),
      form(2, '5511900000002@c.us'),
      form(2, '5511900000003@c.us'),
    ];
    expect(await writer.writeBatch({ chats: [], messages: [plain, hidden, ...copies] })).toEqual({
      inserted: 3,
      updated: 0,
      unchanged: 2,
      cleaned: 0,
    });
    expect(await storedIds()).toEqual([hidden.id, copies[1]!.id, copies[2]!.id].sort());
    // And back, in the other order: the @c.us form read last replaces the stored @lid one.
    expect(await writer.writeBatch({ chats: [], messages: [hidden, plain] })).toEqual({
      inserted: 0,
      updated: 1,
      unchanged: 1,
      cleaned: 0,
    });
    expect(await storedIds()).toEqual([plain.id, copies[1]!.id, copies[2]!.id].sort());
  });

  test('the other form written by the batch before, not yet committed when this one runs (streaming)', async () => {
    const writer = createBatchWriter(db.sql, db.schema);
    const plain = form(1, '5511900000001@c.us');
    const hidden = form(1, '99887766554433@lid');
    // As streaming writes two batches on two connections: the second runs its statements once the
    // first's have run, and commits after the first has committed.
    let firstRan = (): void => undefined;
    const ran = new Promise<void>((resolve) => (firstRan = resolve));
    const first = writer.writeBatch(
      { chats: [], messages: [plain, form(2, '5511900000002@c.us')] },
      { ran: firstRan },
    );
    const second = writer.writeBatch(
      { chats: [], messages: [hidden, form(3, '5511900000003@c.us')] },
      { statements: () => ran, commit: () => first.then(() => undefined) },
    );
    expect(await first).toMatchObject({ inserted: 2 });
    expect(await second).toMatchObject({ inserted: 1, updated: 1 });
    expect(await storedIds()).toEqual(
      [hidden.id, form(2, '5511900000002@c.us').id, form(3, '5511900000003@c.us').id].sort(),
    );
  });
});

describe('the two forms of one message written by two processes at once', () => {
  beforeEach(async () => {
    await migrate(db.sql, db.schema);
  });

  const plain = form(1, '5511900000001@c.us');
  const hidden = form(1, '99887766554433@lid');

  test('both clean-ups done before either commits: still one row', async () => {
    // Every write into messages waits at its commit: so both processes' transactions reach their commits,
    // clean-ups done, before either has committed (unless one waits for the other before that).
    const gate = await holdCommits(db.schema);
    const names = [`forms-a-${process.pid}`, `forms-b-${process.pid}`];
    const [a, b] = names.map(otherProcess);
    try {
      const first = createBatchWriter(a!, db.schema).writeBatch({ chats: [], messages: [hidden] });
      const second = createBatchWriter(b!, db.schema).writeBatch({ chats: [], messages: [plain] });
      await allWaitingOnLocks(names);
      await gate.open();
      const results = await Promise.all([first, second]);
      // One of them came second, saw the other's row and replaced it.
      expect(results.map((r) => r.inserted + r.updated).sort()).toEqual([1, 1]);
      expect(results.reduce((sum, r) => sum + r.updated, 0)).toBe(1);
      expect((await storedIds()).length).toBe(1);
      expect([[hidden.id], [plain.id]]).toContainEqual(await storedIds());
    } finally {
      await Promise.all([a!.end(), b!.end(), gate.end()]);
    }
  });

  test('a deadlock between the clean-up of one and the row lock of the other is written again', async () => {
    await createBatchWriter(db.sql, db.schema).writeBatch({ chats: [], messages: [plain] });
    const names = [`forms-c-${process.pid}`, `forms-d-${process.pid}`];
    const [c, d] = names.map(otherProcess);
    const deadlocks: number[] = [];
    try {
      // The second process updates the stored @c.us row (a new ack), locking it, and then waits in Node
      // (as streaming's batch waits for the one before) before its clean-up.
      let release = (): void => undefined;
      const held = new Promise<void>((resolve) => (release = resolve));
      let updatedRow = (): void => undefined;
      const rowLocked = new Promise<void>((resolve) => (updatedRow = resolve));
      const second = createBatchWriter(d!, db.schema, {
        onDeadlock: (attempt) => deadlocks.push(attempt),
      }).writeBatch(
        { chats: [], messages: [{ ...plain, ack: 3, raw: { ...(plain.raw as object), ack: 3 } }] },
        {
          commit: () => {
            updatedRow();
            return held;
          },
        },
      );
      await rowLocked;
      // The first holds the @lid form: its clean-up takes the session's lock and waits for that row.
      const first = createBatchWriter(c!, db.schema, {
        onDeadlock: (attempt) => deadlocks.push(attempt),
      }).writeBatch({ chats: [], messages: [hidden] });
      await allWaitingOnLocks(names.slice(0, 1));
      // Now the second's clean-up waits for the first's lock: a cycle PostgreSQL breaks by ending one.
      release();
      const results = await Promise.all([first, second]);
      expect(deadlocks).toEqual([1]);
      expect(results.reduce((sum, r) => sum + r.inserted + r.updated, 0)).toBe(2);
      expect((await storedIds()).length).toBe(1);
    } finally {
      await Promise.all([c!.end(), d!.end()]);
    }
  });
});

describe("streaming's two batches holding one chat", () => {
  beforeEach(async () => {
    await migrate(db.sql, db.schema);
  });

  test('the batch after writes its messages while the batch before, holding the chat row, waits to commit', async () => {
    // Held at its commit, the first batch keeps the chat's row locked (it inserted it). The second batch
    // of the same chat must not wait for that lock before its messages: only what it does after the
    // first batch's commit anyway may.
    const gate = await holdCommits(db.schema);
    const names = [`chat-row-a-${process.pid}`, `chat-row-b-${process.pid}`];
    const [a, b] = names.map(otherProcess);
    try {
      let firstRan = (): void => undefined;
      const ran = new Promise<void>((resolve) => (firstRan = resolve));
      const first = createBatchWriter(a!, db.schema).writeBatch(
        { chats: [chat(0)], messages: [message(7), message(14)] },
        { ran: firstRan },
      );
      const second = createBatchWriter(b!, db.schema).writeBatch(
        { chats: [chat(0)], messages: [message(21), message(28)] },
        { statements: () => ran, commit: () => first.then(() => undefined) },
      );
      // The first waits at the gate; the second on the first's transaction (the chat row).
      expect(await allWaitingOnLocks(names)).toEqual(
        new Map([
          [names[0], 'advisory'],
          [names[1], 'transactionid'],
        ]),
      );
      const [held] = await db.sql<Array<{ held: boolean }>>`
        select exists (
          select 1 from pg_locks l join pg_stat_activity s using (pid)
          where s.application_name = ${names[1]!} and l.granted and l.mode = 'RowExclusiveLock'
            and l.relation = ${`"${db.schema}".messages`}::regclass
        ) as held`;
      // Its messages went in before it met the lock.
      expect(held!.held).toBe(true);
      await gate.open();
      expect(await first).toMatchObject({ inserted: 2, updated: 0 });
      expect(await second).toMatchObject({ inserted: 2, updated: 0 });
      expect(await countRows('messages')).toBe(4);
      expect(await countRows('chats')).toBe(1);
    } finally {
      await Promise.all([a!.end(), b!.end(), gate.end()]);
    }
  });
});

describe('a message too deep to clean', () => {
  test('is refused by name with the SQLSTATE of a record PostgreSQL cannot hold, and nothing is written', async () => {
    await migrate(db.sql, db.schema);
    let raw: unknown = 'bottom';
    for (let i = 0; i < 1_000_000; i++) raw = { next: raw };
    const writer = createBatchWriter(db.sql, db.schema);
    const error = await writer
      .writeBatch({ chats: [], messages: [message(1), { ...message(2), raw }] })
      .catch((e: unknown) => e);
    expect((error as { code?: string }).code).toBe('54001');
    expect((error as Error).message).toContain(`message ${message(2).id} is JSON nested too deeply to store`);
    expect(await db.sql`select 1 from ${db.sql(db.schema)}.messages`).toHaveLength(0);
  });
});

describe('a chat too deep to store', () => {
  test('as a value or as the bytes WAHA sent: refused with the SQLSTATE of a record PostgreSQL cannot hold', async () => {
    await migrate(db.sql, db.schema);
    let raw: unknown = 'bottom';
    for (let i = 0; i < 1_000_000; i++) raw = { next: raw };
    const depth = 200_000;
    const bytes = Buffer.from('{"next":'.repeat(depth) + '"bottom"' + '}'.repeat(depth));
    const writer = createBatchWriter(db.sql, db.schema);
    for (const deep of [chat(2, { raw }), chat(2, { raw: undefined, rawJson: bytes })]) {
      const error = await writer
        .writeBatch({ chats: [chat(1), deep], messages: [message(1)] })
        .catch((e: unknown) => e);
      // The runner takes this code for a refused record: the batch is split by chat and only this one fails.
      expect((error as { code?: string }).code).toBe('54001');
      expect(await db.sql`select 1 from ${db.sql(db.schema)}.chats`).toHaveLength(0);
      expect(await db.sql`select 1 from ${db.sql(db.schema)}.messages`).toHaveLength(0);
    }
    expect(await writer.writeBatch({ chats: [chat(1)], messages: [message(1)] })).toMatchObject({
      inserted: 1,
    });
  });
});

describe('the @lid/@c.us clean-up is planned with the table as it is', () => {
  test('never a prepared statement with a plan from an empty table, and with the table grown it probes an index', async () => {
    await migrate(db.sql, db.schema);
    // One connection, so the prepared statements seen below are the writer's own.
    const one = postgres(testDatabaseUrl(), { max: 1, onnotice: () => {} });
    try {
      const writer = createBatchWriter(one, db.schema);
      const lidForm = (n: number): MessageRecord => {
        const base = message(n);
        const id = `false_99887766${String(n).padStart(6, '0')}@lid_${base.waId}`;
        return { ...base, id, chatId: id.split('_')[1]!, raw: { ...(base.raw as object), id } };
      };
      // More than the five custom plans after which PostgreSQL may switch a prepared statement to a
      // generic plan, all while the table is nearly empty (the bench's recreated scratch schemas), with
      // both forms so that both directions of the clean-up run.
      for (let batch = 0; batch < 8; batch++) {
        await writer.writeBatch({ chats: [], messages: [message(batch * 2), lidForm(batch * 2 + 1)] });
      }
      const prepared = await one<Array<{ statement: string }>>`
        select statement from pg_prepared_statements where statement like '%delete from%'
          and statement not like '%pg_prepared_statements%'`;
      expect(prepared).toEqual([]);

      // The table as an import leaves it: many rows, mostly @c.us and a few @lid (NOWEB, WEBJS), or mostly
      // @lid (GOWS, where people are @lid). Each direction of the clean-up must probe an index once per
      // staged row: a hash or merge join reads every stored row of the other form, every batch (a merge
      // join sorting every stored @lid row by the regular expression was what PostgreSQL chose, left free).
      const plansFor = async (lidEvery: number, first: number) => {
        const rows = range(20_000, first).map((n) => (n % lidEvery === 0 ? lidForm(n) : message(n)));
        for (let from = 0; from < rows.length; from += 5_000) {
          await writer.writeBatch({ chats: [], messages: rows.slice(from, from + 5_000) });
        }
        return one.begin(async (tx) => {
          await tx.unsafe(STAGE_TABLE_DDL);
          // Both forms staged: a batch of the newest messages, each in the form it is stored in.
          await tx.unsafe(`
            insert into pg_temp.waha_import_stage (session, id, wa_id)
            select session, id, wa_id from "${db.schema}".messages order by id limit 2000`);
          const explained = await runOtherIdForms(
            tx,
            db.schema,
            { lidForms: true, plainForms: true },
            'explain ',
          );
          return explained.map((lines) => lines.map((line) => line['QUERY PLAN']).join('\n'));
        });
      };
      for (const [shape, plans] of [
        ['mostly @c.us', await plansFor(100, 100)],
        ['mostly @lid', await plansFor(1, 100_000)],
      ] as const) {
        expect({ shape, statements: plans.length }).toEqual({ shape, statements: 2 });
        // Staged @lid ids: the (session, wa_id) index; the others: the index of stored @lid rows only.
        const [forLid, forPlain] = plans;
        const probe = (index: string) =>
          new RegExp(
            `(Index Scan using|Bitmap Index Scan on) ${index}[^\\n]*\\n\\s*Index Cond: \\(\\(session = v\\.session\\) AND \\(wa_id = v\\.wa_id\\)\\)`,
          );
        expect({ shape, plan: forLid }).toEqual({
          shape,
          plan: expect.stringMatching(probe('messages_wa_id_idx')),
        });
        expect({ shape, plan: forPlain }).toEqual({
          shape,
          plan: expect.stringMatching(probe('messages_lid_idx')),
        });
        expect({ shape, plans: plans.join('\n') }).toEqual({
          shape,
          plans: expect.not.stringMatching(/Seq Scan on messages|Hash Join|Merge Join|Sort/),
        });
      }
      // The session's own settings are back for the rest of the transaction.
      const settings = await one.begin(async (tx) => {
        await tx.unsafe(STAGE_TABLE_DDL);
        await runOtherIdForms(tx, db.schema, { lidForms: true, plainForms: true }, '');
        return tx`select current_setting('enable_hashjoin') as hash, current_setting('enable_mergejoin') as merge`;
      });
      expect(settings).toEqual([{ hash: 'on', merge: 'on' }]);
    } finally {
      await one.end({ timeout: 5 });
    }
  });
});

describe('sync marks', () => {
  beforeEach(async () => {
    await migrate(db.sql, db.schema);
  });

  const mark = (chatId: string, fromS: number, toS: number) => ({ session: 'default', chatId, fromS, toS });

  test('widen with touching or overlapping spans; a disjoint span is not recorded', async () => {
    const writer = createBatchWriter(db.sql, db.schema);
    await writer.writeBatch({ chats: [], messages: [], synced: [mark('a@c.us', 100, 200)] });
    await writer.writeBatch({ chats: [], messages: [], synced: [mark('a@c.us', 150, 300)] });
    await writer.writeBatch({ chats: [], messages: [], synced: [mark('a@c.us', 301, 400)] });
    await writer.writeBatch({ chats: [], messages: [], synced: [mark('a@c.us', 50, 99)] });
    // Disjoint: the gap 401..499 was never fetched, so the record keeps ending at 400.
    await writer.writeBatch({ chats: [], messages: [], synced: [mark('a@c.us', 500, 600)] });
    // Two marks for one chat in one batch become one; another session is another chat.
    await writer.writeBatch({
      chats: [],
      messages: [],
      synced: [mark('b@c.us', 10, 20), mark('b@c.us', 15, 30), { ...mark('a@c.us', 0, 1), session: 'other' }],
    });
    expect(await loadSyncMarks(db.sql, db.schema, 'default')).toEqual(
      new Map([
        ['a@c.us', { fromS: 50, toS: 400 }],
        ['b@c.us', { fromS: 10, toS: 30 }],
      ]),
    );
    expect(await loadSyncMarks(db.sql, db.schema, 'other')).toEqual(
      new Map([['a@c.us', { fromS: 0, toS: 1 }]]),
    );
  });

  test("are kept per listed id as well, under the same rules, beside the stored chat's", async () => {
    const writer = createBatchWriter(db.sql, db.schema);
    const person = '5511900000001@c.us';
    const listed = (listedId: string, fromS: number, toS: number) => ({
      ...mark(person, fromS, toS),
      listedId,
    });
    await writer.writeBatch({ chats: [], messages: [], synced: [listed('111@lid', 100, 200)] });
    await writer.writeBatch({
      chats: [],
      messages: [],
      synced: [listed('111@lid', 150, 300), listed(person, 250, 300), listed(person, 200, 260)],
    });
    // Disjoint from the lid's span: not recorded for it.
    await writer.writeBatch({ chats: [], messages: [], synced: [listed('111@lid', 400, 500)] });
    const marks = await loadSyncMarks(db.sql, db.schema, 'default');
    expect(marks.get(person)).toEqual({ fromS: 100, toS: 300 });
    expect(marks.forms).toEqual(
      new Map([
        [formKey(person, '111@lid'), { fromS: 100, toS: 300 }],
        [formKey(person, person), { fromS: 200, toS: 300 }],
      ]),
    );
  });

  test("end no later than the transaction's start on the database's clock: a window planned ahead claims no more", async () => {
    const writer = createBatchWriter(db.sql, db.schema);
    const beforeS = Math.floor(Date.now() / 1000) - 1;
    const aheadS = beforeS + 3 * 3600;
    // A window ending three hours ahead (the planning machine's clock), and one wholly ahead.
    await writer.writeBatch({
      chats: [],
      messages: [],
      synced: [mark('ahead@c.us', beforeS - 86_400, aheadS), mark('nothing@c.us', aheadS - 60, aheadS)],
    });
    const afterS = Math.floor(Date.now() / 1000) + 1;
    const marks = await loadSyncMarks(db.sql, db.schema, 'default');
    expect([...marks.keys()]).toEqual(['ahead@c.us']);
    const { fromS, toS } = marks.get('ahead@c.us')!;
    expect(fromS).toBe(beforeS - 86_400);
    expect(toS).toBeGreaterThanOrEqual(beforeS);
    expect(toS).toBeLessThanOrEqual(afterS);
  });

  test('are written in the batch transaction: a batch that fails records no mark', async () => {
    const writer = createBatchWriter(db.sql, db.schema);
    await db.sql`alter table ${db.sql(db.schema)}.messages add constraint no_poison check (body <> 'poison')`;
    await expect(
      writer.writeBatch({
        chats: [],
        messages: [message(1), message(2, { body: 'poison' })],
        synced: [mark(message(1).chatId, 100, 200)],
      }),
    ).rejects.toThrow(/no_poison/);
    expect(await loadSyncMarks(db.sql, db.schema, 'default')).toEqual(new Map());
    expect(await countRows('messages')).toBe(0);
  });
});

describe('databaseChecksum', () => {
  test('equal for the same data written in different batch splits and orders; differs on one body', async () => {
    const [a, b, c] = [db.newSchema(), db.newSchema(), db.newSchema()];
    for (const schema of [a, b, c]) await migrate(db.sql, schema);
    const messages = range(300).map((n) => message(n));
    const chats = range(7).map((n) => chat(n));

    await createBatchWriter(db.sql, a).writeBatch({ chats, messages });
    const writerB = createBatchWriter(db.sql, b);
    const shuffled = [...messages].sort((x, y) => (x.waId.slice(-1) < y.waId.slice(-1) ? -1 : 1));
    for (let i = 0; i < shuffled.length; i += 7) {
      await writerB.writeBatch({
        chats: chats.slice(i % 7, (i % 7) + 1),
        messages: shuffled.slice(i, i + 7),
      });
    }
    await writerB.writeBatch({ chats, messages: messages.slice(0, 50) }); // a harmless replay
    const changed = messages.map((m, i) => (i === 123 ? { ...m, body: `${m.body}!` } : m));
    await createBatchWriter(db.sql, c).writeBatch({ chats, messages: changed });

    const sumA = await databaseChecksum(db.sql, a);
    const sumB = await databaseChecksum(db.sql, b);
    const sumC = await databaseChecksum(db.sql, c);
    expect(sumA).toEqual({ messages: 300, chats: 7, checksum: expect.stringMatching(/^[0-9a-f]{32}$/) });
    expect(sumB).toEqual(sumA);
    expect(sumC.messages).toBe(300);
    expect(sumC.checksum).not.toBe(sumA.checksum);
  });

  test('can be limited to one session, and an empty schema has a stable checksum', async () => {
    await migrate(db.sql, db.schema);
    const empty = await databaseChecksum(db.sql, db.schema);
    expect(empty.messages).toBe(0);
    const writer = createBatchWriter(db.sql, db.schema);
    await writer.writeBatch({ chats: [], messages: [message(1), message(2, { session: 'other' })] });
    const all = await databaseChecksum(db.sql, db.schema);
    const one = await databaseChecksum(db.sql, db.schema, 'default');
    expect(all.messages).toBe(2);
    expect(one.messages).toBe(1);
    expect(one.checksum).not.toBe(all.checksum);
    const none = await databaseChecksum(db.sql, db.schema, 'missing');
    expect(none).toEqual(empty);
  });
});

describe('run log', () => {
  test("closeAbandoned marks only that session's runs still shown as running", async () => {
    await migrate(db.sql, db.schema);
    const runs = createRunLog(db.sql, db.schema);
    const window = { fromS: 1_727_000_000, toS: 1_727_745_026 };
    const start = (session: string) => runs.start({ session, strategy: 'streaming', window, options: {} });
    const killed = await start('default');
    const done = await start('default');
    await runs.finish(done, {
      status: 'succeeded',
      chats: 1,
      messagesFetched: 1,
      inserted: 1,
      updated: 0,
      unchanged: 0,
      wahaRequests: 2,
      retries: 0,
      dbTransactions: 1,
      elapsedMs: 10,
    });
    const otherSession = await start('sales');
    expect(await runs.closeAbandoned('default')).toBe(1);
    const byId = new Map((await runs.recent(10)).map((run) => [run.id, run]));
    expect(byId.get(killed)).toMatchObject({
      status: 'interrupted',
      error: expect.stringContaining('killed'),
    });
    expect(byId.get(done)!.status).toBe('succeeded');
    expect(byId.get(otherSession)!.status).toBe('running');
  });

  test('records a run from start to finish, newest first', async () => {
    await migrate(db.sql, db.schema);
    const runs = createRunLog(db.sql, db.schema);
    const window = { fromS: 1_727_000_000, toS: 1_727_745_026 };
    const first = await runs.start({
      session: 'default',
      strategy: 'sequential',
      window,
      options: { pageSize: 100 },
    });
    const second = await runs.start({
      session: 'default',
      strategy: 'parallel',
      window,
      options: { concurrency: 4 },
    });
    expect(second).toBeGreaterThan(first);
    await runs.finish(first, {
      status: 'succeeded',
      chats: 3,
      messagesFetched: 120,
      inserted: 100,
      updated: 5,
      unchanged: 15,
      wahaRequests: 9,
      retries: 1,
      dbTransactions: 4,
      elapsedMs: 1234.4,
    });
    await runs.finish(second, {
      status: 'failed',
      chats: 0,
      messagesFetched: 0,
      inserted: 0,
      updated: 0,
      unchanged: 0,
      wahaRequests: 1,
      retries: 0,
      dbTransactions: 0,
      elapsedMs: 10,
      error: 'WAHA refused the API key',
    });

    const [latest, earlier] = await runs.recent(10);
    expect(latest).toMatchObject({
      id: second,
      strategy: 'parallel',
      status: 'failed',
      error: 'WAHA refused the API key',
    });
    expect(earlier).toMatchObject({
      id: first,
      session: 'default',
      strategy: 'sequential',
      status: 'succeeded',
      window,
      options: { pageSize: 100 },
      chats: 3,
      messagesFetched: 120,
      inserted: 100,
      updated: 5,
      unchanged: 15,
      wahaRequests: 9,
      retries: 1,
      dbTransactions: 4,
      elapsedMs: 1234,
    });
    expect(earlier!.finishedAt).toBeInstanceOf(Date);
    expect(earlier!.error).toBeUndefined();
    expect(await runs.recent(1)).toHaveLength(1);

    // Another session's runs, newer than both: filtered in the query, so limits count that session only.
    const other = await runs.start({ session: 'other', strategy: 'streaming', window, options: {} });
    expect((await runs.recent(1))[0]!.id).toBe(other);
    expect((await runs.recent(1, 'default')).map((run) => run.id)).toEqual([second]);
    expect((await runs.recent(10, 'default')).map((run) => run.id)).toEqual([second, first]);
    expect(await runs.recent(10, 'nobody')).toEqual([]);
  });
});

describe('openDatabase', () => {
  test('connects to a URL, answers queries, shows the URL without its password', async () => {
    const database = await openDatabase({ databaseUrl: testDatabaseUrl(), maxConnections: 2 });
    try {
      expect(database.embedded).toBe(false);
      expect(await database.sql`select 41 + 1 as answer`).toEqual([{ answer: 42 }]);
      const password = new URL(testDatabaseUrl()).password;
      if (password) expect(database.displayUrl).not.toContain(password);
      expect(database.sql.options.max).toBe(2);
    } finally {
      await database.close();
    }
  });

  test('a refused connection is a DatabaseError with a hint, and never shows the password', async () => {
    const secret = 'p4ss-w0rd-never-shown';
    const error = await openDatabase({ databaseUrl: `postgres://someone:${secret}@127.0.0.1:1/db` }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DatabaseError);
    const { message, hint } = error as DatabaseError;
    expect(message).toMatch(/connection refused/);
    expect(hint).toMatch(/--database-url/);
    expect(`${message} ${hint}`).not.toContain(secret);
  });

  test('a wrong password or database is a DatabaseError that never shows the password', async () => {
    const secret = 'wr0ng-secret-value';
    const url = new URL(testDatabaseUrl());
    url.password = secret;
    url.pathname = '/no_such_database_here';
    const error = await openDatabase({ databaseUrl: url.toString() }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatabaseError);
    const { message, hint } = error as DatabaseError;
    // Trust authentication ignores the password and reaches the missing database; password auth refuses it.
    expect(message).toMatch(/password|does not exist/);
    expect(`${message} ${hint}`).not.toContain(secret);
  });

  test('a URL that is not postgres:// is a usage error', async () => {
    await expect(openDatabase({ databaseUrl: 'mysql://root:pw@localhost/db' })).rejects.toThrow(UsageError);
  });
});
