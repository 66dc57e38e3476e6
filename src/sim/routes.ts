/**
 * What WAHA answers, without the HTTP plumbing: validation, sorting, paging and the engine differences
 * (including the short-page trap), driven by the session's engine profile. Every function is pure over
 * the session's state.
 */

import { toCus, type Dataset, type SimChat, type SimMessage, type WaMessage } from './dataset.js';
import { versionInfo, type EngineProfile, type LidBook } from './engines.js';
import { mulberry32, shuffle } from './random.js';
import {
  chatsById,
  filterRange,
  mergedSlice,
  pagedRows,
  timeRange,
  type MergedRow,
  type RowRange,
} from './lookup.js';
import { canonicalId, engineChat, engineMessage, listedChatId, type EngineMessage } from './shapes.js';

export { ENGINES, type Engine } from './engines.js';

export type SessionStatus = 'STOPPED' | 'STARTING' | 'SCAN_QR_CODE' | 'WORKING' | 'FAILED';
export const SESSION_STATUSES: readonly SessionStatus[] = [
  'STOPPED',
  'STARTING',
  'SCAN_QR_CODE',
  'WORKING',
  'FAILED',
];

export interface MeInfo {
  id: string;
  pushName: string;
}

export interface SimSession {
  name: string;
  status: SessionStatus;
  dataset: Dataset;
  /** Who the session is logged in as; reported only while WORKING, as a real session does. */
  me: MeInfo | null;
  /** The session's engine and its knobs. */
  profile: EngineProfile;
  lids: LidBook;
  /**
   * WhatsApp Web's chat order (WEBJS): chats that received a message while the server ran, by arrival
   * (higher first); the others keep their initial last-activity order behind them.
   */
  activity: Map<SimChat, number>;
  /**
   * WEBJS (`crashesOnEmptyLoad`): how many of each chat's oldest visible messages the browser has not
   * loaded yet (all but WEBJS_INITIALLY_LOADED until a request loads more). Counted from the oldest, so a
   * message arriving while the server runs is loaded, as WhatsApp Web receives it.
   */
  unloaded?: Map<SimChat, number>;
}

export interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export const CHAT_SORT_FIELDS = ['conversationTimestamp', 'id', 'name'] as const;
const MESSAGE_SORT_FIELDS = ['timestamp', 'messageTimestamp'] as const;

export function sessionJson(session: SimSession): unknown {
  return {
    name: session.name,
    status: session.status,
    config: {},
    me: session.status === 'WORKING' ? session.me : null,
    engine: { engine: session.profile.engine },
  };
}

export function badRequest(messages: string[]): Reply {
  return { status: 400, body: { message: messages, error: 'Bad Request', statusCode: 400 } };
}

export function sessionNotFound(name: string): Reply {
  return {
    status: 404,
    body: {
      statusCode: 404,
      message: `We didn't find a session with name '${name}'.\nPlease start it first by using POST /api/sessions/${name}/start request`,
      error: 'Not Found',
    },
  };
}

function unprocessable(message: string): Reply {
  return { status: 422, body: { statusCode: 422, message, error: 'Unprocessable Entity' } };
}

/** Chat routes of a session that does not exist: WAHA's session manager answers 422, never 404. */
export function sessionDoesNotExist(name: string): Reply {
  return unprocessable(`Session "${name}" does not exist`);
}

export function sessionNotRunning(name: string): Reply {
  return unprocessable(
    `Session "${name}" is not running. Start it first with POST /api/sessions/${name}/start`,
  );
}

/** WAHA Core serves only the session named `default`. */
export function coreTierOnlyDefault(name: string): Reply {
  return unprocessable(
    `Session "${name}" is not available in WAHA Core: the Core tier supports only the session named ` +
      `"default". Use "default", or WAHA Plus for more sessions`,
  );
}

export function notWorking(session: SimSession): Reply {
  return {
    status: 422,
    body: {
      error: 'Session status is not as expected. Try again later or restart the session',
      session: session.name,
      status: session.status,
      expected: ['WORKING'],
    },
  };
}

