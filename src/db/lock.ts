import { DatabaseError, LockedError } from '../errors.js';
import type { SingleConnection } from './connect.js';

/**
 * A PostgreSQL advisory lock per schema and session, held on a connection of its own for the whole run.
 * It works across servers (two cron hosts importing into one database), and it goes away by itself when
 * the process dies, because its connection does.
 *
 * It also goes away when only its connection dies (the backend terminated, a network cut): then another
 * run may take it. So the holder calls `check()` before each write; it throws once the lock is gone.
 */
export interface AdvisoryLock {
  /** Resolves when the lock is still held by this run's session; a DatabaseError when it is not. */
  check(): Promise<void>;
  release(): Promise<void>;
}

const UNLOCK_TIMEOUT_MS = 2000;

/**
 * Takes the lock on `connection` (a connection of its own, never a pool's: see SingleConnection), which
 * this lock then owns and ends on release or failure.
 */
export async function acquireImportLock(
  connection: SingleConnection,
  schema: string,
  session: string,
): Promise<AdvisoryLock> {
  const sql = connection.sql;
  const key = `${schema}/${session}`;
  let pid: number;
  try {
    // The lock's connection is idle between checks: a server-wide idle_session_timeout (PostgreSQL 14+)
    // must not end it. Set through pg_settings so that older servers, without the setting, accept it.
    await sql`select set_config(name, '0', false) from pg_settings where name = 'idle_session_timeout'`;
    const [row] = await sql<[{ locked: boolean; pid: number }]>`
      select pg_try_advisory_lock(hashtext('waha-import'), hashtext(${key})) as locked, pg_backend_pid() as pid`;
    if (!row?.locked) {
      throw new LockedError(
        `another waha-import run is importing session "${session}" into schema "${schema}" of this database`,
        'Wait for it to finish (see the import_runs table). Nothing was written by this run.',
      );
    }
    pid = row.pid;
  } catch (error) {
    await connection.end().catch(() => undefined);
    throw error;
  }

  let lost: DatabaseError | undefined;
  const lose = (why: string, cause?: unknown): DatabaseError => {
    lost ??= new DatabaseError(
      `lost the import lock of session "${session}" in schema "${schema}": ${why}; stopped before writing again`,
      'Another run may have taken the lock and be importing now. Run the same command again once it is done: committed batches are kept.',
      { cause },
    );
    return lost;
  };
  return {
    async check() {
      if (lost) throw lost;
      if (connection.closed) throw lose('its connection to PostgreSQL closed');
      let held: boolean;
      try {
        // The same backend (a reconnect would be a new session, without the lock), still granted the lock.
        const [row] = await sql<[{ held: boolean }]>`
          select pg_backend_pid() = ${pid} and exists (
            select 1 from pg_locks
            where locktype = 'advisory' and pid = pg_backend_pid() and granted and objsubid = 2
              and classid = (hashtext('waha-import')::bigint & 4294967295)::oid
              and objid = (hashtext(${key})::bigint & 4294967295)::oid
          ) as held`;
        held = row?.held === true;
      } catch (error) {
        throw lose(
          `its connection to PostgreSQL failed (${error instanceof Error ? error.message : String(error)})`,
          error,
        );
      }
      if (!held || connection.closed) throw lose('its connection to PostgreSQL was replaced');
    },
    async release() {
      try {
        if (lost || connection.closed) return;
        // Bounded: when the server is gone the unlock would wait on reconnecting. The lock dies with the
        // connection anyway, which ending it closes.
        const unlock = sql`select pg_advisory_unlock(hashtext('waha-import'), hashtext(${key}))`;
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          unlock.then(
            () => undefined,
            () => undefined,
          ),
          new Promise<void>((resolve) => (timer = setTimeout(resolve, UNLOCK_TIMEOUT_MS))),
        ]);
        clearTimeout(timer);
      } finally {
        await connection.end().catch(() => undefined);
      }
    },
  };
}
