import os from 'node:os';
import { setMaxListeners } from 'node:events';
import { randomBytes } from 'node:crypto';
import type PgBoss from 'pg-boss';
import type { BatchWriter, TimeWindow } from '../domain.js';
import { errorMessage, InterruptedError, KnownError, EXIT } from '../errors.js';
import { runImport, type ResumeCursor } from '../import/runner.js';
import type { RunLog } from '../import/run-log.js';
import { formatCount, formatDuration } from '../import/summary.js';
import { SILENT_REPORTER, type Reporter } from '../report/reporter.js';
import { strategyNamed } from '../strategies/registry.js';
import type { WahaClient } from '../waha/client.js';
import { redactUrl } from '../util/redact.js';
import type { Sql } from '../db/connect.js';
import { checkedWriter } from '../db/writer.js';
import type { FailedChatStore } from '../db/failed-chats.js';
import { formKey, type SyncMarks } from '../db/sync.js';
import { bossSchema, bossTxDb, ensureQueue, jobState, PLAN_QUEUE_PREFIX, UNIT_QUEUE } from './boss.js';
import { shareLimit, type SharedLimit } from './share.js';
import { chatFromQueue, planImport, type PlanRequest, type UnitJobData } from './plan.js';

/** A job another worker has taken over (this one was too slow, and pg-boss expired it). */
export class JobTakenOverError extends KnownError {
  readonly exitCode = EXIT.importFailed;
}

export interface WorkerSettings {
  /** Unit jobs this process works on at once. */
  jobs: number;
  /** Seconds between two looks at an empty queue. */
  pollS: number;
  /** Exit once no unit job is waiting, retrying or running anywhere (rather than waiting for more). */
  once: boolean;
  /** After SIGTERM, seconds the jobs in flight get to finish before they are handed back. */
  shutdownGraceS: number;
  /** Chat list requests: chats per page. */
  chatPageSize: number;
}

/** What a worker needs of the opened database (the CLI's Store has it). */
export interface WorkerStore {
  sql: Sql;
  writer: BatchWriter;
  syncMarks(session: string): Promise<SyncMarks>;
  failedChats: FailedChatStore;
}

export interface WorkerDeps {
  store: WorkerStore;
  boss: PgBoss;
  schema: string;
  /** A WAHA client per server, with this worker's API key and its concurrency limit for that server. */
  wahaFor(url: string): WahaClient;
  /** The concurrency the strategies use against one server (the shared adaptive controller, or a number). */
  concurrencyFor(url: string): number | import('../concurrency/limiter.js').ConcurrencyLimit;
  reporter: Reporter;
  /** Aborted: stop taking jobs; the jobs in flight get the grace period. */
  stopping: AbortSignal;
  /** Aborted: the jobs in flight stop now and are handed back. */
  abort: AbortSignal;
}

export interface WorkerOutcome {
  jobsDone: number;
  jobsFailed: number;
  /** Jobs handed back unfinished at shutdown (another worker, or this one's next start, takes them). */
  jobsHandedBack: number;
  messagesFetched: number;
  inserted: number;
}

const HEARTBEAT_MS = 5000;
const SCHEDULE_REFRESH_MS = 15_000;

