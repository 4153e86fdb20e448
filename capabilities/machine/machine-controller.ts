// The Beskar7Machine controller on the shared runtime: the port through which its reconciler
// reaches the API server and workload clusters, its limits, and the watches that wake it (a host
// that becomes claimable wakes the machines waiting in its namespace; a host's progress wakes the
// machine that claimed it; a Cluster API Machine or Cluster change wakes the machines it concerns,
// and its watched copy is what the reconciler reads).
// Everything with side effects is created on first use: capability files run during `pepr build`.
import { SingleFlightCache } from "../../boot/single-flight-cache";
import {
  API_GROUP,
  API_VERSION,
  Annotations,
  CAPI_GROUP,
  CAPI_VERSION,
  Kinds,
  Labels,
  Plurals,
  type Beskar7Machine,
  type CapiCluster,
  type CapiMachine,
  type PhysicalHost,
} from "../api";
import { config } from "../lib/config";
import { paths } from "../lib/kube";
import { HOST_CLAIMED, HOST_CLAIMING, publish } from "../lib/object-events";
import { Controller, onShutdown, orUndefinedIfGone, sharedServices } from "../lib/runtime";
import { WatchedCopies } from "../lib/watched-copies";
import {
  finalizeMachine,
  PAUSED_BY_MACHINE,
  reconcileMachine,
  type MachinePort,
} from "./controller";
import { HostIndex } from "./host-index";
import { WorkloadClusters } from "./workload";

const hosts = new HostIndex();
/** Cluster API Machines whose infrastructure is a Beskar7Machine, and Clusters, as watched. */
const capiMachines = new WatchedCopies<CapiMachine>();
const clusters = new WatchedCopies<CapiCluster>();
/** Hosts claimed by a Beskar7Machine, whole, as watched (the index keeps slim copies of all). */
const claimedHosts = new WatchedCopies<PhysicalHost>();
/** Machines (namespace/name) that hold no host yet, by namespace. */
const waiting = new Map<string, Set<string>>();
/** Machines by cluster (namespace/cluster), for Cluster events. */
const byCluster = new Map<string, Set<string>>();
/**
 * Hosts (namespace/host) released by a machine being deleted, to that machine's name: once
 * released, the host's consumerRef no longer names the machine, yet its finalize waits for the
 * host's deprovisioning, so the host's events must still reach it.
 */
const releasedBy = new Map<string, string>();

const hostPath = (namespace: string, name: string) =>
  paths.object(API_GROUP, API_VERSION, Plurals.PhysicalHost, namespace, name);
const machinePath = (namespace: string, name: string) =>
  paths.object(API_GROUP, API_VERSION, Plurals.Beskar7Machine, namespace, name);

let port: MachinePort | undefined;

/**
 * Bootstrap Secrets seen to exist, for 30 s: a machine waiting for a host checks its Secret on
 * every run, and in a burst of claims each is woken by every host that frees up (three GETs per
 * machine). A missing Secret is not kept, so its creation is seen at the next run; one deleted
 * after it was seen is the boot service's to report when it cannot serve it.
 */
const BOOTSTRAP_SECRET_SEEN_MS = 30_000;
const bootstrapSecrets = new SingleFlightCache<boolean>({
  ttlMs: exists => (exists ? BOOTSTRAP_SECRET_SEEN_MS : 0),
  maxEntries: 10_000,
});

