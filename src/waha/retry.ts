/**
 * What to do with each kind of WAHA answer, as data rather than branches. WAHA itself never sends 429,
 * but the reverse proxies people put in front of it do (429, 502, 503, 504, sometimes with Retry-After).
 */

export type Outcome = 'retry' | 'refuse' | 'malformed';

export const RETRY_TABLE: Readonly<Record<number, Outcome>> = {
  400: 'refuse',
  401: 'refuse',
  403: 'refuse',
  404: 'refuse',
  408: 'retry',
  422: 'refuse',
  425: 'retry',
  429: 'retry',
  500: 'retry',
  // The engine does not implement the method: asking again cannot change that.
  501: 'refuse',
  502: 'retry',
  503: 'retry',
  504: 'retry',
};

/** Network errors (refused, reset, DNS) and our own per-request timeout are always retried. */
export function outcomeForStatus(status: number): Outcome {
  const listed = RETRY_TABLE[status];
  if (listed) return listed;
  if (status >= 500) return 'retry';
  if (status >= 400) return 'refuse';
  return 'malformed';
}

/**
 * Answers that mean "too much at once" (a proxy's rate limit, an overloaded or timed-out upstream), as
 * opposed to a failure that says nothing about load (a 500 from the engine, a reset connection).
 */
export const OVERLOAD_STATUSES: ReadonlySet<number> = new Set([408, 429, 503, 504]);

export function isOverloadStatus(status: number): boolean {
  return OVERLOAD_STATUSES.has(status);
}

export interface RetryPolicy {
  /** Retries after the first attempt; 0 disables retrying. */
  maxRetries: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** A server asking for a longer pause than this is waited for this long, then tried again. */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxRetries: 6,
  baseDelayMs: 200,
  maxDelayMs: 15_000,
  maxRetryAfterMs: 120_000,
};

/**
 * Exponential backoff with "equal jitter" (half the exponential step fixed, half random): fetchers that
 * failed together do not come back together, and none retries almost at once. A Retry-After from the
 * server wins when present.
 */
export function retryDelayMs(
  policy: RetryPolicy,
  retryNumber: number,
  retryAfterMs: number | undefined,
  random: () => number = Math.random,
): number {
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, policy.maxRetryAfterMs);
  const capMs = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (retryNumber - 1));
  return Math.round(capMs / 2 + (random() * capMs) / 2);
}

/** Retry-After is either delay-seconds or an HTTP date. Anything unparseable is ignored. */
export function parseRetryAfterMs(header: string | null, nowMs: number = Date.now()): number | undefined {
  if (header === null || header.trim() === '') return undefined;
  const trimmed = header.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const dateMs = Date.parse(trimmed);
  if (Number.isNaN(dateMs)) return undefined;
  return Math.max(0, dateMs - nowMs);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
