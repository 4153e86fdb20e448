// The PhysicalHost reconciler: a small function of the observed host. It picks the handler for
// the host's state from the state table (states.ts), turns a failure into a Transition by the
// state's failure policy, and returns what to write: the whole status update (conditions and
// Ready included) for the runtime to apply in one patch, then annotations and events.
import {
  Annotations,
  ConditionReason,
  ConditionType,
  HostState,
  type HostStateName,
  type PhysicalHost,
  type PhysicalHostStatus,
} from "../api";
import { findCondition, setConditions, type ConditionInput } from "../lib/conditions";
import { abortable, type RunResult } from "../lib/runtime";
import { NEXT_RUN_SOON_MS, type BmcConnection, type BmcConnector } from "./bmc";
import type { BootServiceAccess } from "./boot-session";
import { moveAnnotations, restoredStatus } from "./move";
import {
  failure,
  HostStateTable,
  type HostControllerConfig,
  type StatusUpdate,
  type Transition,
} from "./states";

export interface HostControllerDeps {
  connect: BmcConnector;
  config: HostControllerConfig;
  now?: () => Date;
  /** The boot service (not configured when omitted). */
  bootService?: BootServiceAccess;
}

/**
 * What of a host, when it changes, needs a reconcile: the spec (its generation), annotations
 * (reboot, refresh, paused, detached, force-delete) and labels. Status is written by this
 * controller alone, so an event that changes only status is the echo of its own patch and needs
 * no run: without this every enrollment cost one more BMC request for nothing. The exception is
 * what the boot service writes (status.boot's signals), which a waiting host must see at once.
 */
export function reconcileFingerprint(host: PhysicalHost): string {
  const meta = host.metadata ?? {};
  const boot = host.status?.boot;
  return JSON.stringify([
    meta.generation,
    sorted(meta.annotations),
    sorted(meta.labels),
    ...(boot?.configFetchedTime || boot?.reportedTime
      ? [boot.configFetchedTime ?? "", boot.reportedTime ?? ""]
      : []),
  ]);
}

