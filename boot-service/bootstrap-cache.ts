// A brief, bounded cache of bootstrap data for the boot service, so a burst of requests for one
// host reads its bootstrap data Secret from the API server once instead of once per request.
//
// Bursts are the normal case: a BMC reads a configuration volume in many Range requests (each one
// needs the bytes to build the volume), the operator probes the volume before the BMC does, and
// the OS fetches its configuration soon after. With 100 machines at once, those per-request GETs
// were a large share of the API server's load, the benchmark's bottleneck.
//
// The cache is boot/single-flight-cache.ts with these settings:
//   - Single-flight: concurrent reads of one key share one load.
//   - Entries live TTL_MS (10 s): long enough for one BMC's Range reads of a volume and the OS's
//     fetch right after, short enough that a changed Secret is served within seconds and the
//     bytes do not sit in memory longer than a burst.
//   - Bounded: at most MAX_ENTRIES entries and MAX_BYTES bytes (the service's memory limit is
//     192Mi and most of it is for streaming ISOs); the oldest go first, and a value larger than
//     the byte bound is served but not kept.
//   - Only successes are kept: a missing Secret or key, or a failed read, is read again next time
//     (the Secret may be created any moment, and an error must not outlive its cause).
//
// Callers get the cached Buffer itself and must not modify it. Keys name no secret; values are
// never logged or put into errors here.
import { SingleFlightCache } from "../boot/single-flight-cache";

/** 10 s: one burst (a BMC's Range reads, the operator's probe, the OS's fetch), not longer. */
export const TTL_MS = 10_000;
/** Far more hosts than boot at once within one TTL on a 2-core service. */
export const MAX_ENTRIES = 256;
/** 4 MiB: bootstrap data is a few KiB (a Secret is at most 1 MiB). */
export const MAX_BYTES = 4 * 1024 * 1024;

export interface BootstrapCacheOptions {
  ttlMs?: number;
  maxEntries?: number;
  maxBytes?: number;
  /** The clock (tests move it). */
  now?: () => number;
}

export class BootstrapCache {
  readonly #cache: SingleFlightCache<Buffer>;

  constructor(options: BootstrapCacheOptions = {}) {
    this.#cache = new SingleFlightCache({
      ttlMs: options.ttlMs ?? TTL_MS,
      maxEntries: options.maxEntries ?? MAX_ENTRIES,
      maxWeight: options.maxBytes ?? MAX_BYTES,
      weigh: data => data.length,
      now: options.now,
    });
  }

  /** The value of `key`: kept, being loaded, or loaded now with `load` (and kept on success). */
  get(key: string, load: () => Promise<Buffer>): Promise<Buffer> {
    return this.#cache.get(key, load);
  }

  /** Entries and bytes kept (for tests and metrics). */
  size(): { entries: number; bytes: number } {
    return { entries: this.#cache.size, bytes: this.#cache.weight };
  }
}
