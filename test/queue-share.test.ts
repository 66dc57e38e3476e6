import { createConcurrencyController } from '../src/concurrency/limiter.js';
import { shareLimit } from '../src/queue/share.js';

describe('shareLimit: one limit split among the jobs a worker runs against one WAHA server', () => {
  it('gives each job an equal share that follows the number of jobs, never below one', () => {
    const shared = shareLimit(10);
    const a = shared.join();
    expect(a.limit).toBe(10);
    const seen: number[] = [];
    a.onChange((limit) => seen.push(limit));
    const b = shared.join();
    expect([a.limit, b.limit]).toEqual([5, 5]);
    const more = Array.from({ length: 10 }, () => shared.join());
    expect(a.limit).toBe(1);
    for (const job of more) job.release();
    b.release();
    expect(a.limit).toBe(10);
    expect(shared.jobs).toBe(1);
    expect(seen.at(0)).toBe(5);
    expect(seen.at(-1)).toBe(10);
  });

  it('follows the adaptive controller: a cut reaches every job', () => {
    const controller = createConcurrencyController({ initial: 40, max: 100 });
    const shared = shareLimit(controller);
    const jobs = [shared.join(), shared.join(), shared.join(), shared.join()];
    expect(jobs.map((j) => j.limit)).toEqual([10, 10, 10, 10]);
    const seen: number[] = [];
    jobs[0]!.onChange((limit) => seen.push(limit));
    controller.observe({ latencyMs: 1, outcome: 'overload' });
    expect(controller.limit).toBeLessThan(40);
    expect(jobs[0]!.limit).toBe(Math.floor(controller.limit / 4));
    expect(seen.at(-1)).toBe(Math.floor(controller.limit / 4));
  });
});
