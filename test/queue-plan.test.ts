import type PgBoss from 'pg-boss';
import { migrate } from '../src/db/index.js';
import { SILENT_REPORTER } from '../src/report/reporter.js';
import { generateDataset, startSimulator, type Simulator } from '../src/sim/index.js';
import { bossSchema, startBoss, UNIT_QUEUE } from '../src/queue/boss.js';
import { planImport, planKey, resolveWindow, type PlanRequest, type UnitJobData } from '../src/queue/plan.js';
import { createWahaClient } from '../src/waha/client.js';
import { testDatabaseUrl, useTestDatabase } from './support/db.js';

const db = useTestDatabase();

const REQUEST: PlanRequest = {
  wahaUrls: [],
  sessions: 'all',
  windowRequest: { sinceS: 0, untilS: 4_102_444_800 },
  strategy: 'streaming',
  chunk: 50,
  batchSize: 2000,
  flushMs: 1000,
  pageSize: 100,
  pageEnd: 'auto',
  emptyPages: 1,
  maxSlices: 8,
  chatPageSize: 500,
  chatsPerJob: 10,
  jobTimeoutS: 900,
  jobRetries: 5,
};

let sims: Simulator[] = [];
let boss: PgBoss | undefined;
const queueSchemas: string[] = [];
beforeAll(async () => {
  sims = [
    await startSimulator({
      sessions: [{ name: 'north', dataset: generateDataset({ chats: 30, messages: 100, seed: 3 }) }],
    }),
    await startSimulator({
      sessions: [{ name: 'south', dataset: generateDataset({ chats: 30, messages: 100, seed: 4 }) }],
    }),
  ];
});
afterAll(async () => {
  for (const sim of sims) await sim.close();
});
beforeEach(() => void queueSchemas.push(bossSchema(db.schema)));
afterEach(async () => {
  await boss?.stop({ graceful: false, wait: true, close: true });
  boss = undefined;
  for (const name of queueSchemas.splice(0)) await db.sql`drop schema if exists ${db.sql(name)} cascade`;
});

describe('planImport', () => {
  it("interleaves the plans' jobs: workers take the first job of every server before the second of any", async () => {
    await migrate(db.sql, db.schema);
    boss = await startBoss({ url: testDatabaseUrl(), schema: db.schema }, () => undefined);
    const clients = new Map(
      sims.map((sim) => [
        sim.url,
        createWahaClient({ baseUrl: sim.url, requestTimeoutMs: 10_000, maxResponseBytes: 2 ** 26 }),
      ]),
    );
    const planned = await planImport(
      {
        sql: db.sql,
        schema: db.schema,
        boss,
        wahaFor: (url) => clients.get(url)!,
        reporter: SILENT_REPORTER,
        signal: new AbortController().signal,
        nowMs: Date.now(),
      },
      { ...REQUEST, wahaUrls: sims.map((sim) => sim.url) },
      'test',
    );
    expect(planned.map((p) => [p.session, p.units, p.chats, p.added])).toEqual([
      ['north', 3, 30, true],
      ['south', 3, 30, true],
    ]);
    const order: string[] = [];
    for (;;) {
      const [job] = await boss.fetch<UnitJobData>(UNIT_QUEUE);
      if (!job) break;
      order.push(`${job.data.session}#${job.data.unit}`);
    }
    expect(order.slice(0, 2).sort()).toEqual(['north#0', 'south#0']);
    expect(order.slice(2, 4).sort()).toEqual(['north#1', 'south#1']);
    expect(order).toHaveLength(6);
  });

  it('keys a plan by what was asked, not when: --days 30 today and in a minute is the same plan', () => {
    const request = { ...REQUEST, windowRequest: { days: 30 } };
    expect(planKey(request, 'http://waha:3000', 'sales')).toBe(
      planKey({ ...request }, 'http://waha:3000', 'sales'),
    );
    expect(planKey(request, 'http://waha:3000', 'sales')).not.toBe(
      planKey(request, 'http://waha:3000', 'support'),
    );
    expect(planKey(request, 'http://waha:3000', 'sales')).not.toBe(
      planKey({ ...request, windowRequest: { days: 31 } }, 'http://waha:3000', 'sales'),
    );
    expect(resolveWindow({ days: 1 }, 86_400_000 * 2)).toEqual({ fromS: 86_400, toS: 172_800 });
    expect(resolveWindow({ days: 30 }, 86_400_000)).toEqual({ fromS: 0, toS: 86_400 });
  });
});
