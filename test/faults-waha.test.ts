import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  generateDataset,
  startSimulator,
  type Simulator,
  type SimulatorOptions,
  type WaMessage,
} from '../src/sim/index.js';
import { jsonSummary, runArgs, runCli } from './support/cli.js';
import { useTestDatabase } from './support/db.js';
import { jsonError } from './support/faults.js';
import { expectDatabaseMatches } from './support/truth.js';

/**
 * A WAHA that fails, lies or attacks, driven through the built CLI against the simulator and a real
 * PostgreSQL. Every case ends with the database equal to the simulator's ground truth after at most one
 * re-run, and a run that fails says what was wrong and what to do.
 */

const db = useTestDatabase();
// No NUL or lone-surrogate bodies: support/truth.ts expects text_cleaned only from the body, while the writer
// (as the README says) also sets it when a quoted message inside `raw` was cleaned; with this seed a reply
// quotes a NUL body. The text cases are covered by the e2e and db-text tests.
const DATASET = generateDataset({
  chats: 8,
  messages: 400,
  bigChats: [150, 60],
  seed: 31,
  nulBodies: 0,
  loneSurrogateBodies: 0,
});
const ANCHOR_S = DATASET.options.anchorS!;
const WINDOW = { fromS: ANCHOR_S - 40 * 86_400, toS: ANCHOR_S };
const BIG_CHAT = DATASET.chats[0]!.id;
/** NOWEB lists people as `N@s.whatsapp.net`: the importer asks for (and names) the chat that way. */
const BIG_CHAT_LISTED = BIG_CHAT.replace(/@c\.us$/, '@s.whatsapp.net');
const MESSAGES_ENDPOINT = `GET /api/default/chats/${BIG_CHAT_LISTED}/messages`;

let sim: Simulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

async function startSim(options: Partial<SimulatorOptions> = {}): Promise<Simulator> {
  sim = await startSimulator({ sessions: [{ name: 'default', dataset: DATASET }], ...options });
  return sim;
}

function tempCheckpoint(): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-faults-')), 'checkpoint.json');
}

/** A run of the fixed window, with its own checkpoint, small pages (many requests) and --json. */
function run(server: Simulator, checkpoint: string, extra: string[] = []) {
  return runCli(
    runArgs(server.url, db.schema, [
      '--checkpoint',
      checkpoint,
      '--since',
      String(WINDOW.fromS),
      '--until',
      String(WINDOW.toS),
      '--page-size',
      '20',
      '--concurrency',
      '4',
      '--batch-size',
      '100',
      '--flush-ms',
      '50',
      ...extra,
    ]),
  );
}

function truth(server: Simulator): WaMessage[] {
  return server.groundTruth('default', WINDOW).messages;
}

async function storedIds(): Promise<string[]> {
  const rows = await db.sql<Array<{ id: string }>>`select id from ${db.sql(db.schema)}.messages order by id`;
  return rows.map((r) => r.id);
}

async function lastRun(): Promise<{ status: string; error: string | null }> {
  const [row] = await db.sql<[{ status: string; error: string | null }]>`
    select status, error from ${db.sql(db.schema)}.import_runs order by id desc limit 1`;
  return row;
}

describe('transient failures are retried and lose nothing', () => {
  it('5% 5xx, 2% timeouts, a burst of 429 with Retry-After and bodies cut off mid-JSON', async () => {
    const server = await startSim({ errorRate: 0.05, timeoutRate: 0.02, hangMs: 60_000, faultSeed: 4 });
    server.failNext(4, { status: 429, retryAfterS: 1, route: 'messages' });
    server.failNext(3, { kind: 'drop-body', route: 'messages' });
    const result = await run(server, tempCheckpoint(), ['--request-timeout', '1']);
    expect(result.code).toBe(0);
    const { summary } = jsonSummary(result.stdout);
    const stats = server.stats();
    // Each kind of fault really happened, and every one of them cost exactly one retry.
    expect(stats.faults.error).toBeGreaterThan(0);
    expect(stats.faults.timeout).toBeGreaterThan(0);
    expect(stats.faults.rateLimit).toBe(4);
    expect(stats.bodyFaults).toEqual({ 'drop-body': 3 });
    expect(summary.retries).toBe(
      stats.faults.error + stats.faults.timeout + stats.faults.rateLimit + stats.bodyFaults['drop-body']!,
    );
    expect(summary).toMatchObject({ status: 'succeeded', inserted: 400, messagesFetched: 400 });
    await expectDatabaseMatches(db.sql, db.schema, 'default', truth(server));
  });
});

