import type { ChatRecord, MessageRecord, TimeWindow } from '../domain.js';
import { WahaRefusedError, WahaResponseError } from '../errors.js';
import { redactUrl } from '../util/redact.js';
import {
  createWahaHttp,
  HttpRefusal,
  isEmptyLoadCrash,
  refusalToError,
  type HttpOptions,
  type HttpStats,
} from './http.js';
import { type LidMap } from './ids.js';
import {
  parseChats,
  parseLids,
  parseMessages,
  parseSession,
  parseVersion,
  type SessionInfo,
  type VersionInfo,
} from './parse.js';

/** The deployment this tool is built for refuses more than 100 messages per request. */
export const MAX_PAGE_SIZE = 100;

/**
 * When is a chat finished? NOWEB and GOWS page over raw rows and then drop reactions, edits and protocol
 * messages, so a page shorter than the limit (even an empty one) does not prove the chat is over: only
 * an empty page does. WEBJS pages are always full, so a short page is the end there.
 * - `empty`: stop at the first empty page (always correct; one extra request per chat);
 * - `short`: stop at the first page shorter than the limit (fewer requests; can miss messages on NOWEB/GOWS);
 * - `auto`: `short` on WEBJS, `empty` otherwise.
 */
export type PageEndRule = 'auto' | 'empty' | 'short';

export interface MessagePage {
  messages: MessageRecord[];
  /**
   * Where this chat continues once this page and every earlier one are committed: the `lte` (unix
   * seconds) of the next request. Every message of the chat in the window newer than it has been sent.
   */
  resumeAtS: number;
  /** True when this was the chat's last page. */
  last: boolean;
  /**
   * The page held at least half the rows asked for (GOWS drops hidden rows after paging, so a page with
   * more history below can be short) and the cursor moved below it: older history most likely follows.
   * Time slicing estimates a chat's size only from such pages.
   */
  full?: boolean;
}

export interface ChatPagingOptions {
  window: TimeWindow;
  pageSize: number;
  pageEnd: 'empty' | 'short';
  /**
   * Under the `empty` rule, how many pages with nothing new in a row end a chat (default 1). On GOWS a
   * page of nothing but hidden rows (reactions, edits) comes back empty, so 1 stops early when a chat
   * holds a run of at least nine tenths of `pageSize` hidden rows (busyShortPage); each step up costs
   * one request more per chat.
   */
  emptyPagesToEnd?: number;
  /** Resume a chat part-way: a `resumeAtS` of a committed page (default: the window's end). */
  resumeAtS?: number;
  /**
   * The window's start as it is now, when it may rise while the chat is paged (a time slice handing its
   * older part to another slice, src/import/slices.ts): every request, filter and end test reads
   * `floor.fromS` anew, so nothing below it is sent once it has risen. Default: `window.fromS`, fixed.
   */
  floor?: { fromS: number };
  /** The session's own id, the sender of its own messages. */
  meId: string | null;
  lids?: LidMap;
  /**
   * WAHA 2026.3.1+ merges a person's `@lid` and phone-number histories unless told not to. Sent
   * explicitly either way; see the README ("Engines") for why the default is true.
   */
  merge?: boolean;
  signal?: AbortSignal;
}

export interface ChatListOptions {
  /** Chats per listing request on engines whose listing can be paged safely (NOWEB, GOWS). */
  pageSize: number;
  /** The session's engine; WEBJS (and an unknown engine) is listed in one request. */
  engine: string | null;
  lids?: LidMap;
}

/** What paging a chat cost beyond plain pages, for the summary and the bench. */
export interface PagingStats {
  /** Seconds holding a full page of messages, read whole (twice at least) by offset. */
  denseSeconds: number;
  /** Chats paged by offset because the server ignored `filter.timestamp.lte`. */
  lteIgnored: number;
  /** Pages read again because more messages vanished between two requests than the pages overlap. */
  stepBacks: number;
  /** Requests WEBJS failed for an empty window (#1885) that its newest message showed empty. */
  emptyWindows: number;
}

/** What paging holds in memory, for tests and the bench: it must not grow with the history. */
export interface PagingMemory {
  /**
   * The most message ids one chat's paging remembered at once (to send nothing twice): about a page when
   * paging by time, whatever the chat's length; the whole chat on a server that ignores `lte`.
   */
  peakIdsPerChat: number;
}

