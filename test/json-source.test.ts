import {
  arrayElementSpans,
  JsonElements,
  jsonSourceOf,
  rememberJsonSource,
  splitJsonArray,
} from '../src/waha/json-source.js';
import { WahaResponseError } from '../src/errors.js';
import { parseChats, parseMessages } from '../src/waha/parse.js';

/** Where the spans lie in the UTF-8 bytes of `text`. */
const spansOf = (text: string): number[] | null => arrayElementSpans(Buffer.from(text));

/** The elements' texts as the spans cut them. */
function elements(text: string): string[] | null {
  const bytes = Buffer.from(text);
  const spans = arrayElementSpans(bytes);
  if (spans === null) return null;
  const out: string[] = [];
  for (let i = 0; i < spans.length; i += 2) out.push(bytes.toString('utf8', spans[i], spans[i + 1]));
  return out;
}

describe('arrayElementSpans', () => {
  it('cuts each element of an array exactly, whatever it holds', () => {
    const values: unknown[] = [
      { id: 'a', body: 'has "quotes", commas, ] brackets } and braces {', n: -1.5e-7 },
      'a string with \\ a backslash and a quote \\" at the end\\\\',
      ['nested', ['deeper', { k: [] }], {}],
      null,
      true,
      0,
      { '\u0000key': '\ud800 lone', emoji: '👍🏽', escaped: '\\u0000 not a NUL' },
      '',
      {},
      [],
    ];
    const compact = JSON.stringify(values);
    expect(elements(compact)).toEqual(values.map((v) => JSON.stringify(v)));
    // With the whitespace JSON allows around every token: each element parses back to its value.
    const pretty = JSON.stringify(values, null, '\t').replaceAll('\n', '\r\n');
    const cut = elements(`  \n${pretty}\n `);
    expect(cut?.map((text) => JSON.parse(text) as unknown)).toEqual(values);
    expect(cut?.every((text) => text.trim() === text)).toBe(true);
  });

  it('gives no elements for an empty array and null for anything that is not an array', () => {
    expect(spansOf('[]')).toEqual([]);
    expect(spansOf(' [ \n ] ')).toEqual([]);
    expect(spansOf('{"a":[1,2]}')).toBeNull();
    expect(spansOf('"[1,2]"')).toBeNull();
    expect(spansOf('[1,2')).toBeNull();
    expect(spansOf('["unterminated]')).toBeNull();
    expect(spansOf('[1,2] 3')).toBeNull();
  });
});

describe('a page parsed from its text', () => {
  const context = { session: 's', chat: { id: 'c@c.us', chatId: 'c@c.us' }, meId: null };
  const page = [
    {
      id: 'false_c@c.us_A1',
      timestamp: 1_727_745_026,
      fromMe: false,
      body: 'first, "quoted"',
      hasMedia: false,
    },
    {
      id: 'true_c@c.us_A2',
      timestamp: 1_727_745_027,
      fromMe: true,
      body: 'NUL \u0000 here',
      _data: { t: 1 },
    },
    { id: 'false_c@c.us_A3', timestamp: 1_727_745_028, fromMe: false, body: 'olá 👍🏽 ação', hasMedia: false },
    { id: 'false_c@c.us_A4', timestamp: 1_727_745_029, fromMe: false, body: 'after the emoji' },
  ];

  function parsedFrom(bytes: Buffer) {
    const text = bytes.toString('utf8');
    const body = JSON.parse(text) as unknown;
    rememberJsonSource(body, bytes);
    expect(jsonSourceOf(body)).toBe(text);
    return parseMessages(body, 'GET x', context);
  }

  it('carries each message as the UTF-8 bytes WAHA sent, and no parsed copy', () => {
    for (const text of [JSON.stringify(page.slice(0, 2), null, 1), JSON.stringify(page, null, 1)]) {
      const records = parsedFrom(Buffer.from(text));
      expect(records.map((r) => r.raw)).toEqual(records.map(() => undefined));
      expect(records.map((r) => JSON.parse(r.rawJson!.toString('utf8')) as unknown)).toEqual(
        page.slice(0, records.length),
      );
      expect(records.map((r) => r.id)).toEqual(page.slice(0, records.length).map((m) => m.id));
    }
  });

  it('keeps the parsed value when the text is not known, or the bytes are not valid UTF-8', () => {
    const records = parseMessages(structuredClone(page), 'GET x', context);
    expect(records.map((r) => r.raw)).toEqual(page);
    expect(records.map((r) => r.rawJson)).toEqual(page.map(() => undefined));

    // A byte that is no UTF-8 inserted: the text holds U+FFFD there, which is what gets stored.
    const text = JSON.stringify(page);
    const at = text.indexOf('first') + 3;
    const bytes = Buffer.concat([
      Buffer.from(text.slice(0, at)),
      Buffer.from([0xff]),
      Buffer.from(text.slice(at)),
    ]);
    const broken = parsedFrom(bytes);
    expect(broken.map((r) => r.rawJson)).toEqual(page.map(() => undefined));
    expect((broken[0]!.raw as { body: string }).body).toBe('fir\uFFFDst, "quoted"');

    // The same in a page otherwise ASCII: the bad byte and its U+FFFD are one character each, so the
    // text is as long as the bytes, which does not make the bytes ASCII.
    const asciiPage = page.slice(0, 2).map((m) => ({ ...m, body: 'first, plain' }));
    const asciiText = JSON.stringify(asciiPage);
    const cut = asciiText.indexOf('first') + 3;
    const asciiBroken = parsedFrom(
      Buffer.concat([
        Buffer.from(asciiText.slice(0, cut)),
        Buffer.from([0xff]),
        Buffer.from(asciiText.slice(cut)),
      ]),
    );
    expect(asciiBroken.map((r) => r.rawJson)).toEqual([undefined, undefined]);
    expect((asciiBroken[0]!.raw as { body: string }).body).toBe('fir\uFFFDst, plain');
  });
});

