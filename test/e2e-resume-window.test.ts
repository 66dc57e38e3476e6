import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateDataset, startOfUtcDayS, startSimulator, type Simulator } from '../src/sim/index.js';
import { checkpointShows, jsonSummary, runArgs, runCli } from './support/cli.js';
import { useTestDatabase } from './support/db.js';
import { expectDatabaseMatches } from './support/truth.js';

/**
 * A cron job asks for a moving window (`--days`, `--incremental`) and may resume a run left unfinished:
 * killed, or partial because WAHA fails one chat on every try (WEBJS #2005). The resumed run reads its
 * own, earlier window; the time since then must be read in the same run, or every night that resumes
 * reads nothing new while the run reports what it reported the night before.
 */

const db = useTestDatabase();
// Anchored a day back: the generated history is older than any overlap, whatever the hour.
const DATASET = generateDataset({ chats: 10, messages: 300, seed: 9, anchorS: startOfUtcDayS() - 86_400 });
const FAILING = DATASET.chats[1]!.id;
const OTHER = DATASET.chats.find((chat, i) => i !== 1 && chat.messages.length > 0)!.id;
let sim: Simulator;

beforeEach(async () => {
  // WAHA answers 500 on every request for one chat's messages (WEBJS's waitForChatLoading, #2005).
  sim = await startSimulator({
    profile: { failingChats: [FAILING] },
    sessions: [{ name: 'default', dataset: structuredClone(DATASET) }],
  });
});
afterEach(() => sim.close());

function args(checkpoint: string, extra: string[]): string[] {
  return runArgs(sim.url, db.schema, ['--checkpoint', checkpoint, '--max-retries', '1', ...extra]);
}

function tempCheckpoint(): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-window-')), 'checkpoint.json');
}

/** Waits until the clock has left `second`: a window asked for after this ends later. */
async function clockPast(second: number): Promise<void> {
  while (Math.floor(Date.now() / 1000) <= second) await new Promise((resolve) => setTimeout(resolve, 50));
}

async function partialNight(checkpoint: string, extra: string[]): Promise<{ fromS: number; toS: number }> {
  const night = await runCli(args(checkpoint, extra));
  expect(night.code).toBe(5);
  const { summary } = jsonSummary(night.stdout);
  expect(summary.status).toBe('partial');
  expect(summary.chatsFailed).toBe(1);
  return summary.window as unknown as { fromS: number; toS: number };
}

async function storedAt(seconds: number[]): Promise<number> {
  const [{ n }] = await db.sql<[{ n: number }]>`
    select count(*)::int as n from ${db.sql(db.schema)}.messages where timestamp_s = any(${seconds})`;
  return n;
}

