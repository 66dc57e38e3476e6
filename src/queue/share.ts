import type { ConcurrencyLimit } from '../concurrency/limiter.js';

/**
 * One limit (a fixed number, or the adaptive controller of one WAHA server) split among the jobs a worker
 * runs against that server at once: each job may have ⌊limit / jobs⌋ chats in flight (at least one), so
 * four jobs do not make four times the limit. Each job's share follows the limit and the number of jobs.
 */
export interface SharedLimit {
  /** A share for one job; `release` when the job ends. */
  join(): ConcurrencyLimit & { release(): void };
  /** Jobs holding a share now. */
  readonly jobs: number;
}

export function shareLimit(total: number | ConcurrencyLimit): SharedLimit {
  const totalNow = (): number => (typeof total === 'number' ? total : total.limit);
  const members = new Set<{ listeners: Set<(limit: number) => void> }>();
  const share = (): number => Math.max(1, Math.floor(totalNow() / Math.max(1, members.size)));
  const notify = (): void => {
    const value = share();
    for (const member of members) for (const listener of member.listeners) listener(value);
  };
  if (typeof total !== 'number') total.onChange(() => notify());
  return {
    get jobs() {
      return members.size;
    },
    join() {
      const member = { listeners: new Set<(limit: number) => void>() };
      members.add(member);
      notify();
      return {
        get limit() {
          return share();
        },
        onChange(listener) {
          member.listeners.add(listener);
          return () => void member.listeners.delete(listener);
        },
        release() {
          if (members.delete(member)) notify();
        },
      };
    },
  };
}
