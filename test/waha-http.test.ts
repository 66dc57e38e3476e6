import http from 'node:http';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';
import { createWahaHttp } from '../src/waha/http.js';
import { jsonSourceOf } from '../src/waha/json-source.js';
import { DEFAULT_RETRY_POLICY } from '../src/waha/retry.js';

/** A server answering every request with `page` in the encoding the path names; it records the requests. */
const page = [
  { id: 'false_1@c.us_A', body: 'ol\u00e1 👍' },
  { id: 'false_1@c.us_B', body: null },
];
const seen: http.IncomingHttpHeaders[] = [];
const sockets = new Set<unknown>();
let server: http.Server;
let url: string;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    seen.push(req.headers);
    sockets.add(req.socket);
    const text = Buffer.from(JSON.stringify(page));
    const encoding = req.url!.split('?')[0]!.slice(1);
    const body =
      encoding === 'gzip'
        ? zlib.gzipSync(text)
        : encoding === 'deflate'
          ? zlib.deflateSync(text)
          : encoding === 'br'
            ? zlib.brotliCompressSync(text)
            : text;
    res.writeHead(200, {
      'content-type': 'application/json',
      ...(encoding === 'identity' ? {} : { 'content-encoding': encoding }),
    });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('the HTTP layer', () => {
  it('reads plain and compressed bodies alike, keeps their text, and reuses its connections', async () => {
    const client = createWahaHttp({
      baseUrl: url,
      apiKey: 'k',
      requestTimeoutMs: 5_000,
      maxResponseBytes: 1024 * 1024,
      retry: { ...DEFAULT_RETRY_POLICY, maxRetries: 0 },
    });
    seen.length = 0;
    sockets.clear();
    for (const encoding of ['identity', 'gzip', 'deflate', 'br', 'identity']) {
      const body = await client.getJson(`/${encoding}`, { limit: 2 });
      expect(body).toEqual(page);
      expect(JSON.parse(jsonSourceOf(body)!)).toEqual(page);
    }
    expect(seen.every((h) => h['x-api-key'] === 'k' && h['accept-encoding'] === 'gzip, deflate')).toBe(true);
    // One after another: one kept-alive connection serves them all.
    expect(sockets.size).toBe(1);
    expect(client.stats).toEqual({ requests: 5, retries: 0, overloads: 0 });
  });
});
