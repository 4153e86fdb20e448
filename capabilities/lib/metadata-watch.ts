// A watch of objects' metadata only, by label selector, for kinds whose contents the operator must
// not hold: credential Secrets. Pepr's Watch (through kubernetes-fluent-client) keeps every watched
// object whole in a cache and logs each one at debug level, so a Secret watch bound through Pepr put
// base64 passwords in memory for as long as the process ran and in the logs at LOG_LEVEL=debug.
// Here the API server itself strips the objects (PartialObjectMetadata: no data ever arrives), the
// label selector limits the watch to objects their owners marked, and what is kept between events
// is a resourceVersion per object the consumer cares about. List, then watch from the list's
// resourceVersion with bookmarks; on an expired resourceVersion, a dropped stream or an error,
// list again after a pause (objects gone meanwhile are reported deleted).
import { describeError } from "./error-message";
import type { KubeClient } from "./kube";

/** What of an object the watch passes on. */
export interface ObjectMetadata {
  name: string;
  namespace?: string;
  resourceVersion?: string;
  labels?: Record<string, string>;
}

export interface MetadataWatchOptions {
  kube: Pick<KubeClient, "get" | "stream">;
  /** The collection, e.g. "/api/v1/secrets" (all namespaces). */
  path: string;
  labelSelector: string;
  /** An object was added or changed (deleted false), or deleted. */
  onChange(meta: ObjectMetadata, deleted: boolean): void;
  /** Whether to remember an object between events (to report its deletion after a relist).
   *  Default: every object. */
  keep?(meta: ObjectMetadata): boolean;
  onError?(message: string): void;
  /** Pause before listing again after a failure. Default 5 s. */
  retryMs?: number;
}

const LIST_ACCEPT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
const WATCH_ACCEPT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";

interface RawMeta {
  metadata?: {
    name?: string;
    namespace?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
  };
}

/** Only the fields passed on: nothing else of what the server sent is retained. */
function metadataOf(obj: RawMeta | undefined): ObjectMetadata | undefined {
  const m = obj?.metadata;
  if (!m?.name) return undefined;
  return {
    name: m.name,
    namespace: m.namespace,
    resourceVersion: m.resourceVersion,
    labels: m.labels ? { ...m.labels } : undefined,
  };
}

const keyOf = (m: ObjectMetadata) => `${m.namespace ?? ""}/${m.name}`;

export class MetadataWatch {
  readonly #opts: MetadataWatchOptions;
  /** resourceVersion of each kept object. */
  readonly #known = new Map<string, ObjectMetadata>();
  readonly #abort = new AbortController();
  #running?: Promise<void>;

  constructor(opts: MetadataWatchOptions) {
    this.#opts = opts;
  }

  start(): void {
    this.#running ??= this.#loop();
  }

  /** Ends the watch; resolves when its loop has stopped. */
  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#running;
  }

  /** How many objects are remembered (tests and metrics: it is bounded by `keep`). */
  get size(): number {
    return this.#known.size;
  }

  async #loop(): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      try {
        let version = await this.#list();
        // Watch until the resourceVersion expires (410) or an error: then list again.
        while (!signal.aborted && version) version = await this.#watch(version);
      } catch (err) {
        if (signal.aborted) return;
        this.#opts.onError?.(`watch of ${this.#opts.path} failed: ${describeError(err)}`);
      }
      if (!signal.aborted) await pause(this.#opts.retryMs ?? 5000, signal);
    }
  }

  #query(extra: string): string {
    return `${this.#opts.path}?labelSelector=${encodeURIComponent(this.#opts.labelSelector)}${extra}`;
  }

  async #list(): Promise<string | undefined> {
    const list = await this.#opts.kube.get<{
      metadata?: { resourceVersion?: string };
      items?: RawMeta[];
    }>(this.#query(""), LIST_ACCEPT);
    const seen = new Set<string>();
    for (const item of list.items ?? []) {
      const meta = metadataOf(item);
      if (!meta) continue;
      seen.add(keyOf(meta));
      this.#changed(meta, false);
    }
    for (const [key, meta] of [...this.#known]) {
      if (!seen.has(key)) this.#changed(meta, true);
    }
    return list.metadata?.resourceVersion;
  }

  /** One watch request; the resourceVersion to resume from, or undefined to list again. */
  async #watch(from: string): Promise<string | undefined> {
    let version: string | undefined = from;
    await this.#opts.kube.stream(
      this.#query(`&watch=1&allowWatchBookmarks=true&timeoutSeconds=600&resourceVersion=${from}`),
      WATCH_ACCEPT,
      line => {
        if (version === undefined) return;
        let event: { type?: string; object?: RawMeta & { code?: number } };
        try {
          event = JSON.parse(line) as typeof event;
        } catch {
          return;
        }
        if (event.type === "ERROR") {
          version = undefined; // expired (410) or refused: list again
          return;
        }
        const meta = metadataOf(event.object);
        if (!meta) return;
        if (meta.resourceVersion) version = meta.resourceVersion;
        if (event.type === "BOOKMARK") return;
        this.#changed(meta, event.type === "DELETED");
      },
      this.#abort.signal,
    );
    return version;
  }

  #changed(meta: ObjectMetadata, deleted: boolean): void {
    const key = keyOf(meta);
    const before = this.#known.get(key);
    if (deleted) {
      this.#known.delete(key);
    } else {
      if (before && before.resourceVersion === meta.resourceVersion) return; // a relist's replay
      if (this.#opts.keep?.(meta) ?? true) this.#known.set(key, meta);
      else this.#known.delete(key);
    }
    try {
      this.#opts.onChange(meta, deleted);
    } catch (err) {
      this.#opts.onError?.(`handling ${key} failed: ${describeError(err)}`);
    }
  }
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise(resolve => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    timer.unref?.();
    signal.addEventListener("abort", done, { once: true });
  });
}
