import type { ReservedSql } from 'postgres';
import { LockedError } from '../errors.js';
import type { Sql } from './connect.js';

/**
 * A PostgreSQL advisory lock per schema and session, held on a connection of its own for the whole run.
 * It works across servers (two cron hosts importing into one database), and it goes away by itself when
 * the process dies, because its connection does.
 */
export interface AdvisoryLock {
  release(): Promise<void>;
}

export async function acquireImportLock(sql: Sql, schema: string, session: string): Promise<AdvisoryLock> {
  const connection: ReservedSql = await sql.reserve();
  try {
    const [row] = await connection<[{ locked: boolean }]>`
      select pg_try_advisory_lock(hashtext('waha-import'), hashtext(${`${schema}/${session}`})) as locked`;
    if (!row?.locked) {
      throw new LockedError(
        `another waha-import run is importing session "${session}" into schema "${schema}" of this database`,
        'Wait for it to finish (see the import_runs table). Nothing was written by this run.',
      );
    }
  } catch (error) {
    connection.release();
    throw error;
  }
  return {
    async release() {
      try {
        await connection`select pg_advisory_unlock(hashtext('waha-import'), hashtext(${`${schema}/${session}`}))`;
      } finally {
        connection.release();
      }
    },
  };
}
