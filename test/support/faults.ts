import type { SimRequest, Simulator } from '../../src/sim/index.js';

/**
 * Holds the first request matching `predicate` until `release()`: `reached` resolves when it arrives, so
 * a test can act at a known point of a run (the requests before it have been answered) without sleeping.
 */
export function holdRequest(
  sim: Simulator,
  predicate: (request: SimRequest) => boolean,
): { reached: Promise<SimRequest>; release: () => void } {
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  let arrive: (request: SimRequest) => void = () => undefined;
  const reached = new Promise<SimRequest>((resolve) => (arrive = resolve));
  const remove = sim.onRequest(async (request) => {
    if (!predicate(request)) return;
    remove();
    arrive(request);
    await released;
  });
  return { reached, release };
}

/** The `error` event of a `--json` run: what the user is told, and the hint. */
export function jsonError(stdout: string): { name: string; message: string; hint: string | null } {
  const event = stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map(
      (line) =>
        JSON.parse(line) as { type: string; error?: { name: string; message: string; hint: string | null } },
    )
    .find((e) => e.type === 'error');
  if (!event?.error) throw new Error(`no error event in:\n${stdout}`);
  return event.error;
}
