import type { ChatRecord } from '../src/domain.js';
import { WahaRefusedError, WahaResponseError, WahaUnavailableError } from '../src/errors.js';
import { generateDataset, startSimulator, type Simulator, type SimulatorOptions } from '../src/sim/index.js';
import { ChatPagingError, createWahaClient, MAX_SECOND_PASSES, type WahaClient } from '../src/waha/client.js';
import { ALL_TIME, QUICK_RETRY, simulatorPerTest } from './support/waha.js';
import http from 'node:http';

const startSim = simulatorPerTest();

async function start(
  options: Partial<SimulatorOptions> = {},
): Promise<{ sim: Simulator; client: WahaClient }> {
  const sim = await startSim({
    sessions: [
      { name: 'default', datasetOptions: { chats: 6, messages: 1400, bigChats: [1050, 203], seed: 7 } },
    ],
    ...options,
  });
  const client = createWahaClient({
    baseUrl: sim.url,
    apiKey: options.apiKey,
    requestTimeoutMs: 2000,
    maxResponseBytes: 16 * 1024 * 1024,
    retry: QUICK_RETRY,
  });
  return { sim, client };
}

async function allMessageIds(
  client: WahaClient,
  chat: ChatRecord,
  pageEnd: 'empty' | 'short',
  pageSize = 100,
) {
  const ids: string[] = [];
  let pages = 0;
  for await (const page of client.chatMessages('default', chat, {
    window: ALL_TIME,
    pageSize,
    pageEnd,
    meId: null,
  })) {
    ids.push(...page.messages.map((m) => m.id));
    pages++;
  }
  return { ids, pages };
}

