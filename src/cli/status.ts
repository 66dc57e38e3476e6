import path from 'node:path';
import type { Command } from 'commander';
import { defaultCheckpointPath, readCheckpoint, type CheckpointData } from '../checkpoint/checkpoint.js';
import { CONNECTION_OPTIONS, resolveCommandOptions } from '../config/run-config.js';
import { integer, text } from '../config/options.js';
import { createRunLog, openDatabase, type RunRecord } from '../db/index.js';
import { createFailedChatStore, type FailedChatRecord } from '../db/failed-chats.js';
import { EXIT } from '../errors.js';
import { formatCount, formatDuration, formatWindow } from '../import/summary.js';
import { jsonText, terminalText } from '../util/terminal-text.js';
import { addOptions, examplesAndExitCodes } from './options.js';
import { queueStatusLines, readQueueStatus, type QueueStatus } from '../queue/status.js';

const STATUS_OPTIONS = [
  // Without --session (or WAHA_SESSION, or .importrc), every session's runs are shown.
  ...CONNECTION_OPTIONS.filter((spec) =>
    ['session', 'databaseUrl', 'databaseUrlFile', 'dataDir', 'schema'].includes(spec.key),
  ).map((spec) =>
    spec.key === 'session'
      ? {
          ...spec,
          defaultValue: undefined,
          description: 'show only the runs and failed chats of this session (default: every session)',
        }
      : spec,
  ),
  {
    key: 'limit',
    flag: '--limit <n>',
    description: 'runs to show',
    defaultValue: 10,
    parse: integer(1, 1000),
  },
  {
    key: 'checkpoint',
    flag: '--checkpoint <file>',
    description: 'checkpoint to report on (default: .waha-import/checkpoint-<session>-<schema>.json)',
    parse: text(),
  },
];

function describeCheckpoint(file: string, data: CheckpointData | undefined): string {
  if (!data) return `Checkpoint ${file}: none (no run in this directory yet, or it committed nothing).`;
  if (data.status === 'complete') {
    return `Checkpoint ${file}: the last run that committed anything finished (window ${formatWindow(data.window)}); nothing pending.`;
  }
  const next =
    data.database === null
      ? 'It names no database (written by an older waha-import): the next `run` starts its window over.'
      : 'The next `run` with the same window continues it, if the database confirms what it claims.';
  return (
    `Checkpoint ${file}: an unfinished run started ${data.startedAt}, window ${formatWindow(data.window)}: ` +
    `${formatCount(data.completedChats.length)} chats done, ${formatCount(Object.keys(data.inProgress).length)} part-way, ` +
    `${formatCount(data.messagesCommitted)} messages committed in ${formatCount(data.transactions)} transactions. ` +
    next
  );
}

function runLine(run: RunRecord): string {
  const when = run.startedAt.toISOString().replace(/\.\d+Z$/, 'Z');
  const counts =
    run.inserted === undefined
      ? ''
      : ` ${formatCount(run.messagesFetched ?? 0)} fetched, ${formatCount(run.inserted)} inserted, ${formatCount(run.updated ?? 0)} updated, ${formatCount(run.unchanged ?? 0)} unchanged;`;
  const took = run.elapsedMs === undefined ? '' : ` ${formatDuration(run.elapsedMs)};`;
  return (
    `#${run.id} ${when} ${run.session} ${run.status.padEnd(11)} ${run.strategy};${counts}${took}` +
    (run.window ? ` window ${formatWindow(run.window)}` : '') +
    (run.error ? `\n      error: ${run.error}` : '')
  );
}