function machinePort(): MachinePort {
  if (port) return port;
  const { kube } = sharedServices();
  const workloads = new WorkloadClusters(kube);
  onShutdown("workload clusters", () => workloads.close(), 1);
  const conflict = (err: unknown) => {
    const status = (err as { status?: number }).status;
    return status === 409 || status === 422;
  };
  port = {
    ownerMachine: async machine => {
      const owner = machine.metadata?.ownerReferences?.find(
        r => r.kind === "Machine" && r.apiVersion?.startsWith(`${CAPI_GROUP}/`),
      );
      if (!owner) return undefined;
      const ns = machine.metadata?.namespace ?? "default";
      return (
        capiMachines.get(ns, owner.name) ??
        orUndefinedIfGone(
          kube.get<CapiMachine>(paths.object(CAPI_GROUP, CAPI_VERSION, "machines", ns, owner.name)),
        )
      );
    },
    cluster: async (namespace, name) =>
      clusters.get(namespace, name) ??
      orUndefinedIfGone(
        kube.get<CapiCluster>(paths.object(CAPI_GROUP, CAPI_VERSION, "clusters", namespace, name)),
      ),
    hosts: async namespace => hosts.list(namespace),
    host: async (namespace, name) =>
      claimedHosts.get(namespace, name) ??
      orUndefinedIfGone(kube.get<PhysicalHost>(hostPath(namespace, name))),
    secretExists: (namespace, name) =>
      bootstrapSecrets.get(
        `${namespace}/${name}`,
        async () =>
          !!(await orUndefinedIfGone(kube.get(paths.object("", "v1", "secrets", namespace, name)))),
      ),
    claim: async (host, consumer, request) => {
      // The host controller reads the host's system meanwhile, for the run a won claim starts.
      publish(HOST_CLAIMING, host);
      try {
        // The resourceVersion makes this a conditional update: of machines racing for the host,
        // one wins and the others get 409 and try their next candidate. The claim also carries
        // clusterctl's block-move annotation, which a claimed host keeps while not paused
        // (physical-host/move.ts): written here, the host's first run has no second write to make
        // before its first BMC action.
        const claimed = await kube.mergePatch<PhysicalHost>(
          hostPath(host.metadata!.namespace!, host.metadata!.name!),
          {
            metadata: {
              resourceVersion: host.metadata?.resourceVersion,
              annotations: { [Annotations.blockMove]: "" },
            },
            spec: { consumerRef: consumer, ...(request ? { provisioning: request } : {}) },
          },
        );
        publish(HOST_CLAIMED, claimed);
        return true;
      } catch (err) {
        if (conflict(err)) return false;
        throw err;
      }
    },
    request: async (host, provisioning) => {
      // Conditioned on the claim, not on the resourceVersion: the host controller writes the
      // host's status right after a claim, and the request must not lose a race with that.
      await kube.jsonPatch(hostPath(host.metadata!.namespace!, host.metadata!.name!), [
        { op: "test", path: "/spec/consumerRef/uid", value: host.spec?.consumerRef?.uid },
        { op: "add", path: "/spec/provisioning", value: provisioning },
      ] as never);
    },
    release: async (host, consumerUID) => {
      const consumer = host.spec?.consumerRef?.name;
      if (consumer) releasedBy.set(key(host.metadata?.namespace, host.metadata?.name), consumer);
      try {
        await kube.jsonPatch(hostPath(host.metadata!.namespace!, host.metadata!.name!), [
          { op: "test", path: "/spec/consumerRef/uid", value: consumerUID },
          { op: "remove", path: "/spec/consumerRef" },
          ...(host.spec?.provisioning
            ? [{ op: "remove" as const, path: "/spec/provisioning" }]
            : []),
        ] as never);
      } catch (err) {
        if (!conflict(err) && (err as { status?: number }).status !== 404) throw err;
      }
    },
    pauseHost: async (host, paused) => {
      await kube.mergePatch(hostPath(host.metadata!.namespace!, host.metadata!.name!), {
        metadata: { annotations: { [Annotations.paused]: paused ? PAUSED_BY_MACHINE : null } },
      });
    },
    setProviderID: async (machine, providerID) => {
      await kube.mergePatch(machinePath(machine.metadata!.namespace!, machine.metadata!.name!), {
        spec: { providerID },
      });
    },
    linkNode: (namespace, clusterName, uuid, providerID) =>
      workloads.linkNode(namespace, clusterName, uuid, providerID),
  };
  return port;
}

/**
 * What of a machine needs a run when it changes: spec, annotations, labels and its owners (Cluster
 * API sets the owner Machine without a new generation).
 */
function machineFingerprint(machine: Beskar7Machine): string {
  const m = machine.metadata ?? {};
  return JSON.stringify([
    m.generation,
    m.annotations,
    m.labels,
    (m.ownerReferences ?? []).map(r => r.uid),
  ]);
}

