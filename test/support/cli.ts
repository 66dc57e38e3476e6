import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { testDatabaseUrl } from './db.js';

/** The built CLI, as `npx waha-import` runs it. */
export const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/waha-import.js');

/** Runs happen in a scratch directory, so their checkpoints (.waha-import/) never land in the repository. */
let scratchDir: string | undefined;
export function scratchCwd(): string {
  scratchDir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'waha-import-cli-'));
  return scratchDir;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI (npm test builds it first) as a user would, with a clean environment. */
export function runCli(
  args: string[],
  options: {
    env?: Record<string, string | undefined>;
    cwd?: string;
    onStderr?: (chunk: string) => void;
    onStdout?: (chunk: string) => void;
  } = {},
): Promise<CliResult> & { child: import('node:child_process').ChildProcess } {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' };
  for (const [key, value] of Object.entries(options.env ?? {})) if (value !== undefined) env[key] = value;
  const child = spawn(process.execPath, [BIN, ...args], {
    env,
    cwd: options.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    options.onStdout?.(chunk);
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    options.onStderr?.(chunk);
  });
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return Object.assign(done, { child });
}

/** The summary object of a `--json` run (its last line). */
export function jsonSummary(
  stdout: string,
): Record<string, unknown> & { summary: Record<string, number | string> } {
  const events = stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  const last = events.at(-1);
  if (!last || last.type !== 'summary') throw new Error(`no summary event in:\n${stdout}`);
  return last as Record<string, unknown> & { summary: Record<string, number | string> };
}

/** `run` against a WAHA and the test database, in a schema of its own, with --json output. */
export function runArgs(wahaUrl: string, schema: string, extra: string[] = []): string[] {
  return [
    'run',
    '--waha-url',
    wahaUrl,
    '--database-url',
    testDatabaseUrl(),
    '--schema',
    schema,
    '--json',
    ...extra,
  ];
}

/** Starts a `--json` run and resolves once it reports that the import itself has begun. */
export function runUntilImportStarts(
  args: string[],
  options: { cwd?: string } = {},
): { run: ReturnType<typeof runCli>; started: Promise<void> } {
  let seen = '';
  let markStarted: () => void = () => undefined;
  const started = new Promise<void>((resolve) => (markStarted = resolve));
  const run = runCli(args, {
    ...options,
    onStdout: (chunk) => {
      seen += chunk;
      if (seen.includes('"type":"import-started"')) markStarted();
    },
  });
  void run.then(() => markStarted());
  return { run, started };
}

/** Resolves once the checkpoint file counts `messages` committed, or when the run ends first. */
export async function committedAtLeast(
  checkpoint: string,
  messages: number,
  run: Promise<unknown>,
): Promise<void> {
  await checkpointShows(checkpoint, (saved) => (saved.messagesCommitted as number) >= messages, run);
}

/**
 * Resolves once the checkpoint file satisfies `test` (true), or once the run ends (false): the
 * checkpoint is saved after each commit, so this waits on commits, not on time.
 */
export async function checkpointShows(
  checkpoint: string,
  test: (saved: Record<string, unknown>) => boolean,
  run: Promise<unknown>,
): Promise<boolean> {
  let ended = false;
  void run.then(() => (ended = true));
  while (!ended) {
    try {
      if (test(JSON.parse(fs.readFileSync(checkpoint, 'utf8')) as Record<string, unknown>)) return true;
    } catch {
      // Not written yet (the first commit writes it), or caught mid-rename.
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return false;
}
