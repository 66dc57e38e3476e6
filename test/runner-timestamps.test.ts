import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WahaResponseError } from '../src/errors.js';
import { generateDataset, type Dataset } from '../src/sim/index.js';
import { importOnce } from './support/contract.js';
import { useTestDatabase } from './support/db.js';
import { expectDatabaseMatches } from './support/truth.js';
import { simulatorPerTest } from './support/waha.js';

/**
 * A message whose engine gives no time anywhere (neither `timestamp` nor any `_data` field) is neither a
 * reason to stop the run nor silently dropped: it is stored with a null time, counted in the summary,
 * and the other messages and chats are imported as usual.
 */

const db = useTestDatabase();
const T = 1_788_000_000;

function fakeGows(): Promise<{ url: string; close: () => Promise<void> }> {
  const messages = [
    {
      id: 'false_5511988887777@c.us_AAA',
      timestamp: T,
      from: '5511988887777@c.us',
      fromMe: false,
      body: 'dated',
    },
    // GOWS serves null; here whatsmeow's time is missing too.
    {
      id: 'false_5511988887777@c.us_BBB',
      timestamp: null,
      from: '5511988887777@c.us',
      fromMe: false,
      body: 'undated',
      _data: { Info: { ID: 'BBB' } },
    },
  ];
  const routes: Record<string, unknown> = {
    '/api/server/version': { version: '2026.4.1', engine: 'GOWS', tier: 'PLUS' },
    '/api/sessions/default': {
      name: 'default',
      status: 'WORKING',
      me: { id: '5511900000000@c.us', pushName: 'Me' },
      engine: { engine: 'GOWS' },
    },
    '/api/default/lids': [],
    '/api/default/chats': [
      { id: '5511988887777@c.us', name: 'Ana', conversationTimestamp: T },
      { id: '5511977776666@c.us', name: 'Bia', conversationTimestamp: T },
    ],
    '/api/default/chats/5511988887777%40c.us/messages': messages,
    '/api/default/chats/5511977776666%40c.us/messages': [
      {
        id: 'false_5511977776666@c.us_CCC',
        timestamp: T - 5,
        from: '5511977776666@c.us',
        fromMe: false,
        body: 'other',
      },
    ],
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const offset = Number(url.searchParams.get('offset') ?? 0);
    const body = routes[url.pathname];
    if (body === undefined) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"statusCode":404}');
      return;
    }
    // Lists past their end are empty, as WAHA's are.
    const page = Array.isArray(body) ? body.slice(offset) : body;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(page));
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        close: () => new Promise<void>((done) => server.close(() => done())),
      }),
    ),
  );
}

it('stores a message with no time at all, counts it, and imports everything else', async () => {
  const waha = await fakeGows();
  try {
    const outcome = await importOnce({
      sql: db.sql,
      schema: db.schema,
      sim: waha,
      strategy: 'streaming',
      window: { fromS: T - 86_400, toS: T + 60 },
      pageSize: 100,
    });
    expect(outcome.error).toBeUndefined();
    expect(outcome.summary).toMatchObject({
      status: 'succeeded',
      chatsImported: 2,
      messagesFetched: 3,
      messagesWithoutTimestamp: 1,
    });
    const rows = await db.sql<Array<{ wa_id: string; timestamp_s: string | null; sent_at: Date | null }>>`
      select wa_id, timestamp_s::text, sent_at from ${db.sql(db.schema)}.messages order by wa_id`;
    expect(rows.map((r) => [r.wa_id, r.timestamp_s, r.sent_at === null])).toEqual([
      ['AAA', String(T), false],
      ['BBB', null, true],
      ['CCC', String(T - 5), false],
    ]);
  } finally {
    await waha.close();
  }
});

