import { generateDataset, startOfUtcDayS, startSimulator, type Simulator } from '../src/sim/index.js';

const ANCHOR_S = startOfUtcDayS(Date.UTC(2026, 1, 15));
const DATASET = generateDataset({ anchorS: ANCHOR_S, chats: 6, messages: 60, bigChats: [30] });
const CHAT_ID = DATASET.chats[0]!.id;
const MESSAGES_PATH = `/api/default/chats/${encodeURIComponent(CHAT_ID)}/messages?limit=10&downloadMedia=false`;

interface Answer {
  status: number;
  text: string;
  headers: Headers;
  json: () => unknown;
}

async function get(sim: Simulator, path: string, init?: RequestInit): Promise<Answer> {
  const response = await fetch(sim.url + path, init);
  const text = await response.text();
  return { status: response.status, text, headers: response.headers, json: () => JSON.parse(text) };
}

function start(options: Parameters<typeof startSimulator>[0] = {}): Promise<Simulator> {
  return startSimulator({ sessions: [{ name: 'default', dataset: DATASET }], ...options });
}

/** Polls the stats route (which bypasses the queue) until `predicate` holds, or gives up after `attempts`. */
async function waitForStats(sim: Simulator, predicate: (s: ReturnType<Simulator['stats']>) => boolean) {
  for (let attempt = 0; attempt < 400; attempt++) {
    const stats = (await get(sim, '/__sim/stats')).json() as ReturnType<Simulator['stats']>;
    if (predicate(stats)) return stats;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error('stats never reached the expected state');
}

describe('authentication', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await start({ apiKey: 's3cr3t' });
  });
  afterAll(() => sim.close());

  it('answers 401 without the right X-Api-Key and serves with it', async () => {
    const missing = await get(sim, '/api/default/chats');
    expect(missing.status).toBe(401);
    expect(missing.json()).toEqual({ message: 'Unauthorized', statusCode: 401 });
    const wrong = await get(sim, MESSAGES_PATH, { headers: { 'X-Api-Key': 'nope' } });
    expect(wrong.status).toBe(401);
    const right = await get(sim, MESSAGES_PATH, { headers: { 'X-Api-Key': 's3cr3t' } });
    expect(right.status).toBe(200);
    expect(right.json()).toHaveLength(10);
    const stats = await get(sim, '/__sim/stats');
    expect(stats.status).toBe(200);
    expect(stats.json()).toMatchObject({ requests: 3, byStatus: { 401: 2, 200: 1 } });
  });
});

