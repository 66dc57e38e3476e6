import {
  appendMessages,
  appendRevokeRow,
  deleteMessage,
  generateDataset,
  startOfUtcDayS,
  startSimulator,
  toCus,
  toJid,
  type Dataset,
  type Engine,
  type EngineProfile,
  type SimChat,
  type SimMessage,
} from '../src/sim/index.js';
import { resolveProfile } from '../src/sim/engines.js';
import { chance, mulberry32, pick, randomInt, shuffle, type Random } from '../src/sim/random.js';
import { hashText, listMessages, type MessagesContext, type SimSession } from '../src/sim/routes.js';
import { lidBookFor, relinkSessionChat, revokeSessionMessage } from '../src/sim/server.js';
import { engineMessage } from '../src/sim/shapes.js';

/**
 * The simulator cuts message pages out of per-chat indexes (binary search on the time, an offset inside,
 * a two-way merge for a split `@lid`/`@c.us` history). Here every page is compared with what a plain
 * filter over the whole chat serves, on random histories changed at random between requests: arrivals
 * in seconds already served, deletions, revokes, relinks, for every engine profile.
 */

const ANCHOR_S = startOfUtcDayS(Date.UTC(2026, 10, 30, 12));
const CONTEXT: MessagesContext = {
  maxPageSize: 100,
  baseUrl: 'http://127.0.0.1:1',
  nowMs: () => Date.now(),
  request: { path: '/', method: 'GET', query: {} },
};

/** The simulator's answer before the indexes: filter the whole chat (and its merge partner), then page. */
function referenceMessages(
  session: SimSession,
  chatId: string,
  query: URLSearchParams,
): { body: unknown[]; mixed: boolean } {
  const profile = session.profile;
  const int = (name: string): number | undefined =>
    query.get(name) === null ? undefined : Number(query.get(name));
  const bool = (name: string): boolean | undefined =>
    query.get(name) === null ? undefined : query.get(name) === 'true';
  const limit = int('limit') ?? 10;
  const offset = int('offset') ?? 0;
  const gteS = int('filter.timestamp.gte');
  const lteS = profile.ignoresLte ? undefined : int('filter.timestamp.lte');
  const fromMe = bool('filter.fromMe');
  const merge = profile.supportsMerge ? (bool('merge') ?? true) : false;
  const chats = session.dataset.chats;
  const find = (id: string): SimChat | undefined => chats.find((c) => c.id === id);
  let chat = find(chatId);
  if (!chat && profile.engine !== 'WEBJS') {
    if (chatId.endsWith('@s.whatsapp.net')) chat = find(toCus(chatId));
    else if (profile.engine === 'GOWS' && chatId.endsWith('@lid')) {
      const phone = session.lids.phoneOf(chatId);
      chat =
        phone !== null
          ? chats.find((c) => c.id === phone && c.kind === 'person')
          : chats.find((c) => c.kind === 'person' && session.lids.lidOf(c.id) === chatId);
    }
  }
  if (!chat) return { body: [], mixed: false };
  let partner: SimChat | undefined;
  if (merge && chat.kind !== 'group') {
    const otherId = chat.kind === 'lid' ? session.lids.phoneOf(chat.id) : session.lids.knownLidOf(chat.id);
    partner = otherId === null ? undefined : chats.find((c) => c !== chat && c.id === otherId);
  }
  const stored = (c: SimChat): Array<{ chat: SimChat; message: SimMessage }> =>
    c.messages
      .filter(
        (m) =>
          (gteS === undefined || m.timestampS >= gteS) &&
          (lteS === undefined || m.timestampS <= lteS) &&
          (fromMe === undefined || m.fromMe === fromMe) &&
          !(profile.hiddenRows !== 'dropped-after-paging' && m.hidden),
      )
      .map((message) => ({ chat: c, message }));
  let rows = stored(chat);
  if (partner)
    rows = [...rows, ...stored(partner)].sort((a, b) => a.message.timestampS - b.message.timestampS);
  if (!(profile.honoursAsc && query.get('sortOrder') === 'asc')) rows.reverse();
  rows = rows.slice(offset, offset + limit).filter((row) => !row.message.hidden);
  if (profile.shufflesPage && rows.length > 1) {
    const seed = hashText(`${session.dataset.options.seed}|${chat.id}?${[...query].sort().join('&')}`);
    rows = shuffle(mulberry32(seed), [...rows]);
  }
  const shape = { gteGiven: gteS !== undefined };
  return {
    body: rows.map((row) => engineMessage(session, row.chat, row.message, shape)),
    mixed: new Set(rows.map((row) => row.chat)).size > 1,
  };
}

