import { generateDataset, startSimulator, type Simulator } from '../src/sim/index.js';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import { BIN, runCli } from './support/cli.js';
import { testDatabaseUrl, useTestDatabase } from './support/db.js';

const db = useTestDatabase();
const API_KEY = 'sekret-api-key-4711';
let sim: Simulator;

beforeAll(async () => {
  sim = await startSimulator({
    apiKey: API_KEY,
    sessions: [
      { name: 'default', datasetOptions: { chats: 5, messages: 40, seed: 2 } },
      { name: 'sleepy', status: 'SCAN_QR_CODE', dataset: generateDataset({ chats: 2, messages: 4 }) },
    ],
  });
});
afterAll(() => sim.close());

function run(args: string[], env: Record<string, string> = { WAHA_API_KEY: API_KEY }) {
  return runCli(
    ['run', '--waha-url', sim.url, '--database-url', testDatabaseUrl(), '--schema', db.schema, ...args],
    {
      env,
    },
  );
}

async function messageCount(): Promise<number | null> {
  const [row] = await db.sql<[{ n: number } | undefined]>`
    select (select count(*)::int from information_schema.tables where table_schema = ${db.schema} and table_name = 'messages') as n`;
  if (!row?.n) return null;
  const [{ count }] = await db.sql<
    [{ count: number }]
  >`select count(*)::int as count from ${db.sql(db.schema)}.messages`;
  return count;
}

describe('failures a user meets, each with a clear message and its own exit code', () => {
  it('a wrong API key: exit 3, says which setting to fix, never prints the key', async () => {
    const result = await run([], { WAHA_API_KEY: 'not-the-key' });
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('refused the API key (401 Unauthorized)');
    expect(result.stderr).toContain('--api-key or WAHA_API_KEY');
    expect(result.stderr + result.stdout).not.toContain('not-the-key');
    expect(await messageCount()).toBe(0);
  });

  it('no API key given where WAHA wants one: exit 3, says so and where a key goes', async () => {
    const result = await run([], {});
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('no API key given (401 Unauthorized)');
    expect(result.stderr).not.toContain('refused the API key');
    expect(result.stderr).toContain('--api-key, WAHA_API_KEY, or WAHA_API_KEY_FILE');
  });

  it('WAHA is checked before the database is opened; a refusal is said even when the database is away', async () => {
    const ok = await run([]);
    expect(ok.code).toBe(0);
    const working = ok.stderr.indexOf('Session "default" is WORKING');
    expect(working).toBeGreaterThan(-1);
    expect(working).toBeLessThan(ok.stderr.indexOf('Connecting to PostgreSQL'));

    // Nothing listens on port 1: the refusal is the error, the database only a warning about recording it.
    const refused = await runCli(
      [
        'run',
        '--waha-url',
        sim.url,
        '--database-url',
        'postgres://app@127.0.0.1:1/crm',
        '--session',
        'sleepy',
      ],
      { env: { WAHA_API_KEY: API_KEY } },
    );
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain('could not record the failed run');
    const lines = refused.stderr.trim().split('\n');
    expect(lines.at(-2)).toContain('error: WAHA session "sleepy" is SCAN_QR_CODE, not WORKING');
  });

  it('an unknown session: exit 3, names it', async () => {
    const result = await run(['--session', 'nobody']);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('WAHA has no session "nobody" (404 Not Found)');
  });

  it('a session that is not WORKING: exit 3, says its status and what to do', async () => {
    const result = await run(['--session', 'sleepy']);
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('WAHA session "sleepy" is SCAN_QR_CODE, not WORKING');
    expect(result.stderr).toMatch(/hint: Scan its QR code/);
  });

  it('WAHA not listening at all: exit 3 after the retries, naming the address', async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as net.AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const result = await runCli(
      [
        'run',
        '--waha-url',
        `http://127.0.0.1:${closedPort}`,
        '--max-retries',
        '1',
        '--database-url',
        testDatabaseUrl(),
        '--schema',
        db.schema,
      ],
      { env: {} },
    );
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/GET \/api\/server\/version failed 2 times; last: ECONNREFUSED/);
    expect(result.stderr).toContain(`reachable at http://127.0.0.1:${closedPort}`);
    expect(result.stderr).toContain(`reachable at http://127.0.0.1:${closedPort}`);
  });

  it('bad flags: exit 2, every problem listed, nothing written', async () => {
    const result = await run(['--page-size', '500', '--strategy', 'fast', '--since', 'yesterday']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--page-size must be from 1 to 100, got 500');
    expect(result.stderr).toContain('--strategy must be one of sequential, parallel, chunked, streaming');
    expect(result.stderr).toContain('--since must be a date like 2026-10-01');
    expect(await messageCount()).toBeNull();
  });

  it('a database that does not answer: exit 1, the URL shown without its password', async () => {
    const result = await runCli(
      ['run', '--waha-url', sim.url, '--database-url', 'postgres://app:db-pa55word@127.0.0.1:1/crm'],
      { env: { WAHA_API_KEY: API_KEY } },
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('127.0.0.1:1');
    expect(result.stderr + result.stdout).not.toContain('db-pa55word');
  });

  it('off a TTY the output is plain timestamped lines without ANSI escapes, even with the secrets around', async () => {
    const result = await run([]);
    expect(result.code).toBe(0);
    expect(result.stderr + result.stdout).not.toContain(String.fromCharCode(27));
    expect(result.stderr).toMatch(/^\d{4}-\d{2}-\d{2}T[\d:.]+Z Checking WAHA session "default"/m);
    expect(result.stdout).toContain('messages written  40 inserted, 0 updated, 0 unchanged');
    expect(result.stderr).toMatch(
      /Z progress: 5\/5 chats fetched, 5 committed, 40 messages fetched, \d+ at once$/m,
    );
    expect(result.stdout).toMatch(/elapsed +[\d.]+ (ms|s) \([\d,]+ msgs\/s, peak memory \d+ MB\)/);
    expect(result.stdout).toMatch(/concurrency +auto: settled at \d+/);
    expect(result.stderr + result.stdout).not.toContain(API_KEY);
  });

  it('sim on a port in use: a usage error, not a stack', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = taken.address() as net.AddressInfo;
      const sim = await runCli(['sim', '--port', String(port)]);
      expect(sim.code).toBe(2);
      expect(sim.stderr).toContain(`--port ${port}: another program already listens on it`);
      expect(sim.stderr).not.toMatch(/this is a bug|\n\s+at /);
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()));
    }
  });

  it('--version, and help piped into a reader that stops early (head): no EPIPE crash', async () => {
    const version = await runCli(['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const piped = spawnSync(
      'bash',
      ['-c', `node ${JSON.stringify(BIN)} run --help | head -c 1 > /dev/null; exit \${PIPESTATUS[0]}`],
      {
        encoding: 'utf8',
      },
    );
    expect(piped.stderr).not.toContain('EPIPE');
    expect(piped.status).toBe(0);
  });

  it('--quiet prints nothing when all is well', async () => {
    const result = await run(['--quiet']);
    expect(result.code).toBe(0);
    expect(result.stdout + result.stderr).toBe('');
  });
});
