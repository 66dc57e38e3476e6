/**
 * A seeded, realistic WhatsApp history in the exact JSON shapes WAHA's NOWEB engine serves. The same options
 * always give the same bytes, so tests and benchmarks can compare a database against `groundTruth` exactly.
 */

import { chance, digits, hex8, mix32, pick, randomInt, shuffle, substream, type Random } from './random.js';
import {
  AREA_CODES,
  CAPTIONS,
  DOCUMENT_NAMES,
  EMOJI,
  FIRST_NAMES,
  GREETINGS,
  GROUP_NAMES,
  LAST_NAMES,
  NAME_DECORATIONS,
  PHRASES,
  PLACES,
  REACTIONS,
} from './vocabulary.js';
import { forgetChats, forgetMessages } from './lookup.js';

const DAY_S = 86_400;

export interface DatasetOptions {
  /** Everything random derives from it. Default 1. */
  seed: number;
  /** Exact number of chats with messages. Default 1172. */
  chats: number;
  /**
   * Extra chats with no message at all (no `conversationTimestamp`: NOWEB leaves them out of its chat
   * list, the other engines list them). Drawn after everything else, so they never change the rest of the
   * history. Default 3.
   */
  emptyChats: number;
  /** Exact number of VISIBLE messages (hidden rows come on top). Default 5683. */
  messages: number;
  /**
   * Messages lie in `[anchorS - (days-1)*86400, anchorS - 1]`: the `days - 1` whole UTC days before the anchor
   * day, so a run at any moment of the anchor day with `--days N` sees all of them. Default 30; at least 2.
   */
  days: number;
  /** Unix seconds. Default (undefined): the start of the current UTC day when the dataset is generated. */
  anchorS?: number;
  /** Extra raw rows per visible message that are reactions/protocol messages, never served. Default 0.03. */
  hiddenRatio: number;
  /** Share of chats that are groups. Default 0.15. */
  groupRatio: number;
  /** Share of chats under a hidden-person `@lid` id. Default 0.01. */
  lidRatio: number;
  /** Share of visible messages carrying media. Default 0.15. */
  mediaRatio: number;
  /** Visible text messages whose body contains U+0000 (PostgreSQL refuses it). Default 3; capped at `messages`. */
  nulBodies: number;
  /** Visible text messages whose body contains a lone UTF-16 surrogate. Default 2; capped at what is left. */
  loneSurrogateBodies: number;
  /** The first chats get exactly these visible message counts (e.g. `[250]` for paging tests). Default []. */
  bigChats: number[];
  /** Zipf exponent of messages per chat; higher means a few chats hold most messages. Default 1.3. */
  skew: number;
}

export type ResolvedDatasetOptions = Required<DatasetOptions>;

export const DEFAULT_DATASET_OPTIONS: Readonly<DatasetOptions> = Object.freeze({
  seed: 1,
  chats: 1172,
  emptyChats: 3,
  messages: 5683,
  days: 30,
  anchorS: undefined,
  hiddenRatio: 0.03,
  groupRatio: 0.15,
  lidRatio: 0.01,
  mediaRatio: 0.15,
  nulBodies: 3,
  loneSurrogateBodies: 2,
  bigChats: [],
  skew: 1.3,
});

export type ChatKind = 'person' | 'group' | 'lid';

export type MessageKind =
  | 'text'
  | 'image'
  | 'video'
  | 'audio'
  | 'ptt'
  | 'document'
  | 'sticker'
  | 'location'
  | 'contact'
  | 'reaction'
  | 'protocol';

/** Baileys message key; JIDs in engine form (`@s.whatsapp.net`, not `@c.us`). */
export interface NowebMessageKey {
  remoteJid: string;
  fromMe: boolean;
  id: string;
  participant?: string;
}

/** NOWEB's raw engine object, served as `_data`. `message` has exactly one key naming the type. */
export interface NowebRawMessage {
  key: NowebMessageKey;
  message: Record<string, unknown>;
  messageTimestamp: number;
  /** Baileys delivery status; WAHA derives `ack = status - 1`. */
  status?: number;
  pushName?: string;
}

export interface WaMedia {
  url: string;
  mimetype: string;
  filename: string | null;
}

export interface WaLocation {
  latitude: number;
  longitude: number;
  live: boolean;
  name?: string;
  address?: string;
}

export interface WaReplyTo {
  id: string;
  participant: string;
  body: string | null;
}

/** WAHA's `WAMessage` as NOWEB serializes it; `to` and `participant` are absent outside group messages. */
export interface WaMessage {
  id: string;
  timestamp: number;
  from: string;
  fromMe: boolean;
  source: 'app' | 'api';
  to?: string;
  participant?: string;
  body: string | null;
  hasMedia: boolean;
  media: WaMedia | null;
  ack: number | null;
  ackName: string;
  location: WaLocation | null;
  vCards: string[] | null;
  replyTo: WaReplyTo | null;
  _data: NowebRawMessage;
}

