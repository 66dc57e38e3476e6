import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateDataset, startSimulator, type Simulator } from '../src/sim/index.js';
import { terminalText } from '../src/util/terminal-text.js';
import { runCli } from './support/cli.js';
import { testDatabaseUrl, useTestDatabase } from './support/db.js';

/**
 * Text WAHA controls (session, chat and push names, error messages and bodies) must not drive the
 * terminal: a title change (OSC) and a screen clear are planted everywhere, and no output holds an ESC.
 */

const HOSTILE = '\u001b]0;pwned\u0007\u001b[2J\u009b31m';
const db = useTestDatabase();
let sim: Simulator;
let refuser: http.Server;
let refuserUrl: string;

beforeAll(async () => {
  const dataset = generateDataset({ chats: 4, messages: 20, seed: 7 });
  for (const chat of dataset.chats) {
    chat.name = `chat ${HOSTILE}`;
    for (const message of chat.messages) {
      if ('pushName' in message) (message as { pushName?: string }).pushName = `push ${HOSTILE}`;
    }
  }
  sim = await startSimulator({
    sessions: [
      { name: 'default', dataset },
      // Not WORKING: --all-sessions names it in a warning.
      { name: `evil${HOSTILE}`, status: 'STOPPED' },
    ],
  });
  // A WAHA that refuses the session with an error body of its own.
  refuser = http.createServer((req, res) => {
    const body = req.url?.startsWith('/api/version')
      ? { version: '2026.1', engine: 'NOWEB' }
      : { message: `no such session ${HOSTILE}`, error: `Forbidden ${HOSTILE}`, statusCode: 403 };
    res.writeHead(req.url?.startsWith('/api/version') ? 200 : 403, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => refuser.listen(0, '127.0.0.1', resolve));
  refuserUrl = `http://127.0.0.1:${(refuser.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await sim.close();
  await new Promise((resolve) => refuser.close(resolve));
});

// eslint-disable-next-line no-control-regex
const ESC_OR_C1 = /[\u001b\u0007\u0080-\u009f]/;

function expectNoControl(text: string): void {
  expect(text).not.toMatch(ESC_OR_C1);
}

function expectValidJsonLines(stdout: string): Array<Record<string, unknown>> {
  const lines = stdout.trim().split('\n');
  for (const line of lines) expectNoControl(line);
  return lines.map((line) => JSON.parse(line) as Record<string, unknown>);
}

it('session names from WAHA, chat and push names: plain output shows them escaped', async () => {
  const args = ['run', '--waha-url', sim.url, '--database-url', testDatabaseUrl(), '--schema', db.schema];
  const plain = await runCli([...args, '--all-sessions']);
  expect(plain.code).toBe(0);
  expectNoControl(plain.stdout);
  expectNoControl(plain.stderr);
  // Shown, not dropped: the reader sees what WAHA sent.
  expect(plain.stderr).toContain(`"evil\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m" (STOPPED)`);

  const json = await runCli([...args, '--all-sessions', '--json']);
  expect(json.code).toBe(0);
  const events = expectValidJsonLines(json.stdout);
  const warning = events.find((event) => event.type === 'warning');
  // The same value, escaped by JSON.
  expect(warning?.text).toContain(`"evil${HOSTILE}" (STOPPED)`);

  const status = await runCli(['status', '--database-url', testDatabaseUrl(), '--schema', db.schema]);
  expectNoControl(status.stdout);
  expectNoControl(status.stderr);
});

it('an error body from WAHA: the error and its hint are escaped in plain output, valid in --json', async () => {
  const args = ['run', '--waha-url', refuserUrl, '--database-url', testDatabaseUrl(), '--schema', db.schema];
  const plain = await runCli(args);
  expect(plain.code).toBe(3);
  expectNoControl(plain.stdout);
  expectNoControl(plain.stderr);
  expect(plain.stderr).toContain('no such session \\x1b]0;pwned');

  const json = await runCli([...args, '--json']);
  expect(json.code).toBe(3);
  const events = expectValidJsonLines(json.stdout);
  const error = events.find((event) => event.type === 'error') as { error: { message: string } };
  expect(error.error.message).toContain(`no such session ${HOSTILE}`);

  // The runs table keeps WAHA's text; status shows it escaped.
  const status = await runCli(['status', '--database-url', testDatabaseUrl(), '--schema', db.schema]);
  expectNoControl(status.stdout);
  const statusJson = await runCli([
    'status',
    '--json',
    '--database-url',
    testDatabaseUrl(),
    '--schema',
    db.schema,
  ]);
  expectNoControl(statusJson.stdout);
  JSON.parse(statusJson.stdout);
});

it('terminalText keeps newlines and tabs where lines are meant, escapes the rest', () => {
  expect(terminalText('a\tb\nc\rd\u001b[2J\u007f\u0085')).toBe('a\tb\nc\\x0dd\\x1b[2J\\x7f\\x85');
  expect(terminalText('a\nb', { singleLine: true })).toBe('a\\x0ab');
});
