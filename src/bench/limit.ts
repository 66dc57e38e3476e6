/**
 * The physical limit of an import: the time WAHA's latency and capacity alone force, whatever the
 * importer does. With
 *   L   the median latency of one request,
 *   C   WAHA's capacity (requests it serves at once; more only queue),
 *   S   requests that must happen one after another before any message can be fetched (version,
 *       session, the pages of the chat list),
 *   R   message requests (every page of every chat, the final empty page included),
 *   P   the pages of the longest chat (a slice's pages are requested one after another),
 *   M   the time slices one chat may be read in at once (src/import/slices.ts; 1 without slicing),
 * the import cannot finish sooner than
 *   T_limit = L × (S + max(⌈R / C⌉, ⌈P / M⌉))
 * since R requests need at least ⌈R/C⌉ rounds of L at full capacity, and the longest chat needs ⌈P/M⌉
 * rounds in a row however wide the rest goes. Writing is assumed free: where the limit is far below the
 * measured time, the database (or the importer) is what is left to win.
 */
export interface LimitInputs {
  latencyMs: number;
  capacity: number;
  sequentialRequests: number;
  messageRequests: number;
  longestChatPages: number;
  /** M: slices per chat at once; absent or 1: none. */
  maxSlices?: number;
}

export function physicalLimitMs(inputs: LimitInputs): number {
  const { latencyMs, capacity, sequentialRequests, messageRequests, longestChatPages } = inputs;
  const slices = Math.max(1, inputs.maxSlices ?? 1);
  if (!(latencyMs >= 0) || !(capacity >= 1)) throw new RangeError('latency must be >= 0 and capacity >= 1');
  const rounds = Number.isFinite(capacity)
    ? Math.ceil(messageRequests / capacity)
    : messageRequests > 0
      ? 1
      : 0;
  return latencyMs * (sequentialRequests + Math.max(rounds, Math.ceil(longestChatPages / slices)));
}

/** Pages a chat needs when paging newest first until an empty page: hidden rows count, as WAHA pages raw rows. */
export function pagesForChat(rawRowsInWindow: number, visibleRowsInWindow: number, pageSize: number): number {
  if (visibleRowsInWindow === 0) return 1;
  // Pages are cut over raw rows; the last page holding a visible row is followed by one more request.
  return Math.ceil(rawRowsInWindow / pageSize) + 1;
}