/** `<host>:<pid>:<random>`: unique across machines and restarts, readable in `status`. */
export function workerId(): string {
  return `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

/**
 * One worker process: takes unit jobs (and schedule firings) from pg-boss until stopped, or with `once`
 * until the queue is drained. Each unit is imported through the same runner, paging and writer as `run`.
 */
export async function runWorker(deps: WorkerDeps, settings: WorkerSettings): Promise<WorkerOutcome> {
  const { store, boss, schema, reporter } = deps;
  const sql = store.sql;
  const id = workerId();
  const outcome: WorkerOutcome = {
    jobsDone: 0,
    jobsFailed: 0,
    jobsHandedBack: 0,
    messagesFetched: 0,
    inserted: 0,
  };
  const urls = new Set<string>();
  /** Per WAHA server, this worker's limit split among its jobs against that server. */
  const shares = new Map<string, SharedLimit>();
  const shareFor = (url: string): SharedLimit => {
    let found = shares.get(url);
    if (!found) {
      found = shareLimit(deps.concurrencyFor(url));
      shares.set(url, found);
    }
    return found;
  };
  await sql`
    insert into ${sql(schema)}.queue_workers (id, host, pid, state)
    values (${id}, ${os.hostname()}, ${process.pid}, 'running')`;
  reporter.info(`Worker ${id} started: up to ${settings.jobs} jobs at once`);
  const heartbeat = setInterval(() => {
    sql`
      update ${sql(schema)}.queue_workers set last_seen_at = now(), waha_urls = ${[...urls]},
        state = ${deps.stopping.aborted ? 'stopping' : 'running'}, jobs_done = ${outcome.jobsDone}
      where id = ${id}`.catch((error: unknown) => reporter.warn(`worker heartbeat: ${errorMessage(error)}`));
  }, HEARTBEAT_MS);
  heartbeat.unref();

  /** Aborted: the jobs in flight stop and are handed back (the grace period is over, or a second signal). */
  const handBack = new AbortController();
  setMaxListeners(0, handBack.signal);
  deps.abort.addEventListener('abort', () => handBack.abort(), { once: true });
  const inFlight = new Set<Promise<unknown>>();
  const track = <T>(work: Promise<T>): Promise<T> => {
    inFlight.add(work);
    void work.finally(() => inFlight.delete(work)).catch(() => undefined);
    return work;
  };

  const settle = (job: PgBoss.JobWithMetadata<UnitJobData>, how: 'complete' | 'fail'): Promise<boolean> =>
    settleJob(sql, boss, schema, job, how);

  const handleUnit = async (job: PgBoss.JobWithMetadata<UnitJobData>): Promise<void> => {
    const data = job.data;
    urls.add(redactUrl(data.wahaUrl));
    const label = `plan #${data.planId} job ${data.unit + 1} (session "${data.session}", ${formatCount(data.chats.length)} chats${job.retryCount > 0 ? `, attempt ${job.retryCount + 1}` : ''})`;
    const [unit] = await sql<Array<{ plan_id: string }>>`
      update ${sql(schema)}.queue_units set state = 'running', worker = ${id}, attempts = attempts + 1,
        started_at = now(), finished_at = null, error = null
      where job_id = ${job.id} returning plan_id`;
    if (!unit) {
      reporter.warn(`${label}: its plan is gone from the database; dropping the job`);
      await settle(job, 'complete');
      return;
    }
    reporter.info(`${label}: started`);
    const startedMs = Date.now();
    const chats = data.chats.map((chat) => chatFromQueue(data.session, chat));
    // A job tried again (its worker died, was too slow, or failed) skips the chats the database already
    // holds complete for this window and fetches the others again (written idempotently). A first attempt
    // fetches every chat, as `run` does: a new plan also refreshes edits and acks of what is stored.
    const retried = !data.incremental && job.retryCount > 0;
    const marks: SyncMarks = retried ? await store.syncMarks(data.session) : new Map<string, TimeWindow>();
    const failed = retried ? await store.failedChats.list(data.session) : [];
    const cursor: ResumeCursor = {
      id: undefined,
      isCompleted: completeBeforeRetry(chats, marks, failed, data.window),
      resumeAt: () => undefined,
      recordCommit: async () => undefined,
      complete: async () => undefined,
      flush: async () => undefined,
    };
    // Before every batch: is the job still this worker's? pg-boss may have expired it and handed it on.
    const stillMine = async (): Promise<void> => {
      const state = await jobState(sql, schema, job.id);
      if (!state || state.state !== 'active' || state.retryCount !== job.retryCount) {
        throw new JobTakenOverError(
          `${label} was taken over by another worker (it ran longer than its --job-timeout); stopped before writing again`,
          'Give jobs more time (enqueue --job-timeout) or fewer chats (--chats-per-job).',
        );
      }
    };
    const writer: BatchWriter = checkedWriter(store.writer, stillMine);
    const runLog: RunLog = {
      start: async () => Number(unit.plan_id),
      finish: async (_runId, summary) => {
        const state =
          summary.status === 'succeeded' ? 'done' : summary.status === 'partial' ? 'partial' : 'failed';
        await sql`
          update ${sql(schema)}.queue_units set state = ${state}, finished_at = now(),
            messages_fetched = ${summary.messagesFetched}, inserted = ${summary.inserted},
            updated = ${summary.updated}, unchanged = ${summary.unchanged},
            chats_failed = ${summary.chatsFailed}, waha_requests = ${summary.wahaRequests},
            error = ${summary.error ?? null}
          where job_id = ${job.id} and worker = ${id}`;
      },
    };
    const jobAbort = new AbortController();
    setMaxListeners(0, jobAbort.signal);
    const share = shareFor(data.wahaUrl).join();
    const onAbort = (): void => jobAbort.abort();
    handBack.signal.addEventListener('abort', onAbort);
    if (handBack.signal.aborted) jobAbort.abort();
    try {
      const result = await runImport(
        {
          waha: deps.wahaFor(data.wahaUrl),
          writer,
          syncMarks: store.syncMarks,
          runLog,
          // Recorded without a run id: a job is not a row of import_runs.
          failedChats: {
            record: (failure) => store.failedChats.record(failure, null),
            list: (session) => store.failedChats.list(session),
          },
          reporter: jobReporter(reporter, label),
          signal: jobAbort.signal,
          checkpoint: cursor,
        },
        {
          session: data.session,
          window: data.window,
          strategy: strategyNamed(data.strategy),
          strategyOptions: {
            concurrency: share,
            chunkSize: data.chunk,
            batchSize: data.batchSize,
            flushMs: data.flushMs,
          },
          pageSize: data.pageSize,
          pageEnd: data.pageEnd,
          emptyPagesToEnd: data.emptyPages,
          maxSlices: data.maxSlices ?? 1,
          chatPageSize: settings.chatPageSize,
          ...(data.incremental ? { incremental: data.incremental } : {}),
          recordedOptions: {},
          chats,
        },
      );
      outcome.messagesFetched += result.summary.messagesFetched;
      outcome.inserted += result.summary.inserted;
      if (result.error !== undefined) {
        if (result.error instanceof InterruptedError || jobAbort.signal.aborted) {
          outcome.jobsHandedBack++;
          await sql`
            update ${sql(schema)}.queue_units set state = 'waiting', error = 'handed back: the worker stopped'
            where job_id = ${job.id} and worker = ${id}`.catch(() => undefined);
          // Failed now, not left to expire: pg-boss offers it again after its retry delay.
          await settle(job, 'fail');
          reporter.warn(`${label}: handed back to the queue (the worker is stopping)`);
          return;
        }
        outcome.jobsFailed++;
        throw result.error;
      }
      if (!(await settle(job, 'complete'))) {
        throw new JobTakenOverError(
          `${label} was taken over by another worker before it could be marked complete (it ran longer than its --job-timeout)`,
          'Give jobs more time (enqueue --job-timeout) or fewer chats (--chats-per-job).',
        );
      }
      outcome.jobsDone++;
      reporter.info(
        `${label}: ${result.summary.status === 'partial' ? `done but ${formatCount(result.summary.chatsFailed)} chats failed` : 'done'}, ` +
          `${formatCount(result.summary.messagesFetched)} messages fetched, ${formatCount(result.summary.inserted)} new, ` +
          `${formatDuration(Date.now() - startedMs)}`,
      );
    } catch (error) {
      reporter.warn(`${label}: failed: ${errorMessage(error)}`);
      // A job taken over is another worker's now: nothing of it is this worker's to record or settle.
      if (!(error instanceof JobTakenOverError)) {
        await sql`
          update ${sql(schema)}.queue_units set state = 'failed', finished_at = now(), error = ${errorMessage(error)}
          where job_id = ${job.id} and worker = ${id}`.catch(() => undefined);
        // pg-boss records the failure and, while retries remain, offers the job again after a backoff.
        await settle(job, 'fail').catch((settleError: unknown) =>
          reporter.warn(`${label}: could not record the failure in the queue: ${errorMessage(settleError)}`),
        );
      }
    } finally {
      handBack.signal.removeEventListener('abort', onAbort);
      share.release();
    }
  };

  const handlePlan = async (queue: string, job: PgBoss.JobWithMetadata<PlanRequest>): Promise<void> => {
    const name = queue.slice(PLAN_QUEUE_PREFIX.length);
    await sql`
      insert into ${sql(schema)}.queue_firings (job_id, schedule, worker) values (${job.id}, ${name}, ${id})
      on conflict (job_id) do update set worker = excluded.worker, error = null`;
    reporter.info(`Schedule "${name}" fired: planning`);
    try {
      const planned = await planImport(
        {
          sql,
          schema,
          boss,
          wahaFor: deps.wahaFor,
          reporter: jobReporter(reporter, `schedule "${name}"`, true),
          signal: handBack.signal,
          nowMs: Date.now(),
        },
        job.data,
        `schedule ${name}`,
      );
      await sql`
        update ${sql(schema)}.queue_firings set plans_added = ${planned.filter((p) => p.added).length},
          plans_pending = ${planned.filter((p) => !p.added).length}
        where job_id = ${job.id}`;
    } catch (error) {
      await sql`update ${sql(schema)}.queue_firings set error = ${errorMessage(error)} where job_id = ${job.id}`.catch(
        () => undefined,
      );
      reporter.warn(`schedule "${name}": planning failed: ${errorMessage(error)}`);
      throw error;
    }
  };

  const workerIds: string[] = [];
  const workOptions = {
    batchSize: 1,
    pollingIntervalSeconds: settings.pollS,
    includeMetadata: true,
  } as const;
  // Unit jobs are fetched and settled by hand (not through pg-boss's work()), so that completing or
  // failing one is fenced to the attempt this worker holds (see settle).
  /** Aborted: take no more jobs (a signal came, or with --once the queue is drained). */
  const taking = new AbortController();
  deps.stopping.addEventListener('abort', () => taking.abort(), { once: true });
  if (deps.stopping.aborted) taking.abort();
  const idle = (): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(done, settings.pollS * 1000);
      function done(): void {
        clearTimeout(timer);
        taking.signal.removeEventListener('abort', done);
        resolve();
      }
      taking.signal.addEventListener('abort', done, { once: true });
    });
  /** The error of the last failed attempt to take a job, until one succeeds. */
  let fetchFailure: string | undefined;
  const slot = async (): Promise<void> => {
    while (!taking.signal.aborted) {
      let job: PgBoss.JobWithMetadata<UnitJobData> | undefined;
      try {
        job = await takeUnitJob(boss);
        if (fetchFailure !== undefined) reporter.info('The job queue answers again');
        fetchFailure = undefined;
      } catch (error) {
        // Said once per cause, not at every poll of a worker whose database is away for an hour.
        const message = errorMessage(error);
        if (message !== fetchFailure) reporter.warn(`taking a job from the queue: ${message}; trying again`);
        fetchFailure = message;
      }
      if (job && taking.signal.aborted) {
        // Fetched as the worker was stopping: given back untouched rather than left active until it expires.
        outcome.jobsHandedBack++;
        await settle(job, 'fail').catch((error: unknown) =>
          reporter.warn(`handing a job back: ${errorMessage(error)}`),
        );
      } else if (job) await track(handleUnit(job));
      else await idle();
    }
  };
  const slots = Array.from({ length: settings.jobs }, () => slot());
  const planQueues = new Set<string>();
  const refreshSchedules = async (): Promise<void> => {
    for (const schedule of await boss.getSchedules()) {
      if (!schedule.name.startsWith(PLAN_QUEUE_PREFIX) || planQueues.has(schedule.name)) continue;
      planQueues.add(schedule.name);
      await ensureQueue(boss, schedule.name);
      workerIds.push(
        await boss.work<PlanRequest>(schedule.name, workOptions, async ([job]) => {
          if (job) await track(handlePlan(schedule.name, job));
        }),
      );
    }
  };
  await refreshSchedules();
  const scheduleTimer = setInterval(() => {
    refreshSchedules().catch((error: unknown) =>
      reporter.warn(`reading the schedules: ${errorMessage(error)}`),
    );
  }, SCHEDULE_REFRESH_MS);
  scheduleTimer.unref();

  try {
    await new Promise<void>((resolve) => {
      if (deps.stopping.aborted) return resolve();
      deps.stopping.addEventListener('abort', () => resolve(), { once: true });
      if (settings.once) {
        const look = async (): Promise<void> => {
          if (deps.stopping.aborted) return;
          try {
            if (inFlight.size === 0 && !(await unitJobsLeft(store, schema))) return resolve();
          } catch (error) {
            reporter.warn(`looking at the queue: ${errorMessage(error)}`);
          }
          setTimeout(() => void look(), 1000).unref();
        };
        setTimeout(() => void look(), 1000).unref();
      }
    });
    // Stop taking jobs, then give those in flight their grace period before handing them back.
    taking.abort();
    for (const workId of workerIds) await boss.offWork({ id: workId }).catch(() => undefined);
    if (inFlight.size > 0) {
      reporter.info(
        `Stopping: ${inFlight.size} job${inFlight.size === 1 ? '' : 's'} in flight get ${settings.shutdownGraceS} s to finish`,
      );
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...inFlight]),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, settings.shutdownGraceS * 1000))),
        new Promise<void>((resolve) =>
          handBack.signal.addEventListener('abort', () => resolve(), { once: true }),
        ),
      ]);
      clearTimeout(timer);
      if (inFlight.size > 0) {
        // Out of time: each job in flight stops (its batch in flight commits or rolls back) and goes back
        // to the queue, where pg-boss offers it again (to another worker, or this one's next start).
        handBack.abort();
        await Promise.allSettled([...inFlight]);
      }
    }
    // Every slot ends its loop: a fetch still under way when the worker stopped has handed its job back.
    await Promise.allSettled(slots);
    await Promise.allSettled([...inFlight]);
    return outcome;
  } finally {
    clearInterval(heartbeat);
    clearInterval(scheduleTimer);
    await sql`
      update ${sql(schema)}.queue_workers set state = 'stopped', last_seen_at = now(), jobs_done = ${outcome.jobsDone}
      where id = ${id}`.catch(() => undefined);
  }
}

