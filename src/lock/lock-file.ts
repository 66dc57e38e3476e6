import fs from 'node:fs';
import path from 'node:path';
import { LockedError } from '../errors.js';
import {
  makeDirectories,
  removeStaleTemps,
  tempFileFor,
  unusablePath,
  writeNewFile,
} from '../util/private-file.js';
import {
  currentIdentity,
  ownerState,
  parseIdentity,
  type ProcessIdentity,
} from '../util/process-identity.js';

/**
 * A lock file beside the checkpoint, so two runs never read and write the same checkpoint. It holds the
 * owner's identity (pid, host, and where Linux tells: boot id and the process's start time) and the time
 * the lock was taken. A lock whose owner no longer runs on this host is taken over: its pid is dead, or
 * names another process now (pid reuse, a container where node is always pid 1), or our own pid, or it was
 * taken before the last boot. One held by a running owner, or by another host (whose processes we cannot
 * see), is refused with the owner named.
 */

export interface LockOwner extends ProcessIdentity {
  startedAt: string;
}

export interface HeldLock {
  file: string;
  /** Set when a stale lock of a dead process was taken over. */
  tookOverFrom: LockOwner | undefined;
  release(): void;
}

function readOwner(file: string): LockOwner | undefined {
  try {
    const record = JSON.parse(fs.readFileSync(file, 'utf8')) as { startedAt?: unknown };
    const identity = parseIdentity(record);
    if (identity) return { ...identity, startedAt: String(record.startedAt ?? 'unknown') };
  } catch {
    // Unreadable or half-written: treated as held by nobody we can identify (below).
  }
  return undefined;
}

const UNUSABLE_HINT =
  'Run from a directory you can write (in a cron line: cd to one first), or choose a writable --checkpoint file; its lock is kept beside it.';

/**
 * Creates `file` holding `text`, failing with EEXIST when it exists, so that no other process ever sees
 * it without its text: the text goes into a file of our own, which is then linked under the lock's name
 * (link, like an exclusive open, fails when the name exists). Created empty and written afterwards, a
 * lock read in between looked like one nobody held: two first runs on one fresh data directory both
 * took it and both ran initdb. Where the file system has no hard links, an exclusive open and a write.
 */
function createWithContent(file: string, text: string): void {
  const own = tempFileFor(file);
  writeNewFile(own, text);
  try {
    fs.linkSync(own, file);
    return;
  } catch (error) {
    if (!NO_HARD_LINKS.has((error as NodeJS.ErrnoException).code ?? '')) throw error;
  } finally {
    fs.rmSync(own, { force: true });
  }
  writeNewFile(file, text);
}

/** What link(2) answers on a file system without hard links (FAT, some network and FUSE mounts). */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV']);

export function acquireLockFile(file: string, what: string): HeldLock {
  try {
    makeDirectories(path.dirname(file), 0o700);
  } catch (error) {
    throw unusablePath(error, 'the directory', path.dirname(file), UNUSABLE_HINT);
  }
  const me: LockOwner = { ...currentIdentity(), startedAt: new Date().toISOString() };
  let tookOverFrom: LockOwner | undefined;
  // An aside copy (createWithContent) left by a run killed before it linked or removed it.
  removeStaleTemps(file);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      createWithContent(file, JSON.stringify(me) + '\n');
      let released = false;
      const release = (): void => {
        if (released) return;
        released = true;
        process.off('exit', release);
        // Only our own lock is removed, never one a later run took over after declaring us dead.
        const owner = readOwner(file);
        try {
          if (owner?.pid === me.pid && owner.startedAt === me.startedAt) fs.rmSync(file, { force: true });
        } catch {
          // Its directory became unwritable: the next run takes the lock of a process gone over.
        }
      };
      process.on('exit', release);
      return { file, tookOverFrom, release };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw unusablePath(error, 'the lock file', file, UNUSABLE_HINT);
      }
    }
    const owner = readOwner(file);
    if (owner && ownerState(owner) !== 'gone') {
      throw new LockedError(
        `another run of ${what} is going on (pid ${owner.pid} on ${owner.host}, started ${owner.startedAt})`,
        owner.host === me.host
          ? 'Wait for it to finish. Nothing was written by this run.'
          : `If that host's run is gone for good, delete ${file}. Nothing was written by this run.`,
      );
    }
    // The owner is dead (or the file is unreadable): take the lock over.
    tookOverFrom = owner;
    try {
      fs.rmSync(file, { force: true });
    } catch (error) {
      throw unusablePath(error, 'the lock file', file, UNUSABLE_HINT);
    }
  }
  throw new LockedError(`could not take the lock ${file}`, 'Another run keeps taking it; try again later.');
}
