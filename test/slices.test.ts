import type { ChatRecord } from '../src/domain.js';
import { resumePointOf, spansToFetch, type ResumePoint } from '../src/import/resume-point.js';
import { SliceBudget, slicedPages, type SlicedPage } from '../src/import/slices.js';
import { generateDataset, type Simulator, type SimulatorOptions } from '../src/sim/index.js';
import { createWahaClient, type WahaClient } from '../src/waha/client.js';
import type { RequestObserver } from '../src/waha/http.js';
import { ALL_TIME, QUICK_RETRY, simulatorPerTest } from './support/waha.js';

const startSim = simulatorPerTest();

/** Counts message requests in flight at once, as WAHA would see them. */
function inFlightCounter(): RequestObserver & { peak: number; now: number } {
  const counter = {
    peak: 0,
    now: 0,
    waitToSend: async () => undefined,
    attemptStarted() {
      counter.now++;
      counter.peak = Math.max(counter.peak, counter.now);
      return () => {
        counter.now--;
      };
    },
    pauseFor: () => undefined,
  };
  return counter;
}

async function start(
  options: Partial<SimulatorOptions>,
): Promise<{ sim: Simulator; client: WahaClient; observer: ReturnType<typeof inFlightCounter> }> {
  const sim = await startSim(options as SimulatorOptions);
  const observer = inFlightCounter();
  const client = createWahaClient({
    baseUrl: sim.url,
    requestTimeoutMs: 5000,
    maxResponseBytes: 16 * 1024 * 1024,
    retry: QUICK_RETRY,
    observer,
  });
  return { sim, client, observer };
}

const PAGING = { pageSize: 50, pageEnd: 'empty' as const, meId: null };

/** Every page of one chat read through slicedPages, with a budget of `limit` places. */
async function readChat(
  client: WahaClient,
  chat: ChatRecord,
  options: {
    limit: number;
    maxSlices: number;
    resume?: ResumePoint;
    stopAfterPages?: number;
    paging?: Partial<typeof PAGING> & { emptyPagesToEnd?: number };
    window?: { fromS: number; toS: number };
  },
) {
  const budget = new SliceBudget(options.limit);
  const pages: SlicedPage[] = [];
  const controller = new AbortController();
  for await (const page of slicedPages(
    client,
    'default',
    chat,
    { ...PAGING, ...options.paging },
    options.window ?? ALL_TIME,
    options.resume,
    { options: { maxSlices: options.maxSlices }, budget },
    controller.signal,
  )) {
    pages.push(page);
    if (options.stopAfterPages !== undefined && pages.length >= options.stopAfterPages) break;
  }
  budget.dispose();
  return { pages, ids: pages.flatMap((p) => p.messages.map((m) => m.id)), stats: budget.stats, budget };
}

describe('resume points', () => {
  const window = { fromS: 100, toS: 1000 };
  it('a plain cursor is the one span from the window start; spans are clipped and sorted newest first', () => {
    expect(spansToFetch(window, undefined)).toEqual([[100, 1000]]);
    expect(spansToFetch(window, 500)).toEqual([[100, 500]]);
    expect(spansToFetch(window, 99)).toEqual([]);
    expect(
      spansToFetch(window, [
        [50, 150],
        [600, 2000],
        [300, 400],
      ]),
    ).toEqual([
      [600, 1000],
      [300, 400],
      [100, 150],
    ]);
    expect(resumePointOf(window, [[100, 700]])).toBe(700);
    expect(resumePointOf(window, [[200, 700]])).toEqual([[200, 700]]);
    expect(
      resumePointOf(window, [
        [600, 700],
        [100, 300],
      ]),
    ).toEqual([
      [600, 700],
      [100, 300],
    ]);
  });

  it('a damaged point (overlapping or reversed spans, a cursor past the window) means the whole window', () => {
    const whole = [[100, 1000]];
    expect(
      spansToFetch(window, [
        [100, 500],
        [400, 800],
      ]),
    ).toEqual(whole);
    expect(spansToFetch(window, [[500, 400]])).toEqual(whole);
    expect(spansToFetch(window, 2000)).toEqual(whole);
    expect(spansToFetch(window, [[1.5, 400]])).toEqual(whole);
  });
});

