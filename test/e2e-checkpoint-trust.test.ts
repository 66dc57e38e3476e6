import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateDataset, startSimulator, type Simulator } from '../src/sim/index.js';
import { committedAtLeast, jsonSummary, runArgs, runCli, runUntilImportStarts } from './support/cli.js';
import { testDatabaseUrl, useTestDatabase } from './support/db.js';
import { expectDatabaseMatches } from './support/truth.js';

/**
 * "The database is the truth; local files are hints." A run killed part-way leaves a checkpoint; the
 * next run may write to a database that does not hold what that checkpoint claims (the schema dropped
 * and recreated, a backup restored from before some of its commits). It must notice, say so, and import
 * the whole window again, ending with the database equal to what WAHA holds.
 */

const db = useTestDatabase();
const API_KEY = 'trust-key-0815';
const DATASET = generateDataset({ chats: 60, messages: 3000, bigChats: [700, 300], seed: 77 });
const ANCHOR_S = DATASET.options.anchorS!;
const WINDOW = { fromS: ANCHOR_S - 40 * 86_400, toS: ANCHOR_S };
let sim: Simulator;

beforeAll(async () => {
  sim = await startSimulator({
    apiKey: API_KEY,
    // Slow enough that a throttled checkpoint save (one per 200 ms) lands every few hundred messages: a
    // kill "at 600 messages" then leaves the database well short of the dataset's 3,000.
    latencyMs: 30,
    jitterMs: 4,
    sessions: [
      { name: 'default', dataset: DATASET },
      { name: 'sleepy', status: 'SCAN_QR_CODE', dataset: generateDataset({ chats: 2, messages: 4 }) },
    ],
  });
});
afterAll(() => sim.close());

function args(schema: string, checkpoint: string, extra: string[] = []): string[] {
  return runArgs(sim.url, schema, [
    '--checkpoint',
    checkpoint,
    '--concurrency',
    '4',
    '--batch-size',
    '200',
    '--flush-ms',
    '50',
    '--since',
    String(WINDOW.fromS),
    '--until',
    String(WINDOW.toS),
    ...extra,
  ]);
}

function tempCheckpoint(): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-trust-')), 'checkpoint.json');
}

interface SavedCheckpoint {
  status: string;
  messagesCommitted: number;
  completedChats: string[];
}

function readSaved(checkpoint: string): SavedCheckpoint | undefined {
  try {
    return JSON.parse(fs.readFileSync(checkpoint, 'utf8')) as SavedCheckpoint;
  } catch {
    return undefined; // not written yet (the first commit writes it)
  }
}

/** Starts a run and SIGKILLs it once its checkpoint counts `messages` committed (never on time). */
async function runKilledAt(
  runArgv: string[],
  checkpoint: string,
  messages: number,
): Promise<SavedCheckpoint> {
  const { run, started } = runUntilImportStarts(runArgv);
  await started;
  await committedAtLeast(checkpoint, messages, run);
  run.child.kill('SIGKILL');
  const killed = await run;
  expect(killed.signal).toBe('SIGKILL');
  const saved = readSaved(checkpoint)!;
  expect(saved.status).toBe('running');
  expect(saved.completedChats.length).toBeGreaterThan(0);
  return saved;
}

async function messageCount(schema: string): Promise<number> {
  const [{ count }] = await db.sql<
    [{ count: number }]
  >`select count(*)::int as count from ${db.sql(schema)}.messages`;
  return count;
}

const truth = () => sim.groundTruth('default', WINDOW);

it('a checkpoint whose schema was dropped and recreated is not believed: warned, the window imported whole', async () => {
  const schema = db.newSchema();
  const checkpoint = tempCheckpoint();
  const argv = [...args(schema, checkpoint), '--api-key', API_KEY];
  await runKilledAt(argv, checkpoint, 1500);

  await db.sql`drop schema ${db.sql(schema)} cascade`;
  const again = await runCli(argv);
  expect(again.code).toBe(0);
  expect(again.stdout).not.toContain('Resuming the run started');
  expect(again.stdout).toMatch(
    /Not resuming the run started [^\n]*: the schema [^\n]* this run writes to is not the one its commits went to/,
  );
  expect(jsonSummary(again.stdout).summary).toMatchObject({ chatsResumed: 0, messagesFetched: 3000 });
  await expectDatabaseMatches(db.sql, schema, 'default', truth());
});

