import type { Command } from 'commander';
import type PgBoss from 'pg-boss';
import cronParser from 'cron-parser';
import { resolveCommandOptions, resolveRunConfig, type RunConfig } from '../config/run-config.js';
import { ENQUEUE_FLAGS, ENQUEUE_SPECS, SCHEDULE_OPTIONS, WORKER_OPTIONS } from '../config/queue-config.js';
import type { ConcurrencyController } from '../concurrency/limiter.js';
import { DEFAULT_TIMEOUTS, type DatabaseTimeouts } from '../db/connect.js';
import { errorMessage, EXIT, KnownError, UsageError } from '../errors.js';
import { formatCount } from '../import/summary.js';
import { chooseOutputMode, createReporter, isLiveTerminal, type Reporter } from '../report/reporter.js';
import { ensureQueue, PLAN_QUEUE_PREFIX, startBoss } from '../queue/boss.js';
import { planImport, type PlannedSession, type PlanRequest } from '../queue/plan.js';
import { runWorker } from '../queue/worker.js';
import { secretMasker, urlPassword } from '../util/redact.js';
import { jsonText } from '../util/terminal-text.js';
import type { WahaClient } from '../waha/client.js';
import { addOptions, examplesAndExitCodes } from './options.js';
import { limitHeapGrowth } from './heap.js';
import { connectWaha, openStore, type Store, type WahaSettings } from './wiring.js';

/**
 * Past one machine: `enqueue` plans an import as jobs in PostgreSQL (pg-boss), any number of `worker`
 * processes on any number of machines take them, and `schedule` stores a plan that fires once across
 * all workers. The paging, the writer and the per-chat sync marks are `run`'s own.
 */

function planRequest(config: RunConfig & { extra: Record<string, unknown> }): PlanRequest {
  return {
    wahaUrls: config.wahaUrls,
    sessions: config.allSessions ? 'all' : config.sessions,
    windowRequest: config.windowRequest,
    strategy: config.strategy,
    chunk: config.chunk,
    batchSize: config.batchSize,
    flushMs: config.flushMs,
    pageSize: config.pageSize,
    pageEnd: config.pageEnd,
    emptyPages: config.emptyPages,
    maxSlices: config.maxSlices,
    chatPageSize: config.chatPageSize,
    chatsPerJob: config.extra.chatsPerJob as number,
    jobTimeoutS: config.extra.jobTimeout as number,
    jobRetries: config.extra.jobRetries as number,
  };
}

/** A WAHA client per server for this process, all with its API key; each server its own concurrency. */
function wahaClients(
  settings: Omit<WahaSettings, 'url'>,
  reporter: Reporter,
): {
  wahaFor(url: string): WahaClient;
  concurrencyFor(url: string): number | ConcurrencyController;
} {
  const clients = new Map<string, { waha: WahaClient; concurrency: number | ConcurrencyController }>();
  const entry = (url: string) => {
    let found = clients.get(url);
    if (!found) {
      const { waha, concurrency } = connectWaha({ ...settings, url }, reporter);
      found = { waha: withCachedLookups(waha, LOOKUP_TTL_MS), concurrency };
      clients.set(url, found);
    }
    return found;
  };
  return { wahaFor: (url) => entry(url).waha, concurrencyFor: (url) => entry(url).concurrency };
}

/**
 * How long a worker reuses WAHA's version and a session's lid mapping across its jobs: each job would
 * otherwise ask both again, two requests in a row before its first page (0.4 s against a 200 ms WAHA).
 * The session's WORKING check is never reused: it is what tells a failing chat from a failing WAHA.
 */
const LOOKUP_TTL_MS = 60_000;

export function withCachedLookups(waha: WahaClient, ttlMs: number): WahaClient {
  let version: { atMs: number; value: ReturnType<WahaClient['version']> } | undefined;
  const lids = new Map<string, { atMs: number; value: ReturnType<WahaClient['lids']> }>();
  const fresh = (entry: { atMs: number } | undefined): boolean =>
    entry !== undefined && Date.now() - entry.atMs < ttlMs;
  const cached: Pick<WahaClient, 'version' | 'lids'> = {
    version(signal) {
      if (!fresh(version)) {
        const value = waha.version(signal);
        version = { atMs: Date.now(), value };
        value.catch(() => (version = undefined));
      }
      return version!.value;
    },
    lids(session, signal) {
      let entry = lids.get(session);
      if (!fresh(entry)) {
        const value = waha.lids(session, signal);
        entry = { atMs: Date.now(), value };
        lids.set(session, entry);
        value.catch(() => lids.delete(session));
      }
      return entry!.value;
    },
  };
  // Everything else (the counters, paging, the session check) is the client's own.
  return Object.assign(Object.create(waha) as WahaClient, cached);
}

