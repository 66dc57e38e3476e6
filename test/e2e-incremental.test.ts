import { formKey } from '../src/db/sync.js';
import { planIncremental } from '../src/import/runner.js';
import { summaryRows, type ImportSummary } from '../src/import/summary.js';
import {
  generateDataset,
  startOfUtcDayS,
  startSimulator,
  visibleMessages,
  type Dataset,
} from '../src/sim/index.js';
import { jsonSummary, runArgs, runCli } from './support/cli.js';
import { useTestDatabase } from './support/db.js';
import { listedChat } from './support/records.js';
import { expectDatabaseMatches } from './support/truth.js';

const db = useTestDatabase();
const OVERLAP_S = 3600;
// Anchored a day back, so the newest generated message is older than any overlap, whatever the hour.
const DATASET = generateDataset({ chats: 40, messages: 600, seed: 21, anchorS: startOfUtcDayS() - 86_400 });
// Wide enough to hold the whole dataset, fixed so every run asks for the same window.
const SINCE_S = startOfUtcDayS() - 40 * 86_400;

/** The smallest chat with messages: it fits in one page, so its import costs exactly two requests. */
function smallChat(dataset: Dataset): string {
  const withMessages = dataset.chats.filter((chat) => visibleMessages(chat).length > 0);
  withMessages.sort((a, b) => a.messages.length - b.messages.length);
  const chat = withMessages[0]!;
  expect(chat.messages.length).toBeLessThan(100);
  return chat.id;
}

