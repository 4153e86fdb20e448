// The Beskar7Machine reconciler (Cluster API's InfraMachine). It never talks to a BMC: it claims a
// PhysicalHost, writes its provisioning request into the host's spec, mirrors the host's progress
// in its own phase and conditions, and once the host is provisioned sets providerID, addresses and
// initialization.provisioned (the v1beta2 contract; ready and failureReason for v1beta1). Deleting
// the machine releases the host and waits until it is deprovisioned.
//
// Every step looks before it acts and the claim itself is conditioned on the host's
// resourceVersion, so a run repeated after a crash or a lost status write does no harm: the
// machine finds its host by consumerRef first.
import {
  Annotations,
  ConditionReason,
  ConditionType,
  HostState,
  Labels,
  MachineFailureReason,
  MachinePhase,
  ProvisioningStep,
  providerIDFor,
  type Beskar7Machine,
  type Beskar7MachineStatus,
  type CapiCluster,
  type CapiMachine,
  type ConsumerRef,
  type HostProvisioning,
  type MachinePhaseName,
  type PhysicalHost,
} from "../api";
import { setConditions, type ConditionInput } from "../lib/conditions";
import type { EventInput } from "../lib/events";
import type { FinalizeResult, RunResult } from "../lib/runtime";
import { chooseHosts, describeChoice, shortfalls } from "./claim";
import { provisioningRequest } from "./request";

/** How the machine controller reaches the objects around it (the API server, the workload cluster). */
export interface MachinePort {
  /** The Cluster API Machine owning this one (ownerReferences), if set and present. */
  ownerMachine(machine: Beskar7Machine): Promise<CapiMachine | undefined>;
  cluster(namespace: string, name: string): Promise<CapiCluster | undefined>;
  hosts(namespace: string): Promise<PhysicalHost[]>;
  host(namespace: string, name: string): Promise<PhysicalHost | undefined>;
  secretExists(namespace: string, name: string): Promise<boolean>;
  /**
   * Claims the host if unchanged since it was read (with the provisioning request too, when it is
   * known already); false when another writer got there first.
   */
  claim(host: PhysicalHost, consumer: ConsumerRef, request?: HostProvisioning): Promise<boolean>;
  /** Writes the provisioning request into the host's spec, if the host is still claimed by it. */
  request(host: PhysicalHost, provisioning: HostProvisioning): Promise<void>;
  /** Removes consumerRef and the request, if the host is still claimed by `consumerUID`. */
  release(host: PhysicalHost, consumerUID: string): Promise<void>;
  /** Adds or removes the CAPI paused annotation on the host (only one this controller added). */
  pauseHost(host: PhysicalHost, paused: boolean): Promise<void>;
  setProviderID(machine: Beskar7Machine, providerID: string): Promise<void>;
  /**
   * Sets spec.providerID on the workload cluster's Node whose systemUUID is given, where the
   * kubelet left it empty. Reached through the <cluster>-kubeconfig Secret.
   */
  linkNode(
    namespace: string,
    clusterName: string,
    systemUUID: string,
    providerID: string,
  ): Promise<"set" | "present" | "no-node" | "no-kubeconfig">;
}

export interface MachineConfig {
  /** Host label matched against the Machine's failure domain. */
  zoneLabel: string;
  /** A waiting machine looks again this often even without a host event (a safety net). */
  waitingRecheckMs: number;
  /** A provisioned machine looks for its Node this often until it is linked. */
  nodeCheckMs: number;
  /**
   * A claimed host whose BMC has been unreachable (or that has been in Error) this long is lost
   * for good: the machine fails terminally, so a MachineHealthCheck can remediate it.
   */
  hostLostAfterMs: number;
}

/** The value of the paused annotation this controller puts on hosts, so it removes only its own. */
export const PAUSED_BY_MACHINE = "beskar7-machine";

interface View {
  phase: MachinePhaseName;
  conditions: ConditionInput[];
  status?: Partial<Record<keyof Beskar7MachineStatus, unknown>>;
  events?: EventInput[];
  requeueAfterMs?: number;
}

export async function reconcileMachine(
  machine: Beskar7Machine,
  port: MachinePort,
  config: MachineConfig,
  now: Date = new Date(),
): Promise<RunResult> {
  return result(machine, await decide(machine, port, config, now), now);
}

