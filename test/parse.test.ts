import { WahaResponseError } from '../src/errors.js';
import { canonicalId, mergesPersonForms, otherPersonForms } from '../src/waha/ids.js';
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

describe('engine differences in message records', () => {
  const lids = new Map([['210054939833983@lid', '5527907218827@c.us']]);
  const context = (chatId: string) => ({
    session: 's',
    chat: { id: chatId, chatId },
    meId: '5511900000000@c.us',
    lids,
  });

  it('takes the time from _data when WAHA leaves timestamp out, per engine, and null when nothing has it', () => {
    const base = { id: 'false_5511988887777@c.us_AAA', fromMe: false, body: 'x' };
    const at = (raw: Record<string, unknown>) =>
      parseMessages([{ ...base, ...raw }], endpoint, context('5511988887777@c.us'))[0]!.timestampS;
    // GOWS: null timestamp, whatsmeow's RFC 3339 time in _data.Info.
    expect(at({ timestamp: null, _data: { Info: { ID: 'AAA', Timestamp: '2024-10-01T01:10:26Z' } } })).toBe(
      1_727_745_026,
    );
    // WEBJS 2026.4.1 with a gte filter: no timestamp at all, _data.t has it.
    expect(at({ _data: { id: { id: 'AAA' }, t: 1_727_745_026 } })).toBe(1_727_745_026);
    // NOWEB: Baileys' protobuf Long and its decimal string.
    expect(at({ _data: { messageTimestamp: { low: 1_727_745_026, high: 0, unsigned: true } } })).toBe(
      1_727_745_026,
    );
    expect(at({ _data: { messageTimestamp: '1727745026' } })).toBe(1_727_745_026);
    // Whatsmeow's zero time means unknown; with nothing else, the message keeps a null time.
    expect(at({ timestamp: null, _data: { Info: { Timestamp: '0001-01-01T00:00:00Z' } } })).toBeNull();
    expect(at({})).toBeNull();
    // A present but impossible fallback is a broken response, named as such.
    expect(
      errorOf(() =>
        parseMessages(
          [{ ...base, timestamp: null, _data: { Info: { Timestamp: 'yesterday' } } }],
          endpoint,
          context('5511988887777@c.us'),
        ),
      ),
    ).toContain(`'_data.Info.Timestamp' is the string "yesterday"`);
  });

  it('names the sender: the participant in groups, me when fromMe, else the chat; never `from` as such', () => {
    const group = '120363022795578411@g.us';
    const [inGroup, mine, direct] = [
      parseMessages(
        [
          {
            id: `false_${group}_BBB_210054939833983@lid`,
            timestamp: 1_727_745_026,
            from: group,
            fromMe: false,
            participant: '210054939833983@lid',
          },
        ],
        endpoint,
        context(group),
      )[0]!,
      // NOWEB and GOWS put the chat in `from` of your own messages too.
      parseMessages(
        [
          {
            id: 'true_5511988887777@c.us_CCC',
            timestamp: 1_727_745_026,
            from: '5511988887777@c.us',
            fromMe: true,
          },
        ],
        endpoint,
        context('5511988887777@c.us'),
      )[0]!,
      parseMessages(
        [
          {
            id: 'false_210054939833983@lid_DDD',
            timestamp: 1_727_745_026,
            from: '210054939833983@lid',
            fromMe: false,
          },
        ],
        endpoint,
        context('210054939833983@lid'),
      )[0]!,
    ];
    expect(inGroup).toMatchObject({
      chatId: group,
      sender: '5527907218827@c.us',
      participant: '5527907218827@c.us',
    });
    expect(mine).toMatchObject({ chatId: '5511988887777@c.us', sender: '5511900000000@c.us' });
    // A @lid WAHA can map is stored as the phone number's id, chat and sender alike.
    expect(direct).toMatchObject({ chatId: '5527907218827@c.us', sender: '5527907218827@c.us', waId: 'DDD' });
  });

  it('stores a message under the chat its id names, whichever chat (or merged history) brought it', () => {
    const message = {
      id: 'false_210054939833983@lid_EEE',
      timestamp: 1_727_745_026,
      from: '210054939833983@lid',
      fromMe: false,
    };
    // Read through the person's @c.us chat (merge) and through the @lid chat: one stored chat either way.
    const viaPhone = parseMessages([message], endpoint, context('5527907218827@c.us'))[0]!;
    const viaLid = parseMessages([message], endpoint, context('210054939833983@lid'))[0]!;
    const viaOther = parseMessages([message], endpoint, context('5599999999999@c.us'))[0]!;
    expect([viaPhone.chatId, viaLid.chatId, viaOther.chatId]).toEqual([
      '5527907218827@c.us',
      '5527907218827@c.us',
      '5527907218827@c.us',
    ]);
  });

  it('reads the session engine from engine.engine, and the old string form', () => {
    const session = (engine: unknown) =>
      parseSession({ name: 'default', status: 'WORKING', me: null, engine }, 'GET /api/sessions/default')
        .engine;
    expect(session({ engine: 'GOWS' })).toBe('GOWS');
    expect(session('webjs')).toBe('WEBJS');
    expect(session(undefined)).toBeNull();
  });
});