export interface WahaClient {
  readonly stats: HttpStats;
  readonly paging: PagingStats;
  readonly memory: PagingMemory;
  readonly displayUrl: string;
  /** `GET /api/server/version` (or the deprecated `/api/version` of older servers); null when neither exists. */
  version(signal?: AbortSignal): Promise<VersionInfo | null>;
  session(name: string, signal?: AbortSignal): Promise<SessionInfo>;
  /** Fails with a precise message unless the session exists and is WORKING. */
  requireWorkingSession(name: string, signal?: AbortSignal): Promise<SessionInfo>;
  listSessions(signal?: AbortSignal): Promise<SessionInfo[]>;
  /** Every `@lid` the session can map to a phone number; empty when the engine has no lid endpoints. */
  lids(session: string, signal?: AbortSignal): Promise<{ map: LidMap; available: boolean }>;
  listChats(session: string, options: ChatListOptions, signal?: AbortSignal): Promise<ChatRecord[]>;
  chatMessages(session: string, chat: ChatRecord, options: ChatPagingOptions): AsyncGenerator<MessagePage>;
  /**
   * How far WAHA's clock runs from this machine's (ms, positive: ahead), by the `Date` of its last
   * answer; 0 while they agree within CLOCK_TOLERANCE_MS or WAHA sent no date.
   */
  clockSkewMs(): number;
}

export interface WahaClientOptions extends HttpOptions {
  /** A guard against a server that never stops sending pages. */
  maxPagesPerChat?: number;
}

/**
 * Pages in a row that bring nothing new (every item already seen in this listing) before the server is
 * taken to ignore `offset`. One such page can happen when many items arrive ahead of the reader between
 * two requests; two in a row cannot, short of a server that answers every offset with the same page.
 */
export const MAX_STALE_PAGES = 2;

/** A WEBJS answer refused as an empty load (see answerOrEmptyWindow). */
const EMPTY_LOAD = Symbol('empty load');
/**
 * Requests for the newest message at or before `lte` that may fail as an empty load in a row (each loads
 * 50 more messages into WEBJS's browser: 5,000 in all) before the request is tried as any failed one.
 */
const MAX_EMPTY_LOADS = 100;

/**
 * Seconds before the second a page was asked in (on WAHA's clock as its `Date` shows it, this machine's
 * when they agree within CLOCK_TOLERANCE_MS) from which a message on it counts as dated at the request
 * itself (see confirmTimesStored): the rounding of two clocks, and what the tolerance leaves.
 */
export const REQUEST_TIME_SLACK_S = 2;

/** Lid pages asked at once after the first came back full. */
const LID_PAGES_AHEAD = 4;

/** Counts consecutive non-empty pages without a single unseen key. */
function stalePages(): (keys: string[]) => number {
  const seen = new Set<string>();
  let stale = 0;
  return (keys) => {
    let fresh = 0;
    for (const key of keys) {
      if (!seen.has(key)) {
        seen.add(key);
        fresh++;
      }
    }
    stale = keys.length > 0 && fresh === 0 ? stale + 1 : 0;
    return stale;
  };
}

export function resolvePageEnd(rule: PageEndRule, engine: string | undefined): 'empty' | 'short' {
  if (rule !== 'auto') return rule;
  return engine === 'WEBJS' ? 'short' : 'empty';
}

/**
 * One chat cannot be paged safely (its messages change faster than they can be read): a failure of that
 * chat, not of the run.
 */
export class ChatPagingError extends WahaResponseError {}

/** The least time the one-request WEBJS chat list is given (whatever --request-timeout says). */
export const CHAT_LIST_TIMEOUT_MS = 10 * 60_000;

/**
 * A page that is not full, all in one second, with this many rows: hidden rows dropped after paging may
 * have filled the rest of it while older history follows (see pageChat). More than a tenth of the page
 * (and at least 2): the second is read whole and the chat goes on below it, a request or three more. At
 * most a tenth is taken as the chat's end, as any page with nothing new is: what that misses is a run of
 * at least nine tenths of a page of hidden rows, what `--empty-pages` reads past.
 */
export function busyShortPage(rows: number, pageSize: number): boolean {
  return rows >= 2 && rows * 10 > pageSize;
}

/** Passes over one dense second (see readSecond) before the chat is failed as unreadable. */
export const MAX_SECOND_PASSES = 6;
/** Times a chat may step back because rows vanished faster than pages overlap, before it is failed. */
const MAX_STEP_BACKS = 50;

/**
 * The `nth` page size of passes over one dense second: the chat's page size first, then smaller by an
 * eighth of it each time, so the page bounds of two passes fall on different rows (a store ordering the
 * second per bound hides rows next to a bound; see readSecond).
 */
export function secondPageSize(pageSize: number, nth: number): number {
  return Math.max(1, pageSize - (nth - 1) * Math.max(1, Math.round(pageSize / 8)));
}

/**
 * Whether some run of the latest passes (each the set of ids one exact pass served) holds exactly `count`
 * distinct ids: every row of a second that kept `count` rows. Runs that start earlier hold more, so the
 * search stops at the first run past `count` (a row deleted since would be in it).
 */
function unionReaches(passes: Array<Set<string>>, count: number): boolean {
  const union = new Set<string>(passes[passes.length - 1]);
  for (let i = passes.length - 2; i >= 0; i--) {
    for (const id of passes[i]!) union.add(id);
    if (union.size === count) return true;
    if (union.size > count) return false;
  }
  return false;
}

