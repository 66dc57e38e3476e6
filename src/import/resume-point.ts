import type { TimeWindow } from '../domain.js';

/**
 * Where a chat continues, once some of its pages are committed. A chat fetched as one slice continues
 * below a single time cursor: a number, the `lte` (unix seconds) of its next request; every message of
 * the chat in the window newer than it is committed. A chat fetched in time slices (src/import/slices.ts)
 * continues in several disjoint spans at once: the spans, each `[fromS, toS]` inclusive, newest first;
 * every message of the chat in the window outside them is committed.
 */
export type Span = readonly [fromS: number, toS: number];
export type ResumePoint = number | readonly Span[];

/**
 * The spans still to fetch of a chat in `window`, from a resume point (absent: the whole window). Spans
 * are clipped to the window and returned newest first; overlapping or malformed ones (a damaged or
 * forged checkpoint) fall back to the whole window, which is always safe: re-fetching is idempotent.
 */
export function spansToFetch(window: TimeWindow, resume: ResumePoint | undefined): Span[] {
  const whole: Span[] = [[window.fromS, window.toS]];
  if (resume === undefined) return whole;
  if (typeof resume === 'number') {
    if (!Number.isInteger(resume) || resume > window.toS) return whole;
    return resume < window.fromS ? [] : [[window.fromS, resume]];
  }
  const spans: Span[] = [];
  for (const span of resume) {
    if (!Array.isArray(span) || span.length !== 2) return whole;
    const [fromS, toS] = span as [unknown, unknown];
    if (!Number.isInteger(fromS) || !Number.isInteger(toS) || (fromS as number) > (toS as number))
      return whole;
    const from = Math.max(fromS as number, window.fromS);
    const to = Math.min(toS as number, window.toS);
    if (from <= to) spans.push([from, to]);
  }
  spans.sort((a, b) => b[0] - a[0]);
  for (let i = 1; i < spans.length; i++) if (spans[i]![1] >= spans[i - 1]![0]) return whole;
  return spans;
}

/**
 * The resume point recording `spans` (newest first, disjoint) of a chat in `window`: the plain cursor
 * when one span reaches down to the window's start (what a chat fetched in one slice leaves), the spans
 * otherwise.
 */
export function resumePointOf(window: TimeWindow, spans: readonly Span[]): ResumePoint {
  if (spans.length === 1 && spans[0]![0] <= window.fromS) return spans[0]![1];
  return spans.map(([fromS, toS]) => [fromS, toS] as const);
}

/** Is this a resume point as a checkpoint may hold it (before it is checked against a window)? */
export function isResumePoint(value: unknown): value is ResumePoint {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0;
  return (
    Array.isArray(value) &&
    value.length > 0 &&
    value.every(
      (span) =>
        Array.isArray(span) &&
        span.length === 2 &&
        span.every((s) => Number.isInteger(s) && (s as number) >= 0) &&
        (span[0] as number) <= (span[1] as number),
    )
  );
}
