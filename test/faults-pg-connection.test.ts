import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { openDatabase } from '../src/db/index.js';
import { DEFAULT_TIMEOUTS, watchAnswers } from '../src/db/connect.js';
import { startBoss, UNIT_QUEUE } from '../src/queue/boss.js';
import { takeUnitJob } from '../src/queue/worker.js';
import { generateDataset, startSimulator, type Simulator, type WaMessage } from '../src/sim/index.js';
import { jsonSummary, runCli, type CliResult } from './support/cli.js';
import { testDatabaseUrl, useTestDatabase } from './support/db.js';
import { holdRequest, jsonError } from './support/faults.js';
import { startPgProxy, type PgProxy } from './support/pg-proxy.js';
import { expectDatabaseMatches } from './support/truth.js';

/**
 * PostgreSQL connections failing under a run: backends terminated, the import lock's connection lost
 * while another run takes the lock, connections reset or black-holed by the network (a TCP proxy written
 * here), a server-wide idle_session_timeout. Each ends as a clear error (no stack trace, no hang) with the
 * summary as the final --json line, the run recorded as failed, `status` exiting 1, and after one re-run
 * the database equal to the simulator's ground truth.
 */

const db = useTestDatabase();
const DATASET = generateDataset({
  chats: 6,
  messages: 160,
  seed: 41,
  nulBodies: 0,
  loneSurrogateBodies: 0,
});
const ANCHOR_S = DATASET.options.anchorS!;
const WINDOW = { fromS: ANCHOR_S - 40 * 86_400, toS: ANCHOR_S };
const listed = (id: string): string => id.replace(/@c\.us$/, '@s.whatsapp.net');
/** The order `sequential` imports chats in (stored ids), one transaction each. */
const CHAT_ORDER = DATASET.chats
  .filter((c) => c.messages.length > 0)
  .map((c) => c.id)
  .sort((a, b) => (listed(a) < listed(b) ? -1 : listed(a) > listed(b) ? 1 : 0));

let sim: Simulator;
let proxy: PgProxy;
beforeAll(async () => {
  sim = await startSimulator({ sessions: [{ name: 'default', dataset: DATASET }] });
  const target = new URL(testDatabaseUrl());
  proxy = await startPgProxy(target.hostname, Number(target.port || 5432));
});
afterAll(async () => {
  await sim.close();
  await proxy.close();
});
afterEach(() => {
  proxy.onClientData = undefined;
});

const TRUTH: () => WaMessage[] = () => sim.groundTruth('default', WINDOW).messages;

let appNames = 0;
/** An application_name of this test's own, so that only its run's backends are found and terminated. */
function appName(): string {
  return `waha-import-test-${process.pid}-${++appNames}`;
}

function withQuery(url: string, query: Record<string, string>): string {
  const parsed = new URL(url);
  for (const [key, value] of Object.entries(query)) parsed.searchParams.set(key, value);
  return parsed.toString();
}

function checkpointFile(): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-faults-pg-')), 'checkpoint.json');
}

function run(
  databaseUrl: string,
  schema: string,
  checkpoint: string,
  extra: string[] = [],
): ReturnType<typeof runCli> {
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
    ...extra,
  ]);
}

/** A clear failure: exit 1, the summary as the final JSON line, no stack trace anywhere. */
function expectCleanFailure(result: CliResult, message: RegExp): void {
  expect(result.code).toBe(1);
  expect(jsonSummary(result.stdout).summary).toMatchObject({ status: 'failed' });
  expect(jsonError(result.stdout).message).toMatch(message);
  expect(`${result.stdout}\n${result.stderr}`).not.toMatch(/TypeError|\n\s+at /);
}

async function runStatuses(schema: string): Promise<string[]> {
  const rows = await db.sql<Array<{ status: string }>>`
    select status from ${db.sql(schema)}.import_runs order by id`;
  return rows.map((r) => r.status);
}

/** The backend holding the import lock of `schema`/default. */
async function lockHolder(schema: string): Promise<number> {
  const [row] = await db.sql<[{ pid: number }?]>`
    select pid from pg_locks
    where locktype = 'advisory' and granted and objsubid = 2
      and objid = (hashtext(${`${schema}/default`})::bigint & 4294967295)::oid`;
  if (!row) throw new Error('nobody holds the import lock');
  return row.pid;
}