describe('times WAHA sends that are not the ones it stores', () => {
  // Ends a minute ago: a time of the request is then after it (newer than `lte`) on every page; the
  // window's last seconds are the tests of `openWindow` below.
  const window = { fromS: 1_700_000_000, toS: Math.floor(Date.now() / 1000) - 60 };
  const datasetOptions = { chats: 6, messages: 300, anchorS: window.toS - 3_600, days: 10, seed: 4 };
  const startSimulator = simulatorPerTest();

  it('NOWEB 2026.6.2 (#2139), your own messages at the time of the request: the run stops, naming it', async () => {
    const sim = await startSimulator({
      engine: 'NOWEB',
      profile: { ownTimestampsAtRequest: true },
      sessions: [{ name: 'default', datasetOptions }],
    });
    const fromMe = sim.groundTruth('default', window).expected.filter((m) => m.fromMe);
    expect(fromMe.length).toBeGreaterThan(20);
    const outcome = await importOnce({
      sql: db.sql,
      schema: db.schema,
      sim,
      strategy: 'streaming',
      window,
      pageSize: 100,
    });
    // Not a success without the messages you sent (each would have been dropped as newer than the window).
    expect(outcome.summary.status).toBe('failed');
    expect(outcome.error).toBeInstanceOf(WahaResponseError);
    expect((outcome.error as WahaResponseError).message).toMatch(
      /sent message true_\S+ with timestamp \d+ for filter\.timestamp\.lte=\d+, and not for filter\.timestamp\.gte=\d+: the times it sends are not the ones it stores/,
    );
    expect((outcome.error as WahaResponseError).hint).toMatch(/#2139/);
  });

  // A window whose end has not passed when its chats are asked for: what a run meets in its first seconds
  // (its window ends when it starts), here for every request, so the test does not race the clock.
  /**
   * Chats of one page each whose oldest message is not yours and that hold some of yours: no later page
   * can show the server's times (it asks `lte` = that oldest second, which holds none of yours).
   */
  const blindChats = (): Dataset => {
    const dataset = generateDataset({ ...datasetOptions, messages: 60 });
    const chats = dataset.chats.filter((chat) => {
      const shown = chat.messages.filter((m) => !m.hidden);
      return shown.length > 0 && shown.length < 100 && !shown[0]!.fromMe && shown.some((m) => m.fromMe);
    });
    return { ...dataset, chats };
  };
  const openWindow = () => ({ fromS: window.fromS, toS: Math.floor(Date.now() / 1000) + 60 });

  /** Imports blindChats() from a #2139 WAHA (its clock `clockOffsetS` from ours): it must fail, storing none of yours. */
  const expectBlindCaught = async (clockOffsetS: number): Promise<void> => {
    const sim = await startSimulator({
      engine: 'NOWEB',
      profile: { ownTimestampsAtRequest: true },
      clockOffsetS,
      sessions: [{ name: 'default', dataset: blindChats() }],
    });
    expect(sim.groundTruth('default').messages.filter((m) => m.fromMe).length).toBeGreaterThan(3);
    const outcome = await importOnce({
      sql: db.sql,
      schema: db.schema,
      sim,
      strategy: 'streaming',
      window: openWindow(),
      pageSize: 100,
    });
    expect(outcome.summary.status).toBe('failed');
    expect(outcome.error).toBeInstanceOf(WahaResponseError);
    expect((outcome.error as WahaResponseError).message).toMatch(
      /sent message true_\S+ with timestamp \d+ on a page asked for at \d+, and not for filter\.timestamp\.gte=\d+: the times it sends are not the ones it stores/,
    );
    expect((outcome.error as WahaResponseError).hint).toMatch(/#2139/);
    const [row] = await db.sql<Array<{ count: number }>>`
      select count(*)::int as count from ${db.sql(db.schema)}.messages where from_me`;
    expect(row?.count).toBe(0);
  };

  it('#2139 on pages asked for before the window ends: the time of the request is inside it, and still caught', async () => {
    // Before, such chats read in the window's last second stored your messages at that second, and the run
    // succeeded.
    await expectBlindCaught(0);
  });

  it("#2139 on a WAHA whose clock runs a minute behind this machine's: the time of the request is WAHA's, and still caught", async () => {
    // Before, the second of the request was this machine's, a minute after the one WAHA dated them at: the
    // run succeeded with your messages stored at the time of the request.
    await expectBlindCaught(-60);
  });

  it('a message dated after its page was asked for, on a WAHA with true times (its clock ahead): checked once, stored at its time', async () => {
    const sim = await startSimulator({ engine: 'NOWEB', sessions: [{ name: 'default', datasetOptions }] });
    const chats = generateDataset(datasetOptions).chats.slice(0, 2);
    // Half a minute ahead: at or after the second of any request of this test, however slow the machine.
    const aheadS = Math.floor(Date.now() / 1000) + 30;
    for (const chat of chats) sim.addMessages('default', chat.id, 1, aheadS);
    const range = openWindow();
    let checks = 0;
    sim.onRequest((request) => {
      // The check asks from the message's own time (time slices of the longest chat start elsewhere).
      if (request.route === 'messages' && request.query['filter.timestamp.gte'] === String(aheadS)) checks++;
    });
    const outcome = await importOnce({
      sql: db.sql,
      schema: db.schema,
      sim,
      strategy: 'streaming',
      window: range,
      pageSize: 100,
    });
    expect(outcome.error).toBeUndefined();
    expect(outcome.summary.status).toBe('succeeded');
    expect(checks).toBe(1);
    await expectDatabaseMatches(db.sql, db.schema, 'default', sim.groundTruth('default', range).messages);
    const [row] = await db.sql<Array<{ count: number }>>`
      select count(*)::int as count from ${db.sql(db.schema)}.messages where timestamp_s = ${aheadS}`;
    expect(row?.count).toBe(2);
  });

  it('a WEBJS ignoring lte (#2164) sends true times: checked once, then every message is stored', async () => {
    const sim = await startSimulator({
      engine: 'WEBJS',
      profile: { ignoresLte: true },
      sessions: [{ name: 'default', datasetOptions }],
    });
    const truth = sim.groundTruth('default', window).expected;
    let checks = 0;
    sim.onRequest((request) => {
      if (request.route === 'messages' && request.query['filter.timestamp.gte'] !== String(window.fromS))
        checks++;
    });
    const outcome = await importOnce({
      sql: db.sql,
      schema: db.schema,
      sim,
      strategy: 'parallel',
      window,
      pageSize: 20,
    });
    expect(outcome.error).toBeUndefined();
    expect(outcome.summary.status).toBe('succeeded');
    const [row] = await db.sql<Array<{ count: number }>>`
      select count(*)::int as count from ${db.sql(db.schema)}.messages`;
    expect(row?.count).toBe(truth.length);
    expect(checks).toBe(1);
  });
});
