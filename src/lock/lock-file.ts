import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LockedError } from '../errors.js';

/**
 * A lock file beside the checkpoint, so two runs never read and write the same checkpoint. It holds the
 * owner's pid, host and start time. A lock left behind by a process that no longer exists on this host
 * is taken over; one held by a live process, or by another host (whose processes we cannot see), is
 * refused with the owner named.
 */

export interface LockOwner {
  pid: number;
  host: string;
  startedAt: string;
}

export interface HeldLock {
  file: string;
  /** Set when a stale lock of a dead process was taken over. */
  tookOverFrom: LockOwner | undefined;
  release(): void;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, it is just not ours to signal.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readOwner(file: string): LockOwner | undefined {
  try {
    const owner = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<LockOwner>;
    if (typeof owner.pid === 'number' && typeof owner.host === 'string') {
      return { pid: owner.pid, host: owner.host, startedAt: String(owner.startedAt ?? 'unknown') };
    }
  } catch {
    // Unreadable or half-written: treated as held by nobody we can identify (below).
  }
  return undefined;
}

export function acquireLockFile(file: string, what: string): HeldLock {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const me: LockOwner = { pid: process.pid, host: os.hostname(), startedAt: new Date().toISOString() };
  let tookOverFrom: LockOwner | undefined;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = fs.openSync(file, 'wx', 0o600);
      fs.writeSync(fd, JSON.stringify(me) + '\n');
      fs.closeSync(fd);
      let released = false;
      const release = (): void => {
        if (released) return;
        released = true;
        process.off('exit', release);
        // Only our own lock is removed, never one a later run took over after declaring us dead.
        if (readOwner(file)?.pid === me.pid) fs.rmSync(file, { force: true });
      };
      process.on('exit', release);
      return { file, tookOverFrom, release };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = readOwner(file);
    if (owner && (owner.host !== me.host || isAlive(owner.pid))) {
      throw new LockedError(
        `another run of ${what} is going on (pid ${owner.pid} on ${owner.host}, started ${owner.startedAt})`,
        owner.host === me.host
          ? 'Wait for it to finish. Nothing was written by this run.'
          : `If that host's run is gone for good, delete ${file}. Nothing was written by this run.`,
      );
    }
    // The owner is dead (or the file is unreadable): take the lock over.
    tookOverFrom = owner;
    fs.rmSync(file, { force: true });
  }
  throw new LockedError(`could not take the lock ${file}`, 'Another run keeps taking it; try again later.');
}