export function createWahaClient(options: WahaClientOptions): WahaClient {
  const displayUrl = redactUrl(options.baseUrl);
  const http = createWahaHttp(options);
  const maxPagesPerChat = options.maxPagesPerChat ?? 100_000;
  const paging: PagingStats = { denseSeconds: 0, lteIgnored: 0, stepBacks: 0, emptyWindows: 0 };
  /**
   * Whether messages are stored at the time they are served with, asked of messages newer than `lte`
   * (see confirmLteIgnored) and of messages dated at the second they were asked in (confirmTimesStored):
   * each asked once per client, by the first chat that meets one; the chats meeting one meanwhile wait.
   */
  const storedTimes = new Map<'newer than lte' | 'at the request', Promise<WahaResponseError | null>>();
  const memory: PagingMemory = { peakIdsPerChat: 0 };
  const enc = encodeURIComponent;

  async function get(
    path: string,
    query: Record<string, string | number | boolean>,
    what: string,
    signal?: AbortSignal,
    timeoutMs?: number,
    split = false,
  ) {
    try {
      return await (split ? http.getJsonElements : http.getJson)(path, query, signal, timeoutMs);
    } catch (error) {
      if (error instanceof HttpRefusal) throw refusalToError(error, what, displayUrl);
      throw error;
    }
  }

  async function session(name: string, signal?: AbortSignal): Promise<SessionInfo> {
    const path = `/api/sessions/${enc(name)}`;
    return parseSession(await get(path, {}, `session "${name}"`, signal), `GET ${path}`);
  }

  async function versionAt(path: string, signal?: AbortSignal): Promise<VersionInfo | null> {
    try {
      return parseVersion(await http.getJson(path, {}, signal), `GET ${path}`);
    } catch (error) {
      if (error instanceof HttpRefusal && error.status === 404) return null;
      if (error instanceof HttpRefusal) throw refusalToError(error, 'the version endpoint', displayUrl);
      throw error;
    }
  }

  /**
   * NOWEB and GOWS sort the listing by id when asked, a total order that does not move as chats get
   * messages: pages overlap by one chat, and a page that does not hold the previous page's last chat
   * (it was deleted, or chats before it vanished) is read again one page earlier, so no chat is skipped.
   */
  async function listChatsById(
    sessionName: string,
    path: string,
    listOptions: ChatListOptions,
    signal?: AbortSignal,
  ): Promise<ChatRecord[]> {
    const byId = new Map<string, ChatRecord>();
    const stale = stalePages();
    const pageSize = Math.max(2, listOptions.pageSize);
    let previousLast: string | undefined;
    let stepBacks = 0;
    for (let offset = 0, page = 0; ; page++) {
      if (page >= maxPagesPerChat) {
        throw new WahaResponseError(
          `GET ${path} kept sending pages past ${offset} chats`,
          'Check the WAHA server.',
        );
      }
      const query = { limit: pageSize, offset, sortBy: 'id', sortOrder: 'asc' };
      const chats = parseChats(
        await get(path, query, `session "${sessionName}"`, signal, undefined, true),
        `GET ${path}`,
        sessionName,
        listOptions.lids,
      );
      if (previousLast !== undefined && chats.length > 0 && !chats.some((c) => c.id === previousLast)) {
        if (++stepBacks > MAX_STEP_BACKS) {
          throw new WahaResponseError(
            `GET ${path} kept shifting under the listing (${stepBacks} pages read again)`,
            'Chats are being deleted faster than they can be listed; run again later.',
          );
        }
        offset = Math.max(0, offset - (pageSize - 1));
        previousLast = undefined;
        continue;
      }
      for (const chat of chats) byId.set(chat.id, chat);
      // A page that is not full ends the listing: it starts at the previous page's last chat (checked
      // above), and ids are in order, so it holds every chat from there to the end of the list.
      if (chats.length < pageSize) break;
      if (stale(chats.map((chat) => chat.id)) >= MAX_STALE_PAGES) {
        throw new WahaResponseError(
          `GET ${path} answered offsets up to ${offset} with chats it had already sent: it seems to ignore offset`,
          'Check the WAHA version, and that nothing between this tool and WAHA rewrites the query string.',
        );
      }
      previousLast = chats[chats.length - 1]!.id;
      offset += chats.length - 1;
    }
    return [...byId.values()];
  }

  return {
    stats: http.stats,
    clockSkewMs: () => http.clockSkewMs(),
    paging,
    memory,
    displayUrl,

    async version(signal) {
      // /api/version is deprecated; servers older than /api/server/version only have that one.
      return (await versionAt('/api/server/version', signal)) ?? (await versionAt('/api/version', signal));
    },

    session,

    async requireWorkingSession(name, signal) {
      const info = await session(name, signal);
      if (info.status !== 'WORKING') {
        const what: Record<string, string> = {
          STOPPED: 'Start it in WAHA (POST /api/sessions/{name}/start) and wait until it is WORKING.',
          STARTING: 'It is still starting; wait until its status is WORKING and run again.',
          SCAN_QR_CODE:
            'Scan its QR code with the phone (WAHA dashboard or GET /api/{name}/auth/qr), then run again.',
          FAILED: 'Restart it in WAHA and check the WAHA logs for why it failed.',
        };
        throw new WahaRefusedError(
          `WAHA session "${name}" is ${info.status}, not WORKING: its chats cannot be read`,
          (what[info.status] ?? 'Bring the session to WORKING and run again.').replaceAll('{name}', name),
        );
      }
      return info;
    },

    async listSessions(signal) {
      const body = await get('/api/sessions', { all: true }, 'the session list', signal);
      if (!Array.isArray(body))
        throw new WahaResponseError('GET /api/sessions did not answer with a list', 'Check --waha-url.');
      return body.map((item) => parseSession(item, 'GET /api/sessions'));
    },

    async lids(sessionName, signal) {
      const path = `/api/${enc(sessionName)}/lids`;
      const map = new Map<string, string>();
      const pageSize = 1000;
      const stale = stalePages();
      const page = async (offset: number): Promise<Array<{ lid: string; pn: string | null }> | null> => {
        try {
          return parseLids(await http.getJson(path, { limit: pageSize, offset }, signal), `GET ${path}`);
        } catch (error) {
          // Engines and versions without lid endpoints: ids stay as WAHA sends them.
          if (error instanceof HttpRefusal && (error.status === 404 || error.status === 501)) return null;
          if (error instanceof HttpRefusal)
            throw refusalToError(error, `the lid list of session "${sessionName}"`, displayUrl);
          throw error;
        }
      };
      // The first page, then LID_PAGES_AHEAD pages at once while they come back full: a few thousand
      // lids take two round trips, not one per thousand (the chat list is read meanwhile).
      for (let offset = 0, ahead = 1; ; ahead = LID_PAGES_AHEAD) {
        const pages = await Promise.all(Array.from({ length: ahead }, (_, i) => page(offset + i * pageSize)));
        if (pages[0] === null) return { map, available: false };
        let ended = false;
        for (const entries of pages) {
          // A later page refused as the first was not: taken as the end (no lid endpoint would 404 all).
          if (entries === null) {
            ended = true;
            break;
          }
          for (const { lid, pn } of entries) if (pn !== null) map.set(lid, pn);
          if (entries.length < pageSize) {
            ended = true;
            break;
          }
          if (stale(entries.map((e) => e.lid)) >= MAX_STALE_PAGES) {
            throw new WahaResponseError(
              `GET ${path} answered offsets up to ${offset} with entries it had already sent`,
              'Check the WAHA version.',
            );
          }
          offset += pageSize;
        }
        if (ended) break;
      }
      return { map, available: true };
    },

    async listChats(sessionName, listOptions, signal) {
      const path = `/api/${enc(sessionName)}/chats`;
      if (listOptions.engine === 'NOWEB' || listOptions.engine === 'GOWS') {
        return listChatsById(sessionName, path, listOptions, signal);
      }
      // WEBJS lists chats in WhatsApp Web's own order whatever the sort asked for, and that order shifts
      // as chats get messages: pages of it can skip a chat. Without a limit it sends every chat at once,
      // which can take minutes past ~1,000 chats: that one request may take CHAT_LIST_TIMEOUT_MS.
      const chats = parseChats(
        await get(
          path,
          {},
          `session "${sessionName}"`,
          signal,
          Math.max(options.requestTimeoutMs, CHAT_LIST_TIMEOUT_MS),
          true,
        ),
        `GET ${path}`,
        sessionName,
        listOptions.lids,
      );
      return [...new Map(chats.map((chat) => [chat.id, chat])).values()];
    },

    chatMessages(sessionName, chat, pagingOptions) {
      return pageChat(sessionName, chat, pagingOptions);
    },
  };

  /**
   * A chat's messages in the window, newest first, by keyset on the timestamp: each request asks for
   * the newest `pageSize` messages at or before a cursor (`lte`), and the next cursor is the oldest
   * second on the page. Whatever the server deletes or adds meanwhile, every message in (oldest, cursor]
   * was on the page (it outranks a row that was), so consecutive pages leave no gap; the boundary second
   * is asked again and de-duplicated by id. Offsets are used only inside one second that fills a page
   * (read whole, pass after pass, until a pass brings nothing new), to look past runs of hidden rows,
   * and for servers that ignore `lte` (then with overlapping pages).
   */
  async function* pageChat(
    sessionName: string,
    chat: ChatRecord,
    opts: ChatPagingOptions,
  ): AsyncGenerator<MessagePage> {
    const L = opts.pageSize;
    if (L < 1 || L > MAX_PAGE_SIZE) throw new RangeError(`page size ${L} outside 1..${MAX_PAGE_SIZE}`);
    const path = `/api/${enc(sessionName)}/chats/${enc(chat.id)}/messages`;
    const endpoint = `GET /api/${sessionName}/chats/${chat.id}/messages`;
    const what = `chat ${chat.id} of session "${sessionName}"`;
    const { toS } = opts.window;
    const floor = opts.floor ?? { fromS: opts.window.fromS };
    const context = {
      session: sessionName,
      chat,
      meId: opts.meId,
      ...(opts.lids ? { lids: opts.lids } : {}),
    };
    const extraEmptyPages = opts.pageEnd === 'empty' ? Math.max(0, (opts.emptyPagesToEnd ?? 1) - 1) : 0;
    let requests = 0;
    /**
     * WEBJS answers 500 when none of the messages loaded in its browser pass the filter (#1885): a chat whose
     * messages all predate the window, with more than the few loaded, did so on every try (each try loads a
     * chunk more), six retries a chat, and five such chats in a row stopped the run; so did a chat whose
     * loaded messages are all newer than `lte` (a resumed run, a WAHA restarted), for as many tries as
     * chunks lie between. Such an answer is not retried. Instead the newest message at or before `lte` is
     * asked for, without `gte` (each such request loads one chunk more, and fails the same way while all
     * that is loaded is newer than `lte`; MAX_EMPTY_LOADS of them at most): none at all, or one older than
     * `gte`, and the window is empty for this chat (the loaded messages are the newest ones); one inside
     * it, and the loaded messages now reach the window: the request is asked again as any other.
     */
    const answerOrEmptyWindow = async (
      query: Record<string, string | number | boolean>,
      gteS: number,
    ): Promise<unknown> => {
      const once = async (asked: Record<string, string | number | boolean>): Promise<unknown> => {
        try {
          return await http.getJson(path, asked, opts.signal, undefined, isEmptyLoadCrash);
        } catch (error) {
          if (!(error instanceof HttpRefusal)) throw error;
          if (!isEmptyLoadCrash(error.status, error.body)) throw refusalToError(error, what, displayUrl);
          return EMPTY_LOAD;
        }
      };
      const first = await once(query);
      if (first !== EMPTY_LOAD) return first;
      const { ['filter.timestamp.gte']: _gte, ...withoutGte } = query;
      for (let loads = 1; loads <= MAX_EMPTY_LOADS; loads++) {
        countRequest();
        const answer = await once({ ...withoutGte, offset: 0, limit: 1 });
        if (answer === EMPTY_LOAD) continue;
        const newestS = parseMessages(answer, endpoint, context)[0]?.timestampS;
        if (newestS === undefined || (newestS !== null && newestS < gteS)) {
          paging.emptyWindows++;
          return [];
        }
        break;
      }
      // Inside the window, or still failing after MAX_EMPTY_LOADS loads: the request as any other.
      countRequest();
      return get(path, query, what, opts.signal);
    };
    const countRequest = (): void => {
      if (++requests > maxPagesPerChat) {
        throw new WahaResponseError(
          `${endpoint} kept sending pages past ${maxPagesPerChat} requests`,
          'The server seems to ignore offset or the time filter; check the WAHA version.',
        );
      }
    };
    /** The second (the importer's clock) the last page was asked in. */
    let askedS = 0;
    const fetchPage = async (
      lteS: number,
      offset: number,
      gteS = floor.fromS,
      limit = L,
    ): Promise<MessageRecord[]> => {
      countRequest();
      // On WAHA's clock: #2139 dates your messages at the request by it.
      askedS = Math.floor((Date.now() + http.clockSkewMs()) / 1000);
      const query = {
        limit,
        offset,
        downloadMedia: false,
        sortBy: 'timestamp',
        sortOrder: 'desc',
        'filter.timestamp.gte': gteS,
        'filter.timestamp.lte': lteS,
        merge: opts.merge ?? true,
      };
      const rows = parseMessages(await answerOrEmptyWindow(query, gteS), endpoint, context);
      if (rows.length > limit) {
        throw new WahaResponseError(
          `${endpoint} sent ${rows.length} messages for limit ${limit}`,
          'The server ignores limit; check the WAHA version.',
        );
      }
      return rows;
    };
    // The window is the contract: a server that ignores the filter must not widen the import.
    const inWindow = (m: MessageRecord): boolean =>
      m.timestampS === null || (m.timestampS >= floor.fromS && m.timestampS <= toS);
    const startS = Math.min(opts.resumeAtS ?? toS, toS);
    let cursor = startS;
    /**
     * Ids sent for this chat that a later request can serve again, with their second: those at the
     * cursor's second (asked again) and those without any time. Every request asks `lte <= cursor`, so
     * a row newer than the cursor never comes back and its id is forgotten when the cursor moves: this
     * holds about a page of ids, not the whole chat.
     */
    const recent = new Map<string, number | null>();
    const take = (rows: MessageRecord[]): MessageRecord[] => {
      const fresh: MessageRecord[] = [];
      for (const m of rows) {
        if (recent.has(m.id)) continue;
        recent.set(m.id, m.timestampS);
        if (inWindow(m)) fresh.push(m);
      }
      memory.peakIdsPerChat = Math.max(memory.peakIdsPerChat, recent.size);
      return fresh;
    };
    const moveCursor = (toSecond: number): void => {
      cursor = toSecond;
      for (const [id, second] of recent) if (second !== null && second > toSecond) recent.delete(id);
    };
    /**
     * Paging by offset from here on (the server ignores `lte`, or sends no time at all). What paging by
     * time already sent is not sent again: every row in (cursor, startS] it read (a row arriving in a
     * second it had read already comes with the next run, as when paging by time), and the ids it
     * still holds. Offset pages overlap, and arrivals push rows down by any number of pages, so this
     * fallback remembers every id it sends for the chat.
     */
    const byOffset = (firstRows: MessageRecord[]): AsyncGenerator<MessagePage> => {
      const switchS = cursor;
      const sentByOffset = new Set<string>();
      const takeByOffset = (rows: MessageRecord[]): MessageRecord[] => {
        const fresh: MessageRecord[] = [];
        for (const m of rows) {
          if (recent.has(m.id) || sentByOffset.has(m.id)) continue;
          if (m.timestampS !== null && m.timestampS > switchS && m.timestampS <= startS) continue;
          sentByOffset.add(m.id);
          if (inWindow(m)) fresh.push(m);
        }
        memory.peakIdsPerChat = Math.max(memory.peakIdsPerChat, recent.size + sentByOffset.size);
        return fresh;
      };
      return pageByOffset(fetchPage, takeByOffset, opts, floor, toS, firstRows, endpoint);
    };
    const ignoresLte = (rows: MessageRecord[], lteS: number): boolean =>
      rows.some((m) => m.timestampS !== null && m.timestampS > lteS);
    /**
     * A page for `lte` held messages newer than it: the server ignores `lte` (some WEBJS, #2164), or the
     * times it sends are not the ones it filters on (NOWEB 2026.6.2 sends your own messages with the time of
     * the request, #2139), and then those messages would be dropped as outside the window. Asked once per
     * client: the newest few of them must come back for `gte` = their own time. If none does, the run
     * stops: their real time cannot be read from this server.
     */
    /**
     * Asks the newest few of `suspects` again with `gte` = their own time: a server whose times are the
     * ones it stores sends at least one of them again; one that sends another time (#2139) sends none.
     */
    const storedTimesCheck = async (
      suspects: MessageRecord[],
      sentFor: string,
    ): Promise<WahaResponseError | null> => {
      const newer = suspects.sort((a, b) => b.timestampS! - a.timestampS!).slice(0, Math.min(3, L));
      const fromS = newer[newer.length - 1]!.timestampS!;
      const again = new Set((await fetchPage(newer[0]!.timestampS!, 0, fromS)).map((m) => m.id));
      if (newer.some((m) => again.has(m.id))) return null;
      const m = newer[0]!;
      return new WahaResponseError(
        `${endpoint} sent message ${m.id} with timestamp ${m.timestampS} ${sentFor}, and not for filter.timestamp.gte=${fromS}: the times it sends are not the ones it stores`,
        'WAHA NOWEB 2026.6.2 sends the time of the request as the time of your own messages (#2139), so their real time cannot be read: upgrade WAHA and run again.',
      );
    };
    /** Awaits a verdict asked once per client; a check that failed (WAHA unavailable) is asked again. */
    const awaitVerdict = async (
      question: 'newer than lte' | 'at the request',
      ask: () => Promise<WahaResponseError | null>,
    ): Promise<void> => {
      const verdict = storedTimes.get(question) ?? ask();
      storedTimes.set(question, verdict);
      let refusal: WahaResponseError | null;
      try {
        refusal = await verdict;
      } catch (error) {
        // The check itself failed (WAHA unavailable): the next chat to meet such a message asks again.
        if (storedTimes.get(question) === verdict) storedTimes.delete(question);
        throw error;
      }
      if (refusal !== null) throw refusal;
    };
    const confirmLteIgnored = async (rows: MessageRecord[], lteS: number): Promise<void> => {
      paging.lteIgnored++;
      await awaitVerdict('newer than lte', () =>
        storedTimesCheck(
          rows.filter((m) => m.timestampS !== null && m.timestampS > lteS),
          `for filter.timestamp.lte=${lteS}`,
        ),
      );
    };
    /**
     * A page whose `lte` is not before the second it was asked in (the chat's newest page, asked in the
     * window's last seconds: a window ending when the run starts) cannot show a server dating messages at
     * the request (#2139) by a time newer than `lte`: such a time is inside the window, and would be
     * stored as the message's. So a message dated at the second of its request, or REQUEST_TIME_SLACK_S
     * before, is asked again the same way, once per client (a true one, just arrived, comes back).
     */
    const confirmTimesStored = async (rows: MessageRecord[], lteS: number): Promise<void> => {
      const pageAskedS = askedS;
      const fromS = pageAskedS - REQUEST_TIME_SLACK_S;
      if (lteS < fromS) return;
      const suspects = rows.filter(
        (m) => m.timestampS !== null && m.timestampS >= fromS && m.timestampS <= lteS,
      );
      if (suspects.length === 0) return;
      await awaitVerdict('at the request', () =>
        storedTimesCheck(suspects, `on a page asked for at ${pageAskedS}`),
      );
    };

    if (cursor < floor.fromS) {
      yield { messages: [], resumeAtS: cursor, last: true };
      return;
    }
    for (;;) {
      let rows = await fetchPage(cursor, 0);
      if (ignoresLte(rows, cursor)) {
        await confirmLteIgnored(rows, cursor);
        yield* byOffset(rows);
        return;
      }
      await confirmTimesStored(rows, cursor);
      let capacity = L;
      // Nothing new on a page that is not full: the chat is over, unless (GOWS) hidden rows filled it.
      for (let probe = 1; probe <= extraEmptyPages && rows.length < capacity; probe++) {
        if (rows.some((m) => !recent.has(m.id))) break;
        const more = await fetchPage(cursor, probe * L);
        if (ignoresLte(more, cursor)) {
          await confirmLteIgnored(more, cursor);
          yield* byOffset(rows);
          return;
        }
        await confirmTimesStored(more, cursor);
        rows = rows.concat(more);
        capacity += L;
      }
      const full = rows.length >= capacity;
      const fresh = take(rows);
      if (rows.length === 0 || (opts.pageEnd === 'short' && !full)) {
        yield { messages: fresh, resumeAtS: cursor, last: true };
        return;
      }
      let oldestS: number | undefined;
      for (const m of rows)
        if (m.timestampS !== null && (oldestS === undefined || m.timestampS < oldestS))
          oldestS = m.timestampS;
      if (oldestS === undefined) {
        // Not one timestamp on the page (not even in `_data`): time cannot move the cursor, offsets can.
        yield* byOffset(rows);
        return;
      }
      if (oldestS < cursor) {
        const reachedStart = oldestS < floor.fromS;
        yield { messages: fresh, resumeAtS: oldestS, last: reachedStart, full: rows.length * 2 >= L };
        if (reachedStart) return;
        moveCursor(oldestS);
        continue;
      }
      // Every row is in the cursor's second.
      if (!full && !busyShortPage(rows.length, L)) {
        if (fresh.length === 0) {
          yield { messages: [], resumeAtS: cursor, last: true };
          return;
        }
        // Asked again: a page that brings nothing new ends the chat (a few rows of one second on a short
        // page: at most a tenth of it, see busyShortPage).
        yield { messages: fresh, resumeAtS: cursor, last: false };
        continue;
      }
      // A full page of one second, or a busy one on a page that is not full. NOWEB and GOWS drop hidden
      // rows (reactions, edits, a revoked message's REVOKE row, dated at its second) after paging: the rest
      // of such a page may have been hidden rows of this second or just below it, with older history
      // behind them. Asked again, the same page would come, and the chat ended there (a second of 70
      // messages over 30 hidden rows lost everything older, the run succeeding). Either way the second is
      // read whole, and the chat goes on below it.
      yield { messages: fresh, resumeAtS: cursor, last: false };
      paging.denseSeconds++;
      yield* readSecond(fetchPage, take, cursor, L, opts.pageEnd, extraEmptyPages, endpoint);
      moveCursor(cursor - 1);
      if (cursor < floor.fromS) {
        yield { messages: [], resumeAtS: cursor, last: true };
        return;
      }
    }
  }

  /**
   * One second that holds at least a full page (or more than a tenth of a short one, see busyShortPage):
   * many messages share it and nothing orders them, so it is read by offset inside `gte = lte = second`,
   * whole, pass after pass (after a pass that served a row twice, with a smaller page: `secondPageSize`).
   * Two things can hide a message from a pass:
   * - the second changes during it (a deletion pulls rows up past the reader);
   * - the store orders the second's rows differently per request (WAHA sorts by timestamp alone; on
   *   PostgreSQL or MongoDB storage a page's bound decides which rows of the second it straddles fall
   *   inside): some rows come twice and as many never, the same on every pass of one page size.
   * A pass that is exact (every page full until a short one, nothing after it) counts the second. The
   * second is read when a pass brings nothing new and served no row twice (no sign of either), or when
   * the last exact passes that counted the same number of rows served, between them, exactly that many
   * distinct rows (every row of an unchanged second). Otherwise, after MAX_SECOND_PASSES, the chat fails.
   */
  async function* readSecond(
    fetchPage: (lteS: number, offset: number, gteS?: number, limit?: number) => Promise<MessageRecord[]>,
    take: (rows: MessageRecord[]) => MessageRecord[],
    secondS: number,
    L: number,
    pageEnd: 'empty' | 'short',
    extraEmptyPages: number,
    endpoint: string,
  ): AsyncGenerator<MessagePage> {
    /** The ids served by each of the last exact passes that counted the same rows, oldest first. */
    let exact: { count: number; passes: Array<Set<string>> } | null = null;
    // A pass that served no row twice gives no reason to move the bounds: the next keeps its page size.
    let sizes = 1;
    for (let pass = 1; pass <= MAX_SECOND_PASSES; pass++) {
      const size = secondPageSize(L, sizes);
      let brought = 0;
      let previousIds = '';
      let emptyInARow = 0;
      const served = new Set<string>();
      let count = 0;
      let twice = 0;
      let shortSeen = false;
      let isExact = true;
      for (let offset = 0; ; offset += size) {
        const page = await fetchPage(secondS, offset, secondS, size);
        // A server ignoring lte sends newer rows too: they belong to seconds already read.
        const rows = page.filter((m) => m.timestampS === null || m.timestampS === secondS);
        const ids = page.map((m) => m.id).join('\n');
        if (page.length > 0 && page.length < size && ids === previousIds) {
          // The same short page again: a server that ignores offset (nothing more can be read by it here;
          // this second came on a page that was not full, so it was read for the hidden rows it may hold).
          break;
        }
        if (page.length === size && ids === previousIds) {
          throw new WahaResponseError(
            `${endpoint} answered offsets ${offset - size} and ${offset} with the same messages: it seems to ignore offset`,
            'Check the WAHA version, and that nothing between this tool and WAHA rewrites the query string.',
          );
        }
        previousIds = ids;
        // Rows outside the second, or rows after a short page (hidden rows shortened it): not a count.
        if (rows.length < page.length || (shortSeen && page.length > 0)) isExact = false;
        if (page.length < size) shortSeen = true;
        for (const m of rows) {
          count++;
          if (served.has(m.id)) twice++;
          else served.add(m.id);
        }
        const fresh = take(rows);
        brought += fresh.length;
        if (fresh.length > 0) yield { messages: fresh, resumeAtS: secondS, last: false };
        // GOWS: a page of hidden rows comes back empty inside the second too; --empty-pages reads past it.
        emptyInARow = page.length === 0 ? emptyInARow + 1 : 0;
        if (emptyInARow > extraEmptyPages || (pageEnd === 'short' && page.length < size)) break;
      }
      if (brought === 0 && twice === 0) return;
      if (twice > 0) sizes++;
      if (!isExact) {
        exact = null;
        continue;
      }
      if (exact === null || exact.count !== count) exact = { count, passes: [] };
      exact.passes.push(served);
      if (exact.passes.length >= 2 && unionReaches(exact.passes, count)) return;
    }
    throw new ChatPagingError(
      `${endpoint}: the messages of second ${secondS} (${new Date(secondS * 1000).toISOString()}) could not be read completely in ${MAX_SECOND_PASSES} full reads`,
      'Messages were being added or deleted in that second while it was read, or WAHA orders the messages of one second differently from one request to the next (PostgreSQL or MongoDB storage): run again later; if it repeats, that second cannot be read by this WAHA.',
    );
  }

  /**
   * For servers that ignore `lte` (some WEBJS versions): newest first by offset, each page overlapping the
   * one before by a quarter. Arrivals push rows down (read twice, sent once); deletions pull them up, and
   * a page holding no row already read means more vanished than the overlap: it steps back and reads
   * again. A resumed run restarts such a chat from its newest message.
   */
  async function* pageByOffset(
    fetchPage: (lteS: number, offset: number, gteS?: number) => Promise<MessageRecord[]>,
    take: (rows: MessageRecord[]) => MessageRecord[],
    opts: ChatPagingOptions,
    floor: { fromS: number },
    toS: number,
    firstRows: MessageRecord[],
    endpoint: string,
  ): AsyncGenerator<MessagePage> {
    const L = opts.pageSize;
    const overlap = Math.max(1, Math.floor(L / 4));
    const read = new Set<string>();
    const stale = stalePages();
    let stepBacks = 0;
    let rows = firstRows;
    let offset = 0;
    for (;;) {
      // Pages overlap by a quarter: pages in a row with nothing unread come only from a server answering
      // every offset alike (a proxy dropping the query), which would otherwise be read forever.
      if (stale(rows.map((m) => m.id)) >= MAX_STALE_PAGES) {
        throw new WahaResponseError(
          `${endpoint} answered offsets up to ${offset} with messages it had already sent: it seems to ignore offset`,
          'Check the WAHA version, and that nothing between this tool and WAHA rewrites the query string.',
        );
      }
      if (offset > 0 && rows.length > 0 && !rows.some((m) => read.has(m.id))) {
        if (++stepBacks > MAX_STEP_BACKS) {
          throw new ChatPagingError(
            `messages of chat kept vanishing faster than pages overlap (${stepBacks} pages read again)`,
            'Run again later.',
          );
        }
        paging.stepBacks++;
        offset = Math.max(0, offset - (L - overlap));
        rows = await fetchPage(toS, offset);
        continue;
      }
      for (const m of rows) read.add(m.id);
      const fresh = take(rows);
      const last =
        rows.length === 0 ||
        (opts.pageEnd === 'short' && rows.length < L) ||
        rows.some((m) => m.timestampS !== null && m.timestampS < floor.fromS);
      yield { messages: fresh, resumeAtS: toS, last };
      if (last) return;
      offset += L - overlap;
      rows = await fetchPage(toS, offset);
    }
  }
}
