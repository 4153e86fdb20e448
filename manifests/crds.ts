// The five Beskar7 CRDs: short names and `kubectl get` columns per kind.
import { Chart } from "cdk8s";
import type { Construct } from "constructs";

import { Kinds, Labels } from "../capabilities/api/constants";
import { KindSchemas } from "../capabilities/api/sources";
import { Crd, type PrinterColumn } from "./crd";

const clusterColumn: PrinterColumn = {
  name: "Cluster",
  type: "string",
  jsonPath: ".metadata.labels['cluster\\.x-k8s\\.io/cluster-name']",
  description: "Cluster API cluster this object belongs to",
};

export class Beskar7Crds extends Chart {
  readonly crds: Crd[];

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.crds = [
      new Crd(this, Kinds.PhysicalHost, {
        schema: KindSchemas.PhysicalHost,
        // Hosts are owned by no Cluster: this label makes `clusterctl move` take every host of
        // the namespace with the cluster (as Metal3 does with BareMetalHosts).
        labels: { [Labels.clusterctlMove]: "" },
        shortNames: ["phost", "ph"],
        printerColumns: [
          {
            name: "State",
            type: "string",
            jsonPath: ".status.state",
            description: "lifecycle state",
          },
          {
            name: "Power",
            type: "string",
            jsonPath: ".status.observedPowerState",
            description: "power state read from the BMC",
          },
          {
            name: "Consumer",
            type: "string",
            jsonPath: ".spec.consumerRef.name",
            description: "Beskar7Machine that claimed the host",
          },
          {
            name: "Address",
            type: "string",
            jsonPath: ".spec.redfishConnection.address",
            description: "BMC Redfish address",
            priority: 1,
          },
          {
            name: "Manufacturer",
            type: "string",
            jsonPath: ".status.hardwareDetails.manufacturer",
            description: "system manufacturer",
            priority: 1,
          },
          {
            name: "Model",
            type: "string",
            jsonPath: ".status.hardwareDetails.model",
            description: "system model",
            priority: 1,
          },
          {
            name: "Error",
            type: "string",
            jsonPath: ".status.errorReason",
            description: "class of the last error",
            priority: 1,
          },
        ],
      }),
      new Crd(this, Kinds.Beskar7Machine, {
        schema: KindSchemas.Beskar7Machine,
        shortNames: ["b7m"],
        printerColumns: [
          clusterColumn,
          {
            name: "Phase",
            type: "string",
            jsonPath: ".status.phase",
            description: "lifecycle phase",
          },
          {
            name: "Provisioned",
            type: "boolean",
            jsonPath: ".status.initialization.provisioned",
            description: "infrastructure provisioned (CAPI contract)",
          },
          {
            name: "Host",
            type: "string",
            jsonPath: ".status.hostRef.name",
            description: "claimed PhysicalHost",
          },
          {
            name: "Mode",
            type: "string",
            jsonPath: ".spec.provisioningMode",
            description: "provisioning mode",
            priority: 1,
          },
          {
            name: "OS",
            type: "string",
            jsonPath: ".spec.osFamily",
            description: "OS family",
            priority: 1,
          },
          {
            name: "ProviderID",
            type: "string",
            jsonPath: ".spec.providerID",
            description: "provider ID of the Node",
            priority: 1,
          },
        ],
      }),
      new Crd(this, Kinds.Beskar7MachineTemplate, {
        schema: KindSchemas.Beskar7MachineTemplate,
        shortNames: ["b7mt"],
        printerColumns: [
          {
            name: "Mode",
            type: "string",
            jsonPath: ".spec.template.spec.provisioningMode",
            description: "provisioning mode",
          },
          {
            name: "OS",
            type: "string",
            jsonPath: ".spec.template.spec.osFamily",
            description: "OS family",
          },
        ],
      }),
      new Crd(this, Kinds.Beskar7Cluster, {
        schema: KindSchemas.Beskar7Cluster,
        shortNames: ["b7c"],
        printerColumns: [
          clusterColumn,
          {
            name: "Provisioned",
            type: "boolean",
            jsonPath: ".status.initialization.provisioned",
            description: "infrastructure provisioned (CAPI contract)",
          },
          {
            name: "Endpoint",
            type: "string",
            jsonPath: ".spec.controlPlaneEndpoint.host",
            description: "control plane endpoint host",
          },
          {
            name: "Port",
            type: "integer",
            jsonPath: ".spec.controlPlaneEndpoint.port",
            description: "control plane endpoint port",
            priority: 1,
          },
        ],
      }),
      new Crd(this, Kinds.Beskar7ClusterTemplate, {
        schema: KindSchemas.Beskar7ClusterTemplate,
        shortNames: ["b7ct"],
        printerColumns: [],
      }),
    ];
  }
}
