import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { startEmbeddedPostgres } from '../src/db/embedded.js';
import { generateDataset, startSimulator, type Simulator, type WaMessage } from '../src/sim/index.js';
import { jsonSummary, runCli, type CliResult } from './support/cli.js';
import { testDatabaseUrl, useTestDatabase } from './support/db.js';
import { holdRequest, jsonError } from './support/faults.js';
import { expectDatabaseMatches } from './support/truth.js';

/**
 * The database side failing mid-run: PostgreSQL going away, a transaction refused by a constraint, the
 * checkpoint directory becoming unwritable. Each run fails with exit 1 and leaves nothing half-written:
 * the rows are exactly those of committed transactions (one chat per transaction here, so every chat is
 * all or nothing) and the checkpoint never claims more than the database holds. A re-run completes.
 */

const db = useTestDatabase();
// No NUL or lone-surrogate bodies: see faults-waha.test.ts.
const DATASET = generateDataset({
  chats: 8,
  messages: 300,
  bigChats: [90],
  seed: 32,
  nulBodies: 0,
  loneSurrogateBodies: 0,
});
const ANCHOR_S = DATASET.options.anchorS!;
const WINDOW = { fromS: ANCHOR_S - 40 * 86_400, toS: ANCHOR_S };
/** NOWEB lists a person as `N@s.whatsapp.net`; the stored chat id (and the dataset's) is `N@c.us`. */
const listed = (id: string): string => id.replace(/@c\.us$/, '@s.whatsapp.net');
const stored = (id: string): string => id.replace(/@s\.whatsapp\.net$/, '@c.us');
/** The order `sequential` imports chats in (stored ids): the chat list, sorted by its ids; NOWEB leaves
 *  chats without messages out. */
const CHAT_ORDER = DATASET.chats
  .filter((c) => c.messages.length > 0)
  .map((c) => c.id)
  .sort((a, b) => (listed(a) < listed(b) ? -1 : listed(a) > listed(b) ? 1 : 0));

let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator({ sessions: [{ name: 'default', dataset: DATASET }] });
});
afterAll(() => sim.close());

const TRUTH: () => WaMessage[] = () => sim.groundTruth('default', WINDOW).messages;

function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

function run(databaseUrl: string, schema: string, checkpoint: string): Promise<CliResult> {
  return runCli([
    'run',
    '--waha-url',
    sim.url,
    '--database-url',
    databaseUrl,
    '--schema',
    schema,
    '--json',
    '--strategy',
    'sequential',
    '--page-size',
    '20',
    '--checkpoint',
    checkpoint,
    '--since',
    String(WINDOW.fromS),
    '--until',
    String(WINDOW.toS),
  ]);
}

interface SavedCheckpoint {
  status: string;
  completedChats: string[];
  inProgress: Record<string, number>;
  transactions: number;
  messagesCommitted: number;
}

/**
 * Nothing half-written: every chat is either all in the database or not at all, and the checkpoint
 * claims no chat and no message the database does not hold. Returns the chats stored.
 */
async function expectWholeChatsOnly(
  sql: postgres.Sql,
  schema: string,
  checkpoint: SavedCheckpoint | undefined,
): Promise<string[]> {
  const rows = await sql<Array<{ chat_id: string; n: number }>>`
    select chat_id, count(*)::int as n from ${sql(schema)}.messages group by chat_id order by chat_id`;
  const truth = TRUTH();
  const expected = (chatId: string): number => truth.filter((m) => m.from === chatId).length;
  expect(rows.map((r) => [r.chat_id, r.n])).toEqual(rows.map((r) => [r.chat_id, expected(r.chat_id)]));
  const storedChats = rows.map((r) => r.chat_id);
  if (checkpoint) {
    expect(checkpoint.completedChats.map(stored).filter((id) => !storedChats.includes(id))).toEqual([]);
    const total = rows.reduce((sum, r) => sum + r.n, 0);
    expect(checkpoint.messagesCommitted).toBeLessThanOrEqual(total);
  }
  return storedChats;
}

function readCheckpoint(file: string): SavedCheckpoint | undefined {
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as SavedCheckpoint) : undefined;
}

