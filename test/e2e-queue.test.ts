import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateDataset, startSimulator, type Simulator } from '../src/sim/index.js';
import { databaseChecksum } from '../src/db/index.js';
import { runCli, runArgs, type CliResult } from './support/cli.js';
import { testDatabaseUrl, useTestDatabase } from './support/db.js';
import { expectDatabaseMatches } from './support/truth.js';

/**
 * `enqueue` + `worker` on pg-boss: several worker processes, each in its own working directory (no shared
 * files: another "machine"), leave the database `run` leaves; a worker killed mid-job is taken over;
 * enqueueing the same plan twice adds nothing; a schedule fires once with three workers running.
 */
const db = useTestDatabase({ maxConnections: 6 });
const API_KEY = 'queue-secret-key-42';
const DATASET = generateDataset({ chats: 90, messages: 1500, bigChats: [420], seed: 23 });
const WINDOW = ['--since', '2000-01-01', '--until', String(DATASET.options.anchorS!)];

let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator({
    apiKey: API_KEY,
    latencyMs: 10,
    sessions: [{ name: 'default', dataset: DATASET }],
  });
});
afterAll(() => sim.close());

// pg-boss keeps its tables in <schema>_queue: dropped with the test's schemas.
const queueSchemas: string[] = [];
afterEach(async () => {
  for (const name of queueSchemas.splice(0)) await db.sql`drop schema if exists ${db.sql(name)} cascade`;
});
function queueSchema(): string {
  queueSchemas.push(`${db.schema}_queue`);
  return db.schema;
}

/** Its own empty working directory: a worker there shares no file with the others. */
function machine(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-machine-'));
}

const env = { WAHA_API_KEY: API_KEY, DATABASE_URL: testDatabaseUrl() };

function enqueue(schema: string, extra: string[] = []): Promise<CliResult> {
  return runCli(
    [
      'enqueue',
      '--waha-url',
      sim.url,
      '--schema',
      schema,
      '--json',
      ...WINDOW,
      '--chats-per-job',
      '15',
      ...extra,
    ],
    { env, cwd: machine() },
  );
}

function worker(schema: string, extra: string[] = [], onStderr?: (chunk: string) => void) {
  return runCli(['worker', '--schema', schema, '--poll', '1', ...extra], {
    env,
    cwd: machine(),
    ...(onStderr ? { onStderr } : {}),
  });
}

async function runChecksum(): Promise<Awaited<ReturnType<typeof databaseChecksum>>> {
  const schema = db.newSchema();
  const result = await runCli([...runArgs(sim.url, schema, WINDOW)], {
    env: { WAHA_API_KEY: API_KEY },
    cwd: machine(),
  });
  expect(result.code).toBe(0);
  return databaseChecksum(db.sql, schema);
}

/** WAHA answers no message request until released; `requested` resolves at the first one. */
function holdMessages(): { requested: Promise<void>; release(): void } {
  let release: () => void = () => undefined;
  const held = new Promise<void>((resolve) => (release = resolve));
  let markRequested: () => void = () => undefined;
  const requested = new Promise<void>((resolve) => (markRequested = resolve));
  const removeHook = sim.onRequest(async (request) => {
    if (request.route !== 'messages') return;
    markRequested();
    await held;
  });
  return {
    requested,
    release() {
      removeHook();
      release();
    },
  };
}

async function units(schema: string) {
  return db.sql<Array<{ unit: number; state: string; worker: string | null; attempts: number }>>`
    select unit, state, worker, attempts from ${db.sql(schema)}.queue_units order by unit`;
}

