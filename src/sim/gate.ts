/**
 * Bounded concurrency with a bounded FIFO queue, like a server with a fixed worker pool behind a proxy
 * that queues a limited number of requests and turns the rest away.
 */

export class Gate {
  inFlight = 0;
  peakInFlight = 0;
  peakQueued = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly capacity: number,
    private readonly queueLimit: number,
  ) {}

  get queued(): number {
    return this.waiting.length;
  }

  /**
   * Resolves once a slot is held; rejects if `signal` aborts while still queued. Returns null (no slot,
   * nothing queued) when the queue is full.
   */
  enter(signal: AbortSignal): Promise<void> | null {
    if (this.inFlight < this.capacity) {
      this.inFlight++;
      this.peakInFlight = Math.max(this.peakInFlight, this.inFlight);
      return Promise.resolve();
    }
    if (this.waiting.length >= this.queueLimit) return null;
    return new Promise<void>((resolve, reject) => {
      const grant = (): void => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = (): void => {
        const index = this.waiting.indexOf(grant);
        if (index >= 0) this.waiting.splice(index, 1);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(grant);
      this.peakQueued = Math.max(this.peakQueued, this.waiting.length);
    });
  }

  /** Frees a slot held after `enter`; the oldest waiter inherits it directly, so FIFO order holds. */
  leave(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.inFlight--;
  }

  resetPeaks(): void {
    this.peakInFlight = this.inFlight;
    this.peakQueued = this.waiting.length;
  }
}
