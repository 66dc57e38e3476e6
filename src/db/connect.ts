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
  /** Connect, statement and idle timeouts and TCP keepalive; DEFAULT_TIMEOUTS for what is left out. */
  timeouts?: Partial<DatabaseTimeouts>;
}

/** How long PostgreSQL may take before a connection counts as dead, all in seconds (0 = never). */
export interface DatabaseTimeouts {
  /** Opening a connection: TCP, TLS and login. */
  connectS: number;
  /**
   * One statement (server-side `statement_timeout`). A connection that has sent something and heard
   * nothing back for this long plus a margin is closed as dead: that is what catches a connection
   * black-holed by the network, which neither side would otherwise notice.
   */
  statementS: number;
  /** A pooled connection left unused this long is closed (the import lock's connection is exempt). */
  idleS: number;
  /** TCP keepalive probes start after this long without traffic. */
  keepaliveS: number;
}

export const DEFAULT_TIMEOUTS: DatabaseTimeouts = {
  connectS: 15,
  statementS: 300,
  idleS: 60,
  keepaliveS: 30,
};

/** A connection waiting for an answer is given up this much after its statement timeout. */
const ANSWER_MARGIN_MS = 5000;

/** How long a connection may wait for an answer before it is given up as dead (0: for ever). */
export function answerDeadlineMs(timeouts: DatabaseTimeouts): number {
  return timeouts.statementS > 0 ? timeouts.statementS * 1000 + ANSWER_MARGIN_MS : 0;
}

/** A connection of its own, outside the pool (the import lock's). */
export interface SingleConnection {
  sql: Sql;
  /** Set once its connection has closed (for whatever reason): a later statement runs in a new session. */
  readonly closed: boolean;
  end(): Promise<void>;
}

export interface Database {
  sql: Sql;
  /** True when the server is the embedded one started for this process. */
  embedded: boolean;
  /** The URL with its password replaced by `***`, fit for output. */
  displayUrl: string;
  /** The URL with its password, for another client of the same server (the job queue's): never print it. */
  url: string;
  /**
   * Rejects (with a DatabaseError) when postgres.js was found writing to a connection it had already
   * closed: after that its pool cannot be trusted, and a statement on it may never settle. Race every
   * operation against it.
   */
  readonly broken: Promise<never>;
  /** The DatabaseError `broken` rejected with, once it has. */
  readonly brokenError: KnownError | undefined;
  /**
   * The last connection this process gave up on for want of an answer (code ANSWER_TIMEOUT): the cause
   * behind the CONNECTION_CLOSED errors postgres.js then reports.
   */
  readonly lastFault: Error | undefined;
  /**
   * Seconds an unused pooled connection stays open: the configured idle timeout, or half the server's
   * idle_session_timeout when that is shorter (0: kept).
   */
  readonly poolIdleS: number;
  /** Opens one connection outside the pool, with the same settings; `label` goes into its application_name. */
  openSingle(label: string, options?: { idle?: boolean }): SingleConnection;
  /**
   * Closes the pool, then stops the embedded server if there is one. `now`: without waiting for
   * statements under way (after a connection was lost, they may never finish).
   */
  close(options?: { now?: boolean }): Promise<void>;
}

