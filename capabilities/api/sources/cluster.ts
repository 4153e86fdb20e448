// Beskar7Cluster (the CAPI InfraCluster) and Beskar7ClusterTemplate. Bare metal has no cloud load
// balancer to create, so the control plane endpoint is given by the user (a VIP or DNS name) and
// failure domains are declared in spec and surfaced in status for Cluster API.
import { Type } from "@sinclair/typebox";

import { DEFAULT_API_SERVER_PORT } from "../constants";
import { Conditions, Initialization, List, ObservedGeneration, StringMap, cel } from "./common";
import { templateOf } from "./machine";

export const APIEndpointSchema = Type.Object(
  {
    host: Type.String({
      description:
        "DNS name or IP address (VIP, load balancer) at which the workload cluster's API server is served.",
      minLength: 1,
      maxLength: 512,
    }),
    port: Type.Optional(
      Type.Integer({
        description: `TCP port of the API server, 1-65535 (default ${DEFAULT_API_SERVER_PORT}).`,
        minimum: 1,
        maximum: 65535,
        format: "int32",
        default: DEFAULT_API_SERVER_PORT,
      }),
    ),
  },
  { description: "endpoint of the workload cluster's control plane." },
);

export const FailureDomainSchema = Type.Object(
  {
    name: Type.String({
      description:
        "name of the failure domain; machines placed in it are matched to PhysicalHosts labelled topology.kubernetes.io/zone=<name>.",
      minLength: 1,
      maxLength: 256,
    }),
    controlPlane: Type.Optional(
      Type.Boolean({ description: "whether control plane machines may be placed here." }),
    ),
    attributes: Type.Optional(StringMap("arbitrary attributes of the failure domain.", 32)),
  },
  { description: "a failure domain (Cluster API v1beta2 FailureDomain)." },
);

const FailureDomains = (description: string) =>
  List(FailureDomainSchema, {
    description,
    maxItems: 100,
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["name"],
  });

export const Beskar7ClusterSpecSchema = Type.Object(
  {
    controlPlaneEndpoint: Type.Optional(APIEndpointSchema),
    failureDomains: Type.Optional(
      FailureDomains(
        "failure domains (racks, rooms, sites) hosts are spread over; copied to status.failureDomains for Cluster API.",
      ),
    ),
  },
  {
    description: "desired state of the Beskar7Cluster.",
    ...cel({
      rule: "!has(oldSelf.controlPlaneEndpoint) || (has(self.controlPlaneEndpoint) && self.controlPlaneEndpoint == oldSelf.controlPlaneEndpoint)",
      message: "spec.controlPlaneEndpoint is immutable once set",
      fieldPath: ".controlPlaneEndpoint",
    }),
  },
);

export const Beskar7ClusterStatusSchema = Type.Object(
  {
    initialization: Type.Optional(Initialization("the cluster's infrastructure")),
    ready: Type.Optional(
      Type.Boolean({
        description:
          "deprecated (Cluster API v1beta1 contract): true when the infrastructure is ready; use initialization.provisioned.",
      }),
    ),
    failureDomains: Type.Optional(
      FailureDomains("failure domains available to the cluster's machines (contract v1beta2)."),
    ),
    conditions: Type.Optional(Conditions),
    observedGeneration: Type.Optional(ObservedGeneration),
  },
  { description: "observed state of the Beskar7Cluster, written by the cluster controller." },
);

export const Beskar7ClusterTemplateSpecSchema = templateOf(
  Beskar7ClusterSpecSchema,
  "Beskar7Cluster",
);
