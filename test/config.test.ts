import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveRunConfig, RUN_OPTIONS } from '../src/config/run-config.js';
import { UsageError } from '../src/errors.js';

const NOW_MS = Date.parse('2026-11-25T12:00:00Z');
const NOW_S = NOW_MS / 1000;

function tempDir(files: Record<string, string> = {}): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-config-'));
  for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), content);
  return dir;
}

function resolve(flags: Record<string, unknown>, env: Record<string, string> = {}, cwd = tempDir()) {
  return resolveRunConfig({ flags, env, cwd, nowMs: NOW_MS });
}

function problemsOf(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    if (error instanceof UsageError) return error.problems;
    throw error;
  }
  throw new Error('expected a UsageError');
}

describe('run configuration', () => {
  it('defaults to the last 30 days ending now, 100 messages per page, session default', () => {
    const config = resolve({});
    expect(config.window).toEqual({ fromS: NOW_S - 30 * 86_400, toS: NOW_S });
    expect(config.pageSize).toBe(100);
    expect(config.sessions).toEqual(['default']);
    expect(config.allSessions).toBe(false);
    expect(config.schema).toBe('waha');
    expect(config.wahaUrl).toBe('http://localhost:3000');
  });

  it('merges defaults < .importrc < environment < flags', () => {
    const cwd = tempDir({
      '.importrc': JSON.stringify({ session: 'from-file', concurrency: 7, schema: 'file_schema' }),
    });
    const fileOnly = resolve({}, {}, cwd);
    expect([fileOnly.sessions, fileOnly.concurrency, fileOnly.schema]).toEqual([
      ['from-file'],
      7,
      'file_schema',
    ]);
    const withEnv = resolve({}, { WAHA_SESSION: 'from-env', WAHA_IMPORT_CONCURRENCY: '9' }, cwd);
    expect([withEnv.sessions, withEnv.concurrency, withEnv.schema]).toEqual([['from-env'], 9, 'file_schema']);
    const withFlags = resolve({ session: 'from-flag' }, { WAHA_SESSION: 'from-env' }, cwd);
    expect(withFlags.sessions).toEqual(['from-flag']);
  });

  it('--concurrency: auto by default for streaming and chunked, 20 for parallel; a number pins it', () => {
    expect(resolve({}).concurrency).toBe('auto');
    expect(resolve({ strategy: 'chunked' }).concurrency).toBe('auto');
    expect(resolve({ strategy: 'parallel' }).concurrency).toBe(20);
    expect(resolve({ strategy: 'streaming', concurrency: '35' }).concurrency).toBe(35);
    expect(resolve({ strategy: 'parallel' }, { WAHA_IMPORT_CONCURRENCY: 'AUTO' }).concurrency).toBe('auto');
    expect(resolve({}).maxConcurrency).toBe(100);
    expect(resolve({ maxConcurrency: '40' }).maxConcurrency).toBe(40);
    expect(problemsOf(() => resolve({ concurrency: 'fast', maxConcurrency: '0' }))).toEqual([
      '--concurrency must be auto or a whole number from 1 to 1000, got "fast"',
      '--max-concurrency must be from 1 to 1000, got 0',
    ]);
  });

  it('takes several sessions as a,b (flag, environment) or a list (.importrc), each once', () => {
    expect(resolve({ session: 'a, b,a' }).sessions).toEqual(['a', 'b']);
    expect(resolve({}, { WAHA_SESSION: 'sales,support' }).sessions).toEqual(['sales', 'support']);
    const cwd = tempDir({ '.importrc': JSON.stringify({ session: ['x', 'y'] }) });
    expect(resolve({}, {}, cwd).sessions).toEqual(['x', 'y']);
    expect(resolve({ allSessions: true }).allSessions).toBe(true);
  });

  it('refuses bad session lists, --all-sessions with --session, and one --checkpoint for several sessions', () => {
    expect(problemsOf(() => resolve({ session: 'a,,b' }))).toEqual([
      expect.stringContaining('--session must be a WAHA session name or a comma-separated list'),
    ]);
    expect(problemsOf(() => resolve({ session: 'a b' }))).toEqual([
      expect.stringContaining('--session must be a WAHA session name'),
    ]);
    expect(problemsOf(() => resolve({ allSessions: true, session: 'a' }))).toEqual([
      '--all-sessions and --session both choose the sessions; give one',
    ]);
    expect(problemsOf(() => resolve({ session: 'a,b', checkpoint: 'c.json' }))).toEqual([
      expect.stringContaining('--checkpoint names one file, but several sessions are imported'),
    ]);
    expect(problemsOf(() => resolve({ allSessions: true }, { WAHA_SESSION: 'a' }))).toEqual([
      '--all-sessions and WAHA_SESSION both choose the sessions; give one',
    ]);
  });

  it('reports every problem at once, each naming its flag, variable or file key', () => {
    const cwd = tempDir({ '.importrc': JSON.stringify({ chunk: 0, colour: 'blue' }) });
    const problems = problemsOf(() =>
      resolve({ pageSize: '101', days: 'ten', strategy: 'fastest' }, { WAHA_URL: 'ftp://x' }, cwd),
    );
    const text = problems.join('\n');
    expect(text).toContain('--page-size must be from 1 to 100, got 101');
    expect(text).toContain('--days must be a whole number');
    expect(text).toContain('--strategy must be one of sequential, parallel, chunked, streaming');
    expect(text).toContain('WAHA_URL must start with http:// or https://');
    expect(text).toContain('.importrc key "chunk" must be from 1');
    expect(text).toContain('unknown key "colour"');
    expect(problems).toHaveLength(6);
  });

  it('takes --since and --until as dates, times or unix seconds, in UTC', () => {
    const config = resolve({ since: '2026-10-01', until: '2026-10-02T06:00:00' });
    expect(config.window).toEqual({
      fromS: Date.parse('2026-10-01T00:00:00Z') / 1000,
      toS: Date.parse('2026-10-02T06:00:00Z') / 1000,
    });
    expect(resolve({ since: '1790000000' }).window.fromS).toBe(1_790_000_000);
  });

  it('refuses a day that does not exist instead of rolling it over', () => {
    expect(problemsOf(() => resolve({ since: '2026-02-30' }))[0]).toBe(
      '--since names a day that does not exist: "2026-02-30"',
    );
    expect(resolve({ since: '2024-02-29' }).window.fromS).toBe(Date.parse('2024-02-29T00:00:00Z') / 1000);
  });

  it("refuses session names that collapse a URL path and PostgreSQL's own schemas", () => {
    for (const session of ['.', '..', 'a,..']) {
      expect(problemsOf(() => resolve({ session }))[0]).toContain('--session must be a WAHA session name');
    }
    expect(resolve({ session: 'v1.2' }).sessions).toEqual(['v1.2']);
    for (const schema of ['information_schema', 'pg_catalog', 'pg_temp']) {
      expect(problemsOf(() => resolve({ schema }))[0]).toContain("not one of PostgreSQL's own");
    }
  });

  it('refuses a window that ends before it starts, and --days with --since', () => {
    expect(problemsOf(() => resolve({ since: '2026-10-02', until: '2026-10-01' }))[0]).toContain(
      'window starts after it ends',
    );
    expect(problemsOf(() => resolve({ since: '2026-10-02', days: '3' }))[0]).toContain(
      'both set the window start',
    );
  });

  it('refuses a window that ends after now: the chats would be recorded as read up to it', () => {
    const problems = problemsOf(() => resolve({ since: '2026-11-01', until: '2026-12-31' }));
    expect(problems).toEqual([
      '--until 2026-12-31T00:00:00Z is later than now (2026-11-25T12:00:00Z): messages that have not been ' +
        'sent yet cannot be imported, and each chat would be recorded as complete up to it, so incremental ' +
        'runs would skip what arrives until then; leave it out to import up to now',
    ]);
    const cwd = tempDir({ '.importrc': JSON.stringify({ until: String(NOW_S + 1) }) });
    expect(problemsOf(() => resolve({}, {}, cwd))[0]).toMatch(
      /\.importrc key "until" 2026-11-25T12:00:01Z is later than now/,
    );
    // Now itself is the default end, and allowed.
    expect(resolve({ until: String(NOW_S) }).window.toS).toBe(NOW_S);
  });

  it('starts a window reaching back before 1970 at 0: WAHA answers a negative timestamp.gte with 400', () => {
    expect(resolve({ days: '36500' }).window).toEqual({ fromS: 0, toS: NOW_MS / 1000 });
    expect(resolve({ since: '1960-01-01', until: '2026-10-01' }).window.fromS).toBe(0);
  });

  it('reads one .importrc shared with the queue commands: their keys are not unknown to run', () => {
    const cwd = tempDir({ '.importrc': JSON.stringify({ days: 3, chatsPerJob: 20, jobs: 8 }) });
    expect(resolve({}, {}, cwd).window.fromS).toBe(NOW_MS / 1000 - 3 * 86_400);
    const wrong = tempDir({ '.importrc': JSON.stringify({ chatsPerJobs: 20 }) });
    expect(problemsOf(() => resolve({}, {}, wrong))[0]).toContain('unknown key "chatsPerJobs"');
  });

  it('takes a WAHA on any port (node:http connects to the ports fetch would refuse), never a URL with credentials', () => {
    for (const port of [9, 6000, 10080]) {
      expect(resolve({ wahaUrl: `http://127.0.0.1:${port}` }).wahaUrls).toEqual([`http://127.0.0.1:${port}`]);
    }
    expect(problemsOf(() => resolve({ wahaUrl: 'http://user:secret@127.0.0.1:3000' })).join('\n')).toMatch(
      /must not hold a user name or password/,
    );
  });

  it('refuses a config file that is not JSON, naming the file', () => {
    const cwd = tempDir({ '.importrc': '{ days: 3 ' });
    expect(() => resolve({}, {}, cwd)).toThrow(/\.importrc is not valid JSON/);
    expect(() =>
      resolveRunConfig({ flags: {}, env: {}, cwd, configPath: 'missing.json', nowMs: NOW_MS }),
    ).toThrow(/cannot read config file .*missing\.json/);
  });
});

describe('.importrc.example', () => {
  const example = JSON.parse(
    fs.readFileSync(new URL('../.importrc.example', import.meta.url), 'utf8'),
  ) as Record<string, unknown>;

  it('documents every setting (as a key, or as a //key comment for secrets and optional ones)', () => {
    const documented = new Set(Object.keys(example).map((key) => key.replace(/^\/\//, '')));
    const missing = RUN_OPTIONS.map((spec) => spec.key).filter(
      (key) => key !== 'simulate' && !documented.has(key),
    );
    expect(missing).toEqual([]);
  });

  it('is valid as it stands, and its values are the defaults', () => {
    const cwd = tempDir({ '.importrc': JSON.stringify(example) });
    const fromExample = resolve({}, {}, cwd);
    expect(fromExample).toEqual(resolve({}));
  });
});
