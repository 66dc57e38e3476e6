import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startSimulator, type Simulator } from '../src/sim/index.js';
import { runCli } from './support/cli.js';
import { testDatabaseUrl } from './support/db.js';

/**
 * A checkpoint or data directory that cannot be created is the user's to fix: exit 2 naming the path and
 * what to do, never a stack trace or "this is a bug". The tests run as root, where permissions do not stop
 * writes, so the path goes through a regular file or under /proc.
 */

let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator({
    sessions: [{ name: 'default', datasetOptions: { chats: 3, messages: 10, seed: 2 } }],
  });
});
afterAll(() => sim.close());

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-files-'));
}

function plainRun(cwd: string, extra: string[]) {
  return runCli(['run', '--waha-url', sim.url, '--schema', 'files_never_created', ...extra], { cwd });
}

function expectUserError(result: { code: number | null; stderr: string }, names: string): void {
  expect(result.code).toBe(2);
  expect(result.stderr).toContain(names);
  expect(result.stderr).toMatch(/hint: /);
  expect(result.stderr).not.toMatch(/unexpected error|this is a bug|\n\s+at /);
}

it('a working directory where .waha-import cannot be created (cron after cd /): exit 2 naming it', async () => {
  const cwd = tempDir();
  fs.writeFileSync(path.join(cwd, '.waha-import'), 'a file, not a directory\n');
  const result = await plainRun(cwd, ['--database-url', testDatabaseUrl()]);
  expectUserError(result, path.join(cwd, '.waha-import'));
  expect(result.stderr).toMatch(/cd to one first|--checkpoint/);
});

it('a --checkpoint whose parent is a file: exit 2 naming it', async () => {
  const cwd = tempDir();
  const blocker = path.join(cwd, 'blocker');
  fs.writeFileSync(blocker, 'x');
  const result = await plainRun(cwd, [
    '--database-url',
    testDatabaseUrl(),
    '--checkpoint',
    path.join(blocker, 'cp.json'),
  ]);
  expectUserError(result, blocker);
});

it('a --data-dir that cannot be created (under /proc, or through a file): exit 2 naming it', async () => {
  const underProc = path.join('/proc', `waha-import-${process.pid}`, 'postgres');
  expectUserError(await plainRun(tempDir(), ['--data-dir', underProc]), underProc);

  const cwd = tempDir();
  fs.chmodSync(cwd, 0o755);
  fs.writeFileSync(path.join(cwd, 'file'), 'x');
  const throughFile = path.join(cwd, 'file', 'postgres');
  const result = await plainRun(cwd, ['--data-dir', throughFile]);
  expectUserError(result, throughFile);
  expect(result.stderr).toContain('--data-dir');
});