describe('run --incremental', () => {
  it('fetches only what is new since the last run, picks up new chats, and matches the ground truth', async () => {
    const newChatId = smallChat(DATASET);
    // Before the first run WAHA does not list the new chat yet.
    const before = { ...DATASET, chats: DATASET.chats.filter((chat) => chat.id !== newChatId) };
    const args = (url: string, extra: string[] = []): string[] =>
      runArgs(url, db.schema, ['--incremental', '--since', String(SINCE_S), '--concurrency', '8', ...extra]);

    const first = await startSimulator({ sessions: [{ name: 'default', dataset: before }] });
    // The first run ends a few seconds back, so the second run's window (up to its own start) ends after
    // it even when both runs fall in one second; an --until still to come is refused.
    const firstUntilS = Math.floor(Date.now() / 1000) - 10;
    let firstToS: number;
    try {
      const result = await runCli(args(first.url, ['--until', String(firstUntilS)]));
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      const { summary } = jsonSummary(result.stdout);
      // No history yet: every chat is new and takes the whole window.
      expect(summary).toMatchObject({
        status: 'succeeded',
        chats: 39,
        chatsImported: 39,
        incremental: {
          overlapS: OVERLAP_S,
          chatsQuiet: 0,
          chatsNew: 39,
          chatsRetried: 0,
          chatsBackfilled: 0,
        },
      });
      const window = summary.window as unknown as { fromS: number; toS: number };
      firstToS = window.toS;
      const truth = first.groundTruth('default', window).messages;
      expect(summary.messagesFetched).toBe(truth.length);
      await expectDatabaseMatches(db.sql, db.schema, 'default', truth);
    } finally {
      await first.close();
    }

    const second = await startSimulator({ sessions: [{ name: 'default', dataset: DATASET }] });
    try {
      const busy = DATASET.chats.filter((chat) => chat.id !== newChatId && chat.messages.length > 0);
      const [talking, replying, late] = [busy[0]!, busy[1]!, busy[2]!];
      // After the first run's end, and seconds before the second run asks: a message dated at the second
      // of its request would be asked for again (see Engines, #2139).
      second.addMessages('default', talking.id, 3, firstToS + 1);
      second.addMessages('default', replying.id, 2, firstToS + 2);
      // Arrives after the first run although its timestamp is older than that run's end: the overlap
      // is what catches it.
      second.addMessages('default', late.id, 1, firstToS - 600);

      const result = await runCli(args(second.url));
      expect(result.code).toBe(0);
      const { summary } = jsonSummary(result.stdout);
      const window = summary.window as unknown as { fromS: number; toS: number };
      const truth = second.groundTruth('default', window).messages;

      // Fetched: every message of the new chat, and of the three active chats those newer than the
      // first run's end minus the overlap (the new ones plus whatever the overlap re-reads).
      const activeIds = new Set([talking.id, replying.id, late.id]);
      const chatOf = (id: string): string => id.split('_')[1]!;
      const expectedFetched = truth.filter(
        (m) =>
          chatOf(m.id) === newChatId || (activeIds.has(chatOf(m.id)) && m.timestamp >= firstToS - OVERLAP_S),
      ).length;
      expect(summary).toMatchObject({
        status: 'succeeded',
        chats: 40,
        chatsImported: 40,
        messagesFetched: expectedFetched,
        inserted: 3 + 2 + 1 + visibleMessages(DATASET.chats.find((c) => c.id === newChatId)!).length,
        incremental: {
          overlapS: OVERLAP_S,
          chatsQuiet: 36,
          chatsNew: 1,
          chatsRetried: 0,
          chatsBackfilled: 0,
        },
      });
      // The request count shows it: two message requests (a page and the empty page that ends it) for
      // each of the four chats with something to fetch, none for the 36 quiet ones.
      expect(second.stats().byRoute.messages).toBe(8);
      await expectDatabaseMatches(db.sql, db.schema, 'default', truth);

      const marks = await db.sql<Array<{ chat_id: string; synced_to_s: string }>>`
        select chat_id, synced_to_s::text from ${db.sql(db.schema)}.chat_sync order by chat_id`;
      expect(marks).toHaveLength(40);
      const movedOn = marks.filter((m) => Number(m.synced_to_s) === window.toS).map((m) => m.chat_id);
      expect(movedOn.sort()).toEqual([...activeIds, newChatId].sort());
    } finally {
      await second.close();
    }
  });

  it("records chats as read up to the time on WAHA when its clock runs behind this machine's", async () => {
    // The same as this machine and its database running two hours ahead of WAHA and WhatsApp.
    const sim = await startSimulator({
      clockOffsetS: -7200,
      sessions: [{ name: 'default', dataset: DATASET }],
    });
    try {
      const args = runArgs(sim.url, db.schema, [
        '--incremental',
        '--since',
        String(SINCE_S),
        '--concurrency',
        '8',
      ]);
      const first = await runCli(args);
      expect(first.code).toBe(0);
      const wahaNowS = Math.floor(Date.now() / 1000) - 7200;
      const [{ newest }] = await db.sql<[{ newest: string }]>`
        select max(synced_to_s)::text as newest from ${db.sql(db.schema)}.chat_sync`;
      expect(Number(newest)).toBeLessThanOrEqual(wahaNowS);
      // Messages reaching WAHA after that run, dated by it: before, every chat was recorded as read up to
      // this machine's time, two hours on, and the next run found every chat quiet.
      const chat = DATASET.chats.find((c) => visibleMessages(c).length > 0)!;
      sim.addMessages('default', chat.id, 2, wahaNowS - 1);
      const second = await runCli(args);
      expect(second.code).toBe(0);
      expect(jsonSummary(second.stdout).summary).toMatchObject({ inserted: 2 });
      const [{ stored }] = await db.sql<[{ stored: number }]>`
        select count(*)::int as stored from ${db.sql(db.schema)}.messages where timestamp_s = ${wahaNowS - 1}`;
      expect(stored).toBe(2);
      expect(first.stdout).toMatch(
        /WAHA's clock \(the Date of its answers\) is 120 min( \d+ s)? behind this machine's/,
      );
    } finally {
      await sim.close();
    }
  });

  it('reads the days before a shorter earlier import: the window asked for is imported whole', async () => {
    // A first run of --days 8 (the README's Sunday line), then the nightly --incremental of a longer window:
    // before, every chat continued from its mark and the days before it were never read, exit 0.
    const shortSinceS = startOfUtcDayS() - 10 * 86_400;
    const sim = await startSimulator({ sessions: [{ name: 'default', dataset: structuredClone(DATASET) }] });
    try {
      const short = await runCli(runArgs(sim.url, db.schema, ['--since', String(shortSinceS)]));
      expect(short.code).toBe(0);
      const args = runArgs(sim.url, db.schema, [
        '--incremental',
        '--since',
        String(SINCE_S),
        '--concurrency',
        '8',
      ]);
      const long = await runCli(args);
      expect(long.code).toBe(0);
      const { summary } = jsonSummary(long.stdout);
      const window = summary.window as unknown as { fromS: number; toS: number };
      const truth = sim.groundTruth('default', window).messages;
      // The test means something: the longer window holds messages the short one did not.
      expect(truth.filter((m) => m.timestamp < shortSinceS).length).toBeGreaterThan(100);
      await expectDatabaseMatches(db.sql, db.schema, 'default', truth);
      const active = DATASET.chats.filter((chat) => visibleMessages(chat).length > 0).length;
      expect(summary.incremental).toMatchObject({ chatsNew: 0, chatsRetried: 0 });
      // Every chat active since the longer window's start is read whole once; none before it.
      expect((summary.incremental as unknown as { chatsBackfilled: number }).chatsBackfilled).toBeGreaterThan(
        0,
      );
      expect(
        (summary.incremental as unknown as { chatsBackfilled: number }).chatsBackfilled,
      ).toBeLessThanOrEqual(active);
      expect(long.stdout).toContain('are read over the whole window');

      // Once read, the spans cover the window: the next run has nothing to read.
      sim.resetStats();
      const again = await runCli(args);
      expect(again.code).toBe(0);
      expect(jsonSummary(again.stdout).summary.incremental).toMatchObject({
        chatsBackfilled: 0,
        chatsNew: 0,
      });
      expect(sim.stats().byRoute.messages ?? 0).toBe(0);
    } finally {
      await sim.close();
    }
  });

  it('retries a chat an earlier run failed, though it has been quiet since', async () => {
    // Monday's --incremental after Sunday's full run failed one chat: before, the chat had its older mark
    // and no activity since, so it was skipped as quiet; the run exited 0 while the chat stayed failed.
    const failing = DATASET.chats.find((chat) => visibleMessages(chat).length > 0)!.id;
    const incremental = (url: string): string[] =>
      runArgs(url, db.schema, ['--incremental', '--since', String(SINCE_S), '--concurrency', '8']);
    const failed = async (): Promise<string[]> =>
      (await db.sql<Array<{ chat_id: string }>>`select chat_id from ${db.sql(db.schema)}.failed_chats`).map(
        (row) => row.chat_id,
      );

    const healthy = await startSimulator({
      sessions: [{ name: 'default', dataset: structuredClone(DATASET) }],
    });
    try {
      expect((await runCli(incremental(healthy.url))).code).toBe(0);
    } finally {
      await healthy.close();
    }
    const failingWaha = await startSimulator({
      profile: { failingChats: [failing] },
      sessions: [{ name: 'default', dataset: structuredClone(DATASET) }],
    });
    try {
      const sunday = await runCli(
        runArgs(failingWaha.url, db.schema, ['--since', String(SINCE_S), '--max-retries', '1']),
      );
      expect(sunday.code).toBe(5);
      expect(await failed()).toHaveLength(1);
    } finally {
      await failingWaha.close();
    }

    const monday = await startSimulator({
      sessions: [{ name: 'default', dataset: structuredClone(DATASET) }],
    });
    try {
      const result = await runCli(incremental(monday.url));
      expect(result.code).toBe(0);
      const { summary } = jsonSummary(result.stdout);
      expect(await failed()).toEqual([]);
      expect(summary.incremental).toMatchObject({ chatsRetried: 1, chatsNew: 0, chatsBackfilled: 0 });
      // Only the failed chat was read: one page and the empty page that ends it, or more for a long chat.
      expect(monday.stats().byRoute.messages).toBeGreaterThanOrEqual(2);
      const window = summary.window as unknown as { fromS: number; toS: number };
      await expectDatabaseMatches(
        db.sql,
        db.schema,
        'default',
        monday.groundTruth('default', window).messages,
      );
    } finally {
      await monday.close();
    }
  });

  it('reads by its id a failed chat WAHA no longer lists under that id, so its failure can clear', async () => {
    // Sunday a person's chat failed under the id WAHA listed then; by Monday WAHA lists the person under
    // a @lid (as GOWS 2026.1.3 did to every person). Only a commit of the failed id clears its row:
    // before, no run read that id again, the row stayed and `status` exited 5 every night.
    const person = DATASET.chats.find((chat) => chat.kind === 'person' && visibleMessages(chat).length > 0)!;
    const failed = async (): Promise<string[]> =>
      (await db.sql<Array<{ chat_id: string }>>`select chat_id from ${db.sql(db.schema)}.failed_chats`).map(
        (row) => row.chat_id,
      );
    const sundayWaha = await startSimulator({
      profile: { failingChats: [person.id] },
      sessions: [{ name: 'default', dataset: structuredClone(DATASET) }],
    });
    let failedId: string;
    try {
      const sunday = await runCli(
        runArgs(sundayWaha.url, db.schema, ['--since', String(SINCE_S), '--max-retries', '1']),
      );
      expect(sunday.code).toBe(5);
      [failedId] = (await failed()) as [string];
      expect(await failed()).toHaveLength(1);
    } finally {
      await sundayWaha.close();
    }

    const monday = await startSimulator({
      sessions: [{ name: 'default', dataset: structuredClone(DATASET) }],
    });
    try {
      expect(monday.relinkChat('default', person.id, '99887766554433@lid')).toBeGreaterThan(0);
      const result = await runCli(
        runArgs(monday.url, db.schema, ['--incremental', '--since', String(SINCE_S), '--concurrency', '8']),
      );
      expect(result.code).toBe(0);
      expect(result.stdout).toContain(`no longer listed by WAHA (${failedId})`);
      const { summary } = jsonSummary(result.stdout);
      expect(summary).toMatchObject({ status: 'succeeded', chatsFailed: 0, chatsUnlisted: 1 });
      expect(summary.incremental).toMatchObject({ chatsRetried: 1 });
      // The summary tells the chats read by id from the ones WAHA listed.
      const chatsRow = summaryRows(summary as unknown as ImportSummary).find(
        ([label]) => label === 'chats',
      )![1];
      expect(chatsRow).toBe(
        `${summary.chatsImported} imported of ${Number(summary.chats) - 1} listed and 1 no longer listed`,
      );
      expect(await failed()).toEqual([]);
      const window = summary.window as unknown as { fromS: number; toS: number };
      // The whole model: the person's messages are stored under their number, which the lids tell.
      await expectDatabaseMatches(db.sql, db.schema, 'default', monday.groundTruth('default', window));
      // The stored chat row is the person's, under its number, as before.
      const [row] = await db.sql<Array<{ name: string | null }>>`
        select name from ${db.sql(db.schema)}.chats where id = ${person.id}`;
      expect(row?.name).toBe(person.name);
    } finally {
      await monday.close();
    }
  });

  it('reads a failed chat over the window it failed in, though this run asks for a shorter one', async () => {
    // A back-fill of 40 days failed one chat; the nightly runs after it ask for 10 days. Before, the
    // first of them completed the chat over its 10 days and cleared the failure: the 30 days before were
    // never read again, and every run succeeded.
    const shortS = startOfUtcDayS() - 10 * 86_400;
    const busy = DATASET.chats
      .filter((chat) => chat.kind !== 'group')
      .find((chat) => {
        const times = visibleMessages(chat).map((m) => m.timestampS);
        return times.filter((t) => t < shortS).length >= 3 && times.some((t) => t >= shortS);
      })!;
    const failedRows = () =>
      db.sql<Array<{ chat_id: string; window_from_s: string | null }>>`
        select chat_id, window_from_s from ${db.sql(db.schema)}.failed_chats`;
    const backfill = await startSimulator({
      profile: { failingChats: [busy.id] },
      sessions: [{ name: 'default', dataset: structuredClone(DATASET) }],
    });
    try {
      const result = await runCli(
        runArgs(backfill.url, db.schema, ['--since', String(SINCE_S), '--max-retries', '1']),
      );
      expect(result.code).toBe(5);
      const rows = await failedRows();
      expect(rows).toHaveLength(1);
      expect(Number(rows[0]!.window_from_s)).toBe(SINCE_S);
    } finally {
      await backfill.close();
    }
    const nightly = await startSimulator({
      sessions: [{ name: 'default', dataset: structuredClone(DATASET) }],
    });
    try {
      const result = await runCli(runArgs(nightly.url, db.schema, ['--since', String(shortS)]));
      expect(result.code).toBe(0);
      expect(result.stdout).toContain(
        '1 chat still failed from an earlier run is read over the window it failed in',
      );
      expect(await failedRows()).toEqual([]);
      const { summary } = jsonSummary(result.stdout);
      const window = summary.window as unknown as { fromS: number; toS: number };
      // Every message of the 40 days is stored, the failed chat's too.
      await expectDatabaseMatches(
        db.sql,
        db.schema,
        'default',
        nightly.groundTruth('default', { fromS: SINCE_S, toS: window.toS }),
      );
    } finally {
      await nightly.close();
    }
  });

  it('failed chats no longer listed that WAHA refuses fail alone: they are no sign of WAHA failing', async () => {
    // Six chats deleted in WhatsApp after they failed, read by id at the end of the run and refused one
    // after another: before, the fifth stopped the run as "WAHA fails every chat".
    const gone = Array.from({ length: 6 }, (_, i) => `551190000000${i}@c.us`);
    const sim = await startSimulator({
      profile: { failingChats: gone },
      sessions: [{ name: 'default', dataset: structuredClone(DATASET) }],
    });
    try {
      const args = runArgs(sim.url, db.schema, ['--since', String(SINCE_S), '--max-retries', '1']);
      expect((await runCli(args)).code).toBe(0);
      await db.sql`
        insert into ${db.sql(db.schema)}.failed_chats ${db.sql(
          gone.map((id) => ({ session: 'default', chat_id: id, reason: 'waha-failing', error: 'x' })),
        )}`;
      const result = await runCli(args);
      expect(result.code).toBe(5);
      const { summary } = jsonSummary(result.stdout);
      expect(summary).toMatchObject({
        status: 'partial',
        chats: 46,
        chatsUnlisted: 6,
        chatsImported: 40,
        chatsFailed: 6,
      });
      const rows = await db.sql<Array<{ chat_id: string; attempts: number }>>`
        select chat_id, attempts from ${db.sql(db.schema)}.failed_chats order by chat_id`;
      expect(rows).toEqual(gone.map((id) => ({ chat_id: id, attempts: 2 })));
    } finally {
      await sim.close();
    }
  });

  it('refuses an --until still to come before it reads or records anything', async () => {
    // Before, `--until 2030-01-01` read up to now and recorded every chat as complete up to 2030: the
    // incremental runs after it found every chat quiet and imported nothing new until then.
    const sim = await startSimulator({ sessions: [{ name: 'default', dataset: DATASET }] });
    try {
      const untilS = Math.floor(Date.now() / 1000) + 3600;
      const result = await runCli(
        runArgs(sim.url, db.schema, ['--incremental', '--since', String(SINCE_S), '--until', String(untilS)]),
      );
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(
        `--until ${new Date(untilS * 1000).toISOString().replace('.000Z', 'Z')} is later than now`,
      );
      expect(sim.stats().requests).toBe(0);
      const tables = await db.sql<Array<{ name: string | null }>>`
        select to_regclass(${db.schema + '.chat_sync'})::text as name`;
      expect(tables).toEqual([{ name: null }]);
    } finally {
      await sim.close();
    }
  });

  it('refuses --overlap without --incremental, naming the flag', async () => {
    const result = await runCli(runArgs('http://127.0.0.1:9', db.schema, ['--overlap', '60']));
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--overlap only applies to incremental runs; add --incremental');
  });
});