describe('waha-import enqueue and worker', () => {
  it('three workers on three "machines" leave the database run leaves; enqueueing the plan again adds nothing', async () => {
    const schema = queueSchema();
    const first = await enqueue(schema);
    expect(first.code).toBe(0);
    const planned = JSON.parse(first.stdout.trim().split('\n').at(-1)!) as {
      type: string;
      plans: Array<{ added: boolean; units: number; chats: number; planId: number }>;
    };
    expect(planned.type).toBe('enqueued');
    expect(planned.plans).toEqual([expect.objectContaining({ added: true, units: 6, chats: 90 })]);

    const again = await enqueue(schema);
    expect(again.code).toBe(0);
    const second = JSON.parse(again.stdout.trim().split('\n').at(-1)!) as typeof planned;
    expect(second.plans).toEqual([
      expect.objectContaining({ added: false, planId: planned.plans[0]!.planId }),
    ]);
    const [{ jobs }] = await db.sql<[{ jobs: number }]>`
      select count(*)::int as jobs from ${db.sql(`${schema}_queue`)}.job where name = 'waha-import-unit'`;
    expect(jobs).toBe(6);

    // WAHA holds every message request until three jobs run at once (one per worker, each takes one at a
    // time): however fast one worker is, it cannot drain the queue before the others start.
    const hold = holdMessages();
    const running = Promise.all([
      worker(schema, ['--once', '--jobs', '1']),
      worker(schema, ['--once', '--jobs', '1']),
      worker(schema, ['--once', '--jobs', '1']),
    ]);
    await hold.requested;
    while ((await units(schema)).filter((u) => u.state === 'running').length < 3) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    hold.release();
    const results = await running;
    for (const result of results) {
      expect(result.stderr).not.toMatch(/warning:|error/i);
      expect(result.code).toBe(0);
    }
    const done = await units(schema);
    expect(done.map((u) => u.state)).toEqual(Array(6).fill('done'));
    expect(new Set(done.map((u) => u.worker)).size).toBeGreaterThan(1);

    const truth = sim.groundTruth('default', { fromS: 946_684_800, toS: 4_102_444_800 });
    await expectDatabaseMatches(db.sql, schema, 'default', truth.messages);
    expect(await databaseChecksum(db.sql, schema)).toEqual(await runChecksum());

    // Finished: status exits 0 and shows the plan finished; the same plan may now be queued again.
    const status = await runCli(['status', '--schema', schema], { env, cwd: machine() });
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(
      /#\d+ \S+ default \(enqueue\) finished: 6 jobs: 6 done; 1,500 messages fetched/,
    );
    const third = await enqueue(schema);
    expect(JSON.parse(third.stdout.trim().split('\n').at(-1)!)).toMatchObject({
      plans: [expect.objectContaining({ added: true })],
    });
  });

  it('a worker SIGKILLed mid-job: another takes the job over and the database ends the same', async () => {
    const schema = queueSchema();
    expect((await enqueue(schema, ['--job-timeout', '8'])).code).toBe(0);
    // WAHA holds message requests until the worker is dead: it dies mid-job, with nothing committed.
    const hold = holdMessages();
    try {
      const doomed = worker(schema, ['--jobs', '1']);
      await hold.requested;
      doomed.child.kill('SIGKILL');
      const killed = await doomed;
      expect(killed.signal).toBe('SIGKILL');
    } finally {
      hold.release();
    }
    const [taken] = await db.sql<Array<{ unit: number }>>`
      select unit from ${db.sql(schema)}.queue_units where state = 'running'`;
    expect(taken).toBeDefined();

    const [a, b] = await Promise.all([worker(schema, ['--once']), worker(schema, ['--once'])]);
    expect(a.code).toBe(0);
    expect(b.code).toBe(0);
    const after = await units(schema);
    expect(after.every((u) => u.state === 'done')).toBe(true);
    expect(after.find((u) => u.unit === taken!.unit)!.attempts).toBeGreaterThanOrEqual(2);
    expect(await databaseChecksum(db.sql, schema)).toEqual(await runChecksum());
  });

  it('SIGTERM hands the job in flight back; the next worker finishes it', async () => {
    const schema = queueSchema();
    expect((await enqueue(schema)).code).toBe(0);
    // WAHA holds every message request until released: the job is surely in flight when the signal comes.
    const hold = holdMessages();
    try {
      const stopped = worker(schema, ['--jobs', '1', '--shutdown-grace', '0']);
      await hold.requested;
      stopped.child.kill('SIGTERM');
      const result = await stopped;
      expect(result.code).toBe(130);
      expect(result.stderr).toContain('1 handed back');
      const rows = await db.sql<Array<{ state: string; error: string | null; attempts: number }>>`
        select state, error, attempts from ${db.sql(schema)}.queue_units where attempts > 0`;
      expect(rows).toEqual([{ state: 'waiting', error: 'handed back: the worker stopped', attempts: 1 }]);
    } finally {
      hold.release();
    }
    const next = await worker(schema, ['--once']);
    expect(next.code).toBe(0);
    expect((await units(schema)).every((u) => u.state === 'done')).toBe(true);
    expect(await databaseChecksum(db.sql, schema)).toEqual(await runChecksum());
  });

  it('a job that fails for good: the worker exits 1 and status names the job and its error (exit 1)', async () => {
    const schema = queueSchema();
    expect((await enqueue(schema, ['--job-retries', '0'])).code).toBe(0);
    // Planned while the session was WORKING; stopped before any worker came.
    sim.setSessionStatus('default', 'STOPPED');
    try {
      const result = await worker(schema, ['--once']);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('failed:');
    } finally {
      sim.setSessionStatus('default', 'WORKING');
    }
    const status = await runCli(['status', '--schema', schema], { env, cwd: machine() });
    expect(status.code).toBe(1);
    expect(status.stdout).toMatch(/in progress|finished/);
    expect(status.stdout).toContain('6 failed');
    expect(status.stdout).toMatch(/Jobs failed:\n {2}plan #\d+ job 1 after 1 attempt: .*STOPPED/);
    const json = await runCli(['status', '--schema', schema, '--json'], { env, cwd: machine() });
    const parsed = JSON.parse(json.stdout) as { queue: { failed: Array<{ willRetry: boolean }> } };
    expect(parsed.queue.failed).toHaveLength(6);
    expect(parsed.queue.failed.every((f) => !f.willRetry)).toBe(true);
  });

  it('works on one machine without DATABASE_URL: enqueue, then one worker, on the embedded PostgreSQL', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-embedded-queue-'));
    // As root the embedded server runs as the postgres user, which must be able to enter the directory.
    fs.chmodSync(home, 0o755);
    const embedded = { WAHA_API_KEY: API_KEY, WAHA_IMPORT_DATA_DIR: path.join(home, 'postgres') };
    try {
      const planned = await runCli(['enqueue', '--waha-url', sim.url, ...WINDOW, '--json'], {
        env: embedded,
        cwd: home,
      });
      expect(planned.code).toBe(0);
      const work = await runCli(['worker', '--once', '--poll', '1'], { env: embedded, cwd: home });
      expect(work.stderr).toContain('Embedded PostgreSQL ready');
      expect(work.code).toBe(0);
      const count = await runCli(['sql', '--format', 'csv', 'select count(*) as n from messages'], {
        env: embedded,
        cwd: home,
      });
      expect(count.stdout.trim().split('\n')).toEqual(['n', '1500']);
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });

  // Cron fires on whole minutes: the test waits for one (at most about two minutes away).
  it('a schedule fires once with three workers running, and its plan is imported', async () => {
    const schema = queueSchema();
    // One occurrence only: a daily time at least 40 s ahead, so every worker is watching when it comes.
    const at = new Date(Math.ceil((Date.now() + 40_000) / 60_000) * 60_000);
    const cron = `${at.getUTCMinutes()} ${at.getUTCHours()} * * *`;
    const stored = await runCli(
      ['schedule', cron, '--name', 'daily', '--waha-url', sim.url, '--schema', schema, '--days', '36500'],
      { env, cwd: machine() },
    );
    expect(stored.stderr).toContain('Schedule "daily" stored');
    expect(stored.code).toBe(0);
    const listed = await runCli(['schedule', '--list', '--schema', schema], { env, cwd: machine() });
    expect(listed.stdout).toContain(`daily: "${cron}" (UTC)`);

    const workers = [worker(schema), worker(schema), worker(schema)];
    const boss = db.sql(`${schema}_queue`);
    try {
      const waitFor = async (check: () => Promise<boolean>): Promise<void> => {
        while (!(await check().catch(() => false))) {
          for (const w of workers) expect(w.child.exitCode).toBeNull();
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      };
      // The firing, then its plan imported to the end.
      await waitFor(async () => {
        const [row] = await db.sql<
          [{ n: number }]
        >`select count(*)::int as n from ${db.sql(schema)}.queue_firings`;
        return row!.n > 0;
      });
      await waitFor(async () => {
        const [row] = await db.sql<[{ left: number }]>`
          select count(*)::int as left from ${db.sql(schema)}.queue_units where state <> 'done'`;
        const [plans] = await db.sql<
          [{ n: number }]
        >`select count(*)::int as n from ${db.sql(schema)}.queue_plans`;
        return plans!.n > 0 && row!.left === 0;
      });
      // pg-boss checks the schedules on every worker; once its last check is a minute past the
      // occurrence, no check can fire it again. Only then is "once" known.
      await waitFor(async () => {
        const [row] = await db.sql<[{ past: boolean }]>`
          select coalesce(cron_on > ${new Date(at.getTime() + 61_000)}, false) as past from ${boss}.version`;
        return row!.past;
      });
      const firings = await db.sql<Array<{ plans_added: number; error: string | null }>>`
        select plans_added, error from ${db.sql(schema)}.queue_firings`;
      expect(firings).toEqual([{ plans_added: 1, error: null }]);
    } finally {
      for (const w of workers) w.child.kill('SIGTERM');
      // Every worker gone before the schemas are dropped.
      await Promise.allSettled(workers);
    }
    for (const result of await Promise.all(workers)) expect(result.code).toBe(0);
    const [{ plans }] = await db.sql<[{ plans: number }]>`
      select count(*)::int as plans from ${db.sql(schema)}.queue_plans where trigger = 'schedule daily'`;
    expect(plans).toBe(1);
    const truth = sim.groundTruth('default', { fromS: 0, toS: 4_102_444_800 });
    await expectDatabaseMatches(db.sql, schema, 'default', truth.messages);
  }, 240_000);
});
