import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Database } from './connect.js';
import { copyIn } from './copy-in.js';
import { validateSchemaName } from './schema.js';
import { MESSAGE_COLUMNS } from './writer.js';
import { median } from '../util/median.js';

export interface CopyLimit {
  /** How the rows were written: what the figure is a limit of. */
  method: string;
  rows: number;
  /** Bytes of COPY text sent. */
  bytes: number;
  /** The median of the runs. */
  elapsedMs: number;
  /** Each run's time, in the order they ran. */
  runsMs: number[];
  rowsPerSecond: number;
}

const SCRATCH_TABLE = 'messages_copy_limit';

/**
 * What PostgreSQL itself needs to take the rows `<schema>.messages` holds: they are spooled to a file in
 * COPY text format (not timed), then sent with one `COPY ... FROM STDIN` into an empty copy of the table
 * with the same indexes, defaults and generated column (timed), as `psql \copy` of a dump would. No
 * conflict handling, no counting, no text cleaning: a ceiling an idempotent writer can approach, not
 * pass. `runs` times, each into a new empty copy, the median reported (as the bench's rows report the
 * median of their repeats: one COPY's time moves by a third between runs on a shared machine). The
 * scratch table is dropped afterwards; `dir` receives the spool file, removed afterwards.
 */
export async function measureCopyLimit(
  db: Database,
  schema: string,
  dir: string,
  runs = 1,
): Promise<CopyLimit> {
  if (!Number.isInteger(runs) || runs < 1)
    throw new RangeError(`runs must be a whole number, 1 or more, not ${runs}`);
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
    const runsMs: number[] = [];
    let rows = 0;
    for (let run = 0; run < runs; run++) {
      await sql.unsafe(`drop table if exists ${target}`);
      await sql.unsafe(`create table ${target} (like ${source} including all)`);
      const startedAt = performance.now();
      // In a transaction, so that a COPY refused after its last row cannot go unnoticed (see copyIn).
      await sql.begin((tx) =>
        copyIn(
          tx,
          `copy ${target} (${columns}) from stdin`,
          fs.createReadStream(file, { highWaterMark: 1 << 20 }),
          'the rows of the write limit',
        ),
      );
      runsMs.push(performance.now() - startedAt);
      const [counted] = await sql.unsafe<Array<{ rows: string }>>(`select count(*) as rows from ${target}`);
      rows = Number(counted!.rows);
    }
    const elapsedMs = median(runsMs);
    return {
      method: 'COPY text into an empty copy of messages with its indexes',
      rows,
      bytes,
      elapsedMs: Math.round(elapsedMs),
      runsMs: runsMs.map((ms) => Math.round(ms)),
      rowsPerSecond: elapsedMs > 0 ? (rows * 1000) / elapsedMs : 0,
    };
  } finally {
    await sql.unsafe(`drop table if exists ${target}`).catch(() => undefined);
    fs.rmSync(file, { force: true });
  }
}
