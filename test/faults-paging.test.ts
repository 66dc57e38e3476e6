import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  appendMessages,
  appendRevokeRow,
  generateDataset,
  startSimulator,
  type Dataset,
} from '../src/sim/index.js';
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

/**
 * A page that is not full, all in one second: on GOWS the rest of it can be hidden rows of that second or
 * just below it (a revoked message's REVOKE row is dated at the message's second), with older history
 * behind them. Before, the page was asked again, came the same, and the chat ended there with the run
 * succeeding: a second of 70 messages over 30 hidden rows lost everything older.
 */
describe('a busy second on a short page', () => {
  const LIMIT = 100;

  /** One chat of 150 messages, then `busy` messages in one second above them, over `hidden` REVOKE rows. */
  function busyDataset(busy: number, hidden: number): Dataset {
    const dataset = generateDataset({
      seed: 5,
      chats: 1,
      emptyChats: 0,
      messages: 150,
      bigChats: [150],
      hiddenRatio: 0,
      lidRatio: 0,
      groupRatio: 1,
      nulBodies: 0,
      loneSurrogateBodies: 0,
      days: 5,
    });
    const chat = dataset.chats[0]!;
    const busyS = Math.max(...chat.messages.map((m) => m.timestampS)) + 100;
    const older = chat.messages.filter((m) => !m.hidden);
    appendMessages(dataset, chat.id, busy, busyS);
    for (let i = 1; i <= hidden; i++) appendRevokeRow(dataset, chat, older[older.length - i]!, busyS - 1);
    return dataset;
  }

  async function importAll(
    dataset: Dataset,
    extra: string[],
    prepare?: (sim: Awaited<ReturnType<typeof startSimulator>>) => void,
  ) {
    const sim = await startSimulator({
      engine: 'GOWS',
      profile: { nullTimestampShare: 0 },
      sessions: [{ name: 'default', dataset }],
    });
    try {
      prepare?.(sim);
      const result = await runCli(runArgs(sim.url, db.schema, ['--days', '30', ...extra]));
      expect(result.code).toBe(0);
      const window = jsonSummary(result.stdout).summary.window as unknown as { fromS: number; toS: number };
      const truth = sim.groundTruth('default', window);
      expect(truth.messages.length).toBeGreaterThan(150);
      await expectDatabaseMatches(db.sql, db.schema, 'default', truth);
    } finally {
      await sim.close();
    }
  }

  // In one slice: a slice's bound falling below the busy second would hide what is tested here.
  it('70 messages in one second over 30 hidden rows: the history below is read', async () => {
    await importAll(busyDataset(70, 30), ['--max-slices', '1']);
  });

  it('97 messages in one second, 3 of them revoked: the history below is read', async () => {
    const dataset = busyDataset(0, 0);
    const chatId = dataset.chats[0]!.id;
    const busyS = Math.max(...dataset.chats[0]!.messages.map((m) => m.timestampS)) + 100;
    await importAll(dataset, ['--max-slices', '1'], (sim) => {
      const added = sim.addMessages('default', chatId, LIMIT - 3, busyS);
      for (const message of added.slice(0, 3)) expect(sim.revokeMessage('default', message.id)).toBe(true);
    });
  });

  it('a page of 20 with 10 messages of one second over 10 hidden rows, one chat at a time', async () => {
    await importAll(busyDataset(10, 10), ['--page-size', '20', '--strategy', 'sequential']);
  });
});
