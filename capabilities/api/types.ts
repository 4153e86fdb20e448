// TypeScript types of the Beskar7 API, derived from the schema sources with Static<> and
// imported as types only, so no schema-building code reaches the Pepr module bundle.
import type { Static } from "@sinclair/typebox";

import type {
  APIEndpointSchema,
  Beskar7ClusterSpecSchema,
  Beskar7ClusterStatusSchema,
  Beskar7ClusterTemplateSpecSchema,
  FailureDomainSchema,
} from "./sources/cluster";
import type {
  Condition as ConditionSchema,
  LabelSelector as LabelSelectorSchema,
  MachineAddress as MachineAddressSchema,
} from "./sources/common";
import type {
  Beskar7MachineSpecSchema,
  Beskar7MachineStatusSchema,
  Beskar7MachineTemplateSpecSchema,
  HardwareRequirementsSchema,
  HostRefSchema,
  TemplateObjectMetaSchema,
} from "./sources/machine";
import type {
  BootStatusSchema,
  ConsumerRefSchema,
  HardwareDetailsSchema,
  HostProvisioningSchema,
  HostProvisioningStatusSchema,
  InspectionReportSchema,
  PhysicalHostSpecSchema,
  PhysicalHostStatusSchema,
  RedfishConnectionSchema,
} from "./sources/physicalhost";

// Shared
export type Condition = Static<typeof ConditionSchema>;
export type MachineAddress = Static<typeof MachineAddressSchema>;
export type LabelSelector = Static<typeof LabelSelectorSchema>;
export type TemplateObjectMeta = Static<typeof TemplateObjectMetaSchema>;

// PhysicalHost
export type PhysicalHostSpec = Static<typeof PhysicalHostSpecSchema>;
export type PhysicalHostStatus = Static<typeof PhysicalHostStatusSchema>;
export type RedfishConnection = Static<typeof RedfishConnectionSchema>;
export type ConsumerRef = Static<typeof ConsumerRefSchema>;
export type HostProvisioning = Static<typeof HostProvisioningSchema>;
export type HostProvisioningStatus = Static<typeof HostProvisioningStatusSchema>;
export type HardwareDetails = Static<typeof HardwareDetailsSchema>;
export type BootStatus = Static<typeof BootStatusSchema>;
export type InspectionReport = Static<typeof InspectionReportSchema>;
export type CompletedProvisioningStep = NonNullable<
  HostProvisioningStatus["completedSteps"]
>[number];
export type DiskDetails = NonNullable<HardwareDetails["disks"]>[number];
export type NicDetails = NonNullable<HardwareDetails["nics"]>[number];
export type CpuDetails = NonNullable<HardwareDetails["cpu"]>;

// Beskar7Machine / Beskar7MachineTemplate
export type Beskar7MachineSpec = Static<typeof Beskar7MachineSpecSchema>;
export type Beskar7MachineStatus = Static<typeof Beskar7MachineStatusSchema>;
export type HardwareRequirements = Static<typeof HardwareRequirementsSchema>;
export type HostRef = Static<typeof HostRefSchema>;
export type Beskar7MachineTemplateSpec = Static<typeof Beskar7MachineTemplateSpecSchema>;

// Beskar7Cluster / Beskar7ClusterTemplate
export type Beskar7ClusterSpec = Static<typeof Beskar7ClusterSpecSchema>;
export type Beskar7ClusterStatus = Static<typeof Beskar7ClusterStatusSchema>;
export type APIEndpoint = Static<typeof APIEndpointSchema>;
export type FailureDomain = Static<typeof FailureDomainSchema>;
export type Beskar7ClusterTemplateSpec = Static<typeof Beskar7ClusterTemplateSpecSchema>;