/**
 * The next unit job, or undefined when none waits. pg-boss's own `fetch` answers "no job" when its
 * statement fails (it expects only a unique-key race there): a worker whose database connections were
 * dead or black-holed polled "no job" at every `--poll` without a word. The statement goes through a db
 * that keeps its error, and any error but that race is thrown.
 */
export async function takeUnitJob(boss: PgBoss): Promise<PgBoss.JobWithMetadata<UnitJobData> | undefined> {
  const db = boss.getDb();
  let failure: unknown;
  const watched: PgBoss.Db = {
    executeSql: (text, values) =>
      db.executeSql(text, values).catch((error: unknown) => {
        failure = error;
        throw error;
      }),
  };
  const [job] = await boss.fetch<UnitJobData>(UNIT_QUEUE, {
    batchSize: 1,
    includeMetadata: true,
    db: watched,
  });
  if (failure !== undefined && (failure as { code?: unknown }).code !== '23505') throw failure;
  return job;
}

/**
 * Completes or fails a unit job, but only the attempt `job` is: pg-boss 10 completes and fails jobs by id
 * alone, so a worker whose job expired and went to another worker would otherwise settle the new attempt
 * (and a failure would even send it back to the queue while it runs). The job's row is locked and
 * checked in the transaction that settles it. False: the attempt is no longer this one.
 */