describe('errors WAHA answers', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator({
      sessions: [
        { name: 'default', dataset: DATASET },
        { name: 'phone', status: 'SCAN_QR_CODE', dataset: DATASET },
      ],
    });
  });
  afterAll(() => sim.close());

  it('404 for an unknown session on the session route, 422 (never 404) on chat routes', async () => {
    const session = await get(sim, '/api/sessions/ghost');
    expect(session.status).toBe(404);
    expect(session.json()).toMatchObject({ statusCode: 404, error: 'Not Found' });
    for (const path of ['/api/ghost/chats', '/api/ghost/chats/1%40c.us/messages']) {
      const answer = await get(sim, path);
      expect(answer.status).toBe(422);
      expect(answer.json()).toMatchObject({ statusCode: 422, message: 'Session "ghost" does not exist' });
    }
  });

  it('422 on chat routes of a session that is not WORKING, until it is', async () => {
    const expected = {
      error: 'Session status is not as expected. Try again later or restart the session',
      session: 'phone',
      status: 'SCAN_QR_CODE',
      expected: ['WORKING'],
    };
    const chats = await get(sim, '/api/phone/chats');
    expect(chats.status).toBe(422);
    expect(chats.json()).toEqual(expected);
    const messages = await get(sim, `/api/phone/chats/${encodeURIComponent(CHAT_ID)}/messages`);
    expect(messages.status).toBe(422);
    const session = await get(sim, '/api/sessions/phone');
    expect(session.json()).toMatchObject({ name: 'phone', status: 'SCAN_QR_CODE', me: null });

    sim.setSessionStatus('phone', 'WORKING');
    expect((await get(sim, '/api/phone/chats')).status).toBe(200);
    expect((await get(sim, '/api/sessions/phone')).json()).toMatchObject({
      status: 'WORKING',
      me: DATASET.me,
    });
    sim.setSessionStatus('phone', 'FAILED');
    expect((await get(sim, '/api/phone/chats')).json()).toMatchObject({ status: 'FAILED' });
  });

  it('400 for a limit above the page cap and for bad sort or filter values', async () => {
    const tooBig = await get(sim, `/api/default/chats/${encodeURIComponent(CHAT_ID)}/messages?limit=101`);
    expect(tooBig.status).toBe(400);
    expect(tooBig.json()).toEqual({
      message: ['limit must not be greater than 100'],
      error: 'Bad Request',
      statusCode: 400,
    });
    expect(sim.stats().maxLimitSeen).toBe(101);
    expect(
      (await get(sim, `/api/default/chats/${encodeURIComponent(CHAT_ID)}/messages?limit=100`)).status,
    ).toBe(200);

    for (const path of [
      '/api/default/chats?sortBy=lastMessage',
      '/api/default/chats?limit=-1',
      `/api/default/chats/${encodeURIComponent(CHAT_ID)}/messages?sortBy=body`,
      `/api/default/chats/${encodeURIComponent(CHAT_ID)}/messages?filter.timestamp.gte=yesterday`,
      `/api/default/chats/${encodeURIComponent(CHAT_ID)}/messages?filter.fromMe=maybe`,
    ]) {
      const answer = await get(sim, path);
      expect({ path, status: answer.status }).toEqual({ path, status: 400 });
      expect(answer.json()).toMatchObject({ error: 'Bad Request', message: [expect.any(String)] });
    }
    // WAHA accepts any sortOrder (anything but asc is desc) and drops unknown parameters.
    expect((await get(sim, '/api/default/chats?sortOrder=sideways&colour=blue')).status).toBe(200);
  });

  it('404 JSON for anything else', async () => {
    const unknown = await get(sim, '/api/default/contacts');
    expect(unknown.status).toBe(404);
    expect(unknown.json()).toEqual({
      message: 'Cannot GET /api/default/contacts',
      error: 'Not Found',
      statusCode: 404,
    });
    expect((await get(sim, '/api/version', { method: 'POST' })).status).toBe(404);
    expect(sim.stats().byRoute.other).toBe(2);
  });
});

describe('engines', () => {
  it('WEBJS lists chats with object ids and a timestamp', async () => {
    const sim = await start({ engine: 'WEBJS' });
    try {
      const chats = (await get(sim, '/api/default/chats?sortBy=conversationTimestamp')).json() as Array<{
        id: { _serialized: string; user: string; server: string };
        timestamp: number;
      }>;
      expect(chats.map((c) => c.id._serialized).sort()).toEqual(DATASET.chats.map((c) => c.id).sort());
      expect(chats.every((c) => `${c.id.user}@${c.id.server}` === c.id._serialized)).toBe(true);
      const times = chats.map((c) => c.timestamp);
      expect(times).toEqual([...times].sort((a, b) => b - a));
      expect((await get(sim, '/api/version')).json()).toMatchObject({ engine: 'WEBJS' });
    } finally {
      await sim.close();
    }
  });
});

