import type { Sql } from '../db/connect.js';
import { formatCount, formatWindow } from '../import/summary.js';
import { bossInstalled, bossSchema } from './boss.js';

/** What `status` shows of the queue: the newest plans with their jobs, the workers, what waits. */
export interface QueueStatus {
  plans: Array<{
    id: number;
    trigger: string;
    wahaUrl: string;
    session: string;
    window: { fromS: number; toS: number };
    createdAt: Date;
    chats: number;
    jobs: { total: number; waiting: number; running: number; done: number; partial: number; failed: number };
    messagesFetched: number;
    inserted: number;
    updated: number;
    chatsFailed: number;
    /** Every job finished (done, partial, or failed with no retry left). */
    finished: boolean;
  }>;
  running: Array<{
    planId: number;
    job: number;
    worker: string | null;
    startedAt: Date | null;
    attempt: number;
  }>;
  failed: Array<{ planId: number; job: number; attempts: number; error: string | null; willRetry: boolean }>;
  workers: Array<{
    id: string;
    state: string;
    lastSeenAt: Date;
    secondsSinceSeen: number;
    jobsDone: number;
    wahaUrls: string[];
  }>;
  schedules: Array<{ name: string; cron: string; timezone: string }>;
}

/** Reads the queue's state; undefined when no queue command ever ran against this schema. */
export async function readQueueStatus(
  sql: Sql,
  schema: string,
  limit: number,
  session?: string,
): Promise<QueueStatus | undefined> {
  const [tables] = await sql<[{ found: boolean }]>`
    select to_regclass(${`${schema}.queue_units`}) is not null as found`;
  if (!tables?.found || !(await bossInstalled(sql, schema))) return undefined;
  const boss = sql(bossSchema(schema));
  const s = sql(schema);
  // A unit's own row says what its last attempt did; pg-boss's job says whether it is waiting, running
  // or failed for good (a worker killed mid-job leaves its row `running` until the job is taken over).
  const units = await sql<
    Array<{
      plan_id: string;
      unit: number;
      state: string;
      worker: string | null;
      attempts: number;
      started_at: Date | null;
      error: string | null;
      job_state: string | null;
      messages_fetched: string;
      inserted: string;
      updated: string;
      chats_failed: number;
    }>
  >`
    with recent as (
      select id from ${s}.queue_plans
      where ${session === undefined ? sql`true` : sql`session = ${session}`}
      order by id desc limit ${limit})
    select u.plan_id, u.unit, u.state, u.worker, u.attempts, u.started_at, u.error,
      coalesce(j.state::text, a.state::text) as job_state,
      u.messages_fetched, u.inserted, u.updated, u.chats_failed
    from ${s}.queue_units u
    left join ${boss}.job j on j.id = u.job_id
    left join ${boss}.archive a on a.id = u.job_id and j.id is null
    where u.plan_id in (select id from recent)
    order by u.plan_id desc, u.unit`;
  const planRows = await sql<
    Array<{
      id: string;
      trigger: string;
      waha_url: string;
      session: string;
      window_from_s: string;
      window_to_s: string;
      created_at: Date;
      chats: number;
      units: number;
    }>
  >`
    select id, trigger, waha_url, session, window_from_s, window_to_s, created_at, chats, units
    from ${s}.queue_plans
    where ${session === undefined ? sql`true` : sql`session = ${session}`}
    order by id desc limit ${limit}`;
  const workers = await sql<
    Array<{
      id: string;
      state: string;
      last_seen_at: Date;
      seconds: number;
      jobs_done: number;
      waha_urls: string[];
    }>
  >`
    select id, state, last_seen_at, extract(epoch from now() - last_seen_at)::float8 as seconds, jobs_done, waha_urls
    from ${s}.queue_workers
    where state <> 'stopped' or last_seen_at > now() - interval '1 day'
    order by last_seen_at desc limit 50`;
  const schedules = await sql<Array<{ name: string; cron: string; timezone: string }>>`
    select name, cron, timezone from ${boss}.schedule order by name`;

  const status: QueueStatus = {
    plans: [],
    running: [],
    failed: [],
    workers: workers.map((w) => ({
      id: w.id,
      // A worker that stopped beating (killed, its machine gone) is not running, whatever it last wrote.
      state: w.state !== 'stopped' && w.seconds > 30 ? 'gone' : w.state,
      lastSeenAt: w.last_seen_at,
      secondsSinceSeen: Math.round(w.seconds),
      jobsDone: w.jobs_done,
      wahaUrls: w.waha_urls,
    })),
    schedules: schedules.map((x) => ({ ...x, name: x.name.replace(/^waha-import-plan-/, '') })),
  };
  for (const plan of planRows) {
    const own = units.filter((u) => u.plan_id === plan.id);
    const jobs = { total: plan.units, waiting: 0, running: 0, done: 0, partial: 0, failed: 0 };
    let finished = true;
    for (const u of own) {
      const jobState = u.job_state;
      if (jobState === 'active') {
        jobs.running++;
        finished = false;
        status.running.push({
          planId: Number(plan.id),
          job: u.unit + 1,
          worker: u.worker,
          startedAt: u.started_at,
          attempt: u.attempts,
        });
      } else if (jobState === 'created' || jobState === 'retry') {
        jobs.waiting++;
        finished = false;
        if (u.state === 'failed') {
          status.failed.push({
            planId: Number(plan.id),
            job: u.unit + 1,
            attempts: u.attempts,
            error: u.error,
            willRetry: true,
          });
        }
      } else if (jobState === 'failed' || jobState === 'cancelled' || u.state === 'failed') {
        jobs.failed++;
        status.failed.push({
          planId: Number(plan.id),
          job: u.unit + 1,
          attempts: u.attempts,
          error:
            u.error ??
            (jobState === 'failed'
              ? 'failed with no retry left (its worker died or it ran too long)'
              : jobState),
          willRetry: false,
        });
      } else if (u.state === 'partial') {
        jobs.partial++;
      } else {
        jobs.done++;
      }
    }
    status.plans.push({
      id: Number(plan.id),
      trigger: plan.trigger,
      wahaUrl: plan.waha_url,
      session: plan.session,
      window: { fromS: Number(plan.window_from_s), toS: Number(plan.window_to_s) },
      createdAt: plan.created_at,
      chats: plan.chats,
      jobs,
      messagesFetched: own.reduce((n, u) => n + Number(u.messages_fetched), 0),
      inserted: own.reduce((n, u) => n + Number(u.inserted), 0),
      updated: own.reduce((n, u) => n + Number(u.updated), 0),
      chatsFailed: own.reduce((n, u) => n + u.chats_failed, 0),
      finished,
    });
  }
  return status;
}