it('another database with the same schema name, given the same checkpoint, is not believed', async () => {
  const schema = db.newSchema();
  const checkpoint = tempCheckpoint();
  await runKilledAt([...args(schema, checkpoint), '--api-key', API_KEY], checkpoint, 1500);
  const other = `trust_${process.pid}_${Math.floor(Math.random() * 1e9)}`;
  await db.sql`create database ${db.sql(other)}`;
  const otherUrl = new URL(testDatabaseUrl());
  otherUrl.pathname = `/${other}`;
  try {
    const argv = args(schema, checkpoint).map((arg) => (arg === testDatabaseUrl() ? otherUrl.href : arg));
    const again = await runCli([...argv, '--api-key', API_KEY]);
    expect(again.code).toBe(0);
    expect(again.stdout).not.toContain('Resuming the run started');
    expect(again.stdout).toMatch(/Not resuming the run started/);
    const sql = (await import('postgres')).default(otherUrl.href, { max: 1, onnotice: () => {} });
    try {
      await expectDatabaseMatches(sql, schema, 'default', truth());
    } finally {
      await sql.end({ timeout: 5 });
    }
  } finally {
    await db.sql`drop database if exists ${db.sql(other)} with (force)`;
  }
});

/** Copies the data of every table of `schema` into `backup` (plain tables, no constraints). */
async function backupSchema(schema: string, backup: string): Promise<string[]> {
  const tables = await db.sql<Array<{ table_name: string }>>`
    select table_name from information_schema.tables
    where table_schema = ${schema} and table_type = 'BASE TABLE' order by table_name`;
  await db.sql`create schema ${db.sql(backup)}`;
  for (const { table_name } of tables) {
    await db.sql`create table ${db.sql(backup)}.${db.sql(table_name)} as table ${db.sql(schema)}.${db.sql(table_name)}`;
  }
  return tables.map((t) => t.table_name);
}

/** Puts the backup's rows back in place of the current ones: a restore to that earlier moment. */
async function restoreSchema(schema: string, backup: string, tables: string[]): Promise<void> {
  await db.sql.begin(async (tx) => {
    for (const table of tables) {
      const columns = await tx<Array<{ column_name: string }>>`
        select column_name from information_schema.columns
        where table_schema = ${schema} and table_name = ${table} and is_generated = 'NEVER'
        order by ordinal_position`;
      const names = columns.map((c) => c.column_name);
      await tx`delete from ${tx(schema)}.${tx(table)}`;
      await tx`insert into ${tx(schema)}.${tx(table)} (${tx(names)}) overriding system value select ${tx(names)} from ${tx(backup)}.${tx(table)}`;
    }
  });
}

