import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Checkpoint } from '../checkpoint/checkpoint.js';
import { createConcurrencyController, type ConcurrencyController } from '../concurrency/limiter.js';
import type { TimeWindow } from '../domain.js';
import {
  createBatchWriter,
  databaseChecksum,
  databaseIdentity,
  measureCopyLimit,
  migrate,
  openDatabase,
  type CopyLimit,
  type Database,
} from '../db/index.js';
import { runImport } from '../import/runner.js';
import { DEFAULT_MAX_SLICES } from '../import/slices.js';
import type { ImportSummary } from '../import/summary.js';
import { SILENT_REPORTER } from '../report/reporter.js';
import { generateDataset } from '../sim/index.js';
import { getStrategy } from '../strategies/registry.js';
import type { Strategy } from '../strategies/types.js';
import { createWahaClient, MAX_PAGE_SIZE } from '../waha/client.js';
import type { RequestObserver } from '../waha/http.js';
import { DEFAULT_RETRY_POLICY } from '../waha/retry.js';
import { redactUrl } from '../util/redact.js';
import { pagesForChat, physicalLimitMs } from './limit.js';
import type { BenchRow, Scenario } from './scenarios.js';
import { median } from '../util/median.js';

export interface BenchOptions {
  scenario: Scenario;
  rows: BenchRow[];
  repeat: number;
  databaseUrl: string | undefined;
  /** A real WAHA instead of the simulator (read-only use of its API). */
  wahaUrl: string | undefined;
  apiKey: string | undefined;
  session: string;
  days: number;
  onProgress: (text: string) => void;
  /** Where rows find their strategy; tests hand in a deliberately wrong one to see the bench fail. */
  strategyFor?: (name: string) => Strategy | undefined;
  /**
   * After the rows, COPY the messages they imported into an empty copy of the table (its indexes
   * included) and report that speed as the write limit. Default: off.
   */
  writeLimit?: boolean;
}

export interface BenchResult {
  label: string;
  strategy: string;
  concurrency: number | 'auto';
  maxConcurrency: number | null;
  /** auto rows: where the limit ended, the highest it reached, its time-weighted mean late in the run. */
  limit: { final: number; peak: number; lowest: number; settled: number } | null;
  /** Attempts answered 408/429/503/504 or not answered in time (the last run of the row). */
  overloads: number;
  /** Median latency of the successful requests (the last run): the queue WAHA built up shows here. */
  latencyP50Ms: number | null;
  /** auto rows: wall time over the fastest fixed row of the same strategy. */
  vsBestFixed: number | null;
  chunkSize: number | null;
  batchSize: number | null;
  /** Median of the repeats. */
  wallMs: number;
  runsMs: number[];
  transactions: number;
  requests: number;
  retries: number;
  messages: number;
  messagesPerSecond: number;
  /** User + system CPU of this process (the importer; the simulator runs in its own) during the import, median of the repeats. */
  cpuMs: number;
  /** cpuMs scaled to 1,000,000 messages, in seconds: what the importer costs per million. */
  cpuSPerMillion: number | null;
  /** messagesPerSecond over the write limit's rows per second, when it was measured. */
  vsWriteLimit: number | null;
  speedupVsV1: number | null;
  limitRatio: number | null;
  checksum: string;
  sameAsFirst: boolean;
  studyEstimateS: number | null;
  studyTransactions: number | null;
}

export interface BenchReport {
  scenario: string;
  description: string;
  machine: { cpus: number; cpuModel: string; memoryGb: number; node: string; platform: string };
  database: 'embedded' | 'external';
  waha: 'simulator' | 'real';
  physicalLimitMs: number | null;
  /** The write-side ceiling (see BenchOptions.writeLimit), or null when not measured. */
  writeLimit: CopyLimit | null;
  limitFormula: string;
  limitInputs: Record<string, number> | null;
  results: BenchResult[];
  /** False when any row left a different database: the bench then fails. */
  consistent: boolean;
}

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/waha-import.js');