export const machineController = new Controller<Beskar7Machine>({
  name: "beskar7machine",
  resource: { group: API_GROUP, version: API_VERSION, plural: Plurals.Beskar7Machine },
  reconcile: machine =>
    reconcileMachine(machine, machinePort(), {
      zoneLabel: config.zoneLabel,
      waitingRecheckMs: config.machineWaitingRecheckMs,
      nodeCheckMs: config.nodeCheckIntervalMs,
      hostLostAfterMs: config.hostLostAfterMs,
    }),
  finalize: machine => finalizeMachine(machine, machinePort()),
  fingerprint: machineFingerprint,
  limits: {
    concurrency: config.maxConcurrentReconciles,
    backoff: { baseMs: config.errorBackoffBaseMs, maxMs: config.errorBackoffMaxMs },
  },
});

const key = (namespace: string | undefined, name: string | undefined) =>
  `${namespace ?? ""}/${name ?? ""}`;

function track(map: Map<string, Set<string>>, group: string, member: string, on: boolean): void {
  let set = map.get(group);
  if (on) {
    if (!set) map.set(group, (set = new Set()));
    set.add(member);
  } else {
    set?.delete(member);
    if (set && !set.size) map.delete(group);
  }
}

/** A Beskar7Machine event. */
export function machineChanged(machine: Beskar7Machine): void {
  const ns = machine.metadata?.namespace;
  const name = machine.metadata?.name ?? "";
  track(waiting, ns ?? "", name, !machine.status?.hostRef && !machine.metadata?.deletionTimestamp);
  const cluster = machine.metadata?.labels?.[Labels.clusterName];
  if (cluster) track(byCluster, key(ns, cluster), name, true);
  machineController.enqueue(machine);
}

export function machineGone(machine: Beskar7Machine): void {
  const ns = machine.metadata?.namespace ?? "";
  const hostName = machine.status?.hostRef?.name;
  if (hostName && releasedBy.get(key(ns, hostName)) === machine.metadata?.name) {
    releasedBy.delete(key(ns, hostName));
  }
  track(waiting, ns, machine.metadata?.name ?? "", false);
  const cluster = machine.metadata?.labels?.[Labels.clusterName];
  if (cluster) track(byCluster, key(ns, cluster), machine.metadata?.name ?? "", false);
  machineController.deleted(machine);
}

/** A PhysicalHost event: its claimant follows its progress; a free host wakes waiting machines. */
export function hostChanged(host: PhysicalHost): void {
  const ns = host.metadata?.namespace ?? "";
  const claimable = hosts.put(host);
  const consumer = host.spec?.consumerRef;
  claimedHosts.put(host, consumer?.kind === Kinds.Beskar7Machine);
  if (consumer?.kind === Kinds.Beskar7Machine) {
    machineController.requeue(consumer.namespace ?? ns, consumer.name, 0);
  }
  // A host that was claimed and is released also matters to its former machine: the release
  // completes when the host is deprovisioned, which its machine's finalize waits for.
  const hostKey = key(ns, host.metadata?.name);
  const former = releasedBy.get(hostKey);
  if (former && former !== consumer?.name) {
    machineController.requeue(ns, former, 0);
    if (!host.status?.provisioning) releasedBy.delete(hostKey);
  }
  if (claimable) {
    for (const name of waiting.get(ns) ?? []) machineController.requeue(ns, name, 0);
  }
}

export function hostGone(host: PhysicalHost): void {
  hosts.remove(host);
  claimedHosts.remove(host);
  const consumer = host.spec?.consumerRef;
  if (consumer?.kind === Kinds.Beskar7Machine) {
    machineController.requeue(consumer.namespace ?? host.metadata?.namespace, consumer.name, 0);
  }
}

/** A Cluster API Machine changed (bootstrap data, failure domain, nodeRef, deletion). */
export function capiMachineChanged(machine: CapiMachine, deleted = false): void {
  const ref = machine.spec?.infrastructureRef;
  const name = ref?.kind === Kinds.Beskar7Machine ? ref.name : undefined;
  capiMachines.put(machine, !!name && !deleted);
  if (name) machineController.requeue(machine.metadata?.namespace, name, 0);
}

/** A Cluster changed (paused, infrastructure provisioned) or is gone: its machines run again. */
export function clusterChanged(cluster: CapiCluster, deleted = false): void {
  if (deleted) clusters.remove(cluster);
  else clusters.put(cluster);
  const ns = cluster.metadata?.namespace;
  for (const name of byCluster.get(key(ns, cluster.metadata?.name)) ?? []) {
    machineController.requeue(ns, name, 0);
  }
}