describe('chat list items', () => {
  // WEBJS sends a chat with its newest message whole and a group with every member: held as bytes.
  const list = [
    {
      id: { server: 'g.us', user: '120363001', _serialized: '120363001@g.us' },
      name: 'Família 👍🏽',
      timestamp: 1_727_745_030,
      groupMetadata: { participants: [{ id: { _serialized: '5511900000001@c.us' }, isAdmin: true }] },
      lastMessage: { id: 'false_120363001@g.us_A1', body: 'NUL \u0000 here', _data: { t: 1_727_745_030 } },
    },
    { id: '5511900000002@c.us', name: null, conversationTimestamp: 1_727_745_020 },
  ];

  it('carries each chat as the UTF-8 bytes WAHA sent, and no parsed copy; the value when they are unknown', () => {
    const text = JSON.stringify(list, null, 1);
    const body = JSON.parse(text) as unknown;
    rememberJsonSource(body, Buffer.from(text));
    const chats = parseChats(body, 'GET x', 'default');
    expect(chats.map((c) => c.raw)).toEqual([undefined, undefined]);
    expect(chats.map((c) => JSON.parse(c.rawJson!.toString('utf8')) as unknown)).toEqual(list);
    expect(chats.map((c) => c.id)).toEqual(['120363001@g.us', '5511900000002@c.us']);

    const unknown = parseChats(structuredClone(list), 'GET x', 'default');
    expect(unknown.map((c) => c.raw)).toEqual(list);
    expect(unknown.map((c) => c.rawJson)).toEqual([undefined, undefined]);
  });
});

describe('splitJsonArray', () => {
  const split = (text: string, bytes = Buffer.from(text)) => splitJsonArray(bytes);

  it('keeps each element as its bytes and parses one only when asked', () => {
    const items = [{ a: 'olá 👍🏽', b: [1, { c: '],}' }] }, null, 'x', { d: '\\"' }];
    for (const text of [JSON.stringify(items), JSON.stringify(items, null, 3), ' [ ] ', '[7]']) {
      const elements = split(text)!;
      expect(elements).toBeInstanceOf(JsonElements);
      const expected = JSON.parse(text) as unknown[];
      expect(elements.length).toBe(expected.length);
      for (let i = 0; i < elements.length; i++) {
        expect(elements.value(i)).toEqual(expected[i]);
        expect(JSON.parse(elements.bytes(i).toString('utf8'))).toEqual(expected[i]);
      }
    }
  });

  it('gives null for what is not a plain array in UTF-8, and a SyntaxError for a broken element', () => {
    for (const text of ['{"a":1}', '"x"', '[1,2', '[1}2]', '[1,,2]', '[1,2]x', '[1 ]]']) {
      expect([text, split(text)]).toEqual([text, null]);
    }
    const text = '["ok"]';
    expect(split(text, Buffer.from([0x5b, 0x22, 0xff, 0x6b, 0x22, 0x5d, 0x20]))).toBeNull();
    const broken = split('["ok", {"a": 1 "b": 2}, tru]')!;
    expect(broken.value(0)).toBe('ok');
    expect(() => broken.value(1)).toThrow(SyntaxError);
    expect(() => broken.value(2)).toThrow(SyntaxError);
  });

  it('a chat list with a broken item is refused by name, its text shown escaped', () => {
    const text = '[{"id":"1@c.us"}, {"id": "\u001b[31m" oops}]';
    const elements = split(text)!;
    const error = (() => {
      try {
        parseChats(elements, 'GET /api/default/chats', 'default');
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(WahaResponseError);
    expect((error as Error).message).toBe(
      'GET /api/default/chats answered with malformed JSON (chat #1, 20 bytes, starting "{\\"id\\": \\"\\u001b[31m\\" oops}")',
    );
  });
});
