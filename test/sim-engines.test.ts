import {
  generateDataset,
  SIM_WAHA_VERSION,
  startOfUtcDayS,
  startSimulator,
  visibleMessages,
  type Engine,
  type EngineProfile,
  type SimSessionOptions,
  type Simulator,
} from '../src/sim/index.js';

/** The engine profiles, over HTTP against the real simulator. */

const ANCHOR_S = startOfUtcDayS(Date.UTC(2026, 10, 30, 12));
const DATASET = generateDataset({
  anchorS: ANCHOR_S,
  seed: 5,
  chats: 60,
  messages: 1500,
  bigChats: [240],
  groupRatio: 0.3,
  lidRatio: 0.05,
  hiddenRatio: 0.2,
});
const ENGINES: Engine[] = ['NOWEB', 'GOWS', 'WEBJS'];
const WA_ID = /^3EB0[0-9A-F]{16}$/;

type Json = Record<string, unknown>;
interface Answer<T> {
  status: number;
  body: T;
  text: string;
}

async function get<T = Json[]>(sim: Simulator, path: string): Promise<Answer<T>> {
  const response = await fetch(sim.url + path);
  const text = await response.text();
  return { status: response.status, body: JSON.parse(text) as T, text };
}

function messagesPath(
  chatId: string,
  params: Record<string, string | number> = {},
  session = 'default',
): string {
  const query = new URLSearchParams({ downloadMedia: 'false', ...params } as Record<string, string>);
  return `/api/${session}/chats/${encodeURIComponent(chatId)}/messages?${query.toString()}`;
}

function start(
  engine: Engine,
  profile: Partial<EngineProfile> = {},
  extra: Parameters<typeof startSimulator>[0] = {},
): Promise<Simulator> {
  return startSimulator({ engine, profile, sessions: [{ name: 'default', dataset: DATASET }], ...extra });
}

async function withSim<T>(sim: Promise<Simulator>, body: (sim: Simulator) => Promise<T>): Promise<T> {
  const running = await sim;
  try {
    return await body(running);
  } finally {
    await running.close();
  }
}