const DEFAULT_MAX_CONNECTIONS = 10;

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

  const timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
  let brokenError: KnownError | undefined;
  let lastFault: Error | undefined;
  let markBroken: (error: KnownError) => void = () => undefined;
  const broken = new Promise<never>((_, reject) => (markBroken = reject));
  broken.catch(() => undefined);
  const unguard = guardDriverCrashes((crash) => {
    if (brokenError) return;
    brokenError = toDatabaseError(crash, { displayUrl: where, databaseUrl: url });
    markBroken(brokenError);
  });

  const answerTimeoutMs = answerDeadlineMs(timeouts);
  // `socket` is supported by postgres.js but missing from its typings.
  const clientOptions = (
    extra: { max: number; idle_timeout: number; onclose?: () => void },
    label?: string,
  ): postgres.Options<Record<string, never>> & { socket: (o: SocketOptions) => net.Socket } => ({
    ...extra,
    // 0 turns each off in postgres.js as here.
    connect_timeout: timeouts.connectS,
    keep_alive: timeouts.keepaliveS,
    // `create ... if not exists` and friends would print NOTICEs on the user's terminal.
    onnotice: () => {},
    connection: {
      // An application_name in the URL (?application_name=...) wins over this one.
      application_name: label ? `waha-import ${label}` : 'waha-import',
      ...(timeouts.statementS > 0 ? { statement_timeout: timeouts.statementS * 1000 } : {}),
    },
    socket: noDelaySocket(answerTimeoutMs, (fault) => (lastFault = fault)),
  });
  let idleS = timeouts.idleS;
  let sql = postgres(url, clientOptions({ max: maxConnections, idle_timeout: idleS }));
  const close = async (closing: { now?: boolean } = {}): Promise<void> => {
    try {
      // A broken pool may never finish its statements: close it at once.
      await sql.end({ timeout: brokenError || closing.now ? 0 : 5 });
    } finally {
      try {
        await server?.stop();
      } finally {
        unguard();
      }
    }
  };
  try {
    await answerWithin(sql, ((timeouts.connectS || DEFAULT_TIMEOUTS.connectS) + 1) * 1000);
    // A server that ends idle sessions (idle_session_timeout, for everyone or this role) may end a pooled
    // connection at the moment it is taken for a batch, and the batch fails with it. The pool closes its
    // idle connections first, at half that time, when its own setting would keep them longer.
    const serverIdleMs = await serverIdleSessionMs(sql);
    if (serverIdleMs > 0 && (idleS === 0 || idleS * 1000 > serverIdleMs / 2)) {
      idleS = serverIdleMs / 2000;
      await sql.end({ timeout: 5 });
      sql = postgres(url, clientOptions({ max: maxConnections, idle_timeout: idleS }));
    }
  } catch (error) {
    await sql.end({ timeout: 0 }).catch(() => {});
    await server?.stop();
    unguard();
    throw toDatabaseError(error, { displayUrl: where, databaseUrl: url });
  }
  const serverUrl = url;
  return {
    sql,
    embedded: server !== undefined,
    displayUrl,
    url: serverUrl,
    broken,
    get brokenError() {
      return brokenError;
    },
    get lastFault() {
      return lastFault;
    },
    poolIdleS: idleS,
    openSingle(label, single = {}) {
      let closed = false;
      const one = postgres(
        serverUrl,
        clientOptions(
          {
            max: 1,
            idle_timeout: single.idle === false ? 0 : idleS,
            onclose: () => (closed = true),
          },
          label,
        ),
      );
      return {
        sql: one,
        get closed() {
          return closed;
        },
        end: () => one.end({ timeout: 0 }),
      };
    },
    close,
  };
}

