/**
 * Failures the simulator injects on the chat-list and message routes: random ones at configured rates
 * (seeded, so a run can be replayed) and scripted ones a test asks for explicitly.
 */

import { substream, type Random } from './random.js';
import type { Reply } from './routes.js';

export type FaultRoute = 'chats' | 'messages';

/** A failure answered with an HTTP status (or never answered at all). */
export interface StatusFailure {
  /** HTTP status to answer with, or 'timeout' to accept the request and never answer. */
  status: number | 'timeout';
  /** Sent as `Retry-After` (seconds) when given. */
  retryAfterS?: number;
  /** Only requests to this route fail; default: the next chat-list or message request. */
  route?: FaultRoute;
  /** Only message requests for this chat (dataset id, or the id as requested) fail (implies route 'messages'). */
  chatId?: string;
}

/**
 * Ways a 200 answer can go wrong on the wire or in its content, applied to the answer the route would
 * have given (only to 200 answers; another status is sent unchanged and still uses up the failure):
 * - `drop-body`: headers and the first half of the body, then the socket is destroyed;
 * - `malformed-json`: a complete response whose body is the first half of the JSON;
 * - `slow-loris`: the body one byte every `byteIntervalMs`, until done or the client leaves;
 * - `huge-body`: valid JSON padded to `hugeBytes`, streamed without a content-length;
 * - `missing-id`, `timestamp-not-number`, `body-object`, `timestamp-year-3000`: the first item of the
 *   list has that defect (an empty list is sent unchanged).
 */
export type BodyFaultKind =
  | 'drop-body'
  | 'malformed-json'
  | 'slow-loris'
  | 'huge-body'
  | 'missing-id'
  | 'timestamp-not-number'
  | 'body-object'
  | 'timestamp-year-3000';

export const BODY_FAULT_KINDS: readonly BodyFaultKind[] = [
  'drop-body',
  'malformed-json',
  'slow-loris',
  'huge-body',
  'missing-id',
  'timestamp-not-number',
  'body-object',
  'timestamp-year-3000',
];

export interface BodyFailure {
  kind: BodyFaultKind;
  route?: FaultRoute;
  chatId?: string;
  /** `slow-loris`: pause between bytes. Default 1000. */
  byteIntervalMs?: number;
  /** `huge-body`: bytes sent. Default 50 MiB. */
  hugeBytes?: number;
}

export type ScriptedFailure = StatusFailure | BodyFailure;

export type Fault =
  | { kind: 'reply'; reply: Reply; counter: 'error' | 'rateLimit' }
  | { kind: 'timeout' }
  | { kind: 'body'; failure: Required<Omit<BodyFailure, 'route' | 'chatId'>> };

export interface FaultRates {
  errorRate: number;
  rateLimitRate: number;
  timeoutRate: number;
  retryAfterS: number;
}

export interface FaultRequest {
  route: FaultRoute;
  /** The chat of a message request: the dataset's id. */
  chatId?: string;
  /** The chat as the request's path named it (an engine's own form of the id). */
  requestedChatId?: string;
  method: string;
  path: string;
  query: Record<string, string>;
}

export class FaultPlan {
  private readonly random: Random;
  private readonly scripted: Array<{ failure: ScriptedFailure; remaining: number }> = [];

  constructor(
    private readonly rates: FaultRates,
    seed: number,
    private readonly version: unknown,
  ) {
    this.random = substream(seed, 2);
  }

  script(count: number, failure: ScriptedFailure): void {
    if (!Number.isInteger(count) || count < 0) throw new RangeError('failNext count must be an integer >= 0');
    if ('kind' in failure) {
      if (!BODY_FAULT_KINDS.includes(failure.kind)) {
        throw new RangeError(`failNext kind must be one of ${BODY_FAULT_KINDS.join(', ')}`);
      }
      for (const key of ['byteIntervalMs', 'hugeBytes'] as const) {
        const value = failure[key];
        if (value !== undefined && !(Number.isFinite(value) && value >= 0)) {
          throw new RangeError(`failNext ${key} must be a finite number >= 0`);
        }
      }
    } else if (failure.status !== 'timeout' && !(Number.isInteger(failure.status) && failure.status >= 400)) {
      throw new RangeError('failNext status must be an HTTP error status (>= 400) or "timeout"');
    }
    if (count > 0) this.scripted.push({ failure: { ...failure }, remaining: count });
  }

