import http from 'node:http';
import https from 'node:https';
import { pipeline, type Readable } from 'node:stream';
import zlib from 'node:zlib';
import { redactUrl } from '../util/redact.js';
import { KnownError, WahaRefusedError, WahaResponseError, WahaUnavailableError } from '../errors.js';
import {
  DEFAULT_RETRY_POLICY,
  isOverloadStatus,
  outcomeForStatus,
  parseRetryAfterMs,
  retryDelayMs,
  sleep,
  type RetryPolicy,
} from './retry.js';
import { rememberJsonSource, splitJsonArray, type JsonElements } from './json-source.js';

export interface HttpOptions {
  baseUrl: string;
  apiKey?: string | undefined;
  /** Covers one attempt from sending the request to the last byte of its body. */
  requestTimeoutMs: number;
  /** A body larger than this is refused instead of buffered (a hostile or broken server). */
  maxResponseBytes: number;
  retry?: RetryPolicy;
  onRetry?: (event: RetryEvent) => void;
  /**
   * Hooks around every attempt, for adaptive concurrency (src/concurrency/limiter.ts implements them):
   * each attempt first waits out a global pause, then reports its latency and outcome; a Retry-After
   * pauses every new attempt. Without it, attempts go out as soon as they are asked for.
   */
  observer?: RequestObserver;
}

/** `ok`: 2xx; `overload`: 408/429/503/504 or no answer in time; `error`: any other failure. */
export type AttemptOutcome = 'ok' | 'overload' | 'error';

export interface RequestObserver {
  /** Resolves when a new attempt may be sent; rejects with the signal's reason when it aborts first. */
  waitToSend(signal?: AbortSignal): Promise<void>;
  /** The attempt is sent now; the returned function is called once when it ends (null: aborted by us). */
  attemptStarted(): (result: { outcome: AttemptOutcome | null; latencyMs: number }) => void;
  /** The server asked for a pause: hold every new attempt back for `ms`. */
  pauseFor(ms: number): void;
}

export interface RetryEvent {
  endpoint: string;
  retryNumber: number;
  delayMs: number;
  reason: string;
}

export interface HttpStats {
  /** Every attempt sent, retries included. */
  requests: number;
  retries: number;
  /** Attempts answered 408/429/503/504 or not answered in time: WAHA (or its proxy) was overloaded. */
  overloads: number;
}

/** Thrown with the status for the caller to turn into a precise message (it knows what it asked for). */
export class HttpRefusal extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly endpoint: string,
    /** Whether the request carried an API key: a 401 without one means "give a key", not "wrong key". */
    readonly apiKeyGiven = true,
  ) {
    super(`${endpoint} answered ${status}`);
  }
}

class AttemptTimeout extends Error {}

/** Redirects followed within WAHA's origin before giving up. */
const MAX_REDIRECTS = 5;

export interface WahaHttp {
  readonly stats: HttpStats;
  /** `timeoutMs` overrides the per-attempt timeout for a request known to be slow (a whole WEBJS chat list). */
  getJson(
    path: string,
    query: Record<string, string | number | boolean>,
    signal?: AbortSignal,
    timeoutMs?: number,
    /** Failed answers (status, parsed body) thrown at once as HttpRefusal instead of tried again. */
    refuse?: (status: number, body: unknown) => boolean,
  ): Promise<unknown>;
  /**
   * As getJson, for a body expected to be a list of big items: an array comes as JsonElements, parsed
   * item by item; anything else as the parsed value, for the caller's shape check to name.
   */
  getJsonElements(
    path: string,
    query: Record<string, string | number | boolean>,
    signal?: AbortSignal,
    timeoutMs?: number,
  ): Promise<JsonElements | unknown>;
  /** How far WAHA's clock runs from this machine's, by its last answer's `Date` (see CLOCK_TOLERANCE_MS). */
  clockSkewMs(): number;
}