describe('unusable answers fail the run, naming the endpoint; a re-run after healing completes', () => {
  it('malformed JSON on a 200', async () => {
    const server = await startSim();
    server.failNext(1, { kind: 'malformed-json', chatId: BIG_CHAT });
    const checkpoint = tempCheckpoint();
    const failed = await run(server, checkpoint);
    expect(failed.code).toBe(1);
    const error = jsonError(failed.stdout);
    expect(error.message).toMatch(
      new RegExp(
        `^${escape(MESSAGES_ENDPOINT)} answered with malformed JSON \\(\\d+ characters, starting "\\[`,
      ),
    );
    expect(error.hint).toContain('--waha-url');
    expect(jsonSummary(failed.stdout).summary.status).toBe('failed');
    expect(await lastRun()).toEqual({ status: 'failed', error: error.message });
    // Its first page failed: nothing of that chat can have been written.
    expect((await storedIds()).filter((id) => id.includes(`_${BIG_CHAT}_`))).toEqual([]);
    expect(server.stats().bodyFaults).toEqual({ 'malformed-json': 1 });

    const again = await run(server, checkpoint);
    expect(again.code).toBe(0);
    await expectDatabaseMatches(db.sql, db.schema, 'default', truth(server));
  });

  it.each([
    ['missing-id', "message #0: 'id' is missing, expected a non-empty string"],
    ['timestamp-not-number', `message #0: 'timestamp' is the string "`],
    ['body-object', "message #0: 'body' is an object, expected a string or null"],
    [
      'timestamp-year-3000',
      "message #0: 'timestamp' is 32503680000, which is not unix seconds between 2009 and 2100",
    ],
  ] as const)('a message with a wrong shape (%s) is never dropped silently', async (kind, problem) => {
    const server = await startSim();
    server.failNext(1, { kind, chatId: BIG_CHAT });
    const checkpoint = tempCheckpoint();
    const failed = await run(server, checkpoint);
    expect(failed.code).toBe(1);
    const error = jsonError(failed.stdout);
    expect(error.message).toContain(`${MESSAGES_ENDPOINT} sent an unexpected response: ${problem}`);
    expect(error.hint).toContain('Please report it with this message');
    expect(server.stats().bodyFaults).toEqual({ [kind]: 1 });
    // The page holding the bad message was refused whole: neither it nor a mangled copy is stored.
    const stored = await storedIds();
    expect(stored.filter((id) => id.includes(`_${BIG_CHAT}_`))).toEqual([]);
    const [{ absurd }] = await db.sql<[{ absurd: number }]>`
      select count(*)::int as absurd from ${db.sql(db.schema)}.messages where timestamp_s > ${WINDOW.toS}`;
    expect(absurd).toBe(0);

    const again = await run(server, checkpoint);
    expect(again.code).toBe(0);
    await expectDatabaseMatches(db.sql, db.schema, 'default', truth(server));
  });

  it('a 50 MB body against --max-response-mb 8 is refused without buffering it', async () => {
    const server = await startSim();
    server.failNext(1, { kind: 'huge-body', chatId: BIG_CHAT });
    const checkpoint = tempCheckpoint();
    const failed = await run(server, checkpoint, ['--max-response-mb', '8']);
    expect(failed.code).toBe(1);
    const error = jsonError(failed.stdout);
    expect(error.message).toBe(
      `GET /api/default/chats/${encodeURIComponent(BIG_CHAT_LISTED)}/messages sent a response larger than ${8 * 1024 * 1024} bytes`,
    );
    expect(error.hint).toBe('Lower --page-size, or raise --max-response-mb if the server is trusted.');
    // Refused, not retried: one request for that chat's first page.
    expect(jsonSummary(failed.stdout).summary.retries).toBe(0);

    const again = await run(server, checkpoint, ['--max-response-mb', '8']);
    expect(again.code).toBe(0);
    await expectDatabaseMatches(db.sql, db.schema, 'default', truth(server));
  });
});

describe('a hostile WAHA ends the run with a clear error within its limits', () => {
  it('a server that ignores offset: time paging does not need it, and the import is complete', async () => {
    const server = await startSim({ ignoreOffset: ['messages'] });
    const checkpoint = tempCheckpoint();
    const result = await run(server, checkpoint, ['--strategy', 'sequential']);
    expect(result.code).toBe(0);
    await expectDatabaseMatches(db.sql, db.schema, 'default', truth(server));
  });

  it('slow-loris: a body a byte at a time runs into --request-timeout, retries included', async () => {
    const server = await startSim();
    server.failNext(2, { kind: 'slow-loris', chatId: BIG_CHAT, byteIntervalMs: 200 });
    const checkpoint = tempCheckpoint();
    const failed = await run(server, checkpoint, ['--request-timeout', '1', '--max-retries', '1']);
    // One chat whose requests keep timing out is that chat's failure: the others are imported.
    expect(failed.code).toBe(5);
    const { summary } = jsonSummary(failed.stdout);
    expect(summary.status).toBe('partial');
    expect(summary.failedChats).toEqual([
      {
        chatId: BIG_CHAT_LISTED,
        reason: 'waha-failing',
        error: `${MESSAGES_ENDPOINT} failed 2 times; last: no answer within 1000 ms`,
      },
    ]);
    expect(summary.chatsImported).toBe(Number(summary.chats) - 1);
    expect(server.stats().bodyFaults).toEqual({ 'slow-loris': 2 });

    const again = await run(server, checkpoint, ['--request-timeout', '1', '--max-retries', '1']);
    expect(again.code).toBe(0);
    await expectDatabaseMatches(db.sql, db.schema, 'default', truth(server));
  });
});