describe('WAHA client against the simulator', () => {
  it('pages a chat of 1,000+ messages and one with a short final page, each message exactly once', async () => {
    const { sim, client } = await start();
    const chats = await client.listChats('default', { pageSize: 4, engine: 'NOWEB' });
    expect(chats).toHaveLength(6);
    const truth = sim.groundTruth('default', ALL_TIME);
    for (const chat of chats) {
      const expected = truth.messages.filter((m) => m.id.includes(`_${chat.chatId}_`)).map((m) => m.id);
      const { ids } = await allMessageIds(client, chat, 'empty');
      expect(ids.length).toBe(expected.length);
      expect([...ids].sort()).toEqual([...expected].sort());
    }
    const sizes = chats.map((c) => truth.messages.filter((m) => m.id.includes(`_${c.chatId}_`)).length);
    expect(Math.max(...sizes)).toBeGreaterThan(1000);
    expect(sizes).toContain(203);
    const stats = sim.stats();
    expect(stats.downloadMediaNotFalse).toBe(0);
    expect(stats.maxLimitSeen).toBe(100);
  });

  it('the short-page rule loses messages on GOWS when hidden rows shorten a page; the empty-page rule does not', async () => {
    // GOWS pages over hidden rows and drops them afterwards (NOWEB never stores them).
    const { sim, client } = await start({
      // GOWS's null timestamps off: this test is about paging (the contract suite runs GOWS with them).
      engine: 'GOWS',
      profile: { nullTimestampShare: 0 },
      sessions: [
        {
          name: 'default',
          datasetOptions: { chats: 1, messages: 900, bigChats: [900], hiddenRatio: 0.2, seed: 3 },
        },
      ],
    });
    const [chat] = await client.listChats('default', { pageSize: 100, engine: 'NOWEB' });
    const expected = sim.groundTruth('default', ALL_TIME).messages.length;
    expect((await allMessageIds(client, chat!, 'empty')).ids.length).toBe(expected);
    expect((await allMessageIds(client, chat!, 'short')).ids.length).toBeLessThan(expected);
  });

  it('remembers about a page of ids while paging a long chat by time, not the whole chat', async () => {
    const { sim, client } = await start({
      sessions: [
        { name: 'default', datasetOptions: { chats: 2, messages: 3000, bigChats: [2990], seed: 12 } },
      ],
    });
    const chats = await client.listChats('default', { pageSize: 100, engine: 'NOWEB' });
    const truth = sim.groundTruth('default', ALL_TIME).messages;
    const perSecond = new Map<number, number>();
    for (const m of truth) perSecond.set(m.timestamp, (perSecond.get(m.timestamp) ?? 0) + 1);
    const busiestSecond = Math.max(...perSecond.values());
    const ids: string[] = [];
    for (const chat of chats) ids.push(...(await allMessageIds(client, chat, 'empty', 50)).ids);
    expect([...ids].sort()).toEqual(truth.map((m) => m.id).sort());
    // A page, and the second the cursor stands on: what a later request can serve again.
    expect(client.memory.peakIdsPerChat).toBeGreaterThan(0);
    expect(client.memory.peakIdsPerChat).toBeLessThanOrEqual(50 + busiestSecond);
    expect(busiestSecond).toBeLessThan(100);
  });

  it('keeps only the window, inclusive at both ends', async () => {
    const { sim, client } = await start();
    const all = sim.groundTruth('default', ALL_TIME).messages;
    const times = [...new Set(all.map((m) => m.timestamp))].sort((a, b) => a - b);
    const window = { fromS: times[10]!, toS: times[times.length - 10]! };
    const expected = sim
      .groundTruth('default', window)
      .messages.map((m) => m.id)
      .sort();
    const got: string[] = [];
    for (const chat of await client.listChats('default', { pageSize: 100, engine: 'NOWEB' })) {
      for await (const page of client.chatMessages('default', chat, {
        window,
        pageSize: 37,
        pageEnd: 'empty',
        meId: null,
      })) {
        got.push(...page.messages.map((m) => m.id));
      }
    }
    expect(got.sort()).toEqual(expected);
    expect(all.some((m) => m.timestamp === window.fromS)).toBe(true);
  });

  it('retries injected 500s and 429s (honouring Retry-After) and counts them', async () => {
    const { sim, client } = await start();
    sim.failNext(3, { status: 500, route: 'messages' });
    sim.failNext(1, { status: 429, retryAfterS: 1, route: 'messages' });
    const [chat] = await client.listChats('default', { pageSize: 100, engine: 'NOWEB' });
    const started = Date.now();
    const { ids } = await allMessageIds(client, chat!, 'empty');
    expect(ids.length).toBe(
      sim.groundTruth('default', ALL_TIME).messages.filter((m) => m.id.includes(`_${chat!.chatId}_`)).length,
    );
    expect(client.stats.retries).toBe(4);
    expect(sim.stats().faults.rateLimit + sim.stats().faults.error).toBe(4);
    // Retry-After: 1 was obeyed (our own backoff here is at most 20 ms).
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
  });

  it('gives up after the retry budget with a clear error', async () => {
    const { sim } = await start();
    const client = createWahaClient({
      baseUrl: sim.url,
      requestTimeoutMs: 2000,
      maxResponseBytes: 1 << 20,
      retry: { ...QUICK_RETRY, maxRetries: 2 },
    });
    sim.failNext(10, { status: 503, route: 'chats' });
    await expect(client.listChats('default', { pageSize: 100, engine: 'NOWEB' })).rejects.toThrow(
      WahaUnavailableError,
    );
    await expect(
      createWahaClient({
        baseUrl: sim.url,
        requestTimeoutMs: 2000,
        maxResponseBytes: 1 << 20,
        retry: { ...QUICK_RETRY, maxRetries: 2 },
      }).listChats('default', { pageSize: 100, engine: 'NOWEB' }),
    ).rejects.toThrow(/failed 3 times; last: HTTP 503/);
  });

  it('retries a request that never answers, after its timeout', async () => {
    const { sim } = await start({ hangMs: 5000 });
    const client = createWahaClient({
      baseUrl: sim.url,
      requestTimeoutMs: 200,
      maxResponseBytes: 1 << 20,
      retry: QUICK_RETRY,
    });
    sim.failNext(1, { status: 'timeout', route: 'chats' });
    const chats = await client.listChats('default', { pageSize: 100, engine: 'NOWEB' });
    expect(chats).toHaveLength(6);
    expect(client.stats.retries).toBe(1);
  });

  it('refuses at once, without retrying, on 401, 404 and a session that is not WORKING', async () => {
    const { sim } = await start({ apiKey: 'right-key' });
    const wrong = createWahaClient({
      baseUrl: sim.url,
      apiKey: 'wrong',
      requestTimeoutMs: 2000,
      maxResponseBytes: 1 << 20,
      retry: QUICK_RETRY,
    });
    await expect(wrong.requireWorkingSession('default')).rejects.toThrow(/refused the API key \(401/);
    expect(wrong.stats.retries).toBe(0);

    const right = createWahaClient({
      baseUrl: sim.url,
      apiKey: 'right-key',
      requestTimeoutMs: 2000,
      maxResponseBytes: 1 << 20,
      retry: QUICK_RETRY,
    });
    await expect(right.requireWorkingSession('nobody')).rejects.toThrow(/no session "nobody" \(404/);
    sim.setSessionStatus('default', 'SCAN_QR_CODE');
    const error = await right.requireWorkingSession('default').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WahaRefusedError);
    expect((error as WahaRefusedError).message).toContain('is SCAN_QR_CODE, not WORKING');
    expect((error as WahaRefusedError).hint).toMatch(/QR code/);
    // Chat routes answer 422 for such a session; that is a refusal, not a retry loop.
    await expect(right.listChats('default', { pageSize: 10, engine: 'NOWEB' })).rejects.toThrow(
      'WAHA cannot serve session "default": the session is SCAN_QR_CODE, not WORKING (422)',
    );
    expect(right.stats.retries).toBe(0);
  });
});

it('asks for a chat whose id is `.` or `..` at its own path: the URL rules would drop the segment', async () => {
  const { sim, client } = await start();
  const asked: Array<string | undefined> = [];
  sim.onRequest(({ route, requestedChatId }) => {
    if (route === 'messages') asked.push(requestedChatId);
  });
  for (const id of ['..', '.']) {
    const chat: ChatRecord = {
      session: 'default',
      id,
      chatId: id,
      name: null,
      kind: 'other',
      lastActivityAt: null,
    };
    // The simulator, like NOWEB, answers an unknown chat's messages with an empty list: a request that
    // lost its segment would reach another route and be refused.
    const { ids } = await allMessageIds(client, chat, 'empty');
    expect(ids).toEqual([]);
  }
  expect(new Set(asked)).toEqual(new Set(['..', '.']));
});

describe('WAHA refusals name their real cause', () => {
  const client = (url: string) =>
    createWahaClient({ baseUrl: url, requestTimeoutMs: 2000, maxResponseBytes: 1 << 20, retry: QUICK_RETRY });

  it('422 on chat routes: an unknown session and the Core tier are told apart; neither is retried', async () => {
    const { sim } = await start({ profile: { coreTier: true } });
    const waha = client(sim.url);
    const unknown = await waha
      .listChats('nobody', { pageSize: 10, engine: 'NOWEB' })
      .catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(WahaRefusedError);
    expect((unknown as WahaRefusedError).status).toBe(422);
    expect((unknown as WahaRefusedError).hint).toMatch(/Core tier serves only the session named "default"/);
    expect(waha.stats.retries).toBe(0);

    const plain = await startSimulator({
      sessions: [{ name: 'default', datasetOptions: { chats: 2, messages: 10 } }],
    });
    try {
      const withoutTier = await client(plain.url)
        .listChats('nobody', { pageSize: 10, engine: 'NOWEB' })
        .catch((e: unknown) => e);
      expect((withoutTier as Error).message).toMatch(/does not exist \(422\)$/);
      expect((withoutTier as WahaRefusedError).hint).toMatch(/Check --session/);
    } finally {
      await plain.close();
    }
  });

  it('501: never retried; the lid endpoints of an engine without them leave ids as they are', async () => {
    const { sim } = await start({ engine: 'WEBJS' });
    const waha = client(sim.url);
    expect(await waha.lids('default')).toEqual({ map: new Map(), available: false });
    const [chat] = await waha.listChats('default', { pageSize: 10, engine: 'WEBJS' });
    sim.failNext(5, { status: 501, route: 'messages' });
    const pages = waha.chatMessages('default', chat!, {
      window: ALL_TIME,
      pageSize: 100,
      pageEnd: 'short',
      meId: null,
    });
    const error = await pages.next().catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/does not implement chat .* \(501 Not Implemented\)/);
    expect(waha.stats.retries).toBe(0);
  });

  it('a 500 that exhausts the retries names the engine exception WAHA reported', async () => {
    const dataset = generateDataset({ chats: 3, messages: 30, seed: 5 });
    const sim = await startSim({
      engine: 'WEBJS',
      profile: { failingChats: [dataset.chats[0]!.id] },
      sessions: [{ name: 'default', dataset }],
    });
    const waha = client(sim.url);
    const chats = await waha.listChats('default', { pageSize: 10, engine: 'WEBJS' });
    const failing = chats.find((c) => c.chatId === dataset.chats[0]!.id)!;
    const pages = waha.chatMessages('default', failing, {
      window: ALL_TIME,
      pageSize: 100,
      pageEnd: 'short',
      meId: null,
    });
    const error = await pages.next().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WahaUnavailableError);
    expect((error as Error).message).toMatch(
      /failed 7 times; last: HTTP 500 \(TypeError: Cannot read properties of undefined \(reading 'waitForChatLoading'\)/,
    );
    // Retried as it is, never taken for WEBJS's empty window (#1885), which is probed instead.
    expect(sim.stats().byRoute.messages).toBe(7);
  });
});