/** The simulator in its own process, so its CPU does not count against the importer being measured. */
async function startSimProcess(scenario: Scenario): Promise<{ url: string; stop: () => void }> {
  const s = scenario.sim;
  const flags: Record<string, string | number> = {
    '--port': 0,
    '--chats': s.chats,
    '--messages': s.messages,
    '--days': s.days,
    '--seed': s.seed,
    '--engine': s.engine,
    '--latency-ms': s.latencyMs,
    '--jitter-ms': s.jitterMs,
    '--capacity': Number.isFinite(s.capacity) ? s.capacity : 'unlimited',
    '--queue-limit': Number.isFinite(s.queueLimit) ? s.queueLimit : 'unlimited',
    '--error-rate': s.errorRate,
    '--rate-limit-rate': s.rateLimitRate,
    '--retry-after': s.retryAfterS,
    '--timeout-rate': s.timeoutRate,
  };
  const child: ChildProcess = spawn(
    process.execPath,
    [BIN, 'sim', ...Object.entries(flags).flatMap(([flag, value]) => [flag, String(value)])],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (match) resolve({ url: match[1]!, stop: () => child.kill('SIGINT') });
    });
    child.once('exit', (code) =>
      reject(new Error(`the simulator exited with code ${code} before listening`)),
    );
  });
}

/** Requests that come before any message can be fetched, and the page counts the limit needs. */
export function limitInputs(scenario: Scenario, window: TimeWindow, chatPageSize: number, maxSlices = 1) {
  const dataset = generateDataset({
    chats: scenario.sim.chats,
    messages: scenario.sim.messages,
    days: scenario.sim.days,
    seed: scenario.sim.seed,
  });
  let messageRequests = 0;
  let longestChatPages = 0;
  for (const chat of dataset.chats) {
    const inWindow = chat.messages.filter((m) => m.timestampS >= window.fromS && m.timestampS <= window.toS);
    const pages = pagesForChat(inWindow.length, inWindow.filter((m) => !m.hidden).length, MAX_PAGE_SIZE);
    messageRequests += pages;
    longestChatPages = Math.max(longestChatPages, pages);
  }
  // Listing pages overlap by one chat and end at the first page that is not full.
  const chatListPages = Math.floor((dataset.chats.length - 1) / Math.max(1, chatPageSize - 1)) + 1;
  return {
    latencyMs: scenario.sim.latencyMs,
    capacity: scenario.sim.capacity,
    // The version and the session asked at once, then the chat list's pages (the lids are read beside
    // them, several pages at once).
    sequentialRequests: 1 + chatListPages,
    messageRequests,
    longestChatPages,
    maxSlices,
  };
}

/** Records the latency of every successful attempt, passing everything on to `inner` when there is one. */
function latencyRecorder(inner: RequestObserver | undefined): RequestObserver & { latencies: number[] } {
  const latencies: number[] = [];
  return {
    latencies,
    waitToSend: (signal) => inner?.waitToSend(signal) ?? Promise.resolve(),
    attemptStarted() {
      const finish = inner?.attemptStarted();
      return (result) => {
        if (result.outcome === 'ok') latencies.push(result.latencyMs);
        finish?.(result);
      };
    },
    pauseFor: (ms) => inner?.pauseFor(ms),
  };
}