describe('capacity', () => {
  it('serves at most `capacity` requests at once and queues the rest', async () => {
    const sim = await start({ capacity: 2, latencyMs: 50 });
    try {
      const answers = await Promise.all(
        Array.from({ length: 10 }, () => get(sim, '/api/default/chats?limit=1')),
      );
      expect(answers.map((a) => a.status)).toEqual(Array(10).fill(200));
      const stats = sim.stats();
      expect(stats.peakInFlight).toBe(2);
      expect(stats.peakQueued).toBeGreaterThanOrEqual(1);
      expect(stats.peakQueued).toBeLessThanOrEqual(8);
      expect(stats).toMatchObject({ inFlight: 0, queued: 0, rejected503: 0, requests: 10 });
    } finally {
      await sim.close();
    }
  });

  it('hands freed slots to waiting requests first come, first served', async () => {
    const sim = await start({ capacity: 1, latencyMs: 30 });
    try {
      const finished: number[] = [];
      const pending: Array<Promise<void>> = [];
      for (let i = 0; i < 4; i++) {
        pending.push(get(sim, `/api/default/chats?limit=${i + 1}`).then(() => void finished.push(i)));
        // Wait until the server has seen this request, so the arrival order is known.
        await waitForStats(sim, (s) => s.requests === i + 1);
      }
      await Promise.all(pending);
      expect(finished).toEqual([0, 1, 2, 3]);
    } finally {
      await sim.close();
    }
  });

  it('without a capacity limit the same load runs concurrently', async () => {
    const sim = await start({ latencyMs: 50 });
    try {
      await Promise.all(Array.from({ length: 10 }, () => get(sim, '/api/default/chats?limit=1')));
      expect(sim.stats().peakInFlight).toBeGreaterThan(2);
    } finally {
      await sim.close();
    }
  });

  it('turns requests away with 503 once the queue is full', async () => {
    const sim = await start({ capacity: 1, queueLimit: 2, latencyMs: 150 });
    try {
      const answers = await Promise.all(
        Array.from({ length: 6 }, () => get(sim, '/api/default/chats?limit=1')),
      );
      const ok = answers.filter((a) => a.status === 200);
      const rejected = answers.filter((a) => a.status === 503);
      expect(ok.length + rejected.length).toBe(6);
      expect(ok.length).toBeGreaterThanOrEqual(3);
      expect(rejected.length).toBeGreaterThanOrEqual(1);
      expect(rejected[0]?.json()).toMatchObject({ statusCode: 503 });
      const stats = sim.stats();
      expect(stats.rejected503).toBe(rejected.length);
      expect(stats.peakQueued).toBe(2);
      expect(stats.peakInFlight).toBe(1);
    } finally {
      await sim.close();
    }
  });

  it('holds chat routes of a non-WORKING session before answering 422', async () => {
    const sim = await startSimulator({
      sessions: [{ name: 'default', status: 'STARTING', dataset: DATASET }],
      notWorkingDelayMs: 400,
    });
    try {
      const pending = get(sim, '/api/default/chats');
      const during = await waitForStats(sim, (s) => s.byRoute.chats === 1);
      expect(during.inFlight).toBe(1);
      expect((await pending).status).toBe(422);
      expect(sim.stats().inFlight).toBe(0);
    } finally {
      await sim.close();
    }
  });
});

describe('faults', () => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await start({ hangMs: 300 });
  });
  afterAll(() => sim.close());
  beforeEach(() => sim.resetStats());

  it('failNext fails exactly N requests of the chosen route with WAHA’s 500 shape', async () => {
    sim.failNext(2, { status: 500, route: 'messages' });
    expect((await get(sim, '/api/default/chats')).status).toBe(200);
    expect((await get(sim, '/api/version')).status).toBe(200);
    const first = await get(sim, MESSAGES_PATH);
    expect(first.status).toBe(500);
    expect(first.json()).toMatchObject({
      statusCode: 500,
      timestamp: expect.any(String),
      exception: { message: expect.any(String), name: 'Error', stack: expect.any(String) },
      request: { path: `/api/default/chats/${encodeURIComponent(CHAT_ID)}/messages`, method: 'GET' },
    });
    expect((await get(sim, MESSAGES_PATH)).status).toBe(500);
    expect((await get(sim, MESSAGES_PATH)).status).toBe(200);
    expect(sim.stats().faults).toEqual({ error: 2, rateLimit: 0, timeout: 0 });
  });

  it('scripted 429 carries Retry-After, and proxy errors come as HTML', async () => {
    sim.failNext(1, { status: 429, retryAfterS: 7 });
    sim.failNext(1, { status: 502 });
    const limited = await get(sim, '/api/default/chats');
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('7');
    const gateway = await get(sim, MESSAGES_PATH);
    expect(gateway.status).toBe(502);
    expect(gateway.headers.get('content-type')).toMatch(/text\/html/);
    expect(gateway.text).toContain('502 Bad Gateway');
    expect((await get(sim, MESSAGES_PATH)).status).toBe(200);
    expect(sim.stats().faults).toEqual({ error: 1, rateLimit: 1, timeout: 0 });
  });

  it('a timeout fault never answers: the socket is destroyed after hangMs', async () => {
    sim.failNext(1, { status: 'timeout', route: 'messages' });
    await expect(fetch(sim.url + MESSAGES_PATH)).rejects.toThrow();
    expect(sim.stats().faults.timeout).toBe(1);
    await waitForStats(sim, (s) => s.inFlight === 0);
    expect((await get(sim, MESSAGES_PATH)).status).toBe(200);
  });

  it('a client that gives up frees the slot of a hung request', async () => {
    const patient = await start({ hangMs: 60_000, capacity: 1 });
    try {
      patient.failNext(1, { status: 'timeout' });
      const controller = new AbortController();
      const hung = fetch(patient.url + '/api/default/chats', { signal: controller.signal });
      await waitForStats(patient, (s) => s.faults.timeout === 1);
      expect(patient.stats().inFlight).toBe(1);
      controller.abort();
      await expect(hung).rejects.toThrow();
      await waitForStats(patient, (s) => s.inFlight === 0);
      expect((await get(patient, '/api/default/chats')).status).toBe(200);
    } finally {
      await patient.close();
    }
  });

  it('close() ends hung requests instead of waiting for them', async () => {
    const patient = await start({ hangMs: 60_000 });
    patient.failNext(1, { status: 'timeout' });
    const hung = fetch(patient.url + MESSAGES_PATH);
    await waitForStats(patient, (s) => s.faults.timeout === 1);
    await patient.close();
    await expect(hung).rejects.toThrow();
  });
});

