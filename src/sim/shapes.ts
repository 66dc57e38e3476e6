/**
 * How each engine shows the one model: chat ids, person ids and the `WAMessage` JSON (NOWEB Baileys,
 * GOWS whatsmeow, WEBJS whatsapp-web.js). The dataset keeps NOWEB's raw objects as the model; the other
 * shapes are built from it on every request, so they can never drift apart from the ground truth.
 */

import { ackName, toCus, toJid, type SimChat, type SimMessage, type WaMessage } from './dataset.js';
import { unitHash, type EngineProfile, type LidBook } from './engines.js';
import type { SimSession } from './routes.js';

/** A served message on any engine. Fields absent when undefined, as WAHA serializes them. */
export interface EngineMessage {
  id: string;
  /** GOWS serves null for some messages; WEBJS (#2024) leaves it out when the request had `gte`. */
  timestamp?: number | null;
  from: string;
  fromMe: boolean;
  source: 'app' | 'api';
  to?: string | null;
  participant?: string;
  body: string | null;
  hasMedia: boolean;
  media: WaMessage['media'];
  ack: number | null;
  ackName: string;
  location: WaMessage['location'];
  vCards: string[] | null;
  replyTo: WaMessage['replyTo'];
  /** NOWEB: Baileys `{key, message, messageTimestamp}`; GOWS: `{Info, Message}`; WEBJS: `{id, type, t}`. */
  _data: unknown;
}

/** What the request asked that changes a message's shape. */
export interface ShapeOptions {
  /** Base of media URLs when the request asked to download media. */
  mediaBase?: string;
  /** The request had `filter.timestamp.gte`. */
  gteGiven: boolean;
}

function isPersonChat(chat: SimChat): boolean {
  return chat.kind === 'person';
}

/** The chat id an engine shows in its chat list. NOWEB lists people by their engine JID. */
export function listedChatId(session: SimSession, chat: SimChat): string {
  if (session.profile.engine === 'NOWEB' && isPersonChat(chat)) return toJid(chat.id);
  return messageChatId(session, chat);
}

/** The chat id inside served message ids and `from`: GOWS shows people by lid since 2026.1.3 (#1907). */
export function messageChatId(session: SimSession, chat: SimChat): string {
  if (session.profile.engine === 'GOWS' && isPersonChat(chat)) return session.lids.lidOf(chat.id);
  return chat.id;
}

/** A person id of the model (`@s.whatsapp.net`, `@c.us` or `@lid`) as the engine shows it in messages. */
export function servedPersonId(session: SimSession, id: string): string {
  const cus = toCus(id);
  if (session.profile.engine === 'GOWS' && cus.endsWith('@c.us') && cus !== meId(session)) {
    return session.lids.lidOf(cus);
  }
  return cus;
}

export function meId(session: SimSession): string {
  return session.me?.id ?? session.dataset.me.id;
}

/**
 * One id per person whatever the engine shows: `PHONE@c.us`, or the `@lid` when the lids endpoint cannot
 * tell the phone (unknown mapping, or an engine without the endpoint); groups as they are.
 */
export function canonicalId(profile: EngineProfile, lids: LidBook, id: string): string {
  const cus = toCus(id);
  if (!cus.endsWith('@lid')) return cus;
  return (profile.implementsLids ? lids.phoneOf(cus) : null) ?? cus;
}

/** Serialized message id: `{fromMe}_{chat}_{waId}[_{participant}]`. */
function serializedId(
  fromMe: boolean,
  chatId: string,
  waId: string,
  participant: string | undefined,
): string {
  return `${fromMe}_${chatId}_${waId}${participant === undefined ? '' : `_${participant}`}`;
}

const EXTENSIONS: Record<string, string> = {
  'image/jpeg': 'jpeg',
  'image/webp': 'webp',
  'video/mp4': 'mp4',
  'audio/ogg; codecs=opus': 'oga',
  'application/pdf': 'pdf',
};

function mediaOf(message: SimMessage, mediaBase: string | undefined): WaMessage['media'] {
  if (mediaBase === undefined || !message.raw.hasMedia || message.revoked) return null;
  const content = Object.values(message.raw._data.message)[0] as
    { mimetype?: string; fileName?: string } | undefined;
  const mimetype = content?.mimetype ?? 'application/octet-stream';
  return {
    url: `${mediaBase}/${message.waId}.${EXTENSIONS[mimetype] ?? 'bin'}`,
    mimetype,
    filename: content?.fileName ?? null,
  };
}

/**
 * NOWEB's message as the dataset stores it. With downloadMedia the media object is filled in, as WAHA does
 * after downloading the file; that variant is a copy, so the dataset itself always keeps `media: null`.
 */
export function nowebMessage(message: SimMessage, mediaBase?: string): WaMessage {
  const raw = message.raw;
  if (message.revoked) {
    return { ...raw, body: null, hasMedia: false, location: null, vCards: null, replyTo: null };
  }
  const media = mediaOf(message, mediaBase);
  return media === null ? raw : { ...raw, media };
}

/** GOWS leaves `timestamp` null for some messages (#2008-like); which ones is fixed by the dataset seed. */
export function hasNullTimestamp(session: SimSession, message: SimMessage): boolean {
  const share = session.profile.nullTimestampShare;
  return share > 0 && unitHash(session.dataset.options.seed ^ 0x7a11, message.waId) < share;
}

function rfc3339(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/\.000Z$/, 'Z');
}

const WEBJS_TYPES: Record<string, string> = {
  text: 'chat',
  contact: 'vcard',
  reaction: 'reaction',
  protocol: 'protocol',
};

