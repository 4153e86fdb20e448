// The Beskar7Cluster reconciler (Cluster API's InfraCluster). Bare metal has no load balancer or
// network to create, so the cluster's infrastructure is provisioned as soon as Cluster API owns
// it; what remains is the control plane endpoint and the failure domains:
//   - spec.controlPlaneEndpoint is honoured when set (a VIP or DNS name); when empty it is taken
//     once from the first provisioned control-plane machine's address and written to spec, where
//     Cluster API copies it from;
//   - failure domains are spec.failureDomains, or else the zone labels of the namespace's hosts;
//   - initialization.provisioned (v1beta2) and ready (v1beta1) tell Cluster API, Ready summarises.
// Paused (Cluster.spec.paused or the paused annotation) stops every action.
import {
  Annotations,
  ConditionReason,
  ConditionType,
  DEFAULT_API_SERVER_PORT,
  type APIEndpoint,
  type Beskar7Cluster,
  type CapiCluster,
  type FailureDomain,
} from "../api";
import { setConditions, type ConditionInput } from "../lib/conditions";
import type { RunResult } from "../lib/runtime";

export interface ClusterPort {
  /** The Cluster API Cluster owning this one (ownerReferences), if set and present. */
  ownerCluster(cluster: Beskar7Cluster): Promise<CapiCluster | undefined>;
  /** Distinct values of the zone label on the namespace's PhysicalHosts. */
  hostZones(namespace: string): Promise<string[]>;
  /** The address of the first provisioned control-plane machine of the cluster, if any. */
  controlPlaneAddress(namespace: string, clusterName: string): Promise<string | undefined>;
  setEndpoint(cluster: Beskar7Cluster, endpoint: APIEndpoint): Promise<void>;
}

export interface ClusterConfig {
  /** While the endpoint waits for a control-plane machine, look again this often. */
  endpointCheckMs: number;
  /** Failure domains derived from host labels are refreshed this often. */
  zoneRefreshMs: number;
}

export async function reconcileCluster(
  cluster: Beskar7Cluster,
  port: ClusterPort,
  config: ClusterConfig,
  now: Date = new Date(),
): Promise<RunResult> {
  const namespace = cluster.metadata?.namespace ?? "default";
  const owner = await port.ownerCluster(cluster);
  if (!owner) {
    return result(cluster, now, [
      {
        type: ConditionType.Ready,
        status: "False",
        reason: ConditionReason.WaitingForOwnerCluster,
        message: "waiting for Cluster API to set the owner Cluster",
      },
    ]);
  }
  const paused =
    !!owner.spec?.paused ||
    Annotations.paused in (cluster.metadata?.annotations ?? {}) ||
    Annotations.paused in (owner.metadata?.annotations ?? {});
  if (paused) {
    return result(cluster, now, [
      {
        type: ConditionType.Paused,
        status: "True",
        reason: ConditionReason.Paused,
        message: "the Cluster is paused",
      },
      {
        type: ConditionType.Ready,
        status: "Unknown",
        reason: ConditionReason.Paused,
        message: "paused",
      },
    ]);
  }

  const declared = cluster.spec?.failureDomains ?? [];
  const failureDomains: FailureDomain[] = declared.length
    ? declared
    : (await port.hostZones(namespace)).sort().map(name => ({ name, controlPlane: true }));

  let endpoint = cluster.spec?.controlPlaneEndpoint?.host
    ? cluster.spec.controlPlaneEndpoint
    : undefined;
  let endpointEvent = false;
  if (!endpoint) {
    const address = await port.controlPlaneAddress(namespace, owner.metadata!.name!);
    if (address) {
      endpoint = { host: address, port: DEFAULT_API_SERVER_PORT };
      await port.setEndpoint(cluster, endpoint);
      endpointEvent = true;
    }
  }
  const endpointCondition: ConditionInput = endpoint
    ? {
        type: ConditionType.ControlPlaneEndpointReady,
        status: "True",
        reason: ConditionReason.EndpointSet,
        message: `${endpoint.host}:${endpoint.port ?? DEFAULT_API_SERVER_PORT}`,
      }
    : {
        type: ConditionType.ControlPlaneEndpointReady,
        status: "False",
        reason: ConditionReason.EndpointMissing,
        message:
          "spec.controlPlaneEndpoint is empty: it is taken from the first provisioned control-plane machine's address",
      };
  const ready: ConditionInput = endpoint
    ? { type: ConditionType.Ready, status: "True", reason: ConditionReason.Ready, message: "" }
    : {
        type: ConditionType.Ready,
        status: "False",
        reason: ConditionReason.EndpointMissing,
        message: endpointCondition.message,
      };
  const out = result(
    cluster,
    now,
    [
      { type: ConditionType.Paused, status: "False", reason: ConditionReason.NotPaused },
      endpointCondition,
      ready,
    ],
    {
      // Nothing to create on bare metal: the infrastructure is there once Cluster API owns it.
      initialization: { provisioned: true },
      ready: true,
      failureDomains: failureDomains.length ? failureDomains : null,
    },
  );
  return {
    ...out,
    events: endpointEvent
      ? [
          {
            type: "Normal",
            reason: ConditionReason.EndpointSet,
            message: `spec.controlPlaneEndpoint taken from the first provisioned control-plane machine: ${endpoint!.host}:${endpoint!.port}`,
          },
        ]
      : [],
    requeueAfterMs: !endpoint
      ? config.endpointCheckMs
      : declared.length
        ? undefined
        : config.zoneRefreshMs,
  };
}

function result(
  cluster: Beskar7Cluster,
  now: Date,
  conditions: ConditionInput[],
  status: Record<string, unknown> = {},
): RunResult {
  return {
    status: {
      ...status,
      conditions: setConditions(
        cluster.status?.conditions,
        conditions,
        cluster.metadata?.generation,
        now,
      ),
      observedGeneration: cluster.metadata?.generation,
    },
  };
}
