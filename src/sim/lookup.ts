/**
 * Indexes that keep a simulated request cheap on a big history: a messages page costs O(page + log n)
 * and a chat lookup O(1), where a scan of the chat (or of every chat) made the simulator the bottleneck
 * of a million-message bench. They are caches over the dataset, never a second source of truth: the
 * dataset's mutators (dataset.ts) drop what they change, and everything is rebuilt lazily from the
 * dataset on the next request.
 */

import type { Dataset, SimChat, SimMessage } from './dataset.js';

/** Per chat, its visible messages in the chat's (timestamp) order. */
const visibleByChat = new WeakMap<SimChat, SimMessage[]>();
/** Per dataset, its chats by id, in dataset order (ids are unique in practice; the first one wins). */
const chatsByIdOf = new WeakMap<Dataset, Map<string, SimChat[]>>();

/** The dataset changed `chat.messages` (an arrival, a deletion, a revoke row, a relink). */
export function forgetMessages(chat: SimChat): void {
  visibleByChat.delete(chat);
}

/** The dataset changed its list of chats or a chat's id (a relink). */
export function forgetChats(dataset: Dataset): void {
  chatsByIdOf.delete(dataset);
}

/**
 * The rows a messages request pages over, in timestamp order: every stored row where the engine counts
 * hidden rows in limit/offset (GOWS), only the visible ones otherwise. The caller must not change it.
 */
export function pagedRows(chat: SimChat, withHidden: boolean): readonly SimMessage[] {
  if (withHidden) return chat.messages;
  let visible = visibleByChat.get(chat);
  if (visible === undefined) {
    visible = chat.messages.filter((m) => !m.hidden);
    visibleByChat.set(chat, visible);
  }
  return visible;
}

/** The first index in `rows` (timestamp order) whose second is above `second` (`orEqual`: at or above). */
function boundary(rows: readonly SimMessage[], second: number, orEqual: boolean): number {
  let low = 0;
  let high = rows.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    const s = rows[mid]!.timestampS;
    if (s > second || (orEqual && s === second)) high = mid;
    else low = mid + 1;
  }
  return low;
}

/** A run of rows of one chat: `rows[start..end)`. */
export interface RowRange {
  rows: readonly SimMessage[];
  start: number;
  end: number;
}

/** The rows with `gteS <= timestamp <= lteS` (either bound may be absent), by binary search. */
export function timeRange(rows: readonly SimMessage[], gteS?: number, lteS?: number): RowRange {
  return {
    rows,
    start: gteS === undefined ? 0 : boundary(rows, gteS, true),
    end: lteS === undefined ? rows.length : boundary(rows, lteS, false),
  };
}

/** The rows of a range that pass `keep` (a filter no index serves, e.g. `filter.fromMe`): O(range). */
export function filterRange(range: RowRange, keep: (m: SimMessage) => boolean): RowRange {
  const rows = range.rows.slice(range.start, range.end).filter(keep);
  return { rows, start: 0, end: rows.length };
}

function size(range: RowRange): number {
  return range.end - range.start;
}

/**
 * How many rows of `a` are among the first `k` rows of the merge of `a` and `b`, where the merge is by
 * timestamp and `a`'s row comes first on a tie (what a stable sort of `a` then `b` gives). Binary search
 * for the largest count whose last `a` row still precedes the `b` row that would follow it.
 */
function rowsOfFirst(a: RowRange, b: RowRange, k: number): number {
  let low = Math.max(0, k - size(b));
  let high = Math.min(k, size(a));
  while (low < high) {
    const count = (low + high + 1) >>> 1;
    const lastA = a.rows[a.start + count - 1]!;
    if (k - count >= size(b) || lastA.timestampS <= b.rows[b.start + k - count]!.timestampS) low = count;
    else high = count - 1;
  }
  return low;
}

/** A row of a merged page, and whether it came from the second range. */
export interface MergedRow {
  message: SimMessage;
  fromSecond: boolean;
}

/**
 * Positions `[from, to)` (clamped) of the merge of `a` and `b` (see rowsOfFirst), ascending:
 * O(log n + to - from). `b` absent: a plain slice of `a`.
 */
export function mergedSlice(a: RowRange, b: RowRange | undefined, from: number, to: number): MergedRow[] {
  const total = size(a) + (b ? size(b) : 0);
  const first = Math.max(0, Math.min(from, total));
  const last = Math.max(first, Math.min(to, total));
  const out: MergedRow[] = [];
  if (!b) {
    for (let n = a.start + first; n < a.start + last; n++)
      out.push({ message: a.rows[n]!, fromSecond: false });
    return out;
  }
  let i = a.start + rowsOfFirst(a, b, first);
  let j = b.start + (first - (i - a.start));
  for (let n = first; n < last; n++) {
    const x = i < a.end ? a.rows[i] : undefined;
    const y = j < b.end ? b.rows[j] : undefined;
    if (x !== undefined && (y === undefined || x.timestampS <= y.timestampS)) {
      out.push({ message: x, fromSecond: false });
      i++;
    } else {
      out.push({ message: y!, fromSecond: true });
      j++;
    }
  }
  return out;
}

/** The dataset's chats by id, in dataset order; rebuilt after a relink. */
export function chatsById(dataset: Dataset): Map<string, SimChat[]> {
  let byId = chatsByIdOf.get(dataset);
  if (byId === undefined) {
    byId = new Map();
    for (const chat of dataset.chats) {
      const same = byId.get(chat.id);
      if (same) same.push(chat);
      else byId.set(chat.id, [chat]);
    }
    chatsByIdOf.set(dataset, byId);
  }
  return byId;
}
