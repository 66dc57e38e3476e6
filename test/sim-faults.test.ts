import http from 'node:http';
import {
  generateDataset,
  startOfUtcDayS,
  startSimulator,
  YEAR_3000_S,
  type SimRequest,
  type Simulator,
  type WaMessage,
} from '../src/sim/index.js';

/** The simulator's body faults, request hooks, hostile paging and chat relinking. */

const ANCHOR_S = startOfUtcDayS(Date.UTC(2026, 1, 15));
const DATASET = generateDataset({ anchorS: ANCHOR_S, chats: 6, messages: 60, bigChats: [30], groupRatio: 0 });
const CHAT_ID = DATASET.chats[0]!.id;
const OTHER_CHAT_ID = DATASET.chats[1]!.id;

function messagesPath(chatId: string, query = 'limit=10&downloadMedia=false'): string {
  return `/api/default/chats/${encodeURIComponent(chatId)}/messages?${query}`;
}

async function getJson<T>(sim: Simulator, path: string): Promise<{ status: number; body: T }> {
  const response = await fetch(sim.url + path);
  return { status: response.status, body: (await response.json()) as T };
}

/** A raw GET: status, headers, and the body chunks as they arrived, or the error that ended it. */
function rawGet(
  sim: Simulator,
  path: string,
  options: { stopAfterBytes?: number } = {},
): Promise<{
  status: number;
  headers: http.IncomingHttpHeaders;
  chunks: Buffer[];
  error: Error | undefined;
}> {
  return new Promise((resolve, reject) => {
    const request = http.get(sim.url + path, (response) => {
      const chunks: Buffer[] = [];
      let received = 0;
      let settled = false;
      const done = (error: Error | undefined): void => {
        if (settled) return;
        settled = true;
        resolve({ status: response.statusCode ?? 0, headers: response.headers, chunks, error });
      };
      response.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        received += chunk.length;
        if (options.stopAfterBytes !== undefined && received >= options.stopAfterBytes) {
          request.destroy();
          done(undefined);
        }
      });
      response.on('end', () => done(undefined));
      response.on('error', (error) => done(error));
      response.on('aborted', () => done(new Error('aborted')));
    });
    request.on('error', reject);
  });
}

