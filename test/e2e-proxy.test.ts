import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { generateDataset, startSimulator, type Simulator } from '../src/sim/index.js';
import { jsonSummary, runArgs, runCli } from './support/cli.js';
import { useTestDatabase } from './support/db.js';
import { expectDatabaseMatches } from './support/truth.js';

/**
 * Something in front of WAHA that loses the query string: WAHA answers the bare path with its defaults
 * (the newest 10 messages, whatever the time filter or offset asked). A redirect within the origin that
 * drops it (a reverse proxy adding a trailing slash, say) now keeps the query asked for, and one that
 * asks for another query is refused by name. A proxy that drops it without saying so makes every page
 * the same: paging by offset read it until the per-chat cap of 100,000 requests (hours against a real
 * WAHA) and now stops at the second page with nothing new.
 */

const db = useTestDatabase();
const DATASET = generateDataset({ chats: 4, messages: 160, seed: 41, nulBodies: 0, loneSurrogateBodies: 0 });
const ANCHOR_S = DATASET.options.anchorS!;
const WINDOW = { fromS: ANCHOR_S - 40 * 86_400, toS: ANCHOR_S };
const FLAGS = ['--since', String(WINDOW.fromS), '--until', String(WINDOW.toS)];

let sim: Simulator;
const servers: http.Server[] = [];

beforeAll(async () => {
  sim = await startSimulator({ sessions: [{ name: 'default', dataset: DATASET }] });
});
afterAll(async () => {
  await sim.close();
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

/**
 * A proxy to the simulator that answers a message listing (`…/messages?…`) with a 301 to
 * `…/messages/` plus `locationQuery`, and forwards everything else (a trailing slash dropped) as asked.
 */
async function redirectingProxy(
  locationQuery: string | 'no redirect, query dropped',
): Promise<{ url: string; redirects: string[]; messageRequests: () => number }> {
  const target = new URL(sim.url);
  const redirects: string[] = [];
  let messageRequests = 0;
  const server = http.createServer((req, res) => {
    const asked = new URL(req.url!, 'http://proxy');
    if (/\/messages\/?$/.test(asked.pathname)) messageRequests++;
    if (locationQuery === 'no redirect, query dropped') asked.search = '';
    else if (asked.pathname.endsWith('/messages')) {
      redirects.push(req.url!);
      res.writeHead(301, { location: `${asked.pathname}/${locationQuery}` }).end();
      return;
    }
    const forwarded = http.request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: `${asked.pathname.replace(/\/$/, '')}${asked.search}`,
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode!, answer.headers);
        answer.pipe(res);
      },
    );
    forwarded.on('error', () => res.destroy());
    req.pipe(forwarded);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    redirects,
    messageRequests: () => messageRequests,
  };
}

function checkpointFlag(): string[] {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-redirect-'));
  return ['--checkpoint', path.join(dir, 'cp.json')];
}

it('a redirect within the origin that drops the query: the query goes with it, every message is stored', async () => {
  const truth = sim.groundTruth('default', WINDOW);
  // The data this test needs: chats longer than WAHA's default page of 10.
  const perChat = new Map<string, number>();
  for (const m of truth.expected) perChat.set(m.chatId, (perChat.get(m.chatId) ?? 0) + 1);
  expect(Math.max(...perChat.values())).toBeGreaterThan(10);

  const proxy = await redirectingProxy('');
  const schema = db.newSchema();
  const result = await runCli(runArgs(proxy.url, schema, [...checkpointFlag(), ...FLAGS]));
  expect(result.code).toBe(0);
  expect(proxy.redirects.length).toBeGreaterThan(0);
  expect(jsonSummary(result.stdout).summary.messagesFetched).toBe(truth.messages.length);
  await expectDatabaseMatches(db.sql, schema, 'default', truth);
});

it('a redirect within the origin to another query is refused by name, and nothing is reported imported', async () => {
  const proxy = await redirectingProxy('?limit=10');
  const schema = db.newSchema();
  const result = await runCli(runArgs(proxy.url, schema, [...checkpointFlag(), ...FLAGS]));
  expect(result.code).not.toBe(0);
  expect(result.stdout).toContain('was redirected (HTTP 301)');
  expect(result.stdout).toContain('another query');
  const rows = await db.sql<Array<{ count: number }>>`
    select count(*)::int as count from ${db.sql(schema)}.messages`;
  expect(rows[0]?.count).toBe(0);
});

it('a proxy that drops the query without a redirect: the run stops naming offset, after a few requests', async () => {
  const proxy = await redirectingProxy('no redirect, query dropped');
  const schema = db.newSchema();
  const result = await runCli(
    runArgs(proxy.url, schema, [...checkpointFlag(), ...FLAGS, '--concurrency', '1']),
  );
  expect(result.code).not.toBe(0);
  expect(result.stdout).toContain('it seems to ignore offset');
  // The first chat's requests: by time, the check of the time filter, then two pages by offset.
  expect(proxy.messageRequests()).toBeLessThan(20);
});