/** Reads query parameters the way WAHA's class-validator DTOs do, collecting every problem. */
class QueryReader {
  readonly problems: string[] = [];
  constructor(private readonly query: URLSearchParams) {}

  integer(name: string, minimum: number, maximum = Infinity): number | undefined {
    const text = this.query.get(name);
    if (text === null) return undefined;
    const value = Number(text);
    if (text.trim() === '' || !Number.isInteger(value)) {
      this.problems.push(`${name} must be an integer number`);
      return undefined;
    }
    if (value < minimum) this.problems.push(`${name} must not be less than ${minimum}`);
    if (value > maximum) this.problems.push(`${name} must not be greater than ${maximum}`);
    return value;
  }

  boolean(name: string): boolean | undefined {
    const text = this.query.get(name);
    if (text === null) return undefined;
    if (text === 'true' || text === '1') return true;
    if (text === 'false' || text === '0') return false;
    this.problems.push(`${name} must be a boolean value`);
    return undefined;
  }

  oneOf<T extends string>(name: string, allowed: readonly T[]): T | undefined {
    const text = this.query.get(name);
    if (text === null) return undefined;
    if ((allowed as readonly string[]).includes(text)) return text as T;
    this.problems.push(`${name} must be one of the following values: ${allowed.join(', ')}`);
    return undefined;
  }
}

