import type PgBoss from 'pg-boss';
import { migrate } from '../src/db/index.js';
import { SILENT_REPORTER } from '../src/report/reporter.js';
import { generateDataset, startSimulator, type Simulator } from '../src/sim/index.js';
import { bossSchema, startBoss, UNIT_QUEUE } from '../src/queue/boss.js';
import {
  chatFromQueue,
  planImport,
  planKey,
  resolveWindow,
  type PlanRequest,
  type UnitJobData,
} from '../src/queue/plan.js';
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

  it('plans a chat an earlier import failed that WAHA no longer lists, with what the database stored of it', async () => {
    await migrate(db.sql, db.schema);
    boss = await startBoss({ url: testDatabaseUrl(), schema: db.schema }, () => undefined);
    const sim = sims[0]!;
    const waha = createWahaClient({ baseUrl: sim.url, requestTimeoutMs: 10_000, maxResponseBytes: 2 ** 26 });
    // Two failures: one chat WAHA still lists (planned once, as listed) and one it no longer does.
    const listed = (await waha.listChats('north', { pageSize: 100, engine: 'NOWEB' }))[0]!;
    const gone = '5511900000001@c.us';
    await db.sql`
      insert into ${db.sql(db.schema)}.failed_chats (session, chat_id, reason, error)
      values ('north', ${listed.id}, 'waha-failing', 'x'), ('north', ${gone}, 'waha-failing', 'x')`;
    await db.sql`
      insert into ${db.sql(db.schema)}.chats (session, id, name, kind, raw)
      values ('north', ${gone}, 'Gone Person', 'person', ${db.sql.json({ id: gone, name: 'Gone Person' })})`;
    const [planned] = await planImport(
      {
        sql: db.sql,
        schema: db.schema,
        boss,
        wahaFor: () => waha,
        reporter: SILENT_REPORTER,
        signal: new AbortController().signal,
        nowMs: Date.now(),
      },
      { ...REQUEST, wahaUrls: [sim.url], sessions: ['north'] },
      'test',
    );
    // Before, the plan held the 30 listed chats only, and the gone chat's failure could never clear.
    expect(planned).toMatchObject({ chats: 31 });
    const jobs = await db.sql<Array<{ data: UnitJobData }>>`
      select data from ${db.sql(bossSchema(db.schema))}.job where name = ${UNIT_QUEUE}`;
    const queued = jobs.flatMap((job) => job.data.chats);
    expect(queued.filter((chat) => chat.id === listed.id)).toHaveLength(1);
    // A job's worker must know which chats WAHA no longer lists: their refusals are no sign of WAHA failing.
    expect(queued.find((chat) => chat.id === listed.id)!.unlisted).toBeUndefined();
    expect(
      chatFromQueue(
        'north',
        queued.find((chat) => chat.id === gone)!,
      ).unlisted,
    ).toBe(true);
    expect(queued.filter((chat) => chat.id === gone)).toEqual([
      expect.objectContaining({
        id: gone,
        chatId: gone,
        name: 'Gone Person',
        kind: 'person',
        unlisted: true,
      }),
    ]);
  });

  it('plans the time a moving window gained while its plan is still pending: --days 1 fired again before the first plan ran', async () => {
    await migrate(db.sql, db.schema);
    boss = await startBoss({ url: testDatabaseUrl(), schema: db.schema }, () => undefined);
    const sim = sims[0]!;
    const waha = createWahaClient({ baseUrl: sim.url, requestTimeoutMs: 10_000, maxResponseBytes: 2 ** 26 });
    const plan = (nowMs: number, windowRequest: PlanRequest['windowRequest']) =>
      planImport(
        {
          sql: db.sql,
          schema: db.schema,
          boss: boss!,
          wahaFor: () => waha,
          reporter: SILENT_REPORTER,
          signal: new AbortController().signal,
          nowMs,
        },
        { ...REQUEST, wahaUrls: [sim.url], windowRequest },
        'test',
      );
    const nowMs = Date.now();
    const [first] = await plan(nowMs, { days: 1 });
    expect(first).toMatchObject({ added: true, window: resolveWindow({ days: 1 }, nowMs) });
    // The same request in the same second: nothing added.
    expect((await plan(nowMs, { days: 1 }))[0]).toMatchObject({ added: false, planId: first!.planId });
    // 20 hours on, the first plan's jobs still waiting (no worker ran): the time since is planned, from an
    // hour before the first plan's end. Before, nothing was added: a firing a day on found the same, and
    // the day between the two windows was read by no plan.
    const firstToS = first!.window.toS;
    const [later] = await plan(nowMs + 20 * 3_600_000, { days: 1 });
    expect(later).toMatchObject({
      added: true,
      window: { fromS: firstToS - 3600, toS: firstToS + 20 * 3600 },
    });
    // Then a day on from that one, as asked: its window starts after the second plan's end, and is planned.
    const [third] = await plan(nowMs + 44 * 3_600_000, { days: 1 });
    expect(third).toMatchObject({
      added: true,
      window: { fromS: firstToS + 20 * 3600, toS: firstToS + 44 * 3600 },
    });
    const jobs = await db.sql<Array<{ from_s: string; to_s: string }>>`
      select distinct data->'window'->>'fromS' as from_s, data->'window'->>'toS' as to_s
      from ${db.sql(bossSchema(db.schema))}.job where name = ${UNIT_QUEUE} order by 1`;
    expect(jobs).toEqual([
      { from_s: String(first!.window.fromS), to_s: String(firstToS) },
      { from_s: String(firstToS - 3600), to_s: String(firstToS + 20 * 3600) },
      { from_s: String(firstToS + 20 * 3600), to_s: String(firstToS + 44 * 3600) },
    ]);
    // An incremental request pending: its next plan starts from the marks; nothing added.
    const [incremental] = await plan(nowMs, { days: 1, incrementalOverlapS: 3600 });
    expect(incremental!.added).toBe(true);
    expect((await plan(nowMs + 86_400_000, { days: 1, incrementalOverlapS: 3600 }))[0]).toMatchObject({
      added: false,
      planId: incremental!.planId,
    });
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
