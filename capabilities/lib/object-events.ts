// Watch events shared between capabilities. Pepr keeps a copy of every watched object per watch
// binding, so a second controller that watches a kind costs a second copy of all its objects
// (about 20 MiB per binding at 1000 PhysicalHosts). The capability that owns a kind publishes its
// events here and other controllers subscribe, so a kind is watched once. Subscribing has no side
// effect beyond holding the listener, so it may happen at module load (also during `pepr build`).

export type ObjectListener<T> = (obj: T, deleted: boolean) => void;

/**
 * A host just claimed by a machine, as the claim's write returned it. The machine controller
 * publishes it so the host controller, in the same process, starts on the claim at once rather
 * than after the watch event's round trip through the API server.
 */
export const HOST_CLAIMED = "PhysicalHost:claimed";

/**
 * A host a machine is about to claim (the claim's write is under way), as the machine controller
 * saw it. The host controller reads the host's system ahead of its first run (RedfishSystem
 * readAhead), so the connection to the BMC and that read overlap the claim's round trip instead
 * of following it. Nothing else happens if the claim is lost.
 */
export const HOST_CLAIMING = "PhysicalHost:claiming";

const listeners = new Map<string, ObjectListener<never>[]>();

export function subscribe<T>(kind: string, listener: ObjectListener<T>): void {
  const list = listeners.get(kind) ?? [];
  list.push(listener as ObjectListener<never>);
  listeners.set(kind, list);
}

/** Hands an event to every subscriber; one that throws does not keep it from the others. */
export function publish<T>(kind: string, obj: T, deleted = false): void {
  for (const listener of listeners.get(kind) ?? []) {
    try {
      (listener as ObjectListener<T>)(obj, deleted);
    } catch {
      // A subscriber's failure is its own; the owner's reconcile must go on.
    }
  }
}
