// Deleting a PhysicalHost. Pepr calls Finalize on every update while the object is being deleted
// and removes its finalizer when the callback returns anything but false, so this is a function
// of the object that is safe to call again and again:
//   - a claimed host is not pulled from under its machine: the delete waits (with an event)
//     until the claim is released, unless the force-delete annotation is set;
//   - otherwise the host is deprovisioned (media ejected, override cleared, powered off) and
//     released;
//   - a BMC that cannot be reached gets a bounded number of attempts, spaced by backoff, then the
//     finalizer goes with a warning, so a dead BMC never leaves the object stuck.
import { Annotations, ConditionReason, ConditionType, HostState, type PhysicalHost } from "../api";
import { setConditions } from "../lib/conditions";
import type { EventRecorder } from "../lib/events";
import type { BmcConnector } from "./bmc";
import type { Config } from "../lib/config";
import { classify, type HostControllerConfig, type StatusUpdate } from "./states";

/** On a PhysicalHost being deleted: release it even though a machine still claims it. */
export const FORCE_DELETE_ANNOTATION = "beskar7.infrastructure.cluster.x-k8s.io/force-delete";

export type FinalizeConfig = HostControllerConfig & Pick<Config, "deleteAttempts">;

export interface FinalizeDeps {
  connect: BmcConnector;
  patchStatus: (host: PhysicalHost, status: StatusUpdate) => Promise<void>;
  record: EventRecorder;
  config: FinalizeConfig;
  /** Calls back after a delay to retry (by touching status, which makes Pepr call again). */
  retryAfter: (host: PhysicalHost, delayMs: number, attempt: number) => void;
  /** Whether a retry is scheduled for the object (by uid); calls until then do nothing. */
  retryPending?: (key: string) => boolean;
  /**
   * Attempts made in this process, by uid. Status holds the count across restarts, but a
   * reconcile that was in flight when deletion began can still overwrite status once.
   */
  attempts?: Map<string, number>;
  /** Objects (by uid) whose finalize call is running in this process. */
  running?: Set<string>;
  now?: () => Date;
}

/** Returns true when the finalizer may go, false to hold the object. */
export async function finalizeHost(host: PhysicalHost, deps: FinalizeDeps): Promise<boolean> {
  const key = host.metadata?.uid ?? `${host.metadata?.namespace}/${host.metadata?.name}`;
  // Pepr calls again on every update, our own retry trigger included, and does not wait for a
  // call to finish before the next. While one runs, or a retry is scheduled, the others hold the
  // object: the running call (or the retry) decides.
  if (deps.running?.has(key) || deps.retryPending?.(key)) return false;
  deps.running?.add(key);
  try {
    return await finalizeOnce(host, key, deps);
  } finally {
    deps.running?.delete(key);
  }
}

async function finalizeOnce(host: PhysicalHost, key: string, deps: FinalizeDeps): Promise<boolean> {
  const annotations = host.metadata?.annotations ?? {};
  const now = deps.now?.() ?? new Date();

  const claimed = host.spec?.consumerRef;
  const holding = !!claimed && !(FORCE_DELETE_ANNOTATION in annotations);
  const deleting = host.status?.state === HostState.Deleting;
  const madeHere = deps.attempts?.get(key);
  if (!deleting) {
    // Entering deletion: errorCount now counts delete attempts, not the reconciler's failures.
    await deps.patchStatus(host, {
      state: HostState.Deleting,
      errorCount: null,
      conditions: setConditions(
        host.status?.conditions,
        [
          {
            type: ConditionType.Ready,
            status: "False",
            reason: ConditionReason.Deleting,
            message: holding
              ? `deletion waits until ${claimed!.kind} ${claimed!.name} releases the host`
              : "deprovisioning before the object is removed",
          },
        ],
        host.metadata?.generation,
        now,
      ),
    });
    if (holding && madeHere === undefined) {
      deps.attempts?.set(key, 0);
      await deps.record(host, {
        type: "Warning",
        reason: "DeletionBlocked",
        message: `claimed by ${claimed!.kind} ${claimed!.name}: delete that first, or annotate ${FORCE_DELETE_ANNOTATION}=true`,
      });
    }
  }
  if (holding) return false;
  if (Annotations.detached in annotations) {
    await deps.record(host, {
      type: "Normal",
      reason: "Released",
      message: "detached: deleted without touching the BMC",
    });
    return true;
  }

  const attempt = Math.max(madeHere ?? 0, deleting ? (host.status?.errorCount ?? 0) : 0) + 1;
  deps.attempts?.set(key, attempt);
  try {
    const connection = await deps.connect(host);
    try {
      const bmc = connection.bmc;
      if ((await bmc.virtualMedia()).some(s => s.inserted)) await bmc.ejectMedia();
      if ((await bmc.bootOverride()).enabled !== "Disabled") await bmc.clearBootOverride();
      if ((await bmc.powerState()) !== "Off") {
        await bmc.powerOff({ gracefulTimeoutMs: deps.config.gracefulShutdownTimeoutMs });
      }
    } finally {
      connection.release();
    }
    await deps.record(host, {
      type: "Normal",
      reason: "Deprovisioned",
      message: "media ejected, boot override cleared, powered off; released",
    });
    deps.attempts?.delete(key);
    return true;
  } catch (err) {
    const { message, reason } = classify(err);
    if (attempt >= deps.config.deleteAttempts) {
      await deps.record(host, {
        type: "Warning",
        reason: "FinalizedWithoutCleanup",
        message: `gave up after ${attempt} attempts to clean up through the BMC (${reason}: ${message}); removed anyway, the server may still be powered on with media inserted`,
      });
      deps.attempts?.delete(key);
      return true;
    }
    const delay = Math.min(
      deps.config.errorBackoffMaxMs,
      deps.config.errorBackoffBaseMs * 2 ** (attempt - 1),
    );
    await deps.record(host, {
      type: "Warning",
      reason: "DeprovisionFailed",
      message: `attempt ${attempt} of ${deps.config.deleteAttempts} failed (${reason}: ${message}); retrying in ${Math.round(delay / 1000)} s`,
    });
    deps.retryAfter(host, delay, attempt);
    return false;
  }
}
