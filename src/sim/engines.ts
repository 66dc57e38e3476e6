/**
 * Engine profiles: what one WAHA engine (NOWEB, GOWS, WEBJS) does differently, as data plus a few small
 * behaviours that the one simulator applies. Facts come from WAHA's source and issue tracker (see
 * docs/waha-api.md in the shared docs); each knob names the issue or release it models, so a test can
 * pick a specific WAHA version by overriding knobs (`startSimulator({ engine, profile: {...} })`).
 */

import { mix32 } from './random.js';

export type Engine = 'NOWEB' | 'WEBJS' | 'GOWS';
export const ENGINES: readonly Engine[] = ['NOWEB', 'WEBJS', 'GOWS'];

/**
 * What happens to reactions, edits and protocol messages stored beside real messages:
 * - `never-stored`: the engine never keeps them (NOWEB), so pages are full until the end;
 * - `dropped-after-paging`: limit/offset count them, then they are dropped (GOWS): short and even empty
 *   pages while history remains;
 * - `dropped-before-paging`: removed before limit/offset (WEBJS), so pages are full.
 */
export type HiddenRows = 'never-stored' | 'dropped-after-paging' | 'dropped-before-paging';

/** How the chat list is ordered when no (or an ignored) sort is asked for. */
export type ChatOrder =
  /** NOWEB's default: newest activity first; sortBy/sortOrder honoured. */
  | 'conversationTimestamp-desc'
  /** GOWS's default: chat id ascending; sortBy/sortOrder honoured. */
  | 'id-asc'
  /**
   * WhatsApp Web's own order (WEBJS): the chat that last received a message first, whatever its
   * timestamp; sortBy/sortOrder are ignored, and the order shifts while a client pages through it.
   */
  | 'web-activity';

/**
 * How the rows of one second are ordered. WAHA sorts messages by timestamp alone (no tie-breaker) and
 * pages with LIMIT/OFFSET in its store:
 * - `stable`: one fixed order whatever the request (an index scan, as SQLite, the default store, serves
 *   it);
 * - `bounded-sort`: the order of a second's rows depends on the request's bound (offset + limit), the
 *   same for the same request: PostgreSQL (and MongoDB) storage sort by timestamp with a top-N sort
 *   that keeps the first `offset + limit` rows, and which rows of the second that straddles the bound it
 *   keeps changes with the bound. Paging one second by offset then serves some rows twice and others
 *   never, identically on every pass (measured on PostgreSQL 15 with WAHA's own query: 997 distinct of
 *   1,000 rows of one second in 100-row pages, and 996 in 99-row pages).
 */
export type TieOrder = 'stable' | 'bounded-sort';

/** What "deleted for everyone" (a revoke) does to the stored message. */
export type RevokeEffect =
  /** NOWEB deletes the row (#1895): later offset pages shift by one. */
  | 'delete-row'
  /** GOWS keeps the message and stores a hidden REVOKE protocol row beside it. */
  | 'protocol-row'
  /** WEBJS keeps the row as a placeholder: `type: "revoked"`, body null. */
  | 'revoked-placeholder';

export interface EngineProfile {
  engine: Engine;
  /** What `GET /api/server/version` reports. */
  version: string;
  /** `GET /api/version` (deprecated) still answers; false: 404, as on a server that removed it. */
  legacyVersionRoute: boolean;
  /**
   * WAHA Core (the free tier): only the session named `default` exists; another name on chat routes is a
   * 422 naming the restriction, and the version reports tier CORE (else PLUS).
   */
  coreTier: boolean;
  hiddenRows: HiddenRows;
  /** `sortOrder=asc` on messages is honoured (NOWEB, GOWS); false: always newest first (WEBJS). */
  honoursAsc: boolean;
  /**
   * #1912 (NOWEB): the rows of a page are the right rows (selected by timestamp) but come back in no
   * particular order within the page; deterministic per request.
   */
  shufflesPage: boolean;
  /** The order of rows sharing a second across requests (see TieOrder); a property of the store. */
  tieOrder: TieOrder;
  chatOrder: ChatOrder;
  /** NOWEB leaves chats without a `conversationTimestamp` (no message yet) out of the chat list. */
  omitsChatsWithoutTimestamp: boolean;
  /** GOWS: share of messages (chosen by the dataset seed) served with `timestamp: null`. */
  nullTimestampShare: number;
  /** GOWS: ack ERROR (-1) is served as `ack: null`. */
  ackErrorAsNull: boolean;
  /** WAHA 2026.4.1 WEBJS (#2024): with `filter.timestamp.gte`, `timestamp` is absent (`_data.t` has it). */
  dropsTimestampWithGte: boolean;
  /** #2164 (some WEBJS versions): `filter.timestamp.lte` is ignored. */
  ignoresLte: boolean;
  /**
   * WEBJS getMessages (#1885, #1805): the page is taken from the messages loaded in the browser, which
   * grow by a chunk of earlier ones (WEBJS_LOAD_CHUNK) while fewer than offset + limit pass the filter;
   * after a load it reads `.t` of the oldest that passed, so a filter that leaves none of what is loaded
   * (a chat whose messages all predate `gte`, with more than the loaded ones) answers 500 (TypeError
   * "reading 't'"). Each such request leaves one more chunk loaded: a chat answers so until its whole
   * history is loaded.
   */
  crashesOnEmptyLoad: boolean;
  /**
   * #2139 (NOWEB 2026.6.2): your own messages are served with the second of the request as `timestamp`
   * and `_data.messageTimestamp`; the filters and the order still use the stored time. Their real time
   * cannot be read from such a server.
   */
  ownTimestampsAtRequest: boolean;
  /**
   * 2026.3.1+: the `merge` query parameter (default true) joins a person's `@lid` and `@c.us` histories;
   * false: the parameter is ignored and only the asked chat is served.
   */
  supportsMerge: boolean;
  /** The `/lids` endpoints exist; false: they answer 501 (WEBJS). */
  implementsLids: boolean;
  /** Share of people whose lid the lids endpoints cannot map to a phone number (pn null). */
  unknownLidShare: number;
  /**
   * Chats whose every messages request answers 500: WEBJS's TypeError reading `waitForChatLoading` of a
   * chat not opened in the session (#2005, #2013, #2020), whatever the engine imitated.
   */
  failingChats: readonly string[];
  revoke: RevokeEffect;
}

