// Moving a claimed host with its cluster (`clusterctl move`). clusterctl copies objects without
// their status, and a claimed host without status would be provisioned all over again in the
// target. So, as Metal3 does for its hosts: while a claimed host is not paused it carries
// clusterctl's block-move annotation; once its machine pauses it (the Cluster is being moved), the
// controller saves the status in an annotation and lifts the block; in the target, a host that
// arrives without status gets it back from that annotation before anything else happens, without
// a BMC call.
import {
  Annotations,
  HostStates,
  type HostStateName,
  type PhysicalHost,
  type PhysicalHostStatus,
} from "../api";
import type { StatusUpdate } from "./states";

/** The status fields that say where a host is; conditions and errors are recomputed. */
const SAVED_FIELDS = [
  "state",
  "provisioning",
  "hardwareDetails",
  "addresses",
  "observedPowerState",
  "lastInventoryTime",
] as const satisfies readonly (keyof PhysicalHostStatus)[];

function snapshot(status: PhysicalHostStatus | undefined): string {
  const out: Record<string, unknown> = {};
  for (const field of SAVED_FIELDS) if (status?.[field] !== undefined) out[field] = status[field];
  return JSON.stringify(out);
}

/**
 * The annotations a host should carry for moves, as the changes to make (null removes): claimed
 * and not paused, block-move; claimed and paused, the saved status and no block; otherwise neither.
 */
export function moveAnnotations(host: PhysicalHost): Record<string, string | null> {
  const have = host.metadata?.annotations ?? {};
  const claimed = !!host.spec?.consumerRef && !!host.status?.state;
  const paused = Annotations.paused in have;
  const want: Record<string, string | undefined> = {
    [Annotations.blockMove]: claimed && !paused ? "" : undefined,
    [Annotations.savedStatus]: claimed && paused ? snapshot(host.status) : undefined,
  };
  const changes: Record<string, string | null> = {};
  for (const [key, value] of Object.entries(want)) {
    if (value === undefined ? key in have : have[key] !== value) changes[key] = value ?? null;
  }
  return changes;
}

/**
 * The status to restore on a host that arrived without one and carries a saved status (a host
 * moved by clusterctl); undefined otherwise, or when the annotation is not a valid status.
 */
export function restoredStatus(host: PhysicalHost): StatusUpdate | undefined {
  if (host.status?.state) return undefined;
  const raw = host.metadata?.annotations?.[Annotations.savedStatus];
  if (!raw) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) return undefined;
  const saved = parsed as Record<string, unknown>;
  if (typeof saved.state !== "string" || !(saved.state in HostStates)) return undefined;
  const out: Record<string, unknown> = {};
  for (const field of SAVED_FIELDS) if (saved[field] !== undefined) out[field] = saved[field];
  return out as StatusUpdate & { state: HostStateName };
}