function sorted(map: Record<string, string> | undefined): [string, string][] {
  return Object.entries(map ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * One reconcile. `signal` fires when the host starts being deleted (or the operator stops): every
 * BMC call checks it first, so the run stops before its next BMC action and the runtime moves on
 * to finalize.
 */
export async function reconcileHost(
  host: PhysicalHost,
  deps: HostControllerDeps,
  signal: AbortSignal = new AbortController().signal,
): Promise<RunResult> {
  const now = deps.now?.() ?? new Date();
  const annotations = host.metadata?.annotations ?? {};
  const current = host.status?.state as HostStateName | undefined;

  // A claimed host moved by clusterctl arrives without status: restore it, no BMC call.
  const restored = restoredStatus(host);
  if (restored) {
    return {
      status: restored as Record<string, unknown>,
      annotations: { [Annotations.savedStatus]: null },
      events: [
        {
          type: "Normal",
          reason: "StatusRestored",
          message: `status restored from the ${Annotations.savedStatus} annotation (state ${restored.state})`,
        },
      ],
      requeueAfterMs: 0,
    };
  }

  // Detached and paused: no BMC calls at all while the annotation is there; the state stays.
  if (Annotations.detached in annotations || Annotations.paused in annotations) {
    const detached = Annotations.detached in annotations;
    return result(
      host,
      {
        state: current ?? HostState.Enrolling,
        conditions: detached
          ? [detachedCondition(true)]
          : [pausedCondition(true, "Cluster API paused annotation present")],
      },
      now,
      "skipped",
    );
  }

  // New, back from detached, or in a state without a handler: enroll, which finds the settled
  // state again (the BMC may have been changed by hand while detached).
  const detachedBefore = findCondition(host.status?.conditions, ConditionType.Detached);
  const wasDetached = detachedBefore?.status === "True";
  const state: HostStateName =
    !current || wasDetached || !HostStateTable[current]?.handler ? HostState.Enrolling : current;
  const subject = state === current ? host : { ...host, status: { ...host.status, state } };

  let connection: BmcConnection | undefined;
  let transition: Transition | undefined;
  let failed = false;
  try {
    transition = await HostStateTable[state].handler!({
      host: subject,
      now,
      config: deps.config,
      bootService: deps.bootService,
      bmc: async () => {
        signal.throwIfAborted();
        connection ??= await deps.connect(subject);
        return abortable(connection.bmc, signal);
      },
    });
  } catch (err) {
    if (signal.aborted) throw err; // deletion began: the runtime finalizes next
    failed = true;
    transition = failure(subject, err, deps.config);
  } finally {
    // The steps of a provisioning (and of an enrolment) follow each other at once: their BMC's
    // sockets are kept for the next run, a TLS handshake each spared; otherwise closed now.
    connection?.release({
      soon: !failed && (transition?.requeueAfterMs ?? Infinity) <= NEXT_RUN_SOON_MS,
    });
  }
  // Detached is reported once a host has been detached, and False from then on.
  transition.conditions = [
    pausedCondition(false),
    ...(detachedBefore ? [detachedCondition(false)] : []),
    ...(transition.conditions ?? []),
  ];
  return result(host, transition, now, failed ? "failed" : "succeeded");
}

/** A Transition as the runtime writes it: one status update, then annotations and events. */
function result(
  host: PhysicalHost,
  t: Transition,
  now: Date,
  ran: "succeeded" | "failed" | "skipped",
): RunResult {
  const before = host.status ?? {};
  const update: StatusUpdate = { ...t.status, state: t.state };
  if (ran === "succeeded" && before.errorReason && !("errorReason" in (t.status ?? {}))) {
    // A handler that succeeded clears the last error (paused or detached hosts keep theirs).
    Object.assign(update, { errorReason: null, errorMessage: null, errorCount: null });
  }

  const merged = { ...before, ...update } as PhysicalHostStatus;
  const conditions = setConditions(
    before.conditions,
    [...(t.conditions ?? []), ready(merged, t.conditions ?? [], before)],
    host.metadata?.generation,
    now,
  );
  update.conditions = conditions;
  update.ready = conditions.find(c => c.type === ConditionType.Ready)?.status === "True";
  update.observedGeneration = host.metadata?.generation;

  const events = [...(t.events ?? [])];
  if (before.state && before.state !== t.state) {
    events.unshift({
      type: "Normal",
      reason: "StateChanged",
      message: `${before.state} -> ${t.state}`,
    });
  }
  const annotations: Record<string, string | null> = {
    ...moveAnnotations({ ...host, status: merged }),
    ...Object.fromEntries((t.removeAnnotations ?? []).map(key => [key, null])),
  };
  return {
    status: update as Record<string, unknown>,
    annotations: Object.keys(annotations).length ? annotations : undefined,
    events,
    requeueAfterMs: t.requeueAfterMs,
  };
}

/** Ready summarises: the state is a usable one and nothing says the BMC is failing. */
function ready(
  status: PhysicalHostStatus,
  inputs: ConditionInput[],
  before: PhysicalHostStatus,
): ConditionInput {
  const state = status.state ?? HostState.Enrolling;
  const bmc =
    inputs.find(c => c.type === ConditionType.BMCReachable) ??
    before.conditions?.find(c => c.type === ConditionType.BMCReachable);
  const on = (type: string) => inputs.find(c => c.type === type)?.status === "True";
  if (on(ConditionType.Detached) || on(ConditionType.Paused)) {
    return {
      type: ConditionType.Ready,
      status: "Unknown",
      reason: on(ConditionType.Detached) ? ConditionReason.Detached : ConditionReason.Paused,
      message: on(ConditionType.Detached)
        ? "detached: the controller makes no BMC calls"
        : "reconciliation is paused",
    };
  }
  if (bmc && bmc.status !== "True") {
    return {
      type: ConditionType.Ready,
      status: "False",
      reason: bmc.reason,
      message: bmc.message ?? "",
    };
  }
  const facts = HostStateTable[state as HostStateName];
  if (!facts?.ready) {
    return {
      type: ConditionType.Ready,
      status: "False",
      reason: ConditionReason.NotReady,
      message: `${state}: ${facts?.description ?? ""}`.trim(),
    };
  }
  return {
    type: ConditionType.Ready,
    status: "True",
    reason: ConditionReason.Ready,
    message: `${state}`,
  };
}

function pausedCondition(on: boolean, message = ""): ConditionInput {
  return {
    type: ConditionType.Paused,
    status: on ? "True" : "False",
    reason: on ? ConditionReason.Paused : ConditionReason.NotPaused,
    message,
  };
}

function detachedCondition(on: boolean): ConditionInput {
  return {
    type: ConditionType.Detached,
    status: on ? "True" : "False",
    reason: on ? ConditionReason.Detached : ConditionReason.NotDetached,
    message: on ? "detached annotation present: no BMC calls" : "",
  };
}
