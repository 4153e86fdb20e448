// Deleting a PhysicalHost: the finalize function the controller runtime runs, through the same
// work queue and per-BMC limits as reconciles, for a host with a deletionTimestamp. It is a
// function of the object, safe to run again and again, and returns what to write; the runtime
// removes the finalizer only when the result says done, after writing the rest. So:
//   - the first run marks the host Deleting (one status patch) and runs again at once; an API
//     error there is a failed run, retried with backoff, with the finalizer in place;
//   - a claimed host is not pulled from under its machine: the delete waits (with one event)
//     until the claim is released, unless the force-delete annotation is set;
//   - otherwise the host is deprovisioned (media ejected, override cleared, powered off) and
//     released; a detached host is released without a BMC call;
//   - a failed cleanup is retried with the runtime's backoff; the attempt count lives in status,
//     so a restart resumes the count and the relist resumes the retries with nobody touching the
//     object; after the last attempt the finalizer goes with a warning;
//   - credentials that are gone with the host (its namespace being deleted, `kubectl delete -f`
//     of both) make cleanup impossible at once: the host is released with an event and condition
//     saying so, without minutes of retries first.
import {
  Annotations,
  ConditionReason,
  ConditionType,
  HostErrorReason,
  HostState,
  type PhysicalHost,
} from "../api";
import { setConditions, type ConditionInput } from "../lib/conditions";
import type { Config } from "../lib/config";
import { abortable, backoffDelay, type FinalizeResult } from "../lib/runtime";
import type { BmcConnector } from "./bmc";
import { classify, hostBackoff, type HostControllerConfig, type StatusUpdate } from "./states";

/** On a PhysicalHost being deleted: release it even though a machine still claims it. */
export const FORCE_DELETE_ANNOTATION = "beskar7.infrastructure.cluster.x-k8s.io/force-delete";

export type FinalizeConfig = HostControllerConfig & Pick<Config, "deleteAttempts">;

export interface FinalizeDeps {
  connect: BmcConnector;
  config: FinalizeConfig;
  now?: () => Date;
  random?: () => number;
}

/** Failures that no retry of a deletion's cleanup can get past. */
const NEVER_REACHABLE = new Set<string>([
  HostErrorReason.SecretNotFound,
  HostErrorReason.AddressRefused,
  HostErrorReason.NamespaceIgnored,
]);

export async function finalizeHost(
  host: PhysicalHost,
  deps: FinalizeDeps,
  signal: AbortSignal = new AbortController().signal,
): Promise<FinalizeResult> {
  const annotations = host.metadata?.annotations ?? {};
  const now = deps.now?.() ?? new Date();
  const claim = host.spec?.consumerRef;
  const holding = !!claim && !(FORCE_DELETE_ANNOTATION in annotations);
  const write = (status: StatusUpdate, conditions: ConditionInput[]): StatusUpdate => ({
    ...status,
    conditions: setConditions(host.status?.conditions, conditions, host.metadata?.generation, now),
  });

  if (host.status?.state !== HostState.Deleting) {
    // Entering deletion: errorCount now counts delete attempts, not the reconciler's failures.
    return {
      status: write({ state: HostState.Deleting, errorCount: null }, [
        {
          type: ConditionType.Ready,
          status: "False",
          reason: ConditionReason.Deleting,
          message: holding
            ? `deletion waits until ${claim!.kind} ${claim!.name} releases the host`
            : "deprovisioning before the object is removed",
        },
      ]),
      events: holding
        ? [
            {
              type: "Warning",
              reason: "DeletionBlocked",
              message: `claimed by ${claim!.kind} ${claim!.name}: delete that first, or annotate ${FORCE_DELETE_ANNOTATION}=true`,
            },
          ]
        : [],
      requeueAfterMs: holding ? undefined : 0,
    };
  }
  // Released or forced later: the change to the object runs this again.
  if (holding) return {};
  if (Annotations.detached in annotations) {
    return {
      done: true,
      events: [
        {
          type: "Normal",
          reason: "Released",
          message: "detached: deleted without touching the BMC",
        },
      ],
    };
  }

  const attempt = (host.status?.errorCount ?? 0) + 1;
  try {
    const connection = await deps.connect(host);
    try {
      const bmc = abortable(connection.bmc, signal);
      if ((await bmc.virtualMedia()).some(s => s.inserted)) await bmc.ejectMedia();
      if ((await bmc.bootOverride()).enabled !== "Disabled") await bmc.clearBootOverride();
      await bmc.powerOff({ gracefulTimeoutMs: deps.config.gracefulShutdownTimeoutMs });
    } finally {
      connection.release();
    }
  } catch (err) {
    if (signal.aborted) throw err;
    const { message, reason } = classify(err);
    if (NEVER_REACHABLE.has(reason)) {
      // The credentials went with the host, or the operator may not act on it (its address or
      // namespace is refused): no attempt can ever reach the BMC.
      const text = `no BMC cleanup was possible: ${message}; the server may still be powered on with media inserted`;
      return {
        done: true,
        status: write({ errorReason: reason, errorMessage: message }, [
          {
            type: ConditionType.Deprovisioned,
            status: "False",
            reason: ConditionReason.CleanupImpossible,
            message: text,
          },
        ]),
        events: [{ type: "Warning", reason: "FinalizedWithoutCleanup", message: text }],
      };
    }
    if (attempt >= deps.config.deleteAttempts) {
      const text = `gave up after ${attempt} attempts to clean up through the BMC (${reason}: ${message}); removed anyway, the server may still be powered on with media inserted`;
      return {
        done: true,
        status: write({ errorCount: attempt, errorReason: reason, errorMessage: message }, [
          {
            type: ConditionType.Deprovisioned,
            status: "False",
            reason: ConditionReason.CleanupImpossible,
            message: text,
          },
        ]),
        events: [{ type: "Warning", reason: "FinalizedWithoutCleanup", message: text }],
      };
    }
    const delay = backoffDelay(attempt, hostBackoff(deps.config), deps.random);
    return {
      status: { errorCount: attempt, errorReason: reason, errorMessage: message },
      events: [
        {
          type: "Warning",
          reason: "DeprovisionFailed",
          message: `attempt ${attempt} of ${deps.config.deleteAttempts} failed (${reason}: ${message}); retrying in ${Math.max(1, Math.round(delay / 1000))} s`,
        },
      ],
      requeueAfterMs: delay,
    };
  }
  return {
    done: true,
    status: write({ errorReason: null, errorMessage: null }, [
      {
        type: ConditionType.Deprovisioned,
        status: "True",
        reason: ConditionReason.CleanedUp,
        message: "media ejected, boot override cleared, powered off",
      },
    ]),
    events: [
      {
        type: "Normal",
        reason: "Deprovisioned",
        message: "media ejected, boot override cleared, powered off; released",
      },
    ],
  };
}