describe('planIncremental', () => {
  const chat = listedChat;
  const runWindow = { fromS: 1_000, toS: 10_000 };

  it('continues each known chat from its mark minus the overlap, and leaves new chats on the run window', () => {
    const marks = new Map([
      ['active@c.us', { fromS: 1_000, toS: 8_000 }],
      ['unknown-activity@c.us', { fromS: 1_000, toS: 8_000 }],
      ['quiet@c.us', { fromS: 1_000, toS: 8_000 }],
      ['edge@c.us', { fromS: 1_000, toS: 8_000 }],
    ]);
    const plan = planIncremental(
      [
        chat('active@c.us', 9_000),
        chat('unknown-activity@c.us', null),
        chat('quiet@c.us', 7_499),
        chat('edge@c.us', 7_500),
        chat('new@c.us', 9_500),
      ],
      marks,
      runWindow,
      500,
    );
    expect(plan.quiet).toEqual(['quiet@c.us']);
    expect(plan.chatsNew).toBe(1);
    expect(Object.fromEntries(plan.windows)).toEqual({
      'active@c.us': { fromS: 7_500, toS: 10_000 },
      'unknown-activity@c.us': { fromS: 7_500, toS: 10_000 },
      'edge@c.us': { fromS: 7_500, toS: 10_000 },
    });
  });

  it('treats a chat synced past the end of this run as having nothing to fetch', () => {
    const plan = planIncremental(
      [chat('ahead@c.us', null)],
      new Map([['ahead@c.us', { fromS: 0, toS: 20_000 }]]),
      runWindow,
      60,
    );
    expect(plan).toEqual({
      windows: new Map(),
      quiet: ['ahead@c.us'],
      chatsNew: 0,
      chatsRetried: 0,
      chatsBackfilled: 0,
    });
  });

  it("continues each id a person is listed under from that id's own span: one never read is read whole", () => {
    // One person read under two listed ids (a WAHA that does not merge them): the lid completed and
    // marked the stored chat; the number's part failed, or the run was killed before it, and was never
    // read. Before, the number's id took the stored chat's mark unless it was still failed.
    const person = (id: string) => ({ ...chat(id, 9_000), chatId: '5511900000001@c.us' });
    const marks = Object.assign(
      new Map([
        ['5511900000001@c.us', { fromS: 1_000, toS: 8_000 }],
        ['other@c.us', { fromS: 1_000, toS: 8_000 }],
      ]),
      { forms: new Map([[formKey('5511900000001@c.us', '111@lid'), { fromS: 1_000, toS: 8_000 }]]) },
    );
    const chats = [person('111@lid'), person('5511900000001@c.us'), chat('other@c.us', 9_000)];
    const plan = planIncremental(chats, marks, runWindow, 500);
    expect(plan.chatsNew).toBe(1);
    // The number's id has the run's window (no entry); the lid continues from its own span, and a chat
    // listed under one id alone from the stored chat's.
    expect(Object.fromEntries(plan.windows)).toEqual({
      '111@lid': { fromS: 7_500, toS: 10_000 },
      'other@c.us': { fromS: 7_500, toS: 10_000 },
    });
    // A failed id is read whole even with a span of its own (the failure may have come after it).
    const failedLid = planIncremental(chats, marks, runWindow, 500, new Set(['111@lid']));
    expect(failedLid).toMatchObject({ chatsNew: 1, chatsRetried: 1 });
    expect([...failedLid.windows.keys()]).toEqual(['other@c.us']);
  });

  it('retries a chat still failed over the whole window, quiet or not', () => {
    // An earlier run (the weekly --days 8) failed the chat; its span is older and it has been quiet since.
    // Before, it was skipped as quiet: the failure stayed in failed_chats and the run said nothing of it.
    const marks = new Map([
      ['failed@c.us', { fromS: 1_000, toS: 8_000 }],
      ['quiet@c.us', { fromS: 1_000, toS: 8_000 }],
    ]);
    const plan = planIncremental(
      [chat('failed@c.us', 2_000), chat('quiet@c.us', 2_000)],
      marks,
      runWindow,
      500,
      new Set(['failed@c.us']),
    );
    expect(plan).toEqual({
      windows: new Map(),
      quiet: ['quiet@c.us'],
      chatsNew: 0,
      chatsRetried: 1,
      chatsBackfilled: 0,
    });
  });

  it('reads whole a chat whose span starts after the window does, unless it was quiet all through it', () => {
    // Imported before by a shorter window (--days 8 under a nightly --incremental of 30 days): the days
    // before its span were never read. Before, it continued from its mark and they never were.
    const marks = new Map([
      ['short@c.us', { fromS: 5_000, toS: 8_000 }],
      ['short-quiet@c.us', { fromS: 5_000, toS: 8_000 }],
      ['short-unknown@c.us', { fromS: 5_000, toS: 8_000 }],
      ['covered@c.us', { fromS: 1_000, toS: 8_000 }],
    ]);
    const plan = planIncremental(
      [
        chat('short@c.us', 3_000),
        chat('short-quiet@c.us', 999),
        chat('short-unknown@c.us', null),
        chat('covered@c.us', 9_000),
      ],
      marks,
      runWindow,
      500,
    );
    expect(plan).toEqual({
      windows: new Map([['covered@c.us', { fromS: 7_500, toS: 10_000 }]]),
      quiet: ['short-quiet@c.us'],
      chatsNew: 0,
      chatsRetried: 0,
      chatsBackfilled: 2,
    });
  });
});
