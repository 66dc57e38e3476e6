import { startSimulator, type Simulator } from '../src/sim/index.js';
import { runCli, scratchCwd, type CliResult } from './support/cli.js';
import { testDatabaseUrl, useTestDatabase } from './support/db.js';

/**
 * Every command with --json ends with one JSON line on stdout that says how it ended, whatever
 * happened: its result, or an `error` event (usage errors, commander's own included).
 */
const db = useTestDatabase();
const API_KEY = 'json-api-key-0815';
let sim: Simulator;

beforeAll(async () => {
  sim = await startSimulator({
    apiKey: API_KEY,
    sessions: [{ name: 'default', datasetOptions: { chats: 3, messages: 12, seed: 5 } }],
  });
});
afterAll(() => sim.close());

const FINAL_TYPES = ['summary', 'error', 'migrated', 'status', 'bench'];
const UNREACHABLE_DB = 'postgres://app@127.0.0.1:1/crm';

/** Every stdout line is JSON; exactly one says how the command ended, and it is the last. */
function finalEvent(result: CliResult): Record<string, unknown> {
  const lines = result.stdout.split('\n').filter(Boolean);
  expect(lines.length).toBeGreaterThan(0);
  const events = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  const finals = events.filter((event) => FINAL_TYPES.includes(String(event.type)));
  expect(finals).toHaveLength(1);
  expect(events.at(-1)).toBe(finals[0]);
  return finals[0]!;
}

function cli(args: string[], env: Record<string, string> = {}) {
  return runCli(args, { env, cwd: scratchCwd() });
}

const runArgs = (extra: string[]) => [
  'run',
  '--waha-url',
  sim.url,
  '--database-url',
  testDatabaseUrl(),
  '--schema',
  db.schema,
  '--json',
  ...extra,
];

describe('--json ends with one JSON line saying how the command ended', () => {
  it('run: the summary on success; an error event when WAHA refuses or a flag is wrong', async () => {
    const ok = await cli(runArgs([]), { WAHA_API_KEY: API_KEY });
    expect(ok.code).toBe(0);
    expect(finalEvent(ok)).toMatchObject({ type: 'summary', summary: { status: 'succeeded' } });

    const refused = await cli(runArgs([]));
    expect(refused.code).toBe(3);
    expect(finalEvent(refused)).toMatchObject({
      type: 'error',
      error: { name: 'WahaRefusedError', message: expect.stringContaining('no API key given') },
    });

    const badValue = await cli(runArgs(['--page-size', '500']));
    expect(badValue.code).toBe(2);
    expect(finalEvent(badValue)).toMatchObject({
      type: 'error',
      error: { name: 'UsageError', message: expect.stringContaining('--page-size') },
    });
    expect(badValue.stderr).toContain('--page-size');

    const unknownFlag = await cli(runArgs(['--no-such-flag']));
    expect(unknownFlag.code).toBe(2);
    expect(finalEvent(unknownFlag)).toMatchObject({
      type: 'error',
      error: { name: 'UsageError', message: expect.stringContaining("unknown option '--no-such-flag'") },
    });
  });

  it('migrate: what it applied; an error event when the database is away', async () => {
    const schema = db.newSchema();
    const args = ['migrate', '--database-url', testDatabaseUrl(), '--schema', schema, '--json'];
    const first = await cli(args);
    expect(first.code).toBe(0);
    const migrated = finalEvent(first);
    expect(migrated).toMatchObject({ type: 'migrated', schema });
    expect((migrated.applied as number[]).length).toBeGreaterThan(0);
    expect(migrated.version).toBe((migrated.applied as number[]).at(-1));
    const again = await cli(args);
    expect(finalEvent(again)).toMatchObject({ type: 'migrated', applied: [], version: migrated.version });

    const away = await cli(['migrate', '--database-url', UNREACHABLE_DB, '--json']);
    expect(away.code).toBe(1);
    expect(finalEvent(away)).toMatchObject({ type: 'error', error: { name: 'DatabaseError' } });
  });

  it('status: the report; an error event when the database is away or a flag is wrong', async () => {
    const shown = await cli(['status', '--database-url', testDatabaseUrl(), '--schema', db.schema, '--json']);
    expect(shown.code).toBe(0);
    expect(finalEvent(shown)).toMatchObject({ type: 'status', schema: db.schema });

    const away = await cli(['status', '--database-url', UNREACHABLE_DB, '--json']);
    expect(away.code).toBe(1);
    expect(finalEvent(away)).toMatchObject({ type: 'error' });

    const bad = await cli(['status', '--limit', 'many', '--json']);
    expect(bad.code).toBe(2);
    expect(finalEvent(bad)).toMatchObject({ type: 'error', error: { name: 'UsageError' } });
  });

  it('bench: an error event for a wrong flag', async () => {
    const bad = await cli(['bench', '--scenario', 'nope', '--json']);
    expect(bad.code).toBe(2);
    expect(finalEvent(bad)).toMatchObject({ type: 'error', error: { name: 'UsageError' } });
  });

  it('commands without --json keep their plain errors', async () => {
    const result = await cli(['sql', '--json', 'select 1']);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
  });
});