/**
 * Clocks closer than this are taken as one: a `Date` header is truncated to the second, and sent before
 * the body crossed the network. Beyond it, WAHA's clock is the one that counts for what WAHA dates.
 */
export const CLOCK_TOLERANCE_MS = 2000;

export function createWahaHttp(options: HttpOptions): WahaHttp {
  const policy = options.retry ?? DEFAULT_RETRY_POLICY;
  const stats: HttpStats = { requests: 0, retries: 0, overloads: 0 };
  const headers: Record<string, string> = { accept: 'application/json', 'accept-encoding': 'gzip, deflate' };
  if (options.apiKey) headers['x-api-key'] = options.apiKey;
  const get = createTransport(headers);
  const base = new URL(options.baseUrl);
  /** WAHA's `Date` minus this machine's time when it arrived, from the last answer that had one. */
  let dateOffsetMs: number | undefined;

  /** The base URL's path prefix and query (a proxy's ?token=) are kept; the request's query is added. */
  function urlFor(path: string, query: Record<string, string | number | boolean>): URL {
    const url = new URL(base.href);
    url.pathname = pathFor(path);
    for (const [key, value] of Object.entries(query)) url.searchParams.set(key, String(value));
    return url;
  }

  /**
   * The request target as sent. A URL takes a path segment of `.` or `..` (or their %2E forms) as a dot
   * segment and drops it, so a chat id `..` would ask `/api/default/messages`: such a segment is sent as
   * %2E, which WAHA's router decodes back into the chat id, and the URL is used only for its origin.
   */
  function targetFor(path: string, url: URL): string {
    const segments = path.replace(/^\//, '').split('/').map(dotSafe);
    return `${pathFor(segments.join('/'))}${url.search}`;
  }

  function pathFor(path: string): string {
    return `${base.pathname.replace(/\/+$/, '')}/${path.replace(/^\//, '')}`;
  }

  /**
   * Sends the request, following at most MAX_REDIRECTS redirects within WAHA's origin, each with the query
   * asked for: a Location without a query gets it, one with another query is refused. A redirect to
   * another origin (another host or port, or http <-> https) is refused: the API key would go with it.
   */
  async function send(path: string, url: URL, signal: AbortSignal): Promise<Answer> {
    for (let hops = 0; ; hops++) {
      // A redirect's Location is followed as the server wrote it.
      const response = await get(url, signal, hops === 0 ? targetFor(path, url) : undefined);
      const location = response.headers.location;
      if (response.status < 300 || response.status > 399 || location === undefined) return response;
      response.body.destroy();
      const next = new URL(location, url);
      if (next.origin !== url.origin) {
        throw new WahaRefusedError(
          `GET ${readablePath(path)} was redirected (HTTP ${response.status}) from ${redactUrl(url.origin)} to another origin, ${redactUrl(next.origin)}; the request was not followed, so the API key was not sent there`,
          `If WAHA really is served there, set --waha-url to ${redactUrl(next.origin)}; otherwise check what answers at ${redactUrl(options.baseUrl)}.`,
          response.status,
        );
      }
      // Something in front of WAHA (a proxy adding a slash) may redirect without the query: WAHA would then
      // answer with its defaults (10 messages, no time filter), which look like a chat's last page.
      if (next.search === '') next.search = url.search;
      else if (!keepsQuery(url, next)) {
        throw new WahaResponseError(
          `GET ${readablePath(path)} was redirected (HTTP ${response.status}) to another query, ${redactUrl(next.href)}; the request was not followed, since WAHA would not answer what was asked`,
          'Check what stands between this tool and WAHA (a proxy rewriting URLs), or set --waha-url to WAHA itself.',
        );
      }
      if (hops >= MAX_REDIRECTS) {
        throw new WahaResponseError(
          `GET ${readablePath(path)} was redirected more than ${MAX_REDIRECTS} times`,
          'Check that --waha-url points at WAHA itself and not at something in front of it.',
        );
      }
      url = next;
    }
  }

  async function attempt(
    path: string,
    query: Record<string, string | number | boolean>,
    signal: AbortSignal | undefined,
    timeoutMs: number,
  ): Promise<{ status: number; retryAfter: string | null; body: Buffer }> {
    const observer = options.observer;
    // A global pause is waited out before the attempt's own timeout starts.
    if (observer) await observer.waitToSend(signal);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new AttemptTimeout()), timeoutMs);
    const onOuterAbort = (): void => controller.abort(signal?.reason);
    signal?.addEventListener('abort', onOuterAbort, { once: true });
    const finish = observer?.attemptStarted();
    const startedAt = performance.now();
    let outcome: AttemptOutcome | null = null;
    try {
      stats.requests += 1;
      const response = await send(path, urlFor(path, query), controller.signal);
      const serverDateMs = Date.parse(header(response.headers.date) ?? '');
      if (Number.isFinite(serverDateMs)) dateOffsetMs = serverDateMs - Date.now();
      const body = await readCapped(response, options.maxResponseBytes, path);
      outcome = attemptOutcome(response.status);
      return { status: response.status, retryAfter: header(response.headers['retry-after']), body };
    } catch (error) {
      if (controller.signal.reason instanceof AttemptTimeout) {
        outcome = 'overload';
        throw controller.signal.reason;
      }
      outcome = signal?.aborted ? null : 'error';
      throw error;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onOuterAbort);
      if (outcome === 'overload') stats.overloads += 1;
      finish?.({ outcome, latencyMs: performance.now() - startedAt });
    }
  }

  async function getJson(
    path: string,
    query: Record<string, string | number | boolean>,
    signal?: AbortSignal,
    timeoutMs: number = options.requestTimeoutMs,
    split = false,
    refuse?: (status: number, body: unknown) => boolean,
  ): Promise<unknown> {
    const endpoint = `GET ${readablePath(path)}`;
    for (let retryNumber = 0; ; retryNumber++) {
      let reason: string;
      let retryAfterMs: number | undefined;
      try {
        const { status, retryAfter, body } = await attempt(path, query, signal, timeoutMs);
        const outcome = status >= 200 && status < 300 ? 'ok' : outcomeForStatus(status);
        // Split without decoding the whole body: its text alone can take twice its size.
        const elements = split && outcome === 'ok' ? splitJsonArray(body) : null;
        if (elements !== null) return elements;
        const text = body.toString('utf8');
        if (outcome === 'ok') return parseJson(text, body, endpoint);
        // Parsed once, and only when it may be refused.
        const parsed = outcome === 'refuse' || refuse ? safeParse(text) : undefined;
        if (outcome === 'refuse' || refuse?.(status, parsed))
          throw new HttpRefusal(status, parsed, endpoint, Boolean(options.apiKey));
        if (outcome === 'malformed') {
          throw new WahaResponseError(
            `${endpoint} answered HTTP ${status}, which WAHA does not send`,
            'Check that --waha-url points at WAHA itself and not at something in front of it.',
          );
        }
        reason = `HTTP ${status}${engineFailure(text)}`;
        retryAfterMs = parseRetryAfterMs(retryAfter);
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        if (error instanceof HttpRefusal || error instanceof KnownError) throw error;
        if (error instanceof ResponseTooLarge) throw error.toKnown();
        reason =
          error instanceof AttemptTimeout ? `no answer within ${timeoutMs} ms` : describeNetworkError(error);
      }
      if (retryNumber >= policy.maxRetries) {
        throw new WahaUnavailableError(
          `${endpoint} failed ${retryNumber === 0 ? 'once' : `${retryNumber + 1} times`}; last: ${reason}`,
          `Is WAHA running and reachable at ${redactUrl(options.baseUrl)}? Raise --max-retries or --request-timeout for a slow server.`,
        );
      }
      const delayMs = retryDelayMs(policy, retryNumber + 1, retryAfterMs);
      // The server asked everyone to wait, not only this request.
      if (retryAfterMs !== undefined) options.observer?.pauseFor(delayMs);
      stats.retries += 1;
      options.onRetry?.({ endpoint, retryNumber: retryNumber + 1, delayMs, reason });
      await sleep(delayMs, signal);
    }
  }

  return {
    stats,
    getJson: (path, query, signal, timeoutMs, refuse) =>
      getJson(path, query, signal, timeoutMs, false, refuse),
    getJsonElements: (path, query, signal, timeoutMs) => getJson(path, query, signal, timeoutMs, true),
    clockSkewMs: () =>
      dateOffsetMs !== undefined && Math.abs(dateOffsetMs) > CLOCK_TOLERANCE_MS ? dateOffsetMs : 0,
  };
}