function sessionFor(engine: Engine, overrides: Partial<EngineProfile>, dataset: Dataset): SimSession {
  const profile = resolveProfile(engine, overrides);
  return {
    name: 'default',
    status: 'WORKING',
    dataset,
    me: dataset.me,
    profile,
    lids: lidBookFor(dataset, profile),
    activity: new Map(),
  };
}

/** Every id a request may name a chat by on this engine, plus one no chat has. */
function requestIds(session: SimSession): string[] {
  const ids = ['5500000000000@c.us'];
  for (const chat of session.dataset.chats) {
    ids.push(chat.id);
    if (chat.kind === 'person') ids.push(toJid(chat.id), session.lids.lidOf(chat.id));
  }
  return ids;
}

function randomQuery(random: Random, session: SimSession): URLSearchParams {
  const { fromS, toS } = span(session.dataset);
  const query = new URLSearchParams({
    limit: String(pick(random, [0, 1, 7, 50, 100])),
    downloadMedia: 'false',
  });
  if (chance(random, 0.7)) query.set('offset', String(chance(random, 0.5) ? 0 : randomInt(random, 1, 320)));
  if (chance(random, 0.8)) query.set('sortOrder', pick(random, ['desc', 'asc', 'sideways']));
  // Mostly seconds that hold messages (as the importer's cursors are), where an off-by-one would show.
  const seconds = session.dataset.chats.flatMap((c) => c.messages.map((m) => m.timestampS));
  const second = (): number =>
    chance(random, 0.7)
      ? pick(random, seconds) + pick(random, [0, 0, 0, -1, 1])
      : randomInt(random, fromS - 5, toS + 5);
  if (chance(random, 0.7)) query.set('filter.timestamp.lte', String(second()));
  if (chance(random, 0.6)) query.set('filter.timestamp.gte', String(second()));
  if (chance(random, 0.15)) query.set('filter.fromMe', String(chance(random, 0.5)));
  if (chance(random, 0.5)) query.set('merge', String(chance(random, 0.7)));
  return query;
}

function span(dataset: Dataset): { fromS: number; toS: number } {
  let fromS = Infinity;
  let toS = -Infinity;
  for (const chat of dataset.chats) {
    for (const m of chat.messages) {
      fromS = Math.min(fromS, m.timestampS);
      toS = Math.max(toS, m.timestampS);
    }
  }
  return { fromS, toS };
}

/** One random change, as the Simulator's methods make them. */
function mutate(random: Random, session: SimSession, step: number): void {
  const dataset = session.dataset;
  const withMessages = dataset.chats.filter((c) => c.messages.some((m) => !m.hidden));
  const chat = pick(random, withMessages);
  const visible = chat.messages.filter((m) => !m.hidden);
  const target = pick(random, visible);
  const roll = random();
  if (roll < 0.3) {
    // Arrivals in a second already holding messages, or a fresh one; sometimes a whole dense second.
    const atS = chance(random, 0.6) ? target.timestampS : span(dataset).toS + randomInt(random, 0, 50);
    appendMessages(dataset, chat.id, chance(random, 0.2) ? 130 : randomInt(random, 1, 5), atS);
  } else if (roll < 0.45) {
    deleteMessage(dataset, target.waId);
  } else if (roll < 0.6) {
    revokeSessionMessage(session, target.raw.id);
  } else if (roll < 0.7) {
    appendRevokeRow(dataset, chat, target, target.timestampS + randomInt(random, 0, 3));
  } else {
    // A person's history moving to a lid (or back), whole or from a second on: the split halves merge.
    const person = dataset.chats.filter((c) => c.kind === 'person' || c.kind === 'lid');
    const moving = pick(random, person);
    const newId =
      moving.kind === 'person'
        ? `2${String(900000000 + step)}0000@lid`
        : `55119${String(10000000 + step)}@c.us`;
    const fromS =
      chance(random, 0.7) && moving.messages.length > 1
        ? pick(random, moving.messages).timestampS
        : undefined;
    relinkSessionChat(session, moving.id, newId, fromS);
    // Arrivals in the first second of the moved half: both halves then hold that second (a merge tie).
    if (fromS !== undefined && moving.messages.length > 0) appendMessages(dataset, moving.id, 3, fromS);
  }
}

