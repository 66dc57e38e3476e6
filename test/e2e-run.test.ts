import { STRATEGY_NAMES } from '../src/strategies/types.js';
import { generateDataset, startSimulator, type Simulator } from '../src/sim/index.js';
import { databaseChecksum } from '../src/db/index.js';
import { jsonSummary, runArgs, runCli } from './support/cli.js';
import { useTestDatabase } from './support/db.js';
import { expectDatabaseMatches } from './support/truth.js';

const db = useTestDatabase();
const API_KEY = 'e2e-secret-key-123';
// A few hundred chats, one with more than 1,000 messages, NUL and lone-surrogate bodies, hidden rows.
const DATASET = generateDataset({ chats: 120, messages: 2600, bigChats: [1203, 150], seed: 11 });

let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator({ apiKey: API_KEY, sessions: [{ name: 'default', dataset: DATASET }] });
});
afterAll(() => sim.close());

function importArgs(schema: string, extra: string[] = []): string[] {
  return runArgs(sim.url, schema, extra);
}

const env = { WAHA_API_KEY: API_KEY };

describe.each(STRATEGY_NAMES.map((name) => [name]))('waha-import run --strategy %s', (strategy) => {
  it('leaves exactly the ground truth in the database, and a re-run changes nothing', async () => {
    const first = await runCli(importArgs(db.schema, ['--strategy', strategy, '--batch-size', '500']), {
      env,
    });
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const { summary } = jsonSummary(first.stdout);
    const truth = sim.groundTruth('default', summary.window as unknown as { fromS: number; toS: number });
    expect(truth.messages.length).toBe(2600);
    expect(summary).toMatchObject({
      status: 'succeeded',
      strategy,
      chats: 120,
      chatsImported: 120,
      messagesFetched: 2600,
      inserted: 2600,
      updated: 0,
      unchanged: 0,
      cleaned: 5,
    });
    await expectDatabaseMatches(db.sql, db.schema, 'default', truth.messages);
    const [{ chats }] = await db.sql<
      [{ chats: number }]
    >`select count(*)::int as chats from ${db.sql(db.schema)}.chats`;
    expect(chats).toBe(120);

    const second = await runCli(importArgs(db.schema, ['--strategy', strategy]), { env });
    expect(second.code).toBe(0);
    expect(jsonSummary(second.stdout).summary).toMatchObject({ inserted: 0, updated: 0, unchanged: 2600 });
    await expectDatabaseMatches(db.sql, db.schema, 'default', truth.messages);

    const [run] = await db.sql<[{ status: string; inserted: number; strategy: string }]>`
      select status, inserted, strategy from ${db.sql(db.schema)}.import_runs order by id limit 1`;
    expect(run).toEqual({ status: 'succeeded', inserted: 2600, strategy });
  });
});

it.each([[11], [12], [13]])(
  'every strategy leaves the same database (checksum of the ordered rows), seed %i',
  async (seed) => {
    const dataset =
      seed === 11 ? DATASET : generateDataset({ chats: 60, messages: 900, bigChats: [230], seed });
    const seeded =
      seed === 11 ? sim : await startSimulator({ apiKey: API_KEY, sessions: [{ name: 'default', dataset }] });
    try {
      const sums = new Map<string, string>();
      for (const strategy of STRATEGY_NAMES) {
        const schema = db.newSchema();
        const result = await runCli(
          runArgs(seeded.url, schema, [
            '--strategy',
            strategy,
            '--batch-size',
            '250',
            '--until',
            String(dataset.options.anchorS),
          ]),
          { env },
        );
        expect(result.code).toBe(0);
        const checksum = await databaseChecksum(db.sql, schema);
        expect(checksum.messages).toBe(seeded.groundTruth('default').messages.length);
        sums.set(strategy, checksum.checksum);
      }
      expect(new Set(sums.values()).size).toBe(1);
    } finally {
      if (seeded !== sim) await seeded.close();
    }
  },
);

it('the seed dataset: chunked --chunk 50 commits 1,172 chats in 24 transactions, as the study says for option D', async () => {
  const seedSim = await startSimulator();
  try {
    const result = await runCli(
      runArgs(seedSim.url, db.schema, ['--strategy', 'chunked', '--chunk', '50', '--concurrency', '50']),
      { env: {} },
    );
    expect(result.code).toBe(0);
    expect(jsonSummary(result.stdout).summary).toMatchObject({
      chats: 1172,
      messagesFetched: 5683,
      inserted: 5683,
      dbTransactions: 24,
    });
  } finally {
    await seedSim.close();
  }
});

it('counts transactions per strategy as designed', async () => {
  const expectations: Array<[string, string[], number]> = [
    ['sequential', [], 120],
    ['parallel', ['--concurrency', '7'], 120],
    ['chunked', ['--chunk', '50'], 3],
  ];
  for (const [strategy, extra, transactions] of expectations) {
    const result = await runCli(importArgs(db.newSchema(), ['--strategy', strategy, ...extra]), { env });
    expect([strategy, jsonSummary(result.stdout).summary.dbTransactions]).toEqual([strategy, transactions]);
  }
});

it('loses nothing when WAHA fails 5% of requests and rate-limits 3% with Retry-After', async () => {
  const flaky = await startSimulator({
    apiKey: API_KEY,
    sessions: [{ name: 'default', dataset: DATASET }],
    errorRate: 0.05,
    rateLimitRate: 0.03,
    retryAfterS: 0,
    faultSeed: 5,
  });
  try {
    const result = await runCli(runArgs(flaky.url, db.schema, ['--strategy', 'chunked']), { env });
    expect(result.code).toBe(0);
    const { summary } = jsonSummary(result.stdout);
    const faults = flaky.stats().faults;
    expect(faults.error + faults.rateLimit).toBeGreaterThan(10);
    expect(summary.retries).toBe(faults.error + faults.rateLimit);
    const truth = flaky.groundTruth('default', summary.window as unknown as { fromS: number; toS: number });
    await expectDatabaseMatches(db.sql, db.schema, 'default', truth.messages);
  } finally {
    await flaky.close();
  }
});
