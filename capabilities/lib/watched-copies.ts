// The newest copy of each object of a watched kind, as its watch delivered it, so a reconcile reads
// related objects (a Cluster API Machine, its Cluster) without a GET per run: a hundred machines
// provisioning at once read their one Cluster several hundred times a minute. A copy is exactly as
// fresh as the watch, which also wakes the objects that depend on it when it changes, so a
// decision taken on a copy the watch has since replaced is taken again at once. An older copy
// never replaces a newer one, and managedFields (often half an object) are not kept.
import { olderVersion } from "./runtime";

interface Watched {
  metadata?: {
    name?: string;
    namespace?: string;
    resourceVersion?: string;
    managedFields?: unknown;
  };
}

export class WatchedCopies<T extends Watched> {
  readonly #copies = new Map<string, T>();

  /** Records the object's copy (unless an older one than held); `keep` false forgets it. */
  put(obj: T, keep = true): void {
    const key = keyOf(obj.metadata?.namespace, obj.metadata?.name);
    if (!keep) {
      this.#copies.delete(key);
      return;
    }
    const held = this.#copies.get(key);
    if (held && olderVersion(obj.metadata?.resourceVersion, held.metadata?.resourceVersion)) return;
    const { managedFields: _dropped, ...metadata } = obj.metadata ?? {};
    this.#copies.set(key, { ...obj, metadata });
  }

  remove(obj: T): void {
    this.#copies.delete(keyOf(obj.metadata?.namespace, obj.metadata?.name));
  }

  get(namespace: string, name: string): T | undefined {
    return this.#copies.get(keyOf(namespace, name));
  }

  get size(): number {
    return this.#copies.size;
  }
}

const keyOf = (namespace: string | undefined, name: string | undefined) =>
  `${namespace ?? ""}/${name ?? ""}`;