async function decide(
  machine: Beskar7Machine,
  port: MachinePort,
  config: MachineConfig,
  now: Date,
): Promise<View> {
  const namespace = machine.metadata?.namespace ?? "default";
  const owner = await port.ownerMachine(machine);
  if (!owner) {
    return waiting(
      MachinePhase.Pending,
      ConditionReason.WaitingForOwnerMachine,
      "waiting for Cluster API to set the owner Machine",
    );
  }
  const clusterName = owner.spec?.clusterName ?? machine.metadata?.labels?.[Labels.clusterName];
  const cluster = clusterName ? await port.cluster(namespace, clusterName) : undefined;
  if (!cluster) {
    return waiting(
      MachinePhase.Pending,
      ConditionReason.WaitingForClusterInfrastructure,
      `Cluster ${clusterName ?? "(unnamed)"} not found`,
    );
  }
  const current = await currentHost(machine, port);

  if (paused(machine, cluster)) {
    if (current && !hostPausedByUs(current)) await port.pauseHost(current, true);
    return {
      phase: (machine.status?.phase as MachinePhaseName) ?? MachinePhase.Pending,
      conditions: [pausedCondition(true)],
    };
  }
  if (current && hostPausedByUs(current)) await port.pauseHost(current, false);
  const unpaused = pausedCondition(false);

  if (!cluster.status?.initialization?.infrastructureProvisioned) {
    return withPaused(
      unpaused,
      waiting(
        MachinePhase.Pending,
        ConditionReason.WaitingForClusterInfrastructure,
        `waiting for Cluster ${clusterName} infrastructure`,
      ),
    );
  }

  // Bootstrap data: the request carries the name of its Secret, and is written with the claim
  // when it is there already (one write, and no race with the host's own status writes). Once the
  // host holds the request, its Secret is the host's to read: no check per run.
  const dataSecret = owner.spec?.bootstrap?.dataSecretName;
  const dataReady =
    !!dataSecret &&
    !current?.spec?.provisioning &&
    (await port.secretExists(namespace, dataSecret));
  const request = dataReady ? provisioningRequest(machine.spec ?? {}, dataSecret) : undefined;

  // The host: the one claimed for this machine, else claim one.
  let host = current;
  if (!host) {
    if (machine.status?.hostRef)
      return withPaused(unpaused, hostLost(machine, "it no longer exists"));
    const failureDomain = owner.spec?.failureDomain ?? machine.spec?.failureDomain;
    const choice = chooseHosts(
      machine,
      await port.hosts(namespace),
      failureDomain,
      config.zoneLabel,
    );
    for (const candidate of choice.candidates.slice(0, 3)) {
      if (await port.claim(candidate, consumerOf(machine), request)) {
        host = candidate;
        break;
      }
    }
    if (!host) {
      const why = choice.candidates.length
        ? `${describeChoice(choice)}; lost the race for ${Math.min(3, choice.candidates.length)} host(s), retrying`
        : `no Available host matches: ${describeChoice(choice)}`;
      return withPaused(unpaused, {
        phase: MachinePhase.WaitingForHost,
        conditions: [
          {
            type: ConditionType.HostClaimed,
            status: "False",
            reason: ConditionReason.NoMatchingHost,
            message: why,
          },
        ],
        requeueAfterMs: choice.candidates.length ? 200 : config.waitingRecheckMs,
      });
    }
    return withPaused(unpaused, {
      phase: MachinePhase.Provisioning,
      conditions: [claimed(host)],
      status: { hostRef: { name: host.metadata!.name!, uid: host.metadata?.uid } },
      events: [
        {
          type: "Normal",
          reason: "HostClaimed",
          message: `claimed PhysicalHost ${host.metadata!.name}`,
        },
      ],
      requeueAfterMs: 0,
    });
  }

  if (host.metadata?.deletionTimestamp) {
    return withPaused(unpaused, hostLost(machine, "it is being deleted"));
  }
  const hostRef = { name: host.metadata!.name!, uid: host.metadata?.uid };
  const since = troubleSince(host);
  if (since !== undefined && now.getTime() - since >= config.hostLostAfterMs) {
    const minutes = Math.round((now.getTime() - since) / 60_000);
    return withPaused(
      unpaused,
      hostLost(
        machine,
        `${host.status?.errorReason ?? "its BMC is unreachable"} for ${minutes} min: ${host.status?.errorMessage ?? ""}`.trim(),
      ),
    );
  }
  const gaps = shortfalls(host, machine.spec?.hardwareRequirements);
  if (gaps.length) {
    return withPaused(
      unpaused,
      failed(
        MachineFailureReason.HardwareRequirementsNotMet,
        ConditionReason.RequirementsNotMet,
        `PhysicalHost ${hostRef.name} does not meet spec.hardwareRequirements: ${gaps.join(", ")}`,
        hostRef,
      ),
    );
  }
  const requirementsMet: ConditionInput = {
    type: ConditionType.HardwareRequirementsMet,
    status: "True",
    reason: ConditionReason.RequirementsMet,
  };
  /** A view of the claimed host's provisioning: phase, HostProvisioned, and status fields. */
  const onHost = (
    phase: MachinePhaseName,
    provisioned: Omit<ConditionInput, "type">,
    extra: Pick<View, "requeueAfterMs"> & { status?: View["status"] } = {},
  ): View =>
    withPaused(unpaused, {
      phase,
      conditions: [
        claimed(host),
        requirementsMet,
        { type: ConditionType.HostProvisioned, ...provisioned },
      ],
      status: { hostRef, ...extra.status },
      requeueAfterMs: extra.requeueAfterMs,
    });

  if (!dataSecret) {
    return onHost(MachinePhase.Pending, {
      status: "False",
      reason: ConditionReason.WaitingForBootstrapData,
      message: `waiting for Machine ${owner.metadata?.name} spec.bootstrap.dataSecretName`,
    });
  }
  if (!host.spec?.provisioning) {
    if (!request) {
      return onHost(
        MachinePhase.Pending,
        {
          status: "False",
          reason: ConditionReason.BootstrapDataMissing,
          message: `bootstrap data Secret ${namespace}/${dataSecret} named by Machine ${owner.metadata?.name} does not exist`,
        },
        { requeueAfterMs: config.waitingRecheckMs },
      );
    }
    await port.request(host, request);
    return onHost(MachinePhase.Provisioning, {
      status: "False",
      reason: ConditionReason.ProvisioningInProgress,
      message: `provisioning request written to PhysicalHost ${hostRef.name}`,
    });
  }

  // Mirror the host's progress.
  const state = host.status?.state;
  // The host's progress is for its current consumer (which is this machine, see claimedBy).
  const progressForUs =
    !!host.status?.provisioning?.consumerUID &&
    host.status.provisioning.consumerUID === host.spec?.consumerRef?.uid;
  if (state === HostState.Provisioned && progressForUs) {
    const providerID = providerIDFor(namespace, hostRef.name);
    if (machine.spec?.providerID !== providerID) await port.setProviderID(machine, providerID);
    const uuid = host.status?.hardwareDetails?.systemUUID;
    let node: string = "no-node";
    if (uuid && clusterName && !owner.status?.nodeRef) {
      node = await port.linkNode(namespace, clusterName, uuid, providerID);
    }
    const waitForNode = !owner.status?.nodeRef && node !== "set" && node !== "present";
    return onHost(
      MachinePhase.Provisioned,
      {
        status: "True",
        reason: ConditionReason.ProvisioningSucceeded,
        message: `PhysicalHost ${hostRef.name} provisioned`,
      },
      {
        status: {
          initialization: { provisioned: true },
          ready: true,
          addresses: host.status?.addresses?.length ? host.status.addresses : null,
          failureDomain: owner.spec?.failureDomain ?? machine.spec?.failureDomain ?? null,
          failureReason: null,
          failureMessage: null,
        },
        requeueAfterMs: waitForNode ? config.nodeCheckMs : undefined,
      },
    );
  }
  if (state === HostState.Error) {
    return onHost(MachinePhase.Provisioning, {
      status: "False",
      reason: host.status?.errorReason ?? ConditionReason.ProvisioningFailed,
      message: `PhysicalHost ${hostRef.name}: ${host.status?.errorMessage ?? "in Error"}`,
    });
  }
  // Only a step the host waits in (for the OS's signal) is named: the BMC steps before it are the
  // host's detail (its status.provisioning), and naming each made a status write of the machine
  // per BMC step, a third of the API server's writes when many machines provision at once.
  const hostStep = host.status?.provisioning?.currentStep;
  const step =
    hostStep === ProvisioningStep.AwaitBoot || hostStep === ProvisioningStep.AwaitInspection
      ? hostStep
      : undefined;
  // What holds the boot (no boot service, no UUID, no signal yet) is the host's to say: shown
  // here, where `clusterctl describe` looks, with its reason when it blocks.
  const boot = host.status?.conditions?.find(c => c.type === ConditionType.BootDelivered);
  const bootTrouble = boot?.status === "False" ? boot : undefined;
  const blocks = bootTrouble && bootTrouble.reason !== ConditionReason.BootstrapDataNotDelivered;
  return onHost(MachinePhase.Provisioning, {
    status: "False",
    reason: blocks ? bootTrouble.reason : ConditionReason.ProvisioningInProgress,
    message: `PhysicalHost ${hostRef.name} is ${state ?? "starting"}${step ? ` (step ${step})` : ""}${bootTrouble ? `: ${bootTrouble.message}` : ""}`,
  });
}

