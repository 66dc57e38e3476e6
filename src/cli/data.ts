import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { CONNECTION_OPTIONS, resolveCommandOptions } from '../config/run-config.js';
import { instant, oneOf, text, type OptionSpec } from '../config/options.js';
import { openDatabase, startEmbeddedPostgres, type EmbeddedPostgres, type Sql } from '../db/index.js';
import { DatabaseError, EXIT, UsageError } from '../errors.js';
import { jsonText, terminalText } from '../util/terminal-text.js';
import { addOptions } from './options.js';

/**
 * Looking at what was imported: `sql` runs one read-only query (the embedded PostgreSQL is started for
 * it when no DATABASE_URL is given, so the data is reachable without setting anything up), `export`
 * writes messages as CSV or JSON lines, streamed through a cursor so memory stays flat, and `psql` opens
 * the system's psql on the same database.
 */

const DATABASE_KEYS = ['databaseUrl', 'databaseUrlFile', 'dataDir', 'schema'];
const DATABASE_OPTIONS = CONNECTION_OPTIONS.filter((spec) => DATABASE_KEYS.includes(spec.key));

const SQL_OPTIONS: ReadonlyArray<OptionSpec<unknown>> = [
  ...DATABASE_OPTIONS,
  {
    key: 'format',
    flag: '--format <format>',
    description: 'table (aligned text), csv, or jsonl (one JSON object per row)',
    defaultValue: 'table',
    parse: oneOf(['table', 'csv', 'jsonl'] as const),
  },
];

const EXPORT_OPTIONS: ReadonlyArray<OptionSpec<unknown>> = [
  ...DATABASE_OPTIONS,
  {
    key: 'format',
    flag: '--format <format>',
    description: "csv or jsonl (jsonl also carries WAHA's raw message)",
    defaultValue: 'csv',
    parse: oneOf(['csv', 'jsonl'] as const),
  },
  {
    key: 'session',
    flag: '--session <name>',
    env: 'WAHA_SESSION',
    description: 'only this session (default: every session)',
    parse: text(),
  },
  {
    key: 'chat',
    flag: '--chat <id>',
    description: 'only this chat (its stored id, e.g. 5511999990000@c.us)',
    parse: text(),
  },
  {
    key: 'since',
    flag: '--since <when>',
    description: 'messages at or after: 2026-10-01, 2026-10-01T12:00:00Z or unix seconds',
    parse: instant,
  },
  { key: 'until', flag: '--until <when>', description: 'messages at or before (same forms)', parse: instant },
  {
    key: 'out',
    flag: '--out <file>',
    description: 'write to this file instead of standard output',
    parse: text(),
  },
];

/** PostgreSQL's type oid of `date`. */
const DATE_OID = 1082;

/** Columns of `export`, in order; `raw` only in JSON lines. */
const EXPORT_COLUMNS = [
  'session',
  'chat_id',
  'id',
  'wa_id',
  'sent_at',
  'timestamp_s',
  'from_me',
  'sender',
  'participant',
  'type',
  'body',
  'has_media',
  'ack',
  'reply_to_id',
] as const;

function resolve(specs: ReadonlyArray<OptionSpec<unknown>>, flags: Record<string, unknown>, name: string) {
  return resolveCommandOptions(
    specs,
    { flags, env: process.env, cwd: process.cwd(), configPath: flags.config as string | undefined },
    name,
  );
}

/** A value as one CSV field (RFC 4180): quoted when it holds a comma, quote or line break. */
export function csvField(value: unknown): string {
  if (value === null || value === undefined) return '';
  const textValue =
    value instanceof Date
      ? value.toISOString()
      : typeof value === 'object'
        ? JSON.stringify(value)
        : String(value);
  return /[",\r\n]/.test(textValue) ? `"${textValue.replaceAll('"', '""')}"` : textValue;
}

function cellText(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** Rows as an aligned text table; long cells are cut (the full values come with --format csv or jsonl). */
function tableText(columns: string[], rows: Array<Record<string, unknown>>): string {
  const maxWidth = 60;
  const cut = (s: string): string => {
    const one = terminalText(s, { singleLine: true });
    return one.length > maxWidth ? `${one.slice(0, maxWidth - 1)}…` : one;
  };
  const cells = rows.map((row) => columns.map((c) => cut(cellText(row[c]))));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => r[i]!.length)));
  const line = (values: string[]): string =>
    values
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(columns), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

