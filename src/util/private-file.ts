import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
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

/**
 * Writes `content` so that `file` holds either the old or the new content, never a mix, even on power
 * loss: an exclusively created temporary file (mode 0600), fsync, rename over `file` (which replaces a
 * symlink there rather than following it), fsync of the directory.
 */
export function writeFileAtomic(file: string, content: string): void {
  const dir = path.dirname(file);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  removeStaleTemps(file);
  const temp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
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