async function waitFor(sim: Simulator, predicate: (s: ReturnType<Simulator['stats']>) => boolean) {
  for (let attempt = 0; attempt < 2000; attempt++) {
    if (predicate(sim.stats())) return;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  throw new Error(`stats never reached the expected state: ${JSON.stringify(sim.stats())}`);
}

describe('body faults', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator({ sessions: [{ name: 'default', dataset: DATASET }] });
  });
  afterAll(() => sim.close());
  beforeEach(() => sim.resetStats());

  it('drop-body sends the headers and half of the body, then destroys the socket', async () => {
    const whole = await getJson<WaMessage[]>(sim, messagesPath(CHAT_ID));
    const wholeText = JSON.stringify(whole.body);
    sim.failNext(1, { kind: 'drop-body', route: 'messages' });
    const dropped = await rawGet(sim, messagesPath(CHAT_ID));
    expect(dropped.status).toBe(200);
    expect(Number(dropped.headers['content-length'])).toBe(Buffer.byteLength(wholeText));
    expect(dropped.error).toBeDefined();
    const received = Buffer.concat(dropped.chunks).toString('utf8');
    expect(received.length).toBeGreaterThan(0);
    expect(received.length).toBeLessThan(wholeText.length);
    expect(wholeText.startsWith(received)).toBe(true);
    expect(sim.stats().bodyFaults).toEqual({ 'drop-body': 1 });
    // Used up: the next answer is whole again.
    expect((await getJson<WaMessage[]>(sim, messagesPath(CHAT_ID))).body).toEqual(whole.body);
  });

  it('malformed-json is a complete 200 whose body is the first half of the JSON', async () => {
    const whole = JSON.stringify((await getJson<WaMessage[]>(sim, messagesPath(CHAT_ID))).body);
    sim.failNext(1, { kind: 'malformed-json' });
    const answer = await rawGet(sim, messagesPath(CHAT_ID));
    expect(answer.status).toBe(200);
    expect(answer.error).toBeUndefined();
    const bytes = Buffer.concat(answer.chunks);
    const wholeBytes = Buffer.from(whole, 'utf8');
    expect(bytes.equals(wholeBytes.subarray(0, Math.floor(wholeBytes.length / 2)))).toBe(true);
    expect(() => JSON.parse(bytes.toString('utf8')) as unknown).toThrow();
  });

  it.each([
    ['missing-id', (m: Record<string, unknown>) => expect('id' in m).toBe(false)],
    ['timestamp-not-number', (m: Record<string, unknown>) => expect(typeof m.timestamp).toBe('string')],
    ['body-object', (m: Record<string, unknown>) => expect(m.body).toEqual({ text: expect.any(String) })],
    ['timestamp-year-3000', (m: Record<string, unknown>) => expect(m.timestamp).toBe(YEAR_3000_S)],
  ] as const)('%s spoils only the first message of the page', async (kind, check) => {
    const whole = (await getJson<Array<Record<string, unknown>>>(sim, messagesPath(CHAT_ID))).body;
    sim.failNext(1, { kind });
    const spoiled = (await getJson<Array<Record<string, unknown>>>(sim, messagesPath(CHAT_ID))).body;
    expect(spoiled).toHaveLength(whole.length);
    check(spoiled[0]!);
    expect(spoiled[0]).not.toEqual(whole[0]);
    expect(spoiled.slice(1)).toEqual(whole.slice(1));
    expect(sim.stats().bodyFaults).toEqual({ [kind]: 1 });
    // The dataset itself is untouched.
    expect((await getJson(sim, messagesPath(CHAT_ID))).body).toEqual(whole);
  });

  it('a failure for one chat waits for that chat, whatever comes first', async () => {
    const whole = (await getJson<WaMessage[]>(sim, messagesPath(OTHER_CHAT_ID))).body;
    sim.failNext(1, { kind: 'missing-id', chatId: OTHER_CHAT_ID });
    expect((await getJson(sim, '/api/default/chats')).status).toBe(200);
    expect((await getJson<WaMessage[]>(sim, messagesPath(CHAT_ID))).body[0]).toHaveProperty('id');
    const spoiled = (await getJson<WaMessage[]>(sim, messagesPath(OTHER_CHAT_ID))).body;
    expect(spoiled[0]).not.toHaveProperty('id');
    expect((await getJson<WaMessage[]>(sim, messagesPath(OTHER_CHAT_ID))).body).toEqual(whole);
  });

  it('slow-loris sends the whole body, a byte at a time', async () => {
    const whole = JSON.stringify((await getJson(sim, '/api/default/chats?limit=1')).body);
    sim.failNext(1, { kind: 'slow-loris', route: 'chats', byteIntervalMs: 1 });
    const answer = await rawGet(sim, '/api/default/chats?limit=1');
    expect(answer.error).toBeUndefined();
    expect(Buffer.concat(answer.chunks).toString('utf8')).toBe(whole);
    expect(answer.chunks.length).toBeGreaterThan(whole.length / 2);
  });

  it('slow-loris stops and frees its slot when the client leaves', async () => {
    sim.failNext(1, { kind: 'slow-loris', byteIntervalMs: 1 });
    const answer = await rawGet(sim, messagesPath(CHAT_ID), { stopAfterBytes: 5 });
    expect(answer.status).toBe(200);
    await waitFor(sim, (s) => s.inFlight === 0);
    expect(sim.stats().bodyFaults).toEqual({ 'slow-loris': 1 });
  });

  it('huge-body streams exactly hugeBytes of valid JSON without a content-length', async () => {
    sim.failNext(1, { kind: 'huge-body', hugeBytes: 1024 * 1024 + 7 });
    const answer = await rawGet(sim, messagesPath(CHAT_ID));
    expect(answer.headers['content-length']).toBeUndefined();
    const body = Buffer.concat(answer.chunks);
    expect(body.length).toBe(1024 * 1024 + 7);
    expect(JSON.parse(body.toString('utf8'))).toEqual([
      { id: 'false_0@c.us_HUGE', padding: expect.stringMatching(/^x+$/) },
    ]);
  });

  it('huge-body stops and frees its slot when the client leaves', async () => {
    sim.failNext(1, { kind: 'huge-body' });
    const answer = await rawGet(sim, messagesPath(CHAT_ID), { stopAfterBytes: 256 * 1024 });
    expect(answer.status).toBe(200);
    await waitFor(sim, (s) => s.inFlight === 0);
  });

  it('a body fault on an answer that is not 200 leaves it alone', async () => {
    sim.failNext(1, { kind: 'missing-id' });
    const refused = await getJson<{ statusCode: number }>(
      sim,
      messagesPath(CHAT_ID, 'limit=500&downloadMedia=false'),
    );
    expect(refused.status).toBe(400);
    expect(sim.stats().bodyFaults).toEqual({});
  });

  it('rejects an unknown kind and bad sizes', () => {
    expect(() => sim.failNext(1, { kind: 'gibberish' as 'drop-body' })).toThrow(/kind must be one of/);
    expect(() => sim.failNext(1, { kind: 'huge-body', hugeBytes: -1 })).toThrow(/hugeBytes/);
  });
});