function attemptOutcome(status: number): AttemptOutcome {
  if (status >= 200 && status < 300) return 'ok';
  return isOverloadStatus(status) ? 'overload' : 'error';
}

class ResponseTooLarge extends Error {
  constructor(
    readonly endpoint: string,
    readonly limitBytes: number,
  ) {
    super(`${endpoint}: response larger than ${limitBytes} bytes`);
  }
  toKnown(): WahaResponseError {
    return new WahaResponseError(
      `GET ${this.endpoint} sent a response larger than ${this.limitBytes} bytes`,
      tooLargeHint(this.endpoint),
    );
  }
}

/** The settings that bound a response of this endpoint: only the request's own size can be lowered. */
function tooLargeHint(endpoint: string): string {
  const path = endpoint.split('?')[0]!;
  if (path.endsWith('/messages')) {
    return 'Lower --page-size, or raise --max-response-mb if the server is trusted.';
  }
  if (path.endsWith('/chats')) {
    return (
      'Lower --chat-page-size, or raise --max-response-mb if the server is trusted (WEBJS lists every ' +
      'chat in one response, each with its newest message and a group with its members: there only ' +
      '--max-response-mb helps).'
    );
  }
  return 'Raise --max-response-mb if the server is trusted.';
}

/** An answer whose body is still to be read (decompressed when the server compressed it). */
interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Readable;
}

