import type { TimeWindow } from '../src/domain.js';
import {
  generateDataset,
  startSimulator,
  type Dataset,
  type DatasetOptions,
  type Engine,
  type EngineProfile,
  type SimRequest,
  type Simulator,
} from '../src/sim/index.js';
import { STRATEGY_NAMES } from '../src/strategies/types.js';
import { contractProblems, importOnce, seeded } from './support/contract.js';
import { useTestDatabase } from './support/db.js';

/**
 * The contract suite: every strategy against every engine profile, under what real WAHA servers do while
 * an import runs. After each run, every message that existed at the start and still exists at the end is
 * stored exactly once with the right fields (contractProblems says what "right" is).
 */

const db = useTestDatabase();

const DAY_S = 86_400;
/** A UTC midnight, so the dataset is the same whatever day the tests run. */
const ANCHOR_S = 1_788_220_800;
const WINDOW: TimeWindow = { fromS: ANCHOR_S - 10 * DAY_S, toS: ANCHOR_S + DAY_S };
const PAGE_SIZE = 20;
/**
 * The big chat has 21 pages, but its newest messages are sparse and its older ones dense (the dataset's
 * shape at this seed), so reading from the top it is estimated at 4-8 pages all along: below
 * PRIORITY_PAGES, it never waited for a place ahead of new chats and was sliced only if a place happened
 * to be free while it still had pages to go, a race a loaded machine lost now and then. Each run
 * therefore adds TOP_BURST below.
 */
const BASE_DATASET: Partial<DatasetOptions> = {
  seed: 11,
  chats: 14,
  messages: 860,
  bigChats: [420],
  days: 10,
  anchorS: ANCHOR_S,
  groupRatio: 0.3,
  lidRatio: 0.1,
};

/**
 * Messages added to the big chat in one second, newer than any other chat's, before each run. The big
 * chat is then listed first, and its first page (all in one second) makes it a priority chat at once:
 * it waits for the first place another chat frees, and is split there, with all but 2-3 of its pages
 * still to go. So every run that may slice does, whatever the machine's load. A burst at the top of a
 * chat is also what a busy group looks like.
 */
const TOP_BURST = { count: 3 * PAGE_SIZE, atS: ANCHOR_S - 60 };

interface EngineCase {
  name: string;
  engine: Engine;
  profile: Partial<EngineProfile>;
  /** The scenarios this case differs in, by the start of their names (default: every one). */
  only?: string;
}

const ENGINE_CASES: EngineCase[] = [
  { name: 'NOWEB', engine: 'NOWEB', profile: {} },
  { name: 'GOWS', engine: 'GOWS', profile: {} },
  { name: 'WEBJS', engine: 'WEBJS', profile: {} },
  // Some WEBJS versions ignore filter.timestamp.lte (#2164): the client falls back to overlapping offsets.
  { name: 'WEBJS ignoring lte', engine: 'WEBJS', profile: { ignoresLte: true } },
  // WAHA storing messages in PostgreSQL or MongoDB: a second's rows are ordered per request (TieOrder).
  // GOWS on such a store is checked in test/waha-client.test.ts (the suite's time goes to the harsher NOWEB).
  { name: 'NOWEB on PostgreSQL storage', engine: 'NOWEB', profile: { tieOrder: 'bounded-sort' } },
  // GOWS 2026.1.3-2026.3.0: people listed by @lid, no `merge` (a part stored under the number is listed by no
  // id of its own); waha-import reads each person's other form too.
  {
    name: 'GOWS 2026.2.1 (no merge)',
    engine: 'GOWS',
    profile: { supportsMerge: false, version: '2026.2.1' },
    only: '@c.us and @lid',
  },
];

interface Scenario {
  name: string;
  dataset?: Partial<DatasetOptions>;
  profile?: (dataset: Dataset) => Partial<EngineProfile>;
  emptyPagesToEnd?: number;
  /** Before the run: changes made to the server's data. */
  prepare?: (sim: Simulator, dataset: Dataset) => void;
  /** Called before each chat-list or messages request is answered. */
  during?: (sim: Simulator, request: SimRequest, random: () => number, dataset: Dataset) => void;
  /** What the run must report, beyond the contract. */
  outcome: 'succeeded' | 'partial';
  /**
   * `during` changes a second denser than a page at most requests. On a store that orders a second's rows
   * per request nothing can prove such a second read: the run may fail that chat by name (and the next
   * run, once the second holds still, must store it).
   */
  changesDenseSecond?: true;
}

