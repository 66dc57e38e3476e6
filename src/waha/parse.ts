import type { ChatKind, ChatRecord, MessageRecord } from '../domain.js';
import { WahaResponseError } from '../errors.js';

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
  return { name, status: status as SessionStatus, me };
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

export function parseChats(body: unknown, endpoint: string, session: string): ChatRecord[] {
  const list = new Shape(endpoint, '').array(body);
  return list.map((item, index) => {
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
    return {
      session,
      id,
      name: shape.optionalString(record, 'name'),
      kind: chatKind(id),
      lastActivityAt: lastActivityS === null ? null : new Date(lastActivityS * 1000),
      raw: item,
    };
  });
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
    const message = raw.message;
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

export function parseMessages(
  body: unknown,
  endpoint: string,
  session: string,
  chatId: string,
): MessageRecord[] {
  const list = new Shape(endpoint, '').array(body);
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
    return {
      session,
      id,
      chatId,
      waId: parsedId?.[3] ?? rawKeyId(record) ?? id,
      fromMe,
      sender: shape.optionalString(record, 'from'),
      recipient: shape.optionalString(record, 'to'),
      participant: shape.optionalString(record, 'participant'),
      body: (body as string | null | undefined) ?? null,
      type: messageType(record),
      hasMedia: shape.optionalBoolean(record, 'hasMedia') ?? false,
      ack: (ack as number | null | undefined) ?? null,
      timestampS: shape.timestampS(record, 'timestamp', true)!,
      replyToId,
      raw: item,
    };
  });
}

/** Engines whose ids do not follow the serialized pattern still carry the WhatsApp key id in `_data`. */
function rawKeyId(record: Record<string, unknown>): string | null {
  const data = record._data as { key?: { id?: unknown }; id?: { id?: unknown } } | undefined;
  const candidate = data?.key?.id ?? data?.id?.id;
  return typeof candidate === 'string' && candidate !== '' ? candidate : null;
}
