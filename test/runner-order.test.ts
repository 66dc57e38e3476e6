import type { ChatRecord } from '../src/domain.js';
import { createBatchWriter, migrate } from '../src/db/index.js';
import { mostRecentFirst, runImport } from '../src/import/runner.js';
import type { Reporter } from '../src/report/reporter.js';
import { generateDataset, startSimulator } from '../src/sim/index.js';
import { strategyNamed } from '../src/strategies/registry.js';
import type { Strategy } from '../src/strategies/types.js';
import { createWahaClient } from '../src/waha/client.js';
import { FAST_RETRY } from './support/contract.js';
import { useTestDatabase } from './support/db.js';
import { listedChat } from './support/records.js';
import { expectDatabaseMatches } from './support/truth.js';

/**
 * Chats are fetched most recently active first: the chats people write in most are the ones they wrote
 * in last, and the longest chat, started late, sets how long the whole import takes.
 */

const db = useTestDatabase();
const SILENT: Reporter = new Proxy({} as Reporter, { get: () => () => undefined });

const chat = listedChat;

it('orders by last activity, newest first; chats without one last; ties keep the listing order', () => {
  const listed = [chat('a', null), chat('b', 100), chat('c', 300), chat('d', 100), chat('e', null)];
  expect(mostRecentFirst(listed).map((c) => c.id)).toEqual(['c', 'b', 'd', 'a', 'e']);
  // The listing itself is left as it was.
  expect(listed.map((c) => c.id)).toEqual(['a', 'b', 'c', 'd', 'e']);
});

it('an import hands the strategy its chats most recently active first, and imports them all', async () => {
  const { sql, schema } = db;
  await migrate(sql, schema);
  const dataset = generateDataset({ chats: 30, messages: 600, bigChats: [150], seed: 5 });
  const window = { fromS: dataset.options.anchorS! - 40 * 86_400, toS: dataset.options.anchorS! };
  const sim = await startSimulator({ sessions: [{ name: 'default', dataset }] });
  try {
    const streaming = strategyNamed('streaming');
    let handed: ChatRecord[] = [];
    const recording: Strategy = {
      ...streaming,
      run: (context) => {
        handed = context.chats.map((c) => c.chat);
        return streaming.run(context);
      },
    };
    const outcome = await runImport(
      {
        waha: createWahaClient({
          baseUrl: sim.url,
          requestTimeoutMs: 10_000,
          maxResponseBytes: 16 << 20,
          retry: FAST_RETRY,
        }),
        writer: createBatchWriter(sql, schema),
        runLog: { start: () => Promise.resolve(1), finish: () => Promise.resolve() },
        reporter: SILENT,
        signal: new AbortController().signal,
      },
      {
        session: 'default',
        window,
        strategy: recording,
        strategyOptions: { concurrency: 4, chunkSize: 10, batchSize: 100, flushMs: 50 },
        pageSize: 20,
        pageEnd: 'auto',
        chatPageSize: 7,
        recordedOptions: {},
      },
    );
    expect(outcome.error).toBeUndefined();
    expect(handed).toHaveLength(30);
    const times = handed.map((c) => c.lastActivityAt!.getTime());
    expect(times).toEqual([...times].sort((x, y) => y - x));
    // WAHA was asked for the chats by id: that order is not the one handed on.
    const ids = handed.map((c) => c.id);
    expect(ids).not.toEqual([...ids].sort());
    await expectDatabaseMatches(sql, schema, 'default', sim.groundTruth('default', window).messages);
  } finally {
    await sim.close();
  }
});
