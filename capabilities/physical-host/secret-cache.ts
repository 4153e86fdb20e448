// The credentials Secrets hosts read, kept between reconciles while nothing says they changed.
// Every host run used to read its Secret from the API server before its first BMC request; with a
// hundred claims at once on two cores that read took 0.6 s at the median and 1.7 s at worst, the
// largest part of the time from a claim to the BMC's first action (docs/benchmarks/machines.md).
// A Secret carrying the bmc-credentials label has every change and deletion reported by the
// metadata watch (host-controller.ts): the report drops its copy, a read overtaken by a report is
// not kept, and the copy is otherwise used for up to maxAgeMs (a watch that failed silently costs
// at most that much staleness; the Redfish client pool holds the same credentials as long). An
// unlabelled Secret (a CA bundle needs no label) is not watched: its copy is used for
// unwatchedMaxAgeMs only, so a changed CA reaches the BMC client within that. Only the fields
// bmcAccess reads are kept.
import { Labels } from "../api";
import type { SecretData, SecretReader } from "./credentials";

/** How long a copy is used without a fresh read: the client pool's idle lifetime. */
export const SECRET_COPY_MAX_AGE_MS = 10 * 60_000;
/** The same for a Secret no watch reports changes of. */
export const UNWATCHED_SECRET_COPY_MAX_AGE_MS = 60_000;

interface Copy {
  secret: SecretData;
  readAt: number;
  /** Labelled: its changes are reported. */
  watched: boolean;
}

export class SecretCache {
  readonly #read: SecretReader;
  readonly #maxAgeMs: number;
  readonly #unwatchedMaxAgeMs: number;
  readonly #now: () => number;
  readonly #copies = new Map<string, Copy>();
  /** Reads under way, shared by hosts using one Secret; dropped when a change is reported. */
  readonly #reading = new Map<string, Promise<SecretData | undefined>>();
  #sweptAt = 0;

  constructor(
    read: SecretReader,
    options: { maxAgeMs?: number; unwatchedMaxAgeMs?: number; now?: () => number } = {},
  ) {
    this.#read = read;
    this.#maxAgeMs = options.maxAgeMs ?? SECRET_COPY_MAX_AGE_MS;
    this.#unwatchedMaxAgeMs = options.unwatchedMaxAgeMs ?? UNWATCHED_SECRET_COPY_MAX_AGE_MS;
    this.#now = options.now ?? Date.now;
  }

  /** The Secret, from a copy nothing has invalidated, else from the API server. */
  read(namespace: string, name: string): Promise<SecretData | undefined> {
    const key = `${namespace}/${name}`;
    const now = this.#now();
    this.#sweep(now);
    const copy = this.#copies.get(key);
    if (copy && now - copy.readAt < this.#ageLimit(copy)) return Promise.resolve(copy.secret);
    this.#copies.delete(key);
    const pending = this.#reading.get(key);
    if (pending) return pending;
    const reading = this.#read(namespace, name).then(
      secret => {
        // Kept only if no change was reported while reading (that dropped this promise).
        if (this.#reading.get(key) === reading) {
          this.#reading.delete(key);
          if (secret) {
            const watched = Labels.bmcCredentials in (secret.metadata?.labels ?? {});
            this.#copies.set(key, { secret: slim(secret), readAt: now, watched });
          }
        }
        return secret;
      },
      (err: unknown) => {
        if (this.#reading.get(key) === reading) this.#reading.delete(key);
        throw err;
      },
    );
    this.#reading.set(key, reading);
    return reading;
  }

  /** The watch reported a change or deletion of the Secret: the next read goes to the API server. */
  changed(namespace: string | undefined, name: string): void {
    const key = `${namespace ?? ""}/${name}`;
    this.#copies.delete(key);
    this.#reading.delete(key);
  }

  /** Copies held (tests). */
  get size(): number {
    return this.#copies.size;
  }

  #ageLimit(copy: Copy): number {
    return copy.watched ? this.#maxAgeMs : this.#unwatchedMaxAgeMs;
  }

  #sweep(now: number): void {
    if (now - this.#sweptAt < this.#unwatchedMaxAgeMs) return;
    this.#sweptAt = now;
    for (const [key, copy] of this.#copies) {
      if (now - copy.readAt >= this.#ageLimit(copy)) this.#copies.delete(key);
    }
  }
}

function slim(secret: SecretData): SecretData {
  return {
    metadata: { name: secret.metadata?.name, labels: secret.metadata?.labels },
    data: secret.data,
  };
}
