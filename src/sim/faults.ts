/**
 * Failures the simulator injects on the chat-list and message routes: random ones at configured rates
 * (seeded, so a run can be replayed) and scripted ones a test asks for explicitly.
 */

import { substream, type Random } from './random.js';
import type { Reply } from './routes.js';

export type FaultRoute = 'chats' | 'messages';

export interface ScriptedFailure {
  /** HTTP status to answer with, or 'timeout' to accept the request and never answer. */
  status: number | 'timeout';
  /** Sent as `Retry-After` (seconds) when given. */
  retryAfterS?: number;
  /** Only requests to this route fail; default: the next chat-list or message request. */
  route?: FaultRoute;
}

export type Fault = { kind: 'reply'; reply: Reply; counter: 'error' | 'rateLimit' } | { kind: 'timeout' };

export interface FaultRates {
  errorRate: number;
  rateLimitRate: number;
  timeoutRate: number;
  retryAfterS: number;
}

export interface FaultRequest {
  route: FaultRoute;
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
    private readonly engine: string,
  ) {
    this.random = substream(seed, 2);
  }

  script(count: number, failure: ScriptedFailure): void {
    if (!Number.isInteger(count) || count < 0) throw new RangeError('failNext count must be an integer >= 0');
    if (failure.status !== 'timeout' && !(Number.isInteger(failure.status) && failure.status >= 400)) {
      throw new RangeError('failNext status must be an HTTP error status (>= 400) or "timeout"');
    }
    if (count > 0) this.scripted.push({ failure: { ...failure }, remaining: count });
  }

  /** The fault for this request, if any; scripted failures go first, in the order they were asked for. */
  next(request: FaultRequest): Fault | undefined {
    const index = this.scripted.findIndex(
      (s) => s.failure.route === undefined || s.failure.route === request.route,
    );
    const entry = this.scripted[index];
    if (entry) {
      if (--entry.remaining === 0) this.scripted.splice(index, 1);
      const { status, retryAfterS } = entry.failure;
      return status === 'timeout'
        ? { kind: 'timeout' }
        : faultReply(status, retryAfterS, request, this.engine);
    }
    const { errorRate, rateLimitRate, timeoutRate, retryAfterS } = this.rates;
    if (errorRate + rateLimitRate + timeoutRate === 0) return undefined;
    const roll = this.random();
    if (roll < errorRate) return faultReply(500, undefined, request, this.engine);
    if (roll < errorRate + rateLimitRate) return faultReply(429, retryAfterS, request, this.engine);
    if (roll < errorRate + rateLimitRate + timeoutRate) return { kind: 'timeout' };
    return undefined;
  }
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
  engine: string,
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
      version: { version: '2026.2.1-sim', engine, tier: 'CORE' },
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
