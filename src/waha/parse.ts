import type { ChatKind, ChatRecord, MessageRecord } from '../domain.js';
import { WahaResponseError } from '../errors.js';
import { canonicalId, EMPTY_LID_MAP, type LidMap } from './ids.js';
import { elementBytes, JsonElements } from './json-source.js';

/**
 * Every WAHA response is checked here before anything else touches it, so a malformed one fails with the
 * endpoint and the field at fault instead of a TypeError deep inside a strategy.
 */

export type SessionStatus = 'STOPPED' | 'STARTING' | 'SCAN_QR_CODE' | 'WORKING' | 'FAILED';
const SESSION_STATUSES: readonly string[] = ['STOPPED', 'STARTING', 'SCAN_QR_CODE', 'WORKING', 'FAILED'];

export interface SessionInfo {
  name: string;
  status: SessionStatus;
  me: { id: string; pushName: string | null } | null;
  /** The session's own engine (`engine.engine`); the server's default engine may differ. */
  engine: string | null;
}

export interface VersionInfo {
  version: string;
  engine: string;
  tier: string | null;
}

/** Unix seconds WhatsApp could plausibly have produced: after its launch and before 2100. */
const MIN_PLAUSIBLE_S = 1_230_768_000;
const MAX_PLAUSIBLE_S = 4_102_444_800;

class Shape {
  constructor(
    private readonly endpoint: string,
    private readonly where: string,
  ) {}

  fail(problem: string): never {
    throw new WahaResponseError(
      `${this.endpoint} sent an unexpected response: ${this.where}${problem}`,
      'This WAHA version or engine answers in a shape this tool does not know. Please report it with this message.',
    );
  }

  object(value: unknown, what = 'the body'): Record<string, unknown> {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      this.fail(`${what} is ${describe(value)}, expected an object`);
    }
    return value as Record<string, unknown>;
  }

  array(value: unknown, what = 'the body'): unknown[] {
    if (!Array.isArray(value)) this.fail(`${what} is ${describe(value)}, expected an array`);
    return value;
  }

  string(record: Record<string, unknown>, key: string): string {
    const value = record[key];
    if (typeof value !== 'string' || value === '')
      this.fail(`'${key}' is ${describe(value)}, expected a non-empty string`);
    return value;
  }

  optionalString(record: Record<string, unknown>, key: string): string | null {
    const value = record[key];
    if (value === undefined || value === null) return null;
    if (typeof value !== 'string') this.fail(`'${key}' is ${describe(value)}, expected a string or null`);
    return value;
  }

  optionalBoolean(record: Record<string, unknown>, key: string): boolean | null {
    const value = record[key];
    if (value === undefined || value === null) return null;
    if (typeof value !== 'boolean') this.fail(`'${key}' is ${describe(value)}, expected true or false`);
    return value;
  }

  timestampS(record: Record<string, unknown>, key: string, required: boolean): number | null {
    const value = record[key];
    if (!required && (value === undefined || value === null || value === 0)) return null;
    if (typeof value !== 'number' || !Number.isInteger(value)) {
      this.fail(`'${key}' is ${describe(value)}, expected whole unix seconds`);
    }
    if (value < MIN_PLAUSIBLE_S || value > MAX_PLAUSIBLE_S) {
      this.fail(`'${key}' is ${value}, which is not unix seconds between 2009 and 2100`);
    }
    return value;
  }
}

function describe(value: unknown): string {
  if (value === undefined) return 'missing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string')
    return `the string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)}`;
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

export function parseSession(body: unknown, endpoint: string): SessionInfo {
  const shape = new Shape(endpoint, '');
  const record = shape.object(body);
  const name = shape.string(record, 'name');
  const status = shape.string(record, 'status');
  if (!SESSION_STATUSES.includes(status))
    shape.fail(`'status' is ${JSON.stringify(status)}, not a known session status`);
  let me: SessionInfo['me'] = null;
  if (record.me !== undefined && record.me !== null) {
    const meRecord = shape.object(record.me, "'me'");
    me = { id: shape.string(meRecord, 'id'), pushName: shape.optionalString(meRecord, 'pushName') };
  }
  let engine: string | null = null;
  if (record.engine !== undefined && record.engine !== null) {
    // Older servers send the engine's name as a string; current ones an object `{engine, ...}`.
    engine =
      typeof record.engine === 'string'
        ? record.engine
        : shape.optionalString(shape.object(record.engine, "'engine'"), 'engine');
  }
  return { name, status: status as SessionStatus, me, engine: engine === null ? null : engine.toUpperCase() };
}

