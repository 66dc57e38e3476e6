import { generateDataset } from '../src/sim/index.js';
import { WEBJS_LOAD_CHUNK } from '../src/sim/routes.js';
import { createWahaClient } from '../src/waha/client.js';
import { FAST_RETRY, importOnce } from './support/contract.js';
import { useTestDatabase } from './support/db.js';
import { simulatorPerTest } from './support/waha.js';

/**
 * WEBJS getMessages (WAHA's WebjsClientCore) pages over the messages loaded in the browser, loading a
 * chunk of earlier ones while too few pass the filter, and then reads `.t` of the oldest that passed: a
 * request whose filter leaves none of what is loaded answers 500, TypeError "reading 't'" (#1885,
 * #1805). A chat whose messages all predate the window does so on every try until its whole history is
 * loaded. A full run with `--days` shorter than the history asks every listed chat: such chats failed one
 * by one after their retries, and five in a row stopped the run.
 */

const db = useTestDatabase();
const startSimulator = simulatorPerTest();
const DATASET = generateDataset({
  chats: 14,
  messages: 1_400,
  days: 60,
  seed: 23,
  nulBodies: 0,
  loneSurrogateBodies: 0,
});
const ANCHOR_S = DATASET.options.anchorS!;
const DAY = 86_400;

/** The chats with no visible message at or after `fromS`, and more than the one WhatsApp Web has loaded. */
function idleBefore(fromS: number): string[] {
  return DATASET.chats
    .filter((c) => {
      const visible = c.messages.filter((m) => !m.hidden);
      return visible.length > 1 && visible.every((m) => m.timestampS < fromS);
    })
    .map((c) => c.id);
}

function messagesUrl(url: string, chatId: string, query: Record<string, number | boolean>): string {
  const q = new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)]));
  return `${url}/api/default/chats/${encodeURIComponent(chatId)}/messages?${q}`;
}

describe('the WEBJS simulator', () => {
  it('answers 500 for a window after every message of a chat, one load more each time, until all is loaded', async () => {
    const sim = await startSimulator({ engine: 'WEBJS', sessions: [{ name: 'default', dataset: DATASET }] });
    const fromS = ANCHOR_S - 2 * DAY;
    const idle = DATASET.chats.find((c) => idleBefore(fromS).includes(c.id))!;
    expect(idle).toBeDefined();
    const visible = idle.messages.filter((m) => !m.hidden).length;
    const query = { limit: 20, offset: 0, 'filter.timestamp.gte': fromS, 'filter.timestamp.lte': ANCHOR_S };
    const loadsToAll = Math.ceil((visible - 1) / WEBJS_LOAD_CHUNK);
    for (let i = 0; i < loadsToAll; i++) {
      const answer = await fetch(messagesUrl(sim.url, idle.id, query));
      expect(answer.status).toBe(500);
      const body = (await answer.json()) as { exception: { name: string; message: string } };
      expect(body.exception).toMatchObject({
        name: 'TypeError',
        message: "Cannot read properties of undefined (reading 't')",
      });
    }
    // Everything is loaded now: nothing more to load, and an empty page.
    const last = await fetch(messagesUrl(sim.url, idle.id, query));
    expect(last.status).toBe(200);
    expect(await last.json()).toEqual([]);
  });

  it('without gte, pages only what one load brings: a short page that is not the end', async () => {
    const sim = await startSimulator({ engine: 'WEBJS', sessions: [{ name: 'default', dataset: DATASET }] });
    const long = DATASET.chats.find(
      (c) => c.messages.filter((m) => !m.hidden).length > 3 * WEBJS_LOAD_CHUNK,
    )!;
    expect(long).toBeDefined();
    const page = (await (
      await fetch(messagesUrl(sim.url, long.id, { limit: 100, offset: 0, 'filter.timestamp.lte': ANCHOR_S }))
    ).json()) as unknown[];
    expect(page.length).toBe(1 + WEBJS_LOAD_CHUNK);
    // With gte the loading goes on until the page is full.
    const full = (await (
      await fetch(
        messagesUrl(sim.url, long.id, {
          limit: 100,
          offset: 0,
          'filter.timestamp.gte': ANCHOR_S - 60 * DAY,
          'filter.timestamp.lte': ANCHOR_S,
        }),
      )
    ).json()) as unknown[];
    expect(full.length).toBe(100);
  });
});