export async function settleJob(
  sql: Sql,
  boss: PgBoss,
  schema: string,
  job: { id: string; retryCount: number },
  how: 'complete' | 'fail',
): Promise<boolean> {
  return sql.begin(async (tx) => {
    const [row] = await tx<Array<{ state: string; retry_count: number }>>`
      select state::text as state, retry_count from ${tx(bossSchema(schema))}.job
      where name = ${UNIT_QUEUE} and id = ${job.id} for update`;
    if (!row || row.state !== 'active' || row.retry_count !== job.retryCount) return false;
    const db = bossTxDb(tx as unknown as Sql);
    // (pg-boss's typings omit the data argument these take before the options.)
    const noOutput = null as unknown as object;
    if (how === 'complete') await boss.complete(UNIT_QUEUE, job.id, noOutput, { db });
    else await boss.fail(UNIT_QUEUE, job.id, noOutput, { db });
    return true;
  });
}

/** Is any unit job waiting, retrying or running anywhere? */
async function unitJobsLeft(store: WorkerStore, schema: string): Promise<boolean> {
  const sql = store.sql;
  const [row] = await sql<[{ left: boolean }]>`
    select exists (select 1 from ${sql(bossSchema(schema))}.job
      where name = ${UNIT_QUEUE} and state in ('created', 'retry', 'active')) as left`;
  return row?.left === true;
}