/** `GET /api/{session}/lids`: `[{lid, pn}]`, pn null when WhatsApp has not told the number. */
export function parseLids(body: unknown, endpoint: string): Array<{ lid: string; pn: string | null }> {
  const list = new Shape(endpoint, '').array(body);
  return list.map((item, index) => {
    const shape = new Shape(endpoint, `entry #${index}: `);
    const record = shape.object(item, 'the entry');
    return { lid: shape.string(record, 'lid'), pn: shape.optionalString(record, 'pn') || null };
  });
}

export function parseVersion(body: unknown, endpoint: string): VersionInfo {
  const shape = new Shape(endpoint, '');
  const record = shape.object(body);
  return {
    version: shape.optionalString(record, 'version') ?? 'unknown',
    engine: (shape.optionalString(record, 'engine') ?? 'unknown').toUpperCase(),
    tier: shape.optionalString(record, 'tier'),
  };
}

export function chatKind(id: string): ChatKind {
  const at = id.lastIndexOf('@');
  switch (at < 0 ? '' : id.slice(at + 1)) {
    case 'c.us':
    case 's.whatsapp.net':
      return 'person';
    case 'g.us':
      return 'group';
    case 'lid':
      return 'lid';
    case 'newsletter':
      return 'newsletter';
    case 'broadcast':
      return 'broadcast';
    default:
      return 'other';
  }
}

export function parseChats(
  body: unknown,
  endpoint: string,
  session: string,
  lids: LidMap = EMPTY_LID_MAP,
): ChatRecord[] {
  // A chat item can be big (WEBJS sends the newest message whole and a group's every member), and the
  // list is held for the whole run: each chat's `raw` is kept as the bytes it came in, out of the
  // JavaScript heap, as a message's is. A list split into its items is parsed one item at a time.
  if (body instanceof JsonElements) {
    const chats = new Array<ChatRecord>(body.length);
    for (let index = 0; index < body.length; index++) {
      const bytes = body.bytes(index);
      let item: unknown;
      try {
        item = body.value(index);
      } catch {
        const start = bytes.toString('utf8', 0, 240).slice(0, 60);
        throw new WahaResponseError(
          `${endpoint} answered with malformed JSON (chat #${index}, ${bytes.length} bytes, starting ${JSON.stringify(start)})`,
          'Check that --waha-url points at WAHA; a proxy error page or a truncated body looks like this.',
        );
      }
      chats[index] = parseChat(item, index, endpoint, session, lids, bytes);
    }
    return chats;
  }
  const list = new Shape(endpoint, '').array(body);
  const texts = elementBytes(list);
  return list.map((item, index) => parseChat(item, index, endpoint, session, lids, texts?.[index]));
}

function parseChat(
  item: unknown,
  index: number,
  endpoint: string,
  session: string,
  lids: LidMap,
  bytes: Buffer | undefined,
): ChatRecord {
  const shape = new Shape(endpoint, `chat #${index}: `);
  const record = shape.object(item, 'the chat');
  // WEBJS sends the id as an object whose `_serialized` is the string the other engines send.
  const rawId = record.id;
  const id =
    rawId !== null && typeof rawId === 'object' && !Array.isArray(rawId)
      ? shape.string(rawId as Record<string, unknown>, '_serialized')
      : shape.string(record, 'id');
  const activityKey = record.conversationTimestamp !== undefined ? 'conversationTimestamp' : 'timestamp';
  const lastActivityS = shape.timestampS(record, activityKey, false);
  const chatId = canonicalId(id, lids);
  return {
    session,
    id,
    chatId,
    name: shape.optionalString(record, 'name'),
    kind: chatKind(chatId),
    lastActivityAt: lastActivityS === null ? null : new Date(lastActivityS * 1000),
    raw: bytes === undefined ? item : undefined,
    rawJson: bytes,
  };
}

