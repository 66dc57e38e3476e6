import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { databaseChecksum } from '../src/db/index.js';
import { generateDataset, startSimulator, type Simulator } from '../src/sim/index.js';
import { committedAtLeast, jsonSummary, runArgs, runCli, runUntilImportStarts } from './support/cli.js';
import { useTestDatabase } from './support/db.js';

/**
 * Crash-proof resume: the built CLI is killed (SIGKILL) at several moments of a run, then run again;
 * every time the database ends identical to an uninterrupted run, and the resumed run does not fetch
 * again what the checkpoint says is done. Ctrl-C (SIGINT) stops cleanly with exit 130.
 */

const db = useTestDatabase();
const DATASET = generateDataset({ chats: 90, messages: 3000, bigChats: [900, 350], seed: 21 });
const WINDOW = [
  '--since',
  String(DATASET.options.anchorS! - 40 * 86_400),
  '--until',
  String(DATASET.options.anchorS!),
];
let sim: Simulator;
/** Uninterrupted runs, by strategy: the database they leave, their requests and their duration. */
const uninterrupted = new Map<string, { checksum: string; requests: number; elapsedMs: number }>();

beforeAll(async () => {
  // Slow enough that a run lasts about a second, so the kills land at different stages.
  sim = await startSimulator({
    latencyMs: 12,
    jitterMs: 4,
    sessions: [{ name: 'default', dataset: DATASET }],
  });
});
afterAll(() => sim.close());

function args(schema: string, checkpoint: string, strategy: string): string[] {
  return runArgs(sim.url, schema, [
    '--checkpoint',
    checkpoint,
    '--strategy',
    strategy,
    '--concurrency',
    '4',
    '--chunk',
    '10',
    '--batch-size',
    '300',
    '--flush-ms',
    '50',
    ...WINDOW,
  ]);
}

function tempCheckpoint(): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-resume-')), 'checkpoint.json');
}

async function uninterruptedRun(strategy: string) {
  const known = uninterrupted.get(strategy);
  if (known) return known;
  const schema = db.newSchema();
  const result = await runCli(args(schema, tempCheckpoint(), strategy));
  expect(result.code).toBe(0);
  const { summary } = jsonSummary(result.stdout);
  expect(summary.messagesFetched).toBe(3000);
  const run = {
    checksum: (await databaseChecksum(db.sql, schema)).checksum,
    requests: Number(summary.wahaRequests),
    elapsedMs: Number(summary.elapsedMs),
  };
  uninterrupted.set(strategy, run);
  // Every strategy leaves the same database as the simplest one.
  if (strategy !== 'sequential') expect(run.checksum).toBe((await uninterruptedRun('sequential')).checksum);
  return run;
}

describe.each([['parallel'], ['chunked'], ['streaming']])('killed with SIGKILL, strategy %s', (strategy) => {
  it('resumes to the same database at every kill point, re-fetching less than a full run', async () => {
    const ref = await uninterruptedRun(strategy);
    let resumedWithProgress = 0;
    for (const fraction of [0.15, 0.35, 0.55, 0.75, 0.9]) {
      const schema = db.newSchema();
      const checkpoint = tempCheckpoint();
      const { run: victim, started } = runUntilImportStarts(args(schema, checkpoint, strategy));
      await started;
      // Anchored on the run's own progress, not on time (a loaded machine slows runs unevenly): the
      // kill lands once the checkpoint shows this fraction of the messages committed.
      await committedAtLeast(checkpoint, 3000 * fraction, victim);
      victim.child.kill('SIGKILL');
      const killed = await victim;
      if (killed.code === 0) continue; // finished before the kill: nothing to resume at this point

      expect(killed.signal).toBe('SIGKILL');
      // Whatever the moment, the checkpoint is whole JSON (atomic rename) or not there yet.
      const saved = fs.existsSync(checkpoint)
        ? (JSON.parse(fs.readFileSync(checkpoint, 'utf8')) as { completedChats: string[]; status: string })
        : undefined;

      const resumed = await runCli(args(schema, checkpoint, strategy));
      expect(resumed.code).toBe(0);
      const { summary } = jsonSummary(resumed.stdout);
      expect(summary.chatsImported).toBe(90);
      expect((await databaseChecksum(db.sql, schema)).checksum).toBe(ref.checksum);
      if (saved?.status === 'complete') {
        // Killed after the run had finished its work but before the process exited: nothing to resume,
        // and the next run starts a new window (the database is still checked above).
        expect(summary.chatsResumed).toBe(0);
      } else if (saved && saved.completedChats.length > 0) {
        resumedWithProgress++;
        expect(summary.chatsResumed).toBe(saved.completedChats.length);
        expect(Number(summary.wahaRequests)).toBeLessThan(ref.requests);
        expect(resumed.stdout).toContain('Resuming the run started');
      }
    }
    // The kill points must really have interrupted runs part-way, or this test proved nothing.
    expect(resumedWithProgress).toBeGreaterThanOrEqual(2);
  });
});

it('Ctrl-C (SIGINT): stops cleanly, exit 130, summary printed, checkpoint saved; the next run completes', async () => {
  const ref = await uninterruptedRun('streaming');
  const schema = db.newSchema();
  const checkpoint = tempCheckpoint();
  const { run, started } = runUntilImportStarts(args(schema, checkpoint, 'streaming'));
  await started;
  // The checkpoint appears with the first commit, while most of the ~10 batches are still to come.
  while (!fs.existsSync(checkpoint) && run.child.exitCode === null) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  run.child.kill('SIGINT');
  const interrupted = await run;
  expect(interrupted.code).toBe(130);
  const { summary } = jsonSummary(interrupted.stdout);
  expect(summary.status).toBe('interrupted');
  const saved = JSON.parse(fs.readFileSync(checkpoint, 'utf8')) as {
    status: string;
    transactions: number;
    messagesCommitted: number;
  };
  expect(saved.status).toBe('running');
  expect(saved.transactions).toBe(summary.dbTransactions);
  // The checkpoint claims exactly what the database holds after the clean stop.
  const [{ count }] = await db.sql<
    [{ count: number }]
  >`select count(*)::int as count from ${db.sql(schema)}.messages`;
  expect(saved.messagesCommitted).toBe(count);

  const [{ status }] = await db.sql<
    [{ status: string }]
  >`select status from ${db.sql(schema)}.import_runs order by id desc limit 1`;
  expect(status).toBe('interrupted');

  const finished = await runCli(args(schema, checkpoint, 'streaming'));
  expect(finished.code).toBe(0);
  expect((await databaseChecksum(db.sql, schema)).checksum).toBe(ref.checksum);
});
