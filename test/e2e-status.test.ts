import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startSimulator, type Simulator } from '../src/sim/index.js';
import { LATEST_SCHEMA_VERSION } from '../src/db/index.js';
import { testDatabaseUrl, useTestDatabase } from './support/db.js';
import { runArgs, runCli } from './support/cli.js';

const db = useTestDatabase();
let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator({
    sessions: [{ name: 'default', datasetOptions: { chats: 12, messages: 150, seed: 8 } }],
  });
});
afterAll(() => sim.close());

function status(cwd: string, extra: string[] = []) {
  return runCli(['status', '--database-url', testDatabaseUrl(), '--schema', db.schema, ...extra], { cwd });
}

it('shows the last runs and what the checkpoint says, as text and as JSON; a failed last run exits 1', async () => {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-status-'));
  const empty = await status(cwd);
  expect(empty.code).toBe(0);
  expect(empty.stdout).toContain('none recorded yet');

  expect((await runCli(runArgs(sim.url, db.schema), { cwd })).code).toBe(0);
  const afterSuccess = await status(cwd, ['--json']);
  expect(afterSuccess.code).toBe(0);
  const report = JSON.parse(afterSuccess.stdout) as {
    runs: Array<Record<string, unknown>>;
    checkpoint: { status: string; completedChats: string[] };
  };
  expect(report.runs).toHaveLength(1);
  expect(report.runs[0]).toMatchObject({
    status: 'succeeded',
    strategy: 'streaming',
    inserted: 150,
    chats: 12,
  });
  expect(report.checkpoint).toMatchObject({ status: 'complete' });
  expect(report.checkpoint.completedChats).toHaveLength(12);

  // Every message request fails and retries are off: the run is recorded as failed.
  sim.failNext(1000, { status: 500, route: 'messages' });
  const failed = await runCli(runArgs(sim.url, db.schema, ['--max-retries', '0']), { cwd });
  expect(failed.code).toBe(3);
  const afterFailure = await status(cwd);
  expect(afterFailure.code).toBe(1);
  expect(afterFailure.stdout).toMatch(/#2 \S+ default failed +streaming;/);
  expect(afterFailure.stdout).toMatch(
    /error: GET \/api\/default\/chats\/[^/%]+@[a-z.]+\/messages failed once; last: HTTP 500/,
  );
  expect(afterFailure.stdout).toMatch(/#1 \S+ default succeeded +streaming; 150 fetched, 150 inserted/);
});

it('migrate and status read the same .importrc as run, and still refuse unknown keys', async () => {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-rc-'));
  fs.writeFileSync(
    path.join(cwd, '.importrc'),
    JSON.stringify({ schema: db.schema, days: 7, strategy: 'chunked' }),
  );
  const migrated = await runCli(['migrate', '--database-url', testDatabaseUrl()], { cwd });
  expect(migrated.code).toBe(0);
  expect(migrated.stderr).toContain(`Schema "${db.schema}" migrated to version ${LATEST_SCHEMA_VERSION}`);
  expect((await runCli(['status', '--database-url', testDatabaseUrl()], { cwd })).stdout).toContain(
    `Runs in schema "${db.schema}"`,
  );

  fs.writeFileSync(path.join(cwd, '.importrc'), JSON.stringify({ schema: db.schema, dayz: 7 }));
  const refused = await runCli(['migrate', '--database-url', testDatabaseUrl()], { cwd });
  expect(refused.code).toBe(2);
  expect(refused.stderr).toContain('.importrc has an unknown key "dayz"');
});
