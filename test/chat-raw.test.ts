import { generateDataset, startSimulator, type Engine, type Simulator } from '../src/sim/index.js';
import { storedForm } from './support/contract.js';
import { useTestDatabase } from './support/db.js';
import { runAgainstSim } from './support/run.js';

/**
 * A chat's `raw` is stored as the item WAHA listed, on each engine: the importer holds it as the bytes it
 * came in (out of the JavaScript heap for the whole run) and PostgreSQL gets it as a JSON object. WEBJS
 * items are the big ones: the newest message whole, and a group's metadata with every member.
 */

const db = useTestDatabase();
const DATASET = generateDataset({ chats: 40, messages: 400, seed: 23, groupRatio: 0.3, lidRatio: 0.1 });

type Json = Record<string, unknown>;

function listedId(item: Json): string {
  const id = item.id;
  return typeof id === 'string' ? id : String((id as Json)._serialized);
}

describe.each<Engine>(['NOWEB', 'GOWS', 'WEBJS'])('%s', (engine) => {
  let sim: Simulator;
  beforeAll(async () => {
    sim = await startSimulator({ engine, sessions: [{ name: 'default', dataset: DATASET }] });
  });
  afterAll(async () => {
    await sim.close();
  });

  it("stores every chat's raw exactly as WAHA listed it, as a JSON object", async () => {
    const outcome = await runAgainstSim('streaming', {
      sim,
      db,
      strategyOptions: { concurrency: 4, chunkSize: 10, batchSize: 50, flushMs: 50 },
      chatPageSize: 15,
      reporter: () => new Proxy({}, { get: () => () => undefined }) as never,
    });
    expect(outcome.error).toBeUndefined();
    const served = (await (await fetch(`${sim.url}/api/default/chats`)).json()) as Json[];
    const byListedId = new Map(served.map((item) => [listedId(item), item]));
    const rows = await db.sql<{ id: string; type: string; raw: Json }[]>`
      select id, jsonb_typeof(raw) as type, raw from ${db.sql(db.schema)}.chats`;
    // One row per person whatever the id forms listed (GOWS lists a person under @lid and @c.us).
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.length).toBe(outcome.summary.chatsImported);
    for (const row of rows) {
      expect(row.type).toBe('object');
      const item = byListedId.get(listedId(row.raw));
      expect([row.id, item === undefined ? 'not listed' : storedForm(row.raw)]).toEqual([
        row.id,
        storedForm(item),
      ]);
    }
    if (engine === 'WEBJS') {
      const groups = rows.filter((row) => row.id.endsWith('@g.us'));
      expect(groups.length).toBeGreaterThan(0);
      for (const group of groups) {
        expect((group.raw.groupMetadata as { participants: unknown[] }).participants.length).toBeGreaterThan(
          1,
        );
      }
      expect(rows.filter((row) => row.raw.lastMessage !== undefined).length).toBeGreaterThan(rows.length / 2);
    }
  });
});
