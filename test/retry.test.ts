import {
  outcomeForStatus,
  parseRetryAfterMs,
  retryDelayMs,
  DEFAULT_RETRY_POLICY,
} from '../src/waha/retry.js';

describe('retry policy table', () => {
  it('retries what a proxy or an overloaded WAHA sends, refuses what retrying cannot fix', () => {
    for (const status of [408, 429, 500, 502, 503, 504, 599]) expect(outcomeForStatus(status)).toBe('retry');
    for (const status of [400, 401, 403, 404, 422, 418]) expect(outcomeForStatus(status)).toBe('refuse');
    expect(outcomeForStatus(302)).toBe('malformed');
  });

  it('reads Retry-After as seconds or as an HTTP date, and ignores garbage', () => {
    expect(parseRetryAfterMs('3')).toBe(3000);
    expect(parseRetryAfterMs('0.5')).toBe(500);
    const nowMs = Date.parse('2026-11-25T12:00:00Z');
    expect(parseRetryAfterMs('Wed, 25 Nov 2026 12:00:10 GMT', nowMs)).toBe(10_000);
    expect(parseRetryAfterMs('Wed, 25 Nov 2026 11:00:00 GMT', nowMs)).toBe(0);
    expect(parseRetryAfterMs('soon')).toBeUndefined();
    expect(parseRetryAfterMs(null)).toBeUndefined();
  });

  it('backs off exponentially within [half, whole] of the step, capped, and obeys Retry-After up to its cap', () => {
    const policy = { ...DEFAULT_RETRY_POLICY, baseDelayMs: 100, maxDelayMs: 1000, maxRetryAfterMs: 5000 };
    expect(retryDelayMs(policy, 1, undefined, () => 0)).toBe(50);
    expect(retryDelayMs(policy, 1, undefined, () => 1)).toBe(100);
    expect(retryDelayMs(policy, 3, undefined, () => 1)).toBe(400);
    expect(retryDelayMs(policy, 10, undefined, () => 1)).toBe(1000);
    expect(retryDelayMs(policy, 1, 2000)).toBe(2000);
    expect(retryDelayMs(policy, 1, 60_000)).toBe(5000);
  });
});
