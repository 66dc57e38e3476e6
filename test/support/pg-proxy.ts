import net from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 in front of PostgreSQL that breaks the connections going through it on
 * command: black-hole (stop forwarding both ways, keep the sockets open, as a dead route or a NAT that
 * lost its state does), reset (RST to the client) or drop (a clean close). New connections are always
 * forwarded. `onClientData` sees every chunk a client sends before it is forwarded, so a test can act at
 * a known point of the protocol (a transaction's first statement, say) instead of after some time.
 */
export interface PgProxy {
  port: number;
  /** The URL of `targetUrl`'s database, through the proxy. */
  url(targetUrl: string, query?: Record<string, string>): string;
  blackholeAll(): void;
  resetAll(): void;
  dropAll(): void;
  /** Called with each client chunk before it is forwarded (or not: `holed`, its connection black-holed). */
  onClientData?: (chunk: Buffer, holed: boolean) => void;
  close(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  upstream: net.Socket;
  holed: boolean;
}

export async function startPgProxy(targetHost: string, targetPort: number): Promise<PgProxy> {
  const pairs = new Set<Pair>();
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: targetHost, port: targetPort });
    const pair: Pair = { client, upstream, holed: false };
    pairs.add(pair);
    client.on('data', (chunk: Buffer) => {
      proxy.onClientData?.(chunk, pair.holed);
      if (!pair.holed) upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!pair.holed) client.write(chunk);
    });
    const end = (): void => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    // A closed side closes the other, black-holed or not: the backend (and its locks) end with the client.
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const proxy: PgProxy = {
    port,
    url(targetUrl, query = {}) {
      const url = new URL(targetUrl);
      url.host = `127.0.0.1:${port}`;
      for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
      return url.toString();
    },
    blackholeAll() {
      for (const pair of pairs) pair.holed = true;
    },
    resetAll() {
      for (const pair of [...pairs]) {
        pair.holed = true;
        pair.client.resetAndDestroy();
        pair.upstream.destroy();
      }
    },
    dropAll() {
      for (const pair of [...pairs]) {
        pair.holed = true;
        pair.client.end();
        pair.upstream.end();
      }
    },
    close: async () => {
      for (const pair of pairs) {
        pair.client.destroy();
        pair.upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return proxy;
}
