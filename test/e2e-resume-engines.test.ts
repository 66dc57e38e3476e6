import { generateDataset, startSimulator, type Engine, type Simulator } from '../src/sim/index.js';
import { deleteAtRandom, killResumeAndCheck, seeded } from './support/contract.js';
import { committedAtLeast } from './support/cli.js';
import { useTestDatabase } from './support/db.js';

/**
 * The paging guarantee across a crash: the built CLI is SIGKILLed part-way while the server deletes
 * messages at random positions (as NOWEB does with revoked ones), then run again. Every message that
 * existed from the first run's start to the resumed run's end is stored exactly once with the right
 * fields, on each engine, although the resumed run continues chats from their time cursors.
 */

const db = useTestDatabase();
const DATASET = generateDataset({
  chats: 30,
  messages: 1500,
  bigChats: [500, 200],
  seed: 41,
  groupRatio: 0.3,
});
const ANCHOR_S = DATASET.options.anchorS!;
const WINDOW = { fromS: ANCHOR_S - 40 * 86_400, toS: ANCHOR_S };

describe.each<[Engine, string]>([
  ['NOWEB', 'streaming'],
  ['GOWS', 'parallel'],
  ['WEBJS', 'streaming'],
])('%s, strategy %s, killed with SIGKILL while messages are deleted', (engine, strategy) => {
  let sim: Simulator | undefined;
  afterEach(async () => {
    await sim?.close();
    sim = undefined;
  });

  it('resumes to a database holding every message that existed throughout, once', async () => {
    let resumedPartWay = 0;
    for (const fraction of [0.3, 0.7]) {
      sim = await startSimulator({ engine, latencyMs: 8, sessions: [{ name: 'default', dataset: DATASET }] });
      const server = sim;
      const random = seeded(Math.round(fraction * 1000) + engine.length);
      deleteAtRandom(server, WINDOW, random, 0.4);
      const { resumedPartWay: partWay } = await killResumeAndCheck({
        server,
        db,
        window: WINDOW,
        flags: [
          '--strategy',
          strategy,
          '--concurrency',
          '4',
          '--batch-size',
          '200',
          '--flush-ms',
          '50',
          '--page-size',
          '25',
          '--since',
          String(WINDOW.fromS),
          '--until',
          String(WINDOW.toS),
        ],
        tmpPrefix: 'waha-import-resume-',
        killWhen: (checkpoint, victimRun) => committedAtLeast(checkpoint, 1500 * fraction, victimRun),
      });
      if (partWay) resumedPartWay++;
      await server.close();
      sim = undefined;
    }
    // The kills must really have interrupted runs part-way, or this test proved nothing.
    expect(resumedPartWay).toBeGreaterThanOrEqual(1);
  });
});
