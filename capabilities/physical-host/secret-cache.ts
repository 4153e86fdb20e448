// The credentials Secrets hosts read, kept between reconciles while nothing says they changed.
// Every host run used to read its Secret from the API server before its first BMC request; with a
// hundred claims at once on two cores that read took 0.6 s at the median and 1.7 s at worst, the
// largest part of the time from a claim to the BMC's first action (docs/benchmarks/machines.md).
// A Secret carrying the bmc-credentials label has every change and deletion reported by the
// metadata watch (host-controller.ts): the report drops its copy, a read overtaken by a report is
// not kept, and the copy is otherwise fresh for maxAgeMs (a watch that failed silently costs
// at most that much staleness; the Redfish client pool holds the same credentials as long). An
// unlabelled Secret (a CA bundle needs no label) is not watched: its copy is fresh for
// unwatchedMaxAgeMs only. Past that, a copy is still used for maxAgeMs while one read refreshes
// it in the background: the first claims after a quiet spell used to wait on that read (the CA
// bundle's, 0.2-0.8 s in a burst), now a changed Secret reaches the BMC client by the run after the
// one that noticed its age. Only the fields bmcAccess reads are kept. The cache itself is
// boot/single-flight-cache.ts: hosts using one Secret share one read, a failed read is not kept,
// and a report drops a read under way.
import { SingleFlightCache } from "../../boot/single-flight-cache";
import { Labels } from "../api";
import type { SecretData, SecretReader } from "./credentials";

/** How long a copy is fresh (the client pool's idle lifetime), and how long it is used stale
 *  while a background read refreshes it. */
export const SECRET_COPY_MAX_AGE_MS = 10 * 60_000;
/** How long a copy of a Secret no watch reports changes of is fresh. */
export const UNWATCHED_SECRET_COPY_MAX_AGE_MS = 60_000;

export class SecretCache {
  readonly #read: SecretReader;
  readonly #copies: SingleFlightCache<SecretData | undefined>;

  constructor(
    read: SecretReader,
    options: { maxAgeMs?: number; unwatchedMaxAgeMs?: number; now?: () => number } = {},
  ) {
    this.#read = read;
    const maxAgeMs = options.maxAgeMs ?? SECRET_COPY_MAX_AGE_MS;
    const unwatchedMaxAgeMs = options.unwatchedMaxAgeMs ?? UNWATCHED_SECRET_COPY_MAX_AGE_MS;
    this.#copies = new SingleFlightCache({
      // A missing Secret is not kept; a labelled one has its changes reported by the watch.
      ttlMs: secret =>
        !secret
          ? 0
          : Labels.bmcCredentials in (secret.metadata?.labels ?? {})
            ? maxAgeMs
            : unwatchedMaxAgeMs,
      // A missing Secret is never kept, so never stale.
      staleMs: maxAgeMs,
      now: options.now,
    });
  }

  /** The Secret, from a copy nothing has invalidated, else from the API server. */
  read(namespace: string, name: string): Promise<SecretData | undefined> {
    return this.#copies.get(`${namespace}/${name}`, () =>
      this.#read(namespace, name).then(secret => secret && slim(secret)),
    );
  }

  /**
   * The watch reported the Secret (added, changed or deleted): unless the copy (or the read under
   * way) is of the version reported, the next read goes to the API server. The watch's list at its
   * (re)start reports every Secret as it is; it used to drop the copies the first hosts were
   * reading, and the first claims of a burst then read their Secrets again.
   */
  changed(
    namespace: string | undefined,
    name: string,
    resourceVersion?: string,
    deleted = false,
  ): void {
    const reported =
      deleted || resourceVersion === undefined
        ? undefined
        : (copy: SecretData | undefined) => copy?.metadata?.resourceVersion === resourceVersion;
    this.#copies.delete(`${namespace ?? ""}/${name}`, reported);
  }

  /** Copies held (tests). */
  get size(): number {
    return this.#copies.size;
  }
}

function slim(secret: SecretData): SecretData {
  return {
    metadata: {
      name: secret.metadata?.name,
      resourceVersion: secret.metadata?.resourceVersion,
      labels: secret.metadata?.labels,
    },
    data: secret.data,
  };
}