/** The message as the session's engine serves it. */
export function engineMessage(
  session: SimSession,
  chat: SimChat,
  message: SimMessage,
  options: ShapeOptions,
): EngineMessage {
  const profile = session.profile;
  if (profile.engine === 'NOWEB') return nowebMessage(message, options.mediaBase);

  const raw = message.raw;
  const isGroup = chat.kind === 'group';
  const chatId = messageChatId(session, chat);
  const senderJid = raw._data.key.participant;
  const participant = senderJid === undefined ? undefined : servedPersonId(session, senderJid);
  const id = serializedId(message.fromMe, chatId, message.waId, participant);
  const me = meId(session);
  const revoked = message.revoked === true;
  const content = {
    body: revoked ? null : raw.body,
    hasMedia: revoked ? false : raw.hasMedia,
    media: mediaOf(message, options.mediaBase),
  };
  const tail = {
    location: revoked ? null : raw.location,
    vCards: revoked ? null : raw.vCards,
    replyTo:
      revoked || raw.replyTo === null
        ? null
        : { ...raw.replyTo, participant: servedPersonId(session, raw.replyTo.participant) },
  };

  if (profile.engine === 'GOWS') {
    const ack = profile.ackErrorAsNull && raw.ack === -1 ? null : raw.ack;
    const sender = message.fromMe ? me : (participant ?? chatId);
    return {
      id,
      timestamp: hasNullTimestamp(session, message) ? null : message.timestampS,
      from: chatId,
      fromMe: message.fromMe,
      source: raw.source,
      // GOWS: the sender in groups, null in direct chats.
      to: isGroup ? sender : null,
      ...(participant === undefined ? {} : { participant }),
      ...content,
      ack,
      ackName: ackName(ack),
      ...tail,
      _data: {
        Info: {
          ID: message.waId,
          Chat: chatId.replace(/@c\.us$/, '@s.whatsapp.net'),
          Sender: sender.replace(/@c\.us$/, '@s.whatsapp.net'),
          IsFromMe: message.fromMe,
          IsGroup: isGroup,
          Timestamp: rfc3339(message.timestampS),
          PushName: raw._data.pushName ?? '',
        },
        Message: revoked ? { protocolMessage: { type: 'REVOKE' } } : raw._data.message,
      },
    };
  }

  // WEBJS (whatsapp-web.js): `from` is the sender's side of the chat, `to` the other one.
  const hideTimestamp = profile.dropsTimestampWithGte && options.gteGiven;
  const data: Record<string, unknown> = {
    id: { fromMe: message.fromMe, remote: chatId, id: message.waId, _serialized: id },
    type: revoked ? 'revoked' : (WEBJS_TYPES[message.kind] ?? message.kind),
    t: message.timestampS,
  };
  if (isGroup && participant !== undefined) data.author = participant;
  if (!revoked && raw.replyTo !== null) data.quotedStanzaID = raw.replyTo.id;
  return {
    id,
    ...(hideTimestamp ? {} : { timestamp: message.timestampS }),
    from: message.fromMe ? me : chatId,
    fromMe: message.fromMe,
    source: raw.source,
    to: message.fromMe ? chatId : me,
    ...(participant === undefined ? {} : { participant }),
    ...content,
    ack: raw.ack,
    ackName: raw.ackName,
    ...tail,
    _data: data,
  };
}

/** A whatsapp-web.js ContactId / ChatId: `{server, user, _serialized}`. */
function webjsId(serialized: string): { server: string; user: string; _serialized: string } {
  const at = serialized.lastIndexOf('@');
  return { server: serialized.slice(at + 1), user: serialized.slice(0, at), _serialized: serialized };
}

/** The chat list item as the engine serves it. */
export function engineChat(session: SimSession, chat: SimChat): unknown {
  const id = listedChatId(session, chat);
  if (session.profile.engine !== 'WEBJS') return { ...chat.raw, id };
  // whatsapp-web.js Chat objects (WAHA serves them as the library builds them): the id is an object, the
  // activity field is `timestamp`, the newest message comes whole as `lastMessage` (left out when the chat
  // has none), and a group carries its `groupMetadata` with every participant. So an item is a few
  // hundred bytes for a person and grows with the members of a group.
  const isGroup = chat.kind === 'group';
  const newest = chat.messages.findLast((m) => !m.hidden);
  const me = meId(session);
  return {
    ...(isGroup
      ? {
          groupMetadata: {
            id: webjsId(id),
            creation: chat.messages[0]?.timestampS ?? chat.raw.conversationTimestamp ?? 0,
            owner: webjsId(me),
            subject: chat.name ?? '',
            size: chat.participants.length + 1,
            participants: [
              { id: webjsId(me), isAdmin: true, isSuperAdmin: true },
              ...chat.participants.map((p) => ({
                id: webjsId(toCus(p.jid)),
                isAdmin: false,
                isSuperAdmin: false,
              })),
            ],
            pendingParticipants: [],
          },
        }
      : {}),
    id: webjsId(id),
    // whatsapp-web.js falls back to the formatted number for contacts without a saved name.
    name: chat.name ?? `+${id.slice(0, id.lastIndexOf('@'))}`,
    isGroup,
    isReadOnly: false,
    unreadCount: 0,
    timestamp: chat.raw.conversationTimestamp,
    archived: false,
    pinned: false,
    isMuted: false,
    muteExpiration: 0,
    lastMessage: newest === undefined ? undefined : engineMessage(session, chat, newest, { gteGiven: false }),
  };
}