describe('stored chat ids', () => {
  it('turns every form of one person into one id', () => {
    const lids = new Map([['123@lid', '5511988887777@s.whatsapp.net']]);
    expect(canonicalId('5511988887777@s.whatsapp.net')).toBe('5511988887777@c.us');
    expect(canonicalId('5511988887777:12@s.whatsapp.net')).toBe('5511988887777@c.us');
    expect(canonicalId('5511988887777@c.us')).toBe('5511988887777@c.us');
    expect(canonicalId('123@lid', lids)).toBe('5511988887777@c.us');
    expect(canonicalId('123:4@lid', lids)).toBe('5511988887777@c.us');
    // Unknown to WAHA: the lid stays (stable until WAHA learns the number).
    expect(canonicalId('999@lid', lids)).toBe('999@lid');
    expect(canonicalId('120363022795578411@g.us', lids)).toBe('120363022795578411@g.us');
    expect(canonicalId('status@broadcast')).toBe('status@broadcast');
  });
});

describe('a person under two ids on a WAHA that does not merge them', () => {
  it('merging starts with 2026.3.1; a version not read counts as not merging', () => {
    expect(mergesPersonForms('2026.3.1')).toBe(true);
    expect(mergesPersonForms('2026.10.2')).toBe(true);
    expect(mergesPersonForms('2026.4.1-sim')).toBe(true);
    expect(mergesPersonForms('2026.2.1')).toBe(false);
    expect(mergesPersonForms('2025.12.9')).toBe(false);
    expect(mergesPersonForms('2026.1')).toBe(false);
    expect(mergesPersonForms('latest')).toBe(false);
    expect(mergesPersonForms(null)).toBe(false);
  });

  it("adds each person's other form that the listing lacks, once, under the same stored id", () => {
    const lids = new Map([
      ['111@lid', '5511900000001@c.us'],
      ['222@lid', '5511900000002@s.whatsapp.net'],
      ['333@lid', '5511900000003@c.us'],
    ]);
    const chat = (id: string) => ({ id, chatId: canonicalId(id, lids), name: id });
    const listed = [
      chat('111@lid'), // GOWS: people by lid; the number's part is listed by no id
      chat('5511900000002@s.whatsapp.net'), // NOWEB: by number; its lid is not listed
      chat('333@lid'), // both forms listed: nothing to add
      chat('5511900000003@s.whatsapp.net'),
      chat('444@lid'), // no number known: no other form
      chat('120363022795578411@g.us'),
    ];
    expect(otherPersonForms(listed, lids)).toEqual([
      { id: '5511900000001@c.us', chatId: '5511900000001@c.us', name: '111@lid' },
      { id: '222@lid', chatId: '5511900000002@c.us', name: '5511900000002@s.whatsapp.net' },
    ]);
  });
});
