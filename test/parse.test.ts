import { WahaResponseError } from '../src/errors.js';
import { chatKind, parseChats, parseMessages, parseSession } from '../src/waha/parse.js';

const endpoint = 'GET /api/default/chats/x/messages';
const good = {
  id: 'false_120363025246125888@g.us_3EB0C0FFEE1234567890_5511988887777@c.us',
  timestamp: 1_727_745_026,
  from: '120363025246125888@g.us',
  fromMe: false,
  participant: '5511988887777@c.us',
  body: 'Oi',
  hasMedia: false,
  ack: 3,
  replyTo: { id: '3EB0AAAA', participant: null, body: 'x' },
  _data: { message: { audioMessage: { ptt: true } } },
};

function errorOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(WahaResponseError);
    return (error as Error).message;
  }
  throw new Error('expected a WahaResponseError');
}

const ctx = { session: 's', chat: { id: 'c', chatId: 'c' }, meId: null };

describe('WAHA response validation', () => {
  it('turns a group message into a record with its stable WhatsApp id and participant', () => {
    const [message] = parseMessages([good], endpoint, {
      session: 'default',
      chat: { id: '120363025246125888@g.us', chatId: '120363025246125888@g.us' },
      meId: null,
    });
    expect(message).toMatchObject({
      waId: '3EB0C0FFEE1234567890',
      participant: '5511988887777@c.us',
      fromMe: false,
      type: 'ptt',
      replyToId: '3EB0AAAA',
      timestampS: 1_727_745_026,
      chatId: '120363025246125888@g.us',
    });
  });

  it('names the endpoint, the item and the field when a message is malformed', () => {
    const { id: _id, ...noId } = good;
    expect(errorOf(() => parseMessages([good, noId], endpoint, ctx))).toContain(
      `${endpoint} sent an unexpected response: message #1: 'id' is missing`,
    );
    expect(errorOf(() => parseMessages([{ ...good, timestamp: '1727745026' }], endpoint, ctx))).toContain(
      `'timestamp' is the string "1727745026", expected whole unix seconds`,
    );
    expect(errorOf(() => parseMessages([{ ...good, body: { text: 'x' } }], endpoint, ctx))).toContain(
      `'body' is an object`,
    );
    expect(errorOf(() => parseMessages([{ ...good, timestamp: 32_503_680_000 }], endpoint, ctx))).toContain(
      'not unix seconds between 2009 and 2100',
    );
    expect(errorOf(() => parseMessages({ messages: [] }, endpoint, ctx))).toContain('expected an array');
  });

  it('reads chat ids from NOWEB strings and WEBJS objects', () => {
    const chats = parseChats(
      [
        { id: '5511@c.us', name: 'Ana', conversationTimestamp: 1_727_745_026 },
        { id: { _serialized: '1203@g.us' }, name: null, timestamp: 1_727_745_000 },
      ],
      'GET /api/default/chats',
      'default',
    );
    expect(chats.map((c) => [c.id, c.kind, c.lastActivityAt?.getTime()])).toEqual([
      ['5511@c.us', 'person', 1_727_745_026_000],
      ['1203@g.us', 'group', 1_727_745_000_000],
    ]);
    expect(chatKind('abc@lid')).toBe('lid');
    expect(chatKind('status@broadcast')).toBe('broadcast');
  });

  it('refuses an unknown session status', () => {
    expect(
      errorOf(() => parseSession({ name: 'default', status: 'DANCING' }, 'GET /api/sessions/default')),
    ).toContain('not a known session status');
  });
});