it('a message PostgreSQL refuses fails its chat only: exit 5, the others whole, a re-run completes it', async () => {
  const migrated = await runCli(['migrate', '--database-url', testDatabaseUrl(), '--schema', db.schema]);
  expect(migrated.code).toBe(0);
  const victimChat = CHAT_ORDER[2]!;
  const victim = TRUTH().find((m) => m.from === victimChat)!;
  await db.sql.unsafe(
    `alter table ${db.schema}.messages add constraint reject_one_message check (id <> '${victim.id}')`,
  );
  const checkpoint = path.join(tempDir('waha-import-faults-db-'), 'checkpoint.json');

  const failed = await run(testDatabaseUrl(), db.schema, checkpoint);
  expect(failed.code).toBe(5);
  const { summary } = jsonSummary(failed.stdout);
  expect(summary).toMatchObject({ status: 'partial', chatsFailed: 1, chatsImported: CHAT_ORDER.length - 1 });
  expect(summary.failedChats).toEqual([
    {
      chatId: listed(victimChat),
      reason: 'database-refused',
      error: expect.stringContaining('reject_one_message'),
    },
  ]);
  const saved = readCheckpoint(checkpoint);
  expect(saved?.status).toBe('running');
  expect(saved!.completedChats.map(stored).sort()).toEqual(CHAT_ORDER.filter((c) => c !== victimChat).sort());
  expect((await expectWholeChatsOnly(db.sql, db.schema, saved)).sort()).toEqual(
    CHAT_ORDER.filter((c) => c !== victimChat).sort(),
  );
  const [runRow] = await db.sql<[{ status: string; chats_failed: number }]>`
    select status, chats_failed from ${db.sql(db.schema)}.import_runs order by id desc limit 1`;
  expect(runRow).toEqual({ status: 'partial', chats_failed: 1 });
  const failedRows = await db.sql`select chat_id, reason from ${db.sql(db.schema)}.failed_chats`;
  expect(failedRows.map((r) => ({ ...r }))).toEqual([
    { chat_id: listed(victimChat), reason: 'database-refused' },
  ]);
  const status = await runCli(['status', '--database-url', testDatabaseUrl(), '--schema', db.schema]);
  expect(status.code).toBe(5);
  expect(status.stdout).toContain(`${listed(victimChat)} database-refused`);

  await db.sql.unsafe(`alter table ${db.schema}.messages drop constraint reject_one_message`);
  const again = await run(testDatabaseUrl(), db.schema, checkpoint);
  expect(again.code).toBe(0);
  expect(again.stdout).toContain('Resuming the run started');
  expect(jsonSummary(again.stdout).summary).toMatchObject({ chatsResumed: CHAT_ORDER.length - 1 });
  await expectDatabaseMatches(db.sql, db.schema, 'default', TRUTH());
  expect(await db.sql`select 1 from ${db.sql(db.schema)}.failed_chats`).toHaveLength(0);
});

it('the checkpoint directory becomes unwritable mid-run: exit 1, the checkpoint never ahead of the database', async () => {
  const root = tempDir('waha-import-faults-db-');
  const dir = path.join(root, 'state');
  const checkpoint = path.join(dir, 'checkpoint.json');
  // Two chats are committed (and the first saved) before the third chat's first page is answered.
  const hold = holdRequest(sim, (r) => r.chatId === CHAT_ORDER[2]);
  const running = run(testDatabaseUrl(), db.schema, checkpoint);
  await hold.reached;
  expect(fs.existsSync(checkpoint)).toBe(true);
  // Root ignores permissions: the directory is moved away and a file takes its place.
  fs.renameSync(dir, `${dir}.moved`);
  fs.writeFileSync(dir, 'not a directory\n');
  hold.release();
  const failed = await running;

  expect(failed.code).toBe(1);
  const error = jsonError(failed.stdout);
  expect(error.message).toContain(`cannot write the checkpoint ${checkpoint}`);
  expect(error.hint).toContain('Make its directory writable or choose another with --checkpoint');
  const saved = readCheckpoint(path.join(`${dir}.moved`, 'checkpoint.json'));
  expect(saved?.completedChats.length).toBeGreaterThanOrEqual(1);
  await expectWholeChatsOnly(db.sql, db.schema, saved);

  fs.rmSync(dir);
  fs.renameSync(`${dir}.moved`, dir);
  const again = await run(testDatabaseUrl(), db.schema, checkpoint);
  expect(again.code).toBe(0);
  await expectDatabaseMatches(db.sql, db.schema, 'default', TRUTH());
  expect(readCheckpoint(checkpoint)?.status).toBe('complete');
});

it('PostgreSQL goes away mid-run: exit 1, committed chats kept whole; after a restart a re-run completes', async () => {
  const root = tempDir('waha-import-faults-pg-');
  // As root the server runs as the postgres user, which must be able to enter the directory.
  fs.chmodSync(root, 0o755);
  const dataDir = path.join(root, 'postgres');
  let server = await startEmbeddedPostgres({ dataDir });
  const schema = 'faults_pg';
  const checkpoint = path.join(tempDir('waha-import-faults-db-'), 'checkpoint.json');
  try {
    const hold = holdRequest(sim, (r) => r.chatId === CHAT_ORDER[3]);
    const running = run(server.url, schema, checkpoint);
    await hold.reached;
    await server.stop();
    hold.release();
    const failed = await running;
    expect(failed.code).toBe(1);
    expect(jsonSummary(failed.stdout).summary).toMatchObject({ status: 'failed', dbTransactions: 3 });
    const error = jsonError(failed.stdout);
    expect(error.message).toMatch(/ECONNREFUSED|CONNECTION_|connection/i);

    server = await startEmbeddedPostgres({ dataDir });
    const sql = postgres(server.url, { max: 1, onnotice: () => {} });
    try {
      const saved = readCheckpoint(checkpoint);
      expect(saved?.completedChats.map(stored)).toEqual(CHAT_ORDER.slice(0, 3));
      expect(await expectWholeChatsOnly(sql, schema, saved)).toEqual(CHAT_ORDER.slice(0, 3));

      const again = await run(server.url, schema, checkpoint);
      expect(again.code).toBe(0);
      expect(jsonSummary(again.stdout).summary).toMatchObject({ chatsResumed: 3 });
      await expectDatabaseMatches(sql, schema, 'default', TRUTH());
    } finally {
      await sql.end({ timeout: 5 });
    }
  } finally {
    await server.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
});
