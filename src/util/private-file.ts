import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UsageError } from '../errors.js';
import { ownerState } from './process-identity.js';

/**
 * Every file this tool creates is created here: exclusively (O_CREAT|O_EXCL, so an existing file or a
 * symlink planted at its name is never opened, let alone followed), with mode 0600. A run as root in a
 * shared directory can then not be made to overwrite another file.
 */

const EXCLUSIVE =
  fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | (fs.constants.O_NOFOLLOW ?? 0);

/** Creates `file`, which must not exist yet (EEXIST otherwise), and returns its descriptor. */
export function createExclusive(file: string): number {
  return fs.openSync(file, EXCLUSIVE, 0o600);
}

/**
 * `mkdir -p` one level at a time, returning the first directory created (undefined if none was).
 * Node's own `recursive: true` never returns when the kernel answers ENOENT for a parent that exists
 * (any path under /proc), so it is not used.
 */
export function makeDirectories(dir: string, mode: number): string | undefined {
  const missing: string[] = [];
  for (let current = path.resolve(dir); ; current = path.dirname(current)) {
    try {
      if (fs.statSync(current).isDirectory()) break;
      // A file where a directory must be: mkdir below reports it (EEXIST / ENOTDIR).
      missing.unshift(current);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    missing.unshift(current);
    if (path.dirname(current) === current) break;
  }
  for (const directory of missing) fs.mkdirSync(directory, { mode });
  return missing[0];
}

/** Temporary files of `file`: `<file>.<pid>.<random>.tmp` (and `<file>.<pid>.tmp` of older versions). */
function tempPattern(file: string): RegExp {
  const base = path.basename(file).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${base}\\.(\\d+)(?:\\.[0-9a-f]+)?\\.tmp$`);
}

/**
 * Removes the temporary files a dead run left beside `file` (killed between creating and renaming one).
 * Unlinking never follows a symlink, so a planted one is removed, not its target.
 */
export function removeStaleTemps(file: string): void {
  const dir = path.dirname(file);
  const pattern = tempPattern(file);
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const entry of entries) {
    const match = pattern.exec(entry);
    if (!match) continue;
    // Temporary files carry no host: a shared directory's writers are kept apart by the lock file.
    if (ownerState({ pid: Number(match[1]), host: os.hostname() }) === 'running') continue;
    fs.rmSync(path.join(dir, entry), { force: true });
  }
}

/** Creates `file` (as createExclusive does) holding `content`. */
export function writeNewFile(file: string, content: string): void {
  const fd = createExclusive(file);
  try {
    fs.writeSync(fd, content);
  } finally {
    fs.closeSync(fd);
  }
}

/** A temporary file's name beside `file`, of the form removeStaleTemps recognises. */
export function tempFileFor(file: string): string {
  return `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
}

/**
 * Writes `content` so that `file` holds either the old or the new content, never a mix, even on power
 * loss: an exclusively created temporary file (mode 0600), fsync, rename over `file` (which replaces a
 * symlink there rather than following it), fsync of the directory.
 */
export function writeFileAtomic(file: string, content: string): void {
  const dir = path.dirname(file);
  makeDirectories(dir, 0o700);
  removeStaleTemps(file);
  const temp = tempFileFor(file);
  const fd = createExclusive(temp);
  try {
    try {
      fs.writeSync(fd, content);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temp, file);
  } catch (error) {
    fs.rmSync(temp, { force: true });
    throw error;
  }
  // The rename is durable only once the directory entry is.
  const dirFd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(dirFd);
  } finally {
    fs.closeSync(dirFd);
  }
}

/** Errors that say a path cannot be created or written, as opposed to a bug. */
const PATH_PROBLEMS = new Set([
  'EACCES',
  'EPERM',
  'ENOTDIR',
  'EROFS',
  'ENOENT',
  'EEXIST',
  'EISDIR',
  'ELOOP',
  'ENAMETOOLONG',
  'ENOSPC',
  'EDQUOT',
]);

export function isPathProblem(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && PATH_PROBLEMS.has((error as NodeJS.ErrnoException).code ?? '');
}

/**
 * A path the tool must create or write at the start of a run cannot be: a configuration problem (exit 2)
 * naming the path, the reason, and the way out; anything else is passed on unchanged.
 */
export function unusablePath(error: unknown, what: string, file: string, hint: string): unknown {
  if (!isPathProblem(error)) return error;
  const partIsFile = error.code === 'EEXIST' || error.code === 'ENOTDIR';
  return new UsageError(
    `cannot create ${what} ${file}: ${partIsFile ? `a part of the path is a file (${error.message})` : error.message}`,
    hint,
  );
}
