import net from 'node:net';
import postgres from 'postgres';
import { DatabaseError, KnownError, UsageError } from '../errors.js';
import { redactUrl, secretMasker, urlPassword } from '../util/redact.js';
import { startEmbeddedPostgres, type EmbeddedPostgres } from './embedded.js';

export type Sql = postgres.Sql;

export interface OpenDatabaseOptions {
  /** A `postgres://` URL; without one an embedded server is started on `dataDir`. */
  databaseUrl?: string;
  /** Data directory of the embedded server (only used without `databaseUrl`). */
  dataDir?: string;
  /** Connections in the pool; concurrent transactions beyond this only queue. Default 10. */
  maxConnections?: number;
  /** Receives the embedded server's log lines; silent without it. */
  log?: (line: string) => void;
}

export interface Database {
  sql: Sql;
  /** True when the server is the embedded one started for this process. */
  embedded: boolean;
  /** The URL with its password replaced by `***`, fit for output. */
  displayUrl: string;
  /** Closes the pool, then stops the embedded server if there is one. */
  close(): Promise<void>;
}

const DEFAULT_MAX_CONNECTIONS = 10;
const CONNECT_TIMEOUT_S = 15;

/** Connects (starting the embedded server when no URL is given) and checks that the server answers. */
export async function openDatabase(options: OpenDatabaseOptions = {}): Promise<Database> {
  const maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  if (!Number.isInteger(maxConnections) || maxConnections < 1) {
    throw new UsageError(
      `The number of database connections must be a positive integer, not ${maxConnections}.`,
    );
  }
  let server: EmbeddedPostgres | undefined;
  let url = options.databaseUrl;
  if (url === undefined || url === '') {
    server = await startEmbeddedPostgres({ dataDir: options.dataDir, log: options.log });
    url = server.url;
  } else {
    assertPostgresUrl(url);
  }
  const displayUrl = redactUrl(url);
  const where = server ? `the embedded PostgreSQL in ${server.dataDir}` : displayUrl;

  // `socket` is supported by postgres.js but missing from its typings.
  const clientOptions: postgres.Options<Record<string, never>> & { socket: typeof noDelaySocket } = {
    max: maxConnections,
    connect_timeout: CONNECT_TIMEOUT_S,
    // `create ... if not exists` and friends would print NOTICEs on the user's terminal.
    onnotice: () => {},
    connection: { application_name: 'waha-import' },
    socket: noDelaySocket,
  };
  const sql = postgres(url, clientOptions);
  const close = async (): Promise<void> => {
    try {
      await sql.end({ timeout: 5 });
    } finally {
      await server?.stop();
    }
  };
  try {
    await answerWithin(sql, (CONNECT_TIMEOUT_S + 1) * 1000);
  } catch (error) {
    await sql.end({ timeout: 0 }).catch(() => {});
    await server?.stop();
    throw toDatabaseError(error, { displayUrl: where, databaseUrl: url });
  }
  return { sql, embedded: server !== undefined, displayUrl, close };
}

/**
 * postgres.js applies connect_timeout to the socket, but a query queued behind a connection that timed
 * out keeps waiting while it reconnects (seen with an unroutable host), so the first query has a deadline.
 */
