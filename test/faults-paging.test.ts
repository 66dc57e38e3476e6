import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateDataset, startSimulator, type Dataset } from '../src/sim/index.js';
import { jsonSummary, runArgs, runCli } from './support/cli.js';
import { useTestDatabase } from './support/db.js';
import { expectDatabaseMatches } from './support/truth.js';

const db = useTestDatabase();
const PAGE_SIZE = 5;

/** The longest run of hidden rows (reactions, protocol messages) in any chat, in paging order. */
function longestHiddenRun(dataset: Dataset): number {
  let longest = 0;
  for (const chat of dataset.chats) {
    let run = 0;
    for (const message of chat.messages) {
      run = message.hidden ? run + 1 : 0;
      longest = Math.max(longest, run);
    }
  }
  return longest;
}

/**
 * On GOWS (NOWEB never stores hidden rows) a page made only of hidden rows comes back empty while older history exists. One empty page
 * ending a chat (the default) loses that history; --empty-pages reads past as many empty pages as asked.
 */
describe('pages made only of hidden rows', () => {
  const dataset = generateDataset({
    chats: 4,
    messages: 300,
    bigChats: [200],
    hiddenRatio: 0.6,
    seed: 8,
    nulBodies: 0,
    loneSurrogateBodies: 0,
  });
  const longest = longestHiddenRun(dataset);

  async function importWith(extra: string[]) {
    // GOWS's null timestamps off: this test is about paging (the contract suite runs GOWS with them).
    const sim = await startSimulator({
      engine: 'GOWS',
      profile: { nullTimestampShare: 0 },
      sessions: [{ name: 'default', dataset }],
    });
    try {
      const checkpoint = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-paging-')), 'c.json');
      const result = await runCli(
        runArgs(sim.url, db.schema, [
          '--checkpoint',
          checkpoint,
          '--page-size',
          String(PAGE_SIZE),
          '--until',
          String(dataset.options.anchorS),
          '--days',
          '40',
          ...extra,
        ]),
      );
      expect(result.code).toBe(0);
      const { summary } = jsonSummary(result.stdout);
      const window = summary.window as unknown as { fromS: number; toS: number };
      return {
        summary,
        model: sim.groundTruth('default', window),
        truth: sim.groundTruth('default', window).messages,
      };
    } finally {
      await sim.close();
    }
  }

  it('the dataset has runs of hidden rows longer than a page', () => {
    expect(longest).toBeGreaterThanOrEqual(PAGE_SIZE);
  });

  it('one empty page ends a chat by default, and that loses the history behind such a run', async () => {
    const { summary, truth } = await importWith([]);
    expect(Number(summary.inserted)).toBeLessThan(truth.length);
  });

  it('--empty-pages above the longest run reads past it and stores the ground truth', async () => {
    const emptyPages = Math.floor(longest / PAGE_SIZE) + 1;
    const { summary, truth, model } = await importWith(['--empty-pages', String(emptyPages)]);
    expect(summary.inserted).toBe(truth.length);
    await expectDatabaseMatches(db.sql, db.schema, 'default', model);
  });
});
