import { startSimulator, type Simulator } from '../../src/sim/index.js';
import { DEFAULT_RETRY_POLICY } from '../../src/waha/retry.js';

/** Retries quick enough for a test, still honouring a Retry-After of up to 1.5 s. */
export const QUICK_RETRY = { ...DEFAULT_RETRY_POLICY, baseDelayMs: 5, maxDelayMs: 20, maxRetryAfterMs: 1500 };

/** A window that holds every message a simulator serves. */
export const ALL_TIME = { fromS: 0, toS: 4_000_000_000 };

/**
 * Starts a simulator for the test that calls it; it is closed after that test, which then fails if the
 * simulator answered a request 500 because a request hook (or its own code) threw.
 */
export function simulatorPerTest(): (options: Parameters<typeof startSimulator>[0]) => Promise<Simulator> {
  let running: Simulator | undefined;
  afterEach(async () => {
    const sim = running;
    running = undefined;
    await sim?.close();
  });
  return async (options) => (running = await startSimulator(options));
}