const waIdOf = (id: string): string => id.split('_')[2] ?? id;

function randomMessageWaId(sim: Simulator, random: () => number): string | undefined {
  const { expected } = sim.groundTruth('default', WINDOW);
  return expected[Math.floor(random() * expected.length)]?.waId;
}

const SCENARIOS: Scenario[] = [
  {
    name: 'deletions mid-run at random positions',
    outcome: 'succeeded',
    during(sim, request, random) {
      if (request.route === 'messages' && random() < 0.5) {
        const waId = randomMessageWaId(sim, random);
        if (waId) sim.deleteMessage('default', waId);
      }
    },
  },
  {
    name: 'arrivals mid-run at random times',
    outcome: 'succeeded',
    during(sim, request, random) {
      if (request.route === 'messages' && request.chatId && random() < 0.5) {
        const atS = WINDOW.fromS + Math.floor(random() * (WINDOW.toS - WINDOW.fromS));
        sim.addMessages('default', request.chatId, 1 + Math.floor(random() * 3), atS);
      }
    },
  },
  {
    name: 'a one-second burst bigger than a page, with deletions inside it',
    outcome: 'succeeded',
    changesDenseSecond: true,
    prepare(sim, dataset) {
      sim.addMessages('default', dataset.chats[0]!.id, 3 * PAGE_SIZE + 7, ANCHOR_S - 3 * DAY_S);
    },
    during(sim, request, random) {
      if (request.route !== 'messages' || random() < 0.5) return;
      const inBurst = sim
        .groundTruth('default', { fromS: ANCHOR_S - 3 * DAY_S, toS: ANCHOR_S - 3 * DAY_S })
        .expected.map((m) => m.waId);
      const waId = inBurst[Math.floor(random() * inBurst.length)];
      if (waId) sim.deleteMessage('default', waId);
    },
  },
  {
    name: 'hidden rows between the messages',
    dataset: { hiddenRatio: 0.3 },
    emptyPagesToEnd: 2,
    outcome: 'succeeded',
  },
  {
    name: '@c.us and @lid: a history split before the run, a chat moved during it',
    outcome: 'succeeded',
    prepare(sim, dataset) {
      const person = dataset.chats.find((c) => c.id.endsWith('@c.us') && c.messages.length > 10);
      const middleS = person!.messages[Math.floor(person!.messages.length / 2)]!.timestampS;
      sim.relinkChat('default', person!.id, '990000000000001@lid', { fromS: middleS });
    },
    during(sim, request, _random, dataset) {
      if (request.route !== 'messages') return;
      const people = dataset.chats.filter((c) => c.id.endsWith('@c.us'));
      const moved = people[people.length - 1]!;
      // Once, part-way through the run.
      if (sim.stats().byRoute.messages === 8) sim.relinkChat('default', moved.id, '990000000000002@lid');
    },
  },
  {
    name: 'a chat that answers 500 on every try',
    outcome: 'partial',
    profile: (dataset) => ({ failingChats: [dataset.chats[1]!.id] }),
  },
];

