import type { StrategyName } from '../strategies/types.js';

/** Simulator settings for one bench scenario, as `waha-import sim` flags take them. */
export interface SimSettings {
  chats: number;
  messages: number;
  days: number;
  seed: number;
  engine: 'NOWEB' | 'GOWS' | 'WEBJS';
  latencyMs: number;
  jitterMs: number;
  capacity: number;
  queueLimit: number;
  errorRate: number;
  rateLimitRate: number;
  retryAfterS: number;
  timeoutRate: number;
}

export interface Scenario {
  name: string;
  description: string;
  sim: SimSettings;
  /** Seconds before a silent request is retried; short where the scenario injects timeouts. */
  requestTimeoutS: number;
  /** Retries per request; default the run default (6). */
  maxRetries?: number;
  /** Also measure the write limit: COPY of the imported rows into an empty copy of the table. */
  writeLimit?: boolean;
  /** The rows this scenario measures; default the study's (benchRows). */
  rows?: (withSequential: boolean, sim: SimSettings) => BenchRow[];
}

const SEED_SIM: SimSettings = {
  chats: 1172,
  messages: 5683,
  days: 30,
  seed: 1,
  engine: 'NOWEB',
  latencyMs: 200,
  jitterMs: 50,
  capacity: 50,
  queueLimit: 10_000,
  errorRate: 0,
  rateLimitRate: 0,
  retryAfterS: 1,
  timeoutRate: 0,
};

/** WAHA's capacity in the capacity scenario; its rows are set relative to it. */
const CAPACITY = 25;

export const SCENARIOS: Record<string, Scenario> = {
  seed: {
    name: 'seed',
    description:
      "the study's dataset (1,172 chats, 5,683 messages, 30 days) behind a WAHA answering in ~200 ms, 50 requests at once",
    sim: SEED_SIM,
    requestTimeoutS: 60,
  },
  large: {
    name: 'large',
    description: '10,000 chats, 1,000,000 messages, 5 ms latency: where writing dominates',
    sim: { ...SEED_SIM, chats: 10_000, messages: 1_000_000, latencyMs: 5, jitterMs: 2, capacity: 50 },
    requestTimeoutS: 60,
    writeLimit: true,
  },
  'slow-waha': {
    name: 'slow-waha',
    description: 'the seed dataset behind a struggling WAHA: ~1 s per request, 10 at once',
    sim: { ...SEED_SIM, latencyMs: 1000, jitterMs: 300, capacity: 10 },
    requestTimeoutS: 120,
  },
  flaky: {
    name: 'flaky',
    description: 'the seed scenario with 5% 5xx, 2% 429 (Retry-After 1 s) and 1% requests never answered',
    sim: { ...SEED_SIM, errorRate: 0.05, rateLimitRate: 0.02, retryAfterS: 1, timeoutRate: 0.01 },
    requestTimeoutS: 3,
  },
  capacity: {
    name: 'capacity',
    description: `the seed dataset behind a WAHA serving ${CAPACITY} requests at once (~200 ms each) with room for only 5 more in its queue (beyond: 503): fixed concurrency against adaptive`,
    sim: { ...SEED_SIM, capacity: CAPACITY, queueLimit: 5 },
    requestTimeoutS: 10,
    // A far too high fixed setting meets many 503s in a row; the bench should show its cost, not fail.
    maxRetries: 12,
    rows: capacityRows,
  },
};

/**
 * The scenario with the simulator settings the flags gave (`bench --capacity 200`). Its description is
 * written for the scenario's own settings, so it names the ones the flags changed. Only the scenario's
 * settings are taken from `given`: anything else (the real WAHA's --api-key) never reaches the description.
 */
export function withSimFlags(base: Scenario, given: Record<string, unknown>): Scenario {
  const keys = Object.keys(base.sim) as Array<keyof SimSettings>;
  const sim = { ...base.sim };
  for (const key of keys) if (given[key] !== undefined) (sim as Record<string, unknown>)[key] = given[key];
  // The scenario's own words state its settings: each one a flag changed is named with both values.
  const changed = keys
    .filter((key) => sim[key] !== base.sim[key])
    .map((key) => `${key} ${String(sim[key])} (not ${String(base.sim[key])})`);
  return {
    ...base,
    description: changed.length
      ? `${base.description}; changed by flags: ${changed.join(', ')}`
      : base.description,
    sim,
  };
}