// WEBJS pages over what its browser has loaded (crashesOnEmptyLoad, test/webjs-empty-window.test.ts); here
// the index is compared with a filter over the whole chat, so that loading is left out.
const PROFILES: Array<[Engine, Partial<EngineProfile>]> = [
  ['NOWEB', {}],
  ['GOWS', {}],
  ['WEBJS', { crashesOnEmptyLoad: false }],
  ['NOWEB', { ignoresLte: true }],
  ['GOWS', { supportsMerge: false }],
  ['WEBJS', { ignoresLte: true, honoursAsc: true, crashesOnEmptyLoad: false }],
];

describe.each(PROFILES)('indexed message pages on %s %j', (engine, overrides) => {
  it('equal a plain filter over the chat, page after page, while the history changes', () => {
    const random = mulberry32(hashText(`${engine}${JSON.stringify(overrides)}`));
    const dataset = generateDataset({
      anchorS: ANCHOR_S,
      seed: 11,
      days: 3,
      chats: 14,
      messages: 700,
      bigChats: [260],
      groupRatio: 0.3,
      lidRatio: 0.2,
      hiddenRatio: 0.3,
    });
    const session = sessionFor(engine, overrides, dataset);
    let compared = 0;
    let merged = 0;
    for (let step = 0; step < 25; step++) {
      const ids = requestIds(session);
      for (let n = 0; n < 120; n++) {
        const chatId = pick(random, ids);
        const query = randomQuery(random, session);
        const indexed = listMessages(session, chatId, query, CONTEXT);
        expect(indexed.status).toBe(200);
        const reference = referenceMessages(session, chatId, query);
        expect({ chatId, query: query.toString(), body: indexed.body }).toEqual({
          chatId,
          query: query.toString(),
          body: reference.body,
        });
        compared += reference.body.length;
        if (reference.mixed) merged++;
      }
      mutate(random, session, step);
    }
    // The comparisons covered real pages, and pages mixing both halves of a split history where merging exists.
    expect(compared).toBeGreaterThan(4_000);
    if (session.profile.supportsMerge) expect(merged).toBeGreaterThan(0);
  });
});

it('a dataset whose messages are out of time order is refused, naming the chat', async () => {
  const dataset = generateDataset({ anchorS: ANCHOR_S, seed: 3, chats: 3, messages: 30 });
  const chat = dataset.chats.find((c) => new Set(c.messages.map((m) => m.timestampS)).size > 1)!;
  chat.messages.reverse();
  await expect(startSimulator({ sessions: [{ name: 'default', dataset }] })).rejects.toThrow(
    `the messages of chat ${chat.id} are not in timestamp order`,
  );
});

it('copyDataset: false serves the dataset as handed over, without a copy; by default the caller keeps its own', async () => {
  const handedOver = generateDataset({ anchorS: ANCHOR_S, seed: 4, chats: 3, messages: 20 });
  const kept = generateDataset({ anchorS: ANCHOR_S, seed: 4, chats: 3, messages: 20 });
  const sim = await startSimulator({
    sessions: [
      { name: 'default', dataset: handedOver, copyDataset: false },
      { name: 'other', dataset: kept },
    ],
  });
  try {
    const chatId = handedOver.chats[0]!.id;
    const before = handedOver.chats[0]!.messages.length;
    sim.addMessages('default', chatId, 2, ANCHOR_S - 10);
    sim.addMessages('other', chatId, 2, ANCHOR_S - 10);
    expect(handedOver.chats[0]!.messages).toHaveLength(before + 2);
    expect(kept.chats[0]!.messages).toHaveLength(before);
  } finally {
    await sim.close();
  }
});
