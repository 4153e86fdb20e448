// Every capability of the module, in one list for pepr.ts.
import type { Capability } from "pepr";

import { ClusterCapability } from "./cluster";
import { MachineCapability } from "./machine";
import { PhysicalHostCapability } from "./physical-host";

export const capabilities: Capability[] = [
  PhysicalHostCapability,
  MachineCapability,
  ClusterCapability,
];