describe('random faults', () => {
  async function statuses(options: Parameters<typeof startSimulator>[0], count: number) {
    const sim = await start(options);
    try {
      const seen: number[] = [];
      for (let i = 0; i < count; i++) {
        const answer = await get(sim, i % 2 === 0 ? '/api/default/chats?limit=1' : MESSAGES_PATH);
        if (answer.status === 429) expect(answer.headers.get('retry-after')).toBe('3');
        seen.push(answer.status);
      }
      expect((await get(sim, '/api/version')).status).toBe(200);
      return { seen, stats: sim.stats() };
    } finally {
      await sim.close();
    }
  }

  it('are drawn at the configured rates, counted, and replayable from faultSeed', async () => {
    const options = { errorRate: 0.3, rateLimitRate: 0.2, retryAfterS: 3, faultSeed: 42 };
    const first = await statuses(options, 40);
    const again = await statuses(options, 40);
    const other = await statuses({ ...options, faultSeed: 43 }, 40);
    expect(again.seen).toEqual(first.seen);
    expect(other.seen).not.toEqual(first.seen);
    const count = (status: number): number => first.seen.filter((s) => s === status).length;
    expect(count(500) + count(429) + count(200)).toBe(40);
    expect(count(500)).toBeGreaterThan(0);
    expect(count(429)).toBeGreaterThan(0);
    expect(count(200)).toBeGreaterThan(0);
    expect(first.stats.faults).toEqual({ error: count(500), rateLimit: count(429), timeout: 0 });
  });

  it('rateLimitRate 1 limits every chat and message request, never the others', async () => {
    const { seen, stats } = await statuses({ rateLimitRate: 1, retryAfterS: 3 }, 4);
    expect(seen).toEqual([429, 429, 429, 429]);
    expect(stats.faults.rateLimit).toBe(4);
  });
});

describe('the Date header', () => {
  it("is WAHA's clock when the answer leaves, after its latency, not when the request came in", async () => {
    // Stamped on arrival, a 1.5 s answer read as a WAHA clock 1.5 s behind this machine's.
    const sim = await start({ latencyMs: 1500, clockOffsetS: 3600 });
    try {
      const sentMs = Date.now();
      const answer = await get(sim, MESSAGES_PATH);
      const receivedMs = Date.now();
      expect(answer.status).toBe(200);
      const dateMs = Date.parse(answer.headers.get('date')!) - 3600_000;
      // Whole seconds: the stamp is at most a second before the moment it was written.
      expect(dateMs).toBeGreaterThan(sentMs + 1500 - 1000);
      expect(dateMs).toBeLessThanOrEqual(receivedMs);
    } finally {
      await sim.close();
    }
  });
});

describe('options', () => {
  it('rejects impossible settings naming them', async () => {
    await expect(startSimulator({ capacity: 0 })).rejects.toThrow(/capacity/);
    await expect(startSimulator({ errorRate: 0.8, rateLimitRate: 0.5 })).rejects.toThrow(/errorRate/);
    await expect(startSimulator({ sessions: [] })).rejects.toThrow(/sessions/);
  });
});
