import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startSimulator, type Simulator } from '../src/sim/index.js';
import { jsonSummary, runArgs, runCli, runUntilImportStarts } from './support/cli.js';
import { useTestDatabase } from './support/db.js';

/** One run at a time per session and schema: a lock file beside the checkpoint, and a PostgreSQL advisory lock. */

const db = useTestDatabase();
let sim: Simulator;
beforeAll(async () => {
  // Slow enough that a run is still going when the second one starts.
  sim = await startSimulator({
    latencyMs: 15,
    sessions: [{ name: 'default', datasetOptions: { chats: 60, messages: 600, seed: 4 } }],
  });
});
afterAll(() => sim.close());

/**
 * Starts a run that is sure to be still importing (holding its locks) for a few seconds: its first message
 * requests hang until its 3 s request timeout, then are retried and succeed.
 */
async function startHoldingRun(schema: string, cwd: string) {
  sim.failNext(25, { status: 'timeout', route: 'messages' });
  const first = runUntilImportStarts(runArgs(sim.url, schema, ['--request-timeout', '3']), { cwd });
  await first.started;
  return first;
}

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-lock-'));
}

async function runsRecorded(schema: string): Promise<number> {
  const [{ count }] = await db.sql<
    [{ count: number }]
  >`select count(*)::int as count from ${db.sql(schema)}.import_runs`;
  return count;
}

it('two runs sharing a checkpoint: the second exits 4 at once and writes nothing', async () => {
  const cwd = tempDir();
  const first = await startHoldingRun(db.schema, cwd);
  const second = await runCli(runArgs(sim.url, db.schema), { cwd });
  expect(second.code).toBe(4);
  // --json: the error is an event on stdout; the run never reached the import.
  expect(second.stdout).toMatch(/another run of session \\"default\\" .* is going on \(pid \d+ on /);
  expect(second.stdout).not.toContain('import-started');
  const winner = await first.run;
  expect(winner.code).toBe(0);
  expect(jsonSummary(winner.stdout).summary.inserted).toBe(600);
  expect(await runsRecorded(db.schema)).toBe(1);
  // The winner removed its lock: the next run goes ahead.
  expect((await runCli(runArgs(sim.url, db.schema), { cwd })).code).toBe(0);
});

it('two runs from different directories into one database: the advisory lock stops the second', async () => {
  const first = await startHoldingRun(db.schema, tempDir());
  const second = await runCli(runArgs(sim.url, db.schema), { cwd: tempDir() });
  expect(second.code).toBe(4);
  expect(second.stdout).toContain(
    `another waha-import run is importing session \\"default\\" into schema \\"${db.schema}\\"`,
  );
  expect(second.stdout).not.toContain('import-started');
  expect((await first.run).code).toBe(0);
  expect(await runsRecorded(db.schema)).toBe(1);
});

it('a lock left by a dead process is taken over, one held by a live process is not', async () => {
  const cwd = tempDir();
  const lockFile = path.join(cwd, '.waha-import', `checkpoint-default-${db.schema}.json.lock`);
  fs.mkdirSync(path.dirname(lockFile), { recursive: true });
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
    encoding: 'utf8',
  });
  const deadPid = Number(dead.stdout);
  fs.writeFileSync(
    lockFile,
    JSON.stringify({ pid: deadPid, host: os.hostname(), startedAt: '2026-11-24T02:30:00Z' }),
  );
  const taken = await runCli(runArgs(sim.url, db.schema), { cwd });
  expect(taken.code).toBe(0);
  expect(taken.stdout).toContain(`took over the lock left by pid ${deadPid}`);
  expect(fs.existsSync(lockFile)).toBe(false);

  // This test process is alive on this host: its lock is respected.
  fs.writeFileSync(
    lockFile,
    JSON.stringify({ pid: process.pid, host: os.hostname(), startedAt: '2026-11-25T02:30:00Z' }),
  );
  const refused = await runCli(runArgs(sim.url, db.schema), { cwd });
  expect(refused.code).toBe(4);
  expect(refused.stdout).toContain(`pid ${process.pid} on ${os.hostname()}, started 2026-11-25T02:30:00Z`);
  expect(fs.existsSync(lockFile)).toBe(true);
});

it('two runs sharing one embedded PostgreSQL: the second exits 4 at once and writes nothing', async () => {
  const root = tempDir();
  // As root the server runs as the postgres user, which must be able to enter the directory.
  fs.chmodSync(root, 0o755);
  const dataDir = path.join(root, 'postgres');
  const args = (cwd: string) =>
    runUntilImportStarts(
      ['run', '--waha-url', sim.url, '--data-dir', dataDir, '--json', '--request-timeout', '3'],
      { cwd },
    );
  sim.failNext(25, { status: 'timeout', route: 'messages' });
  const first = args(tempDir());
  await first.started;
  // Another working directory: another checkpoint and lock file, the same data directory.
  const second = await args(tempDir()).run;
  expect(second.code).toBe(4);
  expect(second.stdout).toMatch(/already in use by a running server \(pid \d+\)/);
  expect(second.stdout).not.toContain('import-started');
  const winner = await first.run;
  expect(winner.code).toBe(0);
  expect(jsonSummary(winner.stdout).summary.inserted).toBe(600);
});