describe('chat listings that cannot miss a chat', () => {
  it('WEBJS: one request without a limit, whatever the order does while listing', async () => {
    const { sim, client } = await start({ engine: 'WEBJS' });
    const truth = sim.groundTruth('default', ALL_TIME);
    const chats = await client.listChats('default', { pageSize: 2, engine: 'WEBJS' });
    expect(chats.map((c) => c.chatId).sort()).toEqual(
      (truth.chats as Array<{ id: { _serialized: string } }>).map((c) => c.id._serialized).sort(),
    );
    expect(sim.stats().byRoute.chats).toBe(1);
  });

  it('NOWEB: pages sorted by id overlap by one chat; the stored ids are @c.us', async () => {
    const { sim, client } = await start();
    const chats = await client.listChats('default', { pageSize: 2, engine: 'NOWEB' });
    expect(chats.every((c) => c.id.endsWith('@s.whatsapp.net') === c.chatId.endsWith('@c.us'))).toBe(true);
    expect(new Set(chats.map((c) => c.id)).size).toBe(chats.length);
    expect(chats.length).toBe((sim.groundTruth('default', ALL_TIME).chats as unknown[]).length);
  });

  it('NOWEB: a page that is not full ends the listing, without asking for the next page', async () => {
    const { sim, client } = await start();
    expect((sim.groundTruth('default', ALL_TIME).chats as unknown[]).length).toBe(6);
    const before = sim.stats().byRoute.chats;
    const chats = await client.listChats('default', { pageSize: 4, engine: 'NOWEB' });
    expect(chats).toHaveLength(6);
    // Offset 0 gives 4 chats (full), offset 3 the last 3 (the overlapping one and two new): not full,
    // so the listing ends there; asking offset 5 (only the overlapping chat again) would be a third.
    expect(sim.stats().byRoute.chats - before).toBe(2);
  });
});