export async function runBench(options: BenchOptions): Promise<BenchReport> {
  const { scenario } = options;
  const chatPageSize = 500;
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-bench-'));
  // As root the embedded server runs as the postgres user, which must be able to enter the directory.
  fs.chmodSync(scratch, 0o755);
  const schema = `waha_bench_${randomBytes(4).toString('hex')}`;
  let sim: { url: string; stop: () => void } | undefined;
  let db: Database | undefined;
  try {
    if (!options.wahaUrl) {
      options.onProgress(`starting the simulator (${scenario.description})`);
      sim = await startSimProcess(scenario);
    }
    options.onProgress(
      options.databaseUrl ? 'connecting to PostgreSQL' : 'starting a scratch embedded PostgreSQL',
    );
    db = await openDatabase({ databaseUrl: options.databaseUrl, dataDir: path.join(scratch, 'postgres') });
    const nowS = Math.floor(Date.now() / 1000);
    const window: TimeWindow = { fromS: nowS - options.days * 86_400, toS: nowS };
    // The limit of the fastest design measured: slicing, where any row slices.
    const maxSlices = Math.max(1, ...options.rows.map((row) => row.maxSlices ?? DEFAULT_MAX_SLICES));
    const inputs = sim ? limitInputs(scenario, window, chatPageSize, maxSlices) : null;
    const limitMs = inputs ? physicalLimitMs(inputs) : null;

    const results: BenchResult[] = [];
    for (const row of options.rows) {
      const runsMs: number[] = [];
      const runsCpuMs: number[] = [];
      let last: ImportSummary | undefined;
      let lastController: ConcurrencyController | undefined;
      let lastRecorder: ReturnType<typeof latencyRecorder> | undefined;
      let lastOverloads = 0;
      let checksum = '';
      for (let attempt = 1; attempt <= options.repeat; attempt++) {
        options.onProgress(
          `${row.label}: ${row.strategy} at concurrency ${row.concurrency}` +
            (options.repeat > 1 ? ` (run ${attempt} of ${options.repeat})` : ''),
        );
        await db.sql`drop schema if exists ${db.sql(schema)} cascade`;
        await migrate(db.sql, schema);
        // The same wiring `run --concurrency auto` uses: one controller fed by the client, read by the strategy.
        const controller =
          row.concurrency === 'auto'
            ? createConcurrencyController({
                initial: row.initialConcurrency ?? 10,
                max: row.maxConcurrency ?? 100,
              })
            : undefined;
        const recorder = latencyRecorder(controller);
        const waha = createWahaClient({
          baseUrl: options.wahaUrl ?? sim!.url,
          apiKey: options.apiKey,
          requestTimeoutMs: scenario.requestTimeoutS * 1000,
          maxResponseBytes: 64 * 1024 * 1024,
          retry: {
            ...DEFAULT_RETRY_POLICY,
            maxRetries: scenario.maxRetries ?? DEFAULT_RETRY_POLICY.maxRetries,
          },
          observer: recorder,
        });
        // Under a checkpoint, as `run` writes: each batch counted in the database, the file saved as it commits.
        const { checkpoint } = Checkpoint.open(
          path.join(scratch, `checkpoint-${row.label}-${attempt}.json`),
          {
            session: options.session,
            schema,
            windowRequest: { days: options.days },
            window,
            pageSize: MAX_PAGE_SIZE,
            waha: { url: 'bench', session: options.session },
          },
          { fresh: true },
        );
        checkpoint.bind(await databaseIdentity(db.sql, schema));
        const cpuBefore = process.cpuUsage();
        const outcome = await runImport(
          {
            waha,
            checkpoint,
            writer: createBatchWriter(db.sql, schema),
            runLog: { start: async () => 0, finish: async () => undefined },
            reporter: SILENT_REPORTER,
            signal: new AbortController().signal,
          },
          {
            session: options.session,
            window,
            strategy: (options.strategyFor ?? getStrategy)(row.strategy)!,
            strategyOptions: {
              concurrency: controller ?? (row.concurrency as number),
              chunkSize: row.chunkSize,
              batchSize: row.batchSize,
              flushMs: 1000,
            },
            pageSize: MAX_PAGE_SIZE,
            pageEnd: 'auto',
            maxSlices: row.maxSlices ?? DEFAULT_MAX_SLICES,
            chatPageSize,
            recordedOptions: {},
          },
        );
        const cpu = process.cpuUsage(cpuBefore);
        if (outcome.error !== undefined) throw outcome.error;
        runsCpuMs.push((cpu.user + cpu.system) / 1000);
        last = outcome.summary;
        lastController = controller;
        lastRecorder = recorder;
        lastOverloads = waha.stats.overloads;
        runsMs.push(last.elapsedMs);
        checksum = (await databaseChecksum(db.sql, schema)).checksum;
      }
      const summary = last!;
      const wallMs = median(runsMs);
      const cpuMs = Math.round(median(runsCpuMs));
      const limitStats = lastController?.stats();
      results.push({
        label: row.label,
        strategy: row.strategy,
        concurrency: row.concurrency,
        maxConcurrency: row.concurrency === 'auto' ? (row.maxConcurrency ?? 100) : null,
        limit: limitStats
          ? {
              final: limitStats.current,
              peak: limitStats.highest,
              lowest: limitStats.lowest,
              settled: limitStats.settled,
            }
          : null,
        overloads: lastOverloads,
        latencyP50Ms: lastRecorder?.latencies.length ? Math.round(median(lastRecorder.latencies)) : null,
        vsBestFixed: null,
        chunkSize: row.strategy === 'chunked' ? row.chunkSize : null,
        batchSize: row.strategy === 'streaming' ? row.batchSize : null,
        wallMs,
        runsMs,
        transactions: summary.dbTransactions,
        requests: summary.wahaRequests,
        retries: summary.retries,
        messages: summary.messagesFetched,
        messagesPerSecond: wallMs > 0 ? (summary.messagesFetched * 1000) / wallMs : 0,
        cpuMs,
        cpuSPerMillion: summary.messagesFetched > 0 ? (cpuMs / summary.messagesFetched) * 1000 : null,
        vsWriteLimit: null,
        speedupVsV1: null,
        limitRatio: limitMs ? wallMs / limitMs : null,
        checksum,
        sameAsFirst: results.length === 0 || results[0]!.checksum === checksum,
        studyEstimateS: row.studyEstimateS,
        studyTransactions: row.studyTransactions,
      });
    }
    let writeLimit: CopyLimit | null = null;
    if (options.writeLimit && results.length > 0) {
      options.onProgress('write limit: COPY of the same rows into an empty copy of messages');
      // The schema still holds what the last row imported: every row left the same (checksum).
      writeLimit = await measureCopyLimit(db, schema, scratch, options.repeat);
      for (const result of results) result.vsWriteLimit = result.messagesPerSecond / writeLimit.rowsPerSecond;
    }
    const v1 = results.find((r) => r.label === 'V1');
    for (const result of results) result.speedupVsV1 = v1 ? v1.wallMs / result.wallMs : null;
    for (const result of results.filter((r) => r.concurrency === 'auto')) {
      const fixed = results.filter((r) => r.strategy === result.strategy && r.concurrency !== 'auto');
      const best = Math.min(...fixed.map((r) => r.wallMs));
      result.vsBestFixed = fixed.length ? result.wallMs / best : null;
    }
    return {
      scenario: scenario.name,
      description: options.wahaUrl ? `a real WAHA at ${redactUrl(options.wahaUrl)}` : scenario.description,
      machine: {
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
        memoryGb: Math.round(os.totalmem() / 2 ** 30),
        node: process.version,
        platform: `${os.platform()} ${os.release()}`,
      },
      database: db.embedded ? 'embedded' : 'external',
      waha: sim ? 'simulator' : 'real',
      physicalLimitMs: limitMs,
      writeLimit,
      limitFormula: 'T_limit = L × (S + max(⌈R / C⌉, ⌈P / M⌉))',
      limitInputs: inputs,
      results,
      consistent: results.every((r) => r.sameAsFirst),
    };
  } finally {
    if (db) {
      await db.sql`drop schema if exists ${db.sql(schema)} cascade`.catch(() => undefined);
      await db.close();
    }
    sim?.stop();
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}