async function answerWithin(sql: Sql, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'CONNECT_TIMEOUT' })),
      timeoutMs,
    );
  });
  try {
    await Promise.race([sql`select 1`, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

function assertPostgresUrl(url: string): void {
  // Only the scheme: postgres.js also takes multi-host URLs (h1:5432,h2:5432) that `new URL` rejects.
  if (/^postgres(ql)?:\/\//i.test(url)) return;
  throw new UsageError(
    `--database-url must be a postgres:// URL, not ${JSON.stringify(redactUrl(url))}.`,
    'For example postgres://user:password@localhost:5432/dbname, or leave it unset to use the embedded PostgreSQL.',
  );
}

interface SocketOptions {
  host: string[];
  port: number[];
  path?: string | false;
}

/** Per pool (postgres.js hands every connection of a pool the same options object): next host to try. */
const nextHostIndex = new WeakMap<SocketOptions, number>();

/**
 * postgres.js never disables Nagle's algorithm, so a small query after a large write waits ~40 ms for a
 * delayed ACK, once per batch (measured with COPY batches: 45k -> 59k rows/s). This opens the socket
 * ourselves with TCP_NODELAY; postgres.js still does TLS, timeouts and the protocol on top of it. The
 * socket is returned still connecting, so that a refused host reaches postgres.js as an error and a close
 * on the socket, which is how it moves on to the next host of a multi-host URL.
 */
function noDelaySocket(options: SocketOptions): net.Socket {
  if (options.path) return net.connect({ path: options.path });
  const index = nextHostIndex.get(options) ?? 0;
  nextHostIndex.set(options, (index + 1) % Math.max(1, options.host.length));
  const host = options.host[index] ?? 'localhost';
  const port = options.port[index] ?? options.port[0] ?? 5432;
  const socket = net.connect({ host, port, noDelay: true });
  // postgres.js names the TLS server from this, as it does for the sockets it opens itself.
  return Object.assign(socket, { host, port });
}

export interface ErrorContext {
  /** Where we were connecting, already redacted. */
  displayUrl?: string;
  /** The real URL, only so that its password can be masked out of any text. */
  databaseUrl?: string;
}

/**
 * Turns a connection or server error into a DatabaseError with a hint. Its message and hint never contain
 * the password of `databaseUrl`, even where a driver or server echoes it.
 */
export function toDatabaseError(error: unknown, context: ErrorContext = {}): KnownError {
  if (error instanceof KnownError) return error;
  const mask = secretMasker([urlPassword(context.databaseUrl)]);
  const where = context.displayUrl ?? 'PostgreSQL';
  const code = errorField(error, 'code');
  const reason = mask(error instanceof Error ? error.message : String(error));
  const make = (message: string, hint: string): DatabaseError =>
    new DatabaseError(mask(message), mask(hint), { cause: error });
  const checkUrl =
    'Check --database-url (or DATABASE_URL), or leave it unset to use the embedded PostgreSQL.';

  switch (code) {
    case 'ECONNREFUSED':
      return make(
        `Cannot connect to ${where}: connection refused.`,
        `Is PostgreSQL running there? ${checkUrl}`,
      );
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return make(`Cannot connect to ${where}: the host name does not resolve.`, checkUrl);
    case 'CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return make(
        `Cannot connect to ${where}: no answer (${code}).`,
        `Is the host reachable from here? ${checkUrl}`,
      );
    case '28P01':
    case 'SASL_SIGNATURE_MISMATCH':
      return make(`${where} refused the password: ${reason}`, `Check the user and password. ${checkUrl}`);
    case '28000':
      return make(
        `${where} refused the login: ${reason}`,
        `Check the user, and pg_hba.conf on the server. ${checkUrl}`,
      );
    case '3D000':
      return make(
        `${where}: ${reason}`,
        'Create the database first (createdb NAME), or name an existing one.',
      );
    case '57P03':
      return make(`${where} is not accepting connections yet: ${reason}`, 'Wait for it to finish starting.');
    case '53300':
      return make(
        `${where} has no free connection slot: ${reason}`,
        'Use fewer connections (lower the concurrency) or raise max_connections on the server.',
      );
    case '42501':
      return make(
        `${where} denied a permission: ${reason}`,
        'The user needs CREATE on the database (for the schema) and on the schema.',
      );
  }
  if (code === 'CONNECTION_CLOSED' || code === 'CONNECTION_ENDED' || code === 'ECONNRESET') {
    return make(
      `The connection to ${where} was lost: ${reason}`,
      'Run the same command again: committed batches are kept. If it happens on connecting, check the URL, and its sslmode against the server.',
    );
  }
  const serverHint = errorField(error, 'hint');
  return new DatabaseError(
    mask(`PostgreSQL error at ${where}: ${reason}${code ? ` (${code})` : ''}`),
    mask(
      serverHint
        ? `The server says: ${serverHint}`
        : 'What was being written was rolled back; committed batches are kept. Fix the cause and run the same command again.',
    ),
    { cause: error },
  );
}

/** Error codes saying the connection to PostgreSQL is gone, as opposed to a statement being refused. */
const CONNECTION_GONE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
]);

export function isConnectionGone(error: unknown): boolean {
  const code = errorField(error, 'code');
  return code !== undefined && CONNECTION_GONE.has(code);
}

function errorField(error: unknown, field: string): string | undefined {
  if (typeof error !== 'object' || error === null || !(field in error)) return undefined;
  const value = (error as Record<string, unknown>)[field];
  return value === undefined || value === null ? undefined : String(value);
}
