import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DOMParser } from '@xmldom/xmldom';
import { runBench, type BenchOptions } from '../src/bench/run-bench.js';
import { benchRows, capacityRows, SCENARIOS, withSimFlags } from '../src/bench/scenarios.js';
import { resolveSimConfig } from '../src/config/sim-config.js';
import { renderSvg, renderTable, TERMINAL_WIDTH } from '../src/bench/render.js';
import { getStrategy } from '../src/strategies/registry.js';
import type { Strategy } from '../src/strategies/types.js';
import { runCli } from './support/cli.js';
import { testDatabaseUrl } from './support/db.js';

const TINY = {
  ...SCENARIOS.seed!,
  sim: { ...SCENARIOS.seed!.sim, chats: 40, messages: 400, latencyMs: 0, jitterMs: 0 },
};

/** The bench's flags for a small dataset at 2 ms, on the test database. */
const tinyBench = (): string[] => [
  ...['--chats', '40', '--messages', '400', '--latency-ms', '2'],
  ...['--database-url', testDatabaseUrl()],
];

/** The tiny scenario's rows named by label (or `extra`'s scenario and rows), with the options every run shares. */
function benchTiny(labels: string[], extra: Partial<BenchOptions> = {}): ReturnType<typeof runBench> {
  return runBench({
    scenario: TINY,
    rows: benchRows(false).filter((row) => labels.includes(row.label)),
    repeat: 1,
    databaseUrl: testDatabaseUrl(),
    wahaUrl: undefined,
    apiKey: undefined,
    session: 'default',
    days: 30,
    onProgress: () => undefined,
    ...extra,
  });
}

/** The scenario `waha-import bench --scenario <name> <flags>` runs, its flags as commander gives them. */
function scenarioFromFlags(name: string, flags: Record<string, unknown>) {
  const overrides = resolveSimConfig(flags);
  return withSimFlags(SCENARIOS[name]!, { ...overrides.simulator, ...overrides.dataset });
}

describe('the scenario a bench runs, with simulator flags', () => {
  const seed = SCENARIOS.seed!;

  it('names the settings the flags changed in the description, with the values simulated', () => {
    expect(seed.sim.capacity).toBe(50);
    const scenario = scenarioFromFlags('seed', { capacity: '200' });
    expect(scenario.sim).toEqual({ ...seed.sim, capacity: 200 });
    expect(scenario.description).toBe(`${seed.description}; changed by flags: capacity 200 (not 50)`);

    const several = scenarioFromFlags('seed', { latencyMs: '5', chats: '40', engine: 'GOWS' });
    expect(several.sim).toEqual({ ...seed.sim, latencyMs: 5, chats: 40, engine: 'GOWS' });
    expect(several.description).toMatch(/; changed by flags: .+$/);
    expect(several.description.split('; changed by flags: ')[1]!.split(', ').sort()).toEqual(
      ['chats 40 (not 1172)', 'engine GOWS (not NOWEB)', 'latencyMs 5 (not 200)'].sort(),
    );
  });

  it('keeps the description as written when no flag changes a setting', () => {
    expect(scenarioFromFlags('seed', {})).toEqual(seed);
    // A flag that repeats the scenario's own value changes nothing.
    expect(scenarioFromFlags('seed', { capacity: '50' }).description).toBe(seed.description);
  });

  it("never puts the real WAHA's --api-key into the description or the simulator settings", () => {
    const scenario = scenarioFromFlags('seed', { apiKey: 'bench-secret-key', capacity: '200' });
    expect(scenario.description).not.toContain('bench-secret-key');
    expect(JSON.stringify(scenario.sim)).not.toContain('bench-secret-key');
    expect(scenario.description).toBe(`${seed.description}; changed by flags: capacity 200 (not 50)`);
  });
});