export function registerStatus(program: Command, setExit: (code: number) => void): void {
  const command = program
    .command('status')
    .description('the last runs (from the import_runs table) and what the checkpoint says is pending')
    .option('--config <file>', 'JSON config file (default: .importrc in the working directory when present)')
    .option('--json', 'print as JSON');
  addOptions(command, STATUS_OPTIONS);
  command.addHelpText(
    'after',
    examplesAndExitCodes(
      [
        'waha-import status                                    runs of the embedded database, schema waha',
        'waha-import status --session sales --limit 3 --json   for a monitor',
      ],
      [
        [EXIT.ok, 'the newest run succeeded (or none is recorded)'],
        [EXIT.importFailed, 'the newest run failed or was interrupted, or the database failed'],
        EXIT.usage,
        [EXIT.chatsFailed, 'the newest run was partial, or chats still wait to be imported again'],
      ],
    ),
  );
  command.action(async (flags: Record<string, unknown>) => {
    const values = resolveCommandOptions(
      STATUS_OPTIONS,
      { flags, env: process.env, cwd: process.cwd(), configPath: flags.config as string | undefined },
      'status',
    );
    const get = <T>(key: string): T => values[key] as T;
    const session = get<string | undefined>('session');
    const schema = get<string>('schema');

    const checkpointFile = path.resolve(
      get<string | undefined>('checkpoint') ??
        defaultCheckpointPath(process.cwd(), session ?? 'default', schema),
    );
    const checkpoint = readCheckpoint(checkpointFile);

    const db = await openDatabase({ databaseUrl: get('databaseUrl'), dataDir: get('dataDir') });
    let runs: RunRecord[] = [];
    let failedChats: FailedChatRecord[] = [];
    let queue: QueueStatus | undefined;
    try {
      const [table] = await db.sql<[{ runs: boolean; failed: boolean }]>`
        select to_regclass(${`${schema}.import_runs`}) is not null as runs,
          to_regclass(${`${schema}.failed_chats`}) is not null as failed`;
      if (table?.runs) runs = await createRunLog(db.sql, schema).recent(get<number>('limit'), session);
      if (table?.failed) failedChats = await createFailedChatStore(db.sql, schema).list(session);
      queue = await readQueueStatus(db.sql, schema, get<number>('limit'), session);
    } finally {
      await db.close();
    }

    if (flags.json) {
      process.stdout.write(
        jsonText({
          type: 'status',
          schema,
          runs,
          failedChats,
          checkpoint: { file: checkpointFile, ...checkpoint },
          ...(queue ? { queue } : {}),
        }) + '\n',
      );
    } else {
      const lines = [`Runs in schema "${schema}" of ${db.displayUrl}, newest first:`];
      lines.push(...(runs.length ? runs.map((run) => `  ${runLine(run)}`) : ['  none recorded yet']));
      if (failedChats.length > 0) {
        lines.push(
          '',
          `Chats that could not be imported (${formatCount(failedChats.length)}; the next run retries them):`,
        );
        for (const f of failedChats) {
          lines.push(
            `  ${f.session} ${f.chatId} ${f.reason}, ${f.attempts} run${f.attempts === 1 ? '' : 's'} since ` +
              `${f.firstFailedAt.toISOString().replace(/\.\d+Z$/, 'Z')}: ${f.error}`,
          );
        }
      }
      lines.push('', describeCheckpoint(checkpointFile, checkpoint));
      if (queue) lines.push('', ...queueStatusLines(queue, schema));
      // Rows hold text from WAHA (session names, its error messages): shown, never obeyed by the terminal.
      process.stdout.write(terminalText(lines.join('\n')) + '\n');
    }
    // A failed or interrupted last run is worth a non-zero exit for monitoring; chats still failing too.
    // With a queue, its newest plan counts as well: a job failed for good fails, a partial one is 5.
    const newest = runs[0];
    const newestPlan = queue?.plans[0];
    setExit(
      (newest &&
        newest.status !== 'succeeded' &&
        newest.status !== 'running' &&
        newest.status !== 'partial') ||
        (newestPlan !== undefined && newestPlan.jobs.failed > 0)
        ? EXIT.importFailed
        : (newest && newest.status === 'partial') ||
            failedChats.length > 0 ||
            (newestPlan !== undefined && newestPlan.jobs.partial > 0)
          ? EXIT.chatsFailed
          : EXIT.ok,
    );
  });
}
