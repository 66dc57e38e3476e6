import { unusablePath } from '../util/private-file.js';
import { jsonText, terminalText } from '../util/terminal-text.js';
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import ora from 'ora';
import { renderHtml, renderSvg, renderTable, renderTerminal } from '../bench/render.js';
import { runBench } from '../bench/run-bench.js';
import { renderWorkersTable, runWorkersBench } from '../bench/workers-bench.js';
import { benchRows, SCENARIOS, withSimFlags, type BenchRow } from '../bench/scenarios.js';
import { resolveSimConfig, SIM_OPTIONS } from '../config/sim-config.js';
import { httpUrl, integer, postgresUrl, resolveOptions, text, type OptionSpec } from '../config/options.js';
import { EXIT, UsageError } from '../errors.js';
import { isLiveTerminal } from '../report/reporter.js';
import { addOptions, examplesAndExitCodes } from './options.js';
import { limitHeapGrowth } from './heap.js';

const BENCH_OPTIONS: ReadonlyArray<OptionSpec<unknown>> = [
  {
    key: 'scenario',
    flag: '--scenario <name>',
    description: `simulator settings: ${Object.keys(SCENARIOS).join(', ')}`,
    defaultValue: 'seed',
    parse: (raw) =>
      Object.hasOwn(SCENARIOS, String(raw))
        ? { ok: true, value: String(raw) }
        : {
            ok: false,
            problem: `must be one of ${Object.keys(SCENARIOS).join(', ')}, got ${JSON.stringify(raw)}`,
          },
  },
  {
    key: 'repeat',
    flag: '--repeat <n>',
    description: "runs per row (and of the write limit's COPY); the median is reported",
    defaultValue: 1,
    parse: integer(1, 100),
  },
  {
    key: 'out',
    flag: '--out <file>',
    description:
      'also write a chart (.svg), the chart with the complete table (.html), or the complete table (.md)',
    parse: text(/\.(svg|html|md)$/i, 'must end in .svg, .html or .md'),
  },
  {
    key: 'databaseUrl',
    flag: '--database-url <url>',
    env: 'DATABASE_URL',
    description:
      'PostgreSQL to measure on, in a scratch schema dropped afterwards (default: a scratch embedded one)',
    secret: true,
    parse: postgresUrl,
  },
  {
    key: 'wahaUrl',
    flag: '--waha-url <url>',
    description: 'measure against a real WAHA (read-only) instead of the simulator',
    parse: httpUrl,
  },
  {
    key: 'apiKey',
    flag: '--api-key <key>',
    env: 'WAHA_API_KEY',
    description: 'API key of that WAHA',
    secret: true,
    parse: text(),
  },
  {
    key: 'session',
    flag: '--session <name>',
    env: 'WAHA_SESSION',
    description: 'session of that WAHA',
    defaultValue: 'default',
    parse: text(),
  },
  {
    key: 'maxConcurrency',
    flag: '--max-concurrency <n>',
    description: "the most the auto rows may reach (default: each row's own, 100 in the study's rows)",
    parse: integer(1, 10_000),
  },
  {
    key: 'workers',
    flag: '--workers <list>',
    description:
      'instead of the rows: the scenario imported by this many `worker` processes through the job queue, e.g. 1,2,4',
    parse: (raw) => {
      const counts = String(raw)
        .split(',')
        .map((part) => Number(part.trim()));
      return counts.length > 0 && counts.every((n) => Number.isInteger(n) && n >= 1 && n <= 32)
        ? { ok: true, value: counts }
        : {
            ok: false,
            problem: `must be worker counts from 1 to 32 such as 1,2,4, got ${JSON.stringify(raw)}`,
          };
    },
  },
  {
    key: 'servers',
    flag: '--servers <n>',
    description: "with --workers: simulated WAHA servers, each with the scenario's dataset and capacity",
    defaultValue: 2,
    parse: integer(1, 16),
  },
];

/** The rows named by `--rows` (all when it is not given), in the scenario's order. */
function selectRows(rows: BenchRow[], given: unknown): BenchRow[] {
  if (given === undefined) return rows;
  const wanted = String(given)
    .split(',')
    .map((label) => label.trim())
    .filter((label) => label !== '');
  const known = new Set(rows.map((row) => row.label));
  const unknown = wanted.filter((label) => !known.has(label));
  if (wanted.length === 0 || unknown.length > 0) {
    throw new UsageError(
      `--rows ${JSON.stringify(String(given))} names ${unknown.length ? `no row ${unknown.map((l) => JSON.stringify(l)).join(', ')}` : 'no row'} of this scenario.`,
      `Its rows are ${[...known].join(', ')} (add --sequential for seq).`,
    );
  }
  return rows.filter((row) => wanted.includes(row.label));
}