/** Any sortOrder is accepted; only `asc` means ascending (WAHA compares with 'asc', the rest is desc). */
function isAscending(query: URLSearchParams): boolean {
  return query.get('sortOrder') === 'asc';
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The chats the engine lists, in its order for this query (before limit/offset). */
function orderedChats(
  session: SimSession,
  sortBy: (typeof CHAT_SORT_FIELDS)[number] | undefined,
  ascending: boolean,
): SimChat[] {
  const profile = session.profile;
  const seen = new Set<string>();
  const chats: Array<{ chat: SimChat; id: string }> = [];
  for (const chat of session.dataset.chats) {
    if (profile.omitsChatsWithoutTimestamp && chat.raw.conversationTimestamp === undefined) continue;
    const id = listedChatId(session, chat);
    // GOWS shows a person's @c.us and @lid chats under one lid: listed once.
    if (seen.has(id)) continue;
    seen.add(id);
    chats.push({ chat, id });
  }
  const activityS = (c: SimChat): number => c.raw.conversationTimestamp ?? 0;
  if (profile.chatOrder === 'web-activity') {
    // WhatsApp Web's own order; the requested sort is ignored.
    const arrival = (c: SimChat): number => session.activity.get(c) ?? 0;
    chats.sort(
      (a, b) =>
        arrival(b.chat) - arrival(a.chat) || activityS(b.chat) - activityS(a.chat) || compareText(a.id, b.id),
    );
    return chats.map((c) => c.chat);
  }
  const field = sortBy ?? (profile.chatOrder === 'id-asc' ? 'id' : 'conversationTimestamp');
  const direction = sortBy === undefined ? (field === 'id' ? 1 : -1) : ascending ? 1 : -1;
  const compare = (a: { chat: SimChat; id: string }, b: { chat: SimChat; id: string }): number => {
    if (field === 'conversationTimestamp') return activityS(a.chat) - activityS(b.chat);
    if (field === 'id') return compareText(a.id, b.id);
    // Unnamed chats sort before named ones ascending, after them descending.
    const [x, y] = [a.chat.name, b.chat.name];
    if (x === null || y === null) return (x === null ? 0 : 1) - (y === null ? 0 : 1);
    return compareText(x, y);
  };
  chats.sort((a, b) => direction * compare(a, b) || compareText(a.id, b.id));
  return chats.map((c) => c.chat);
}

/** The chat list as served for a request without parameters (every chat, the engine's default order). */
export function allChatsJson(session: SimSession): unknown[] {
  return orderedChats(session, undefined, false).map((chat) => engineChat(session, chat));
}

export function listChats(session: SimSession, query: URLSearchParams): Reply {
  const reader = new QueryReader(query);
  const limit = reader.integer('limit', 0);
  const offset = reader.integer('offset', 0) ?? 0;
  const sortBy = reader.oneOf('sortBy', CHAT_SORT_FIELDS);
  if (reader.problems.length > 0) return badRequest(reader.problems);
  // No default limit: without one, every chat.
  const page = orderedChats(session, sortBy, isAscending(query)).slice(
    offset,
    limit === undefined ? undefined : offset + limit,
  );
  return { status: 200, body: page.map((chat) => engineChat(session, chat)) };
}

export interface MessagesContext {
  /** The deployment's cap on `limit` (a proxy's rule, not WAHA's); Infinity for none. */
  maxPageSize: number;
  /** Base for the media URLs WAHA would hand out when asked to download media. */
  baseUrl: string;
  /** WAHA's clock (see SimulatorOptions.clockOffsetS). */
  nowMs: () => number;
  /** The request as WAHA's error filter reports it. */
  request: { path: string; method: string; query: Record<string, string> };
}

/** What the stats record about a messages request, read before any validation can reject it. */
export function messagesQueryFacts(query: URLSearchParams): { limit: number; downloadMedia: boolean } {
  const limitText = query.get('limit');
  const limit = limitText === null || limitText.trim() === '' ? 10 : Number(limitText);
  const downloadMediaText = query.get('downloadMedia');
  return {
    limit: Number.isFinite(limit) ? limit : 0,
    // Absent means true: WAHA downloads media unless told not to.
    downloadMedia: downloadMediaText !== 'false' && downloadMediaText !== '0',
  };
}

/**
 * The dataset chat a messages request means: its own id, NOWEB/GOWS's engine JID for a person, or (GOWS)
 * a lid whose phone is a stored `@c.us` chat.
 */
export function resolveChat(session: SimSession, chatId: string): SimChat | undefined {
  const byId = chatsById(session.dataset);
  const exact = byId.get(chatId)?.[0];
  if (exact || session.profile.engine === 'WEBJS') return exact;
  if (chatId.endsWith('@s.whatsapp.net')) return byId.get(toCus(chatId))?.[0];
  if (session.profile.engine === 'GOWS' && chatId.endsWith('@lid')) {
    const phone = session.lids.phoneOf(chatId);
    if (phone !== null) return byId.get(phone)?.find((c) => c.kind === 'person');
    // A person whose mapping the server cannot tell is still shown by the lid it invented.
    return personsByLid(session).get(chatId);
  }
  return undefined;
}

/** Per session: each person chat by the lid the book gave it, the first in dataset order winning. */
const personsByLidOf = new WeakMap<
  SimSession,
  { chats: Map<string, SimChat[]>; lidsRevision: number; byLid: Map<string, SimChat> }
>();

function personsByLid(session: SimSession): Map<string, SimChat> {
  // Rebuilt when the chats changed (a relink drops the chat index) or the lid book did.
  const chats = chatsById(session.dataset);
  const cached = personsByLidOf.get(session);
  if (cached && cached.chats === chats && cached.lidsRevision === session.lids.revision) return cached.byLid;
  const byLid = new Map<string, SimChat>();
  for (const chat of session.dataset.chats) {
    if (chat.kind !== 'person') continue;
    const lid = session.lids.lidOf(chat.id);
    if (!byLid.has(lid)) byLid.set(lid, chat);
  }
  personsByLidOf.set(session, { chats, lidsRevision: session.lids.revision, byLid });
  return byLid;
}

/** The other half of a person's history split between a `@lid` chat and a `@c.us` chat, if any. */
export function mergePartner(session: SimSession, chat: SimChat): SimChat | undefined {
  if (chat.kind === 'group') return undefined;
  const otherId = chat.kind === 'lid' ? session.lids.phoneOf(chat.id) : session.lids.knownLidOf(chat.id);
  if (otherId === null) return undefined;
  return chatsById(session.dataset)
    .get(otherId)
    ?.find((c) => c !== chat);
}

/**
 * The properties WEBJS reads of undefined in getMessages: `t` of the oldest message passing the filter
 * when none did (#1885, see `crashesOnEmptyLoad`), and `waitForChatLoading` of the loading state of a
 * chat WhatsApp Web has not opened in the session (#2005, #2013, #2020), on every try until the session
 * is restarted: what a failing chat (`failingChats`) answers.
 */
export type WebjsCrash = 't' | 'waitForChatLoading';

/** WAHA's catch-all exception filter answering an engine's TypeError. */
export function engineTypeError(session: SimSession, context: MessagesContext, reading: WebjsCrash): Reply {
  const message = `Cannot read properties of undefined (reading '${reading}')`;
  return {
    status: 500,
    body: {
      statusCode: 500,
      timestamp: new Date().toISOString(),
      exception: {
        message,
        name: 'TypeError',
        stack:
          `TypeError: ${message}\n    at window.WAHA.getMessages (pptr:evaluate;WhatsappWebJs:1:1)\n` +
          '    at ChatsController.getChatMessages (/app/dist/api/chats.controller.js:1:1)',
      },
      request: context.request,
      version: versionInfo(session.profile),
    },
  };
}

interface Row {
  chat: SimChat;
  message: SimMessage;
}

export function listMessages(
  session: SimSession,
  chatId: string,
  query: URLSearchParams,
  context: MessagesContext,
): Reply {
  const profile = session.profile;
  const reader = new QueryReader(query);
  const limit = reader.integer('limit', 0, context.maxPageSize) ?? 10;
  const offset = reader.integer('offset', 0) ?? 0;
  const downloadMedia = reader.boolean('downloadMedia') ?? true;
  reader.oneOf('sortBy', MESSAGE_SORT_FIELDS);
  const gteS = reader.integer('filter.timestamp.gte', 0);
  const lteText = reader.integer('filter.timestamp.lte', 0);
  const fromMe = reader.boolean('filter.fromMe');
  // Before 2026.3.1 the parameter is unknown, so silently dropped like any other.
  const merge = profile.supportsMerge ? (reader.boolean('merge') ?? true) : false;
  if (reader.problems.length > 0) return badRequest(reader.problems);
  const lteS = profile.ignoresLte ? undefined : lteText;

  const chat = resolveChat(session, chatId);
  if (profile.failingChats.includes(chatId) || (chat && profile.failingChats.includes(chat.id))) {
    return engineTypeError(session, context, 'waitForChatLoading');
  }
  if (!chat) return { status: 200, body: [] };

  const partner = merge ? mergePartner(session, chat) : undefined;
  // WEBJS serves from what the browser has loaded, the newest `loaded` messages (all of them, unless the
  // request had no gte). How WAHA merges a person's two WEBJS chats is not modelled: a merged request
  // pages over both whole.
  const loaded =
    profile.crashesOnEmptyLoad && partner === undefined
      ? loadForRequest(session, chat, { gteS, lteS, fromMe, offset, limit })
      : Infinity;
  if (loaded === null) return engineTypeError(session, context, 't');

  // The rows the engine pages over (GOWS counts hidden rows too), selected by timestamp only.
  const withHidden = profile.hiddenRows === 'dropped-after-paging';
  const selected = (c: SimChat): RowRange => {
    const rows = pagedRows(c, withHidden);
    const range = timeRange(rows, gteS, lteS);
    if (c === chat && loaded < rows.length) range.start = Math.max(range.start, rows.length - loaded);
    return fromMe === undefined ? range : filterRange(range, (m) => m.fromMe === fromMe);
  };
  const own = selected(chat);
  const other = partner && selected(partner);
  // Merged by timestamp, each chat's fixed tie order kept and the asked chat first on a tie; newest first
  // unless the engine honours asc. Only the asked page is materialised.
  const total = own.end - own.start + (other ? other.end - other.start : 0);
  const ascending = profile.honoursAsc && isAscending(query);
  const page =
    profile.tieOrder === 'bounded-sort'
      ? boundedSortPage(own, other, total, offset, limit, ascending, () =>
          hashText(`${session.dataset.options.seed}|${chat.id}|${gteS}|${lteS}|${fromMe}|${ascending}`),
        )
      : servedSlice(own, other, total, offset, offset + limit, ascending);
  // GOWS counts hidden rows in limit/offset and drops them afterwards: the short-page trap.
  let rows: Row[] = [];
  for (const { message, fromSecond } of page) {
    if (!message.hidden) rows.push({ chat: fromSecond ? partner! : chat, message });
  }
  if (profile.shufflesPage && rows.length > 1) {
    // #1912: the right rows, in no particular order, the same for the same request.
    const seed = hashText(`${session.dataset.options.seed}|${chat.id}?${[...query].sort().join('&')}`);
    rows = shuffle(mulberry32(seed), [...rows]);
  }
  const shape = {
    ...(downloadMedia
      ? { mediaBase: `${context.baseUrl}/api/files/${encodeURIComponent(session.name)}` }
      : {}),
    gteGiven: gteS !== undefined,
  };
  const served = rows.map((row) => engineMessage(session, row.chat, row.message, shape));
  if (profile.ownTimestampsAtRequest && profile.engine === 'NOWEB') {
    // #2139: the request's second in place of the stored one, for your own messages only.
    const nowS = Math.floor(context.nowMs() / 1000);
    for (let i = 0; i < served.length; i++) {
      const m = served[i] as WaMessage;
      if (m.fromMe) served[i] = { ...m, timestamp: nowS, _data: { ...m._data, messageTimestamp: nowS } };
    }
  }
  return { status: 200, body: served };
}

/** Messages WhatsApp Web has loaded for a chat before any request (the newest, shown in its list). */
export const WEBJS_INITIALLY_LOADED = 1;
/** Earlier messages one `loadEarlierMsgs` brings into the browser. */
export const WEBJS_LOAD_CHUNK = 50;

/**
 * WEBJS getMessages as WAHA runs it in the browser (see `crashesOnEmptyLoad`): while fewer than
 * offset + limit loaded messages pass the filter and earlier ones remain, a chunk more is loaded; if
 * then none passes, reading the oldest one's `.t` throws. Without `gte` it stops after one load. The
 * loaded count persists in the session, as in the browser. Returns how many newest messages are loaded
 * for the page, or null when the request fails so.
 */
function loadForRequest(
  session: SimSession,
  chat: SimChat,
  q: { gteS?: number; lteS?: number; fromMe?: boolean; offset: number; limit: number },
): number | null {
  const rows = pagedRows(chat, false);
  const unloaded = (session.unloaded ??= new Map());
  const before = unloaded.get(chat) ?? Math.max(0, rows.length - WEBJS_INITIALLY_LOADED);
  let count = rows.length - Math.min(before, rows.length);
  const passing = (): number => {
    const range = timeRange(rows, q.gteS, q.lteS);
    const inLoaded = { ...range, start: Math.max(range.start, rows.length - count) };
    if (inLoaded.start >= inLoaded.end) return 0;
    return q.fromMe === undefined
      ? inLoaded.end - inLoaded.start
      : filterRange(inLoaded, (m) => m.fromMe === q.fromMe).end;
  };
  try {
    while (passing() < q.offset + q.limit && count < rows.length) {
      count = Math.min(rows.length, count + WEBJS_LOAD_CHUNK);
      if (passing() === 0) return null;
      if (q.gteS === undefined) break;
    }
    return count;
  } finally {
    unloaded.set(chat, rows.length - count);
  }
}

/** Served positions `[start, end)` (newest first unless `ascending`) of the merge of `a` and `b`. */
function servedSlice(
  a: RowRange,
  b: RowRange | undefined,
  total: number,
  start: number,
  end: number,
  ascending: boolean,
): MergedRow[] {
  if (ascending) return mergedSlice(a, b, start, end);
  const rows = mergedSlice(a, b, total - end, total - start);
  return rows.reverse();
}

/**
 * Rows of one second on each side of a request's bound whose order that bound decides (`bounded-sort`).
 * PostgreSQL's top-N sort keeps the first `offset + limit` rows; of a second that straddles that bound,
 * which rows fall inside depends on the bound. Two on each side: a page boundary inside a dense second
 * then misses one row on average (PostgreSQL missed 3 at 9 boundaries in the measurement of TieOrder).
 */
const BOUND_DISORDER_ROWS = 2;

/**
 * The page `[offset, offset + limit)` of a store that sorts by timestamp alone with a bounded sort (see
 * TieOrder): the served order, except that the rows of the second straddling the bound, within
 * BOUND_DISORDER_ROWS of it, are shuffled by a seed of the request and the bound. The same request
 * always gets the same page; a second's rows are never served out of timestamp order.
 */
function boundedSortPage(
  a: RowRange,
  b: RowRange | undefined,
  total: number,
  offset: number,
  limit: number,
  ascending: boolean,
  requestSeed: () => number,
): MergedRow[] {
  const bound = offset + limit;
  const rows = servedSlice(a, b, total, offset, Math.min(total, bound + BOUND_DISORDER_ROWS), ascending);
  if (limit > 0 && rows.length > limit) {
    const second = rows[limit - 1]!.message.timestampS;
    let first = limit - 1;
    while (first > Math.max(0, limit - BOUND_DISORDER_ROWS) && rows[first - 1]!.message.timestampS === second)
      first--;
    let last = limit;
    while (last < rows.length && rows[last]!.message.timestampS === second) last++;
    if (last > limit) {
      const mixed = shuffle(mulberry32(hashText(`${requestSeed()}|${bound}`)), rows.slice(first, last));
      rows.splice(first, mixed.length, ...mixed);
    }
  }
  return rows.slice(0, limit);
}

export function hashText(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** Every message a request for `window` with merge=false and downloadMedia=false serves, by chat. */
export function servedInWindow(
  session: SimSession,
  window: { fromS: number; toS: number } | undefined,
): Array<{ chat: SimChat; message: SimMessage; served: EngineMessage }> {
  const fromS = window?.fromS ?? -Infinity;
  const toS = window?.toS ?? Infinity;
  const shape = { gteGiven: window !== undefined };
  const out: Array<{ chat: SimChat; message: SimMessage; served: EngineMessage }> = [];
  for (const chat of session.dataset.chats) {
    if (session.profile.failingChats.includes(chat.id)) continue;
    for (const message of chat.messages) {
      if (message.hidden || message.timestampS < fromS || message.timestampS > toS) continue;
      out.push({ chat, message, served: engineMessage(session, chat, message, shape) });
    }
  }
  return out;
}

/** The `/lids` routes; WEBJS does not implement them. */
export function lidsRoute(session: SimSession, path: string[], query: URLSearchParams): Reply {
  if (!session.profile.implementsLids) {
    return {
      status: 501,
      body: {
        statusCode: 501,
        message: `Method not implemented for engine ${session.profile.engine}`,
        error: 'Not Implemented',
      },
    };
  }
  const [first, second] = path;
  if (first === undefined) {
    const reader = new QueryReader(query);
    const limit = reader.integer('limit', 0);
    const offset = reader.integer('offset', 0) ?? 0;
    if (reader.problems.length > 0) return badRequest(reader.problems);
    const known = session.lids.all().filter((m) => m.pn !== null);
    return { status: 200, body: known.slice(offset, limit === undefined ? undefined : offset + limit) };
  }
  if (first === 'pn' && second !== undefined) {
    const pn = `${second.replace(/@.*$/, '').replace(/^\+/, '')}@c.us`;
    return { status: 200, body: { lid: session.lids.knownLidOf(pn), pn } };
  }
  const lid = first.endsWith('@lid') ? first : `${first}@lid`;
  return { status: 200, body: { lid, pn: session.lids.phoneOf(lid) } };
}

/** The canonical chat of a served message (see `canonicalId`). */
export function canonicalChatId(session: SimSession, chatIdServed: string): string {
  return canonicalId(session.profile, session.lids, chatIdServed);
}
