import type { ChatRecord, MessageRecord, TimeWindow } from '../domain.js';
import { WahaRefusedError, WahaResponseError } from '../errors.js';
import { redactUrl } from '../util/redact.js';
import { createWahaHttp, HttpRefusal, refusalToError, type HttpOptions, type HttpStats } from './http.js';
import {
  parseChats,
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
  /** Offset the page was requested at; the next page starts at offset + limit. */
  offset: number;
  /** True when this was the chat's last page under the page-end rule. */
  last: boolean;
}

export interface ChatPagingOptions {
  window: TimeWindow;
  pageSize: number;
  pageEnd: 'empty' | 'short';
  /**
   * Under the `empty` rule, how many empty pages in a row end a chat (default 1). A page of nothing but
   * hidden rows also comes back empty on NOWEB/GOWS, so 1 stops early when a chat holds a run of at least
   * `pageSize` hidden rows (a burst of reactions); 2 costs one request more per chat.
   */
  emptyPagesToEnd?: number;
  /** Resume a chat part-way: the offset of the first page not yet committed. */
  startOffset?: number;
  signal?: AbortSignal;
}

export interface WahaClient {
  readonly stats: HttpStats;
  readonly displayUrl: string;
  version(signal?: AbortSignal): Promise<VersionInfo | null>;
  session(name: string, signal?: AbortSignal): Promise<SessionInfo>;
  /** Fails with a precise message unless the session exists and is WORKING. */
  requireWorkingSession(name: string, signal?: AbortSignal): Promise<SessionInfo>;
  listSessions(signal?: AbortSignal): Promise<SessionInfo[]>;
  listChats(session: string, pageSize: number, signal?: AbortSignal): Promise<ChatRecord[]>;
  chatMessages(session: string, chat: ChatRecord, options: ChatPagingOptions): AsyncGenerator<MessagePage>;
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

export function createWahaClient(options: WahaClientOptions): WahaClient {
  const displayUrl = redactUrl(options.baseUrl);
  const http = createWahaHttp(options);
  const maxPagesPerChat = options.maxPagesPerChat ?? 100_000;
  const enc = encodeURIComponent;

  async function get(
    path: string,
    query: Record<string, string | number | boolean>,
    what: string,
    signal?: AbortSignal,
  ) {
    try {
      return await http.getJson(path, query, signal);
    } catch (error) {
      if (error instanceof HttpRefusal) throw refusalToError(error, what, displayUrl);
      throw error;
    }
  }

  async function session(name: string, signal?: AbortSignal): Promise<SessionInfo> {
    const path = `/api/sessions/${enc(name)}`;
    return parseSession(await get(path, {}, `session "${name}"`, signal), `GET ${path}`);
  }

  return {
    stats: http.stats,
    displayUrl,

    async version(signal) {
      try {
        return parseVersion(await http.getJson('/api/version', {}, signal), 'GET /api/version');
      } catch (error) {
        // Old servers have no /api/version; the engine then stays unknown and paging stays on the safe rule.
        if (error instanceof HttpRefusal && error.status === 404) return null;
        if (error instanceof HttpRefusal) throw refusalToError(error, 'the version endpoint', displayUrl);
        throw error;
      }
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

    async listChats(sessionName, pageSize, signal) {
      const path = `/api/${enc(sessionName)}/chats`;
      const byId = new Map<string, ChatRecord>();
      const stale = stalePages();
      // Sorted by id so a chat that becomes active mid-listing does not shift the pages; a listing may
      // still repeat a chat when one is created meanwhile, hence the map. Only an empty page ends it.
      for (let offset = 0, page = 0; ; offset += pageSize, page++) {
        if (page >= maxPagesPerChat) {
          throw new WahaResponseError(
            `GET ${path} kept sending pages past ${page * pageSize} chats`,
            'Check the WAHA server.',
          );
        }
        const query = { limit: pageSize, offset, sortBy: 'id', sortOrder: 'asc' };
        const chats = parseChats(
          await get(path, query, `session "${sessionName}"`, signal),
          `GET ${path}`,
          sessionName,
        );
        for (const chat of chats) byId.set(chat.id, chat);
        if (chats.length === 0) break;
        if (stale(chats.map((chat) => chat.id)) >= MAX_STALE_PAGES) {
          throw new WahaResponseError(
            `GET ${path} answered offsets up to ${offset} with chats it had already sent: it seems to ignore offset`,
            'Check the WAHA version, and that nothing between this tool and WAHA rewrites the query string.',
          );
        }
      }
      return [...byId.values()];
    },

    async *chatMessages(sessionName, chat, paging) {
      if (paging.pageSize < 1 || paging.pageSize > MAX_PAGE_SIZE) {
        throw new RangeError(`page size ${paging.pageSize} outside 1..${MAX_PAGE_SIZE}`);
      }
      const path = `/api/${enc(sessionName)}/chats/${enc(chat.id)}/messages`;
      const endpoint = `GET /api/${sessionName}/chats/${chat.id}/messages`;
      const stale = stalePages();
      let emptyInARow = 0;
      for (let offset = paging.startOffset ?? 0, page = 0; ; offset += paging.pageSize, page++) {
        if (page >= maxPagesPerChat) {
          throw new WahaResponseError(
            `${endpoint} kept sending pages past offset ${offset}`,
            'The server seems to ignore offset; check the WAHA version.',
          );
        }
        const query = {
          limit: paging.pageSize,
          offset,
          downloadMedia: false,
          sortBy: 'timestamp',
          sortOrder: 'desc',
          'filter.timestamp.gte': paging.window.fromS,
          'filter.timestamp.lte': paging.window.toS,
        };
        const body = await get(path, query, `chat ${chat.id} of session "${sessionName}"`, paging.signal);
        const received = parseMessages(body, endpoint, sessionName, chat.id);
        if (received.length > paging.pageSize) {
          throw new WahaResponseError(
            `${endpoint} sent ${received.length} messages for limit ${paging.pageSize}`,
            'The server ignores limit; check the WAHA version.',
          );
        }
        if (stale(received.map((m) => m.id)) >= MAX_STALE_PAGES) {
          throw new WahaResponseError(
            `${endpoint} answered offsets up to ${offset} with messages it had already sent: it seems to ignore offset`,
            'Check the WAHA version, and that nothing between this tool and WAHA rewrites the query string.',
          );
        }
        // The window is the contract: a server that ignores the filter must not widen the import, and a
        // newest-first page reaching below the window start means nothing older is wanted.
        const { fromS, toS } = paging.window;
        const messages = received.filter((m) => m.timestampS >= fromS && m.timestampS <= toS);
        emptyInARow = received.length === 0 ? emptyInARow + 1 : 0;
        const last =
          emptyInARow >= (paging.emptyPagesToEnd ?? 1) ||
          received.some((m) => m.timestampS < fromS) ||
          (paging.pageEnd === 'short' && received.length < paging.pageSize);
        yield { messages, offset, last };
        if (last) return;
      }
    },
  };
}
