import path from 'node:path';
import type { Command } from 'commander';
import { Checkpoint, defaultCheckpointPath } from '../checkpoint/checkpoint.js';
import type { AdvisoryLock } from '../db/index.js';
import { acquireLockFile, type HeldLock } from '../lock/lock-file.js';
import { formatCount, formatWindow } from '../import/summary.js';
import { resolveRunConfig, RUN_OPTIONS, type RunConfig } from '../config/run-config.js';
import { EXIT, KnownError } from '../errors.js';
import { runImport } from '../import/runner.js';
import { chooseOutputMode, createReporter } from '../report/reporter.js';
import { availableStrategies, strategyNamed } from '../strategies/registry.js';
import { secretMasker, urlPassword } from '../util/redact.js';
import { createWahaClient } from '../waha/client.js';
import { DEFAULT_RETRY_POLICY } from '../waha/retry.js';
import { addOptions } from './options.js';
import { openStore, startDemoSimulator, type Store } from './wiring.js';

export function registerRun(program: Command, setExit: (code: number) => void): void {
  const command = program
    .command('run')
    .description('import the chat history of one WAHA session into PostgreSQL')
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
  WAHA_URL=http://waha:3000 WAHA_API_KEY=... DATABASE_URL=postgres://... waha-import run --quiet`,
  );
  command.action(async (flags: Record<string, unknown>) => {
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
  const mask = secretMasker([config.apiKey, urlPassword(config.databaseUrl)]);
  const reporter = createReporter({
    mode: chooseOutputMode(config, Boolean(process.stderr.isTTY)),
    mask,
  });
  const strategy = strategyNamed(config.strategy);

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
  let fileLock: HeldLock | undefined;
  let importLock: AdvisoryLock | undefined;
  try {
    const checkpointFile = path.resolve(
      config.checkpoint ?? defaultCheckpointPath(process.cwd(), config.session, config.schema),
    );
    // One run per checkpoint: taken before the checkpoint is read, so two runs never share one.
    fileLock = acquireLockFile(
      `${checkpointFile}.lock`,
      `session "${config.session}" (checkpoint ${checkpointFile})`,
    );
    if (fileLock.tookOverFrom) {
      const dead = fileLock.tookOverFrom;
      reporter.warn(
        `took over the lock left by pid ${dead.pid} (started ${dead.startedAt}), which no longer runs`,
      );
    }
    const opened = Checkpoint.open(
      checkpointFile,
      {
        session: config.session,
        schema: config.schema,
        windowRequest: config.windowRequest,
        window: config.window,
        pageSize: config.pageSize,
      },
      { fresh: config.fresh },
    );
    if (opened.resumed) {
      reporter.info(
        `Resuming the run started ${opened.resumed.startedAt} (window ${formatWindow(opened.window)}): ` +
          `${formatCount(opened.resumed.completedChats)} chats done, ${formatCount(opened.resumed.inProgressChats)} part-way. ` +
          `--fresh starts over.`,
      );
    }
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
    store = await openStore(config, reporter);
    // One run per session and schema across every host writing to this database.
    importLock = await store.lockImport(config.session);
    const waha = createWahaClient({
      baseUrl: wahaUrl,
      apiKey,
      requestTimeoutMs: config.requestTimeoutMs,
      maxResponseBytes: config.maxResponseBytes,
      retry: { ...DEFAULT_RETRY_POLICY, maxRetries: config.maxRetries },
      onRetry: (event) =>
        reporter.warn(
          `${event.endpoint}: ${event.reason}; retry ${event.retryNumber} in ${Math.round(event.delayMs)} ms`,
        ),
    });
    const outcome = await runImport(
      {
        waha,
        writer: store.writer,
        syncMarks: store.syncMarks,
        runLog: store.runLog,
        reporter,
        signal: controller.signal,
        checkpoint: opened.checkpoint,
      },
      {
        session: config.session,
        window: opened.window,
        strategy,
        strategyOptions: {
          concurrency: config.concurrency,
          chunkSize: config.chunk,
          batchSize: config.batchSize,
          flushMs: config.flushMs,
        },
        pageSize: config.pageSize,
        pageEnd: config.pageEnd,
        chatPageSize: config.chatPageSize,
        incremental: config.incremental,
        recordedOptions: recordedOptions(config),
      },
    );
    // The summary comes last: in --json mode it is the final line, whatever happened.
    if (outcome.error !== undefined) reporter.error(outcome.error);
    if (outcome.summary.status !== 'running') reporter.summary(outcome.summary);
    return outcome.error === undefined ? EXIT.ok : exitCodeFor(outcome.error);
  } catch (error) {
    reporter.error(error);
    return exitCodeFor(error);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await importLock?.release().catch(() => undefined);
    await store?.close().catch((error: unknown) => reporter.warn(`closing the database: ${String(error)}`));
    fileLock?.release();
    await stopSimulator?.();
  }
}

function exitCodeFor(error: unknown): number {
  return error instanceof KnownError ? error.exitCode : EXIT.importFailed;
}

/** What the runs table keeps of the settings: everything that shaped the run, no secrets, no URLs. */
function recordedOptions(config: RunConfig): Record<string, unknown> {
  return {
    concurrency: config.concurrency,
    chunk: config.chunk,
    batchSize: config.batchSize,
    flushMs: config.flushMs,
    pageSize: config.pageSize,
    chatPageSize: config.chatPageSize,
    incremental: config.incremental ?? false,
    simulate: config.simulate,
  };
}