/** The server's idle_session_timeout for this session in milliseconds; 0 when off or unknown (before 14). */
async function serverIdleSessionMs(sql: Sql): Promise<number> {
  const [row] = await sql<Array<{ ms: string }>>`
    select setting as ms from pg_settings where name = 'idle_session_timeout'`;
  const ms = Number(row?.ms ?? 0);
  return Number.isFinite(ms) && ms > 0 ? ms : 0;
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
 * ourselves with TCP_NODELAY; postgres.js still does TLS, timeouts, keepalive and the protocol on top of
 * it. The socket is returned still connecting, so that a refused host reaches postgres.js as an error and
 * a close on the socket, which is how it moves on to the next host of a multi-host URL.
 *
 * With `answerTimeoutMs`, a socket that has sent something and heard nothing back for that long is
 * destroyed with an ANSWER_TIMEOUT error (see watchAnswers).
 */
function noDelaySocket(
  answerTimeoutMs: number,
  onFault: (fault: Error) => void,
): (options: SocketOptions) => net.Socket {
  return (options) => {
    let socket: net.Socket;
    if (options.path) {
      socket = net.connect({ path: options.path });
    } else {
      const index = nextHostIndex.get(options) ?? 0;
      nextHostIndex.set(options, (index + 1) % Math.max(1, options.host.length));
      const host = options.host[index] ?? 'localhost';
      const port = options.port[index] ?? options.port[0] ?? 5432;
      // postgres.js names the TLS server from host, as it does for the sockets it opens itself.
      socket = Object.assign(net.connect({ host, port, noDelay: true }), { host, port });
    }
    if (answerTimeoutMs > 0) watchAnswers(socket, answerTimeoutMs, onFault);
    return socket;
  };
}

/**
 * A connection is idle when the last bytes PostgreSQL sent end with ReadyForQuery ('Z', length 5) and
 * nothing was written since. Any other silence longer than `timeoutMs` means the statement timeout
 * (server-side) should long have answered: the server or the path to it is gone, and TCP may take a
 * quarter of an hour to say so. Reads and writes both count as activity (Node's socket timeout), so a
 * long COPY being sent, or rows arriving, never trip it.
 */
export function watchAnswers(socket: net.Socket, timeoutMs: number, onFault: (fault: Error) => void): void {
  let idle = false;
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
  socket.write = ((...args: unknown[]) => {
    idle = false;
    return write(...args);
  }) as typeof socket.write;
  socket.on('data', (chunk: Buffer) => {
    const n = chunk.length;
    idle = n >= 6 && chunk[n - 6] === 0x5a && chunk.readUInt32BE(n - 5) === 5;
  });
  // A listener of its own, not setTimeout's callback: that one is called once, and the timer fires again
  // after every new activity; the first firing on an idle connection would leave it unwatched for good.
  socket.setTimeout(timeoutMs);
  socket.on('timeout', () => {
    if (idle || socket.destroyed) return;
    const fault = Object.assign(
      new Error(`PostgreSQL did not answer for ${Math.round(timeoutMs / 1000)} s`),
      {
        code: 'ANSWER_TIMEOUT',
      },
    );
    onFault(fault);
    socket.destroy(fault);
  });
}

/**
 * postgres.js 3.4.9 can write to a connection it has already closed: a statement issued on a reserved or
 * transaction connection after its socket closed (a rollback after the backend was terminated, say)
 * schedules a write that runs in a setImmediate and throws `TypeError: Cannot read properties of null
 * (reading 'write')` in `nextWrite` (upstream issues #1154, #1208). It is thrown from a timer, so no
 * await catches it, and the statement it belonged to never settles.
 *
 * While a Database is open, exactly that exception (a TypeError thrown by `nextWrite` in postgres.js's
 * connection.js) is taken as "the connection was lost": `onCrash` is called and the process lives on to
 * report it. Any other uncaught exception is rethrown at once, as if this listener were not there.
 */
function guardDriverCrashes(onCrash: (error: Error) => void): () => void {
  const listener = (error: unknown): void => {
    if (isDriverNullSocketWrite(error)) {
      onCrash(
        Object.assign(new Error('postgres.js wrote to a connection that had already closed'), {
          code: 'CONNECTION_CLOSED',
          cause: error,
        }),
      );
      return;
    }
    process.off('uncaughtException', listener);
    // The default handling: printed with its stack, exit 1.
    setImmediate(() => {
      throw error;
    });
  };
  process.on('uncaughtException', listener);
  return () => process.off('uncaughtException', listener);
}

export function isDriverNullSocketWrite(error: unknown): boolean {
  if (!(error instanceof TypeError) || typeof error.stack !== 'string') return false;
  const frames = error.stack.split('\n').filter((line) => line.trimStart().startsWith('at '));
  const top = frames[0] ?? '';
  return /\bnextWrite\b/.test(top) && /[\\/]postgres[\\/](cjs[\\/])?src[\\/]connection\.js:/.test(top);
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
    case 'ANSWER_TIMEOUT':
      return make(
        `The connection to ${where} was lost: ${reason} (no answer, the connection is dead or black-holed).`,
        'Run the same command again: committed batches are kept. --db-statement-timeout sets how long a statement may take.',
      );
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
  if (isConnectionGone(error)) {
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
  'ANSWER_TIMEOUT',
  // The server ended the session: pg_terminate_backend (57P01), shutdown (57P02), idle_session_timeout
  // (57P05), or the connection failing (class 08).
  '57P01',
  '57P02',
  '57P05',
  '08000',
  '08003',
  '08006',
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