function exitCodeFor(error: unknown): number {
  return error instanceof KnownError ? error.exitCode : EXIT.importFailed;
}

/** Opens the database and the queue; both closed by the returned function. */
async function openQueue(
  config: {
    databaseUrl: string | undefined;
    dataDir: string | undefined;
    schema: string;
    dbTimeouts?: DatabaseTimeouts;
  },
  reporter: Reporter,
  bossOptions: { schedule?: boolean; supervise?: boolean; cronMonitorIntervalSeconds?: number } = {},
): Promise<{ store: Store; boss: PgBoss; close(): Promise<void> }> {
  const store = await openStore(config, reporter);
  let boss: PgBoss;
  try {
    boss = await startBoss(
      {
        url: store.url,
        schema: config.schema,
        idleS: store.poolIdleS,
        timeouts: { ...DEFAULT_TIMEOUTS, ...config.dbTimeouts },
        ...bossOptions,
      },
      (error) => reporter.warn(`job queue: ${errorMessage(error)}`),
    );
  } catch (error) {
    await store.close();
    throw error;
  }
  return {
    store,
    boss,
    async close() {
      await boss.stop({ graceful: false, wait: true, close: true }).catch(() => undefined);
      await store.close();
    },
  };
}

export function registerQueue(program: Command, setExit: (code: number) => void): void {
  registerEnqueue(program, setExit);
  registerWorker(program, setExit);
  registerSchedule(program, setExit);
}

function registerEnqueue(program: Command, setExit: (code: number) => void): void {
  const command = program
    .command('enqueue')
    .description('plan an import as jobs in PostgreSQL, for `waha-import worker` processes on any machines')
    .option('--config <file>', 'JSON config file (default: .importrc in the working directory when present)');
  addOptions(command, ENQUEUE_FLAGS);
  command.addHelpText(
    'after',
    examplesAndExitCodes(
      [
        'waha-import enqueue --all-sessions --days 30                     every WORKING session, one plan each',
        'waha-import enqueue --waha-url http://waha1:3000,http://waha2:3000 --all-sessions --incremental',
      ],
      [
        [EXIT.ok, 'planned (or the same plan was still queued: nothing added)'],
        [EXIT.importFailed, 'the database failed'],
        EXIT.usage,
        EXIT.wahaRefused,
      ],
    ),
  );
  command.action(async (flags: Record<string, unknown>) => {
    const config = resolveRunConfig(
      {
        flags,
        env: process.env,
        cwd: process.cwd(),
        configPath: flags.config as string | undefined,
        nowMs: Date.now(),
        helpCommand: 'enqueue',
      },
      ENQUEUE_SPECS,
    );
    const mask = secretMasker([config.apiKey, urlPassword(config.databaseUrl)]);
    const reporter = createReporter({ mode: chooseOutputMode(config, isLiveTerminal()), mask });
    const request = planRequest(config);
    const controller = new AbortController();
    const onSignal = (): void => controller.abort();
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const { wahaFor } = wahaClients(config, reporter);
    let queue: Awaited<ReturnType<typeof openQueue>> | undefined;
    try {
      // WAHA first: a wrong key or a stopped session is said before the database is touched.
      for (const url of request.wahaUrls) await wahaFor(url).version(controller.signal);
      queue = await openQueue(config, reporter);
      const planned = await planImport(
        {
          sql: queue.store.sql,
          schema: config.schema,
          boss: queue.boss,
          wahaFor,
          reporter,
          signal: controller.signal,
          nowMs: Date.now(),
        },
        request,
        'enqueue',
      );
      finishEnqueue(planned, config.json, reporter);
      setExit(EXIT.ok);
    } catch (error) {
      reporter.error(error);
      setExit(exitCodeFor(error));
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await queue?.close();
    }
  });
}

function finishEnqueue(planned: PlannedSession[], json: boolean, reporter: Reporter): void {
  const added = planned.filter((p) => p.added);
  if (json) {
    process.stdout.write(
      jsonText({ type: 'enqueued', time: new Date().toISOString(), plans: planned }) + '\n',
    );
    return;
  }
  reporter.info(
    `${formatCount(added.length)} plan${added.length === 1 ? '' : 's'} queued with ` +
      `${formatCount(added.reduce((n, p) => n + p.units, 0))} jobs` +
      (planned.length > added.length
        ? `; ${formatCount(planned.length - added.length)} already queued (nothing added for them)`
        : '') +
      '. Start workers with `waha-import worker`; watch with `waha-import status`.',
  );
}