/** A chat listed before the lid map was known, with its stored id and kind as that map makes them. */
export function withLids(chat: ChatRecord, lids: LidMap): ChatRecord {
  const chatId = canonicalId(chat.id, lids);
  return chatId === chat.chatId ? chat : { ...chat, chatId, kind: chatKind(chatId) };
}

const SERIALIZED_ID = /^(true|false)_([^_]+)_([^_]+)(?:_(.+))?$/;

/** Maps the engine's raw message kind to one word; NOWEB keeps it as the single key of `_data.message`. */
const NOWEB_TYPES: Readonly<Record<string, string>> = {
  conversation: 'text',
  extendedTextMessage: 'text',
  imageMessage: 'image',
  videoMessage: 'video',
  audioMessage: 'audio',
  documentMessage: 'document',
  documentWithCaptionMessage: 'document',
  stickerMessage: 'sticker',
  locationMessage: 'location',
  liveLocationMessage: 'location',
  contactMessage: 'vcard',
  contactsArrayMessage: 'vcard',
  pollCreationMessage: 'poll',
  reactionMessage: 'reaction',
  protocolMessage: 'protocol',
};

function messageType(record: Record<string, unknown>): string {
  const data = record._data;
  if (data && typeof data === 'object') {
    const raw = data as Record<string, unknown>;
    if (typeof raw.type === 'string' && raw.type !== '') return raw.type === 'chat' ? 'text' : raw.type;
    // NOWEB: `_data.message`; GOWS (whatsmeow): `_data.Message`, keyed the same way.
    const message = raw.message ?? raw.Message;
    if (message && typeof message === 'object') {
      for (const key of Object.keys(message)) {
        const known = NOWEB_TYPES[key];
        if (key === 'audioMessage' && (message as Record<string, { ptt?: unknown }>)[key]?.ptt === true)
          return 'ptt';
        if (known) return known;
      }
    }
  }
  if (record.location) return 'location';
  if (Array.isArray(record.vCards) && record.vCards.length > 0) return 'vcard';
  return record.hasMedia === true ? 'media' : 'text';
}

/** What parsing a chat's messages needs besides the body. */
export interface MessageContext {
  session: string;
  /** The chat the page was asked for; a merged history may hold messages of its other id form. */
  chat: Pick<ChatRecord, 'id' | 'chatId'>;
  /** The session's own id (`me.id`): the sender of every `fromMe` message. Null when WAHA did not say. */
  meId: string | null;
  lids?: LidMap;
}

export function parseMessages(body: unknown, endpoint: string, context: MessageContext): MessageRecord[] {
  const lids = context.lids ?? EMPTY_LID_MAP;
  const meId = context.meId === null ? null : canonicalId(context.meId, lids);
  const list = new Shape(endpoint, '').array(body);
  // Each message's own bytes, when the body's are known: stored as `raw` as they came.
  const texts = elementBytes(list);
  return list.map((item, index) => {
    const shape = new Shape(endpoint, `message #${index}: `);
    const record = shape.object(item, 'the message');
    const id = shape.string(record, 'id');
    const parsedId = SERIALIZED_ID.exec(id);
    const fromMe = shape.optionalBoolean(record, 'fromMe') ?? parsedId?.[1] === 'true';
    const body = record.body;
    if (body !== undefined && body !== null && typeof body !== 'string') {
      shape.fail(`'body' is ${describe(body)}, expected a string or null`);
    }
    const ack = record.ack;
    if (
      ack !== undefined &&
      ack !== null &&
      !(typeof ack === 'number' && Number.isInteger(ack) && ack >= -1 && ack <= 4)
    ) {
      shape.fail(`'ack' is ${describe(ack)}, expected a whole number from -1 to 4 or null`);
    }
    let replyToId: string | null = null;
    if (record.replyTo !== undefined && record.replyTo !== null) {
      replyToId = shape.optionalString(shape.object(record.replyTo, "'replyTo'"), 'id');
    }
    // The id names the chat the message lives in; with `merge` that can be the other id form of the chat
    // asked for, and both forms are one stored chat.
    const chatId = parsedId ? canonicalId(parsedId[2]!, lids) : context.chat.chatId;
    // In the stored form like the chat and the sender: one person, one id, whatever the engine says.
    const rawParticipant = shape.optionalString(record, 'participant');
    const participant = rawParticipant === null ? null : canonicalId(rawParticipant, lids);
    return {
      session: context.session,
      id,
      chatId,
      waId: parsedId?.[3] ?? rawKeyId(record) ?? id,
      fromMe,
      // NOWEB and GOWS put the chat in `from` even for your own messages, so `from` is never the sender.
      sender: fromMe ? meId : (participant ?? chatId),
      recipient: shape.optionalString(record, 'to'),
      participant,
      body: (body as string | null | undefined) ?? null,
      type: messageType(record),
      hasMedia: shape.optionalBoolean(record, 'hasMedia') ?? false,
      ack: (ack as number | null | undefined) ?? null,
      timestampS: messageTimestampS(shape, record),
      replyToId,
      raw: texts === null ? item : undefined,
      rawJson: texts === null ? undefined : texts[index],
    };
  });
}