describe('lids', () => {
  it('reads thousands of lids in two round trips (a page, then four at once), every mapping once', async () => {
    const { sim, client } = await start({
      sessions: [{ name: 'default', datasetOptions: { chats: 1172, messages: 2000, seed: 1 } }],
    });
    const known = sim.lids('default').filter((entry) => entry.pn !== null);
    expect(sim.lids('default').length).toBeGreaterThan(2000);
    const before = sim.stats().byRoute.lids;
    const { map, available } = await client.lids('default');
    expect(available).toBe(true);
    expect(map.size).toBe(known.length);
    for (const entry of known) expect(map.get(entry.lid)).toBe(entry.pn);
    // Pages of 1,000: the first alone, then four at once; the short one ends it.
    expect(sim.stats().byRoute.lids - before).toBe(5);
  });
});

describe('WAHA client against a server that ignores offset', () => {
  it('pages by time, so a server ignoring offset loses nothing; inside a full second it is caught', async () => {
    const { sim, client } = await start({ ignoreOffset: ['messages'] });
    const chats = await client.listChats('default', { pageSize: 100, engine: 'NOWEB' });
    const big = chats.find(
      (c) => sim.groundTruth('default', ALL_TIME).messages.filter((m) => m.from === c.chatId).length > 500,
    )!;
    const read = async (): Promise<string[]> => {
      const ids: string[] = [];
      for await (const page of client.chatMessages('default', big, {
        window: ALL_TIME,
        pageSize: 50,
        pageEnd: 'empty',
        meId: null,
      })) {
        ids.push(...page.messages.map((m) => m.id));
      }
      return ids;
    };
    const truthIds = sim
      .groundTruth('default', ALL_TIME)
      .messages.filter((m) => m.from === big.chatId)
      .map((m) => m.id);
    expect((await read()).sort()).toEqual(truthIds.sort());

    // 120 messages in one second fill more than a page: offsets are needed there, and ignoring them shows.
    const newestS = Math.max(...sim.groundTruth('default', ALL_TIME).messages.map((m) => m.timestamp));
    sim.addMessages('default', big.chatId, 120, newestS + 1);
    await expect(read()).rejects.toThrow(
      new WahaResponseError(
        `GET /api/default/chats/${big.id}/messages answered offsets 0 and 50 with the same messages: it seems to ignore offset`,
      ),
    );
  });

  it('a server ignoring lte and offset alike is caught by its second page with nothing new, not read until the cap', async () => {
    // Paging by offset is the fallback for a server that ignores lte (some WEBJS); answered the same page
    // at every offset, it went on until the per-chat cap of 100,000 requests.
    const { sim, client } = await start({ ignoreOffset: ['messages'], profile: { ignoresLte: true } });
    const chats = await client.listChats('default', { pageSize: 100, engine: 'NOWEB' });
    const big = chats.find(
      (c) => sim.groundTruth('default', ALL_TIME).messages.filter((m) => m.from === c.chatId).length > 500,
    )!;
    const before = sim.stats().byRoute.messages ?? 0;
    const pages = client.chatMessages('default', big, {
      window: ALL_TIME,
      pageSize: 50,
      pageEnd: 'empty',
      meId: null,
    });
    await expect(
      (async () => {
        for await (const page of pages) void page;
      })(),
    ).rejects.toThrow(
      /GET \/api\/default\/chats\/[^ ]+\/messages answered offsets up to \d+ with messages it had already sent: it seems to ignore offset/,
    );
    expect((sim.stats().byRoute.messages ?? 0) - before).toBeLessThan(10);
  });

  it('stops a chat listing that never ends', async () => {
    const { sim, client } = await start({ ignoreOffset: ['chats'] });
    await expect(client.listChats('default', { pageSize: 4, engine: 'NOWEB' })).rejects.toThrow(
      /GET \/api\/default\/chats answered offsets up to \d+ with chats it had already sent: it seems to ignore offset/,
    );
    expect(sim.stats().byRoute.chats).toBe(3);
  });

  it('sends each message once and misses none when a burst of messages arrives ahead of the reader', async () => {
    const { sim, client } = await start();
    const chat = (await client.listChats('default', { pageSize: 100, engine: 'NOWEB' })).find(
      (c) => sim.groundTruth('default', ALL_TIME).messages.filter((m) => m.from === c.chatId).length > 500,
    );
    const before = sim.groundTruth('default', ALL_TIME).messages.filter((m) => m.from === chat!.chatId);
    const newestS = Math.max(...before.map((m) => m.timestamp));
    // Just before the second page is served, 100 messages arrive in the newest second.
    let requests = 0;
    let added = 0;
    const remove = sim.onRequest((request) => {
      if (request.chatId === chat!.chatId && ++requests === 2) {
        remove();
        // The dataset's id, not the one NOWEB lists (`@s.whatsapp.net`), which addMessages does not know.
        added = sim.addMessages('default', request.chatId, 100, newestS).length;
      }
    });
    const ids: string[] = [];
    for await (const page of client.chatMessages('default', chat!, {
      window: ALL_TIME,
      pageSize: 100,
      pageEnd: 'empty',
      meId: null,
    })) {
      ids.push(...page.messages.map((m) => m.id));
    }
    expect(requests).toBe(2);
    expect(added).toBe(100);
    expect(new Set(ids).size).toBe(ids.length);
    const got = new Set(ids);
    expect(before.filter((m) => !got.has(m.id)).map((m) => m.id)).toEqual([]);
  });
});