function registerWorker(program: Command, setExit: (code: number) => void): void {
  const command = program
    .command('worker')
    .description('take import jobs from the queue in PostgreSQL (any number, on any number of machines)')
    .option('--config <file>', 'JSON config file (default: .importrc in the working directory when present)');
  addOptions(command, WORKER_OPTIONS);
  command.addHelpText(
    'after',
    examplesAndExitCodes(
      [
        'DATABASE_URL=postgres://... WAHA_API_KEY=... waha-import worker      on each machine, as a service',
        'waha-import worker --once --jobs 4                                  drain the queue, then exit',
      ],
      [
        [EXIT.ok, 'stopped (SIGTERM, or --once with the queue drained) with every job it took finished'],
        [EXIT.importFailed, 'the database or the queue failed, or (with --once) a job failed'],
        EXIT.usage,
        [
          EXIT.locked,
          "the embedded PostgreSQL's data directory is in use (one worker per machine without DATABASE_URL)",
        ],
        [EXIT.interrupted, 'stopped with jobs handed back unfinished (another worker takes them)'],
      ],
    ),
  );
  command.action(async (flags: Record<string, unknown>) => {
    limitHeapGrowth();
    const values = resolveCommandOptions(
      WORKER_OPTIONS,
      { flags, env: process.env, cwd: process.cwd(), configPath: flags.config as string | undefined },
      'worker',
    );
    const get = <T>(key: string): T => values[key] as T;
    if (get('json') && get('quiet')) {
      throw new UsageError('--json and --quiet cannot be used together', 'Run `waha-import worker --help`.');
    }
    const mask = secretMasker([get('apiKey'), urlPassword(get('databaseUrl'))]);
    const reporter = createReporter({
      mode: chooseOutputMode({ json: get('json'), quiet: get('quiet') }, false),
      mask,
    });
    const stopping = new AbortController();
    const abort = new AbortController();
    const onSignal = (): void => {
      if (!stopping.signal.aborted) {
        reporter.warn(
          'Stopping: no new jobs; the jobs in flight get the grace period. Signal again to hand them back now.',
        );
        stopping.abort();
      } else {
        abort.abort();
      }
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const config = {
      databaseUrl: get<string | undefined>('databaseUrl'),
      dataDir: get<string | undefined>('dataDir'),
      schema: get<string>('schema'),
      dbTimeouts: {
        connectS: get<number>('dbConnectTimeout'),
        statementS: get<number>('dbStatementTimeout'),
        idleS: get<number>('dbIdleTimeout'),
        keepaliveS: get<number>('dbKeepalive'),
      },
    };
    let queue: Awaited<ReturnType<typeof openQueue>> | undefined;
    try {
      queue = await openQueue(config, reporter, {
        schedule: true,
        supervise: true,
        cronMonitorIntervalSeconds: 5,
      });
      const clients = wahaClients(
        {
          apiKey: get('apiKey'),
          requestTimeoutMs: get<number>('requestTimeout') * 1000,
          maxRetries: get('maxRetries'),
          maxResponseBytes: get<number>('maxResponseMb') * 1024 * 1024,
          concurrency: get<number | 'auto'>('concurrency') ?? 'auto',
          maxConcurrency: get('maxConcurrency'),
        },
        reporter,
      );
      const outcome = await runWorker(
        {
          store: queue.store,
          boss: queue.boss,
          schema: config.schema,
          ...clients,
          reporter,
          stopping: stopping.signal,
          abort: abort.signal,
        },
        {
          jobs: get('jobs'),
          pollS: get('poll'),
          once: get<boolean | undefined>('once') ?? false,
          shutdownGraceS: get('shutdownGrace'),
          chatPageSize: get('chatPageSize'),
        },
      );
      const line =
        `Worker stopped: ${formatCount(outcome.jobsDone)} jobs done, ${formatCount(outcome.jobsFailed)} failed, ` +
        `${formatCount(outcome.jobsHandedBack)} handed back; ${formatCount(outcome.messagesFetched)} messages fetched, ` +
        `${formatCount(outcome.inserted)} new`;
      if (get('json')) {
        process.stdout.write(
          jsonText({ type: 'worker-stopped', time: new Date().toISOString(), ...outcome }) + '\n',
        );
      } else {
        reporter.info(line);
      }
      setExit(
        outcome.jobsHandedBack > 0
          ? EXIT.interrupted
          : get('once') && outcome.jobsFailed > 0
            ? EXIT.importFailed
            : EXIT.ok,
      );
    } catch (error) {
      reporter.error(error);
      setExit(exitCodeFor(error));
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await queue?.close();
    }
  });
}

function registerSchedule(program: Command, setExit: (code: number) => void): void {
  const command = program
    .command('schedule')
    .argument('[cron]', 'when the plan fires, as a cron expression ("30 2 * * *": every night at 02:30)')
    .description(
      'store a plan that fires on a cron schedule, once across all workers (instead of a crontab line per server)',
    )
    .option('--config <file>', 'JSON config file (default: .importrc in the working directory when present)')
    .option('--list', 'show the stored schedules')
    .option('--remove', 'remove the schedule named by --name');
  addOptions(command, [...SCHEDULE_OPTIONS, ...ENQUEUE_FLAGS]);
  command.addHelpText(
    'after',
    examplesAndExitCodes(
      [
        'waha-import schedule "30 2 * * *" --all-sessions --incremental   nightly, every WORKING session',
        'waha-import schedule --list',
        'waha-import schedule --remove --name nightly',
      ],
      [EXIT.ok, [EXIT.importFailed, 'the database failed'], EXIT.usage],
    ),
  );
  command.action(async (cron: string | undefined, flags: Record<string, unknown>) => {
    const config = resolveRunConfig(
      {
        flags,
        env: process.env,
        cwd: process.cwd(),
        configPath: flags.config as string | undefined,
        nowMs: Date.now(),
        helpCommand: 'schedule',
      },
      [...ENQUEUE_SPECS, ...SCHEDULE_OPTIONS],
    );
    const name = config.extra.name as string;
    const tz = config.extra.tz as string;
    const problems: string[] = [];
    const modes = [cron !== undefined, Boolean(flags.list), Boolean(flags.remove)].filter(Boolean).length;
    if (modes !== 1) problems.push('give a cron expression, or --list, or --remove (one of them)');
    if (cron !== undefined) {
      try {
        cronParser.parseExpression(cron, { tz });
      } catch (error) {
        problems.push(`"${cron}" (with --tz ${tz}) is not a cron expression: ${(error as Error).message}`);
      }
      if (config.windowRequest.sinceS !== undefined && !config.incremental) {
        problems.push(
          '--since gives every firing the same window; a schedule wants --days (counted back from each firing) or --incremental',
        );
      }
    }
    if (problems.length > 0) throw new UsageError(problems, 'Run `waha-import schedule --help`.');
    const mask = secretMasker([config.apiKey, urlPassword(config.databaseUrl)]);
    const reporter = createReporter({ mode: chooseOutputMode(config, isLiveTerminal()), mask });
    let queue: Awaited<ReturnType<typeof openQueue>> | undefined;
    try {
      queue = await openQueue(config, reporter);
      const queueName = `${PLAN_QUEUE_PREFIX}${name}`;
      if (flags.list) {
        const schedules = (await queue.boss.getSchedules()).filter((s) =>
          s.name.startsWith(PLAN_QUEUE_PREFIX),
        );
        if (config.json) {
          process.stdout.write(jsonText({ type: 'schedules', schedules }) + '\n');
        } else {
          const lines = schedules.map(
            (s) =>
              `  ${s.name.slice(PLAN_QUEUE_PREFIX.length)}: "${s.cron}" (${(s as { timezone?: string }).timezone ?? 'UTC'}) ` +
              JSON.stringify(s.data),
          );
          process.stdout.write(['Schedules:', ...(lines.length ? lines : ['  none'])].join('\n') + '\n');
        }
      } else if (flags.remove) {
        await queue.boss.unschedule(queueName);
        reporter.info(`Schedule "${name}" removed`);
        if (config.json) process.stdout.write(jsonText({ type: 'unscheduled', name }) + '\n');
      } else {
        await ensureQueue(queue.boss, queueName);
        const request = planRequest(config);
        await queue.boss.schedule(queueName, cron!, request as unknown as object, {
          tz,
          retryLimit: 3,
          retryDelay: 60,
          retryBackoff: true,
          expireInSeconds: 3600,
        });
        reporter.info(
          `Schedule "${name}" stored: "${cron}" (${tz}); each firing plans ` +
            `${request.sessions === 'all' ? 'every WORKING session' : request.sessions.join(', ')} of ${request.wahaUrls.join(', ')}. ` +
            'A running `waha-import worker` fires it (once across all workers).',
        );
        if (config.json) {
          process.stdout.write(jsonText({ type: 'scheduled', name, cron, tz, plan: request }) + '\n');
        }
      }
      setExit(EXIT.ok);
    } catch (error) {
      reporter.error(error);
      setExit(exitCodeFor(error));
    } finally {
      await queue?.close();
    }
  });
}
