// The schema barrel manifests/ reads: one entry per kind with its spec and status schemas.
import type { TObject } from "@sinclair/typebox";

import { Kinds, type KindName } from "../constants";
import {
  Beskar7ClusterSpecSchema,
  Beskar7ClusterStatusSchema,
  Beskar7ClusterTemplateSpecSchema,
} from "./cluster";
import {
  Beskar7MachineSpecSchema,
  Beskar7MachineStatusSchema,
  Beskar7MachineTemplateSpecSchema,
} from "./machine";
import { PhysicalHostSpecSchema, PhysicalHostStatusSchema } from "./physicalhost";

export interface KindSchema {
  kind: KindName;
  description: string;
  spec: TObject;
  status?: TObject;
}

export const KindSchemas: Record<KindName, KindSchema> = {
  PhysicalHost: {
    kind: Kinds.PhysicalHost,
    description:
      "PhysicalHost is one bare-metal server managed through its BMC over Redfish; a Beskar7Machine claims it and asks it to boot an image.",
    spec: PhysicalHostSpecSchema,
    status: PhysicalHostStatusSchema,
  },
  Beskar7Machine: {
    kind: Kinds.Beskar7Machine,
    description:
      "Beskar7Machine is the Cluster API infrastructure machine: it claims a matching PhysicalHost and provisions it.",
    spec: Beskar7MachineSpecSchema,
    status: Beskar7MachineStatusSchema,
  },
  Beskar7MachineTemplate: {
    kind: Kinds.Beskar7MachineTemplate,
    description:
      "Beskar7MachineTemplate is the template Cluster API creates Beskar7Machines from (MachineDeployments, control planes).",
    spec: Beskar7MachineTemplateSpecSchema,
  },
  Beskar7Cluster: {
    kind: Kinds.Beskar7Cluster,
    description:
      "Beskar7Cluster is the Cluster API infrastructure cluster: the control plane endpoint and failure domains of a bare-metal cluster.",
    spec: Beskar7ClusterSpecSchema,
    status: Beskar7ClusterStatusSchema,
  },
  Beskar7ClusterTemplate: {
    kind: Kinds.Beskar7ClusterTemplate,
    description:
      "Beskar7ClusterTemplate is the template Cluster API creates Beskar7Clusters from (ClusterClass).",
    spec: Beskar7ClusterTemplateSpecSchema,
  },
};

export * from "./cluster";
export * from "./common";
export * from "./machine";
export * from "./physicalhost";