/** NOWEB's chat list item; `conversationTimestamp` is absent while the chat has no message. */
export interface WaChat {
  id: string;
  name: string | null;
  conversationTimestamp?: number;
}

export interface SimMessage {
  waId: string;
  timestampS: number;
  fromMe: boolean;
  kind: MessageKind;
  /** Reactions and protocol messages: stored by the engine, never returned to clients. */
  hidden: boolean;
  /** Deleted for everyone, kept as a placeholder (WEBJS serves it as `type: "revoked"`). */
  revoked?: boolean;
  /** Exactly what the server serves (with downloadMedia=false). */
  raw: WaMessage;
}

export interface SimParticipant {
  jid: string;
  name: string | null;
}

export interface SimChat {
  id: string;
  kind: ChatKind;
  name: string | null;
  /** Members other than me (groups); the other person (private chats). */
  participants: SimParticipant[];
  /** Sorted by timestamp ascending; equal seconds keep a fixed order. */
  messages: SimMessage[];
  raw: WaChat;
}

export interface Dataset {
  options: ResolvedDatasetOptions;
  me: { id: string; pushName: string };
  chats: SimChat[];
  /** Next message serial; waIds derive from it, so appended messages never collide with existing ones. */
  nextSerial: number;
}

export function startOfUtcDayS(nowMs: number = Date.now()): number {
  return Math.floor(nowMs / 1000 / DAY_S) * DAY_S;
}