async function withDatabase<T>(
  values: Record<string, unknown>,
  work: (sql: Sql, schema: string) => Promise<T>,
): Promise<T> {
  const db = await openDatabase({
    databaseUrl: values.databaseUrl as string | undefined,
    dataDir: values.dataDir as string | undefined,
    maxConnections: 1,
  });
  try {
    return await work(db.sql, values.schema as string);
  } finally {
    await db.close();
  }
}

/** The first executable file `name` on the search path (PATH), or undefined. */
export function findOnPath(name: string, searchPath = process.env.PATH ?? ''): string | undefined {
  for (const dir of searchPath.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      if (fs.statSync(candidate).isFile()) {
        fs.accessSync(candidate, fs.constants.X_OK);
        return candidate;
      }
    } catch {
      // Not here, or not executable: look further.
    }
  }
  return undefined;
}

/**
 * How psql reaches a database given by URL: the URL without its password (psql's own argument list can
 * be read by every local user), the password in PGPASSWORD, and the schema first on the search path.
 */
export function psqlConnection(
  url: string,
  schema: string,
  env: NodeJS.ProcessEnv,
): { dbname: string; env: NodeJS.ProcessEnv } {
  const searchPath = `-c search_path=${schema},public`;
  const childEnv: NodeJS.ProcessEnv = {
    ...env,
    PGOPTIONS: env.PGOPTIONS ? `${env.PGOPTIONS} ${searchPath}` : searchPath,
  };
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    // A URL with several hosts: libpq reads it, the URL class does not; it is passed on whole.
  }
  if (!parsed?.password) return { dbname: url, env: childEnv };
  childEnv.PGPASSWORD = decodeURIComponent(parsed.password);
  parsed.password = '';
  return { dbname: parsed.toString(), env: childEnv };
}

async function write(out: NodeJS.WritableStream, chunk: string): Promise<void> {
  if (!out.write(chunk)) await once(out, 'drain');
}

/** Runs psql on the database until it exits; its exit code (or 128 + the signal that ended it) is ours. */
async function runPsql(
  psql: string,
  args: string[],
  dbname: string,
  env: NodeJS.ProcessEnv,
): Promise<number> {
  const child = spawn(psql, ['--dbname', dbname, ...args], { stdio: 'inherit', env });
  // Ctrl-C reaches psql too (one process group), which cancels its query; we wait for psql to end.
  const ignore = (): void => undefined;
  const forward = (signal: NodeJS.Signals) => (): void => void child.kill(signal);
  const onTerm = forward('SIGTERM');
  const onHup = forward('SIGHUP');
  process.on('SIGINT', ignore);
  process.on('SIGQUIT', ignore);
  process.on('SIGTERM', onTerm);
  process.on('SIGHUP', onHup);
  try {
    const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
    return code ?? 128 + (signal ? (os.constants.signals[signal] ?? 0) : 0);
  } finally {
    process.off('SIGINT', ignore);
    process.off('SIGQUIT', ignore);
    process.off('SIGTERM', onTerm);
    process.off('SIGHUP', onHup);
  }
}

