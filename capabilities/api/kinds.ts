// Kubernetes Fluent Client kind classes for the Beskar7 kinds, registered so K8s(PhysicalHost)
// and Pepr's When(PhysicalHost) know their group, version and plural.
import { GenericKind, RegisterKind } from "kubernetes-fluent-client";

import { API_GROUP, API_VERSION, Kinds, Plurals, type KindName } from "./constants";
import type {
  Beskar7ClusterSpec,
  Beskar7ClusterStatus,
  Beskar7ClusterTemplateSpec,
  Beskar7MachineSpec,
  Beskar7MachineStatus,
  Beskar7MachineTemplateSpec,
  PhysicalHostSpec,
  PhysicalHostStatus,
} from "./types";

export class PhysicalHost extends GenericKind {
  declare spec?: PhysicalHostSpec;
  declare status?: PhysicalHostStatus;
}

export class Beskar7Machine extends GenericKind {
  declare spec?: Beskar7MachineSpec;
  declare status?: Beskar7MachineStatus;
}

export class Beskar7MachineTemplate extends GenericKind {
  declare spec?: Beskar7MachineTemplateSpec;
}

export class Beskar7Cluster extends GenericKind {
  declare spec?: Beskar7ClusterSpec;
  declare status?: Beskar7ClusterStatus;
}

export class Beskar7ClusterTemplate extends GenericKind {
  declare spec?: Beskar7ClusterTemplateSpec;
}

function register(model: typeof GenericKind, kind: KindName): void {
  RegisterKind(model, { group: API_GROUP, version: API_VERSION, kind, plural: Plurals[kind] });
}

register(PhysicalHost, Kinds.PhysicalHost);
register(Beskar7Machine, Kinds.Beskar7Machine);
register(Beskar7MachineTemplate, Kinds.Beskar7MachineTemplate);
register(Beskar7Cluster, Kinds.Beskar7Cluster);
register(Beskar7ClusterTemplate, Kinds.Beskar7ClusterTemplate);