export function resolveDatasetOptions(options: Partial<DatasetOptions> = {}): ResolvedDatasetOptions {
  const merged = { ...DEFAULT_DATASET_OPTIONS, ...stripUndefined(options) };
  const resolved: ResolvedDatasetOptions = {
    ...merged,
    anchorS: merged.anchorS ?? startOfUtcDayS(),
    bigChats: [...merged.bigChats],
  };
  validate(resolved);
  // Tiny datasets (a handful of messages for a unit test) should not have to switch the traps off by hand.
  resolved.nulBodies = Math.min(resolved.nulBodies, resolved.messages);
  resolved.loneSurrogateBodies = Math.min(
    resolved.loneSurrogateBodies,
    resolved.messages - resolved.nulBodies,
  );
  return resolved;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function validate(o: ResolvedDatasetOptions): void {
  const problems: string[] = [];
  const isCount = (n: number): boolean => Number.isInteger(n) && n >= 0;
  if (!Number.isInteger(o.seed)) problems.push('seed must be an integer');
  if (!isCount(o.chats) || o.chats < 1) problems.push('chats must be an integer >= 1');
  if (!isCount(o.emptyChats)) problems.push('emptyChats must be an integer >= 0');
  if (!isCount(o.messages)) problems.push('messages must be an integer >= 0');
  // days - 1 whole days hold the data, so one day would leave no room at all.
  if (!Number.isInteger(o.days) || o.days < 2) problems.push('days must be an integer >= 2');
  if (!Number.isInteger(o.anchorS)) problems.push('anchorS must be an integer (unix seconds)');
  for (const key of ['hiddenRatio', 'groupRatio', 'lidRatio', 'mediaRatio'] as const) {
    if (!(o[key] >= 0 && o[key] <= 1)) problems.push(`${key} must be between 0 and 1`);
  }
  if (o.groupRatio + o.lidRatio > 1) problems.push('groupRatio + lidRatio must not exceed 1');
  if (!isCount(o.nulBodies)) problems.push('nulBodies must be an integer >= 0');
  if (!isCount(o.loneSurrogateBodies)) problems.push('loneSurrogateBodies must be an integer >= 0');
  if (!(o.skew >= 0)) problems.push('skew must be >= 0');
  if (o.bigChats.some((n) => !Number.isInteger(n) || n < 1)) problems.push('bigChats entries must be >= 1');
  if (o.bigChats.length > o.chats) problems.push('bigChats has more entries than chats');
  const bigTotal = o.bigChats.reduce((a, b) => a + b, 0);
  const restChats = o.chats - o.bigChats.length;
  const restMessages = o.messages - bigTotal;
  // Every chat needs at least one visible message, and every message needs a chat.
  if (restMessages < restChats || (restChats === 0 && restMessages !== 0)) {
    problems.push(
      `messages (${o.messages}) cannot fill ${o.chats} chats with bigChats ${JSON.stringify(o.bigChats)}`,
    );
  }
  if (problems.length > 0) throw new RangeError(`invalid dataset options: ${problems.join('; ')}`);
}

/** Generates the whole history. Pure: same options (with an explicit anchorS) give identical output. */
export function generateDataset(options: Partial<DatasetOptions> = {}): Dataset {
  const o = resolveDatasetOptions(options);
  const random = substream(o.seed, 0);
  const used = new Set<string>();
  const me = { id: `${uniquePhone(random, used)}@c.us`, pushName: personName(random) };
  const dataset: Dataset = { options: o, me, chats: [], nextSerial: 0 };

  for (let i = 0; i < o.chats; i++) dataset.chats.push(makeChat(random, o, used));

  const counts = messagesPerChat(random, o);
  const special = chooseSpecialBodies(random, o);
  const windowStartS = o.anchorS - (o.days - 1) * DAY_S;
  const windowEndS = o.anchorS - 1;

  let globalIndex = 0;
  dataset.chats.forEach((chat, chatIndex) => {
    const times = burstTimes(random, counts[chatIndex] ?? 1, windowStartS, windowEndS);
    for (const timestampS of times) {
      const body = special.get(globalIndex++);
      chat.messages.push(makeVisibleMessage(random, dataset, chat, timestampS, body));
    }
  });

  addHiddenRows(random, dataset, windowEndS);

  for (const chat of dataset.chats) {
    // Array.prototype.sort is stable: equal seconds keep generation order, a fixed tie order.
    chat.messages.sort((a, b) => a.timestampS - b.timestampS);
    chat.raw.conversationTimestamp = chat.messages.at(-1)?.timestampS ?? 0;
  }
  // Their own stream, drawn last: adding them leaves every other byte of the history as it was.
  const emptyRandom = substream(o.seed, 3);
  for (let i = 0; i < o.emptyChats; i++) {
    const empty = makeChat(emptyRandom, o, used);
    delete empty.raw.conversationTimestamp;
    dataset.chats.push(empty);
  }
  return dataset;
}

export function visibleMessages(chat: SimChat): SimMessage[] {
  return chat.messages.filter((m) => !m.hidden);
}

export function countMessages(dataset: Dataset): { visible: number; hidden: number } {
  let visible = 0;
  let hidden = 0;
  for (const chat of dataset.chats) {
    for (const m of chat.messages) {
      if (m.hidden) hidden++;
      else visible++;
    }
  }
  return { visible, hidden };
}

/**
 * Appends `count` new visible messages at `atS` to an existing chat (a conversation that goes on while an
 * import runs). Deterministic: the content depends only on the seed and the dataset's message serial.
 */
export function appendMessages(dataset: Dataset, chatId: string, count: number, atS: number): SimMessage[] {
  const chat = dataset.chats.find((c) => c.id === chatId);
  if (!chat) throw new RangeError(`no chat ${chatId} in the dataset`);
  if (!Number.isInteger(count) || count < 0) throw new RangeError('count must be an integer >= 0');
  if (!Number.isInteger(atS)) throw new RangeError('atS must be an integer (unix seconds)');
  const added: SimMessage[] = [];
  for (let i = 0; i < count; i++) {
    const random = substream(dataset.options.seed, 0x10000 + dataset.nextSerial);
    const message = makeVisibleMessage(random, dataset, chat, atS, undefined);
    // New arrivals sort after everything already stored for the same second.
    let at = chat.messages.length;
    while (at > 0 && (chat.messages[at - 1]?.timestampS ?? 0) > atS) at--;
    chat.messages.splice(at, 0, message);
    added.push(message);
  }
  forgetMessages(chat);
  chat.raw.conversationTimestamp = Math.max(chat.raw.conversationTimestamp ?? atS, atS);
  return added;
}

/**
 * Finds a message by its serialized id in any engine's form (`{fromMe}_{chat}_{waId}[_{participant}]`) or
 * by its bare waId: waIds are unique within a dataset, so the waId alone decides.
 */
export function findMessage(
  dataset: Dataset,
  messageId: string,
): { chat: SimChat; index: number; message: SimMessage } | undefined {
  const waId = messageId.includes('_') ? messageId.split('_')[2] : messageId;
  for (const chat of dataset.chats) {
    const index = chat.messages.findIndex((m) => m.waId === waId && !m.hidden);
    if (index >= 0) return { chat, index, message: chat.messages[index]! };
  }
  return undefined;
}

/** Removes a message row (any engine's serialized id, or the waId); true when it existed. */
export function deleteMessage(dataset: Dataset, messageId: string): boolean {
  const found = findMessage(dataset, messageId);
  if (!found) return false;
  found.chat.messages.splice(found.index, 1);
  forgetMessages(found.chat);
  refreshConversationTimestamp(found.chat);
  return true;
}

/**
 * Stores the hidden REVOKE protocol row a "delete for everyone" leaves beside the message (GOWS keeps
 * both), at `atS` (default: the message's own second). Returns the new row.
 */
export function appendRevokeRow(
  dataset: Dataset,
  chat: SimChat,
  target: SimMessage,
  atS?: number,
): SimMessage {
  const timestampS = atS ?? target.timestampS;
  const row = buildMessage(dataset, chat, {
    timestampS,
    fromMe: target.fromMe,
    kind: 'protocol',
    hidden: true,
    senderJid: target.raw._data.key.participant,
    pushName: undefined,
    ack: null,
    source: 'app',
    content: {
      message: { protocolMessage: { key: target.raw._data.key, type: 'REVOKE' } },
      body: null,
      hasMedia: false,
      location: null,
      vCards: null,
    },
    replyTo: null,
  });
  let at = chat.messages.length;
  while (at > 0 && (chat.messages[at - 1]?.timestampS ?? 0) > timestampS) at--;
  chat.messages.splice(at, 0, row);
  forgetMessages(chat);
  return row;
}

function refreshConversationTimestamp(chat: SimChat): void {
  const newest = chat.messages.at(-1)?.timestampS;
  if (newest === undefined) delete chat.raw.conversationTimestamp;
  else chat.raw.conversationTimestamp = newest;
}

/** `@s.whatsapp.net` is the engine's person JID; WAHA shows it as `@c.us`. */
export function toCus(jid: string): string {
  return jid.replace(/@s\.whatsapp\.net$/, '@c.us');
}

export function toJid(cusId: string): string {
  return cusId.replace(/@c\.us$/, '@s.whatsapp.net');
}

function uniquePhone(random: Random, used: Set<string>): string {
  for (;;) {
    const phone = `55${pick(random, AREA_CODES)}9${digits(random, 8)}`;
    if (!used.has(phone)) {
      used.add(phone);
      return phone;
    }
  }
}

function uniqueDigits(random: Random, used: Set<string>, prefix: string, count: number): string {
  for (;;) {
    const id = prefix + digits(random, count);
    if (!used.has(id)) {
      used.add(id);
      return id;
    }
  }
}

function personName(random: Random): string {
  return `${pick(random, FIRST_NAMES)} ${pick(random, LAST_NAMES)}${pick(random, NAME_DECORATIONS)}`;
}

function makeChat(random: Random, o: ResolvedDatasetOptions, used: Set<string>): SimChat {
  const roll = random();
  if (roll < o.groupRatio) {
    const id = `${uniqueDigits(random, used, '1203630', 11)}@g.us`;
    const name = chance(random, 0.95) ? pick(random, GROUP_NAMES) : null;
    const participants: SimParticipant[] = [];
    const size = randomInt(random, 2, 24);
    for (let i = 0; i < size; i++) {
      const jid = chance(random, 0.1)
        ? `${uniqueDigits(random, used, '', 15)}@lid`
        : `${uniquePhone(random, used)}@s.whatsapp.net`;
      participants.push({ jid, name: chance(random, 0.9) ? personName(random) : null });
    }
    return chat(id, 'group', name, participants);
  }
  if (roll < o.groupRatio + o.lidRatio) {
    const id = `${uniqueDigits(random, used, '', 15)}@lid`;
    return chat(id, 'lid', chance(random, 0.3) ? personName(random) : null, [{ jid: id, name: null }]);
  }
  const phone = uniquePhone(random, used);
  // Numbers not saved in the address book have no name.
  const name = chance(random, 0.85) ? personName(random) : null;
  return chat(`${phone}@c.us`, 'person', name, [{ jid: `${phone}@s.whatsapp.net`, name }]);
}

function chat(id: string, kind: ChatKind, name: string | null, participants: SimParticipant[]): SimChat {
  return { id, kind, name, participants, messages: [], raw: { id, name, conversationTimestamp: 0 } };
}

/**
 * Visible messages per chat: exact totals, at least one each, Zipf-skewed like real life (most chats a
 * handful, a few with hundreds, one with over a thousand at the defaults). Largest-remainder rounding keeps
 * the total exact.
 */
function messagesPerChat(random: Random, o: ResolvedDatasetOptions): number[] {
  const counts = new Array<number>(o.chats).fill(1);
  o.bigChats.forEach((n, i) => (counts[i] = n));
  const first = o.bigChats.length;
  const rest = o.chats - first;
  const extra = o.messages - o.bigChats.reduce((a, b) => a + b, 0) - rest;
  if (rest === 0 || extra === 0) return counts;

  const ranks = shuffle(
    random,
    Array.from({ length: rest }, (_, i) => i + 1),
  );
  // The top rank stays exact so the headline chat is predictable; the rest wobble so sizes look organic.
  const weights = ranks.map((rank) => rank ** -o.skew * (rank === 1 ? 1 : 0.6 + 0.8 * random()));
  const totalWeight = weights.reduce((a, b) => a + b, 0);
  const shares = weights.map((w) => (extra * w) / totalWeight);
  const floors = shares.map(Math.floor);
  let leftover = extra - floors.reduce((a, b) => a + b, 0);
  const byRemainder = shares
    .map((s, i) => ({ i, r: s - Math.floor(s) }))
    .sort((a, b) => b.r - a.r || a.i - b.i);
  for (const { i } of byRemainder) {
    if (leftover-- <= 0) break;
    floors[i] = (floors[i] ?? 0) + 1;
  }
  floors.forEach((f, i) => (counts[first + i] = 1 + f));
  return counts;
}

/** Global visible-message indexes whose bodies must contain NUL or a lone surrogate. */
function chooseSpecialBodies(random: Random, o: ResolvedDatasetOptions): Map<number, string> {
  const special = new Map<number, string>();
  const wanted = o.nulBodies + o.loneSurrogateBodies;
  while (special.size < wanted) {
    const index = Math.floor(random() * o.messages);
    if (special.has(index)) continue;
    const phrase = pick(random, PHRASES);
    if (special.size < o.nulBodies) {
      // Seen in the wild from broken clients and bots; PostgreSQL text/jsonb reject it.
      special.set(index, `${phrase}\u0000${pick(random, PHRASES)}`);
    } else {
      // A truncated emoji: half of a surrogate pair.
      special.set(index, special.size % 2 === 0 ? `${phrase} \ud83d` : `\ude02 ${phrase}`);
    }
  }
  return special;
}

/** Conversations come in bursts, many messages in the same second. Returns sorted unix seconds. */
function burstTimes(random: Random, count: number, windowStartS: number, windowEndS: number): number[] {
  const windowLengthS = windowEndS - windowStartS + 1;
  const times: number[] = [];
  let remaining = count;
  while (remaining > 0) {
    const size = Math.min(remaining, randomInt(random, 1, count > 200 ? 30 : 12));
    const offsets = [0];
    for (let i = 1; i < size; i++) {
      const roll = random();
      const gapS = roll < 0.35 ? 0 : roll < 0.85 ? randomInt(random, 1, 90) : randomInt(random, 91, 1800);
      offsets.push(Math.min((offsets[i - 1] ?? 0) + gapS, windowLengthS - 1));
    }
    const spanS = offsets.at(-1) ?? 0;
    const startS = windowStartS + Math.floor(random() * (windowLengthS - spanS));
    for (const offset of offsets) times.push(startS + offset);
    remaining -= size;
  }
  return times.sort((a, b) => a - b);
}

function nextWaId(dataset: Dataset): string {
  const serial = dataset.nextSerial++;
  const seed = dataset.options.seed;
  // The first half is a bijection of the serial, so ids are unique by construction.
  const head = mix32((serial ^ mix32(seed ^ 0x5bd1e995)) >>> 0);
  const tail = mix32((serial + Math.imul(seed, 0x27d4eb2f)) >>> 0);
  return `3EB0${hex8(head)}${hex8(tail)}`;
}

const ACK_NAMES: Record<string, string> = {
  '-1': 'ERROR',
  '0': 'PENDING',
  '1': 'SERVER',
  '2': 'DEVICE',
  '3': 'READ',
  '4': 'PLAYED',
};

export function ackName(ack: number | null): string {
  return ack === null ? 'UNKNOWN' : (ACK_NAMES[String(ack)] ?? 'UNKNOWN');
}

function chooseAck(random: Random, fromMe: boolean, kind: MessageKind): number | null {
  const roll = random();
  if (fromMe) {
    if (roll < 0.01) return -1;
    if (roll < 0.04) return 0;
    if (roll < 0.07) return null;
    if (roll < 0.17) return 1;
    if (roll < 0.42) return 2;
    return kind === 'ptt' || kind === 'video' ? 4 : 3;
  }
  // History-synced incoming messages often carry no status at all.
  if (roll < 0.15) return null;
  return roll < 0.4 ? 2 : 3;
}

function chooseKind(random: Random, o: ResolvedDatasetOptions): MessageKind {
  if (chance(random, o.mediaRatio)) {
    const roll = random();
    if (roll < 0.4) return 'image';
    if (roll < 0.6) return 'ptt';
    if (roll < 0.65) return 'audio';
    if (roll < 0.75) return 'video';
    if (roll < 0.85) return 'document';
    return 'sticker';
  }
  const roll = random();
  if (roll < 0.012) return 'location';
  if (roll < 0.024) return 'contact';
  return 'text';
}

function textBody(random: Random): string {
  const roll = random();
  if (roll < 0.25) return `${pick(random, GREETINGS)}, ${pick(random, PHRASES)}`;
  if (roll < 0.45) return `${pick(random, PHRASES)} ${pick(random, EMOJI)}`;
  if (roll < 0.5) return `${pick(random, PHRASES)}\n${pick(random, PHRASES)}\n${pick(random, EMOJI)}`;
  if (roll < 0.52) {
    return Array.from({ length: randomInt(random, 8, 25) }, () => pick(random, PHRASES)).join('. ');
  }
  if (roll < 0.56) return pick(random, EMOJI).repeat(randomInt(random, 1, 4));
  return pick(random, PHRASES);
}

function vCard(random: Random): { displayName: string; vcard: string } {
  const displayName = personName(random);
  const area = pick(random, AREA_CODES);
  const number = digits(random, 8);
  const vcard =
    `BEGIN:VCARD\nVERSION:3.0\nN:;${displayName};;;\nFN:${displayName}\n` +
    `TEL;type=CELL;type=VOICE;waid=55${area}9${number}:+55 ${area} 9${number.slice(0, 4)}-${number.slice(4)}\n` +
    'END:VCARD';
  return { displayName, vcard };
}

interface Content {
  message: Record<string, unknown>;
  body: string | null;
  hasMedia: boolean;
  location: WaLocation | null;
  vCards: string[] | null;
}

function fileLength(random: Random, minBytes: number, maxBytes: number): string {
  // Baileys serializes protobuf int64 as strings.
  return String(randomInt(random, minBytes, maxBytes));
}

function mediaContent(random: Random, kind: MessageKind): Content {
  const caption = chance(random, 0.4) ? pick(random, CAPTIONS) : undefined;
  const withCaption = (m: Record<string, unknown>): Record<string, unknown> =>
    caption === undefined ? m : { ...m, caption };
  const media = (message: Record<string, unknown>, body: string | null): Content => ({
    message,
    body,
    hasMedia: true,
    location: null,
    vCards: null,
  });
  const url = `https://mmg.whatsapp.net/v/t62.7118-24/${digits(random, 8)}_${digits(random, 15)}_n.enc`;
  switch (kind) {
    case 'image':
      return media(
        {
          imageMessage: withCaption({
            url,
            mimetype: 'image/jpeg',
            fileLength: fileLength(random, 20_000, 400_000),
            height: 1280,
            width: pick(random, [720, 960, 1280]),
          }),
        },
        caption ?? null,
      );
    case 'video':
      return media(
        {
          videoMessage: withCaption({
            url,
            mimetype: 'video/mp4',
            fileLength: fileLength(random, 300_000, 16_000_000),
            seconds: randomInt(random, 2, 180),
          }),
        },
        caption ?? null,
      );
    case 'document': {
      const fileName = pick(random, DOCUMENT_NAMES);
      const mimetype = fileName.endsWith('.pdf')
        ? 'application/pdf'
        : fileName.endsWith('.docx')
          ? 'application/vnd.openxmlformats-officedocument.wordprocessingml.document'
          : 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';
      return media(
        {
          documentMessage: withCaption({
            url,
            mimetype,
            title: fileName,
            fileName,
            fileLength: fileLength(random, 10_000, 5_000_000),
          }),
        },
        caption ?? null,
      );
    }
    case 'audio':
    case 'ptt':
      return media(
        {
          audioMessage: {
            url,
            mimetype: 'audio/ogg; codecs=opus',
            fileLength: fileLength(random, 3_000, 900_000),
            seconds: randomInt(random, 1, 240),
            ptt: kind === 'ptt',
          },
        },
        null,
      );
    default:
      return media(
        {
          stickerMessage: {
            url,
            mimetype: 'image/webp',
            fileLength: fileLength(random, 5_000, 90_000),
            isAnimated: chance(random, 0.2),
          },
        },
        null,
      );
  }
}

function makeVisibleMessage(
  random: Random,
  dataset: Dataset,
  chat: SimChat,
  timestampS: number,
  specialBody: string | undefined,
): SimMessage {
  const fromMe = chance(random, chat.kind === 'group' ? 0.15 : 0.45);
  const kind: MessageKind = specialBody === undefined ? chooseKind(random, dataset.options) : 'text';
  const sender = chat.kind === 'group' && !fromMe ? pick(random, chat.participants) : undefined;

  let content: Content;
  let replyTo: WaReplyTo | null = null;
  if (kind === 'text') {
    const body = specialBody ?? textBody(random);
    const quoted = chance(random, 0.08) ? pickVisible(random, chat.messages) : undefined;
    if (quoted) {
      const quotedAuthor = quoted.raw.fromMe
        ? toJid(dataset.me.id)
        : (quoted.raw._data.key.participant ?? quoted.raw._data.key.remoteJid);
      replyTo = { id: quoted.waId, participant: toCus(quotedAuthor), body: quoted.raw.body };
      // NOWEB only uses `conversation` for plain text; anything with context becomes extendedTextMessage.
      content = textContent({
        extendedTextMessage: {
          text: body,
          contextInfo: {
            stanzaId: quoted.waId,
            participant: quotedAuthor,
            quotedMessage: quoted.raw._data.message,
          },
        },
      });
    } else {
      content = textContent({ conversation: body });
    }
    content.body = body;
  } else if (kind === 'location') {
    const place = pick(random, PLACES);
    const message: Record<string, unknown> = { degreesLatitude: place.lat, degreesLongitude: place.lng };
    const location: WaLocation = { latitude: place.lat, longitude: place.lng, live: false };
    if (place.name !== null && place.address !== null) {
      message.name = location.name = place.name;
      message.address = location.address = place.address;
    }
    content = { message: { locationMessage: message }, body: null, hasMedia: false, location, vCards: null };
  } else if (kind === 'contact') {
    const card = vCard(random);
    content = {
      message: { contactMessage: card },
      body: null,
      hasMedia: false,
      location: null,
      vCards: [card.vcard],
    };
  } else {
    content = mediaContent(random, kind);
  }

  const ack = chooseAck(random, fromMe, kind);
  const source = fromMe && chance(random, 0.25) ? 'api' : 'app';
  const pushName = fromMe ? undefined : (sender?.name ?? chat.participants[0]?.name ?? undefined);
  return buildMessage(dataset, chat, {
    timestampS,
    fromMe,
    kind,
    hidden: false,
    senderJid: sender?.jid,
    pushName,
    ack,
    source,
    content,
    replyTo,
  });
}

function textContent(message: Record<string, unknown>): Content {
  return { message, body: null, hasMedia: false, location: null, vCards: null };
}

interface MessageSpec {
  timestampS: number;
  fromMe: boolean;
  kind: MessageKind;
  hidden: boolean;
  senderJid: string | undefined;
  pushName: string | undefined;
  ack: number | null;
  source: 'app' | 'api';
  content: Content;
  replyTo: WaReplyTo | null;
}

function buildMessage(dataset: Dataset, chat: SimChat, spec: MessageSpec): SimMessage {
  const waId = nextWaId(dataset);
  const remoteJid = toJid(chat.id);
  const key: NowebMessageKey = { remoteJid, fromMe: spec.fromMe, id: waId };
  if (spec.senderJid !== undefined) key.participant = spec.senderJid;
  const data: NowebRawMessage = { key, message: spec.content.message, messageTimestamp: spec.timestampS };
  if (spec.ack !== null) data.status = spec.ack + 1;
  if (spec.pushName !== undefined) data.pushName = spec.pushName;

  const participant = spec.senderJid === undefined ? undefined : toCus(spec.senderJid);
  const raw: WaMessage = {
    id: `${spec.fromMe}_${chat.id}_${waId}${participant === undefined ? '' : `_${participant}`}`,
    timestamp: spec.timestampS,
    // NOWEB reports the chat as `from` even for my own messages, and `to` only for group messages.
    from: chat.id,
    fromMe: spec.fromMe,
    source: spec.source,
    ...(participant === undefined ? {} : { to: chat.id, participant }),
    body: spec.content.body,
    hasMedia: spec.content.hasMedia,
    media: null,
    ack: spec.ack,
    ackName: ackName(spec.ack),
    location: spec.content.location,
    vCards: spec.content.vCards,
    replyTo: spec.replyTo,
    _data: data,
  };
  return {
    waId,
    timestampS: spec.timestampS,
    fromMe: spec.fromMe,
    kind: spec.kind,
    hidden: spec.hidden,
    raw,
  };
}

/**
 * Reactions, edits and revokes: stored next to real messages, counted by the engine's limit/offset, but
 * never returned. They are what makes NOWEB pages come back short.
 */
function addHiddenRows(random: Random, dataset: Dataset, windowEndS: number): void {
  const targets: Array<{ chat: SimChat; message: SimMessage }> = [];
  for (const chat of dataset.chats) for (const message of chat.messages) targets.push({ chat, message });
  const hiddenCount = Math.round(dataset.options.messages * dataset.options.hiddenRatio);
  if (targets.length === 0) return;
  for (let i = 0; i < hiddenCount; i++) {
    const { chat, message: target } = pick(random, targets);
    const fromMe = chance(random, 0.4);
    const sender = chat.kind === 'group' && !fromMe ? pick(random, chat.participants) : undefined;
    const timestampS = Math.min(
      target.timestampS + (chance(random, 0.3) ? 0 : randomInt(random, 1, 3600)),
      windowEndS,
    );
    const targetKey = target.raw._data.key;
    let kind: MessageKind;
    let message: Record<string, unknown>;
    const roll = random();
    if (roll < 0.7) {
      kind = 'reaction';
      message = {
        reactionMessage: {
          key: targetKey,
          text: pick(random, REACTIONS),
          senderTimestampMs: String(timestampS * 1000),
        },
      };
    } else if (roll < 0.85 && target.kind === 'text') {
      kind = 'protocol';
      message = {
        protocolMessage: {
          key: targetKey,
          type: 'MESSAGE_EDIT',
          editedMessage: { conversation: pick(random, PHRASES) },
          timestampMs: String(timestampS * 1000),
        },
      };
    } else {
      kind = 'protocol';
      message = { protocolMessage: { key: targetKey, type: 'REVOKE' } };
    }
    const row = buildMessage(dataset, chat, {
      timestampS,
      fromMe,
      kind,
      hidden: true,
      senderJid: sender?.jid,
      pushName: fromMe ? undefined : (sender?.name ?? undefined),
      ack: null,
      source: 'app',
      content: { message, body: null, hasMedia: false, location: null, vCards: null },
      replyTo: null,
    });
    chat.messages.push(row);
  }
}

/**
 * A random visible message of a chat, without copying the chat (that made big datasets quadratic).
 * While the history is generated no hidden row exists yet, so this draws exactly as `pick` over the
 * visible ones would; later (appended messages) a hidden pick steps back to the nearest visible one.
 */
function pickVisible(random: Random, messages: SimMessage[]): SimMessage | undefined {
  if (messages.length === 0) return undefined;
  for (let i = Math.floor(random() * messages.length); i >= 0; i--) {
    if (!messages[i]!.hidden) return messages[i];
  }
  return undefined;
}

/**
 * Moves a chat and its messages to another chat id, as WhatsApp does when it starts showing a person
 * under a hidden `@lid` id instead of the phone number's `@c.us` id (or back): every serialized message id
 * changes, the WhatsApp message ids (waId) stay the same. With `fromS`, only the messages at or after it
 * move, to a new chat beside the old one: the person's history is split between two chats (what the
 * `merge` parameter joins again). Returns how many messages were moved.
 */
export function relinkChat(dataset: Dataset, fromId: string, toId: string, fromS?: number): number {
  const original = dataset.chats.find((c) => c.id === fromId);
  if (!original) throw new RangeError(`no chat ${fromId} in the dataset`);
  if (original.kind === 'group')
    throw new RangeError(`${fromId} is a group; only a person's chat is relinked`);
  if (dataset.chats.some((c) => c.id === toId)) throw new RangeError(`chat ${toId} already exists`);
  if (!/^[^@_]+@(c\.us|lid)$/.test(toId)) throw new RangeError(`${toId} is not a @c.us or @lid chat id`);
  let chat = original;
  if (fromS !== undefined) {
    if (!Number.isInteger(fromS)) throw new RangeError('fromS must be an integer (unix seconds)');
    const at = original.messages.findIndex((m) => m.timestampS >= fromS);
    const moved = at < 0 ? [] : original.messages.splice(at);
    chat = {
      id: fromId,
      kind: original.kind,
      name: original.name,
      participants: original.participants.map((p) => ({ ...p })),
      messages: moved,
      raw: { id: fromId, name: original.name },
    };
    refreshConversationTimestamp(original);
    refreshConversationTimestamp(chat);
    dataset.chats.splice(dataset.chats.indexOf(original) + 1, 0, chat);
  }
  forgetMessages(original);
  forgetMessages(chat);
  forgetChats(dataset);
  chat.id = toId;
  chat.kind = toId.endsWith('@lid') ? 'lid' : 'person';
  chat.raw.id = toId;
  for (const participant of chat.participants)
    if (participant.jid === toJid(fromId)) participant.jid = toJid(toId);
  for (const message of chat.messages) {
    const raw = message.raw;
    const suffix = raw.participant === undefined ? '' : `_${raw.participant}`;
    raw.id = `${message.fromMe}_${toId}_${message.waId}${suffix}`;
    if (raw.from === fromId) raw.from = toId;
    if (raw.to === fromId) raw.to = toId;
    raw._data.key.remoteJid = toJid(toId);
  }
  return chat.messages.length;
}