async function terminate(pids: number[]): Promise<void> {
  await db.sql`select pg_terminate_backend(pid) from unnest(${pids}::int[]) as pid`;
  // Until they are gone: a terminated backend leaves pg_stat_activity when it has exited.
  while ((await db.sql`select 1 from pg_stat_activity where pid = any(${pids}::int[])`).length > 0) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function expectStatusExit(schema: string, code: number): Promise<void> {
  const status = await runCli(['status', '--database-url', testDatabaseUrl(), '--schema', schema]);
  expect(status.code).toBe(code);
}

it('every backend of the run terminated (pool and lock): exit 1 "lost the import lock", recorded; a re-run completes', async () => {
  const name = appName();
  const checkpoint = checkpointFile();
  const hold = holdRequest(sim, (r) => r.chatId === CHAT_ORDER[2]);
  const running = run(withQuery(testDatabaseUrl(), { application_name: name }), db.schema, checkpoint);
  await hold.reached;
  const pids = (
    await db.sql<Array<{ pid: number }>>`select pid from pg_stat_activity where application_name = ${name}`
  ).map((r) => r.pid);
  expect(pids).toContain(await lockHolder(db.schema));
  await terminate(pids);
  hold.release();
  const failed = await running;

  expectCleanFailure(failed, /lost the import lock/);
  expect(jsonSummary(failed.stdout).summary).toMatchObject({ dbTransactions: 2 });
  expect(await runStatuses(db.schema)).toEqual(['failed']);
  await expectStatusExit(db.schema, 1);

  const again = await run(testDatabaseUrl(), db.schema, checkpoint);
  expect(again.code).toBe(0);
  await expectDatabaseMatches(db.sql, db.schema, 'default', TRUTH());
});

it('the lock connection dies and a second run takes the lock: the first stops before writing again', async () => {
  const first = appName();
  const hold = holdRequest(sim, (r) => r.chatId === CHAT_ORDER[2]);
  const running = run(withQuery(testDatabaseUrl(), { application_name: first }), db.schema, checkpointFile());
  await hold.reached;
  await terminate([await lockHolder(db.schema)]);

  // Another host (its own checkpoint) now gets the lock and imports everything.
  const second = await run(testDatabaseUrl(), db.schema, checkpointFile());
  expect(second.code).toBe(0);
  const written = await db.sql`select count(*)::int as n from ${db.sql(db.schema)}.messages`;

  hold.release();
  const failed = await running;
  expectCleanFailure(failed, /lost the import lock/);
  expect(jsonError(failed.stdout).message).toMatch(/stopped before writing again/);
  // It committed its first two chats, and nothing after losing the lock.
  expect(jsonSummary(failed.stdout).summary).toMatchObject({ dbTransactions: 2 });
  expect(await db.sql`select count(*)::int as n from ${db.sql(db.schema)}.messages`).toEqual(written);
  expect((await runStatuses(db.schema)).sort()).toEqual(['failed', 'succeeded']);
  await expectDatabaseMatches(db.sql, db.schema, 'default', TRUTH());
});

/**
 * Runs `act` inside the first transaction after the second chat's commit: armed while the third chat's
 * first request is held (two chats committed), it acts on the first statement after the next `begin`.
 */
async function inThirdTransaction(
  checkpoint: string,
  act: () => void,
  extra: string[] = [],
): Promise<CliResult> {
  const hold = holdRequest(sim, (r) => r.chatId === CHAT_ORDER[2]);
  const running = run(proxy.url(testDatabaseUrl()), db.schema, checkpoint, extra);
  await hold.reached;
  let begun = false;
  proxy.onClientData = (chunk) => {
    if (begun) {
      proxy.onClientData = undefined;
      act();
    } else if (chunk.includes('begin')) begun = true;
  };
  hold.release();
  return running;
}

it('connections reset mid-transaction: exit 1 "connection was lost", no stack trace; a re-run completes', async () => {
  const checkpoint = checkpointFile();
  const failed = await inThirdTransaction(checkpoint, () => proxy.resetAll());

  expectCleanFailure(failed, /connection to .* was lost|lost the import lock/);
  expect(jsonSummary(failed.stdout).summary).toMatchObject({ dbTransactions: 2 });
  expect(await runStatuses(db.schema)).toEqual(['failed']);
  await expectStatusExit(db.schema, 1);

  const again = await run(testDatabaseUrl(), db.schema, checkpoint);
  expect(again.code).toBe(0);
  await expectDatabaseMatches(db.sql, db.schema, 'default', TRUTH());
});

it('connections dropped mid-transaction: exit 1, recorded; a re-run completes', async () => {
  const checkpoint = checkpointFile();
  const failed = await inThirdTransaction(checkpoint, () => proxy.dropAll());

  expectCleanFailure(failed, /connection to .* was lost|lost the import lock/);
  expect(jsonSummary(failed.stdout).summary).toMatchObject({ dbTransactions: 2 });
  expect(await runStatuses(db.schema)).toEqual(['failed']);

  const again = await run(testDatabaseUrl(), db.schema, checkpoint);
  expect(again.code).toBe(0);
  await expectDatabaseMatches(db.sql, db.schema, 'default', TRUTH());
});

it('connections black-holed mid-transaction: no hang, exit 1 "did not answer" after the statement timeout', async () => {
  const checkpoint = checkpointFile();
  const failed = await inThirdTransaction(checkpoint, () => proxy.blackholeAll(), [
    '--db-statement-timeout',
    '2',
  ]);

  expectCleanFailure(failed, /did not answer/);
  expect(jsonSummary(failed.stdout).summary).toMatchObject({ dbTransactions: 2 });
  expect(await runStatuses(db.schema)).toEqual(['failed']);

  const again = await run(testDatabaseUrl(), db.schema, checkpoint);
  expect(again.code).toBe(0);
  await expectDatabaseMatches(db.sql, db.schema, 'default', TRUTH());
});

it('every connection black-holed between two batches: the lost lock is said, and the run recorded on a fresh connection at once', async () => {
  const checkpoint = checkpointFile();
  const hold = holdRequest(sim, (r) => r.chatId === CHAT_ORDER[2]);
  const running = run(proxy.url(testDatabaseUrl()), db.schema, checkpoint, ['--db-statement-timeout', '1']);
  await hold.reached;
  // Nothing is in flight on the database: the next statement is the lock's check before the next batch.
  proxy.blackholeAll();
  let recordedIntoTheHole = 0;
  proxy.onClientData = (chunk, holed) => {
    if (holed && chunk.includes('import_runs')) recordedIntoTheHole++;
  };
  hold.release();
  const failed = await running;

  expectCleanFailure(failed, /lost the import lock/);
  expect(await runStatuses(db.schema)).toEqual(['failed']);
  // Before, the record went first to a pool connection in the same hole, a whole deadline more.
  expect(recordedIntoTheHole).toBe(0);
});

it('the answer watchdog keeps watching a connection after it found it idle once', async () => {
  // A server that answers the first message with ReadyForQuery and then nothing: a connection that sat
  // idle (the import lock's, between two checks) before its route was black-holed.
  const ready = Buffer.from([0x5a, 0, 0, 0, 5, 0x49]);
  const server = net.createServer((socket) => socket.once('data', () => socket.write(ready)));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  client.on('error', () => undefined);
  let fault: (Error & { code?: string }) | undefined;
  try {
    await once(client, 'connect');
    watchAnswers(client, 100, (error) => (fault = error));
    client.write('first');
    await once(client, 'data');
    // Idle past the deadline: the watchdog fires and lets it be.
    await once(client, 'timeout');
    expect(fault).toBeUndefined();
    // Then a statement the server never answers: the next firing must give the connection up.
    client.write('second');
    await once(client, 'timeout');
    expect(fault?.code).toBe('ANSWER_TIMEOUT');
    expect(client.destroyed).toBe(true);
  } finally {
    client.destroy();
    server.close();
  }
});

/** pg-boss on one connection through the proxy, with a 1 s statement timeout (an answer awaited 5 s past it fails). */
function bossThroughProxy(): ReturnType<typeof startBoss> {
  return startBoss(
    {
      url: proxy.url(testDatabaseUrl()),
      schema: db.schema,
      max: 1,
      timeouts: { ...DEFAULT_TIMEOUTS, statementS: 1 },
    },
    () => undefined,
  );
}

it("pg-boss's own pool gives a black-holed statement up at the deadline, as ours does", async () => {
  // Before, pg-boss's pool had no timeout at all: `worker` waited on its next job for ever.
  const boss = await bossThroughProxy();
  try {
    proxy.blackholeAll();
    await expect(boss.getQueue(UNIT_QUEUE)).rejects.toThrow(/Query read timeout/);
  } finally {
    // Its connection stays black-holed (the proxy closes it at the end): not waited for.
    void boss.stop({ graceful: false, wait: false, close: true }).catch(() => undefined);
  }
});

it('a worker taking its next job through a black-holed connection hears of it at the deadline', async () => {
  // pg-boss's fetch answers "no job" when its statement fails: before, a worker whose connections were
  // black-holed polled "no job" at every --poll and never said a word.
  const boss = await bossThroughProxy();
  try {
    await expect(takeUnitJob(boss)).resolves.toBeUndefined();
    proxy.blackholeAll();
    await expect(takeUnitJob(boss)).rejects.toThrow(/Query read timeout/);
  } finally {
    void boss.stop({ graceful: false, wait: false, close: true }).catch(() => undefined);
  }
});

describe('a server-wide idle_session_timeout', () => {
  const role = `waha_import_idle_${process.pid}`;
  beforeAll(async () => {
    await db.sql.unsafe(`drop role if exists ${role}`);
    // The embedded server checks passwords: the role gets the one the test URL carries.
    const password = decodeURIComponent(new URL(testDatabaseUrl()).password);
    await db.sql.unsafe(
      `create role ${role} login superuser${password ? ` password '${password.replaceAll("'", "''")}'` : ''}`,
    );
    await db.sql.unsafe(`alter role ${role} set idle_session_timeout = '1s'`);
  });
  afterAll(async () => {
    await db.sql`select pg_terminate_backend(pid) from pg_stat_activity where usename = ${role}`;
    await db.sql.unsafe(`drop role if exists ${role}`);
  });

  it('the pool closes its idle connections before the server would: at half its idle_session_timeout', async () => {
    const url = new URL(testDatabaseUrl());
    url.username = role;
    const opened = await openDatabase({ databaseUrl: url.toString() });
    try {
      expect(opened.poolIdleS).toBe(0.5);
      expect(await opened.sql`select 1 as one`).toEqual([{ one: 1 }]);
    } finally {
      await opened.close();
    }
    // Without such a setting on the server, the pool keeps its own.
    const plain = await openDatabase({ databaseUrl: testDatabaseUrl(), timeouts: { idleS: 7 } });
    try {
      expect(plain.poolIdleS).toBe(7);
    } finally {
      await plain.close();
    }
  });

  it('ends idle pool connections but not the lock: the run completes', async () => {
    const name = appName();
    const url = new URL(withQuery(testDatabaseUrl(), { application_name: name }));
    url.username = role;
    const hold = holdRequest(sim, (r) => r.chatId === CHAT_ORDER[2]);
    const running = run(url.toString(), db.schema, checkpointFile());
    // A run that ends before the held request (it could not log in, say) fails here, with its output.
    await Promise.race([
      hold.reached,
      running.then((ended) => {
        throw new Error(`the run ended before the held request: ${ended.stdout}\n${ended.stderr}`);
      }),
    ]);
    const lock = await lockHolder(db.schema);
    // Until the server has ended every idle connection of the run but the lock's.
    while (
      (await db.sql`select 1 from pg_stat_activity where application_name = ${name} and pid <> ${lock}`)
        .length > 0
    ) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(await lockHolder(db.schema)).toBe(lock);
    hold.release();
    const done = await running;

    // On failure, what the run printed shows with it.
    expect(done).toMatchObject({ code: 0 });
    expect(`${done.stdout}\n${done.stderr}`).not.toMatch(/TypeError|\n\s+at /);
    expect(await runStatuses(db.schema)).toEqual(['succeeded']);
    await expectDatabaseMatches(db.sql, db.schema, 'default', TRUTH());
  });
});
