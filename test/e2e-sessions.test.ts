import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateDataset, startSimulator, type Simulator } from '../src/sim/index.js';
import { runArgs, runCli, jsonSummary } from './support/cli.js';
import { useTestDatabase } from './support/db.js';
import { expectDatabaseMatches } from './support/truth.js';

const db = useTestDatabase();
const SALES = generateDataset({ chats: 25, messages: 300, seed: 31 });
const SUPPORT = generateDataset({ chats: 15, messages: 200, seed: 32 });

let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator({
    sessions: [
      { name: 'support', dataset: SUPPORT },
      { name: 'sales', dataset: SALES },
      { name: 'old', dataset: generateDataset({ chats: 3, messages: 10, seed: 33 }), status: 'STOPPED' },
    ],
  });
});
afterAll(() => sim.close());

function scratch(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-sessions-'));
}

interface Outcome {
  session: string;
  status: string;
  summary?: Record<string, unknown>;
  error?: string;
}

function finalLine(stdout: string): { summary: Record<string, unknown>; sessions: Outcome[] } {
  return jsonSummary(stdout) as unknown as { summary: Record<string, unknown>; sessions: Outcome[] };
}

function sessionSummaries(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { type: string; summary: Record<string, unknown> })
    .filter((event) => event.type === 'session-summary')
    .map((event) => event.summary);
}

describe('several sessions in one run', () => {
  it('--all-sessions imports every WORKING session, each with its own checkpoint, and reports each and the total', async () => {
    const cwd = scratch();
    const result = await runCli(runArgs(sim.url, db.schema, ['--all-sessions']), { cwd });
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    const events = result.stdout.trim().split('\n');
    expect(events.some((line) => line.includes('not imported, not WORKING: \\"old\\" (STOPPED)'))).toBe(true);

    const perSession = sessionSummaries(result.stdout);
    expect(perSession.map((s) => s.session)).toEqual(['sales', 'support']);
    const { summary: total, sessions } = finalLine(result.stdout);
    expect(sessions.map((s) => [s.session, s.status])).toEqual([
      ['sales', 'succeeded'],
      ['support', 'succeeded'],
    ]);
    const salesTruth = sim.groundTruth('sales', perSession[0]!.window as { fromS: number; toS: number });
    const supportTruth = sim.groundTruth('support', perSession[1]!.window as { fromS: number; toS: number });
    expect(total).toMatchObject({
      status: 'succeeded',
      sessions: 2,
      sessionsSucceeded: 2,
      sessionsFailed: 0,
      chats: 40,
      chatsImported: 40,
      inserted: salesTruth.messages.length + supportTruth.messages.length,
      messagesFetched: salesTruth.messages.length + supportTruth.messages.length,
    });
    expect(total.wahaRequests).toBe(
      (perSession[0]!.wahaRequests as number) + (perSession[1]!.wahaRequests as number),
    );
    await expectDatabaseMatches(db.sql, db.schema, 'sales', salesTruth.messages);
    await expectDatabaseMatches(db.sql, db.schema, 'support', supportTruth.messages);
    for (const name of ['sales', 'support']) {
      const checkpoint = JSON.parse(
        fs.readFileSync(path.join(cwd, '.waha-import', `checkpoint-${name}-${db.schema}.json`), 'utf8'),
      ) as { session: string; status: string };
      expect(checkpoint).toMatchObject({ session: name, status: 'complete' });
    }
    expect(fs.existsSync(path.join(cwd, '.waha-import', `checkpoint-old-${db.schema}.json`))).toBe(false);

    // Plain text: each session's summary, then the table with the total.
    const plain = await runCli(
      runArgs(sim.url, db.schema, ['--session', 'sales,support']).filter((a) => a !== '--json'),
      {
        cwd,
      },
    );
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(
      /Import finished[\s\S]*session\s+sales[\s\S]*Import finished[\s\S]*session\s+support/,
    );
    expect(plain.stdout).toMatch(/All 2 sessions imported\n\s+session\s+status\s+chats/);
    expect(plain.stdout).toMatch(/\n\s+total\s+succeeded\s+40\/40\s+0\s+0\s+\d/);
  });

  it('a session that fails does not stop the others; the exit code is the first failure', async () => {
    const cwd = scratch();
    const result = await runCli(runArgs(sim.url, db.schema, ['--session', 'old,support']), { cwd });
    expect(result.code).toBe(3);
    const { summary: total, sessions } = finalLine(result.stdout);
    expect(sessions.map((s) => [s.session, s.status])).toEqual([
      ['old', 'failed'],
      ['support', 'succeeded'],
    ]);
    expect(sessions[0]!.error).toContain('WAHA session "old" is STOPPED, not WORKING');
    expect(total).toMatchObject({ status: 'failed', sessions: 2, sessionsSucceeded: 1, sessionsFailed: 1 });
    const supportTruth = sim.groundTruth(
      'support',
      sessions[1]!.summary!.window as { fromS: number; toS: number },
    );
    await expectDatabaseMatches(db.sql, db.schema, 'support', supportTruth.messages);
  });

  it('a session whose lock another run holds is left alone (exit 4) while the others are imported', async () => {
    const cwd = scratch();
    const lockFile = path.join(cwd, '.waha-import', `checkpoint-sales-${db.schema}.json.lock`);
    fs.mkdirSync(path.dirname(lockFile), { recursive: true });
    // This test's own process: alive on this host, so the lock is respected.
    fs.writeFileSync(
      lockFile,
      JSON.stringify({ pid: process.pid, host: os.hostname(), startedAt: new Date().toISOString() }),
    );
    const result = await runCli(runArgs(sim.url, db.schema, ['--session', 'sales,support']), { cwd });
    expect(result.code).toBe(4);
    const { sessions } = finalLine(result.stdout);
    expect(sessions.map((s) => [s.session, s.status])).toEqual([
      ['sales', 'failed'],
      ['support', 'succeeded'],
    ]);
    expect(sessions[0]!.error).toContain(`another run of session "sales"`);
    const [{ count }] = await db.sql<[{ count: number }]>`
      select count(*)::int as count from ${db.sql(db.schema)}.messages where session = 'sales'`;
    expect(count).toBe(0);
    expect(fs.existsSync(lockFile)).toBe(true);
  });
});