describe('seconds denser than a page on a store that orders them per request (PostgreSQL, MongoDB)', () => {
  /** A chat with bursts of 250 and 130 messages in two seconds, among its ordinary history. */
  async function burstChat(engine: 'NOWEB' | 'GOWS', tieOrder: 'bounded-sort' | 'stable') {
    const { sim, client } = await start({
      engine,
      profile: { tieOrder, nullTimestampShare: 0, unknownLidShare: 0 },
      sessions: [{ name: 'default', datasetOptions: { chats: 2, messages: 400, bigChats: [300], seed: 9 } }],
    });
    // GOWS lists people by lid: mapped, the chat's id is the dataset's (phone) id, as in an import.
    const { map } = await client.lids('default');
    const chats = await client.listChats('default', { pageSize: 100, engine, lids: map });
    const inChat = (c: { chatId: string }) =>
      sim.groundTruth('default', ALL_TIME).expected.filter((m) => m.chatId === c.chatId);
    const chat = chats.find((c) => inChat(c).length >= 300)!;
    const stamps = inChat(chat).map((m) => m.timestampS);
    const seconds = [Math.max(...stamps) - 60, Math.min(...stamps) + 60];
    sim.addMessages('default', chat.chatId, 250, seconds[0]!);
    sim.addMessages('default', chat.chatId, 130, seconds[1]!);
    return { sim, client, chat, seconds, truth: inChat(chat).map((m) => m.id) };
  }

  it.each([
    { engine: 'NOWEB' as const, pageSize: 100 },
    { engine: 'NOWEB' as const, pageSize: 20 },
    { engine: 'GOWS' as const, pageSize: 100 },
  ])(
    '$engine, pages of $pageSize: every message once, reading each dense second with other page sizes',
    async ({ engine, pageSize }) => {
      const { client, chat, truth } = await burstChat(engine, 'bounded-sort');
      const { ids } = await allMessageIds(client, chat, 'empty', pageSize);
      expect(truth.length).toBeGreaterThan(650);
      expect(ids.length).toBe(new Set(ids).size);
      expect([...ids].sort()).toEqual([...truth].sort());
      expect(client.paging.denseSeconds).toBeGreaterThanOrEqual(2);
    },
  );

  it('a stable store costs what it did: two passes of one page size over a dense second', async () => {
    const { sim, client, chat, truth } = await burstChat('NOWEB', 'stable');
    const seen: number[] = [];
    sim.onRequest((request) => {
      const query = request.query;
      if (query['filter.timestamp.gte'] === query['filter.timestamp.lte']) seen.push(Number(query.limit));
    });
    const { ids } = await allMessageIds(client, chat, 'empty', 100);
    expect([...ids].sort()).toEqual([...truth].sort());
    // 250 rows: pages 100, 100, 50 and an empty one, twice; 130 rows: 100, 30, empty, twice.
    expect(seen).toEqual(Array(14).fill(100));
  });

  it('fails the chat, naming the second, when that second changes under every pass', async () => {
    const { sim, client, chat, seconds } = await burstChat('NOWEB', 'bounded-sort');
    const dense = seconds[0]!;
    sim.onRequest((request) => {
      if (request.query['filter.timestamp.gte'] !== String(dense)) return;
      const inSecond = sim
        .groundTruth('default', { fromS: dense, toS: dense })
        .expected.filter((m) => m.chatId === chat.chatId);
      sim.deleteMessage('default', inSecond[inSecond.length - 1]!.waId);
    });
    await expect(allMessageIds(client, chat, 'empty', 100)).rejects.toThrow(
      new ChatPagingError(
        `GET /api/default/chats/${chat.id}/messages: the messages of second ${dense} (${new Date(dense * 1000).toISOString()}) could not be read completely in ${MAX_SECOND_PASSES} full reads`,
      ),
    );
  });
});