describe('paging traps', () => {
  it('duplicates across pages: newest-first pages while new messages arrive in the window', async () => {
    const server = await startSim();
    const before = truth(server);
    const newestS = Math.max(...before.filter((m) => m.from === BIG_CHAT).map((m) => m.timestamp));
    let added: WaMessage[] = [];
    // Three messages arrive in the newest second just before the big chat's third page is read.
    let requests = 0;
    const remove = server.onRequest((request) => {
      if (request.chatId === BIG_CHAT && ++requests === 3) {
        remove();
        added = server.addMessages('default', BIG_CHAT, 3, newestS);
      }
    });
    const checkpoint = tempCheckpoint();
    const first = await run(server, checkpoint);
    expect(first.code).toBe(0);
    expect(added).toHaveLength(3);
    const { summary } = jsonSummary(first.stdout);
    // Pages overlap by their boundary second, and the client sends each message once.
    expect(summary).toMatchObject({ messagesFetched: 400, inserted: 400, unchanged: 0 });
    // Nothing that existed at the start is lost, nothing is stored twice.
    expect(await storedIds()).toEqual(before.map((m) => m.id).sort());

    // The arrivals sit on the first page, already read: the next run of the window brings them.
    const again = await run(server, checkpoint);
    expect(again.code).toBe(0);
    expect(jsonSummary(again.stdout).summary).toMatchObject({ inserted: 3, unchanged: 400 });
    await expectDatabaseMatches(db.sql, db.schema, 'default', truth(server));
  });

  it('short and empty pages mid-chat (GOWS drops hidden rows after paging): the default rule loses nothing', async () => {
    // Hidden rows shorten pages, but no page of 10 is hidden entirely (that case: see the report).
    const dataset = generateDataset({ chats: 4, messages: 300, bigChats: [200], hiddenRatio: 0.3, seed: 8 });
    // GOWS's null timestamps off: this test is about paging (the contract suite runs GOWS with them).
    const server = await startSimulator({
      engine: 'GOWS',
      profile: { nullTimestampShare: 0 },
      sessions: [{ name: 'default', dataset }],
    });
    try {
      const truthNow = server.groundTruth('default', WINDOW);
      const expected = truthNow.messages;
      const short = await runCli(
        runArgs(server.url, db.newSchema(), [
          '--checkpoint',
          tempCheckpoint(),
          '--page-size',
          '10',
          '--page-end',
          'short',
          '--since',
          String(WINDOW.fromS),
          '--until',
          String(WINDOW.toS),
        ]),
      );
      expect(short.code).toBe(0);
      // The dataset really has short pages before the end of a chat: the short-page rule misses messages.
      expect(Number(jsonSummary(short.stdout).summary.messagesFetched)).toBeLessThan(expected.length);

      const auto = await runCli(
        runArgs(server.url, db.schema, [
          '--checkpoint',
          tempCheckpoint(),
          '--page-size',
          '10',
          '--since',
          String(WINDOW.fromS),
          '--until',
          String(WINDOW.toS),
        ]),
      );
      expect(auto.code).toBe(0);
      expect(jsonSummary(auto.stdout).summary).toMatchObject({
        pageEnd: 'empty',
        messagesFetched: expected.length,
      });
      await expectDatabaseMatches(db.sql, db.schema, 'default', truthNow);
    } finally {
      await server.close();
    }
  });

  it('the same messages under @c.us and then @lid: one row per message, as WAHA serves it now', async () => {
    const server = await startSim();
    const person = DATASET.chats.find((c) => c.kind === 'person' && c.messages.length > 3)!;
    const checkpoint = tempCheckpoint();
    const first = await run(server, checkpoint);
    expect(first.code).toBe(0);
    await expectDatabaseMatches(db.sql, db.schema, 'default', truth(server));

    const lid = '987654321098765@lid';
    server.relinkChat('default', person.id, lid);
    const second = await run(server, checkpoint);
    expect(second.code).toBe(0);
    const nowTruth = server.groundTruth('default', WINDOW);
    const now = nowTruth.messages;
    const moved = now.filter((m) => m.id.includes(`_${lid}_`)).length;
    expect(moved).toBeGreaterThan(3);
    // The moved messages replace their @c.us rows: counted as updated, never inserted a second time.
    expect(jsonSummary(second.stdout).summary).toMatchObject({
      inserted: 0,
      updated: moved,
      unchanged: now.length - moved,
    });
    await expectDatabaseMatches(db.sql, db.schema, 'default', nowTruth);
    const [{ twice }] = await db.sql<[{ twice: number }]>`
      select count(*)::int as twice from (
        select wa_id from ${db.sql(db.schema)}.messages group by wa_id having count(*) > 1) d`;
    expect(twice).toBe(0);

    // And back again (WhatsApp can show the phone number once more): still one row per message.
    server.relinkChat('default', lid, person.id);
    const third = await run(server, checkpoint);
    expect(third.code).toBe(0);
    expect(jsonSummary(third.stdout).summary).toMatchObject({ inserted: 0, updated: moved });
    await expectDatabaseMatches(db.sql, db.schema, 'default', truth(server));
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
