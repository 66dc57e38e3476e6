import type PgBoss from 'pg-boss';
import { migrate } from '../src/db/index.js';
import { bossSchema, startBoss, UNIT_QUEUE } from '../src/queue/boss.js';
import { settleJob } from '../src/queue/worker.js';
import { testDatabaseUrl, useTestDatabase } from './support/db.js';

/**
 * pg-boss 10 completes and fails jobs by id alone. A worker whose job expired and was handed to another
 * worker must not settle the new attempt: settleJob is fenced to the attempt it holds.
 */
const db = useTestDatabase();
let boss: PgBoss | undefined;
const queueSchemas: string[] = [];
beforeEach(() => void queueSchemas.push(bossSchema(db.schema)));
afterEach(async () => {
  await boss?.stop({ graceful: false, wait: true, close: true });
  boss = undefined;
  for (const name of queueSchemas.splice(0)) await db.sql`drop schema if exists ${db.sql(name)} cascade`;
});

async function expireActive(schema: string): Promise<void> {
  // What pg-boss's maintenance does once started_on + expire_in has passed, without waiting for it.
  await db.sql`update ${db.sql(bossSchema(schema))}.job set started_on = now() - interval '1 hour' where state = 'active'`;
  await boss!.expire();
}

describe('settleJob: completing or failing only the attempt a worker holds', () => {
  it('an expired attempt settles nothing; the attempt that took over settles its job', async () => {
    await migrate(db.sql, db.schema);
    boss = await startBoss({ url: testDatabaseUrl(), schema: db.schema }, () => undefined);
    await boss.send(UNIT_QUEUE, { n: 1 }, { retryLimit: 3, retryDelay: 0, expireInSeconds: 60 });
    const [first] = await boss.fetch<object>(UNIT_QUEUE, { includeMetadata: true });
    expect(first).toBeDefined();
    await expireActive(db.schema);
    const [second] = await boss.fetch<object>(UNIT_QUEUE, { includeMetadata: true });
    expect(second!.id).toBe(first!.id);
    expect(second!.retryCount).toBe(first!.retryCount + 1);

    // The first attempt's worker comes back: neither completing nor failing touches the second attempt.
    expect(await settleJob(db.sql, boss, db.schema, first!, 'complete')).toBe(false);
    expect(await settleJob(db.sql, boss, db.schema, first!, 'fail')).toBe(false);
    const during = await boss.getJobById(UNIT_QUEUE, first!.id);
    expect(during).toMatchObject({ state: 'active', retryCount: second!.retryCount });

    expect(await settleJob(db.sql, boss, db.schema, second!, 'complete')).toBe(true);
    expect(await boss.getJobById(UNIT_QUEUE, first!.id)).toMatchObject({ state: 'completed' });
  });

  it('a failure of the attempt held goes back to the queue for a retry', async () => {
    await migrate(db.sql, db.schema);
    boss = await startBoss({ url: testDatabaseUrl(), schema: db.schema }, () => undefined);
    await boss.send(UNIT_QUEUE, { n: 2 }, { retryLimit: 1, retryDelay: 0 });
    const [job] = await boss.fetch<object>(UNIT_QUEUE, { includeMetadata: true });
    expect(await settleJob(db.sql, boss, db.schema, job!, 'fail')).toBe(true);
    expect(await boss.getJobById(UNIT_QUEUE, job!.id)).toMatchObject({ state: 'retry' });
    const [again] = await boss.fetch<object>(UNIT_QUEUE, { includeMetadata: true });
    expect(again).toMatchObject({ id: job!.id, retryCount: 1 });
  });
});
