import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateDataset, startOfUtcDayS, startSimulator, type Simulator } from '../src/sim/index.js';
import { checkpointShows, jsonSummary, runArgs, runCli } from './support/cli.js';
import { useTestDatabase } from './support/db.js';
import { expectDatabaseMatches } from './support/truth.js';

/**
 * A person WAHA lists under two ids whose histories it does not merge (GOWS before 2026.3.1: the older
 * messages under the number, the newer under @lid) is one stored chat. Reading one id marks the stored
 * chat complete; a run killed before it read the other id left that id's history to no run: the next
 * `--incremental` run took the mark for both ids and skipped the unread one while succeeding.
 */

const db = useTestDatabase();
const DATASET = generateDataset({ chats: 8, messages: 400, seed: 7, anchorS: startOfUtcDayS() - 86_400 });
const SINCE_S = startOfUtcDayS() - 40 * 86_400;
const LID = '990000000000001@lid';
const PERSON = DATASET.chats
  .filter((c) => c.id.endsWith('@c.us'))
  .sort((a, b) => b.messages.length - a.messages.length)[0]!;
let sim: Simulator;

beforeEach(async () => {
  sim = await startSimulator({
    engine: 'GOWS',
    profile: { supportsMerge: false, version: '2026.2.1' },
    sessions: [{ name: 'default', dataset: structuredClone(DATASET) }],
  });
  const middleS = PERSON.messages[Math.floor(PERSON.messages.length / 2)]!.timestampS;
  expect(sim.relinkChat('default', PERSON.id, LID, { fromS: middleS })).toBeGreaterThan(10);
});
afterEach(() => sim.close());

it.each([
  { name: '--incremental', mode: ['--incremental'] },
  { name: 'of a full window', mode: [] },
])(
  'a run $name killed between the two ids of a person: the next run reads the id never read',
  async ({ mode }) => {
    const checkpoint = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-split-')), 'cp.json');
    const args = runArgs(sim.url, db.schema, [
      '--checkpoint',
      checkpoint,
      '--since',
      String(SINCE_S),
      '--flush-ms',
      '50',
      ...mode,
    ]);
    // The @lid id's messages wait until the run is killed; the number's are read and committed.
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    sim.onRequest(async (request) => {
      if (request.route === 'messages' && request.chatId === LID) await held;
    });
    const number = PERSON.id.split('@')[0]!;
    const first = runCli(args);
    const numberRead = await checkpointShows(
      checkpoint,
      (saved) =>
        (saved.completedChats as string[]).some((id) => id.startsWith(number) && !id.endsWith('@lid')),
      first,
    );
    expect(numberRead).toBe(true);
    first.child.kill('SIGKILL');
    expect((await first).signal).toBe('SIGKILL');
    release();
    const [{ marked }] = await db.sql<[{ marked: number }]>`
      select count(*)::int as marked from ${db.sql(db.schema)}.chat_sync where chat_id = ${PERSON.id}`;
    expect(marked).toBe(1);

    const second = await runCli(args);
    expect(second.code).toBe(0);
    const { summary } = jsonSummary(second.stdout);
    const window = summary.window as unknown as { fromS: number; toS: number };
    // Every message of the person, under both ids, and of every other chat.
    await expectDatabaseMatches(
      db.sql,
      db.schema,
      'default',
      sim.groundTruth('default', { fromS: SINCE_S, toS: window.toS }),
    );
  },
);