/** Idle keep-alive connections are closed after this long, before a server's own 5 s (Node's default). */
const IDLE_SOCKET_MS = 4_000;

/** A path segment the URL rules would drop or resolve (`.`, `..`), spelled so they cannot. */
function dotSafe(segment: string): string {
  return /^(\.|%2e){1,2}$/i.test(segment) ? segment.replace(/\./g, '%2E') : segment;
}

/**
 * GET over node:http(s) with keep-alive connections: of `url`, or of `target` (the path and query as
 * sent) at its origin. (fetch, through ky, cost 0.2-0.5 ms more CPU per request side by side: several
 * seconds per 1,000,000 messages.) Redirects are not followed here: `send` decides which to follow, so
 * X-Api-Key never goes to another origin. Aborting `signal` destroys the request and its body.
 */
function createTransport(
  headers: Record<string, string>,
): (url: URL, signal: AbortSignal, target?: string) => Promise<Answer> {
  const agents = {
    http: new http.Agent({ keepAlive: true, timeout: IDLE_SOCKET_MS }),
    https: new https.Agent({ keepAlive: true, timeout: IDLE_SOCKET_MS }),
  };
  return (url, signal, target) =>
    new Promise<Answer>((resolve, reject) => {
      const secure = url.protocol === 'https:';
      const request = (secure ? https : http).request(
        url,
        {
          method: 'GET',
          headers,
          agent: secure ? agents.https : agents.http,
          signal,
          ...(target === undefined ? {} : { path: target }),
        },
        (response) => {
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body: decoded(response) });
        },
      );
      request.on('error', reject);
      request.end();
    });
}

/** The body as sent, or decompressed (what fetch did, and what `accept-encoding` offers). */
function decoded(response: http.IncomingMessage): Readable {
  const encoding = header(response.headers['content-encoding'])?.trim().toLowerCase();
  const decoder =
    encoding === 'gzip' || encoding === 'x-gzip'
      ? zlib.createGunzip()
      : encoding === 'deflate'
        ? zlib.createInflate()
        : encoding === 'br'
          ? zlib.createBrotliDecompress()
          : null;
  if (decoder === null) return response;
  // Errors of either end the other and surface when the body is read.
  return pipeline(response, decoder, () => {});
}