/**
 * A message's time. `timestamp` when WAHA sends it (a present but impossible value fails the page: the
 * response is broken). GOWS sends null for some messages and WEBJS 2026.4.1 leaves it out whenever the
 * request filters on `gte` (#2024); the engine's own object still carries it: NOWEB
 * `_data.messageTimestamp` (a number, a numeric string or a protobuf Long), GOWS `_data.Info.Timestamp`
 * (RFC 3339), WEBJS `_data.t`. Null when none of them is there.
 */
function messageTimestampS(shape: Shape, record: Record<string, unknown>): number | null {
  if (record.timestamp !== undefined && record.timestamp !== null) {
    return shape.timestampS(record, 'timestamp', true);
  }
  const data = record._data;
  if (!data || typeof data !== 'object' || Array.isArray(data)) return null;
  const raw = data as Record<string, unknown>;
  const info = raw.Info && typeof raw.Info === 'object' ? (raw.Info as Record<string, unknown>) : undefined;
  const candidates: Array<[string, unknown]> = [
    ['_data.messageTimestamp', longToNumber(raw.messageTimestamp)],
    [
      '_data.Info.Timestamp',
      typeof info?.Timestamp === 'string' ? rfc3339ToS(info.Timestamp) : info?.Timestamp,
    ],
    ['_data.t', raw.t],
  ];
  for (const [key, value] of candidates) {
    if (value === undefined || value === null) continue;
    return shape.timestampS({ [key]: value }, key, true);
  }
  return null;
}

/** Baileys sends 64-bit times as `{low, high, unsigned}` or as a decimal string. */
function longToNumber(value: unknown): unknown {
  if (typeof value === 'string' && /^\d+$/.test(value)) return Number(value);
  if (value && typeof value === 'object' && 'low' in value && 'high' in value) {
    const { low, high } = value as { low: unknown; high: unknown };
    if (typeof low === 'number' && typeof high === 'number') return high * 2 ** 32 + (low >>> 0);
  }
  return value;
}

function rfc3339ToS(text: string): unknown {
  const ms = Date.parse(text);
  // Whatsmeow's zero time ("0001-01-01T00:00:00Z") means unknown.
  if (!Number.isFinite(ms) || ms <= 0) return text.startsWith('0001-') ? null : text;
  return Math.floor(ms / 1000);
}

/** Engines whose ids do not follow the serialized pattern still carry the WhatsApp key id in `_data`. */
function rawKeyId(record: Record<string, unknown>): string | null {
  const data = record._data as
    { key?: { id?: unknown }; id?: { id?: unknown }; Info?: { ID?: unknown } } | undefined;
  const candidate = data?.key?.id ?? data?.id?.id ?? data?.Info?.ID;
  return typeof candidate === 'string' && candidate !== '' ? candidate : null;
}