describe.each(ENGINE_CASES)('contract on $name', (engineCase) => {
  let sim: Simulator | undefined;
  afterEach(async () => {
    await sim?.close();
    sim = undefined;
  });

  describe.each(SCENARIOS.filter((s) => s.name.startsWith(engineCase.only ?? '')))('$name', (scenario) => {
    it.each(STRATEGY_NAMES.map((strategy) => ({ strategy })))(
      '$strategy stores every message that existed throughout, once, with the right fields',
      async ({ strategy }) => {
        const dataset = generateDataset({ ...BASE_DATASET, ...scenario.dataset });
        sim = await startSimulator({
          engine: engineCase.engine,
          profile: { ...engineCase.profile, ...scenario.profile?.(dataset) },
          sessions: [{ name: 'default', dataset }],
        });
        sim.addMessages('default', dataset.chats[0]!.id, TOP_BURST.count, TOP_BURST.atS);
        scenario.prepare?.(sim, dataset);
        const start = sim.groundTruth('default', WINDOW);
        const random = seeded(STRATEGY_NAMES.indexOf(strategy) * 7919 + scenario.name.length);
        const arrived: string[] = [];
        let changing = true;
        if (scenario.during) {
          const server = sim;
          server.onRequest((request) => {
            if (!changing) return;
            const before = new Set(server.groundTruth('default', WINDOW).expected.map((m) => m.waId));
            scenario.during!(server, request, random, dataset);
            for (const m of server.groundTruth('default', WINDOW).expected) {
              if (!before.has(m.waId)) arrived.push(m.waId);
            }
          });
        }

        const run = () =>
          importOnce({
            sql: db.sql,
            schema: db.schema,
            sim: sim!,
            strategy,
            window: WINDOW,
            pageSize: PAGE_SIZE,
            ...(scenario.emptyPagesToEnd === undefined ? {} : { emptyPagesToEnd: scenario.emptyPagesToEnd }),
          });
        let outcome = await run();
        expect(outcome.error).toBeUndefined();
        const unprovable = scenario.changesDenseSecond && engineCase.profile.tieOrder === 'bounded-sort';
        if (unprovable && outcome.summary.status === 'partial') {
          // The burst's chat, failed by name as unreadable, not finished with a gap; the next run stores it.
          // (Named as NOWEB lists it, `@s.whatsapp.net`.)
          const number = (chatId: string): string => chatId.split('@')[0]!;
          expect(outcome.summary.failedChats.map((f) => [number(f.chatId), f.reason])).toEqual([
            [number(dataset.chats[0]!.id), 'unstable-paging'],
          ]);
          changing = false;
          outcome = await run();
          expect(outcome.error).toBeUndefined();
        }
        expect(outcome.summary.status).toBe(scenario.outcome);
        // Long chats were read in time slices where the engine allows it (NOWEB, GOWS) and the strategy
        // fetches more than one chat at once: the contract covers slicing too.
        if (engineCase.engine !== 'WEBJS' && strategy !== 'sequential') {
          expect(outcome.summary.slicing?.slices).toBeGreaterThan(0);
        } else {
          expect(outcome.summary.slicing).toBeNull();
        }
        if (scenario.outcome === 'partial') {
          expect(outcome.summary.failedChats.map((f) => f.reason)).toEqual(['waha-failing']);
          const [failed] = await db.sql<Array<{ chat_id: string; reason: string }>>`
            select chat_id, reason from ${db.sql(db.schema)}.failed_chats`;
          expect(failed?.chat_id).toBe(outcome.summary.failedChats[0]!.chatId);
        }
        const end = sim.groundTruth('default', WINDOW);
        expect(start.expected.length).toBeGreaterThan(500);
        expect(await contractProblems(db.sql, db.schema, start, end, { mayExist: arrived })).toEqual([]);
      },
    );
  });
});

// Keeps the helper honest: a failed import of a chat leaves its messages out, and the contract says so.
describe('the contract check itself', () => {
  it('reports a message that existed throughout but is not stored, and one stored twice', async () => {
    const dataset = generateDataset({ ...BASE_DATASET });
    const server = await startSimulator({ sessions: [{ name: 'default', dataset }] });
    try {
      const outcome = await importOnce({
        sql: db.sql,
        schema: db.schema,
        sim: server,
        strategy: 'streaming',
        window: WINDOW,
        pageSize: PAGE_SIZE,
      });
      expect(outcome.summary.status).toBe('succeeded');
      const truth = server.groundTruth('default', WINDOW);
      expect(await contractProblems(db.sql, db.schema, truth, truth)).toEqual([]);
      const [victim, copied] = truth.expected;
      await db.sql`delete from ${db.sql(db.schema)}.messages where id = ${victim!.id}`;
      await db.sql`
        insert into ${db.sql(db.schema)}.messages (session, id, chat_id, wa_id, from_me, type, has_media, timestamp_s)
        values ('default', ${copied!.id + '_copy'}, 'x@c.us', ${copied!.waId}, false, 'text', false, 1)`;
      const problems = await contractProblems(db.sql, db.schema, truth, truth);
      expect(problems).toContain(`${victim!.waId} (${victim!.id}) existed all along but is not stored`);
      expect(problems.some((p) => p.startsWith(`${copied!.waId} stored 2 times`))).toBe(true);
      expect(waIdOf(victim!.id)).toBe(victim!.waId);
    } finally {
      await server.close();
    }
  });
});
