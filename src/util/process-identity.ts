import fs from 'node:fs';
import os from 'node:os';

/**
 * Who owns a lock: more than a pid. A pid alone is reused (after a reboot, in every container where node
 * is pid 1), so a lock naming a live pid may belong to nobody. Where Linux tells (/proc), the owner is also
 * identified by its boot (`/proc/sys/kernel/random/boot_id`) and by the start time of its process
 * (`/proc/<pid>/stat`, clock ticks since boot): a live pid with another start time is another process.
 */
export interface ProcessIdentity {
  pid: number;
  host: string;
  /** Absent where /proc does not tell (not Linux), and in files written by older versions. */
  bootId?: string;
  /** Start time of the process in clock ticks since boot; absent like `bootId`. */
  startTicks?: number;
}

export function currentIdentity(): ProcessIdentity {
  return withProcFacts({ pid: process.pid, host: os.hostname() });
}

function withProcFacts(identity: ProcessIdentity): ProcessIdentity {
  const bootId = readBootId();
  const startTicks = processStartTicks(identity.pid);
  return {
    ...identity,
    ...(bootId === undefined ? {} : { bootId }),
    ...(startTicks === undefined ? {} : { startTicks }),
  };
}

export function readBootId(): string | undefined {
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Field 22 of /proc/<pid>/stat; the command name before it may hold spaces and parentheses. */
export function processStartTicks(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After the name: state is field 3, so starttime (22) is index 22 - 3 = 19.
    const ticks = Number(fields[19]);
    return Number.isSafeInteger(ticks) ? ticks : undefined;
  } catch {
    return undefined;
  }
}

function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, it is just not ours to signal.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * `running`: the owner still runs on this host; `gone`: it does not (its pid is dead, or now names another
 * process, or it ran before the last boot, or it was this very process's pid in an earlier life);
 * `elsewhere`: it runs on another host, whose processes cannot be seen from here.
 */
export type OwnerState = 'running' | 'gone' | 'elsewhere';

export function ownerState(owner: Partial<ProcessIdentity>): OwnerState {
  if (typeof owner.pid !== 'number' || !Number.isSafeInteger(owner.pid) || owner.pid <= 0) return 'gone';
  if (owner.host !== os.hostname()) return 'elsewhere';
  const bootId = readBootId();
  if (typeof owner.bootId === 'string' && bootId !== undefined && owner.bootId !== bootId) return 'gone';
  const ticks = processStartTicks(owner.pid);
  if (owner.pid === process.pid) {
    // Our pid: this very process only if its start time says so; otherwise an earlier process that had
    // our pid (the same container's pid 1 in an earlier run) left the record behind.
    return typeof owner.startTicks === 'number' && owner.startTicks === ticks ? 'running' : 'gone';
  }
  if (!pidExists(owner.pid)) return 'gone';
  if (typeof owner.startTicks === 'number' && ticks !== undefined && ticks !== owner.startTicks)
    return 'gone';
  return 'running';
}

/** Reads an identity written by `currentIdentity()` (or an older file with only pid and host). */
export function parseIdentity(value: unknown): ProcessIdentity | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const record = value as Record<string, unknown>;
  if (typeof record.pid !== 'number' || typeof record.host !== 'string') return undefined;
  return {
    pid: record.pid,
    host: record.host,
    ...(typeof record.bootId === 'string' ? { bootId: record.bootId } : {}),
    ...(typeof record.startTicks === 'number' ? { startTicks: record.startTicks } : {}),
  };
}