describe('a resumed run reads the window asked for now as well', () => {
  it('--incremental, a chat failing every night: what arrived since the first night is imported', async () => {
    const checkpoint = tempCheckpoint();
    const first = await partialNight(checkpoint, ['--incremental']);
    await clockPast(first.toS);
    sim.addMessages('default', OTHER, 3, first.toS + 1);

    const night = await runCli(args(checkpoint, ['--incremental']));
    expect(night.code).toBe(5);
    expect(await storedAt([first.toS + 1])).toBe(3);
    expect(night.stdout).toContain('Resuming the run started');
    expect(night.stdout).toContain("The resumed run's window ended at");
    const { summary } = jsonSummary(night.stdout);
    const window = summary.window as unknown as { fromS: number; toS: number };
    expect(window.toS).toBeGreaterThan(first.toS);
    expect(summary.chatsFailed).toBe(1);
    expect(await storedAt([first.toS + 1])).toBe(3);
    await expectDatabaseMatches(
      db.sql,
      db.schema,
      'default',
      sim.groundTruth('default', { fromS: first.fromS, toS: window.toS }),
    );

    // The night after starts from the run that read up to now, not from the first night's window.
    await clockPast(window.toS);
    sim.addMessages('default', OTHER, 2, window.toS + 1);
    const next = await runCli(args(checkpoint, ['--incremental']));
    expect(next.code).toBe(5);
    expect(await storedAt([window.toS + 1])).toBe(2);
  });

  it('--days: the chats the resumed run had completed are read from before its end, the failed one whole', async () => {
    const checkpoint = tempCheckpoint();
    const first = await partialNight(checkpoint, ['--days', '30']);
    await clockPast(first.toS);
    sim.addMessages('default', OTHER, 3, first.toS + 1);
    // Reached WAHA after the first night with an older time: inside the resumed window's last hour.
    sim.addMessages('default', OTHER, 1, first.toS - 600);

    const night = await runCli(args(checkpoint, ['--days', '30']));
    expect(night.code).toBe(5);
    expect(await storedAt([first.toS + 1, first.toS - 600])).toBe(4);
    expect(night.stdout).toContain("The resumed run's window ended at");
    const { summary } = jsonSummary(night.stdout);
    const window = summary.window as unknown as { fromS: number; toS: number };
    expect(window.toS).toBeGreaterThan(first.toS);
    expect(await storedAt([first.toS + 1, first.toS - 600])).toBe(4);
    const truth = sim.groundTruth('default', { fromS: first.fromS, toS: window.toS });
    await expectDatabaseMatches(db.sql, db.schema, 'default', truth);
    // Only the last hour of the resumed window and what followed it were read again.
    const recent = truth.messages.filter((m) => m.timestamp >= first.toS - 3600);
    expect(summary.messagesFetched).toBe(recent.length);
    expect(recent.length).toBeLessThan(truth.messages.length / 10);
  });

  it("a run of another request is not held by a partial run's checkpoint: it starts over and reads the failed chat", async () => {
    // The README's cron: --incremental on weekdays, --days 8 on Sunday, one checkpoint file.
    const checkpoint = tempCheckpoint();
    const first = await partialNight(checkpoint, ['--days', '8']);
    // Something new, so the weekday run commits (and its checkpoint replaces Sunday's).
    await clockPast(first.toS);
    sim.addMessages('default', OTHER, 1, first.toS + 1);
    const weekday = await runCli(args(checkpoint, ['--incremental']));
    expect(weekday.code).toBe(5);
    expect(weekday.stdout).toContain('Not resuming the run started');
    expect(weekday.stdout).toContain('it ended with chats that could not be imported');
    const { summary } = jsonSummary(weekday.stdout);
    expect(summary.status).toBe('partial');
    // Listed as WAHA lists it (NOWEB: @s.whatsapp.net).
    expect(summary.failedChats).toEqual([
      expect.objectContaining({
        chatId: expect.stringContaining(FAILING.split('@')[0]!),
        reason: 'waha-failing',
      }),
    ]);
    // And back: Sunday's run is not held by the weekday's partial run either.
    const sunday = await runCli(args(checkpoint, ['--days', '8']));
    expect(sunday.code).toBe(5);
    expect(sunday.stdout).toContain('Not resuming the run started');
    expect(await storedAt([first.toS + 1])).toBe(1);
  });

  /** Sunday's --days 8 on `checkpoint`, killed (a reboot) once two chats are done, one chat still unread. */
  async function killedSunday(checkpoint: string): Promise<{ fromS: number }> {
    const held = DATASET.chats.find((chat, i) => i > 1 && chat.messages.length > 0)!;
    let release: () => void = () => undefined;
    const hold = new Promise<void>((resolve) => (release = resolve));
    const removeHook = sim.onRequest(async (request) => {
      if (request.route === 'messages' && request.chatId?.startsWith(held.id.split('@')[0]!)) await hold;
    });
    const sunday = runCli(args(checkpoint, ['--days', '8']));
    expect(
      await checkpointShows(checkpoint, (saved) => (saved.completedChats as string[]).length >= 2, sunday),
    ).toBe(true);
    sunday.child.kill('SIGKILL');
    await sunday;
    release();
    removeHook();
    return (JSON.parse(fs.readFileSync(checkpoint, 'utf8')) as { window: { fromS: number } }).window;
  }

  it("a run of the cron's other line killed halfway is finished first, then this one runs", async () => {
    // Sunday's --days 8 killed (a reboot) with one chat unread; Monday's --incremental on the same file.
    // Before, every weekday run was refused (exit 1) until Sunday came round again.
    const checkpoint = tempCheckpoint();
    await killedSunday(checkpoint);

    const monday = await runCli(args(checkpoint, ['--incremental']));
    expect(monday.code).toBe(5);
    expect(monday.stdout).toContain('Finishing first the run started');
    expect(monday.stdout).toContain('for --days 8');
    const { summary } = jsonSummary(monday.stdout);
    // Sunday's eight days whole (the held chat included), then the incremental run's own window, thirty
    // days: the nine chats Sunday's run marked are read back to its start (their spans begin eight days
    // back), and the failing chat, failed by Sunday's run, is retried and fails again.
    expect(summary.incremental).toMatchObject({
      chatsQuiet: 0,
      chatsNew: 0,
      chatsBackfilled: 9,
      chatsRetried: 1,
    });
    const window = summary.window as unknown as { fromS: number; toS: number };
    await expectDatabaseMatches(db.sql, db.schema, 'default', sim.groundTruth('default', window));
  });

  it('a chat the finished run failed, quiet since its last import, still fails the run that finishes it', async () => {
    // Every chat imported once by a healthy WAHA; Sunday's --days 8 killed, and WAHA now fails one chat.
    // Monday finishes Sunday's run (partial: the chat failed), then its own --incremental: before, that
    // pass found the chat quiet since its mark, skipped it, and the run exited 0 with the chat still failed.
    const healthy = await startSimulator({
      sessions: [{ name: 'default', dataset: structuredClone(DATASET) }],
    });
    try {
      const first = await runCli(
        runArgs(healthy.url, db.schema, ['--incremental', '--checkpoint', tempCheckpoint()]),
      );
      expect(first.code).toBe(0);
    } finally {
      await healthy.close();
    }
    const checkpoint = tempCheckpoint();
    await killedSunday(checkpoint);
    const monday = await runCli(args(checkpoint, ['--incremental']));
    expect(monday.stdout).toContain('Finishing first the run started');
    expect(monday.code).toBe(5);
    const { summary } = jsonSummary(monday.stdout);
    expect(summary).toMatchObject({ status: 'partial', chatsFailed: 1 });
    expect(summary.incremental).toMatchObject({ chatsRetried: 1, chatsBackfilled: 0, chatsNew: 0 });
  });

  it('an --until that does not move: the resumed run is the whole run', async () => {
    const checkpoint = tempCheckpoint();
    const untilS = startOfUtcDayS();
    const window = ['--since', String(untilS - 30 * 86_400), '--until', String(untilS)];
    await partialNight(checkpoint, window);
    const night = await runCli(args(checkpoint, window));
    expect(night.code).toBe(5);
    expect(night.stdout).toContain('Resuming the run started');
    expect(night.stdout).not.toContain("The resumed run's window ended at");
    // Only the failed chat was asked for again: one request for its messages.
    expect(jsonSummary(night.stdout).summary.messagesFetched).toBe(0);
    // As a person reads it: finished, not failed.
    const plain = await runCli(args(checkpoint, window).filter((arg) => arg !== '--json'));
    expect(plain.code).toBe(5);
    expect(plain.stdout).toContain('Import finished, but some chats could not be imported');
    expect(plain.stdout).not.toContain('Import failed');
  });
});