/** The release the profiles model; `-sim` so nobody mistakes the simulator for a real server. */
export const SIM_WAHA_VERSION = '2026.4.1-sim';

const COMMON = {
  version: SIM_WAHA_VERSION,
  legacyVersionRoute: true,
  coreTier: false,
  supportsMerge: true,
  failingChats: Object.freeze([]) as readonly string[],
  ignoresLte: false,
  crashesOnEmptyLoad: false,
  ownTimestampsAtRequest: false,
  dropsTimestampWithGte: false,
  nullTimestampShare: 0,
  ackErrorAsNull: false,
  unknownLidShare: 0.1,
  // SQLite, the stores' default; tests pick `bounded-sort` for a server on PostgreSQL or MongoDB storage.
  tieOrder: 'stable',
} as const;

export const ENGINE_PROFILES: Readonly<Record<Engine, Readonly<EngineProfile>>> = Object.freeze({
  NOWEB: Object.freeze<EngineProfile>({
    ...COMMON,
    engine: 'NOWEB',
    hiddenRows: 'never-stored',
    honoursAsc: true,
    shufflesPage: true,
    chatOrder: 'conversationTimestamp-desc',
    omitsChatsWithoutTimestamp: true,
    implementsLids: true,
    revoke: 'delete-row',
  }),
  GOWS: Object.freeze<EngineProfile>({
    ...COMMON,
    engine: 'GOWS',
    hiddenRows: 'dropped-after-paging',
    honoursAsc: true,
    shufflesPage: false,
    chatOrder: 'id-asc',
    omitsChatsWithoutTimestamp: false,
    nullTimestampShare: 0.03,
    ackErrorAsNull: true,
    implementsLids: true,
    revoke: 'protocol-row',
  }),
  WEBJS: Object.freeze<EngineProfile>({
    ...COMMON,
    engine: 'WEBJS',
    hiddenRows: 'dropped-before-paging',
    honoursAsc: false,
    shufflesPage: false,
    chatOrder: 'web-activity',
    omitsChatsWithoutTimestamp: false,
    dropsTimestampWithGte: true,
    crashesOnEmptyLoad: true,
    implementsLids: false,
    revoke: 'revoked-placeholder',
  }),
});

const HIDDEN_ROWS: readonly HiddenRows[] = ['never-stored', 'dropped-after-paging', 'dropped-before-paging'];
const CHAT_ORDERS: readonly ChatOrder[] = ['conversationTimestamp-desc', 'id-asc', 'web-activity'];
const REVOKE_EFFECTS: readonly RevokeEffect[] = ['delete-row', 'protocol-row', 'revoked-placeholder'];
const TIE_ORDERS: readonly TieOrder[] = ['stable', 'bounded-sort'];

