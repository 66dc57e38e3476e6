import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Database } from './connect.js';
import { validateSchemaName } from './schema.js';
import { MESSAGE_COLUMNS } from './writer.js';

export interface CopyLimit {
  /** How the rows were written: what the figure is a limit of. */
  method: string;
  rows: number;
  /** Bytes of COPY text sent. */
  bytes: number;
  elapsedMs: number;
  rowsPerSecond: number;
}

const SCRATCH_TABLE = 'messages_copy_limit';

/**
 * What PostgreSQL itself needs to take the rows `<schema>.messages` holds: they are spooled to a file in
 * COPY text format (not timed), then sent with one `COPY ... FROM STDIN` into an empty copy of the table
 * with the same indexes, defaults and generated column (timed), as `psql \copy` of a dump would. No
 * conflict handling, no counting, no text cleaning: a ceiling an idempotent writer can approach, not
 * pass. The scratch table is dropped afterwards; `dir` receives the spool file, removed afterwards.
 */
export async function measureCopyLimit(db: Database, schema: string, dir: string): Promise<CopyLimit> {
  validateSchemaName(schema);
  const { sql } = db;
  const file = path.join(dir, 'messages.copy');
  const columns = MESSAGE_COLUMNS.join(', ');
  const source = `"${schema}".messages`;
  const target = `"${schema}".${SCRATCH_TABLE}`;
  try {
    // On a connection of its own, closed afterwards: postgres.js pauses the socket when the reader is
    // slower than the server and may not resume it after the last row, leaving the connection stuck.
    const spool = db.openSingle('bench spool');
    try {
      const out = await spool.sql.unsafe(`copy (select ${columns} from ${source}) to stdout`).readable();
      await pipeline(out, fs.createWriteStream(file));
    } finally {
      await spool.end();
    }
    const bytes = fs.statSync(file).size;
    await sql.unsafe(`drop table if exists ${target}`);
    await sql.unsafe(`create table ${target} (like ${source} including all)`);
    const startedAt = performance.now();
    const into = await sql.unsafe(`copy ${target} (${columns}) from stdin`).writable();
    await pipeline(fs.createReadStream(file, { highWaterMark: 1 << 20 }), into);
    const elapsedMs = performance.now() - startedAt;
    const [counted] = await sql.unsafe<Array<{ rows: string }>>(`select count(*) as rows from ${target}`);
    const rows = Number(counted!.rows);
    return {
      method: 'COPY text into an empty copy of messages with its indexes',
      rows,
      bytes,
      elapsedMs: Math.round(elapsedMs),
      rowsPerSecond: elapsedMs > 0 ? (rows * 1000) / elapsedMs : 0,
    };
  } finally {
    await sql.unsafe(`drop table if exists ${target}`).catch(() => undefined);
    fs.rmSync(file, { force: true });
  }
}
