import type { TimeWindow } from '../domain.js';
import type { ImportSummary } from './summary.js';

/** Where each run is recorded (the runs table); the runner needs only this much of it. */
export interface RunLog {
  start(run: {
    session: string;
    strategy: string;
    window: TimeWindow;
    options: Record<string, unknown>;
  }): Promise<number>;
  finish(runId: number, summary: ImportSummary): Promise<void>;
}