function header(value: string | string[] | undefined): string | null {
  if (value === undefined) return null;
  return Array.isArray(value) ? (value[0] ?? null) : value;
}

async function readCapped(response: Answer, limitBytes: number, endpoint: string): Promise<Buffer> {
  const declared = Number(header(response.headers['content-length']) ?? NaN);
  if (Number.isFinite(declared) && declared > limitBytes) {
    response.body.destroy();
    throw new ResponseTooLarge(endpoint, limitBytes);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
    total += chunk.byteLength;
    if (total > limitBytes) throw new ResponseTooLarge(endpoint, limitBytes);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}

/**
 * WEBJS's 500 for a messages request whose filter leaves nothing of the messages loaded in the browser
 * (#1885, #1805): WAHA reads `.t` of the oldest message that passed, and there is none.
 */
export function isEmptyLoadCrash(status: number, body: unknown): boolean {
  const exception = engineException(body);
  return (
    status === 500 &&
    exception?.name === 'TypeError' &&
    exception.message === "Cannot read properties of undefined (reading 't')"
  );
}

/** The engine's exception WAHA's unhandled-error body names (`{exception: {name, message}}`), if any. */
function engineException(body: unknown): { name?: unknown; message?: unknown } | undefined {
  const exception =
    body && typeof body === 'object' ? (body as { exception?: unknown }).exception : undefined;
  return exception && typeof exception === 'object'
    ? (exception as { name?: unknown; message?: unknown })
    : undefined;
}

/** WAHA's unhandled-error body names the engine's exception: worth showing, a chat's 500 is often one bug. */
function engineFailure(text: string): string {
  const { name, message } = engineException(safeParse(text)) ?? {};
  if (typeof message !== 'string') return '';
  return ` (${typeof name === 'string' ? `${name}: ` : ''}${message.slice(0, 200)})`;
}

/** The body parsed; an array's text and bytes are kept beside it (see json-source.ts) for the messages' `raw`. */
function parseJson(text: string, bytes: Buffer, endpoint: string): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch {
    throw new WahaResponseError(
      `${endpoint} answered with malformed JSON (${text.length} characters, starting ${JSON.stringify(text.slice(0, 60))})`,
      'Check that --waha-url points at WAHA; a proxy error page or a truncated body looks like this.',
    );
  }
  rememberJsonSource(value, bytes);
  return value;
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text.slice(0, 500);
  }
}

function describeNetworkError(error: unknown): string {
  if (error instanceof Error) {
    type Cause = { code?: string; message?: string };
    // node:http's errors carry their code themselves (fetch's, on a `cause`).
    const own = error as Error & Cause & { cause?: Cause };
    const cause = own.cause ?? (own.code === undefined ? undefined : own);
    if (cause?.code) return `${cause.code}${cause.message ? ` (${cause.message})` : ''}`;
    return cause?.message ? `${error.message}: ${cause.message}` : error.message;
  }
  return String(error);
}