/** Deleting the machine: release the host, wait until it is deprovisioned, then let go. */
export async function finalizeMachine(
  machine: Beskar7Machine,
  port: MachinePort,
  now: Date = new Date(),
): Promise<FinalizeResult> {
  const host = await currentHost(machine, port);
  const namespace = machine.metadata?.namespace ?? "default";
  const owner = await port.ownerMachine(machine).catch(() => undefined);
  const clusterName = owner?.spec?.clusterName ?? machine.metadata?.labels?.[Labels.clusterName];
  const cluster = clusterName
    ? await port.cluster(namespace, clusterName).catch(() => undefined)
    : undefined;
  if (paused(machine, cluster)) {
    // clusterctl move deletes a paused source copy: the host stays claimed for the moved machine.
    return result(
      machine,
      { phase: MachinePhase.Deleting, conditions: [pausedCondition(true)] },
      now,
    );
  }
  if (host && claimedBy(machine, host)) {
    await port.release(host, host.spec!.consumerRef!.uid ?? "");
    return {
      ...result(
        machine,
        {
          phase: MachinePhase.Deprovisioning,
          conditions: [
            {
              type: ConditionType.HostClaimed,
              status: "False",
              reason: ConditionReason.Deprovisioning,
              message: `releasing PhysicalHost ${host.metadata?.name}`,
            },
          ],
          // The host's events bring this back (machine-controller.ts keeps the release); the
          // requeue is the backstop should one be missed.
          requeueAfterMs: 5_000,
        },
        now,
      ),
      events: [
        {
          type: "Normal",
          reason: "HostReleased",
          message: `released PhysicalHost ${host.metadata?.name}`,
        },
      ],
    };
  }
  const name = machine.status?.hostRef?.name;
  const released = name ? await port.host(namespace, name) : undefined;
  // Released, but the host still deprovisions what it did for this machine.
  const stillOurs =
    released &&
    !released.metadata?.deletionTimestamp &&
    !released.spec?.consumerRef &&
    !!released.status?.provisioning &&
    released.status?.state !== HostState.Error;
  if (stillOurs) {
    // Deprovisioning (media ejected, override cleared, powered off) runs on the host; its state
    // changes bring this back.
    return result(
      machine,
      {
        phase: MachinePhase.Deprovisioning,
        conditions: [
          {
            type: ConditionType.HostClaimed,
            status: "False",
            reason: ConditionReason.Deprovisioning,
            message: `waiting for PhysicalHost ${name} to be deprovisioned (${released.status?.state})`,
          },
        ],
        requeueAfterMs: 5_000,
      },
      now,
    );
  }
  return { done: true };
}

