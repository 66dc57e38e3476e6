import type { BatchWriter } from '../../src/domain.js';
import { createBatchWriter, migrate } from '../../src/db/index.js';
import { runImport, type ImportOutcome } from '../../src/import/runner.js';
import type { Reporter } from '../../src/report/reporter.js';
import type { Simulator } from '../../src/sim/index.js';
import { strategyNamed } from '../../src/strategies/registry.js';
import type { StrategyName, StrategyOptions } from '../../src/strategies/types.js';
import { createWahaClient } from '../../src/waha/client.js';
import { FAST_RETRY } from './contract.js';
import type { TestDatabase } from './db.js';

/**
 * One in-process import of the simulator's session "default" (the last 400 days, pages of 20 messages)
 * into the test's schema, with the runner, client and writer of `run` and a run log that records
 * nothing. The reporter is made from the writer, so that it can count the writer's commits.
 */
export async function runAgainstSim(
  strategy: StrategyName,
  options: {
    sim: Pick<Simulator, 'url'>;
    db: Pick<TestDatabase, 'sql' | 'schema'>;
    strategyOptions: StrategyOptions;
    chatPageSize: number;
    reporter: (writer: BatchWriter) => Reporter;
  },
): Promise<ImportOutcome> {
  const { sql, schema } = options.db;
  await migrate(sql, schema);
  const writer = createBatchWriter(sql, schema);
  const nowS = Math.floor(Date.now() / 1000);
  return runImport(
    {
      waha: createWahaClient({
        baseUrl: options.sim.url,
        requestTimeoutMs: 10_000,
        maxResponseBytes: 16 << 20,
        retry: FAST_RETRY,
      }),
      writer,
      runLog: { start: () => Promise.resolve(1), finish: () => Promise.resolve() },
      reporter: options.reporter(writer),
      signal: new AbortController().signal,
    },
    {
      session: 'default',
      window: { fromS: nowS - 400 * 86_400, toS: nowS + 86_400 },
      strategy: strategyNamed(strategy),
      strategyOptions: options.strategyOptions,
      pageSize: 20,
      pageEnd: 'auto',
      chatPageSize: options.chatPageSize,
      recordedOptions: {},
    },
  );
}
