// clusterctl provider files: metadata.yaml (release series → contract) and the default cluster
// template users fill with `clusterctl generate cluster`. ${VAR} and ${VAR:=default} are
// clusterctl's own variable syntax; they stay unquoted so integers substitute as integers.
import { ApiObject, Chart, JsonPatch } from "cdk8s";
import type { Construct } from "constructs";

import { API_GROUP, DEFAULT_API_SERVER_PORT, Kinds, Labels } from "../capabilities/api/constants";

export class ClusterctlMetadata extends Chart {
  constructor(scope: Construct, id: string) {
    super(scope, id);
    const metadata = new ApiObject(this, "metadata", {
      apiVersion: "clusterctl.cluster.x-k8s.io/v1alpha3",
      kind: "Metadata",
      releaseSeries: [{ major: 0, minor: 1, contract: "v1beta2" }],
    } as never);
    // Not a Kubernetes object: clusterctl reads it from the release, so no metadata block.
    metadata.addJsonPatch(JsonPatch.remove("/metadata"));
  }
}

const CLUSTER = "${CLUSTER_NAME}";
const NAMESPACE = "${NAMESPACE}";
const CAPI = "cluster.x-k8s.io";

/** Variables the template uses, documented in docs/api.md. */
export const CLUSTER_TEMPLATE_VARIABLES = {
  CLUSTER_NAME: "name of the cluster (clusterctl sets it from the command line)",
  NAMESPACE: "namespace of the cluster objects (clusterctl sets it)",
  KUBERNETES_VERSION: "Kubernetes version, e.g. v1.34.1",
  CONTROL_PLANE_MACHINE_COUNT: "control plane replicas (default 1)",
  WORKER_MACHINE_COUNT: "worker replicas (default 1)",
  CONTROL_PLANE_ENDPOINT_HOST: "VIP or DNS name of the workload API server",
  CONTROL_PLANE_ENDPOINT_PORT: `its port (default ${DEFAULT_API_SERVER_PORT})`,
  POD_CIDR: "pod network CIDR (default 192.168.0.0/16)",
  BESKAR7_OS_FAMILY: "kairos, talos, flatcar or LeapMicro (default kairos)",
  BESKAR7_IMAGE_URL: "installer ISO the BMC mounts",
  BESKAR7_CONTROL_PLANE_CONFIG_URL: "OS configuration URL for control plane hosts",
  BESKAR7_WORKER_CONFIG_URL: "OS configuration URL for worker hosts",
} as const;

function machineTemplateSpec(configURL: string, role: string) {
  return {
    provisioningMode: "RemoteConfig",
    osFamily: "${BESKAR7_OS_FAMILY:=kairos}",
    imageURL: "${BESKAR7_IMAGE_URL}",
    configURL,
    bootMode: "UEFI",
    // Hosts are labelled by the administrator to say which role they may take.
    hostSelector: { matchLabels: { [Labels.hostRole]: role } },
  };
}

export class ClusterTemplate extends Chart {
  constructor(scope: Construct, id: string) {
    super(scope, id);
    const meta = (name: string) => ({ name, namespace: NAMESPACE });
    const ref = (apiGroup: string, kind: string, name: string) => ({ apiGroup, kind, name });

    new ApiObject(this, "cluster", {
      apiVersion: `${CAPI}/v1beta2`,
      kind: "Cluster",
      metadata: meta(CLUSTER),
      spec: {
        clusterNetwork: { pods: { cidrBlocks: ["${POD_CIDR:=192.168.0.0/16}"] } },
        infrastructureRef: ref(API_GROUP, Kinds.Beskar7Cluster, CLUSTER),
        controlPlaneRef: ref(
          `controlplane.${CAPI}`,
          "KubeadmControlPlane",
          `${CLUSTER}-control-plane`,
        ),
      },
    });
    new ApiObject(this, "beskar7cluster", {
      apiVersion: `${API_GROUP}/v1beta1`,
      kind: Kinds.Beskar7Cluster,
      metadata: meta(CLUSTER),
      spec: {
        controlPlaneEndpoint: {
          host: "${CONTROL_PLANE_ENDPOINT_HOST}",
          port: `\${CONTROL_PLANE_ENDPOINT_PORT:=${DEFAULT_API_SERVER_PORT}}`,
        },
      },
    });
    new ApiObject(this, "control-plane", {
      apiVersion: `controlplane.${CAPI}/v1beta2`,
      kind: "KubeadmControlPlane",
      metadata: meta(`${CLUSTER}-control-plane`),
      spec: {
        replicas: "${CONTROL_PLANE_MACHINE_COUNT:=1}",
        version: "${KUBERNETES_VERSION}",
        machineTemplate: {
          spec: {
            infrastructureRef: ref(
              API_GROUP,
              Kinds.Beskar7MachineTemplate,
              `${CLUSTER}-control-plane`,
            ),
          },
        },
        // The endpoint is a VIP or DNS name in front of the hosts: the serving cert must name it.
        kubeadmConfigSpec: {
          clusterConfiguration: { apiServer: { certSANs: ["${CONTROL_PLANE_ENDPOINT_HOST}"] } },
        },
      },
    });
    new ApiObject(this, "control-plane-template", {
      apiVersion: `${API_GROUP}/v1beta1`,
      kind: Kinds.Beskar7MachineTemplate,
      metadata: meta(`${CLUSTER}-control-plane`),
      spec: {
        template: {
          spec: machineTemplateSpec("${BESKAR7_CONTROL_PLANE_CONFIG_URL}", "control-plane"),
        },
      },
    });
    const workers = `${CLUSTER}-md-0`;
    const selectorLabels = {
      [`${CAPI}/cluster-name`]: CLUSTER,
      [`${CAPI}/deployment-name`]: workers,
    };
    new ApiObject(this, "workers", {
      apiVersion: `${CAPI}/v1beta2`,
      kind: "MachineDeployment",
      metadata: meta(workers),
      spec: {
        clusterName: CLUSTER,
        replicas: "${WORKER_MACHINE_COUNT:=1}",
        selector: { matchLabels: selectorLabels },
        template: {
          metadata: { labels: selectorLabels },
          spec: {
            clusterName: CLUSTER,
            version: "${KUBERNETES_VERSION}",
            bootstrap: {
              configRef: ref(`bootstrap.${CAPI}`, "KubeadmConfigTemplate", workers),
            },
            infrastructureRef: ref(API_GROUP, Kinds.Beskar7MachineTemplate, workers),
          },
        },
      },
    });
    new ApiObject(this, "workers-template", {
      apiVersion: `${API_GROUP}/v1beta1`,
      kind: Kinds.Beskar7MachineTemplate,
      metadata: meta(workers),
      spec: {
        template: { spec: machineTemplateSpec("${BESKAR7_WORKER_CONFIG_URL}", "worker") },
      },
    });
    new ApiObject(this, "workers-bootstrap", {
      apiVersion: `bootstrap.${CAPI}/v1beta2`,
      kind: "KubeadmConfigTemplate",
      metadata: meta(workers),
      spec: {
        template: {
          spec: {
            joinConfiguration: {
              nodeRegistration: {
                kubeletExtraArgs: [
                  {
                    name: "node-labels",
                    value: "beskar7.infrastructure.cluster.x-k8s.io/role=worker",
                  },
                ],
              },
            },
          },
        },
      },
    });
  }
}