/** Since when the host has been unusable (in Error, or its BMC unreachable), if it is. */
function troubleSince(host: PhysicalHost): number | undefined {
  const bmc = host.status?.conditions?.find(c => c.type === ConditionType.BMCReachable);
  const ready = host.status?.conditions?.find(c => c.type === ConditionType.Ready);
  const marker =
    bmc?.status === "False" ? bmc : host.status?.state === HostState.Error ? ready : undefined;
  const at = marker?.lastTransitionTime ? Date.parse(marker.lastTransitionTime) : NaN;
  return Number.isNaN(at) ? undefined : at;
}

/**
 * Whether the host is claimed by this machine: its consumerRef names the machine's UID, or (after
 * `clusterctl move`, which gives every object a new UID) its kind, namespace and name, for a
 * machine whose providerID already names this host. A new machine of the same name has no
 * providerID yet, so it is never mistaken for the old one.
 */
export function claimedBy(machine: Beskar7Machine, host: PhysicalHost): boolean {
  const ref = host.spec?.consumerRef;
  const uid = machine.metadata?.uid;
  if (!ref) return false;
  if (uid && ref.uid === uid) return true;
  const namespace = machine.metadata?.namespace;
  return (
    ref.kind === (machine.kind ?? "Beskar7Machine") &&
    ref.name === machine.metadata?.name &&
    (ref.namespace ?? host.metadata?.namespace) === namespace &&
    !!machine.spec?.providerID &&
    machine.spec.providerID === providerIDFor(namespace ?? "default", host.metadata?.name ?? "")
  );
}

