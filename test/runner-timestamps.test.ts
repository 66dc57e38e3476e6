import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { importOnce } from './support/contract.js';
import { useTestDatabase } from './support/db.js';

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
