// Beskar7Machine and Beskar7MachineTemplate: Pepr bindings only. Admission (defaults and rules),
// and the machine controller on the shared runtime (machine-controller.ts), woken by its own
// objects, by PhysicalHosts (a free host, a claimed host's progress; passed on by the PhysicalHost
// capability, which watches them) and by Cluster API's Machines and Clusters.
import { Capability } from "pepr";

import {
  Beskar7Machine,
  Beskar7MachineTemplate,
  CapiCluster,
  CapiMachine,
  Kinds,
  type PhysicalHost,
} from "../api";
import { subscribe } from "../lib/object-events";
import { admit } from "../lib/pepr-admission";
import {
  machineDefaults,
  validateBeskar7Machine,
  validateBeskar7MachineTemplate,
} from "./admission";
import {
  capiMachineChanged,
  clusterChanged,
  hostChanged,
  hostGone,
  machineChanged,
  machineController,
  machineGone,
} from "./machine-controller";

export const MachineCapability = new Capability({
  name: "beskar7-machine",
  description: "Cluster API InfraMachine: Beskar7Machine and Beskar7MachineTemplate",
});

const { When } = MachineCapability;

When(Beskar7Machine)
  .IsCreatedOrUpdated()
  .Mutate(req => {
    if (req.Raw.metadata?.deletionTimestamp) return;
    const defaults = machineDefaults(req.Raw.spec);
    if (Object.keys(defaults).length) req.Merge({ spec: defaults });
  })
  .Validate(req => admit(req, validateBeskar7Machine));

When(Beskar7MachineTemplate)
  .IsCreatedOrUpdated()
  .Mutate(req => {
    if (req.Raw.metadata?.deletionTimestamp) return;
    const defaults = machineDefaults(req.Raw.spec?.template?.spec);
    if (Object.keys(defaults).length) req.Merge({ spec: { template: { spec: defaults } } });
  })
  .Validate(req => admit(req, validateBeskar7MachineTemplate));

When(Beskar7Machine)
  .IsCreatedOrUpdated()
  .Reconcile(async machine => machineChanged(machine))
  .Finalize(machine => machineController.finalizing(machine));
When(Beskar7Machine)
  .IsDeleted()
  .Watch(machine => machineGone(machine));

// Hosts come from the PhysicalHost capability's own watch (one copy of every host, not two).
subscribe<PhysicalHost>(Kinds.PhysicalHost, (host, deleted) =>
  deleted ? hostGone(host) : hostChanged(host),
);

When(CapiMachine)
  .IsCreatedOrUpdated()
  .Watch(machine => capiMachineChanged(machine));
When(CapiMachine)
  .IsDeleted()
  .Watch(machine => capiMachineChanged(machine, true));
When(CapiCluster)
  .IsCreatedOrUpdated()
  .Watch(cluster => clusterChanged(cluster));
When(CapiCluster)
  .IsDeleted()
  .Watch(cluster => clusterChanged(cluster, true));
