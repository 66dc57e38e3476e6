import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startSimulator, type Simulator } from '../src/sim/index.js';
import { runCli, type CliResult } from './support/cli.js';
import { testDatabaseUrl, useTestDatabase } from './support/db.js';

const db = useTestDatabase();
const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../bin/waha-import.js');
const API_KEY = 'api-key-Qx7-never-printed';
const ESC = String.fromCharCode(27);
const COLOUR = new RegExp(`${ESC}\\[(3\\d|9\\d)m`);

/** The test database's URL with a password in it: its own when it has one (trust auth ignores a made-up one). */
function urlWithPassword(): { url: string; password: string } {
  const url = new URL(testDatabaseUrl());
  if (!url.password) url.password = 'db-Pw9-never-printed';
  return { url: url.toString(), password: decodeURIComponent(url.password) };
}

let sim: Simulator;
beforeAll(async () => {
  sim = await startSimulator({
    apiKey: API_KEY,
    sessions: [{ name: 'default', datasetOptions: { chats: 6, messages: 60, seed: 5 } }],
  });
});
afterAll(() => sim.close());

function scratch(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-output-'));
}

function runArgsWith(databaseUrl: string, schema: string, extra: string[] = []): string[] {
  return ['run', '--waha-url', sim.url, '--database-url', databaseUrl, '--schema', schema, ...extra];
}

