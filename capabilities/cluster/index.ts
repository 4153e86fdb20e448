// Beskar7Cluster and Beskar7ClusterTemplate: admission. The cluster controller will bind here.
import { Capability } from "pepr";

import { Beskar7Cluster, Beskar7ClusterTemplate } from "../api";
import { admit } from "../lib/pepr-admission";
import {
  endpointDefaults,
  validateBeskar7Cluster,
  validateBeskar7ClusterTemplate,
} from "./admission";

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
