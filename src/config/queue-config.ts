import { boolean, integer, text, type OptionSpec } from './options.js';
import { httpUrlList, RUN_OPTIONS } from './run-config.js';

/**
 * The options of the queue commands (src/cli/queue.ts): `enqueue` and `schedule` plan `run`'s import
 * (several WAHA URLs allowed) with job settings; `worker` takes the settings that shape fetching.
 */

/** Settings of `run` that make no sense for a plan run by workers (each worker has its own). */
const NOT_PLANNED = new Set(['checkpoint', 'fresh', 'simulate', 'concurrency', 'maxConcurrency']);

export const PLAN_OPTIONS: ReadonlyArray<OptionSpec<unknown>> = [
  {
    key: 'chatsPerJob',
    flag: '--chats-per-job <n>',
    env: 'WAHA_IMPORT_CHATS_PER_JOB',
    description:
      'the most chats one job holds (jobs are taken by workers one at a time; the most recently active chats go first)',
    defaultValue: 100,
    parse: integer(1, 100_000),
  },
  {
    key: 'jobTimeout',
    flag: '--job-timeout <s>',
    env: 'WAHA_IMPORT_JOB_TIMEOUT',
    description:
      "seconds a job may run before pg-boss expires it and another worker takes it over (a dead worker's job is taken over within this plus 10 s)",
    defaultValue: 900,
    parse: integer(5, 86_400),
  },
  {
    key: 'jobRetries',
    flag: '--job-retries <n>',
    env: 'WAHA_IMPORT_JOB_RETRIES',
    description: 'times a failed or expired job is tried again (after 5 s, doubling) before it stays failed',
    defaultValue: 5,
    parse: integer(0, 100),
  },
];

/** `enqueue` and `schedule`: `run`'s settings (several WAHA URLs allowed) and the job settings. */
export const ENQUEUE_SPECS: ReadonlyArray<OptionSpec<unknown>> = [
  ...RUN_OPTIONS.map((spec): OptionSpec<unknown> =>
    spec.key === 'wahaUrl'
      ? {
          ...spec,
          flag: '--waha-url <urls>',
          description:
            'base URL of the WAHA server; several as a,b (each planned with --session or --all-sessions)',
          parse: httpUrlList,
        }
      : spec.key === 'allSessions'
        ? { ...spec, description: 'plan every session each WAHA server lists as WORKING' }
        : spec,
  ),
  ...PLAN_OPTIONS,
];
export const ENQUEUE_FLAGS = ENQUEUE_SPECS.filter((spec) => !NOT_PLANNED.has(spec.key));

const WORKER_KEYS = [
  'apiKey',
  'apiKeyFile',
  'databaseUrl',
  'databaseUrlFile',
  'dataDir',
  'schema',
  'concurrency',
  'maxConcurrency',
  'requestTimeout',
  'maxRetries',
  'maxResponseMb',
  'chatPageSize',
  'dbConnectTimeout',
  'dbStatementTimeout',
  'dbIdleTimeout',
  'dbKeepalive',
  'json',
  'quiet',
];
export const WORKER_OPTIONS: ReadonlyArray<OptionSpec<unknown>> = [
  ...RUN_OPTIONS.filter((spec) => WORKER_KEYS.includes(spec.key)).map((spec): OptionSpec<unknown> =>
    spec.key === 'concurrency'
      ? {
          ...spec,
          description:
            'chats this worker fetches at once from one WAHA server, across its jobs: a number, or auto (found while running, up to --max-concurrency)',
          defaultValue: 'auto',
        }
      : spec.key === 'json'
        ? { ...spec, description: 'newline-delimited JSON events and a final summary line on stdout' }
        : spec,
  ),
  {
    key: 'jobs',
    flag: '--jobs <n>',
    env: 'WAHA_IMPORT_WORKER_JOBS',
    description: 'jobs this worker works on at once',
    defaultValue: 4,
    parse: integer(1, 100),
  },
  {
    key: 'poll',
    flag: '--poll <s>',
    description: 'seconds between two looks at an empty queue',
    defaultValue: 2,
    parse: integer(1, 3600),
  },
  {
    key: 'once',
    flag: '--once',
    description:
      'exit once no job is waiting, retrying or running on any worker (instead of waiting for more); for tests and cron',
    parse: boolean,
  },
  {
    key: 'shutdownGrace',
    flag: '--shutdown-grace <s>',
    description:
      'after SIGTERM or Ctrl-C, seconds the jobs in flight get to finish before they are handed back to the queue',
    defaultValue: 30,
    parse: integer(0, 86_400),
  },
];

export const SCHEDULE_OPTIONS: ReadonlyArray<OptionSpec<unknown>> = [
  {
    key: 'name',
    flag: '--name <name>',
    description: 'the schedule to store, replace or remove (one plan per name)',
    defaultValue: 'nightly',
    parse: text(/^[A-Za-z0-9_-]{1,40}$/, 'must be letters, digits, _ or - (at most 40)'),
  },
  {
    key: 'tz',
    flag: '--tz <zone>',
    description: 'time zone of the cron expression (an IANA name such as America/Sao_Paulo)',
    defaultValue: 'UTC',
    parse: text(),
  },
];
