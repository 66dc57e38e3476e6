import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startSimulator, type Simulator } from '../src/sim/index.js';
import { runCli, type CliResult } from './support/cli.js';
import { testDatabaseUrl, useTestDatabase } from './support/db.js';

/** The API key never leaves for another origin; URL secrets never reach output; secrets can come from files. */

const API_KEY = 'k3y-that-must-stay-home';
const db = useTestDatabase();
let sim: Simulator;
const servers: http.Server[] = [];

beforeAll(async () => {
  sim = await startSimulator({
    apiKey: API_KEY,
    sessions: [{ name: 'default', datasetOptions: { chats: 3, messages: 12, seed: 5 } }],
  });
});
afterAll(async () => {
  await sim.close();
  for (const server of servers) await new Promise((resolve) => server.close(resolve));
});

async function serve(handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-secrets-'));
}

function run(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return runCli(['run', '--database-url', testDatabaseUrl(), '--schema', db.schema, ...args], {
    env,
    cwd: tempDir(),
  });
}

it('a redirect to another origin is refused: the API key is never sent there', async () => {
  const seenKeys: Array<string | undefined> = [];
  const elsewhere = await serve((req, res) => {
    seenKeys.push(req.headers['x-api-key'] as string | undefined);
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
  const redirector = await serve((req, res) => {
    res.writeHead(302, { location: `${elsewhere}${req.url}` }).end();
  });
  const result = await run(['--waha-url', redirector, '--json'], { WAHA_API_KEY: API_KEY });
  expect(result.code).toBe(3);
  expect(seenKeys).toEqual([]);
  expect(result.stdout).toContain(`to another origin, ${elsewhere}`);
  expect(result.stdout).not.toContain(API_KEY);
});

it('a WAHA URL with a user and password is a usage error, never sent nor printed', async () => {
  const url = new URL(sim.url);
  url.username = 'someone';
  url.password = 'pw-in-the-url';
  for (const output of [[], ['--json']]) {
    const result = await run(['--waha-url', url.toString(), ...output]);
    expect(result.code).toBe(2);
    const text = result.stdout + result.stderr;
    expect(text).not.toContain('pw-in-the-url');
    expect(text).toContain('--api-key');
    expect(text).not.toMatch(/retry/);
  }
});

it('query values of the WAHA URL (?token=) are masked in retry warnings, errors, hints and --json', async () => {
  // A port nothing listens on: retried, then the run fails naming the URL.
  const closed = await serve(() => undefined);
  const port = new URL(closed).port;
  await new Promise((resolve) => servers.pop()!.close(resolve));
  const url = `http://127.0.0.1:${port}/?token=tok-in-the-url&other=plain-value`;
  for (const output of [[], ['--json']]) {
    const result = await run(['--waha-url', url, '--max-retries', '1', ...output]);
    expect(result.code).toBe(3);
    const text = result.stdout + result.stderr;
    expect(text).toMatch(/retry 1/);
    expect(text).toContain('token=***&other=***');
    expect(text).not.toContain('tok-in-the-url');
    expect(text).not.toContain('plain-value');
  }
  // And a URL with a query works: it is kept on every request.
  const ok = await run(['--waha-url', `${sim.url}/?token=tok-in-the-url`], { WAHA_API_KEY: API_KEY });
  expect(ok.code).toBe(0);
  expect(ok.stdout + ok.stderr).not.toContain('tok-in-the-url');
});

describe('secrets from files', () => {
  it('WAHA_API_KEY_FILE and DATABASE_URL_FILE: read, trailing newline dropped', async () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'key'), `${API_KEY}\n`);
    fs.writeFileSync(path.join(dir, 'db'), `${testDatabaseUrl()}\r\n`);
    const result = await runCli(['run', '--waha-url', sim.url, '--schema', db.schema, '--json'], {
      cwd: tempDir(),
      env: { WAHA_API_KEY_FILE: path.join(dir, 'key'), DATABASE_URL_FILE: path.join(dir, 'db') },
    });
    expect(result.code).toBe(0);
    expect(result.stdout).not.toContain(API_KEY);
  });

  it('a missing or empty file, or a value given both ways, is a usage error naming it', async () => {
    const dir = tempDir();
    const empty = path.join(dir, 'empty');
    fs.writeFileSync(empty, '\n');
    const missing = path.join(dir, 'missing');
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [['--api-key-file', missing], {}, new RegExp(`--api-key-file: cannot read ${missing}`)],
      [['--api-key-file', empty], {}, new RegExp(`--api-key-file: ${empty} is empty`)],
      [[], { WAHA_API_KEY_FILE: missing }, new RegExp(`WAHA_API_KEY_FILE: cannot read ${missing}`)],
      // run() passes --database-url.
      [[], { DATABASE_URL_FILE: missing }, /--database-url and DATABASE_URL_FILE both give/],
      [['--api-key-file', empty], { WAHA_API_KEY: API_KEY }, /WAHA_API_KEY and --api-key-file both give/],
    ];
    for (const [args, env, message] of cases) {
      const result = await run(['--waha-url', sim.url, ...args], env);
      expect([args, result.code]).toEqual([args, 2]);
      expect(result.stderr).toMatch(message);
      expect(result.stderr).not.toContain(API_KEY);
    }
  });

  it('the .importrc keys apiKeyFile and databaseUrlFile, and status/migrate take --database-url-file', async () => {
    const cwd = tempDir();
    fs.writeFileSync(path.join(cwd, 'key'), API_KEY);
    fs.writeFileSync(path.join(cwd, 'db'), testDatabaseUrl());
    fs.writeFileSync(
      path.join(cwd, '.importrc'),
      JSON.stringify({ apiKeyFile: 'key', databaseUrlFile: 'db', schema: db.schema }),
    );
    expect((await runCli(['run', '--waha-url', sim.url, '--quiet'], { cwd })).code).toBe(0);
    const status = await runCli(['status', '--database-url-file', 'db', '--schema', db.schema], { cwd });
    expect(status.stdout).toContain('succeeded');
    expect((await runCli(['migrate', '--schema', db.schema], { cwd })).code).toBe(0);
  });
});
