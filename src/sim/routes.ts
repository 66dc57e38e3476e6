/**
 * What WAHA answers, without the HTTP plumbing: validation, sorting, paging and the engine differences
 * (including the short-page trap). Every function is pure over the session's dataset.
 */

import type { Dataset, SimChat, SimMessage, WaMessage } from './dataset.js';

export type Engine = 'NOWEB' | 'WEBJS' | 'GOWS';
export const ENGINES: readonly Engine[] = ['NOWEB', 'WEBJS', 'GOWS'];

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
}

export interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export const CHAT_SORT_FIELDS = ['conversationTimestamp', 'id', 'name'] as const;
const MESSAGE_SORT_FIELDS = ['timestamp', 'messageTimestamp'] as const;
const SORT_ORDERS = ['desc', 'asc'] as const;

export function sessionJson(session: SimSession, engine: Engine): unknown {
  return {
    name: session.name,
    status: session.status,
    config: {},
    me: session.status === 'WORKING' ? session.me : null,
    engine: { engine },
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

/** WEBJS serializes whatsapp-web.js Chat objects: the id is an object and the activity field is `timestamp`. */
function chatJson(chat: SimChat, engine: Engine): unknown {
  if (engine !== 'WEBJS') return { ...chat.raw };
  const [user = '', server = ''] = chat.id.split('@');
  return {
    id: { server, user, _serialized: chat.id },
    // whatsapp-web.js falls back to the formatted number for contacts without a saved name.
    name: chat.name ?? `+${user}`,
    isGroup: chat.kind === 'group',
    isReadOnly: false,
    unreadCount: 0,
    timestamp: chat.raw.conversationTimestamp,
    archived: false,
    pinned: false,
    isMuted: false,
    muteExpiration: 0,
  };
}

export function allChatsJson(session: SimSession, engine: Engine): unknown[] {
  return session.dataset.chats.map((chat) => chatJson(chat, engine));
}

export function listChats(session: SimSession, query: URLSearchParams, engine: Engine): Reply {
  const reader = new QueryReader(query);
  const limit = reader.integer('limit', 0);
  const offset = reader.integer('offset', 0) ?? 0;
  const sortBy = reader.oneOf('sortBy', CHAT_SORT_FIELDS);
  const sortOrder = reader.oneOf('sortOrder', SORT_ORDERS) ?? 'desc';
  if (reader.problems.length > 0) return badRequest(reader.problems);

  const chats = [...session.dataset.chats];
  if (sortBy !== undefined) {
    const direction = sortOrder === 'asc' ? 1 : -1;
    chats.sort((a, b) => direction * compareChats(a, b, sortBy) || compareText(a.id, b.id));
  }
  const page = chats.slice(offset, limit === undefined ? undefined : offset + limit);
  return { status: 200, body: page.map((chat) => chatJson(chat, engine)) };
}

function compareChats(a: SimChat, b: SimChat, field: (typeof CHAT_SORT_FIELDS)[number]): number {
  if (field === 'conversationTimestamp') return a.raw.conversationTimestamp - b.raw.conversationTimestamp;
  if (field === 'id') return compareText(a.id, b.id);
  // Unnamed chats sort before named ones ascending, after them descending.
  if (a.name === null || b.name === null) return (a.name === null ? 0 : 1) - (b.name === null ? 0 : 1);
  return compareText(a.name, b.name);
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export interface MessagesContext {
  engine: Engine;
  maxPageSize: number;
  /** Base for the media URLs WAHA would hand out when asked to download media. */
  baseUrl: string;
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

export function listMessages(
  session: SimSession,
  chatId: string,
  query: URLSearchParams,
  context: MessagesContext,
): Reply {
  const reader = new QueryReader(query);
  const limit = reader.integer('limit', 0, context.maxPageSize) ?? 10;
  const offset = reader.integer('offset', 0) ?? 0;
  const downloadMedia = reader.boolean('downloadMedia') ?? true;
  reader.oneOf('sortBy', MESSAGE_SORT_FIELDS);
  const sortOrder = reader.oneOf('sortOrder', SORT_ORDERS) ?? 'desc';
  const gteS = reader.integer('filter.timestamp.gte', 0);
  const lteS = reader.integer('filter.timestamp.lte', 0);
  const fromMe = reader.boolean('filter.fromMe');
  if (reader.problems.length > 0) return badRequest(reader.problems);

  const chat = session.dataset.chats.find((c) => c.id === chatId);
  if (!chat) return { status: 200, body: [] };

  const matches = (m: SimMessage): boolean =>
    (gteS === undefined || m.timestampS >= gteS) &&
    (lteS === undefined || m.timestampS <= lteS) &&
    (fromMe === undefined || m.fromMe === fromMe);

  let rows: SimMessage[];
  if (context.engine === 'WEBJS') {
    // whatsapp-web.js drops non-messages before paging, and only ever pages newest first.
    rows = chat.messages.filter((m) => !m.hidden && matches(m)).reverse();
    rows = rows.slice(offset, offset + limit);
  } else {
    // NOWEB/GOWS page over every stored row, hidden ones included, and drop hidden rows afterwards:
    // this is the short-page trap (fewer than `limit` rows, even none, while older history exists).
    rows = chat.messages.filter(matches);
    if (sortOrder === 'desc') rows.reverse();
    rows = rows.slice(offset, offset + limit).filter((m) => !m.hidden);
  }
  const body = rows.map((m) => servedMessage(m, downloadMedia ? mediaUrlBase(context, session) : undefined));
  return { status: 200, body };
}

function mediaUrlBase(context: MessagesContext, session: SimSession): string {
  return `${context.baseUrl}/api/files/${encodeURIComponent(session.name)}`;
}

const EXTENSIONS: Record<string, string> = {
  'image/jpeg': 'jpeg',
  'image/webp': 'webp',
  'video/mp4': 'mp4',
  'audio/ogg; codecs=opus': 'oga',
  'application/pdf': 'pdf',
};

/**
 * The message as served. With downloadMedia the media object is filled in, as WAHA does after downloading
 * the file; that variant is a copy, so the dataset itself always keeps `media: null`.
 */
export function servedMessage(message: SimMessage, mediaBase?: string): WaMessage {
  if (mediaBase === undefined || !message.raw.hasMedia) return message.raw;
  const content = Object.values(message.raw._data.message)[0] as
    { mimetype?: string; fileName?: string } | undefined;
  const mimetype = content?.mimetype ?? 'application/octet-stream';
  const media = {
    url: `${mediaBase}/${message.waId}.${EXTENSIONS[mimetype] ?? 'bin'}`,
    mimetype,
    filename: content?.fileName ?? null,
  };
  return { ...message.raw, media };
}