export interface BenchRow {
  /** The study's name for the approach. */
  label: string;
  strategy: StrategyName;
  /** Chats fetched at once, or 'auto': the adaptive controller, between 1 and maxConcurrency. */
  concurrency: number | 'auto';
  /** auto: the highest limit it may reach (and, for display, its start). */
  maxConcurrency?: number;
  initialConcurrency?: number;
  chunkSize: number;
  batchSize: number;
  /** Time slices per chat (src/import/slices.ts); default DEFAULT_MAX_SLICES, as `run`. */
  maxSlices?: number;
  /** The study's estimate for its dataset, in seconds, where it gave one. */
  studyEstimateS: number | null;
  studyTransactions: number | null;
}

/**
 * The rows of the study's table, with its estimates, plus sequential when asked for, and where the
 * simulated WAHA's capacity is known and not the study's 100: streaming at exactly that capacity (what
 * someone who knows their WAHA would pin), named C and the number.
 */
export function benchRows(withSequential: boolean, sim?: SimSettings): BenchRow[] {
  const base = { chunkSize: 50, batchSize: 2000 };
  const rows: BenchRow[] = [
    {
      ...base,
      label: 'V1',
      strategy: 'parallel',
      concurrency: 20,
      // The study's importer reads each chat's pages one after another.
      maxSlices: 1,
      studyEstimateS: 9 * 60,
      studyTransactions: 1172,
    },
    {
      ...base,
      label: 'A',
      strategy: 'parallel',
      concurrency: 100,
      studyEstimateS: 2 * 60,
      studyTransactions: 1172,
    },
    {
      ...base,
      label: 'B',
      strategy: 'chunked',
      concurrency: 100,
      chunkSize: 100,
      studyEstimateS: 60,
      studyTransactions: 12,
    },
    {
      ...base,
      label: 'D',
      strategy: 'chunked',
      concurrency: 50,
      chunkSize: 50,
      studyEstimateS: 90,
      studyTransactions: 24,
    },
    {
      ...base,
      label: 'C',
      strategy: 'streaming',
      concurrency: 100,
      studyEstimateS: 30,
      studyTransactions: 10,
    },
    {
      // What `run` does by default: streaming with the concurrency found while running.
      ...base,
      label: 'C-auto',
      strategy: 'streaming',
      concurrency: 'auto',
      maxConcurrency: 100,
      studyEstimateS: null,
      studyTransactions: null,
    },
  ];
  const capacity = sim?.capacity;
  if (capacity !== undefined && Number.isFinite(capacity) && capacity !== 100) {
    rows.push({
      ...base,
      label: `C${capacity}`,
      strategy: 'streaming',
      concurrency: capacity,
      studyEstimateS: null,
      studyTransactions: null,
    });
  }
  if (withSequential) {
    rows.unshift({
      ...base,
      label: 'seq',
      strategy: 'sequential',
      concurrency: 1,
      studyEstimateS: null,
      studyTransactions: null,
    });
  }
  return rows;
}

/**
 * Fixed settings around WAHA's capacity C (C/2, C, 2C, 8C) against auto, for streaming and chunked: auto
 * should settle near C and be about as fast as the best fixed setting, which nobody knows in advance.
 */
export function capacityRows(withSequential: boolean, sim: SimSettings): BenchRow[] {
  const C = Number.isFinite(sim.capacity) ? Math.max(2, Math.round(sim.capacity)) : CAPACITY;
  const none = { studyEstimateS: null, studyTransactions: null, chunkSize: 50, batchSize: 2000 };
  const rows: BenchRow[] = [
    ...[Math.round(C / 2), C, 2 * C, 8 * C].map((concurrency): BenchRow => ({
      ...none,
      label: `S${concurrency}`,
      strategy: 'streaming',
      concurrency,
    })),
    {
      ...none,
      label: 'S-auto',
      strategy: 'streaming',
      concurrency: 'auto',
      maxConcurrency: 8 * C,
      initialConcurrency: 10,
    },
    ...[C, 8 * C].map((concurrency): BenchRow => ({
      ...none,
      label: `K${concurrency}`,
      strategy: 'chunked',
      concurrency,
    })),
    {
      ...none,
      label: 'K-auto',
      strategy: 'chunked',
      concurrency: 'auto',
      maxConcurrency: 8 * C,
      initialConcurrency: 10,
    },
  ];
  if (withSequential) {
    rows.unshift({ ...none, label: 'seq', strategy: 'sequential', concurrency: 1 });
  }
  return rows;
}
