/**
 * Every failure the tool expects is one of these classes. Each carries a message for the user, a hint
 * saying what to do, and the exit code the CLI returns for it. Anything else is a bug and exits 1 with
 * its stack.
 */

export const EXIT = {
  ok: 0,
  importFailed: 1,
  usage: 2,
  wahaRefused: 3,
  locked: 4,
  /** The run finished, but some chats could not be imported (see `failed_chats`); the next run retries them. */
  chatsFailed: 5,
  interrupted: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export abstract class KnownError extends Error {
  abstract readonly exitCode: ExitCode;
  readonly hint: string | undefined;

  constructor(message: string, hint?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.hint = hint;
  }
}

/** A flag, environment variable or config value is wrong. Lists every problem at once. */
export class UsageError extends KnownError {
  readonly exitCode = EXIT.usage;
  readonly problems: string[];

  constructor(problems: string[] | string, hint?: string) {
    const list = Array.isArray(problems) ? problems : [problems];
    super(list.length === 1 ? list[0]! : `${list.length} problems:\n  - ${list.join('\n  - ')}`, hint);
    this.problems = list;
  }
}

/** WAHA answered, but refused: bad key, unknown session, session not WORKING. Retrying will not help. */
export class WahaRefusedError extends KnownError {
  readonly exitCode = EXIT.wahaRefused;
  readonly status: number | undefined;

  constructor(message: string, hint: string, status?: number) {
    super(message, hint);
    this.status = status;
  }
}

/** WAHA could not be reached at all (after retries), or kept failing. */
export class WahaUnavailableError extends KnownError {
  readonly exitCode = EXIT.wahaRefused;
}

/** WAHA answered something this tool cannot use: malformed JSON or an unexpected shape. */
export class WahaResponseError extends KnownError {
  readonly exitCode = EXIT.importFailed;
}

/** PostgreSQL could not be reached or refused a statement. */
export class DatabaseError extends KnownError {
  readonly exitCode = EXIT.importFailed;
}

/** The checkpoint file is unreadable, or belongs to another run. */
export class CheckpointError extends KnownError {
  readonly exitCode = EXIT.importFailed;
}

/** Another run of the same session and schema is going on. Nothing was written. */
export class LockedError extends KnownError {
  readonly exitCode = EXIT.locked;
}

/** The user (or a signal) stopped the run; what was committed stays committed. */
export class InterruptedError extends KnownError {
  readonly exitCode = EXIT.interrupted;

  constructor(message = 'Interrupted') {
    super(message, 'Run the same command again to continue where it stopped.');
  }
}

/** An error's message for a line of output: the message of an Error, anything else as a string. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