/** The engine's profile with `overrides` applied (undefined values ignored); throws naming bad knobs. */
export function resolveProfile(engine: Engine, overrides: Partial<EngineProfile> = {}): EngineProfile {
  if (!ENGINES.includes(engine)) throw new RangeError(`engine must be one of ${ENGINES.join(', ')}`);
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
  const p: EngineProfile = { ...ENGINE_PROFILES[engine], ...defined, engine };
  const problems: string[] = [];
  for (const key of ['nullTimestampShare', 'unknownLidShare'] as const) {
    if (!(p[key] >= 0 && p[key] <= 1)) problems.push(`profile.${key} must be between 0 and 1`);
  }
  if (!HIDDEN_ROWS.includes(p.hiddenRows))
    problems.push(`profile.hiddenRows must be one of ${HIDDEN_ROWS.join(', ')}`);
  if (!CHAT_ORDERS.includes(p.chatOrder))
    problems.push(`profile.chatOrder must be one of ${CHAT_ORDERS.join(', ')}`);
  if (!REVOKE_EFFECTS.includes(p.revoke))
    problems.push(`profile.revoke must be one of ${REVOKE_EFFECTS.join(', ')}`);
  if (!TIE_ORDERS.includes(p.tieOrder))
    problems.push(`profile.tieOrder must be one of ${TIE_ORDERS.join(', ')}`);
  if (!Array.isArray(p.failingChats) || p.failingChats.some((c) => typeof c !== 'string')) {
    problems.push('profile.failingChats must be a list of chat ids');
  }
  if (typeof p.version !== 'string' || p.version === '') problems.push('profile.version must be a string');
  if (problems.length > 0) throw new RangeError(`invalid engine profile: ${problems.join('; ')}`);
  return { ...p, failingChats: [...p.failingChats] };
}

/** What `/api/server/version` answers. */
export function versionInfo(profile: EngineProfile): { version: string; engine: Engine; tier: string } {
  return { version: profile.version, engine: profile.engine, tier: profile.coreTier ? 'CORE' : 'PLUS' };
}

/** A uniform number in [0, 1) fixed by `seed` and `text`: deterministic per message or per person. */
export function unitHash(seed: number, text: string): number {
  let h = mix32(seed ^ 0x2545f491);
  for (let i = 0; i < text.length; i++) h = mix32((h ^ text.charCodeAt(i)) >>> 0);
  return h / 4294967296;
}

/** One `lid ↔ phone` pair as the lids endpoints serve it; `pn` null when the server cannot tell. */
export interface LidMapping {
  lid: string;
  pn: string | null;
}

/**
 * The session's hidden-person ids. Every person has a lid (GOWS shows people by it); the server knows the
 * phone behind most of them, not all. Phones are stored as `NUMBER@c.us`.
 */
export class LidBook {
  private readonly byLid = new Map<string, string | null>();
  private readonly byPhone = new Map<string, string>();
  private changes = 0;

  constructor(
    private readonly seed: number,
    private readonly unknownShare: number,
  ) {}

  /** The person's lid, invented (deterministic from the seed) on first use. */
  lidOf(phone: string): string {
    const known = this.byPhone.get(phone);
    if (known !== undefined) return known;
    let salt = 0;
    let lid: string;
    do {
      // 15 digits like real lids, starting with 2 so they rarely meet the dataset's random ones.
      const a = mix32((unitHash(this.seed, `${phone}#${salt++}`) * 4294967296) >>> 0);
      lid = `2${String(a).padStart(10, '0')}${String(a % 10_000).padStart(4, '0')}@lid`;
    } while (this.byLid.has(lid));
    this.byPhone.set(phone, lid);
    this.changes++;
    // Which mappings the server cannot tell is a property of the person, fixed by the seed.
    this.byLid.set(lid, unitHash(this.seed ^ 0x51ed, phone) < this.unknownShare ? null : phone);
    return lid;
  }

  /** Registers a lid whose phone is unknown (a dataset `@lid` chat or participant). */
  addUnknown(lid: string): void {
    if (!this.byLid.has(lid)) {
      this.byLid.set(lid, null);
      this.changes++;
    }
  }

  /** Records that `lid` is `phone` (relinkChat): both lookups now agree. */
  link(lid: string, phone: string): void {
    const previous = this.byPhone.get(phone);
    if (previous !== undefined && previous !== lid) this.byLid.delete(previous);
    this.byPhone.set(phone, lid);
    this.byLid.set(lid, phone);
    this.changes++;
  }

  /** Changes whenever a mapping is added or changed: what a cache of lookups over the book keys on. */
  get revision(): number {
    return this.changes;
  }

  /** The phone behind a lid as the endpoint tells it: null when unknown or not a lid of this session. */
  phoneOf(lid: string): string | null {
    return this.byLid.get(lid) ?? null;
  }

  has(lid: string): boolean {
    return this.byLid.has(lid);
  }

  /** The lid of a phone the server knows about (no invention); null otherwise. */
  knownLidOf(phone: string): string | null {
    const lid = this.byPhone.get(phone);
    return lid !== undefined && this.byLid.get(lid) === phone ? lid : null;
  }

  /** Every mapping, in the order the people were met. */
  all(): LidMapping[] {
    return [...this.byLid].map(([lid, pn]) => ({ lid, pn }));
  }
}