/** The host claimed for this machine: by consumerRef first, never by providerID alone. */
async function currentHost(
  machine: Beskar7Machine,
  port: MachinePort,
): Promise<PhysicalHost | undefined> {
  const namespace = machine.metadata?.namespace ?? "default";
  const ref = machine.status?.hostRef?.name;
  if (ref) {
    const host = await port.host(namespace, ref);
    if (host && claimedBy(machine, host)) return host;
  }
  // The index's copy is slim and may be stale: read the host itself (a claimed host's watched
  // copy, else from the API server).
  const listed = (await port.hosts(namespace)).find(h => claimedBy(machine, h));
  const host = listed && (await port.host(namespace, listed.metadata!.name!));
  return host && claimedBy(machine, host) ? host : undefined;
}

function consumerOf(machine: Beskar7Machine): ConsumerRef {
  return {
    apiVersion: machine.apiVersion ?? "infrastructure.cluster.x-k8s.io/v1beta1",
    kind: machine.kind ?? "Beskar7Machine",
    name: machine.metadata!.name!,
    namespace: machine.metadata?.namespace,
    uid: machine.metadata?.uid,
  };
}

function paused(machine: Beskar7Machine, cluster: CapiCluster | undefined): boolean {
  return (
    !!cluster?.spec?.paused ||
    Annotations.paused in (machine.metadata?.annotations ?? {}) ||
    Annotations.paused in (cluster?.metadata?.annotations ?? {})
  );
}

function hostPausedByUs(host: PhysicalHost): boolean {
  return host.metadata?.annotations?.[Annotations.paused] === PAUSED_BY_MACHINE;
}

function pausedCondition(on: boolean): ConditionInput {
  return on
    ? {
        type: ConditionType.Paused,
        status: "True",
        reason: ConditionReason.Paused,
        message: "the Cluster or the machine is paused: no action, no BMC call",
      }
    : { type: ConditionType.Paused, status: "False", reason: ConditionReason.NotPaused };
}

function withPaused(condition: ConditionInput, view: View): View {
  return { ...view, conditions: [condition, ...view.conditions] };
}

function waiting(phase: MachinePhaseName, reason: string, message: string): View {
  return {
    phase,
    conditions: [{ type: ConditionType.HostClaimed, status: "False", reason, message }],
  };
}

function claimed(host: PhysicalHost): ConditionInput {
  return {
    type: ConditionType.HostClaimed,
    status: "True",
    reason: ConditionReason.HostClaimed,
    message: `PhysicalHost ${host.metadata?.name}`,
  };
}

function hostLost(machine: Beskar7Machine, why: string): View {
  return failed(
    MachineFailureReason.HostLost,
    ConditionReason.HostLost,
    `PhysicalHost ${machine.status?.hostRef?.name} claimed for this machine is lost: ${why}`,
    machine.status?.hostRef,
  );
}

/** A terminal failure: Ready False with the reason, and the v1beta1 failure fields. */
function failed(failureReason: string, reason: string, message: string, hostRef: unknown): View {
  return {
    phase: MachinePhase.Failed,
    conditions: [{ type: ConditionType.HostProvisioned, status: "False", reason, message }],
    status: { failureReason, failureMessage: message, ...(hostRef ? { hostRef } : {}) },
    events: [{ type: "Warning", reason, message }],
  };
}

/** The status update for a view: phase, conditions with Ready summarising them. */
function result(machine: Beskar7Machine, view: View, now: Date): RunResult {
  const before = machine.status ?? {};
  const provisioned = view.phase === MachinePhase.Provisioned;
  const blocking = view.conditions.find(
    c => c.status !== "True" && c.type !== ConditionType.Paused,
  );
  const isPaused = view.conditions.some(
    c => c.type === ConditionType.Paused && c.status === "True",
  );
  const ready: ConditionInput = provisioned
    ? { type: ConditionType.Ready, status: "True", reason: ConditionReason.Ready, message: "" }
    : isPaused
      ? {
          type: ConditionType.Ready,
          status: "Unknown",
          reason: ConditionReason.Paused,
          message: "paused",
        }
      : {
          type: ConditionType.Ready,
          status: "False",
          reason: blocking?.reason ?? ConditionReason.NotReady,
          message: blocking?.message ?? view.phase,
        };
  const conditions = setConditions(
    before.conditions,
    [ready, ...view.conditions],
    machine.metadata?.generation,
    now,
  );
  const firstTime = (e: EventInput) => before.phase !== view.phase || e.type === "Normal";
  return {
    status: {
      ...view.status,
      phase: view.phase,
      conditions,
      observedGeneration: machine.metadata?.generation,
    },
    events: (view.events ?? []).filter(firstTime),
    requeueAfterMs: view.requeueAfterMs,
  };
}