function when(date: Date): string {
  return date.toISOString().replace(/\.\d+Z$/, 'Z');
}

export function queueStatusLines(status: QueueStatus, schema: string): string[] {
  const lines = [`Job queue (pg-boss, schema "${bossSchema(schema)}"), plans newest first:`];
  if (status.plans.length === 0) lines.push('  none queued yet');
  for (const p of status.plans) {
    const j = p.jobs;
    const parts = [
      `${j.done} done`,
      ...(j.partial ? [`${j.partial} partial`] : []),
      ...(j.running ? [`${j.running} running`] : []),
      ...(j.waiting ? [`${j.waiting} waiting`] : []),
      ...(j.failed ? [`${j.failed} failed`] : []),
    ];
    lines.push(
      `  #${p.id} ${when(p.createdAt)} ${p.session} (${p.trigger}) ${p.finished ? 'finished' : 'in progress'}: ` +
        `${j.total} jobs: ${parts.join(', ')}; ${formatCount(p.messagesFetched)} messages fetched, ` +
        `${formatCount(p.inserted)} new; ${formatCount(p.chats)} chats, window ${formatWindow(p.window)}`,
    );
  }
  if (status.running.length > 0) {
    lines.push('', 'Jobs running:');
    for (const r of status.running) {
      lines.push(
        `  plan #${r.planId} job ${r.job} on ${r.worker ?? '?'}` +
          (r.startedAt ? ` since ${when(r.startedAt)}` : '') +
          (r.attempt > 1 ? ` (attempt ${r.attempt})` : ''),
      );
    }
  }
  if (status.failed.length > 0) {
    lines.push('', 'Jobs failed:');
    for (const f of status.failed) {
      lines.push(
        `  plan #${f.planId} job ${f.job} after ${f.attempts} attempt${f.attempts === 1 ? '' : 's'}` +
          `${f.willRetry ? ' (will be retried)' : ''}: ${f.error ?? 'no error recorded'}`,
      );
    }
  }
  lines.push('', 'Workers:');
  if (status.workers.length === 0) lines.push('  none has started yet');
  for (const w of status.workers) {
    lines.push(
      `  ${w.id} ${w.state}, last seen ${w.secondsSinceSeen} s ago, ${formatCount(w.jobsDone)} jobs done` +
        (w.wahaUrls.length ? `, WAHA ${w.wahaUrls.join(', ')}` : ''),
    );
  }
  if (status.schedules.length > 0) {
    lines.push('', 'Schedules:');
    for (const x of status.schedules) lines.push(`  ${x.name}: "${x.cron}" (${x.timezone})`);
  }
  return lines;
}