/** Turns a refusal into the message a user can act on. `what` says what was asked, e.g. "session default". */
export function refusalToError(refusal: HttpRefusal, what: string, baseUrl: string): WahaRefusedError {
  const detail = describeBody(refusal.body);
  switch (refusal.status) {
    case 401:
      if (!refusal.apiKeyGiven) {
        return new WahaRefusedError(
          `WAHA at ${baseUrl} wants an API key: no API key given (401 Unauthorized)`,
          'Give the key WAHA was started with (its WAHA_API_KEY): --api-key, WAHA_API_KEY, or WAHA_API_KEY_FILE (a file holding it).',
          401,
        );
      }
      return new WahaRefusedError(
        `WAHA at ${baseUrl} refused the API key (401 Unauthorized)`,
        'Set the key WAHA was started with: --api-key or WAHA_API_KEY.',
        401,
      );
    case 403:
      return new WahaRefusedError(
        `WAHA refused access to ${what} (403 Forbidden)${detail}`,
        'This API key is not allowed for that session; use a key that is.',
        403,
      );
    case 404:
      return new WahaRefusedError(
        `WAHA has no ${what} (404 Not Found)${detail}`,
        'Check --session (GET /api/sessions lists them) and --waha-url.',
        404,
      );
    case 422:
      return unprocessable(refusal.body, what, detail);
    case 501:
      return new WahaRefusedError(
        `WAHA's engine does not implement ${what} (501 Not Implemented)${detail}`,
        'This engine cannot serve it; another WAHA engine (NOWEB, GOWS) or a newer WAHA version may.',
        501,
      );
    default:
      return new WahaRefusedError(
        `WAHA rejected the request for ${what} (HTTP ${refusal.status})${detail}`,
        'This looks like a bug or a WAHA version this tool does not know; please report it with this message.',
        refusal.status,
      );
  }
}

/**
 * WAHA answers 422 on chat routes for three different reasons, told apart by the body: the session does
 * not exist (or is stopped), it is not WORKING yet, or the free Core tier allows only `default`.
 */
function unprocessable(body: unknown, what: string, detail: string): WahaRefusedError {
  const record = body && typeof body === 'object' ? (body as Record<string, unknown>) : {};
  // `message` says what happened; `error` is the status text ("Unprocessable Entity") or, on the
  // not-WORKING answer, the sentence itself.
  const text =
    typeof record.message === 'string'
      ? record.message
      : typeof record.error === 'string'
        ? record.error
        : '';
  if (typeof record.status === 'string') {
    return new WahaRefusedError(
      `WAHA cannot serve ${what}: the session is ${record.status}, not WORKING (422)`,
      'Start the session and scan its QR code in WAHA until its status is WORKING, then run again.',
      422,
    );
  }
  if (/core|plus|tier|default/i.test(text) && !/does not exist|not running|not found/i.test(text)) {
    return new WahaRefusedError(
      `WAHA cannot serve ${what}: ${text || 'refused'} (422)`,
      'The free WAHA Core tier serves only the session named "default": use --session default, or a WAHA Plus server.',
      422,
    );
  }
  if (/does not exist|not found|not running|stopped/i.test(text)) {
    return new WahaRefusedError(
      `WAHA cannot serve ${what}: ${text} (422)`,
      'Check --session (GET /api/sessions?all=true lists them) and start the session in WAHA.',
      422,
    );
  }
  return new WahaRefusedError(
    `WAHA refused ${what}: ${detail.replace(/^: /, '') || 'the session cannot serve requests (422)'}`,
    'Start the session and scan its QR code in WAHA until its status is WORKING, then run again.',
    422,
  );
}

function describeBody(body: unknown): string {
  if (body && typeof body === 'object') {
    const record = body as Record<string, unknown>;
    if (typeof record.status === 'string' && typeof record.error === 'string') {
      return `: ${record.error} (status ${record.status})`;
    }
    const message = record.message ?? record.error;
    if (typeof message === 'string') return `: ${message}`;
    if (Array.isArray(message)) return `: ${message.join('; ')}`;
  }
  return typeof body === 'string' && body ? `: ${body.slice(0, 200)}` : '';
}

/** Every parameter of `asked`'s query comes with the same values in `next`'s (more may come). */
function keepsQuery(asked: URL, next: URL): boolean {
  for (const key of new Set(asked.searchParams.keys())) {
    const want = asked.searchParams.getAll(key);
    const got = next.searchParams.getAll(key);
    if (want.length !== got.length || want.some((value, i) => value !== got[i])) return false;
  }
  return true;
}

/** Paths carry encoded chat ids (`%40` for `@`); messages show them as people write them. */
function readablePath(path: string): string {
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}
