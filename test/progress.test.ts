import { formatEta, type Progress, type Reporter } from '../src/report/reporter.js';
import { startSimulator } from '../src/sim/index.js';
import { useTestDatabase } from './support/db.js';
import { runAgainstSim } from './support/run.js';

const db = useTestDatabase();

/** A reporter that keeps progress reports and notes, for each, how many commits had happened before it. */
function progressRecorder(
  commits: () => number,
): Reporter & { reports: Array<Progress & { commits: number }> } {
  const reports: Array<Progress & { commits: number }> = [];
  return new Proxy({ reports } as unknown as Reporter & { reports: typeof reports }, {
    get(_target, key) {
      if (key === 'reports') return reports;
      if (key === 'progress') return (p: Progress) => reports.push({ ...p, commits: commits() });
      return () => undefined;
    },
  });
}

describe('progress', () => {
  it('moves with pages fetched, before anything is committed, and ends with every chat fetched and committed', async () => {
    const sim = await startSimulator({
      sessions: [{ name: 'default', datasetOptions: { chats: 8, messages: 300, seed: 11 } }],
    });
    try {
      let reporter!: ReturnType<typeof progressRecorder>;
      const outcome = await runAgainstSim('streaming', {
        sim,
        db,
        // One batch for the whole import: nothing commits until every chat is fetched.
        strategyOptions: { concurrency: 2, chunkSize: 5, batchSize: 1_000_000, flushMs: 600_000 },
        chatPageSize: 50,
        reporter: (writer) => (reporter = progressRecorder(() => writer.transactions)),
      });
      expect(outcome.error).toBeUndefined();
      expect(outcome.summary.dbTransactions).toBe(1);
      const beforeCommit = reporter.reports.filter((p) => p.commits === 0 && p.messagesFetched > 0);
      expect(beforeCommit.length).toBeGreaterThan(0);
      expect(beforeCommit.every((p) => p.chatsDone === 0)).toBe(true);
      const last = reporter.reports.at(-1)!;
      expect(last).toMatchObject({ chatsFetched: 8, chatsDone: 8, chatsTotal: 8, messagesFetched: 300 });
      reporter.reports.forEach((later, i) => {
        const earlier = reporter.reports[Math.max(0, i - 1)]!;
        expect(later.chatsFetched).toBeGreaterThanOrEqual(earlier.chatsFetched);
        expect(later.chatsFetched).toBeGreaterThanOrEqual(later.chatsDone);
      });
    } finally {
      await sim.close();
    }
  });

  it('the ETA says nothing until a chat is fetched, then extrapolates', () => {
    expect(formatEta(1172, 0, 7)).toBe('-');
    expect(formatEta(100, 100, 10)).toBe('10s');
    expect(formatEta(1000, 100, 10)).toBe('1m 40s');
    expect(formatEta(10_000, 10, 10)).toBe('2h 46m');
    expect(formatEta(0, 5, 1)).toBe('0s');
  });
});