describe('time-sliced paging against the simulator', () => {
  const oneLongChat = {
    sessions: [
      { name: 'default', datasetOptions: { chats: 3, messages: 2400, bigChats: [2000, 300], seed: 21 } },
    ],
  };

  it('reads a long chat in several slices: every message exactly once, within the limit of places', async () => {
    const { sim, client, observer } = await start(oneLongChat);
    const chats = await client.listChats('default', { pageSize: 100, engine: 'NOWEB' });
    const truth = sim.groundTruth('default', ALL_TIME).messages;
    const requestsBefore = client.stats.requests;
    for (const chat of chats) {
      const expected = truth.filter((m) => m.from === chat.chatId).map((m) => m.id);
      const plain = await readChat(client, chat, { limit: 1, maxSlices: 1 });
      expect(plain.stats.slices).toBe(0);
      expect([...plain.ids].sort()).toEqual([...expected].sort());
    }
    const plainRequests = client.stats.requests - requestsBefore;
    observer.peak = 0;
    let sliced = 0;
    const slicedBefore = client.stats.requests;
    for (const chat of chats) {
      const expected = truth.filter((m) => m.from === chat.chatId).map((m) => m.id);
      const result = await readChat(client, chat, { limit: 6, maxSlices: 6 });
      expect(result.ids.length).toBe(new Set(result.ids).size);
      expect([...result.ids].sort()).toEqual([...expected].sort());
      sliced += result.stats.slices;
      // Only the final page says last; every earlier one leaves something to fetch.
      expect(result.pages.filter((p) => p.last)).toHaveLength(1);
      expect(result.pages.at(-1)!.last).toBe(true);
    }
    // The 2,000-message chat (40 pages of 50) was split; never more requests at once than places.
    expect(sliced).toBeGreaterThanOrEqual(2);
    expect(observer.peak).toBeLessThanOrEqual(6);
    expect(observer.peak).toBeGreaterThan(1);
    // A slice costs its end request, and an estimate that misses costs one for nothing: a few per slice.
    expect(client.stats.requests - slicedBefore).toBeLessThanOrEqual(plainRequests + 2 * sliced);
  });

  it('one place (sequential) never slices', async () => {
    const { client, observer } = await start(oneLongChat);
    const [chat] = await client.listChats('default', { pageSize: 100, engine: 'NOWEB' });
    const result = await readChat(client, chat!, { limit: 1, maxSlices: 8 });
    expect(result.stats.slices).toBe(0);
    expect(observer.peak).toBe(1);
  });

  it('misses nothing that exists throughout while messages are deleted and arrive in every slice', async () => {
    const { sim, client } = await start(oneLongChat);
    const chats = await client.listChats('default', { pageSize: 100, engine: 'NOWEB' });
    const before = sim.groundTruth('default', ALL_TIME).messages;
    const chat = chats.find((c) => before.filter((m) => m.from === c.chatId).length === 2000)!;
    const history = before.filter((m) => m.from === chat.chatId);
    const times = history.map((m) => m.timestamp).sort((a, b) => a - b);
    // Every 3rd message request deletes a message somewhere in the chat and adds 3 in a random second
    // of its history: rows shift under every slice's pages, in both directions.
    let requests = 0;
    let seed = 7;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const deleted = new Set<string>();
    let added = 0;
    sim.onRequest((request) => {
      if (request.chatId !== chat.chatId || ++requests % 3 !== 0) return;
      const victim = history[random(history.length)]!;
      if (!deleted.has(victim.id) && sim!.deleteMessage('default', victim.id)) deleted.add(victim.id);
      // The dataset's id (`N@c.us`), not the id NOWEB lists (`N@s.whatsapp.net`), which it does not know.
      added += sim!.addMessages('default', request.chatId, 3, times[random(times.length)]!).length;
    });
    const result = await readChat(client, chat, { limit: 8, maxSlices: 8 });
    expect(result.stats.slices).toBeGreaterThanOrEqual(2);
    expect(deleted.size).toBeGreaterThan(5);
    expect(added).toBe(3 * Math.floor(requests / 3));
    expect(added).toBeGreaterThan(15);
    expect(result.ids.length).toBe(new Set(result.ids).size);
    const got = new Set(result.ids);
    const throughout = history.filter((m) => !deleted.has(m.id));
    expect(throughout.filter((m) => !got.has(m.id)).map((m) => m.id)).toEqual([]);
  });

  it('resumes from the spans of any committed page and completes the chat', async () => {
    const { sim, client } = await start(oneLongChat);
    const chats = await client.listChats('default', { pageSize: 100, engine: 'NOWEB' });
    const truth = sim.groundTruth('default', ALL_TIME).messages;
    const chat = chats.find((c) => truth.filter((m) => m.from === c.chatId).length === 2000)!;
    const expected = truth.filter((m) => m.from === chat.chatId).map((m) => m.id);
    const full = await readChat(client, chat, { limit: 8, maxSlices: 8 });
    const spansPages = full.pages.filter((p) => Array.isArray(p.resume) && p.resume.length > 1).length;
    expect(spansPages).toBeGreaterThan(0);
    // Stop after k pages (a crash after their commit), resume from the k-th page's point.
    for (const k of [1, 3, Math.floor(full.pages.length / 2), full.pages.length - 1]) {
      const first = await readChat(client, chat, { limit: 8, maxSlices: 8, stopAfterPages: k });
      const resume = first.pages.at(-1)!.resume;
      const rest = await readChat(client, chat, { limit: 8, maxSlices: 8, resume });
      const all = new Set([...first.ids, ...rest.ids]);
      expect([...all].sort()).toEqual([...expected].sort());
      // The resumed run fetches only what the spans left: no message of a span already done comes again.
      expect(rest.ids.filter((id) => first.ids.includes(id)).length).toBeLessThan(100);
    }
  });

  it('GOWS with runs of hidden rows: each slice reads past them by --empty-pages; nothing lost', async () => {
    const dataset = generateDataset({
      chats: 2,
      messages: 1500,
      bigChats: [1400],
      hiddenRatio: 0.3,
      seed: 5,
      nulBodies: 0,
      loneSurrogateBodies: 0,
    });
    const { sim, client } = await start({
      engine: 'GOWS',
      profile: { nullTimestampShare: 0 },
      sessions: [{ name: 'default', dataset }],
    });
    const chats = await client.listChats('default', { pageSize: 100, engine: 'GOWS' });
    const truth = sim.groundTruth('default', ALL_TIME).messages;
    let sliced = 0;
    const ids: string[] = [];
    for (const chat of chats) {
      const result = await readChat(client, chat, {
        limit: 8,
        maxSlices: 8,
        paging: { emptyPagesToEnd: 4 },
      });
      sliced += result.stats.slices;
      ids.push(...result.ids);
    }
    expect(sliced).toBeGreaterThan(0);
    expect(ids.length).toBe(new Set(ids).size);
    expect([...ids].sort()).toEqual(truth.map((m) => m.id).sort());
  });

  it('gives every place back: a budget is whole again after chats end, fail or are stopped', async () => {
    const { client } = await start(oneLongChat);
    const [chat] = await client.listChats('default', { pageSize: 100, engine: 'NOWEB' });
    const budget = new SliceBudget(5);
    const slicing = { options: { maxSlices: 5 }, budget };
    const read = (signal: AbortSignal) =>
      slicedPages(client, 'default', chat!, PAGING, ALL_TIME, undefined, slicing, signal);
    let pages = 0;
    for await (const page of read(new AbortController().signal)) {
      if (++pages === 6 || page.last) break;
    }
    expect(budget.stats.slices).toBeGreaterThan(0);
    expect(budget.free()).toBe(5);
    expect(budget.fanOut.limit).toBe(5);
    const aborted = new AbortController();
    const reading = (async () => {
      for await (const _page of read(aborted.signal)) {
        if (budget.stats.slices > 2) aborted.abort(new Error('stopped'));
      }
    })();
    await expect(reading).rejects.toThrow();
    expect(budget.free()).toBe(5);
    expect(budget.fanOut.limit).toBe(5);
  });
});
