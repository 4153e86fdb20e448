// PhysicalHost capability: Pepr bindings only. Validate runs the admission rules; Reconcile and
// Finalize hand every event to the host controller on the shared runtime (host-controller.ts),
// which reconciles or, for a host being deleted, finalizes it; a watch on labelled credential
// Secrets re-reconciles the hosts that use them.
import { Capability, a } from "pepr";

import { Labels, PhysicalHost } from "../api";
import { config } from "../lib/config";
import { admit } from "../lib/pepr-admission";
import { validatePhysicalHost } from "./admission";
import { credentialsChanged, hostChanged, hostController, hostGone } from "./host-controller";

export const PhysicalHostCapability = new Capability({
  name: "beskar7-physical-host",
  description: "PhysicalHost: enrollment, inventory, power and provisioning actions over Redfish",
});

const { When } = PhysicalHostCapability;

When(PhysicalHost)
  .IsCreatedOrUpdated()
  .Validate(req => admit(req, input => validatePhysicalHost(input, config.operatorUsernames)));

When(PhysicalHost)
  .IsCreatedOrUpdated()
  .Reconcile(async host => hostChanged(host))
  .Finalize(host => hostController.finalizing(host));

When(PhysicalHost)
  .IsDeleted()
  .Watch(host => hostGone(host));

When(a.Secret)
  .IsCreatedOrUpdated()
  .WithLabel(Labels.bmcCredentials)
  .Watch(secret => credentialsChanged(secret, false));
When(a.Secret)
  .IsDeleted()
  .WithLabel(Labels.bmcCredentials)
  .Watch(secret => credentialsChanged(secret, true));
