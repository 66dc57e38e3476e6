import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { databaseChecksum, migrate, openDatabase, type Database } from '../db/index.js';
import type { TimeWindow } from '../domain.js';
import { errorMessage } from '../errors.js';
import { SILENT_REPORTER } from '../report/reporter.js';
import { generateDataset, startSimulator, type Simulator } from '../sim/index.js';
import { createWahaClient, MAX_PAGE_SIZE } from '../waha/client.js';
import { bossSchema, startBoss } from '../queue/boss.js';
import { planImport } from '../queue/plan.js';
import { DEFAULT_MAX_SLICES } from '../import/slices.js';
import { physicalLimitMs } from './limit.js';
import { limitInputs } from './run-bench.js';
import type { Scenario } from './scenarios.js';

/**
 * `bench --workers 1,2,4`: the same plan imported by 1, 2, 4 worker processes sharing one queue, against
 * several WAHA servers (one simulator each, each with the scenario's capacity), to show what workers add
 * and that together they stay within the servers' capacity (the overload answers they draw).
 */
export interface WorkersBenchOptions {
  scenario: Scenario;
  workers: number[];
  servers: number;
  databaseUrl: string | undefined;
  onProgress: (text: string) => void;
}

export interface WorkersBenchRow {
  workers: number;
  wallMs: number;
  messages: number;
  messagesPerSecond: number;
  requests: number;
  /** Requests the simulators refused for want of capacity (503, their queue full). */
  overloads: number;
  jobs: number;
  speedupVsOne: number | null;
  limitRatio: number;
  checksum: string;
  sameAsFirst: boolean;
}

export interface WorkersBenchReport {
  scenario: string;
  description: string;
  servers: number;
  machine: { cpus: number; cpuModel: string; memoryGb: number; node: string };
  physicalLimitMs: number;
  rows: WorkersBenchRow[];
  consistent: boolean;
}

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/waha-import.js');
/** enqueue's default. */
const CHATS_PER_JOB = 100;

/** One server's limit, L × (S + max(⌈R / C⌉, P)), for its dataset (the scenario's with another seed). */
function serverLimitMs(scenario: Scenario, seed: number, window: TimeWindow): number {
  const inputs = limitInputs(
    { ...scenario, sim: { ...scenario.sim, seed } },
    window,
    500,
    DEFAULT_MAX_SLICES,
  );
  // The lids request also comes before the first message request here (a worker asks it per job).
  return physicalLimitMs({ ...inputs, sequentialRequests: inputs.sequentialRequests + 1 });
}