describe('a run on WEBJS with a window shorter than the history', () => {
  it.each(['streaming', 'parallel'] as const)(
    '%s: chats idle since before the window are empty, not failed; every message in it is stored',
    async (strategy) => {
      const window = { fromS: ANCHOR_S - 2 * DAY, toS: ANCHOR_S };
      // The data this test needs: more idle chats than the five failures in a row that stop a run.
      expect(idleBefore(window.fromS).length).toBeGreaterThanOrEqual(6);
      const sim = await startSimulator({
        engine: 'WEBJS',
        sessions: [{ name: 'default', dataset: DATASET }],
      });
      const truth = sim.groundTruth('default', window).expected;
      expect(truth.length).toBeGreaterThan(0);
      const schema = db.newSchema();
      const outcome = await importOnce({ sql: db.sql, schema, sim, strategy, window, pageSize: 20 });
      expect(outcome.error).toBeUndefined();
      expect(outcome.summary.status).toBe('succeeded');
      expect(outcome.summary.failedChats).toEqual([]);
      expect(outcome.summary.paging?.emptyWindows).toBeGreaterThanOrEqual(idleBefore(window.fromS).length);
      const rows = await db.sql<Array<{ wa_id: string }>>`
        select wa_id from ${db.sql(schema)}.messages order by wa_id`;
      expect(rows.map((r) => r.wa_id)).toEqual(truth.map((m) => m.waId).sort());
    },
  );
});

describe('a WEBJS chat resumed far below what its browser has loaded', () => {
  it('is read from the resume point, however many loads lie above it (each failed request loads one)', async () => {
    // A resumed run (or a WAHA restarted) asks for lte deep in a chat whose browser holds only its newest
    // message: every load above lte leaves nothing that passes, one 500 each; retried, a gap of more
    // loads than retries failed the chat.
    const sim = await startSimulator({ engine: 'WEBJS', sessions: [{ name: 'default', dataset: DATASET }] });
    const window = { fromS: ANCHOR_S - 60 * DAY, toS: ANCHOR_S };
    const long = DATASET.chats
      .map((c) => ({ chat: c, visible: c.messages.filter((m) => !m.hidden) }))
      .find(({ visible }) => visible.length > 12 * WEBJS_LOAD_CHUNK)!;
    expect(long).toBeDefined();
    const resumeAtS = long.visible[long.visible.length - 10 * WEBJS_LOAD_CHUNK]!.timestampS;
    const expected = sim
      .groundTruth('default', { fromS: window.fromS, toS: resumeAtS })
      .expected.filter((m) => m.chatId === long.chat.id)
      .map((m) => m.id)
      .sort();
    const client = createWahaClient({
      baseUrl: sim.url,
      requestTimeoutMs: 10_000,
      maxResponseBytes: 16 * 1024 * 1024,
      retry: FAST_RETRY,
    });
    const chat = (await client.listChats('default', { pageSize: 100, engine: 'WEBJS' })).find(
      (c) => c.chatId === long.chat.id,
    )!;
    const ids: string[] = [];
    for await (const page of client.chatMessages('default', chat, {
      window,
      resumeAtS,
      pageSize: 100,
      pageEnd: 'short',
      meId: null,
    })) {
      ids.push(...page.messages.map((m) => m.id));
    }
    expect(ids.sort()).toEqual(expected);
    expect(client.paging.emptyWindows).toBe(0);
  });
});
