// The Beskar7Cluster controller on the shared runtime: the port through which its reconciler reads
// the owner Cluster, the hosts' zones and the control-plane machines, and the watches that wake it
// (its owner Cluster; a provisioned control-plane Beskar7Machine while the endpoint is empty).
import {
  API_GROUP,
  API_VERSION,
  CAPI_GROUP,
  CAPI_VERSION,
  CONTROL_PLANE_LABEL,
  Kinds,
  Labels,
  Plurals,
  type Beskar7Cluster,
  type Beskar7Machine,
  type CapiCluster,
  type CapiMachine,
  type PhysicalHost,
} from "../api";
import { config } from "../lib/config";
import { paths } from "../lib/kube";
import { Controller, orUndefinedIfGone, sharedServices } from "../lib/runtime";
import { reconcileCluster, type ClusterPort } from "./controller";

let port: ClusterPort | undefined;

function clusterPort(): ClusterPort {
  if (port) return port;
  const { kube } = sharedServices();
  const collection = (group: string, version: string, plural: string, ns: string) =>
    paths.collection(group, version, plural, ns);
  port = {
    ownerCluster: async cluster => {
      const owner = cluster.metadata?.ownerReferences?.find(
        r => r.kind === "Cluster" && r.apiVersion?.startsWith(`${CAPI_GROUP}/`),
      );
      if (!owner) return undefined;
      const ns = cluster.metadata?.namespace ?? "default";
      return orUndefinedIfGone(
        kube.get<CapiCluster>(paths.object(CAPI_GROUP, CAPI_VERSION, "clusters", ns, owner.name)),
      );
    },
    hostZones: async namespace => {
      const selector = encodeURIComponent(config.zoneLabel);
      const list = await kube.get<{ items?: PhysicalHost[] }>(
        `${collection(API_GROUP, API_VERSION, Plurals.PhysicalHost, namespace)}?labelSelector=${selector}`,
      );
      return [
        ...new Set(
          (list.items ?? []).map(h => h.metadata?.labels?.[config.zoneLabel]).filter(Boolean),
        ),
      ] as string[];
    },
    controlPlaneAddress: async (namespace, clusterName) => {
      const selector = encodeURIComponent(
        `${Labels.clusterName}=${clusterName},${CONTROL_PLANE_LABEL}`,
      );
      const machines = await kube.get<{ items?: CapiMachine[] }>(
        `${collection(CAPI_GROUP, CAPI_VERSION, "machines", namespace)}?labelSelector=${selector}`,
      );
      const sorted = (machines.items ?? []).sort((a, b) =>
        String(a.metadata?.creationTimestamp ?? "").localeCompare(
          String(b.metadata?.creationTimestamp ?? ""),
        ),
      );
      for (const machine of sorted) {
        const ref = machine.spec?.infrastructureRef;
        if (ref?.kind !== Kinds.Beskar7Machine || !ref.name) continue;
        const infra = await orUndefinedIfGone(
          kube.get<Beskar7Machine>(
            paths.object(API_GROUP, API_VERSION, Plurals.Beskar7Machine, namespace, ref.name),
          ),
        );
        if (!infra?.status?.initialization?.provisioned) continue;
        const address =
          infra.status.addresses?.find(a => a.type === "InternalIP") ??
          infra.status.addresses?.find(a => a.type === "ExternalIP");
        if (address) return address.address;
      }
      return undefined;
    },
    setEndpoint: async (cluster, endpoint) => {
      await kube.mergePatch(
        paths.object(
          API_GROUP,
          API_VERSION,
          Plurals.Beskar7Cluster,
          cluster.metadata!.namespace!,
          cluster.metadata!.name!,
        ),
        { spec: { controlPlaneEndpoint: endpoint } },
      );
    },
  };
  return port;
}

function clusterFingerprint(cluster: Beskar7Cluster): string {
  const m = cluster.metadata ?? {};
  return JSON.stringify([
    m.generation,
    m.annotations,
    m.labels,
    (m.ownerReferences ?? []).map(r => r.uid),
  ]);
}

export const clusterController = new Controller<Beskar7Cluster>({
  name: "beskar7cluster",
  resource: { group: API_GROUP, version: API_VERSION, plural: Plurals.Beskar7Cluster },
  reconcile: cluster =>
    reconcileCluster(cluster, clusterPort(), {
      endpointCheckMs: config.nodeCheckIntervalMs,
      zoneRefreshMs: config.machineWaitingRecheckMs,
    }),
  // Nothing on bare metal belongs to the cluster alone: machines release their hosts.
  finalize: async () => ({ done: true }),
  fingerprint: clusterFingerprint,
  limits: {
    concurrency: config.maxConcurrentReconciles,
    backoff: { baseMs: config.errorBackoffBaseMs, maxMs: config.errorBackoffMaxMs },
  },
});

/** A Cluster changed (paused, its infrastructure reference): run its Beskar7Cluster. */
export function ownerClusterChanged(cluster: CapiCluster): void {
  const ref = cluster.spec?.infrastructureRef;
  if (ref?.kind === Kinds.Beskar7Cluster && ref.name) {
    clusterController.requeue(cluster.metadata?.namespace, ref.name, 0);
  }
}

/** Beskar7Clusters (namespace/name) whose endpoint waits for a control-plane machine, by cluster. */
const endpointless = new Map<string, string>();

export function clusterChanged(cluster: Beskar7Cluster): void {
  const owner = cluster.metadata?.ownerReferences?.find(r => r.kind === "Cluster")?.name;
  const key = `${cluster.metadata?.namespace ?? ""}/${owner ?? ""}`;
  if (owner && !cluster.spec?.controlPlaneEndpoint?.host)
    endpointless.set(key, cluster.metadata?.name ?? "");
  else endpointless.delete(key);
  clusterController.enqueue(cluster);
}

/** A provisioned machine may give an endpointless cluster its endpoint. */
export function machineProvisioned(machine: Beskar7Machine): void {
  if (!machine.status?.initialization?.provisioned) return;
  const ns = machine.metadata?.namespace ?? "";
  const name = endpointless.get(`${ns}/${machine.metadata?.labels?.[Labels.clusterName] ?? ""}`);
  if (name) clusterController.requeue(ns, name, 0);
}
