import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { TransactionSql } from 'postgres';

/**
 * PostgreSQL ended a `COPY ... FROM STDIN` with an error after every row had been sent, and postgres.js
 * did not pass the error on (see copyIn). The transaction is aborted; the server's log names the cause.
 */
export class CopyEndedError extends Error {
  constructor(what: string, options: { cause: unknown }) {
    super(
      `PostgreSQL refused the COPY of ${what} after all of it was sent, and the driver (postgres.js) does not pass on why: the statement cancelled or past statement_timeout, or the server out of disk space, are the usual causes (the server's log names it)`,
      options,
    );
  }
}

/** The statement queued behind a COPY once its data is sent: it runs only after the COPY was taken. */
export const COPY_TAKEN_CHECK = 'select 1 as copy_taken';

/**
 * Sends `source` into the `COPY ... FROM STDIN` named by `statement`, on the transaction `tx`, and
 * settles once PostgreSQL has taken every row, or has refused them.
 *
 * postgres.js 3.4.x lets go of a COPY's stream once the stream's end is sent (CopyDone): an error
 * PostgreSQL sends after that (it is still working through the rows the socket buffers held: a
 * statement cancelled or past its timeout, a disk full, a trigger) goes nowhere, and the stream's end
 * waits for an answer that never comes, on a connection that is alive and idle: the batch hung for ever,
 * and a run from cron with it, holding its lock. So once the data is all sent, a statement is queued
 * behind the COPY: a refused COPY aborted the transaction, so that statement fails (CopyEndedError),
 * and it succeeds only after the COPY did. An error while the data is still being sent ends the stream
 * with PostgreSQL's own error, which is thrown as it is. The transaction is what makes the check hold:
 * outside one, the next statement would succeed whatever happened to the COPY.
 */
export async function copyIn(
  tx: TransactionSql,
  statement: string,
  source: Readable,
  what: string,
): Promise<void> {
  const copy = await tx.unsafe(statement).writable();
  // The stream's own final step sends CopyDone; noted here as the moment everything has been sent.
  if (typeof copy._final !== 'function') {
    await pipeline(source, copy);
    return;
  }
  const final = copy._final.bind(copy);
  const allSent = new Promise<void>((resolve) => {
    copy._final = (callback) => {
      final(callback);
      resolve();
    };
  });
  const copied = pipeline(source, copy);
  copied.catch(() => {});
  await Promise.race([copied, allSent]);
  try {
    await tx.unsafe(COPY_TAKEN_CHECK).execute();
  } catch (error) {
    // The COPY's answer came before this one: an aborted transaction says it was refused.
    if ((error as { code?: unknown }).code === '25P02') throw new CopyEndedError(what, { cause: error });
    throw error;
  }
  // Settled by the COPY's own answer, which came first.
  await copied;
}
