// PhysicalHost capability: Pepr bindings only. Validate runs the admission rules; Reconcile and
// Finalize hand every event to the host controller on the shared runtime (host-controller.ts),
// which reconciles or, for a host being deleted, finalizes it; a host the machine controller has
// just claimed is handed over directly (lib/object-events.ts HOST_CLAIMED), and one being claimed
// has its system read ahead of that run (HOST_CLAIMING). Labelled credential Secrets are watched
// by the host controller itself, metadata only (lib/metadata-watch.ts), not through Pepr, which
// would cache and log them whole.
import { Capability } from "pepr";

import { PhysicalHost } from "../api";
import { config } from "../lib/config";
import { HOST_CLAIMED, HOST_CLAIMING, subscribe } from "../lib/object-events";
import { admit } from "../lib/pepr-admission";
import { validatePhysicalHost } from "./admission";
import { operatorAccessPolicy } from "./credentials";
import { hostChanged, hostClaiming, hostController, hostGone } from "./host-controller";

export const PhysicalHostCapability = new Capability({
  name: "beskar7-physical-host",
  description: "PhysicalHost: enrollment, inventory, power and provisioning actions over Redfish",
});

const { When } = PhysicalHostCapability;

/** Parsed when the module loads: a bad BESKAR7_ALLOW_BMC_ADDRESSES stops it with its name. */
const access = operatorAccessPolicy(config);

When(PhysicalHost)
  .IsCreatedOrUpdated()
  .Validate(req =>
    admit(req, input => validatePhysicalHost(input, config.operatorUsernames, access)),
  );

When(PhysicalHost)
  .IsCreatedOrUpdated()
  .Reconcile(async host => hostChanged(host))
  .Finalize(host => hostController.finalizing(host));

When(PhysicalHost)
  .IsDeleted()
  .Watch(host => hostGone(host));

// A claim made by the machine controller in this process starts the host's run at once, ahead of
// the hosts already waiting; the watch event that follows finds it done or running (one run per
// host at a time).
subscribe<PhysicalHost>(HOST_CLAIMED, host => hostController.enqueue(host, true));
// A claim under way: the host's system is read while the claim's write makes its round trip.
subscribe<PhysicalHost>(HOST_CLAIMING, host => hostClaiming(host));