export function registerBench(program: Command, setExit: (code: number) => void): void {
  const command = program
    .command('bench')
    .description(
      'measure the import strategies side by side (rows below), against the simulator or a real WAHA',
    )
    .option('--sequential', 'also run the sequential strategy (slow)')
    .option('--rows <labels>', 'only these rows, e.g. C,C-auto (labels as in the table)')
    .option(
      '--write-limit',
      'also COPY the imported rows into an empty copy of the table: the write-side limit (on in the large scenario)',
    )
    .option('--json', 'print the results as JSON');
  addOptions(command, BENCH_OPTIONS);
  addOptions(
    command,
    SIM_OPTIONS.filter((spec) => spec.key !== 'apiKey'),
  );
  command.addHelpText(
    'after',
    `
Rows: V1 = parallel at 20 (one transaction per chat), A = parallel at 100, B = chunked, chunk 100,
D = chunked, chunk 50 at 50, C = streaming at 100, C-auto = streaming at auto, and C<n> = streaming
at the simulated WAHA's capacity n when it is not 100. The capacity scenario instead compares fixed
concurrency (S = streaming, K = chunked, at C/2 .. 8C of WAHA's capacity C) with auto (adaptive).
Each row runs on a freshly reset scratch schema;
every row must leave the same database (checksum), or the bench fails with exit 1.
Simulator flags (--latency-ms, --capacity, ...) override the scenario's settings.
${examplesAndExitCodes(
  [
    'waha-import bench                                     every row on the seed dataset',
    'waha-import bench --scenario flaky --out flaky.svg',
    'waha-import bench --waha-url http://waha:3000 --api-key ... --session default   a real WAHA (read-only)',
    'waha-import bench --workers 1,2,4 --servers 2 --scenario capacity   workers sharing the job queue',
  ],
  [
    EXIT.ok,
    [EXIT.importFailed, 'a row failed, or rows left different databases'],
    EXIT.usage,
    EXIT.wahaRefused,
  ],
)}`,
  );
  command.action(async (flags: Record<string, unknown>) => {
    limitHeapGrowth();
    const { values, problems } = resolveOptions(BENCH_OPTIONS, { flags, env: process.env });
    if (problems.length) throw new UsageError(problems, 'Run `waha-import bench --help`.');
    const get = <T>(key: string): T => values[key]!.value as T;
    const base = SCENARIOS[get<string>('scenario')]!;
    const overrides = resolveSimConfig(flags);
    const scenario = withSimFlags(base, { ...overrides.simulator, ...overrides.dataset });
    const json = Boolean(flags.json);
    const spinner = json || !isLiveTerminal() ? undefined : ora({ stream: process.stderr }).start();
    const onProgress = (text: string): void => {
      if (spinner) spinner.text = terminalText(text);
      else if (!json) process.stderr.write(`${new Date().toISOString()} ${terminalText(text)}\n`);
    };
    const workers = get<number[] | undefined>('workers');
    if (workers) {
      if (get('wahaUrl')) throw new UsageError('--workers measures simulated servers; leave out --waha-url');
      const report = await runWorkersBench({
        scenario,
        workers,
        servers: get('servers'),
        databaseUrl: get('databaseUrl'),
        onProgress,
      }).finally(() => spinner?.stop());
      process.stdout.write(
        json
          ? jsonText({ type: 'bench-workers', ...report }) + '\n'
          : terminalText(renderWorkersTable(report)) + '\n',
      );
      if (!report.consistent) {
        process.stderr.write('error: the worker counts left different databases (see "same DB").\n');
        setExit(EXIT.importFailed);
        return;
      }
      setExit(EXIT.ok);
      return;
    }
    const allRows = (scenario.rows ?? benchRows)(Boolean(flags.sequential), scenario.sim);
    const maxConcurrency = get<number | undefined>('maxConcurrency');
    const rows = selectRows(allRows, flags.rows).map((row) =>
      row.concurrency === 'auto' && maxConcurrency !== undefined ? { ...row, maxConcurrency } : row,
    );
    const report = await runBench({
      scenario,
      rows,
      writeLimit: Boolean(flags.writeLimit) || Boolean(scenario.writeLimit),
      repeat: get('repeat'),
      databaseUrl: get('databaseUrl'),
      wahaUrl: get('wahaUrl'),
      apiKey: get('apiKey'),
      session: get('session'),
      days: scenario.sim.days,
      onProgress: (text) => {
        if (spinner) spinner.text = terminalText(text);
        else if (!json) process.stderr.write(`${new Date().toISOString()} ${terminalText(text)}\n`);
      },
    }).finally(() => spinner?.stop());
    process.stdout.write(
      json ? jsonText({ type: 'bench', ...report }) + '\n' : terminalText(renderTerminal(report)) + '\n',
    );
    const out = get<string | undefined>('out');
    if (out) {
      const kind = path.extname(out).toLowerCase();
      const content =
        kind === '.html'
          ? renderHtml(report)
          : kind === '.md'
            ? renderTable(report) + '\n'
            : renderSvg(report);
      try {
        fs.writeFileSync(path.resolve(out), content);
      } catch (error) {
        throw unusablePath(error, 'the chart file', path.resolve(out), 'Choose a writable --out file.');
      }
      if (!json) process.stderr.write(`${kind === '.md' ? 'table' : 'chart'} written to ${out}\n`);
    }
    if (!report.consistent) {
      process.stderr.write(
        'error: the strategies left different databases (see "same DB"): the fast result is wrong.\n',
      );
      setExit(EXIT.importFailed);
      return;
    }
    setExit(EXIT.ok);
  });
}
