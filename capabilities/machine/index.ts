// Beskar7Machine and Beskar7MachineTemplate: admission. The machine controller will bind here.
import { Capability } from "pepr";

import { Beskar7Machine, Beskar7MachineTemplate } from "../api";
import { admit } from "../lib/pepr-admission";
import {
  machineDefaults,
  validateBeskar7Machine,
  validateBeskar7MachineTemplate,
} from "./admission";

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