export function registerData(program: Command, setExit: (code: number) => void): void {
  const sqlCommand = program
    .command('sql')
    .argument('<query>', 'one SQL statement; tables are found in --schema without naming it')
    .description(
      'run one read-only SQL query against the imported data (starts the embedded PostgreSQL if needed)',
    )
    .option('--config <file>', 'JSON config file (default: .importrc in the working directory when present)')
    .addHelpText(
      'after',
      `
Examples:
  waha-import sql "select chat_id, count(*) from messages group by 1 order by 2 desc limit 10"
  waha-import sql --format csv "select * from messages where chat_id = '5511999990000@c.us'" > chat.csv

Exit codes: 0 success, 1 the query failed (the message says why), 2 a wrong flag.`,
    );
  addOptions(sqlCommand, SQL_OPTIONS);
  sqlCommand.action(async (query: string, flags: Record<string, unknown>) => {
    const values = resolve(SQL_OPTIONS, flags, 'sql');
    if (query.trim() === '') throw new UsageError('the query is empty', 'Give one SQL statement in quotes.');
    const format = values.format as 'table' | 'csv' | 'jsonl';
    const result = await withDatabase(values, (sql, schema) =>
      sql
        .begin('read only', async (tx) => {
          // Unqualified names resolve to the imported tables; the transaction cannot change anything.
          await tx`select set_config('search_path', ${`${schema}, public`}, true)`;
          return tx.unsafe(query);
        })
        .catch((error: unknown) => {
          const pgError = error as { message?: string; code?: string };
          throw new DatabaseError(
            `the query failed: ${pgError.message ?? String(error)}${pgError.code ? ` (${pgError.code})` : ''}`,
            pgError.code === '25006'
              ? 'sql runs read-only; change data with psql or your own client.'
              : `Check the SQL; the tables are in schema "${schema}" (see the README, "What is stored").`,
          );
        }),
    );
    const columns = (result.columns ?? []).map((c) => c.name);
    // postgres.js turns a `date` into a midnight Date; shown as the day it is.
    const dateColumns = (result.columns ?? []).filter((c) => c.type === DATE_OID).map((c) => c.name);
    const rows = ([...result] as Array<Record<string, unknown>>).map((row) => {
      for (const name of dateColumns) {
        const value = row[name];
        if (value instanceof Date) row[name] = value.toISOString().slice(0, 10);
      }
      return row;
    });
    if (format === 'jsonl') {
      for (const row of rows) await write(process.stdout, jsonText(row) + '\n');
    } else if (format === 'csv') {
      await write(process.stdout, columns.map(csvField).join(',') + '\n');
      for (const row of rows)
        await write(process.stdout, columns.map((c) => csvField(row[c])).join(',') + '\n');
    } else {
      await write(
        process.stdout,
        (columns.length ? tableText(columns, rows) + '\n' : '') +
          `(${rows.length} row${rows.length === 1 ? '' : 's'})\n`,
      );
    }
    setExit(EXIT.ok);
  });

  const exportCommand = program
    .command('export')
    .description('write imported messages as CSV or JSON lines, oldest first per chat')
    .option('--config <file>', 'JSON config file (default: .importrc in the working directory when present)')
    .addHelpText(
      'after',
      `
Examples:
  waha-import export --format csv --out messages.csv
  waha-import export --format jsonl --chat 120363025246125888@g.us --since 2026-10-01 > group.jsonl

Exit codes: 0 success, 1 the database failed, 2 a wrong flag.`,
    );
  addOptions(exportCommand, EXPORT_OPTIONS);
  exportCommand.action(async (flags: Record<string, unknown>) => {
    const values = resolve(EXPORT_OPTIONS, flags, 'export');
    const format = values.format as 'csv' | 'jsonl';
    const since = values.since as number | undefined;
    const until = values.until as number | undefined;
    if (since !== undefined && until !== undefined && since > until) {
      throw new UsageError('--since is later than --until', 'Give a window whose start comes first.');
    }
    const outPath = values.out as string | undefined;
    const out: NodeJS.WritableStream = outPath
      ? fs.createWriteStream(outPath, { mode: 0o600 })
      : process.stdout;
    let count = 0;
    await withDatabase(values, async (sql, schema) => {
      const session = values.session as string | undefined;
      const chat = values.chat as string | undefined;
      const where = [
        session === undefined ? sql`true` : sql`session = ${session}`,
        chat === undefined ? sql`true` : sql`chat_id = ${chat}`,
        since === undefined ? sql`true` : sql`timestamp_s >= ${since}`,
        until === undefined ? sql`true` : sql`timestamp_s <= ${until}`,
      ];
      const columns = format === 'jsonl' ? [...EXPORT_COLUMNS, 'raw'] : [...EXPORT_COLUMNS];
      if (format === 'csv') await write(out, columns.join(',') + '\n');
      const cursor = sql<Array<Record<string, unknown>>>`
        select ${sql(columns)} from ${sql(schema)}.messages
        where ${where[0]!} and ${where[1]!} and ${where[2]!} and ${where[3]!}
        order by session, chat_id, timestamp_s nulls last, id`.cursor(500);
      for await (const rows of cursor) {
        for (const row of rows) {
          count++;
          await write(
            out,
            format === 'jsonl'
              ? jsonText({ ...row, timestamp_s: row.timestamp_s === null ? null : Number(row.timestamp_s) }) +
                  '\n'
              : columns.map((c) => csvField(row[c])).join(',') + '\n',
          );
        }
      }
    });
    if (outPath) {
      (out as fs.WriteStream).end();
      await once(out, 'finish');
      process.stderr.write(`${count} messages written to ${terminalText(outPath)}\n`);
    }
    setExit(EXIT.ok);
  });

  const psqlCommand = program
    .command('psql')
    .argument('[psql-args...]', 'passed on to psql, after --')
    .description("open the system's psql on the imported data (starts the embedded PostgreSQL if needed)")
    .option('--config <file>', 'JSON config file (default: .importrc in the working directory when present)')
    .addHelpText(
      'after',
      `
The schema (--schema) comes first on psql's search path, so \\dt lists the imported tables and
"select * from messages" just works. psql is not part of waha-import: install the PostgreSQL client
(Debian/Ubuntu: apt-get install postgresql-client; macOS: brew install libpq).

Examples:
  waha-import psql
  waha-import psql -- -c "select chat_id, count(*) from messages group by 1 order by 2 desc limit 10"
  waha-import psql --database-url postgres://me@db.example/waha -- --csv -c "select * from chats"

Exit codes: psql's own (0 success, 1 a psql error, 2 the connection failed, 3 a script failed), or
1 psql is not installed or the database could not be started, 2 a wrong flag.`,
    );
  addOptions(psqlCommand, DATABASE_OPTIONS);
  psqlCommand.action(async (args: string[], flags: Record<string, unknown>) => {
    const values = resolve(DATABASE_OPTIONS, flags, 'psql');
    // Before anything is started: without psql there is nothing to start it for.
    const psql = findOnPath('psql');
    if (!psql) {
      throw new DatabaseError(
        'psql is not installed (no psql on PATH).',
        'Install the PostgreSQL client (Debian/Ubuntu: apt-get install postgresql-client; macOS: brew install libpq), ' +
          'or query without it: waha-import sql "select ...".',
      );
    }
    const schema = values.schema as string;
    let server: EmbeddedPostgres | undefined;
    let url = values.databaseUrl as string | undefined;
    if (!url) {
      server = await startEmbeddedPostgres({ dataDir: values.dataDir as string | undefined });
      url = server.url;
    }
    try {
      if (process.stderr.isTTY) {
        const where = server ? `the embedded PostgreSQL in ${server.dataDir}` : 'the database';
        process.stderr.write(
          `psql on ${terminalText(where)}, schema ${schema} first on the search path (\\q quits).\n`,
        );
      }
      const connection = psqlConnection(url, schema, process.env);
      setExit(await runPsql(psql, args, connection.dbname, connection.env));
    } finally {
      await server?.stop();
    }
  });
}
