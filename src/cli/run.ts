import path from 'node:path';
import type { Command } from 'commander';
import {
  Checkpoint,
  incrementalOf,
  defaultCheckpointPath,
  type CheckpointKey,
  type OpenedCheckpoint,
} from '../checkpoint/checkpoint.js';
import type { AdvisoryLock } from '../db/index.js';
import { acquireLockFile, type HeldLock } from '../lock/lock-file.js';
import {
  formatCount,
  formatWindow,
  startingSummary,
  totalSummary,
  type ImportSummary,
  type SessionOutcome,
} from '../import/summary.js';
import { resolveRunConfig, RUN_OPTIONS, type RunConfig } from '../config/run-config.js';
import { errorMessage, EXIT, InterruptedError, KnownError, WahaRefusedError } from '../errors.js';
import { checkSession, CONTINUE_OVERLAP_S, runImport, type ImportPlan } from '../import/runner.js';
import type { TimeWindow } from '../domain.js';
import type { SessionInfo, VersionInfo } from '../waha/parse.js';
import { chooseOutputMode, createReporter, isLiveTerminal, type Reporter } from '../report/reporter.js';
import { availableStrategies, strategyNamed } from '../strategies/registry.js';
import { redactUrl, secretMasker, urlPassword, urlSecrets } from '../util/redact.js';
import type { WahaClient } from '../waha/client.js';
import type { ConcurrencyController } from '../concurrency/limiter.js';
import { addOptions } from './options.js';
import { limitHeapGrowth } from './heap.js';
import { connectWaha, openStore, startDemoSimulator, type Store } from './wiring.js';

const RUN_EXIT_MEANING: Record<number, string> = {
  [EXIT.ok]: 'success',
  [EXIT.importFailed]: 'the import failed (WAHA sent something unusable, PostgreSQL failed, or a bug)',
  [EXIT.usage]: 'a flag, environment variable or config value is wrong',
  [EXIT.wahaRefused]: 'WAHA unreachable or refused (API key, unknown session, session not WORKING)',
  [EXIT.locked]: "another run holds the lock (or the embedded PostgreSQL's data directory)",
  [EXIT.chatsFailed]: 'finished, but some chats could not be imported (the next run retries them)',
  [EXIT.interrupted]: 'interrupted (Ctrl-C); run again to continue',
};

export function registerRun(program: Command, setExit: (code: number) => void): void {
  const command = program
    .command('run')
    .description('import the chat history of WAHA sessions into PostgreSQL')
    .option('--config <file>', 'JSON config file (default: .importrc in the working directory when present)');
  addOptions(command, RUN_OPTIONS);
  command.addHelpText(
    'after',
    `
Strategies:
${availableStrategies()
  .map((s) => `  ${s.name.padEnd(11)} ${s.fits}`)
  .join('\n')}

Precedence: defaults < .importrc (or --config) < environment < flags.

Examples:
  waha-import run --simulate                     try it on the built-in simulator and an embedded database
  waha-import run --days 30 --chunk 50 --strategy chunked
  WAHA_URL=http://waha:3000 WAHA_API_KEY=... DATABASE_URL=postgres://... waha-import run --quiet
  waha-import run --all-sessions --incremental --quiet    nightly: what is new, every WhatsApp number

Exit codes:
${[EXIT.ok, EXIT.importFailed, EXIT.usage, EXIT.wahaRefused, EXIT.locked, EXIT.chatsFailed, EXIT.interrupted]
  .map((code) => `  ${String(code).padEnd(4)} ${RUN_EXIT_MEANING[code]}`)
  .join('\n')}`,
  );
  command.action(async (flags: Record<string, unknown>) => {
    limitHeapGrowth();
    const config = resolveRunConfig({
      flags,
      env: process.env,
      cwd: process.cwd(),
      configPath: flags.config as string | undefined,
      nowMs: Date.now(),
    });
    setExit(await runCommand(config));
  });
}