const quote = (arg: string): string => `'${arg.replaceAll("'", `'\\''`)}'`;

/**
 * Runs the CLI on a pseudo-terminal (util-linux `script`), as a person at a terminal would. `columns` 0
 * leaves the terminal without a size, as some `docker exec -t` sessions do.
 */
function runOnTerminal(
  args: string[],
  options: { env?: Record<string, string>; cwd: string; columns: number },
): Promise<CliResult> {
  const command =
    (options.columns > 0 ? `stty cols ${options.columns} rows 40; ` : '') +
    [process.execPath, BIN, ...args].map(quote).join(' ');
  const child = spawn('script', ['-qfec', command, '/dev/null'], {
    cwd: options.cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', TERM: 'xterm', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    // A display that never stops drawing is the failure this guards against: stop it rather than hang.
    if (stdout.length > 1_000_000) child.kill('SIGKILL');
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

async function refusedInEveryMode(url: string, cwd: string): Promise<Array<[string, CliResult]>> {
  const results: Array<[string, CliResult]> = [];
  for (const mode of [[], ['--json'], ['--quiet']]) {
    const env = { WAHA_API_KEY: `${API_KEY}-wrong` };
    results.push([
      `refused key ${mode.join(' ')}`,
      await runCli(runArgsWith(url, db.schema, mode), { env, cwd }),
    ]);
  }
  return results;
}

describe('secrets never appear, in any output mode, in the checkpoint or in the runs table', () => {
  it('plain, --json, --quiet and the terminal display; successes and failures', async () => {
    const { url, password } = urlWithPassword();
    const cwd = scratch();
    const env = { WAHA_API_KEY: API_KEY };
    const outputs: Array<[string, CliResult]> = [
      ['plain', await runCli(runArgsWith(url, db.schema), { env, cwd })],
      ['json', await runCli(runArgsWith(url, db.schema, ['--json']), { env, cwd })],
      ['quiet', await runCli(runArgsWith(url, db.schema, ['--quiet']), { env, cwd })],
      ['terminal', await runOnTerminal(runArgsWith(url, db.schema), { env, cwd, columns: 120 })],
      // Failures: the key refused by WAHA, in every mode; the database refusing the password.
      ...(await refusedInEveryMode(url, cwd)),
      [
        'database unreachable',
        await runCli(runArgsWith(url.replace(/:\d+\//, ':1/'), db.schema, ['--json']), { env, cwd }),
      ],
    ];
    for (const [mode, result] of outputs) {
      const text = result.stdout + result.stderr;
      expect([mode, text.includes(API_KEY), text.includes(password)]).toEqual([mode, false, false]);
    }
    expect(outputs.map(([mode, result]) => [mode, result.code])).toEqual([
      ['plain', 0],
      ['json', 0],
      ['quiet', 0],
      ['terminal', 0],
      ['refused key ', 3],
      ['refused key --json', 3],
      ['refused key --quiet', 3],
      ['database unreachable', 1],
    ]);
    // The refusal said what to do, without the key.
    expect(outputs[4]![1].stderr).toContain('--api-key or WAHA_API_KEY');

    const stored = await db.sql<Array<{ row: string }>>`
      select row_to_json(r)::text as row from ${db.sql(db.schema)}.import_runs r`;
    // Four imports, and the three runs WAHA refused (recorded as failed, with an error free of the key).
    expect(stored.length).toBe(7);
    for (const { row } of stored) {
      expect(row).not.toContain(API_KEY);
      expect(row).not.toContain(password);
    }
    const files = fs.readdirSync(path.join(cwd, '.waha-import'));
    expect(files).toContain(`checkpoint-default-${db.schema}.json`);
    for (const file of files) {
      const content = fs.readFileSync(path.join(cwd, '.waha-import', file), 'utf8');
      expect(content).not.toContain(API_KEY);
      expect(content).not.toContain(password);
    }
  });
});

describe('colour', () => {
  const env = { WAHA_API_KEY: API_KEY };

  it('off a terminal: none by default, FORCE_COLOR turns it on, NO_COLOR wins over FORCE_COLOR', async () => {
    const cwd = scratch();
    const args = runArgsWith(testDatabaseUrl(), db.schema);
    const plain = await runCli(args, { env, cwd });
    const forced = await runCli(args, { env: { ...env, FORCE_COLOR: '1' }, cwd });
    const both = await runCli(args, { env: { ...env, FORCE_COLOR: '1', NO_COLOR: '1' }, cwd });
    for (const result of [plain, forced, both]) expect(result.code).toBe(0);
    expect(plain.stdout + plain.stderr).not.toContain(ESC);
    expect(forced.stdout).toMatch(COLOUR);
    expect(both.stdout + both.stderr).not.toContain(ESC);
  });

  it('on a terminal: coloured by default, none with NO_COLOR (the live display keeps its cursor moves)', async () => {
    const cwd = scratch();
    const args = runArgsWith(testDatabaseUrl(), db.schema);
    const coloured = await runOnTerminal(args, { env, cwd, columns: 120 });
    const uncoloured = await runOnTerminal(args, { env: { ...env, NO_COLOR: '1' }, cwd, columns: 120 });
    expect([coloured.code, uncoloured.code]).toEqual([0, 0]);
    expect(coloured.stdout).toMatch(COLOUR);
    expect(coloured.stdout).toContain('Import finished');
    expect(uncoloured.stdout).not.toMatch(COLOUR);
    expect(uncoloured.stdout).toContain('Import finished');
  });

  it('on an 80-column terminal the progress line and the summary fit', async () => {
    const result = await runOnTerminal(runArgsWith(testDatabaseUrl(), db.schema), {
      env: { ...env, NO_COLOR: '1' },
      cwd: scratch(),
      columns: 80,
    });
    expect(result.code).toBe(0);
    // What each redraw and each line leaves on the screen, without the cursor moves.
    const shown = result.stdout
      .replace(new RegExp(`${ESC}(\\[[0-9;?]*[A-Za-z]|[78])`, 'g'), '\n')
      .split(/\r\n|\r|\n/)
      .filter(Boolean);
    const progress = shown.filter((line) => line.includes(' chats | '));
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)).toMatch(/ 6\/6 chats \| 60 msgs, [\d,]+\/s \| \d+ at once \| ETA 0s$/);
    // The progress line is redrawn in place: wrapped, it would leave a trail. The summary's rows too.
    const tooWide = shown.filter(
      (line) => (line.includes(' chats | ') || /^ {2}\S/.test(line)) && line.length > 80,
    );
    expect(shown.filter((line) => /^ {2}(concurrency|overloads) /.test(line))).toHaveLength(2);
    expect(tooWide).toEqual([]);
  });

  it('a terminal that reports no size gets the plain lines, not a display that never stops redrawing', async () => {
    const result = await runOnTerminal(runArgsWith(testDatabaseUrl(), db.schema), {
      env,
      cwd: scratch(),
      columns: 0,
    });
    expect(result.signal).toBeNull();
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^\d{4}-\d{2}-\d{2}T[\d:.]+Z Checking WAHA session "default"/m);
    expect(result.stdout).toContain('Import finished');
  });
});
