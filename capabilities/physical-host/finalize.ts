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
import { classify, type HostControllerConfig, type StatusUpdate } from "./states";

/** On a PhysicalHost being deleted: release it even though a machine still claims it. */
export const FORCE_DELETE_ANNOTATION = "beskar7.infrastructure.cluster.x-k8s.io/force-delete";

export interface FinalizeConfig extends HostControllerConfig {
  /** Deprovisioning attempts before the finalizer is removed anyway. */
  deleteAttempts: number;
}

export interface FinalizeDeps {
  connect: BmcConnector;
  patchStatus: (host: PhysicalHost, status: StatusUpdate) => Promise<void>;
  record: EventRecorder;
  config: FinalizeConfig;
  /** Calls back after a delay to retry (by touching status, which makes Pepr call again). */
  retryAfter: (host: PhysicalHost, delayMs: number, attempt: number) => void;
  now?: () => Date;
}

/** Returns true when the finalizer may go, false to hold the object. */
export async function finalizeHost(host: PhysicalHost, deps: FinalizeDeps): Promise<boolean> {
  const annotations = host.metadata?.annotations ?? {};
  const now = deps.now?.() ?? new Date();
  const claimed = host.spec?.consumerRef;
  if (claimed && !(FORCE_DELETE_ANNOTATION in annotations)) {
    if (host.status?.state !== HostState.Deleting) {
      await deps.patchStatus(host, {
        state: HostState.Deleting,
        conditions: setConditions(
          host.status?.conditions,
          [
            {
              type: ConditionType.Ready,
              status: "False",
              reason: ConditionReason.Deleting,
              message: `deletion waits until ${claimed.kind} ${claimed.name} releases the host`,
            },
          ],
          host.metadata?.generation,
          now,
        ),
      });
      await deps.record(host, {
        type: "Warning",
        reason: "DeletionBlocked",
        message: `claimed by ${claimed.kind} ${claimed.name}: delete that first, or annotate ${FORCE_DELETE_ANNOTATION}=true`,
      });
    }
    return false;
  }
  if (Annotations.detached in annotations) {
    await deps.record(host, {
      type: "Normal",
      reason: "Released",
      message: "detached: deleted without touching the BMC",
    });
    return true;
  }

  const attempt = (host.status?.errorCount ?? 0) + 1;
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
    return true;
  } catch (err) {
    const { message, reason } = classify(err);
    if (attempt >= deps.config.deleteAttempts) {
      await deps.record(host, {
        type: "Warning",
        reason: "FinalizedWithoutCleanup",
        message: `gave up after ${attempt} attempts to clean up through the BMC (${reason}: ${message}); removed anyway, the server may still be powered on with media inserted`,
      });
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