describe('request hooks', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator({ sessions: [{ name: 'default', dataset: DATASET }] });
  });
  afterAll(() => sim.close());

  it('see every chat-list and message request, and hold its answer until they resolve', async () => {
    const seen: SimRequest[] = [];
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    let reached: (request: SimRequest) => void = () => undefined;
    const held = new Promise<SimRequest>((resolve) => (reached = resolve));
    const remove = sim.onRequest(async (request) => {
      seen.push(request);
      if (request.chatId === CHAT_ID) {
        reached(request);
        await released;
      }
    });
    expect((await getJson(sim, '/api/version')).status).toBe(200);
    expect((await getJson(sim, '/api/default/chats?limit=2')).status).toBe(200);
    let answered = false;
    const pending = getJson(sim, messagesPath(CHAT_ID)).then((answer) => {
      answered = true;
      return answer;
    });
    const request = await held;
    expect(request).toEqual({
      route: 'messages',
      session: 'default',
      chatId: CHAT_ID,
      requestedChatId: CHAT_ID,
      query: { limit: '10', downloadMedia: 'false' },
    });
    expect(answered).toBe(false);
    expect(sim.stats().inFlight).toBe(1);
    release();
    expect((await pending).status).toBe(200);
    expect(seen.map((r) => r.route)).toEqual(['chats', 'messages']);
    remove();
    await getJson(sim, '/api/default/chats');
    expect(seen).toHaveLength(2);
  });
});

describe('hostile paging', () => {
  it('ignoreOffset answers every page of the listed routes as if offset were 0', async () => {
    const sim = await startSimulator({
      sessions: [{ name: 'default', dataset: DATASET }],
      ignoreOffset: ['messages'],
    });
    try {
      const first = await getJson<WaMessage[]>(sim, messagesPath(CHAT_ID, 'limit=10&offset=0'));
      const far = await getJson<WaMessage[]>(sim, messagesPath(CHAT_ID, 'limit=10&offset=1000'));
      expect(first.body.length).toBeGreaterThan(5);
      expect(far.body).toEqual(first.body);
      const chats = await getJson<unknown[]>(sim, '/api/default/chats?limit=2&offset=1000');
      expect(chats.body).toEqual([]);
    } finally {
      await sim.close();
    }
    await expect(startSimulator({ ignoreOffset: ['sessions' as 'chats'] })).rejects.toThrow(/ignoreOffset/);
  });
});

describe('relinkChat', () => {
  it('serves a person’s chat under its new @lid id: new serialized ids, the same waIds', async () => {
    const sim = await startSimulator({ sessions: [{ name: 'default', dataset: DATASET }] });
    try {
      const person = DATASET.chats.find((c) => c.kind === 'person')!;
      const before = sim.groundTruth('default').messages.filter((m) => m.from === person.id);
      const lid = '123456789012345@lid';
      expect(sim.relinkChat('default', person.id, lid)).toBe(person.messages.length);

      const after = sim.groundTruth('default').messages.filter((m) => m.id.includes(`_${lid}_`));
      expect(after.map((m) => m._data.key.id)).toEqual(before.map((m) => m._data.key.id));
      expect(after.map((m) => m.id)).toEqual(before.map((m) => m.id.replace(person.id, lid)));
      expect(after.every((m) => m.from === lid && m._data.key.remoteJid === lid)).toBe(true);
      expect(sim.groundTruth('default').messages.some((m) => m.id.includes(person.id))).toBe(false);

      const chats = await getJson<Array<{ id: string }>>(sim, '/api/default/chats');
      expect(chats.body.map((c) => c.id)).toContain(lid);
      expect(chats.body.map((c) => c.id)).not.toContain(person.id);
      expect((await getJson<WaMessage[]>(sim, messagesPath(person.id))).body).toEqual([]);
      const served = await getJson<WaMessage[]>(sim, messagesPath(lid, 'limit=100&downloadMedia=false'));
      expect(served.body.map((m) => m.id).sort()).toEqual(after.map((m) => m.id).sort());

      expect(() => sim.relinkChat('default', person.id, '1@lid')).toThrow(/no chat/);
      expect(() => sim.relinkChat('default', lid, DATASET.chats[2]!.id)).toThrow(/already exists/);
      expect(() => sim.relinkChat('default', lid, 'x@g.us')).toThrow(/not a @c.us or @lid/);
    } finally {
      await sim.close();
    }
  });
});
