// The Cluster API objects Beskar7 reads (contract v1beta2): Machine and Cluster, as far as the
// provider needs them, and their Fluent Client kinds so Pepr can watch them. Cluster API owns
// these objects; Beskar7 never writes them.
import { GenericKind, RegisterKind } from "kubernetes-fluent-client";

export const CAPI_GROUP = "cluster.x-k8s.io";
export const CAPI_VERSION = "v1beta2";

export interface ObjectReferenceV1Beta2 {
  apiGroup?: string;
  kind?: string;
  name?: string;
}

export interface CapiMachineSpec {
  clusterName: string;
  bootstrap?: { dataSecretName?: string; configRef?: ObjectReferenceV1Beta2 };
  infrastructureRef?: ObjectReferenceV1Beta2;
  failureDomain?: string;
  providerID?: string;
}

export interface CapiMachineStatus {
  nodeRef?: { name?: string };
  phase?: string;
}

export class CapiMachine extends GenericKind {
  declare spec?: CapiMachineSpec;
  declare status?: CapiMachineStatus;
}

export interface CapiClusterSpec {
  paused?: boolean;
  controlPlaneEndpoint?: { host?: string; port?: number };
  infrastructureRef?: ObjectReferenceV1Beta2;
}

export class CapiCluster extends GenericKind {
  declare spec?: CapiClusterSpec;
  declare status?: { initialization?: { infrastructureProvisioned?: boolean } };
}

RegisterKind(CapiMachine, {
  group: CAPI_GROUP,
  version: CAPI_VERSION,
  kind: "Machine",
  plural: "machines",
});
RegisterKind(CapiCluster, {
  group: CAPI_GROUP,
  version: CAPI_VERSION,
  kind: "Cluster",
  plural: "clusters",
});

/** Cluster API's label on a control-plane Machine. */
export const CONTROL_PLANE_LABEL = "cluster.x-k8s.io/control-plane";
