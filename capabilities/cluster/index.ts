// Beskar7Cluster and Beskar7ClusterTemplate: Pepr bindings only. Admission (defaults and rules),
// and the cluster controller on the shared runtime (cluster-controller.ts), woken by its own
// objects, its owner Cluster and provisioned control-plane machines.
import { Capability } from "pepr";

import { Beskar7Cluster, Beskar7ClusterTemplate, Beskar7Machine, CapiCluster } from "../api";
import { admit } from "../lib/pepr-admission";
import {
  endpointDefaults,
  validateBeskar7Cluster,
  validateBeskar7ClusterTemplate,
} from "./admission";
import {
  clusterChanged,
  clusterController,
  machineProvisioned,
  ownerClusterChanged,
} from "./cluster-controller";

export const ClusterCapability = new Capability({
  name: "beskar7-cluster",
  description: "Cluster API InfraCluster: Beskar7Cluster and Beskar7ClusterTemplate",
});

const { When } = ClusterCapability;

When(Beskar7Cluster)
  .IsCreatedOrUpdated()
  .Mutate(req => {
    if (req.Raw.metadata?.deletionTimestamp) return;
    const defaults = endpointDefaults(req.Raw.spec?.controlPlaneEndpoint);
    if (Object.keys(defaults).length)
      req.Merge({ spec: { controlPlaneEndpoint: defaults } } as never);
  })
  .Validate(req => admit(req, validateBeskar7Cluster));

When(Beskar7ClusterTemplate)
  .IsCreatedOrUpdated()
  .Mutate(req => {
    if (req.Raw.metadata?.deletionTimestamp) return;
    const defaults = endpointDefaults(req.Raw.spec?.template?.spec?.controlPlaneEndpoint);
    if (Object.keys(defaults).length) {
      req.Merge({ spec: { template: { spec: { controlPlaneEndpoint: defaults } } } } as never);
    }
  })
  .Validate(req => admit(req, validateBeskar7ClusterTemplate));

When(Beskar7Cluster)
  .IsCreatedOrUpdated()
  .Reconcile(async cluster => clusterChanged(cluster))
  .Finalize(cluster => clusterController.finalizing(cluster));
When(Beskar7Cluster)
  .IsDeleted()
  .Watch(cluster => clusterController.deleted(cluster));

When(CapiCluster)
  .IsCreatedOrUpdated()
  .Watch(cluster => ownerClusterChanged(cluster));
When(Beskar7Machine)
  .IsCreatedOrUpdated()
  .Watch(machine => machineProvisioned(machine));