function covers(mark: TimeWindow | undefined, window: TimeWindow): boolean {
  return mark !== undefined && mark.fromS <= window.fromS && mark.toS >= window.toS;
}

/**
 * Which chats (by listed id) a job tried again may skip: those the database holds read under that very
 * id for the job's window (chat_sync_forms), and not still failed. Not the stored chat's mark: one listed
 * id completing sets it while another id of the same person (a WAHA that does not merge `@lid` and
 * number), maybe in another job, failed or was never read.
 */
export function completeBeforeRetry(
  chats: ReadonlyArray<{ id: string; chatId: string }>,
  marks: SyncMarks,
  failed: ReadonlyArray<{ chatId: string }>,
  window: TimeWindow,
): (listedId: string) => boolean {
  const storedOf = new Map(chats.map((chat) => [chat.id, chat.chatId]));
  const stillFailed = new Set(failed.map((f) => f.chatId));
  return (listedId) =>
    !stillFailed.has(listedId) &&
    covers(marks.forms?.get(formKey(storedOf.get(listedId) ?? listedId, listedId)), window);
}

/** The runner's reporter inside a job: its warnings, prefixed; its steps and progress stay quiet. */
function jobReporter(reporter: Reporter, label: string, steps = false): Reporter {
  return {
    ...SILENT_REPORTER,
    stepDone: (text) => (steps ? reporter.info(`${label}: ${text}`) : undefined),
    info: (text) => (steps ? reporter.info(`${label}: ${text}`) : undefined),
    warn: (text) => reporter.warn(`${label}: ${text}`),
    error: (error) => reporter.warn(`${label}: ${errorMessage(error)}`),
  };
}