describe('WAHA client against a broken server', () => {
  let server: http.Server | undefined;
  afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

  async function serve(handler: http.RequestListener): Promise<WahaClient> {
    server = http.createServer(handler);
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    return createWahaClient({
      baseUrl: `http://127.0.0.1:${port}`,
      requestTimeoutMs: 1000,
      maxResponseBytes: 1000,
      retry: QUICK_RETRY,
    });
  }

  it('gives the one-request WEBJS chat list more than --request-timeout: WEBJS is slow to list', async () => {
    let requests = 0;
    const client = await serve((_req, res) => {
      requests++;
      // Slower than the client's 1 s request timeout, as WEBJS is past ~1,000 chats.
      setTimeout(
        () =>
          res.end(JSON.stringify([{ id: { _serialized: '5511900000001@c.us' }, timestamp: 1_788_000_000 }])),
        1500,
      );
    });
    const chats = await client.listChats('default', { pageSize: 100, engine: 'WEBJS' });
    expect(chats.map((c) => c.chatId)).toEqual(['5511900000001@c.us']);
    expect(requests).toBe(1);
    expect(client.stats.retries).toBe(0);
  });

  it('lists every chat sorted by id although chats before the reader vanish mid-listing', async () => {
    const ids = Array.from(
      { length: 12 },
      (_, i) => `55119000000${String(i).padStart(2, '0')}@s.whatsapp.net`,
    );
    let chats = ids.map((id) => ({ id, conversationTimestamp: 1_788_000_000 }));
    const offsets: number[] = [];
    const client = await serve((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const offset = Number(url.searchParams.get('offset'));
      const limit = Number(url.searchParams.get('limit'));
      offsets.push(offset);
      // After the first page, three chats the reader has already passed are deleted: a plain offset
      // listing would now skip three chats.
      if (offsets.length === 2) chats = chats.filter((c) => !ids.slice(0, 3).includes(c.id));
      res.end(JSON.stringify(chats.slice(offset, offset + limit)));
    });
    const listed = await client.listChats('default', { pageSize: 4, engine: 'NOWEB' });
    expect(listed.map((c) => c.id).sort()).toEqual(ids);
    // The page after the deletion did not hold the previous page's last chat: it was read again earlier.
    expect(offsets.slice(0, 3)).toEqual([0, 3, 0]);
  });

  it('names the endpoint when the JSON is malformed', async () => {
    const client = await serve((_req, res) => res.end('{"name": "default", '));
    await expect(client.session('default')).rejects.toThrow(
      new WahaResponseError(
        'GET /api/sessions/default answered with malformed JSON (20 characters, starting "{\\"name\\": \\"default\\", ")',
      ),
    );
  });

  it('refuses a response larger than the limit instead of buffering it', async () => {
    const client = await serve((_req, res) =>
      res.end(JSON.stringify({ name: 'x'.repeat(5000), status: 'WORKING' })),
    );
    await expect(client.session('default')).rejects.toThrow(/larger than 1000 bytes/);
  });

  it('names the setting that bounds the response that was too large', async () => {
    const client = await serve((_req, res) =>
      res.end(JSON.stringify([{ id: '5511900000001@c.us', name: 'x'.repeat(5000), status: 'WORKING' }])),
    );
    for (const engine of ['NOWEB', 'WEBJS']) {
      await expect(client.listChats('default', { pageSize: 100, engine })).rejects.toMatchObject({
        message: expect.stringMatching(/^GET \/api\/default\/chats sent a response larger than 1000 bytes$/),
        hint: expect.stringMatching(
          /^Lower --chat-page-size, or raise --max-response-mb .*WEBJS.* only --max-response-mb helps/,
        ),
      });
    }
    await expect(client.session('default')).rejects.toMatchObject({
      hint: 'Raise --max-response-mb if the server is trusted.',
    });
  });

  it('refuses a message list with a wrong shape, naming the field', async () => {
    const client = await serve((_req, res) =>
      res.end(JSON.stringify([{ id: 'false_1@c.us_AB', timestamp: 'yesterday' }])),
    );
    const chat: ChatRecord = {
      session: 'default',
      id: '1@c.us',
      chatId: '1@c.us',
      name: null,
      kind: 'person',
      lastActivityAt: null,
      raw: {},
    };
    const pages = client.chatMessages('default', chat, {
      window: ALL_TIME,
      pageSize: 100,
      pageEnd: 'empty',
      meId: null,
    });
    await expect(pages.next()).rejects.toThrow(/message #0: 'timestamp' is the string "yesterday"/);
  });
});

it('generates the default dataset deterministically (used by every end-to-end test)', () => {
  expect(generateDataset({ anchorS: 1_790_000_000 })).toEqual(generateDataset({ anchorS: 1_790_000_000 }));
});