async function runCommand(config: RunConfig): Promise<number> {
  const startedMs = Date.now();
  // Belt and braces: wherever a URL is printed it is redacted; its secrets are masked in any text too.
  const mask = secretMasker([config.apiKey, urlPassword(config.databaseUrl), ...urlSecrets(config.wahaUrl)]);
  const reporter = createReporter({
    mode: chooseOutputMode(config, isLiveTerminal()),
    mask,
  });

  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (): void => {
    interrupts += 1;
    if (interrupts === 1) {
      reporter.warn(
        'Stopping: no new fetches; the batch in flight is committed or rolled back. Ctrl-C again to quit at once.',
      );
      controller.abort();
    } else {
      process.exit(EXIT.interrupted);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let store: Store | undefined;
  let stopSimulator: (() => Promise<void>) | undefined;
  const jobs: SessionJob[] = [];
  try {
    let wahaUrl = config.wahaUrl;
    let apiKey = config.apiKey;
    if (config.simulate) {
      reporter.step('Starting the WAHA simulator');
      const sim = await startDemoSimulator();
      stopSimulator = sim.close;
      wahaUrl = sim.url;
      apiKey = undefined;
      reporter.stepDone(`WAHA simulator listening on ${sim.url} (${sim.description})`);
    }
    // One controller for the whole run: every session talks to the same WAHA.
    const { waha, concurrency } = connectWaha({ ...config, url: wahaUrl, apiKey }, reporter);
    let sessions = config.sessions;
    if (config.allSessions) {
      try {
        sessions = await workingSessions(waha, reporter, controller.signal);
      } catch (error) {
        // WAHA refused the listing: no session ran, but the night's run failed, and `status` must say so.
        if (error instanceof KnownError && !(error instanceof InterruptedError)) {
          await recordRefusedListing(config, reporter, error, Date.now() - startedMs, mask);
        }
        throw error;
      }
    }

    // Locks and checkpoints before the database: a second run exits here, before it could even
    // start an embedded PostgreSQL the first one is using.
    for (const session of sessions) jobs.push(prepareSession(config, session, reporter));
    // WAHA before the database: a missing key or a session that is not WORKING is said in a second,
    // not after the embedded PostgreSQL has started and migrated.
    for (const job of jobs) {
      if (job.error !== undefined || controller.signal.aborted) continue;
      try {
        job.checked = await checkSession(waha, job.session, reporter, controller.signal);
      } catch (error) {
        job.refused = controller.signal.aborted && !isOwnFailure(error) ? new InterruptedError() : error;
      }
    }
    if (jobs.some((job) => job.checked !== undefined)) store = await openStore(config, reporter);
    else if (jobs.some((job) => job.refused !== undefined)) {
      // Nothing to import: the database is opened only to record the refusal, without a word unless
      // that fails, so the refusal itself is what the user reads last.
      store = await openStoreQuietly(config, reporter, mask);
    }

    const outcomes: SessionOutcome[] = [];
    const several = sessions.length > 1;
    for (const job of jobs) {
      if (controller.signal.aborted) {
        outcomes.push({ session: job.session, status: 'skipped', error: 'not started: interrupted' });
        continue;
      }
      const outcome: { error?: unknown; summary?: ImportSummary | undefined } =
        job.error ??
        (job.refused !== undefined
          ? await recordRefusedSession(job, config, store, reporter, Date.now() - startedMs, mask)
          : job.checked === undefined
            ? { error: new InterruptedError('not started: interrupted') }
            : await importSession(
                job,
                config,
                { store: store!, waha, concurrency },
                reporter,
                controller.signal,
              ));
      job.fileLock?.release();
      job.fileLock = undefined;
      if (outcome.error !== undefined) reporter.error(outcome.error);
      if (outcome.summary) {
        if (several) reporter.sessionSummary(outcome.summary);
        // The summary comes last: in --json mode it is the final line, whatever happened.
        else reporter.summary(outcome.summary);
      }
      job.outcome = outcome;
      outcomes.push({
        session: job.session,
        status:
          outcome.error === undefined
            ? outcome.summary?.status === 'partial'
              ? 'partial'
              : 'succeeded'
            : outcome.error instanceof InterruptedError
              ? 'interrupted'
              : 'failed',
        ...(outcome.summary ? { summary: outcome.summary } : {}),
        ...(outcome.error === undefined ? {} : { error: mask(errorMessage(outcome.error)) }),
      });
    }
    if (several) reporter.totals(outcomes, totalSummary(outcomes, Date.now() - startedMs));
    // Ctrl-C wins; otherwise the first session that failed says how.
    if (controller.signal.aborted) return EXIT.interrupted;
    const failed = jobs.find((job) => job.outcome?.error !== undefined);
    if (failed) return exitCodeFor(failed.outcome!.error);
    // Finished, but some chats could not be imported: a code of its own, so cron and monitors see it.
    return jobs.some((job) => job.outcome?.summary?.status === 'partial') ? EXIT.chatsFailed : EXIT.ok;
  } catch (error) {
    reporter.error(error);
    return exitCodeFor(error);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await store?.close().catch((error: unknown) => reporter.warn(`closing the database: ${String(error)}`));
    for (const job of jobs) job.fileLock?.release();
    await stopSimulator?.();
  }
}

interface SessionJob {
  session: string;
  fileLock?: HeldLock | undefined;
  checkpointFile?: string;
  checkpointKey?: CheckpointKey;
  opened?: OpenedCheckpoint;
  /** Set when the session cannot run (its lock is held, its checkpoint refused). */
  error?: { error: unknown; summary?: undefined };
  /** WAHA's version and the session, checked WORKING before the database was opened. */
  checked?: { version: VersionInfo | null; session: SessionInfo };
  /** Why WAHA would not serve the session (unreachable, the key, the session); recorded as a failed run. */
  refused?: unknown;
  outcome?: { error?: unknown; summary?: ImportSummary | undefined };
}

/** `--all-sessions`: the sessions WAHA lists as WORKING, by name; the others are named in a warning. */
async function workingSessions(waha: WahaClient, reporter: Reporter, signal: AbortSignal): Promise<string[]> {
  reporter.step(`Listing the sessions of ${waha.displayUrl}`);
  const all = await waha.listSessions(signal);
  const working = all.filter((s) => s.status === 'WORKING').map((s) => s.name);
  working.sort();
  const others = all.filter((s) => s.status !== 'WORKING');
  reporter.stepDone(`${formatCount(all.length)} sessions listed, ${formatCount(working.length)} WORKING`);
  if (others.length > 0) {
    reporter.warn(`not imported, not WORKING: ${others.map((s) => `"${s.name}" (${s.status})`).join(', ')}`);
  }
  if (working.length === 0) {
    throw new WahaRefusedError(
      `no session of ${waha.displayUrl} is WORKING: there is nothing to import`,
      'Start a session in WAHA (and scan its QR code) first, or name one with --session.',
    );
  }
  return working;
}

/** Takes the session's lock file and opens its checkpoint; a failure stays with the session. */
function prepareSession(config: RunConfig, session: string, reporter: Reporter): SessionJob {
  const job: SessionJob = { session };
  try {
    const checkpointFile = path.resolve(
      config.checkpoint ??
        defaultCheckpointPath(process.cwd(), session, config.schema, { simulate: config.simulate }),
    );
    job.checkpointFile = checkpointFile;
    // One run per checkpoint: taken before the checkpoint is read, so two runs never share one.
    job.fileLock = acquireLockFile(
      `${checkpointFile}.lock`,
      `session "${session}" (checkpoint ${checkpointFile})`,
    );
    if (job.fileLock.tookOverFrom) {
      const dead = job.fileLock.tookOverFrom;
      reporter.warn(
        `took over the lock left by pid ${dead.pid} (started ${dead.startedAt}), which no longer runs`,
      );
    }
    job.checkpointKey = {
      session,
      schema: config.schema,
      windowRequest: config.windowRequest,
      window: config.window,
      pageSize: config.pageSize,
      // The simulator listens on a new port each time; what matters is that it is the simulator.
      waha: { url: config.simulate ? 'simulator' : redactUrl(config.wahaUrl), session },
    };
    job.opened = Checkpoint.open(checkpointFile, job.checkpointKey, { fresh: config.fresh });
  } catch (error) {
    job.fileLock?.release();
    job.fileLock = undefined;
    job.error = { error };
  }
  return job;
}

async function importSession(
  job: SessionJob,
  config: RunConfig,
  shared: { store: Store; waha: WahaClient; concurrency: number | ConcurrencyController },
  reporter: Reporter,
  signal: AbortSignal,
): Promise<{ error?: unknown; summary?: ImportSummary | undefined }> {
  const { store, waha } = shared;
  let opened = job.opened!;
  const notResuming = (startedAt: string, reason: string): void =>
    reporter.warn(
      `Not resuming the run started ${startedAt} (checkpoint ${job.checkpointFile}): ${reason}. ` +
        `Starting the window over instead (re-importing is idempotent: nothing is duplicated).`,
    );
  if (opened.restarted) notResuming(opened.restarted.startedAt, opened.restarted.reason);
  let importLock: AdvisoryLock | undefined;
  try {
    // One run per session and schema across every host writing to this database.
    importLock = await store.lockImport(job.session);
    // The database is the truth: a checkpoint is continued only when it confirms every commit it claims.
    const identity = await store.identity();
    if (opened.resumed) {
      const reason = opened.checkpoint.disbelief({
        schema: config.schema,
        identity,
        progress: await store.checkpointProgress(opened.checkpoint.id),
      });
      if (reason !== undefined) {
        notResuming(opened.resumed.startedAt, reason);
        opened = Checkpoint.open(job.checkpointFile!, job.checkpointKey!, { fresh: true });
      }
    }
    opened.checkpoint.bind(identity);
    const otherRequest = opened.resumed?.otherRequest;
    if (opened.resumed) {
      reporter.info(
        (otherRequest
          ? `Finishing first the run started ${opened.resumed.startedAt} for ${otherRequest.description} (session "${job.session}", window ${formatWindow(opened.window)}), left unfinished in this checkpoint: `
          : `Resuming the run started ${opened.resumed.startedAt} (session "${job.session}", window ${formatWindow(opened.window)}): `) +
          `${formatCount(opened.resumed.completedChats)} chats done, ${formatCount(opened.resumed.inProgressChats)} part-way. ` +
          `--fresh starts over.`,
      );
    }
    const pass = (
      window: TimeWindow,
      options: { incremental: RunConfig['incremental']; continuing?: ImportPlan['continuing'] },
    ) =>
      runImport(
        {
          waha,
          writer: store.writer,
          syncMarks: store.syncMarks,
          runLog: store.runLog,
          failedChats: store.failedChats,
          reporter,
          signal,
          checkpoint: opened.checkpoint,
        },
        {
          session: job.session,
          window,
          strategy: strategyNamed(config.strategy),
          strategyOptions: {
            concurrency: shared.concurrency,
            chunkSize: config.chunk,
            batchSize: config.batchSize,
            flushMs: config.flushMs,
          },
          pageSize: config.pageSize,
          pageEnd: config.pageEnd,
          emptyPagesToEnd: config.emptyPages,
          maxSlices: config.maxSlices,
          chatPageSize: config.chatPageSize,
          incremental: options.incremental,
          recordedOptions: { ...recordedOptions(config), incremental: options.incremental ?? false },
          ...(options.continuing ? { continuing: options.continuing } : {}),
          ...(job.checked ? { checked: job.checked } : {}),
        },
      );
    // An unfinished run of another request is finished as it asked (incremental or not).
    let outcome = await pass(opened.window, {
      incremental: otherRequest ? incrementalOf(otherRequest.request) : config.incremental,
    });
    // A resumed run read its own, earlier window: the time since then (a --days or --incremental
    // window moves) is read now, or the nights of a cron job that keeps resuming (a chat WAHA always
    // fails leaves the run partial) would never read anything newer again.
    if (
      opened.resumed &&
      outcome.error === undefined &&
      outcome.summary.status !== 'running' &&
      !signal.aborted &&
      (otherRequest !== undefined || config.window.toS > opened.window.toS)
    ) {
      const resumedWindow = opened.window;
      const done = opened.checkpoint.completedChats();
      // What the resumed run completed narrows a full window of the same request only.
      const narrows = otherRequest === undefined && !config.incremental;
      reporter.sessionSummary(outcome.summary);
      reporter.info(
        (otherRequest
          ? `The run started ${opened.resumed.startedAt} is finished; importing the window asked for now, `
          : `The resumed run's window ended at ${new Date(resumedWindow.toS * 1000).toISOString()}; importing the window asked for now, `) +
          formatWindow(config.window) +
          (narrows
            ? ` (the ${formatCount(done.size)} chats it completed from ${CONTINUE_OVERLAP_S / 60} minutes before its end)`
            : ''),
      );
      opened = Checkpoint.open(job.checkpointFile!, job.checkpointKey!, { fresh: true });
      opened.checkpoint.bind(identity);
      outcome = await pass(config.window, {
        incremental: config.incremental,
        ...(narrows ? { continuing: { chats: done, endS: resumedWindow.toS - CONTINUE_OVERLAP_S } } : {}),
      });
    }
    return {
      ...(outcome.error === undefined ? {} : { error: outcome.error }),
      summary: outcome.summary.status === 'running' ? undefined : outcome.summary,
    };
  } catch (error) {
    return { error };
  } finally {
    await importLock?.release().catch(() => undefined);
  }
}

/** A failure of our own, as opposed to whatever an operation stopped by Ctrl-C happened to throw. */
function isOwnFailure(error: unknown): boolean {
  return error instanceof KnownError && !(error instanceof InterruptedError);
}

/** Opens the database without a word (it is only there to record a refusal); undefined when it fails. */
async function openStoreQuietly(
  config: RunConfig,
  reporter: Reporter,
  mask: (text: string) => string,
): Promise<Store | undefined> {
  try {
    return await openStore(config, createReporter({ mode: 'quiet', mask }));
  } catch (error) {
    reporter.warn(`could not record the failed run in the runs table: ${errorMessage(error)}`);
    return undefined;
  }
}

/**
 * WAHA refused the session before anything was imported (unreachable, the API key, the session unknown
 * or not WORKING): recorded as a failed run with 0 chats all the same, so `status` shows it and exits 1.
 */
async function recordRefusedSession(
  job: SessionJob,
  config: RunConfig,
  store: Store | undefined,
  reporter: Reporter,
  elapsedMs: number,
  mask: (text: string) => string,
): Promise<{ error: unknown }> {
  const error = job.refused;
  if (!store) return { error };
  try {
    const runId = await store.runLog.start({
      session: job.session,
      strategy: config.strategy,
      window: config.window,
      options: { ...recordedOptions(config), pageEnd: null, engine: null },
    });
    await store.runLog.finish(runId, {
      ...emptySummary(config),
      session: job.session,
      status: error instanceof InterruptedError ? 'interrupted' : 'failed',
      elapsedMs,
      error: mask(errorMessage(error)),
    });
  } catch (recordError) {
    reporter.warn(`could not record the failed run in the runs table: ${errorMessage(recordError)}`);
  }
  return { error };
}

/**
 * `--all-sessions` failed before any session was known (WAHA unreachable, the key refused, no session
 * WORKING): recorded as one failed run of the session `*`, so `status` shows it and exits non-zero.
 * Best effort: the database may be what is missing, and the error itself is what the user needs.
 */
async function recordRefusedListing(
  config: RunConfig,
  reporter: Reporter,
  error: unknown,
  elapsedMs: number,
  mask: (text: string) => string,
): Promise<void> {
  let store: Store | undefined;
  try {
    // Quietly: the refusal, printed after this, is what the user must read last.
    store = await openStore(config, createReporter({ mode: 'quiet', mask }));
    const runId = await store.runLog.start({
      session: '*',
      strategy: config.strategy,
      window: config.window,
      options: { ...recordedOptions(config), allSessions: true },
    });
    await store.runLog.finish(runId, {
      ...emptySummary(config),
      status: 'failed',
      elapsedMs,
      error: mask(errorMessage(error)),
    });
  } catch (recordError) {
    reporter.warn(`could not record the failed run in the runs table: ${errorMessage(recordError)}`);
  } finally {
    await store?.close().catch(() => undefined);
  }
}

function emptySummary(config: RunConfig): ImportSummary {
  return startingSummary({
    session: '*',
    strategy: config.strategy,
    window: config.window,
    status: 'failed',
    incremental: null,
    concurrency: { mode: 'fixed', limit: 0 },
  });
}

function exitCodeFor(error: unknown): number {
  return error instanceof KnownError ? error.exitCode : EXIT.importFailed;
}

/** What the runs table keeps of the settings: everything that shaped the run, no secrets, no URLs. */
function recordedOptions(config: RunConfig): Record<string, unknown> {
  return {
    concurrency: config.concurrency,
    ...(config.concurrency === 'auto' ? { maxConcurrency: config.maxConcurrency } : {}),
    chunk: config.chunk,
    batchSize: config.batchSize,
    flushMs: config.flushMs,
    pageSize: config.pageSize,
    emptyPages: config.emptyPages,
    maxSlices: config.maxSlices,
    chatPageSize: config.chatPageSize,
    incremental: config.incremental ?? false,
    simulate: config.simulate,
  };
}