async function waitForStats(sim: Simulator, predicate: (s: ReturnType<Simulator['stats']>) => boolean) {
  for (let attempt = 0; attempt < 2000; attempt++) {
    if (predicate(sim.stats())) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error(`stats never reached the expected state: ${JSON.stringify(sim.stats())}`);
}

async function pageAll(sim: Simulator, chatId: string, limit: number, params: Json = {}): Promise<Json[][]> {
  const pages: Json[][] = [];
  for (let offset = 0; ; offset += limit) {
    const page = await get(
      sim,
      messagesPath(chatId, { limit, offset, ...(params as Record<string, string>) }),
    );
    expect(page.status).toBe(200);
    if (page.body.length === 0) return pages;
    pages.push(page.body);
  }
}

const waIdOf = (m: Json): string => String(m.id).split('_')[2]!;
const BIG = DATASET.chats[0]!;
const sized = (c: (typeof DATASET.chats)[number]): boolean =>
  visibleMessages(c).length >= 12 && visibleMessages(c).length <= 60;
const PERSON = DATASET.chats.find((c) => c.kind === 'person' && sized(c))!;
const GROUP = DATASET.chats.find((c) => c.kind === 'group' && sized(c))!;
const ME = DATASET.me.id;

describe('versions and sessions', () => {
  it.each(ENGINES)('%s answers /api/server/version, and the deprecated /api/version', async (engine) => {
    await withSim(start(engine), async (sim) => {
      const expected = { version: SIM_WAHA_VERSION, engine, tier: 'PLUS' };
      expect((await get(sim, '/api/server/version')).body).toEqual(expected);
      expect((await get(sim, '/api/version')).body).toEqual(expected);
      expect((await get<Json>(sim, '/api/sessions/default')).body.engine).toEqual({ engine });
    });
  });

  it('a profile can drop /api/version, claim the Core tier, and a session can run another engine', async () => {
    const sessions: SimSessionOptions[] = [
      { name: 'default', dataset: DATASET },
      { name: 'web', dataset: DATASET, engine: 'WEBJS' },
    ];
    await withSim(
      start('NOWEB', { legacyVersionRoute: false, coreTier: true }, { sessions }),
      async (sim) => {
        expect((await get(sim, '/api/version')).status).toBe(404);
        expect((await get(sim, '/api/server/version')).body).toEqual({
          version: SIM_WAHA_VERSION,
          engine: 'NOWEB',
          tier: 'CORE',
        });
        expect((await get<Json>(sim, '/api/sessions/web')).body.engine).toEqual({ engine: 'WEBJS' });
        // Core allows only `default`: another name is a 422 naming the restriction, on every chat route.
        for (const path of ['/api/web/chats', messagesPath(BIG.id, {}, 'web'), '/api/web/lids']) {
          const refused = await get<Json>(sim, path);
          expect(refused.status).toBe(422);
          expect(refused.body).toMatchObject({
            statusCode: 422,
            message: expect.stringMatching(/Core tier/),
          });
        }
        expect((await get(sim, '/api/default/chats?limit=1')).status).toBe(200);
      },
    );
  });
});

describe('sessions that cannot serve', () => {
  const sessions: SimSessionOptions[] = [
    { name: 'default', dataset: DATASET },
    { name: 'off', dataset: DATASET, status: 'STOPPED' },
    { name: 'phone', dataset: DATASET, status: 'SCAN_QR_CODE' },
  ];

  it('answer 422 (never 404) on chat routes after notWorkingDelayMs; the session route keeps its 404', async () => {
    await withSim(start('GOWS', {}, { sessions, notWorkingDelayMs: 300 }), async (sim) => {
      const pending = get<Json>(sim, '/api/ghost/chats');
      // Held: the answer waits for the delay while the request holds its slot.
      await waitForStats(sim, (s) => s.byRoute.chats === 1 && s.inFlight === 1);
      const ghost = await pending;
      expect(ghost.status).toBe(422);
      expect(ghost.body).toEqual({
        statusCode: 422,
        message: 'Session "ghost" does not exist',
        error: 'Unprocessable Entity',
      });
      const stopped = await get<Json>(sim, messagesPath(BIG.id, {}, 'off'));
      expect(stopped.status).toBe(422);
      expect(stopped.body).toMatchObject({
        statusCode: 422,
        message: expect.stringMatching(/^Session "off" is not running/),
      });
      const scanning = await get<Json>(sim, '/api/phone/lids');
      expect(scanning.status).toBe(422);
      expect(scanning.body).toMatchObject({
        session: 'phone',
        status: 'SCAN_QR_CODE',
        expected: ['WORKING'],
      });
      expect((await get(sim, '/api/sessions/ghost')).status).toBe(404);
    });
  });
});

describe('chat listing', () => {
  const withMessages = DATASET.chats.filter((c) => c.messages.length > 0);

  it('NOWEB lists people by @s.whatsapp.net, newest activity first, leaving out chats with no timestamp', async () => {
    await withSim(start('NOWEB'), async (sim) => {
      const chats = (
        await get<Array<{ id: string; conversationTimestamp?: number }>>(sim, '/api/default/chats')
      ).body;
      expect(DATASET.chats.length - withMessages.length).toBe(3);
      expect(chats).toHaveLength(withMessages.length);
      expect(chats.every((c) => typeof c.conversationTimestamp === 'number')).toBe(true);
      expect(chats.every((c) => /@(s\.whatsapp\.net|g\.us|lid)$/.test(c.id))).toBe(true);
      expect(chats.some((c) => c.id.endsWith('@g.us'))).toBe(true);
      expect(chats.map((c) => c.id)).toContain(PERSON.id.replace('@c.us', '@s.whatsapp.net'));
      const times = chats.map((c) => c.conversationTimestamp ?? 0);
      expect(times).toEqual([...times].sort((a, b) => b - a));

      // The messages route takes either form; message ids and `from` use @c.us.
      const jid = await get(sim, messagesPath(PERSON.id.replace('@c.us', '@s.whatsapp.net'), { limit: 100 }));
      const cus = await get(sim, messagesPath(PERSON.id, { limit: 100 }));
      expect(jid.body.map((m) => m.id).sort()).toEqual(cus.body.map((m) => m.id).sort());
      expect(cus.body.every((m) => m.from === PERSON.id && String(m.id).includes(`_${PERSON.id}_`))).toBe(
        true,
      );
    });
  });

  it('GOWS lists people by @lid, by id ascending, empty chats included; message ids carry the lid', async () => {
    await withSim(start('GOWS'), async (sim) => {
      const chats = (await get<Array<{ id: string }>>(sim, '/api/default/chats')).body;
      expect(chats).toHaveLength(DATASET.chats.length);
      const ids = chats.map((c) => c.id);
      expect(ids).toEqual([...ids].sort());
      expect(ids.some((id) => id.endsWith('@c.us') || id.endsWith('@s.whatsapp.net'))).toBe(false);
      const lid = (await get<{ lid: string | null }>(sim, `/api/default/lids/pn/${PERSON.id.split('@')[0]}`))
        .body.lid;
      const personLid = lid ?? sim.lids('default').find((m) => m.pn === null && ids.includes(m.lid))!.lid;
      expect(ids).toContain(personLid);
      const messages = await get(sim, messagesPath(personLid, { limit: 100 }));
      expect(messages.body.length).toBeGreaterThan(0);
      expect(
        messages.body.every((m) => String(m.id).includes(`_${personLid}_`) && m.from === personLid),
      ).toBe(true);
    });
  });

  it('WEBJS: object ids, its own order whatever the sort, shifting when a chat gets a message', async () => {
    await withSim(start('WEBJS'), async (sim) => {
      type WebChat = { id: { _serialized: string; user: string; server: string }; timestamp?: number };
      const ids = async (query: string): Promise<string[]> =>
        (await get<WebChat[]>(sim, `/api/default/chats${query}`)).body.map((c) => c.id._serialized);
      const all = await ids('');
      expect(all).toHaveLength(DATASET.chats.length);
      expect(await ids('?sortBy=id&sortOrder=asc')).toEqual(all);
      expect(await ids('?sortBy=name')).toEqual(all);

      const first = await ids('?limit=5&offset=0');
      expect(first).toEqual(all.slice(0, 5));
      // A chat on the second page gets a message between the two requests: it jumps to the front.
      const moved = all[7]!;
      sim.addMessages('default', moved, 1, ANCHOR_S - 5);
      const second = await ids('?limit=5&offset=5');
      const seen = [...first, ...second];
      expect(seen).not.toContain(moved); // skipped
      expect(new Set(seen).size).toBeLessThan(seen.length); // and one repeated
      expect((await ids(''))[0]).toBe(moved);
    });
  });

  it('WEBJS: a chat item carries its newest message whole, and a group its metadata with every member', async () => {
    await withSim(start('WEBJS'), async (sim) => {
      type WebChat = Json & { id: { _serialized: string }; lastMessage?: Json; groupMetadata?: Json };
      const listed = (await get<WebChat[]>(sim, '/api/default/chats')).body;
      const byId = new Map(listed.map((c) => [c.id._serialized, c]));
      for (const chat of [PERSON, GROUP]) {
        const newest = (await get(sim, messagesPath(chat.id, { limit: 1 }))).body[0];
        expect(byId.get(chat.id)!.lastMessage).toEqual(newest);
      }
      expect(byId.get(PERSON.id)!.groupMetadata).toBeUndefined();
      const metadata = byId.get(GROUP.id)!.groupMetadata as { participants: Json[]; size: number };
      const members = metadata.participants.map((p) => (p.id as { _serialized: string })._serialized);
      expect(members).toEqual([
        ME,
        ...GROUP.participants.map((p) => p.jid.replace('@s.whatsapp.net', '@c.us')),
      ]);
      expect(metadata.size).toBe(members.length);
      expect(metadata.participants[0]).toMatchObject({ isAdmin: true, isSuperAdmin: true });
      // Left out, as JSON leaves out an undefined field, when the chat has no message to show.
      const empty = DATASET.chats.find((c) => visibleMessages(c).length === 0);
      expect(empty).toBeDefined();
      expect('lastMessage' in byId.get(empty!.id)!).toBe(false);
      expect(listed.filter((c) => c.lastMessage === undefined)).toHaveLength(
        DATASET.chats.filter((c) => visibleMessages(c).length === 0).length,
      );
    });
  });
});

describe('message shapes', () => {
  it('NOWEB: from is the chat, also for my own messages; participant in groups; Baileys _data', async () => {
    await withSim(start('NOWEB'), async (sim) => {
      const messages = (await get(sim, messagesPath(GROUP.id, { limit: 100 }))).body;
      expect(messages.every((m) => m.from === GROUP.id)).toBe(true);
      const incoming = messages.find((m) => m.fromMe === false)!;
      expect(incoming.participant).toMatch(/@(c\.us|lid)$/);
      expect(incoming._data).toMatchObject({
        key: { remoteJid: GROUP.id, fromMe: false, id: waIdOf(incoming) },
      });
    });
  });

  it('NOWEB 2026.6.2 (#2139): my own messages carry the second of the request; filters use the stored time', async () => {
    await withSim(start('NOWEB', { ownTimestampsAtRequest: true }), async (sim) => {
      const stored = new Map(visibleMessages(GROUP).map((m) => [m.waId, m.timestampS]));
      const oldestS = Math.min(...stored.values());
      const beforeS = Math.floor(Date.now() / 1000);
      const served = (
        await get(sim, messagesPath(GROUP.id, { limit: 100, 'filter.timestamp.lte': oldestS + 86_400 }))
      ).body;
      const afterS = Math.floor(Date.now() / 1000);
      const mine = served.filter((m) => m.fromMe === true);
      const others = served.filter((m) => m.fromMe === false);
      expect(mine.length).toBeGreaterThan(0);
      expect(others.length).toBeGreaterThan(0);
      for (const m of mine) {
        expect(m.timestamp).toBeGreaterThanOrEqual(beforeS);
        expect(m.timestamp).toBeLessThanOrEqual(afterS);
        expect((m._data as Json).messageTimestamp).toBe(m.timestamp);
        // Selected by the stored time, which the filter's lte holds.
        expect(stored.get(waIdOf(m))).toBeLessThanOrEqual(oldestS + 86_400);
      }
      for (const m of others) expect(m.timestamp).toBe(stored.get(waIdOf(m)));
    });
  });

  it('GOWS: from is the chat, to the sender in groups and null in direct chats; whatsmeow _data', async () => {
    await withSim(start('GOWS'), async (sim) => {
      const group = (await get(sim, messagesPath(GROUP.id, { limit: 100 }))).body;
      for (const m of group) {
        const info = (m._data as { Info: Json }).Info;
        expect(m.from).toBe(GROUP.id);
        expect(m.to).toBe(m.fromMe ? ME : m.participant);
        expect(info).toMatchObject({ ID: waIdOf(m), Chat: GROUP.id, IsFromMe: m.fromMe, IsGroup: true });
        expect(info.Timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
        if (m.timestamp !== null) expect(Date.parse(String(info.Timestamp)) / 1000).toBe(m.timestamp);
      }
      const direct = (await get(sim, messagesPath(PERSON.id, { limit: 100 }))).body;
      expect(direct.every((m) => m.to === null && m.participant === undefined)).toBe(true);
    });
  });

  it('GOWS: some timestamps are null (the same ones every time) and ack ERROR is null', async () => {
    await withSim(start('GOWS'), async (sim) => {
      const truth = sim.groundTruth('default');
      const nulls = truth.messages.filter((m) => m.timestamp === null);
      expect(nulls.length).toBeGreaterThan(0);
      expect(nulls.length / truth.messages.length).toBeLessThan(0.1);
      const again = (await get(sim, messagesPath(BIG.id, { limit: 100 }))).body;
      const nullIds = new Set(nulls.map((m) => m.id));
      expect(again.filter((m) => m.timestamp === null).every((m) => nullIds.has(String(m.id)))).toBe(true);
      const errorWaIds = new Set(
        DATASET.chats.flatMap((c) => c.messages.filter((m) => m.raw.ack === -1).map((m) => m.waId)),
      );
      expect(errorWaIds.size).toBeGreaterThan(0);
      const served = truth.messages.filter((m) => errorWaIds.has(waIdOf(m as unknown as Json)));
      expect(served.length).toBe(errorWaIds.size);
      expect(served.every((m) => m.ack === null)).toBe(true);
    });
  });

  it('WEBJS: from is the sender side, author in groups, and _data is whatsapp-web.js', async () => {
    await withSim(start('WEBJS'), async (sim) => {
      const group = (await get(sim, messagesPath(GROUP.id, { limit: 100 }))).body;
      const incoming = group.find((m) => m.fromMe === false)!;
      expect(incoming.from).toBe(GROUP.id);
      expect(incoming.participant).toBeDefined();
      expect(incoming._data).toMatchObject({
        id: { fromMe: false, remote: GROUP.id, id: waIdOf(incoming), _serialized: incoming.id },
        author: incoming.participant,
        t: incoming.timestamp,
      });
      const direct = (await get(sim, messagesPath(PERSON.id, { limit: 100 }))).body;
      expect(direct.filter((m) => m.fromMe).every((m) => m.from === ME)).toBe(true);
      expect(direct.filter((m) => !m.fromMe).every((m) => m.from === PERSON.id)).toBe(true);
      const types = new Set(
        (await get(sim, messagesPath(BIG.id, { limit: 100 }))).body.map((m) => (m._data as Json).type),
      );
      expect(types).toContain('chat');
    });
  });

  it('WEBJS: gte drops timestamp (#2024), and a profile can ignore lte (#2164)', async () => {
    const visible = visibleMessages(BIG);
    const [gteS, lteS] = [visible[50]!.timestampS, visible[150]!.timestampS];
    const inWindow = visible.filter((m) => m.timestampS >= gteS && m.timestampS <= lteS).length;
    await withSim(start('WEBJS'), async (sim) => {
      const page = (await get(sim, messagesPath(BIG.id, { limit: 100, 'filter.timestamp.gte': gteS }))).body;
      expect(page.every((m) => !('timestamp' in m) && typeof (m._data as Json).t === 'number')).toBe(true);
      const both = (
        await get(
          sim,
          messagesPath(BIG.id, { limit: 100, 'filter.timestamp.gte': gteS, 'filter.timestamp.lte': lteS }),
        )
      ).body;
      expect(both).toHaveLength(Math.min(100, inWindow));
      expect(both.every((m) => ((m._data as Json).t as number) <= lteS)).toBe(true);
    });
    await withSim(start('WEBJS', { ignoresLte: true, dropsTimestampWithGte: false }), async (sim) => {
      const page = (await get(sim, messagesPath(BIG.id, { limit: 100, 'filter.timestamp.lte': lteS }))).body;
      expect(page.some((m) => (m.timestamp as number) > lteS)).toBe(true);
      expect(page.every((m) => typeof m.timestamp === 'number')).toBe(true);
    });
  });

  it.each(ENGINES)('%s: replyTo.id is the short WhatsApp id', async (engine) => {
    await withSim(start(engine), async (sim) => {
      const replies = sim.groundTruth('default').messages.filter((m) => m.replyTo !== null);
      expect(replies.length).toBeGreaterThan(0);
      expect(replies.every((m) => WA_ID.test(m.replyTo!.id))).toBe(true);
    });
  });
});

describe('paging per engine', () => {
  it('NOWEB: full pages until the end (no hidden rows), each page the right rows in shuffled order', async () => {
    await withSim(start('NOWEB'), async (sim) => {
      const pages = await pageAll(sim, BIG.id, 20);
      expect(pages.slice(0, -1).every((p) => p.length === 20)).toBe(true);
      expect(pages.flat()).toHaveLength(240);
      const ts = (p: Json[]): number[] => p.map((m) => m.timestamp as number);
      const unsorted = pages.filter((p) => ts(p).some((t, i) => i > 0 && t > ts(p)[i - 1]!));
      expect(unsorted.length).toBeGreaterThan(0);
      pages.forEach((p, i) => {
        if (i > 0) expect(Math.max(...ts(p))).toBeLessThanOrEqual(Math.min(...ts(pages[i - 1]!)));
      });
      const path = messagesPath(BIG.id, { limit: 20, offset: 40 });
      expect((await get(sim, path)).text).toBe((await get(sim, path)).text);
    });
  });

  it('GOWS: limit/offset over every stored row, hidden ones dropped after: short pages mid-chat', async () => {
    await withSim(start('GOWS'), async (sim) => {
      const pages = await pageAll(sim, BIG.id, 20);
      expect(pages.slice(0, -1).some((p) => p.length < 20)).toBe(true);
      expect(pages.flat().map(waIdOf)).toEqual(
        visibleMessages(BIG)
          .reverse()
          .map((m) => m.waId),
      );
    });
  });

  it('WEBJS: hidden rows removed before paging (full pages), newest first even when asked for asc', async () => {
    await withSim(start('WEBJS'), async (sim) => {
      const pages = await pageAll(sim, BIG.id, 20, { sortOrder: 'asc' });
      expect(pages.slice(0, -1).every((p) => p.length === 20)).toBe(true);
      expect(pages.flat().map(waIdOf)).toEqual(
        visibleMessages(BIG)
          .reverse()
          .map((m) => m.waId),
      );
    });
  });
});

describe('rows of one second on a store that sorts by timestamp alone (tieOrder)', () => {
  /** One pass over `second` by offset: every id served, in order. */
  async function pass(sim: Simulator, second: number, limit: number): Promise<string[]> {
    const window = { 'filter.timestamp.gte': second, 'filter.timestamp.lte': second };
    return (await pageAll(sim, PERSON.id, limit, window)).flat().map(waIdOf);
  }

  it('bounded-sort (PostgreSQL, MongoDB): by offset, rows at page bounds come twice or never, the same every pass', async () => {
    for (const engine of ['NOWEB', 'GOWS'] as const) {
      const profile = { tieOrder: 'bounded-sort', shufflesPage: false, nullTimestampShare: 0 } as const;
      await withSim(start(engine, profile), async (sim) => {
        const second = ANCHOR_S - 3_600;
        const burst = sim.addMessages('default', PERSON.id, 300, second).map((m) => m.id.split('_')[2]!);
        const first = await pass(sim, second, 100);
        // Exact page sizes, so the count is right, but not the rows.
        expect(first).toHaveLength(300);
        const missed = (ids: string[]): string[] => burst.filter((id) => !ids.includes(id));
        expect(missed(first).length).toBeGreaterThan(0);
        expect(new Set(first).size).toBe(300 - missed(first).length);
        // The same request, the same answer: another pass at that size misses the same rows.
        expect(await pass(sim, second, 100)).toEqual(first);
        // Another size puts the bounds elsewhere: what it misses differs.
        const other = await pass(sim, second, 88);
        expect(missed(other).filter((id) => missed(first).includes(id))).toEqual([]);
        expect(new Set([...first, ...other]).size).toBe(300);
        // Never out of timestamp order across a bound (only ties move).
        const pages = await pageAll(sim, PERSON.id, 7);
        const ts = pages.flat().map((m) => m.timestamp as number);
        expect(ts.every((t, i) => i === 0 || t <= ts[i - 1]!)).toBe(true);
      });
    }
  });

  it('stable (SQLite, the default): by offset, each row of the second once', async () => {
    await withSim(start('NOWEB', { shufflesPage: false }), async (sim) => {
      const second = ANCHOR_S - 3_600;
      const burst = sim.addMessages('default', PERSON.id, 300, second).map((m) => m.id.split('_')[2]!);
      expect((await pass(sim, second, 100)).sort()).toEqual([...burst].sort());
    });
  });
});

describe('deletions and revokes', () => {
  it('NOWEB: a revoke mid-sequence deletes the row, so the next offset page skips a message', async () => {
    await withSim(start('NOWEB', { shufflesPage: false }), async (sim) => {
      const first = (await get(sim, messagesPath(BIG.id, { limit: 20 }))).body;
      const remove = sim.onRequest((request) => {
        if (request.query.offset === '20') sim.revokeMessage('default', String(first[3]!.id));
      });
      const second = (await get(sim, messagesPath(BIG.id, { limit: 20, offset: 20 }))).body;
      remove();
      const all = visibleMessages(BIG)
        .reverse()
        .map((m) => m.waId);
      const seen = [...first, ...second].map(waIdOf);
      expect(seen).not.toContain(all[20]); // shifted onto page one: never served
      expect(sim.groundTruth('default').messages.some((m) => m.id === first[3]!.id)).toBe(false);
      expect(sim.revokeMessage('default', String(first[3]!.id))).toBe(false);
    });
  });

  it('GOWS: a revoke keeps the message and adds a hidden protocol row that takes a paging slot', async () => {
    await withSim(start('GOWS'), async (sim) => {
      const before = (await get(sim, messagesPath(PERSON.id, { limit: 100 }))).body;
      const count = before.length;
      const fitting = (await get(sim, messagesPath(PERSON.id, { limit: count }))).body.length;
      expect(sim.revokeMessage('default', String(before[0]!.id))).toBe(true);
      expect((await get(sim, messagesPath(PERSON.id, { limit: 100 }))).body.map((m) => m.id)).toEqual(
        before.map((m) => m.id),
      );
      expect((await get(sim, messagesPath(PERSON.id, { limit: count }))).body).toHaveLength(fitting - 1);
      // deleteMessage takes the id as GOWS serves it.
      expect(sim.deleteMessage('default', String(before[1]!.id))).toBe(true);
      expect((await get(sim, messagesPath(PERSON.id, { limit: 100 }))).body).toHaveLength(count - 1);
    });
  });

  it('WEBJS: a revoke keeps the row as type "revoked" with body null', async () => {
    await withSim(start('WEBJS'), async (sim) => {
      const text = visibleMessages(PERSON).find((m) => m.raw.body !== null)!;
      expect(sim.revokeMessage('default', text.waId)).toBe(true);
      const served = (await get(sim, messagesPath(PERSON.id, { limit: 100 }))).body.find(
        (m) => waIdOf(m) === text.waId,
      )!;
      expect(served).toMatchObject({ body: null, _data: { type: 'revoked' } });
    });
  });
});

describe('merge of a person split between @lid and @c.us', () => {
  const LID = '987654321098765@lid';
  const visible = visibleMessages(PERSON);
  const splitS = visible[Math.floor(visible.length / 2)]!.timestampS;
  const movedVisible = visible.filter((m) => m.timestampS >= splitS).length;

  it('merge=true (the default) serves the union on either chat, merge=false only that chat; NOWEB lists both', async () => {
    await withSim(start('NOWEB', { shufflesPage: false }), async (sim) => {
      expect(sim.relinkChat('default', PERSON.id, LID, { fromS: splitS })).toBeGreaterThanOrEqual(
        movedVisible,
      );
      const moved = movedVisible;
      expect(moved).toBeGreaterThan(0);
      const listed = (await get<Array<{ id: string }>>(sim, '/api/default/chats')).body.map((c) => c.id);
      expect(listed).toEqual(expect.arrayContaining([LID, PERSON.id.replace('@c.us', '@s.whatsapp.net')]));
      expect((await get<Json>(sim, `/api/default/lids/${encodeURIComponent(LID)}`)).body).toEqual({
        lid: LID,
        pn: PERSON.id,
      });
      for (const chatId of [PERSON.id, LID]) {
        const merged = (await get(sim, messagesPath(chatId, { limit: 100 }))).body;
        expect(merged.map(waIdOf).sort()).toEqual(visible.map((m) => m.waId).sort());
        expect(merged.filter((m) => String(m.id).includes(`_${LID}_`))).toHaveLength(moved);
        const own = (await get(sim, messagesPath(chatId, { limit: 100, merge: 'false' }))).body;
        expect(own.every((m) => String(m.id).includes(`_${chatId}_`))).toBe(true);
        expect(own).toHaveLength(chatId === LID ? moved : visible.length - moved);
      }
    });
  });

  it('without merge support the parameter is ignored: only the asked chat', async () => {
    await withSim(start('NOWEB', { supportsMerge: false }), async (sim) => {
      sim.relinkChat('default', PERSON.id, LID, { fromS: splitS });
      expect((await get(sim, messagesPath(LID, { limit: 100, merge: 'true' }))).body).toHaveLength(
        movedVisible,
      );
    });
  });
});

describe('lid mapping endpoints', () => {
  it('GOWS knows the phone behind most lids, not all', async () => {
    await withSim(start('GOWS', { unknownLidShare: 0.3 }), async (sim) => {
      const page = await get<Array<{ lid: string; pn: string }>>(sim, '/api/default/lids?limit=5&offset=1');
      expect(page.body).toHaveLength(5);
      expect(page.body.every((m) => /^\d+@lid$/.test(m.lid) && /^\d+@c\.us$/.test(m.pn))).toBe(true);
      const one = page.body[0]!;
      expect((await get<Json>(sim, `/api/default/lids/${encodeURIComponent(one.lid)}`)).body).toEqual(one);
      expect((await get<Json>(sim, `/api/default/lids/pn/${one.pn.split('@')[0]}`)).body).toEqual(one);
      const all = sim.lids('default');
      const unknown = all.filter((m) => m.pn === null);
      expect(unknown.length).toBeGreaterThan(0);
      expect(unknown.length).toBeLessThan(all.length / 2);
      expect((await get<Json>(sim, `/api/default/lids/${unknown[0]!.lid}`)).body).toEqual({
        lid: unknown[0]!.lid,
        pn: null,
      });
    });
  });

  it('WEBJS answers 501', async () => {
    await withSim(start('WEBJS'), async (sim) => {
      for (const path of ['/api/default/lids', '/api/default/lids/1%40lid', '/api/default/lids/pn/5511']) {
        const answer = await get<Json>(sim, path);
        expect(answer.status).toBe(501);
        expect(answer.body).toEqual({
          statusCode: 501,
          message: 'Method not implemented for engine WEBJS',
          error: 'Not Implemented',
        });
      }
    });
  });
});

describe('failing chats', () => {
  it('answer WAHA’s unhandled-error 500 on every try, other chats are fine', async () => {
    await withSim(start('WEBJS', { failingChats: [PERSON.id] }), async (sim) => {
      for (let attempt = 0; attempt < 3; attempt++) {
        const answer = await get<Json>(sim, messagesPath(PERSON.id, { limit: 10 }));
        expect(answer.status).toBe(500);
        expect(answer.body).toEqual({
          statusCode: 500,
          timestamp: expect.any(String),
          exception: {
            message: "Cannot read properties of undefined (reading 'waitForChatLoading')",
            name: 'TypeError',
            stack: expect.stringContaining('TypeError'),
          },
          request: {
            path: `/api/default/chats/${encodeURIComponent(PERSON.id)}/messages`,
            method: 'GET',
            query: { downloadMedia: 'false', limit: '10' },
          },
          version: { version: SIM_WAHA_VERSION, engine: 'WEBJS', tier: 'PLUS' },
        });
      }
      expect((await get(sim, messagesPath(GROUP.id))).status).toBe(200);
      expect(sim.groundTruth('default').messages.some((m) => m.id.includes(`_${PERSON.id}_`))).toBe(false);
    });
  });
});

describe('hooks and scripted failures name chats by the dataset id', () => {
  it('whatever form the engine’s request uses for the chat', async () => {
    await withSim(start('NOWEB'), async (sim) => {
      const seen: Array<{ chatId?: string; requestedChatId?: string }> = [];
      sim.onRequest(({ chatId, requestedChatId }) => void seen.push({ chatId, requestedChatId }));
      sim.failNext(1, { status: 500, chatId: PERSON.id });
      const jid = PERSON.id.replace('@c.us', '@s.whatsapp.net');
      expect((await get(sim, messagesPath(GROUP.id))).status).toBe(200);
      expect((await get(sim, messagesPath(jid))).status).toBe(500);
      expect((await get(sim, messagesPath(jid))).status).toBe(200);
      expect(seen[1]).toEqual({ chatId: PERSON.id, requestedChatId: jid });
    });
  });
});

describe('validation as WAHA does it', () => {
  it('limit above the deployment cap is 400, Infinity lifts the cap; any sortOrder; bad chat sortBy 400', async () => {
    await withSim(start('NOWEB'), async (sim) => {
      expect((await get(sim, messagesPath(BIG.id, { limit: 150 }))).status).toBe(400);
      expect((await get(sim, '/api/default/chats?sortBy=lastMessage')).status).toBe(400);
      const sideways = await get(
        sim,
        messagesPath(BIG.id, { limit: 100, sortOrder: 'sideways', colour: 'blue' }),
      );
      expect(sideways.status).toBe(200);
      const newest = visibleMessages(BIG).at(-1)!.timestampS;
      expect(Math.max(...sideways.body.map((m) => m.timestamp as number))).toBe(newest);
    });
    await withSim(start('GOWS', {}, { maxPageSize: Infinity }), async (sim) => {
      const big = await get(sim, messagesPath(BIG.id, { limit: 1000 }));
      expect(big.status).toBe(200);
      expect(big.body).toHaveLength(240);
    });
  });
});

describe('groundTruth', () => {
  it.each(ENGINES)('%s: expected holds one canonical entry per served message', async (engine) => {
    await withSim(start(engine, { unknownLidShare: 0.3 }), async (sim) => {
      const window = { fromS: ANCHOR_S - 20 * 86_400, toS: ANCHOR_S - 86_400 };
      const truth = sim.groundTruth('default', window);
      expect(truth.expected.map((e) => e.id)).toEqual(truth.messages.map((m) => m.id));
      expect(truth.lids).toEqual(sim.lids('default'));
      const phoneOf = new Map(truth.lids.map((m) => [m.lid, m.pn]));
      const model = new Map(
        DATASET.chats.flatMap((c) => c.messages.map((m) => [m.waId, { chat: c, message: m }] as const)),
      );
      for (const [i, e] of truth.expected.entries()) {
        const { chat, message } = model.get(e.waId)!;
        expect(waIdOf(truth.messages[i] as unknown as Json)).toBe(e.waId);
        expect(e.timestampS).toBe(message.timestampS);
        expect(e.timestampS >= window.fromS && e.timestampS <= window.toS).toBe(true);
        expect(e.fromMe).toBe(message.fromMe);
        if (chat.kind === 'group') expect(e.chatId).toBe(chat.id);
        else if (chat.kind === 'person' && engine !== 'GOWS') expect(e.chatId).toBe(chat.id);
        else if (chat.kind === 'person')
          expect(e.chatId).toBe(phoneOf.get(String(truth.messages[i]!.from)) ?? truth.messages[i]!.from);
        else expect(e.chatId).toBe(engine === 'WEBJS' ? chat.id : (phoneOf.get(chat.id) ?? chat.id));
        expect(e.chatId).not.toMatch(/@s\.whatsapp\.net$/);
        if (message.fromMe) expect(e.sender).toBe(ME);
        else if (chat.kind === 'group') expect(e.sender).toBe(e.participant);
        else expect(e.sender).toBe(e.chatId);
      }
      if (engine === 'GOWS') {
        const lidChats = truth.expected.filter((e) => e.chatId.endsWith('@lid'));
        const phoneChats = truth.expected.filter((e) => e.chatId.endsWith('@c.us'));
        expect(lidChats.length).toBeGreaterThan(0);
        expect(phoneChats.length).toBeGreaterThan(lidChats.length);
      }
    });
  });
});