function runWorkerProcess(url: string, schema: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [BIN, 'worker', '--once', '--poll', '1', '--schema', schema, '--quiet'],
      {
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', DATABASE_URL: url },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

export async function runWorkersBench(options: WorkersBenchOptions): Promise<WorkersBenchReport> {
  const { scenario } = options;
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-bench-'));
  fs.chmodSync(scratch, 0o755);
  const schema = `waha_bench_${randomBytes(4).toString('hex')}`;
  const sims: Simulator[] = [];
  let db: Database | undefined;
  try {
    options.onProgress(`starting ${options.servers} simulated WAHA servers (${scenario.description})`);
    for (let i = 0; i < options.servers; i++) {
      const s = scenario.sim;
      sims.push(
        await startSimulator({
          engine: s.engine,
          latencyMs: s.latencyMs,
          jitterMs: s.jitterMs,
          capacity: s.capacity,
          queueLimit: s.queueLimit,
          sessions: [
            {
              name: `number${i + 1}`,
              dataset: generateDataset({
                chats: s.chats,
                messages: s.messages,
                days: s.days,
                seed: s.seed + i,
              }),
            },
          ],
        }),
      );
    }
    db = await openDatabase({ databaseUrl: options.databaseUrl, dataDir: path.join(scratch, 'postgres') });
    const nowS = Math.floor(Date.now() / 1000);
    const window: TimeWindow = { fromS: nowS - scenario.sim.days * 86_400, toS: nowS };
    const limitMs = Math.max(...sims.map((_, i) => serverLimitMs(scenario, scenario.sim.seed + i, window)));
    const rows: WorkersBenchRow[] = [];
    for (const workers of options.workers) {
      options.onProgress(`${workers} worker${workers === 1 ? '' : 's'}: planning`);
      await db.sql`drop schema if exists ${db.sql(schema)} cascade`;
      await db.sql`drop schema if exists ${db.sql(bossSchema(schema))} cascade`;
      await migrate(db.sql, schema);
      const boss = await startBoss({ url: db.url, schema }, () => undefined);
      let jobs = 0;
      try {
        const clients = new Map(
          sims.map((sim) => [
            sim.url,
            createWahaClient({ baseUrl: sim.url, requestTimeoutMs: 60_000, maxResponseBytes: 64 * 2 ** 20 }),
          ]),
        );
        const planned = await planImport(
          {
            sql: db.sql,
            schema,
            boss,
            wahaFor: (url) => clients.get(url)!,
            reporter: SILENT_REPORTER,
            signal: new AbortController().signal,
            nowMs: window.toS * 1000,
          },
          {
            wahaUrls: sims.map((sim) => sim.url),
            sessions: 'all',
            windowRequest: { sinceS: window.fromS, untilS: window.toS },
            strategy: 'streaming',
            chunk: 50,
            batchSize: 2000,
            flushMs: 1000,
            pageSize: MAX_PAGE_SIZE,
            pageEnd: 'auto',
            emptyPages: 1,
            maxSlices: DEFAULT_MAX_SLICES,
            chatPageSize: 500,
            chatsPerJob: CHATS_PER_JOB,
            jobTimeoutS: 900,
            jobRetries: 5,
          },
          'bench',
        );
        jobs = planned.reduce((n, p) => n + p.units, 0);
      } finally {
        await boss.stop({ graceful: false, wait: true, close: true });
      }
      for (const sim of sims) sim.resetStats();
      options.onProgress(`${workers} worker${workers === 1 ? '' : 's'}: importing ${jobs} jobs`);
      const started = performance.now();
      const results = await Promise.all(
        Array.from({ length: workers }, () => runWorkerProcess(db!.url, schema)),
      );
      const wallMs = performance.now() - started;
      const failed = results.find((r) => r.code !== 0);
      if (failed) throw new Error(`a worker exited with code ${failed.code}: ${failed.stderr.trim()}`);
      const stats = sims.map((sim) => sim.stats());
      const checksum = await databaseChecksum(db.sql, schema);
      rows.push({
        workers,
        wallMs,
        messages: checksum.messages,
        messagesPerSecond: (checksum.messages * 1000) / wallMs,
        requests: stats.reduce((n, s) => n + s.requests, 0),
        overloads: stats.reduce((n, s) => n + s.rejected503, 0),
        jobs,
        speedupVsOne: null,
        limitRatio: wallMs / limitMs,
        checksum: checksum.checksum,
        sameAsFirst: rows.length === 0 || rows[0]!.checksum === checksum.checksum,
      });
    }
    const one = rows.find((r) => r.workers === 1);
    for (const row of rows) row.speedupVsOne = one ? one.wallMs / row.wallMs : null;
    return {
      scenario: scenario.name,
      description: scenario.description,
      servers: options.servers,
      machine: {
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
        memoryGb: Math.round(os.totalmem() / 2 ** 30),
        node: process.version,
      },
      physicalLimitMs: limitMs,
      rows,
      consistent: rows.every((r) => r.sameAsFirst),
    };
  } catch (error) {
    throw new Error(`bench --workers: ${errorMessage(error)}`, { cause: error });
  } finally {
    if (db) {
      await db.sql`drop schema if exists ${db.sql(schema)} cascade`.catch(() => undefined);
      await db.sql`drop schema if exists ${db.sql(bossSchema(schema))} cascade`.catch(() => undefined);
      await db.close();
    }
    for (const sim of sims) await sim.close();
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

export function renderWorkersTable(report: WorkersBenchReport): string {
  const header = [
    'workers',
    'wall time',
    'msgs/s',
    'vs 1 worker',
    'vs limit',
    'requests',
    'overloads',
    'same DB',
  ];
  const rows = report.rows.map((r) => [
    String(r.workers),
    `${(r.wallMs / 1000).toFixed(1)} s`,
    Math.round(r.messagesPerSecond).toLocaleString('en-US'),
    r.speedupVsOne === null ? '–' : `${r.speedupVsOne.toFixed(2)}x`,
    `${r.limitRatio.toFixed(2)}x`,
    r.requests.toLocaleString('en-US'),
    r.overloads.toLocaleString('en-US'),
    r.sameAsFirst ? 'yes' : 'NO',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [
    `Workers on ${report.servers} WAHA servers, each: ${report.description}`,
    '',
    line(header),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...rows.map(line),
    '',
    `Physical limit of the servers together: ${(report.physicalLimitMs / 1000).toFixed(1)} s ` +
      '(each server: latency × (requests in a row + max(message requests ÷ capacity, pages of its longest chat)); the servers work side by side).',
    'Wall time counts from starting the workers to the last one exiting (each starts Node, connects and finds the queue drained).',
  ].join('\n');
}
