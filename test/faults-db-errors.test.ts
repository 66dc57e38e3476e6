import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startEmbeddedPostgres } from '../src/db/embedded.js';
import { generateDataset, startSimulator, type Simulator } from '../src/sim/index.js';
import { runCli } from './support/cli.js';
import { testDatabaseUrl, useTestDatabase } from './support/db.js';
import { holdRequest, jsonError } from './support/faults.js';

/**
 * A PostgreSQL failure after connecting (a refused statement, a
 * lost connection) must reach the user as a DatabaseError saying what happened and what to do, never as
 * "unexpected error: ... this is a bug in waha-import".
 */
const db = useTestDatabase();
const DATASET = generateDataset({ chats: 6, messages: 120, seed: 33, nulBodies: 0, loneSurrogateBodies: 0 });
const WINDOW = [
  '--since',
  String(DATASET.options.anchorS! - 40 * 86_400),
  '--until',
  String(DATASET.options.anchorS!),
];
const ORDER = DATASET.chats.map((c) => c.id).sort();
let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator({ sessions: [{ name: 'default', dataset: DATASET }] });
});
afterAll(() => sim.close());

function run(url: string, schema: string, extra: string[] = []) {
  const checkpoint = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'pending-')), 'c.json');
  return runCli([
    'run',
    '--waha-url',
    sim.url,
    '--database-url',
    url,
    '--schema',
    schema,
    '--json',
    '--strategy',
    'sequential',
    '--checkpoint',
    checkpoint,
    ...WINDOW,
    ...extra,
  ]);
}

it('a statement refused mid-run is a DatabaseError naming the constraint, with a hint', async () => {
  expect((await runCli(['migrate', '--database-url', testDatabaseUrl(), '--schema', db.schema])).code).toBe(
    0,
  );
  await db.sql.unsafe(`alter table ${db.schema}.messages add constraint reject_all check (false)`);
  const failed = await run(testDatabaseUrl(), db.schema);
  expect(failed.code).toBe(1);
  const error = jsonError(failed.stdout);
  expect(error.name).toBe('DatabaseError');
  expect(error.message).toMatch(/^PostgreSQL error at .*violates check constraint "reject_all" \(23514\)$/);
  expect(error.hint).not.toBeNull();
  expect(failed.stdout + failed.stderr).not.toContain('this is a bug');
});

it('a connection lost mid-run is a DatabaseError saying so, with a hint to run again', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pending-pg-'));
  fs.chmodSync(root, 0o755);
  const server = await startEmbeddedPostgres({ dataDir: path.join(root, 'pg') });
  try {
    const hold = holdRequest(sim, (r) => r.chatId === ORDER[2]);
    const running = run(server.url, 'pending_pg');
    await hold.reached;
    await server.stop();
    hold.release();
    const failed = await running;
    expect(failed.code).toBe(1);
    const error = jsonError(failed.stdout);
    expect(error.name).toBe('DatabaseError');
    expect(error.message).toMatch(
      // The import lock's connection is checked before each write: it may be the first to notice.
      /^(The connection to .* was lost|Cannot connect to .*: connection refused|lost the import lock)/,
    );
    expect(error.hint).toMatch(/Run the same command again|Is PostgreSQL running there/);
    expect(failed.stdout + failed.stderr).not.toContain('this is a bug');
  } finally {
    await server.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
});
