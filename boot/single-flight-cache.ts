// A cache of values loaded on demand and kept for a while, for reads that bursts of callers make
// at once: the operator's credentials Secrets (capabilities/physical-host/secret-cache.ts) and the
// boot service's key and CA (capabilities/physical-host/boot-session.ts), and the boot service's
// bootstrap data (boot-service/bootstrap-cache.ts). Each wrote the same idea once; this is it.
//
//   - Single-flight: concurrent gets of one key share one load.
//   - A loaded value is kept for a TTL from the end of its load, fixed or chosen per value; a TTL
//     of 0 keeps nothing (a missing Secret, say, is read again next time).
//   - Optionally stale-while-revalidate: for `staleMs` after its TTL a value is still returned at
//     once while one load refreshes it in the background, so a burst of callers after a quiet
//     spell does not wait on the read (a claimed host's first BMC request waited on a CA bundle's).
//     A refresh that fails drops the value: the next get loads, and sees the failure.
//   - A failed load is not kept: the next get loads again (an error must not outlive its cause).
//   - delete() drops a key's value and its load under way: that load still answers its callers,
//     but what it read is not kept (a change reported while reading may have overtaken it), unless
//     the report said which value is current and the value passes.
//   - Optionally bounded by entry count and total weight (bytes, say): the oldest go first, and
//     a value heavier than the bound is returned but not kept.
//
// It lives in boot/ because boot/ is the standalone library (no Kubernetes, Pepr or operator
// imports, per eslint.config.mjs) that both capabilities/ and boot-service/ may import; the boot
// service may not import capabilities/ beyond capabilities/api. Values are never logged here.

export interface SingleFlightCacheOptions<V> {
  /** How long a loaded value is kept, in ms, or a function choosing it per value; 0 keeps none. */
  ttlMs: number | ((value: V) => number);
  /**
   * For this long after its TTL a value is still returned, while one background load refreshes
   * it (default 0: an expired value is never returned), fixed or chosen per value.
   */
  staleMs?: number | ((value: V) => number);
  /** At most this many values are kept (default: no bound). */
  maxEntries?: number;
  /** At most this total weight is kept, weighed by `weigh` (default: no bound). */
  maxWeight?: number;
  /** A value's weight for maxWeight (default 0). */
  weigh?: (value: V) => number;
  /** The clock (tests move it). */
  now?: () => number;
}

interface Entry<V> {
  value: V;
  /** Fresh until then. */
  expires: number;
  /** Returned (and refreshed) until then; dropped after. */
  staleUntil: number;
  weight: number;
}

export class SingleFlightCache<V> {
  readonly #ttlMs: (value: V) => number;
  readonly #staleMs: (value: V) => number;
  readonly #maxEntries: number;
  readonly #maxWeight: number;
  readonly #weigh: (value: V) => number;
  readonly #now: () => number;
  /** In insertion order: eviction drops the oldest first. */
  readonly #entries = new Map<string, Entry<V>>();
  readonly #loading = new Map<string, Promise<V>>();
  /** What a load under way must pass to be kept: set by delete() with `current`. */
  readonly #admits = new Map<Promise<V>, (value: V) => boolean>();
  #weight = 0;
  /** The earliest expiry of any entry: nothing is scanned for expiry before then. */
  #nextExpiry = Infinity;

  constructor(options: SingleFlightCacheOptions<V>) {
    const { ttlMs } = options;
    this.#ttlMs = typeof ttlMs === "number" ? () => ttlMs : ttlMs;
    const staleMs = options.staleMs ?? 0;
    this.#staleMs = typeof staleMs === "number" ? () => staleMs : staleMs;
    this.#maxEntries = options.maxEntries ?? Infinity;
    this.#maxWeight = options.maxWeight ?? Infinity;
    this.#weigh = options.weigh ?? (() => 0);
    this.#now = options.now ?? Date.now;
  }

  /**
   * The value of `key`: kept (a stale one refreshed in the background), being loaded, or loaded
   * now with `load` (and kept on success).
   */
  get(key: string, load: () => Promise<V>): Promise<V> {
    this.#dropExpired();
    const kept = this.#entries.get(key);
    if (kept) {
      if (kept.expires <= this.#now() && !this.#loading.has(key)) {
        // Nobody waits on a refresh: its failure is only the stale value's end.
        this.#load(key, load).catch(() => {
          if (this.#entries.get(key) === kept) this.#remove(key);
        });
      }
      return Promise.resolve(kept.value);
    }
    return this.#loading.get(key) ?? this.#load(key, load);
  }

  #load(key: string, load: () => Promise<V>): Promise<V> {
    const loading = load().then(
      value => {
        // Kept only if delete() did not drop this load while it ran, nor ask for another value.
        const admit = this.#admits.get(loading);
        this.#admits.delete(loading);
        if (this.#loading.get(key) === loading) {
          this.#loading.delete(key);
          if (!admit || admit(value)) this.#keep(key, value);
          else this.#remove(key);
        }
        return value;
      },
      (err: unknown) => {
        this.#admits.delete(loading);
        if (this.#loading.get(key) === loading) this.#loading.delete(key);
        throw err;
      },
    );
    this.#loading.set(key, loading);
    return loading;
  }

  /**
   * Forgets `key`: the next get loads it again, and a load under way is not kept. With `current`
   * (a change report naming the version it saw), a value that passes it is what was reported and
   * stays: the kept one, or a load under way once it ends.
   */
  delete(key: string, current?: (value: V) => boolean): void {
    const kept = this.#entries.get(key);
    if (!current || !kept || !current(kept.value)) this.#remove(key);
    const loading = this.#loading.get(key);
    if (!loading) return;
    if (!current) {
      this.#loading.delete(key);
      this.#admits.delete(loading);
      return;
    }
    const before = this.#admits.get(loading);
    this.#admits.set(loading, before ? value => before(value) && current(value) : current);
  }

  /** Values kept. */
  get size(): number {
    this.#dropExpired();
    return this.#entries.size;
  }

  /** Total weight of the values kept. */
  get weight(): number {
    this.#dropExpired();
    return this.#weight;
  }

  #keep(key: string, value: V): void {
    const ttl = this.#ttlMs(value);
    const weight = this.#weigh(value);
    this.#remove(key);
    if (!(ttl > 0) || weight > this.#maxWeight) return;
    const expires = this.#now() + ttl;
    const staleUntil = expires + Math.max(0, this.#staleMs(value));
    this.#entries.set(key, { value, expires, staleUntil, weight });
    this.#weight += weight;
    this.#nextExpiry = Math.min(this.#nextExpiry, staleUntil);
    for (const oldest of this.#entries.keys()) {
      if (this.#entries.size <= this.#maxEntries && this.#weight <= this.#maxWeight) break;
      this.#remove(oldest);
    }
  }

  #dropExpired(): void {
    const now = this.#now();
    if (now < this.#nextExpiry) return;
    this.#nextExpiry = Infinity;
    for (const [key, entry] of this.#entries) {
      if (entry.staleUntil <= now) this.#remove(key);
      else this.#nextExpiry = Math.min(this.#nextExpiry, entry.staleUntil);
    }
  }

  #remove(key: string): void {
    const entry = this.#entries.get(key);
    if (!entry) return;
    this.#entries.delete(key);
    this.#weight -= entry.weight;
  }
}
