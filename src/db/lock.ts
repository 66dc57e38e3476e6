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

const UNLOCK_TIMEOUT_MS = 2000;

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
      // Bounded: when the server is gone the unlock would wait on reconnecting. The lock dies with the
      // connection anyway, and closing the pool closes it.
      const unlock = connection`select pg_advisory_unlock(hashtext('waha-import'), hashtext(${`${schema}/${session}`}))`;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        unlock.then(
          () => undefined,
          () => undefined,
        ),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, UNLOCK_TIMEOUT_MS))),
      ]);
      clearTimeout(timer);
      connection.release();
    },
  };
}
