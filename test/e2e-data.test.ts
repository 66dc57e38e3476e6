import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateDataset, startSimulator, type Simulator } from '../src/sim/index.js';
import { psqlConnection } from '../src/cli/data.js';
import { runArgs, runCli } from './support/cli.js';
import { testDatabaseUrl, useTestDatabase } from './support/db.js';

/** A user looking at what was imported: `sql` (read-only) and `export` (CSV, JSON lines). */

const db = useTestDatabase();
const DATASET = generateDataset({ chats: 8, messages: 120, seed: 17 });
const ANCHOR_S = DATASET.options.anchorS!;
let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator({ sessions: [{ name: 'default', dataset: DATASET }] });
});
afterAll(() => sim.close());

const connection = (schema: string): string[] => ['--database-url', testDatabaseUrl(), '--schema', schema];

async function imported(): Promise<string> {
  const schema = db.schema;
  const run = await runCli(runArgs(sim.url, schema, ['--since', String(ANCHOR_S - 40 * 86_400)]));
  expect(run.code).toBe(0);
  return schema;
}

it('sql: a read-only query against the imported tables, as a table, CSV or JSON lines', async () => {
  const schema = await imported();
  const table = await runCli(['sql', ...connection(schema), 'select count(*)::int as n from messages']);
  expect(table.code).toBe(0);
  expect(table.stdout).toBe('n\n---\n120\n(1 row)\n');

  const csv = await runCli([
    'sql',
    ...connection(schema),
    '--format',
    'csv',
    'select chat_id, count(*)::int as n from messages group by 1 order by 1',
  ]);
  expect(csv.code).toBe(0);
  const lines = csv.stdout.trim().split('\n');
  expect(lines[0]).toBe('chat_id,n');
  expect(lines.slice(1).reduce((sum, line) => sum + Number(line.split(',')[1]), 0)).toBe(120);

  const jsonl = await runCli([
    'sql',
    ...connection(schema),
    '--format',
    'jsonl',
    'select id, body from messages',
  ]);
  expect(
    jsonl.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string }),
  ).toHaveLength(120);

  const write = await runCli(['sql', ...connection(schema), 'delete from messages']);
  expect(write.code).toBe(1);
  expect(write.stderr).toContain('read-only transaction (25006)');
  const [{ n }] = await db.sql<[{ n: number }]>`select count(*)::int as n from ${db.sql(schema)}.messages`;
  expect(n).toBe(120);
});

it('export: every message once as CSV; JSON lines of one chat with its raw message; a bad window is a usage error', async () => {
  const schema = await imported();
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-export-')), 'all.csv');
  const all = await runCli(['export', ...connection(schema), '--out', out]);
  expect(all.code).toBe(0);
  expect(all.stderr).toContain(`120 messages written to ${out}`);
  const csv = fs.readFileSync(out, 'utf8');
  expect(csv.startsWith('session,chat_id,id,wa_id,sent_at,timestamp_s,from_me,sender,')).toBe(true);
  // Bodies with commas, quotes and line breaks are quoted, so each message id appears once.
  const [{ ids }] = await db.sql<
    [{ ids: string[] }]
  >`select array_agg(id) as ids from ${db.sql(schema)}.messages`;
  for (const id of ids) expect(csv.split(`,${id},`).length).toBe(2);

  const [{ chat, count }] = await db.sql<[{ chat: string; count: number }]>`
    select chat_id as chat, count(*)::int as count from ${db.sql(schema)}.messages
    group by 1 order by 2 desc limit 1`;
  const one = await runCli(['export', ...connection(schema), '--format', 'jsonl', '--chat', chat]);
  expect(one.code).toBe(0);
  const rows = one.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { chat_id: string; timestamp_s: number; raw: { id: string }; id: string });
  expect(rows).toHaveLength(count);
  expect(rows.every((r) => r.chat_id === chat && r.raw.id === r.id)).toBe(true);
  expect(rows.map((r) => r.timestamp_s)).toEqual([...rows.map((r) => r.timestamp_s)].sort((a, b) => a - b));

  const bad = await runCli([
    'export',
    ...connection(schema),
    '--since',
    '2026-10-02',
    '--until',
    '2026-10-01',
  ]);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toContain('--since is later than --until');
});

describe('psql', () => {
  it("opens the system's psql on the imported tables, passing its arguments and exit code on", async () => {
    const schema = await imported();
    const count = await runCli([
      'psql',
      ...connection(schema),
      '--',
      '-At',
      '-c',
      'select count(*) from messages',
    ]);
    expect([count.code, count.stdout, count.stderr]).toEqual([0, '120\n', '']);
    const bad = await runCli(['psql', ...connection(schema), '--', '-c', 'select nope from messages']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('column "nope" does not exist');
  });

  it('starts the embedded PostgreSQL for psql when no database is given, and stops it after', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-psql-'));
    fs.chmodSync(dir, 0o755); // as root, the embedded server runs as the postgres user
    const dataDir = path.join(dir, 'postgres');
    const result = await runCli(['psql', '--data-dir', dataDir, '--', '-At', '-c', 'show search_path']);
    expect([result.code, result.stdout]).toEqual([0, 'waha,public\n']);
    expect(fs.existsSync(path.join(dataDir, 'PG_VERSION'))).toBe(true);
    expect(fs.existsSync(path.join(dataDir, 'postmaster.pid'))).toBe(false);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('says psql is not installed, and what to do, before starting anything', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-psql-'));
    const dataDir = path.join(dir, 'postgres');
    const result = await runCli(['psql', '--data-dir', dataDir], { env: { PATH: dir } });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('psql is not installed (no psql on PATH)');
    expect(result.stderr).toContain('apt-get install postgresql-client');
    expect(result.stderr).toContain('waha-import sql');
    expect(fs.existsSync(dataDir)).toBe(false);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('hands psql the URL without its password, the password in PGPASSWORD, and the schema on the search path', () => {
    const own = psqlConnection('postgres://me:p%40ss%3Aw@db.example:6432/waha?sslmode=require', 'imports', {
      PGOPTIONS: '-c work_mem=64MB',
    });
    expect(own.dbname).toBe('postgres://me@db.example:6432/waha?sslmode=require');
    expect(own.env.PGPASSWORD).toBe('p@ss:w');
    expect(own.env.PGOPTIONS).toBe('-c work_mem=64MB -c search_path=imports,public');
    const multiHost = 'postgres://me@db1:5432,db2:5432/waha';
    expect(psqlConnection(multiHost, 'waha', {})).toEqual({
      dbname: multiHost,
      env: { PGOPTIONS: '-c search_path=waha,public' },
    });
  });
});