  /** The fault for this request, if any; scripted failures go first, in the order they were asked for. */
  next(request: FaultRequest): Fault | undefined {
    const index = this.scripted.findIndex(({ failure }) => applies(failure, request));
    const entry = this.scripted[index];
    if (entry) {
      if (--entry.remaining === 0) this.scripted.splice(index, 1);
      const failure = entry.failure;
      if ('kind' in failure) {
        return {
          kind: 'body',
          failure: {
            kind: failure.kind,
            byteIntervalMs: failure.byteIntervalMs ?? 1000,
            hugeBytes: failure.hugeBytes ?? 50 * 1024 * 1024,
          },
        };
      }
      const { status, retryAfterS } = failure;
      return status === 'timeout'
        ? { kind: 'timeout' }
        : faultReply(status, retryAfterS, request, this.version);
    }
    const { errorRate, rateLimitRate, timeoutRate, retryAfterS } = this.rates;
    if (errorRate + rateLimitRate + timeoutRate === 0) return undefined;
    const roll = this.random();
    if (roll < errorRate) return faultReply(500, undefined, request, this.version);
    if (roll < errorRate + rateLimitRate) return faultReply(429, retryAfterS, request, this.version);
    if (roll < errorRate + rateLimitRate + timeoutRate) return { kind: 'timeout' };
    return undefined;
  }
}

function applies(failure: ScriptedFailure, request: FaultRequest): boolean {
  if (failure.chatId !== undefined) {
    return (
      request.route === 'messages' &&
      (request.chatId === failure.chatId || request.requestedChatId === failure.chatId)
    );
  }
  return failure.route === undefined || failure.route === request.route;
}

const REASONS: Record<number, string> = {
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Time-out',
};

/** Statuses that come from a reverse proxy in front of WAHA (WAHA itself never sends them). */
const PROXY_STATUSES = new Set([429, 502, 503, 504]);

function faultReply(
  status: number,
  retryAfterS: number | undefined,
  request: FaultRequest,
  version: unknown,
): Fault {
  const headers: Record<string, string> = {};
  if (retryAfterS !== undefined) headers['retry-after'] = String(retryAfterS);
  const counter = status === 429 ? 'rateLimit' : 'error';
  if (PROXY_STATUSES.has(status)) {
    // nginx answers in HTML: a client must not assume every error body is JSON.
    const title = `${status} ${REASONS[status] ?? 'Error'}`;
    headers['content-type'] = 'text/html';
    const body = `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`;
    return { kind: 'reply', counter, reply: { status, body, headers } };
  }
  if (status === 500) {
    // The shape of WAHA's catch-all exception filter for an engine error.
    const message = 'Connection Closed';
    const body = {
      statusCode: 500,
      timestamp: new Date().toISOString(),
      exception: {
        message,
        name: 'Error',
        stack: `Error: ${message}\n    at ChatsController.getChatMessages (/app/dist/api/chats.controller.js:1:1)`,
      },
      request: { path: request.path, method: request.method, query: request.query },
      version,
    };
    return { kind: 'reply', counter, reply: { status, body, headers } };
  }
  return {
    kind: 'reply',
    counter,
    reply: {
      status,
      body: { statusCode: status, message: REASONS[status] ?? 'Error', error: REASONS[status] ?? 'Error' },
      headers,
    },
  };
}

/** The faults that change what the JSON says rather than how it travels. */
const CONTENT_FAULTS = new Set<BodyFaultKind>([
  'missing-id',
  'timestamp-not-number',
  'body-object',
  'timestamp-year-3000',
]);

export function isContentFault(kind: BodyFaultKind): boolean {
  return CONTENT_FAULTS.has(kind);
}

/** 3000-01-01T00:00:00Z in unix seconds: a timestamp no WhatsApp message can carry. */
export const YEAR_3000_S = 32_503_680_000;

/**
 * The body with the first list item spoiled as `kind` says (a copy; the dataset is never touched). A body
 * that is not a non-empty list of objects is returned as is.
 */
export function spoilFirstItem(body: unknown, kind: BodyFaultKind): unknown {
  if (!Array.isArray(body) || body.length === 0) return body;
  const [first, ...rest] = body as unknown[];
  if (first === null || typeof first !== 'object') return body;
  const item = structuredClone(first) as Record<string, unknown>;
  switch (kind) {
    case 'missing-id':
      delete item.id;
      break;
    case 'timestamp-not-number':
      item.timestamp = String(item.timestamp);
      break;
    case 'body-object':
      item.body = { text: item.body ?? '' };
      break;
    case 'timestamp-year-3000':
      item.timestamp = YEAR_3000_S;
      break;
    default:
      return body;
  }
  return [item, ...rest];
}
