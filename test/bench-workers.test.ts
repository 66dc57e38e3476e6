import { runCli } from './support/cli.js';
import { testDatabaseUrl } from './support/db.js';

/** `bench --workers`: the plan imported by 1 and 2 worker processes against two simulated servers. */
describe('waha-import bench --workers', () => {
  it("imports every server's messages once per worker count and finds the same database each time", async () => {
    const result = await runCli([
      'bench',
      '--workers',
      '1,2',
      '--servers',
      '2',
      '--chats',
      '20',
      '--messages',
      '150',
      '--latency-ms',
      '2',
      '--jitter-ms',
      '0',
      '--database-url',
      testDatabaseUrl(),
      '--json',
    ]);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as {
      type: string;
      servers: number;
      consistent: boolean;
      physicalLimitMs: number;
      rows: Array<{
        workers: number;
        messages: number;
        jobs: number;
        sameAsFirst: boolean;
        overloads: number;
      }>;
    };
    expect(report).toMatchObject({ type: 'bench-workers', servers: 2, consistent: true });
    expect(report.physicalLimitMs).toBeGreaterThan(0);
    expect(report.rows.map((r) => r.workers)).toEqual([1, 2]);
    for (const row of report.rows) {
      expect(row).toMatchObject({ messages: 300, jobs: 2, sameAsFirst: true });
    }
  });

  it('refuses worker counts that are not whole numbers from 1 to 32', async () => {
    const result = await runCli(['bench', '--workers', '1,0']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--workers must be worker counts from 1 to 32');
  });
});
