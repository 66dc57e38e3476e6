import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateDataset, startSimulator, type Engine, type Simulator } from '../src/sim/index.js';
import { deleteAtRandom, killResumeAndCheck, seeded } from './support/contract.js';
import { checkpointShows, jsonSummary, runArgs, runCli } from './support/cli.js';
import { useTestDatabase } from './support/db.js';
import { expectDatabaseMatches } from './support/truth.js';

/**
 * Time slicing through the built CLI: a long chat is read in several slices where the engine filters
 * by time in its store (NOWEB, GOWS), never on WEBJS; the database is the same either way, and a run
 * killed while the checkpoint holds a chat's spans resumes to every message that existed throughout.
 */

const db = useTestDatabase();
const DATASET = generateDataset({
  chats: 12,
  messages: 1600,
  bigChats: [1200],
  seed: 77,
  nulBodies: 0,
  loneSurrogateBodies: 0,
});
const ANCHOR_S = DATASET.options.anchorS!;
const WINDOW = { fromS: ANCHOR_S - 40 * 86_400, toS: ANCHOR_S };
const FLAGS = [
  '--concurrency',
  '6',
  '--page-size',
  '20',
  '--since',
  String(WINDOW.fromS),
  '--until',
  String(WINDOW.toS),
];

let sim: Simulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

describe.each<[Engine, boolean]>([
  ['NOWEB', true],
  ['GOWS', true],
  ['WEBJS', false],
])('%s', (engine, slices) => {
  it(`${slices ? 'reads the long chat in slices' : 'never slices'}; the database holds the ground truth`, async () => {
    sim = await startSimulator({
      engine,
      // Null timestamps are test/sim-engines' subject; here every message has its time.
      ...(engine === 'GOWS' ? { profile: { nullTimestampShare: 0 } } : {}),
      latencyMs: 2,
      sessions: [{ name: 'default', dataset: DATASET }],
    });
    const schema = db.newSchema();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-slices-'));
    const result = await runCli(
      runArgs(sim.url, schema, ['--checkpoint', path.join(dir, 'cp.json'), ...FLAGS]),
    );
    expect(result.code).toBe(0);
    const { summary } = jsonSummary(result.stdout);
    const slicing = summary.slicing as unknown as {
      slices: number;
      chatsSliced: number;
      maxSlices: number;
    } | null;
    if (slices) {
      expect(slicing?.maxSlices).toBe(8);
      expect(slicing?.slices).toBeGreaterThan(0);
      expect(slicing?.chatsSliced).toBeGreaterThanOrEqual(1);
    } else {
      expect(slicing).toBeNull();
    }
    await expectDatabaseMatches(db.sql, schema, 'default', sim.groundTruth('default', WINDOW));
  });
});

it('NOWEB: killed while a chat is part-way in slices, resumes from its spans to every message that existed throughout', async () => {
  let resumedFromSpans = 0;
  for (const attempt of [1, 2]) {
    sim = await startSimulator({
      engine: 'NOWEB',
      latencyMs: 8,
      sessions: [{ name: 'default', dataset: DATASET }],
    });
    const server = sim;
    const random = seeded(attempt * 31);
    // Revoked messages vanish (NOWEB deletes the row) all along, under every slice.
    deleteAtRandom(server, WINDOW, random, 0.3);
    const { waited: spansSeen, resumedPartWay } = await killResumeAndCheck({
      server,
      db,
      window: WINDOW,
      flags: [
        '--strategy',
        attempt === 1 ? 'streaming' : 'parallel',
        '--batch-size',
        '60',
        '--flush-ms',
        '20',
        ...FLAGS,
      ],
      tmpPrefix: 'waha-import-slices-',
      // Killed once a commit has recorded a chat with several spans left (and, the second time, after a few more).
      killWhen: (checkpoint, victimRun) =>
        checkpointShows(
          checkpoint,
          (saved) =>
            Object.values(saved.inProgress as Record<string, unknown>).some(
              (point) => Array.isArray(point) && point.length > attempt,
            ),
          victimRun,
        ),
    });
    if (spansSeen && resumedPartWay) resumedFromSpans++;
    await server.close();
    sim = undefined;
  }
  // The kills must have caught chats part-way in slices, or this proved nothing about spans.
  expect(resumedFromSpans).toBeGreaterThanOrEqual(1);
});
