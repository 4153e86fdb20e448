// Which of two copies of a Kubernetes object is older, for caches fed by both a watch and direct
// reads: the operator's work queue and watched copies (capabilities/lib/runtime/workqueue.ts,
// capabilities/lib/watched-copies.ts) and the boot service's index of hosts
// (boot-service/hosts.ts), where a late watch event must not replace a newer read. It lives in
// boot/ for the reason boot/semaphore.ts does: boot/ is the standalone library the others import.

/**
 * Whether resourceVersion `a` is older than `b`. resourceVersions are opaque by contract, but the
 * API server's are etcd revisions (decimal integers) and grow; anything else is never "older".
 */
export function olderVersion(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b || !/^\d+$/.test(a) || !/^\d+$/.test(b)) return false;
  return BigInt(a) < BigInt(b);
}
