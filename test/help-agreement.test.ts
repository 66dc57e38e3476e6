import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { QUEUE_FILE_KEYS, RUN_OPTIONS } from '../src/config/run-config.js';
import { PLAN_OPTIONS, SCHEDULE_OPTIONS, WORKER_OPTIONS } from '../src/config/queue-config.js';
import { runCli } from './support/cli.js';

/**
 * README's flag table of `run`, `run --help` and .importrc.example describe one set of settings: every
 * flag in one is in the others, with the same environment variable and default.
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');

interface Row {
  flag: string;
  env: string;
  defaultCell: string;
}

/** The rows of the flag table under "### `waha-import run`" (cells split on unescaped pipes). */
function readmeRunFlags(): Map<string, Row> {
  const section = README.slice(README.indexOf('### `waha-import run`'), README.indexOf('**Strategies.**'));
  const rows = new Map<string, Row>();
  for (const line of section.split('\n')) {
    if (!line.startsWith('| `--')) continue;
    const cells = line
      .split(/(?<!\\)\|/)
      .slice(1, -1)
      .map((cell) => cell.trim().replaceAll('\\|', '|'));
    const flag = cells[0]!.replace(/^`|`$/g, '');
    rows.set(flag, { flag, env: cells[1]!.replace(/^`|`$/g, ''), defaultCell: cells[2]! });
  }
  return rows;
}

/** How README writes a default: `30`, `streaming`; switches are `off`. */
function readmeDefault(value: unknown): string {
  if (value === false) return 'off';
  return `\`${Array.isArray(value) ? value.join(',') : String(value)}\``;
}

let help = '';
beforeAll(async () => {
  const result = await runCli(['run', '--help']);
  expect(result.code).toBe(0);
  help = result.stdout;
});

describe('README, run --help and .importrc.example agree', () => {
  it('the same flags in the README table and in run --help', () => {
    const helpFlags = [...help.matchAll(/^ {2}(--[a-z-]+(?: <[^>]+>)?)/gm)]
      .map((m) => m[1]!)
      .filter((flag) => flag !== '--help');
    expect([...readmeRunFlags().keys()].sort()).toEqual([...helpFlags].sort());
  });

  it('each flag with the same environment variable and default', () => {
    const rows = readmeRunFlags();
    // Help text wraps; compared with whitespace collapsed.
    const flatHelp = help.replace(/\s+/g, ' ');
    const disagreements: string[] = [];
    for (const spec of RUN_OPTIONS) {
      const row = rows.get(spec.flag);
      if (!row) {
        disagreements.push(`${spec.flag}: not in the README table`);
        continue;
      }
      if (row.env !== (spec.env ?? ''))
        disagreements.push(`${spec.flag}: env ${row.env} in README, ${spec.env}`);
      if (spec.env && !flatHelp.includes(`env: ${spec.env}`))
        disagreements.push(`${spec.flag}: env not in help`);
      if (spec.defaultValue !== undefined) {
        if (!row.defaultCell.startsWith(readmeDefault(spec.defaultValue))) {
          disagreements.push(
            `${spec.flag}: default ${row.defaultCell} in README, ${String(spec.defaultValue)}`,
          );
        }
        if (spec.defaultValue !== false && !flatHelp.includes(`default: ${String(spec.defaultValue)}`)) {
          disagreements.push(`${spec.flag}: default not in help`);
        }
      } else {
        // A default README names (in backticks) must be the one help names in the description.
        const named = /^`([^`]+)`/.exec(row.defaultCell)?.[1];
        if (named !== undefined && !spec.description.includes(named)) {
          disagreements.push(`${spec.flag}: README names the default ${named}, help does not`);
        }
      }
    }
    expect(disagreements).toEqual([]);
  });

  it('.importrc.example holds only real keys, each at its default, and mentions every setting', () => {
    const example = JSON.parse(fs.readFileSync(path.join(ROOT, '.importrc.example'), 'utf8')) as Record<
      string,
      unknown
    >;
    const byKey = new Map(RUN_OPTIONS.map((spec) => [spec.key, spec]));
    const problems: string[] = [];
    for (const [key, value] of Object.entries(example)) {
      if (key.startsWith('//')) continue;
      const spec = byKey.get(key);
      if (!spec) {
        problems.push(`${key}: not a setting`);
        continue;
      }
      const parsed = spec.parse(value);
      if (!parsed.ok) problems.push(`${key}: ${parsed.problem}`);
      else if (
        spec.defaultValue !== undefined &&
        JSON.stringify(parsed.value) !== JSON.stringify(spec.defaultValue)
      ) {
        problems.push(
          `${key}: ${JSON.stringify(value)}, the default is ${JSON.stringify(spec.defaultValue)}`,
        );
      }
    }
    const mentioned = new Set(Object.keys(example).map((key) => key.replace(/^\/\//, '').split(' ')[0]));
    for (const key of byKey.keys())
      if (!mentioned.has(key)) problems.push(`${key}: not in .importrc.example`);
    expect(problems).toEqual([]);
  });

  it("every command's help has examples and its exit codes, and no default shown as a JavaScript value", async () => {
    for (const command of [
      'run',
      'migrate',
      'status',
      'sql',
      'export',
      'psql',
      'sim',
      'bench',
      'enqueue',
      'worker',
      'schedule',
    ]) {
      const result = await runCli([command, '--help']);
      expect([command, result.code]).toEqual([command, 0]);
      expect([command, /\nExamples:\n/.test(result.stdout)]).toEqual([command, true]);
      expect([command, /Exit codes:/.test(result.stdout)]).toEqual([command, true]);
      expect([command, /Infinity|undefined|\[object/.test(result.stdout)]).toEqual([command, false]);
    }
    const status = await runCli(['status', '--help']);
    expect(status.stdout.replace(/\s+/g, ' ')).toContain('--session <name> show only the runs');
    expect(help.replace(/\s+/g, ' ')).toContain('import the last N days (not together with --since)');
  });

  it("the queue commands' own .importrc keys are the ones every command accepts in a shared .importrc", () => {
    const runKeys = new Set(RUN_OPTIONS.map((spec) => spec.key));
    const own = [...PLAN_OPTIONS, ...WORKER_OPTIONS, ...SCHEDULE_OPTIONS]
      .map((spec) => spec.key)
      .filter((key) => !runKeys.has(key));
    expect([...new Set(own)].sort()).toEqual([...QUEUE_FILE_KEYS].sort());
  });
});
