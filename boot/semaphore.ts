// A counting semaphore with FIFO waiters, for bounding concurrent work: the Redfish transport's
// requests to one BMC (redfish/transport.ts) and the boot service's re-reads of hosts
// (boot-service/hosts.ts). It lives in boot/ for the reason boot/single-flight-cache.ts does:
// boot/ is the standalone library (node built-ins only) the others may import.

/** Counting semaphore; FIFO so a burst of reconciles cannot starve an earlier caller. */
export class Semaphore {
  private available: number;
  private readonly waiters: (() => void)[] = [];
  private peak = 0;

  constructor(private readonly capacity: number) {
    this.available = capacity;
  }

  get inFlight(): number {
    return this.capacity - this.available;
  }

  /** Callers waiting for a permit. */
  get waiting(): number {
    return this.waiters.length;
  }

  /** Highest number of holders seen at once (for tests). */
  get peakInFlight(): number {
    return this.peak;
  }

  async acquire(): Promise<() => void> {
    if (this.available > 0) {
      this.available -= 1;
    } else {
      await new Promise<void>(resolve => this.waiters.push(resolve));
    }
    this.peak = Math.max(this.peak, this.inFlight);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      // Hand the permit straight to the next waiter instead of returning it to the pool.
      if (next) next();
      else this.available += 1;
    };
  }
}
