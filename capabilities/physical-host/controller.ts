// The PhysicalHost reconciler: a small function of the observed host. It picks the handler for
// the host's state from the table in states.ts, turns a failure into a Transition by the state's
// failure policy, and applies the Transition with one status patch, then records events.
import {
  Annotations,
  ConditionReason,
  ConditionType,
  HostState,
  HostStateDescriptions,
  type HostStateName,
  type PhysicalHost,
  type PhysicalHostStatus,
} from "../api";
import { setConditions, type ConditionInput } from "../lib/conditions";
import type { EventRecorder } from "../lib/events";
import type { Outcome } from "../lib/workqueue";
import type { BmcConnection, BmcConnector } from "./bmc";
import {
  failure,
  handlers,
  type HostControllerConfig,
  type StatusUpdate,
  type Transition,
} from "./states";

export interface HostControllerDeps {
  connect: BmcConnector;
  /** Merge-patches the status subresource (null removes a field). */
  patchStatus: (host: PhysicalHost, status: StatusUpdate) => Promise<void>;
  removeAnnotations: (host: PhysicalHost, keys: string[]) => Promise<void>;
  record: EventRecorder;
  config: HostControllerConfig;
  now?: () => Date;
  onTransition?: (from: HostStateName | undefined, to: HostStateName) => void;
}

/** States in which a host is usable: reachable and either free or doing its job. */
const READY_STATES: string[] = [HostState.Available, HostState.Claimed, HostState.Provisioned];

/**
 * What of a host, when it changes, needs a reconcile: the spec (its generation), annotations
 * (reboot, refresh, paused, detached, force-delete) and labels. Status is written by this
 * controller alone, so an event that changes only status is the echo of its own patch and needs
 * no run: without this every enrollment cost one more BMC request for nothing.
 */
export function reconcileFingerprint(host: PhysicalHost): string {
  const meta = host.metadata ?? {};
  return JSON.stringify([meta.generation, sorted(meta.annotations), sorted(meta.labels)]);
}

function sorted(map: Record<string, string> | undefined): [string, string][] {
  return Object.entries(map ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

export async function reconcileHost(
  host: PhysicalHost,
  deps: HostControllerDeps,
): Promise<Outcome> {
  const now = deps.now?.() ?? new Date();
  const annotations = host.metadata?.annotations ?? {};
  const current = host.status?.state as HostStateName | undefined;

  // Detached and paused: no BMC calls at all while the annotation is there.
  if (Annotations.detached in annotations) {
    await apply(
      host,
      { state: HostState.Unmanaged, conditions: [paused(true, "detached annotation present")] },
      deps,
      now,
      "skipped",
    );
    return {};
  }
  if (Annotations.paused in annotations) {
    await apply(
      host,
      {
        state: current ?? HostState.Enrolling,
        conditions: [paused(true, "Cluster API paused annotation present")],
      },
      deps,
      now,
      "skipped",
    );
    return {};
  }

  // Back from Unmanaged (or new): enroll, which finds the settled state again.
  const state: HostStateName =
    !current || current === HostState.Unmanaged ? HostState.Enrolling : current;
  const subject = state === current ? host : { ...host, status: { ...host.status, state } };

  let connection: BmcConnection | undefined;
  let transition: Transition;
  let failed = false;
  try {
    transition = await handlers[state]({
      host: subject,
      now,
      config: deps.config,
      bmc: async () => (connection ??= await deps.connect(subject)).bmc,
    });
  } catch (err) {
    failed = true;
    transition = failure(subject, err, deps.config);
  } finally {
    connection?.release();
  }
  transition.conditions = [paused(false), ...(transition.conditions ?? [])];
  await apply(host, transition, deps, now, failed ? "failed" : "succeeded");
  return transition.requeueAfterMs === undefined
    ? {}
    : { requeueAfterMs: transition.requeueAfterMs };
}

/** Writes a Transition: one status patch (only when something changed), then annotations and
 *  events, so an event never reports a change the API server did not take. */
async function apply(
  host: PhysicalHost,
  t: Transition,
  deps: HostControllerDeps,
  now: Date,
  ran: "succeeded" | "failed" | "skipped",
): Promise<void> {
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

  if (changes(before, update)) await deps.patchStatus(host, update);
  if (t.removeAnnotations?.length) await deps.removeAnnotations(host, t.removeAnnotations);
  if (before.state !== t.state) {
    deps.onTransition?.(before.state as HostStateName | undefined, t.state);
    if (before.state) {
      await deps.record(host, {
        type: "Normal",
        reason: "StateChanged",
        message: `${before.state} -> ${t.state}`,
      });
    }
  }
  for (const event of t.events ?? []) await deps.record(host, event);
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
  const pausedNow = inputs.find(c => c.type === ConditionType.Paused)?.status === "True";
  if (pausedNow) {
    return {
      type: ConditionType.Ready,
      status: "Unknown",
      reason: ConditionReason.Paused,
      message: "reconciliation is paused",
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
  if (!READY_STATES.includes(state)) {
    return {
      type: ConditionType.Ready,
      status: "False",
      reason: ConditionReason.NotReady,
      message: `${state}: ${HostStateDescriptions[state as HostStateName] ?? ""}`.trim(),
    };
  }
  return {
    type: ConditionType.Ready,
    status: "True",
    reason: ConditionReason.Ready,
    message: `${state}`,
  };
}

function paused(on: boolean, message = ""): ConditionInput {
  return {
    type: ConditionType.Paused,
    status: on ? "True" : "False",
    reason: on ? ConditionReason.Paused : ConditionReason.NotPaused,
    message,
  };
}

/** Whether applying update would change anything (null means "remove"). */
function changes(before: PhysicalHostStatus, update: StatusUpdate): boolean {
  for (const [key, value] of Object.entries(update)) {
    const old = (before as Record<string, unknown>)[key];
    if (value === null ? old !== undefined : canonical(old) !== canonical(value)) return true;
  }
  return false;
}

/** JSON with sorted keys and no undefined fields: the API server returns objects with sorted
 *  keys, so insertion order must not count as a change. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)),
        )
      : v,
  );
}