it('a database restored to a point before some of the checkpoint’s commits is not believed', async () => {
  const schema = db.newSchema();
  const backup = db.newSchema();
  const checkpoint = tempCheckpoint();
  const argv = [...args(schema, checkpoint), '--api-key', API_KEY];
  // Killed early; the backup is taken then. The run continues, is killed again later: the checkpoint now
  // claims more than the backup holds. Then the backup is restored.
  await runKilledAt(argv, checkpoint, 600);
  const tables = await backupSchema(schema, backup);
  const early = await messageCount(schema);
  expect(early).toBeLessThan(2500);
  // The checkpoint lags the database by up to one throttled save: killed once it claims more than the
  // backup holds, whatever that was.
  const later = await runKilledAt(argv, checkpoint, early + 200);
  expect(later.messagesCommitted).toBeGreaterThan(early);
  await restoreSchema(schema, backup, tables);
  expect(await messageCount(schema)).toBe(early);

  const again = await runCli(argv);
  expect(again.code).toBe(0);
  expect(again.stdout).not.toContain('Resuming the run started');
  expect(again.stdout).toMatch(/Not resuming the run started [^"]*: the database holds only/);
  await expectDatabaseMatches(db.sql, schema, 'default', truth());
});

it('a resumed run against the same database is still believed (and says so)', async () => {
  const schema = db.newSchema();
  const checkpoint = tempCheckpoint();
  const argv = [...args(schema, checkpoint), '--api-key', API_KEY];
  const saved = await runKilledAt(argv, checkpoint, 1500);
  const again = await runCli(argv);
  expect(again.code).toBe(0);
  expect(again.stdout).toContain('Resuming the run started');
  expect(again.stdout).not.toContain('Not resuming');
  expect(jsonSummary(again.stdout).summary.chatsResumed).toBe(saved.completedChats.length);
  await expectDatabaseMatches(db.sql, schema, 'default', truth());
});

describe('runs WAHA refuses before importing are recorded, and status shows them', () => {
  function status(schema: string, cwd: string) {
    return runCli(['status', '--database-url', testDatabaseUrl(), '--schema', schema], { cwd });
  }

  it.each([
    ['a wrong API key', ['--api-key', 'not-the-key'], /refused the API key/],
    ['an unknown session', ['--api-key', API_KEY, '--session', 'nobody'], /has no session "nobody"/],
    ['a session not WORKING', ['--api-key', API_KEY, '--session', 'sleepy'], /is SCAN_QR_CODE, not WORKING/],
  ])('%s: a failed run with the error, and status exits 1', async (_name, extra, error) => {
    const schema = db.newSchema();
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-refused-'));
    const ok = await runCli(runArgs(sim.url, schema, ['--api-key', API_KEY, '--days', '3650']), { cwd });
    expect(ok.code).toBe(0);
    const refused = await runCli(runArgs(sim.url, schema, extra), { cwd });
    expect(refused.code).toBe(3);
    const runs = await db.sql<Array<{ session: string; status: string; chats: number; error: string }>>`
      select session, status, chats, error from ${db.sql(schema)}.import_runs order by id`;
    expect(runs).toHaveLength(2);
    expect(runs[1]).toMatchObject({ status: 'failed', chats: 0 });
    expect(runs[1]!.error).toMatch(error);
    expect(runs[1]!.error).not.toContain('not-the-key');
    const shown = await status(schema, cwd);
    expect(shown.code).toBe(1);
    expect(shown.stdout).toMatch(/#2 \S+ \S+ failed /);
    expect(shown.stdout + shown.stderr).not.toContain('not-the-key');
  });

  it('WAHA unreachable: recorded too', async () => {
    const schema = db.newSchema();
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-refused-'));
    // A port nothing listens on: the simulator's, after a server is closed there.
    const gone = await startSimulator({ sessions: [{ name: 'default', datasetOptions: { chats: 1 } }] });
    const url = gone.url;
    await gone.close();
    const refused = await runCli(runArgs(url, schema, ['--max-retries', '0']), { cwd });
    expect(refused.code).toBe(3);
    const shown = await status(schema, cwd);
    expect(shown.code).toBe(1);
    expect(shown.stdout).toMatch(/#1 \S+ default failed /);
    // --all-sessions fails before it knows a session: recorded as the session "*".
    const all = await runCli(runArgs(url, schema, ['--max-retries', '0', '--all-sessions']), { cwd });
    expect(all.code).toBe(3);
    const shownAll = await status(schema, cwd);
    expect(shownAll.code).toBe(1);
    expect(shownAll.stdout).toMatch(/#2 \S+ \* failed /);
  });
});

describe('--simulate never shares a checkpoint with real runs', () => {
  it('by default it keeps its own file; given a real run’s file, it starts over with a warning', async () => {
    const schema = db.newSchema();
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-simulate-'));
    const realFile = path.join(cwd, '.waha-import', `checkpoint-default-${schema}.json`);
    const windowArgs = ['--since', String(WINDOW.fromS), '--until', String(WINDOW.toS)];
    const real = runArgs(sim.url, schema, [
      '--api-key',
      API_KEY,
      '--concurrency',
      '4',
      '--batch-size',
      '200',
      ...windowArgs,
    ]);
    const { run, started } = runUntilImportStarts(real, { cwd });
    await started;
    await committedAtLeast(realFile, 1500, run);
    run.child.kill('SIGKILL');
    expect((await run).signal).toBe('SIGKILL');
    const before = fs.readFileSync(realFile, 'utf8');
    const saved = readSaved(realFile)!;

    // The same window request, schema and session, in the same directory: another file.
    const simulateArgs = [
      'run',
      '--simulate',
      '--database-url',
      testDatabaseUrl(),
      '--schema',
      schema,
      '--json',
      ...windowArgs,
    ];
    const simulated = await runCli(simulateArgs, { cwd });
    expect(simulated.code).toBe(0);
    expect(simulated.stdout).not.toContain('Resuming the run started');
    expect(fs.readFileSync(realFile, 'utf8')).toBe(before);
    expect(fs.existsSync(path.join(cwd, '.waha-import', `checkpoint-simulate-default-${schema}.json`))).toBe(
      true,
    );

    // Named explicitly, the real run's file is not continued from the simulator.
    const explicit = await runCli([...simulateArgs, '--checkpoint', realFile], { cwd });
    expect(explicit.code).toBe(0);
    expect(explicit.stdout).not.toContain('Resuming the run started');
    expect(explicit.stdout).toMatch(/Not resuming the run started [^\n]*: it belongs to another WAHA/);
    expect(jsonSummary(explicit.stdout).summary.chatsResumed).toBe(0);
    expect(saved.completedChats.length).toBeGreaterThan(0);
  });
});