describe('bench', () => {
  it('prints JSON with one result per row, the physical limit and the machine', async () => {
    const result = await runCli(['bench', '--json', ...tinyBench()], { env: {} });
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as Record<string, unknown> & {
      results: Array<Record<string, unknown>>;
    };
    expect(report).toMatchObject({
      scenario: 'seed',
      waha: 'simulator',
      database: 'external',
      consistent: true,
      limitFormula: expect.stringContaining('T_limit'),
    });
    expect(report.machine).toEqual(
      expect.objectContaining({ cpus: expect.any(Number), node: process.version }),
    );
    expect(typeof report.physicalLimitMs).toBe('number');
    // The seed WAHA serves 50 at once: C50 is streaming pinned at that capacity.
    expect(report.results.map((r) => r.label)).toEqual(['V1', 'A', 'B', 'D', 'C', 'C-auto', 'C50']);
    for (const row of report.results) {
      expect(row).toEqual(
        expect.objectContaining({
          strategy: expect.any(String),
          wallMs: expect.any(Number),
          transactions: expect.any(Number),
          requests: expect.any(Number),
          retries: 0,
          messages: 400,
          speedupVsV1: expect.any(Number),
          limitRatio: expect.any(Number),
          sameAsFirst: true,
        }),
      );
    }
    expect(report.results.find((r) => r.label === 'V1')!.transactions).toBe(40);
    expect(report.results.find((r) => r.label === 'D')!.transactions).toBe(1);
  });

  it('prints tables that fit the terminal, and writes the complete table (.md) or chart and table (.html)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-bench-out-'));
    const tiny = tinyBench();
    const md = await runCli(['bench', ...tiny, '--out', path.join(dir, 'bench.md')], { env: {} });
    expect([md.code, md.stderr]).toEqual([0, expect.stringContaining('table written to')]);
    expect(md.stdout.split('\n').filter((line) => [...line].length > TERMINAL_WIDTH)).toEqual([]);
    expect(md.stdout).toMatch(/^\| C-auto +\| streaming \(auto ≤100, batch 2000\) +\| [\d.]+ m?s +\|/m);
    expect(md.stdout).toMatch(/L: WAHA latency 2 ms a request/);
    const table = fs.readFileSync(path.join(dir, 'bench.md'), 'utf8');
    const header = table.split('\n').find((line) => line.startsWith('| row '))!;
    expect(header.split('|').map((cell) => cell.trim())).toEqual([
      '',
      ...['row', 'strategy', 'wall time', 'vs V1', 'vs limit', 'DB tx', 'WAHA requests', 'retries'],
      ...['msgs/s', 'same DB', 'study estimate', 'limit final/peak/settled', 'vs best fixed'],
      ...['overloads', 'p50 latency', ''],
    ]);
    expect(table.split('\n').filter((line) => /^\| (V1|A|B|D|C|C-auto) /.test(line))).toHaveLength(6);

    const html = await runCli(['bench', ...tiny, '--out', path.join(dir, 'bench.html')], { env: {} });
    expect(html.code).toBe(0);
    const page = fs.readFileSync(path.join(dir, 'bench.html'), 'utf8');
    for (const [start, end] of [
      ['<svg', '</svg>'],
      ['<table>', '</table>'],
    ]) {
      const problems: string[] = [];
      new DOMParser({
        onError: (level, message) => void problems.push(`${level}: ${message}`),
      }).parseFromString(page.slice(page.indexOf(start!), page.indexOf(end!) + end!.length), 'text/xml');
      expect([start, problems]).toEqual([start, []]);
    }
    expect(page.match(/<tr>/g)).toHaveLength(8);

    const wrong = await runCli(['bench', '--out', path.join(dir, 'bench.png')], { env: {} });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/--out.*must end in \.svg, \.html or \.md/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('fails loudly when a strategy leaves a different database, however fast it was', async () => {
    const chunked = getStrategy('chunked')!;
    // Loses the last message of every transaction: fast, and wrong.
    const lossy: Strategy = {
      ...chunked,
      run: (context) =>
        chunked.run({
          ...context,
          sink: {
            commit: (unit) =>
              context.sink.commit({
                ...unit,
                batch: { ...unit.batch, messages: unit.batch.messages.slice(0, -1) },
              }),
          },
        }),
    };
    const report = await benchTiny(['V1', 'D'], {
      strategyFor: (name) => (name === 'chunked' ? lossy : getStrategy(name)),
    });
    expect(report.consistent).toBe(false);
    expect(report.results.map((r) => [r.label, r.sameAsFirst])).toEqual([
      ['V1', true],
      ['D', false],
    ]);
    expect(renderTable(report)).toMatch(/\| D .*\| NO /);
    expect(renderSvg(report)).toContain('WRONG RESULT');
  });

  it('runs fixed and auto rows of the capacity scenario to the same database, with the limit of each auto row', async () => {
    const base = SCENARIOS.capacity!;
    const scenario = {
      ...base,
      sim: { ...base.sim, chats: 40, messages: 400, latencyMs: 5, jitterMs: 0, capacity: 4, queueLimit: 2 },
    };
    const rows = capacityRows(false, scenario.sim);
    expect(rows.map((r) => r.label)).toEqual(['S2', 'S4', 'S8', 'S32', 'S-auto', 'K4', 'K32', 'K-auto']);
    const report = await benchTiny([], {
      scenario,
      rows: rows.filter((r) => ['S4', 'S-auto', 'K-auto'].includes(r.label)),
    });
    expect(report.consistent).toBe(true);
    const [fixed, auto, autoChunked] = report.results;
    expect(fixed).toMatchObject({ concurrency: 4, limit: null, vsBestFixed: null, messages: 400 });
    expect(auto).toMatchObject({ concurrency: 'auto', maxConcurrency: 32, messages: 400 });
    expect(autoChunked).toMatchObject({ concurrency: 'auto', vsBestFixed: null });
    expect(auto!.vsBestFixed).toBeCloseTo(auto!.wallMs / fixed!.wallMs);
    for (const row of [auto!, autoChunked!]) {
      expect(row.limit!.peak).toBeGreaterThanOrEqual(row.limit!.final);
      expect(row.limit!.peak).toBeLessThanOrEqual(32);
      expect(row.limit!.lowest).toBeGreaterThanOrEqual(1);
      expect(row.latencyP50Ms).toEqual(expect.any(Number));
    }
    expect(renderTable(report)).toMatch(
      /\| S-auto +\| streaming \(auto ≤32, batch 2000\) .*\| \d+ \/ \d+ \/ \d+ +\| [\d.]+x/,
    );
  });

  it('measures the write limit on the rows imported, and the CPU of each row', async () => {
    const report = await benchTiny(['V1', 'C'], { writeLimit: true });
    expect(report.consistent).toBe(true);
    expect(report.writeLimit).toMatchObject({ rows: 400, method: expect.stringContaining('COPY') });
    expect(report.writeLimit!.bytes).toBeGreaterThan(400 * 100);
    expect(report.writeLimit!.rowsPerSecond).toBeGreaterThan(0);
    for (const row of report.results) {
      expect(row.cpuMs).toBeGreaterThan(0);
      expect(row.cpuSPerMillion).toBeCloseTo((row.cpuMs / 400) * 1000);
      expect(row.vsWriteLimit).toBeCloseTo(row.messagesPerSecond / report.writeLimit!.rowsPerSecond);
    }
    const table = renderTable(report);
    expect(table).toMatch(
      /^Write limit: [\d,]+ rows\/s = COPY .*, 400 rows in .*; rows at V1 \d+%, C \d+%$/m,
    );
    expect(table).toMatch(
      /^Importer CPU \(user \+ system\) per 1,000,000 messages: V1 [\d.]+ s, C [\d.]+ s$/m,
    );

    // With repeats, the COPY is measured as often as each row runs, and its median counts.
    const repeated = await benchTiny(['C'], { writeLimit: true, repeat: 2 });
    const limit = repeated.writeLimit!;
    expect(limit.rows).toBe(400);
    expect(limit.runsMs).toHaveLength(2);
    expect(limit.elapsedMs).toBeGreaterThanOrEqual(Math.min(...limit.runsMs) - 1);
    expect(limit.elapsedMs).toBeLessThanOrEqual(Math.max(...limit.runsMs) + 1);
    expect(renderTable(repeated)).toMatch(
      /^Write limit: .*, 400 rows in [^(;]+ \(median of 2: [^,]+, [^)]+\); rows at C \d+%$/m,
    );

    // Without it, no write limit is measured.
    const plain = await benchTiny(['C']);
    expect(plain.writeLimit).toBeNull();
    expect(plain.results[0]!.vsWriteLimit).toBeNull();
    expect(renderTable(plain)).not.toContain('Write limit');
  });

  it('--rows picks rows by label and names the rows there are when one is unknown', async () => {
    const result = await runCli(
      [
        'bench',
        '--json',
        '--rows',
        'C,Z',
        '--chats',
        '5',
        '--messages',
        '20',
        '--database-url',
        testDatabaseUrl(),
      ],
      { env: {} },
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--rows "C,Z" names no row "Z" of this scenario.');
    expect(result.stderr).toContain('Its rows are V1, A, B, D, C, C-auto');
    const picked = await runCli(
      [
        'bench',
        '--json',
        '--rows',
        'C',
        '--chats',
        '5',
        '--messages',
        '20',
        '--latency-ms',
        '0',
        '--database-url',
        testDatabaseUrl(),
      ],
      { env: {} },
    );
    expect(picked.code).toBe(0);
    const report = JSON.parse(picked.stdout) as { results: Array<{ label: string }> };
    expect(report.results.map((r) => r.label)).toEqual(['C']);
  });
});
