// Cluster API v1.14's own core manager and kubeadm bootstrap manager (lab/controlplane/capi-manager.ts)
// against the suite's API server, with Beskar7's CRDs and no Beskar7 controller: CAPI takes a
// Cluster whose infrastructure is a Beskar7Cluster, reads its contract status, and turns a
// MachineDeployment into a MachineSet, a Machine, a Beskar7Machine cloned from the
// Beskar7MachineTemplate and a KubeadmConfig cloned from the KubeadmConfigTemplate.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";

import { startCapi, type CapiManagers } from "../../../lab/controlplane/capi-manager";
import { alive } from "../../../lab/controlplane/process";
import { installBeskar7Crds } from "../api/kubectl";
import { createNamespace, eventually, kubectl } from "../support/kube";
import { condition, inNamespace } from "./support";

const INFRA = "infrastructure.cluster.x-k8s.io";
const CLUSTER = "demo";
const WORKERS = "demo-md-0";

let capi: CapiManagers | undefined;
let ns: string;
const { apply, get, list } = inNamespace(() => ns);

/** eventually(), with the managers' recent output in the failure message. */
function waitFor<T>(check: () => Promise<T | undefined | false>, what: string): Promise<T> {
  return eventually(check, what, 90_000, 500).catch((err: Error) => {
    throw new Error(`${err.message}\n${capi?.logs().slice(-6000) ?? ""}`);
  });
}

beforeAll(async () => {
  await installBeskar7Crds();
  capi = await startCapi({ kubeconfig: inject("kubeconfig"), kubectl: inject("kubectl") });
  ns = await createNamespace("capi-manager");
});

afterAll(async () => {
  await capi?.stop();
});

describe("Cluster API's core manager with Beskar7's infrastructure kinds", () => {
  it("adopts the Beskar7Cluster of a Cluster and reports it as not provisioned yet", async () => {
    await apply(`
apiVersion: ${INFRA}/v1beta1
kind: Beskar7Cluster
metadata:
  name: ${CLUSTER}
spec:
  controlPlaneEndpoint:
    host: 192.0.2.100
    port: 6443
---
apiVersion: cluster.x-k8s.io/v1beta2
kind: Cluster
metadata:
  name: ${CLUSTER}
spec:
  infrastructureRef:
    apiGroup: ${INFRA}
    kind: Beskar7Cluster
    name: ${CLUSTER}
`);
    // The manager may write the condition a reconcile before the phase: wait for both.
    const cluster = await waitFor(async () => {
      const c = await get("clusters.cluster.x-k8s.io", CLUSTER);
      return condition(c, "InfrastructureReady") && c?.status?.phase !== undefined && c;
    }, "the Cluster's InfrastructureReady condition and phase");
    expect(cluster.metadata.finalizers).toContain("cluster.cluster.x-k8s.io");
    expect(condition(cluster, "InfrastructureReady")?.status).toBe("False");
    expect(cluster.status?.phase).toBe("Provisioning");

    const infra = await waitFor(async () => {
      const b7c = await get("beskar7clusters", CLUSTER);
      return b7c?.metadata.ownerReferences?.some(o => o.kind === "Cluster") && b7c;
    }, "the Cluster's ownerReference on the Beskar7Cluster");
    expect(infra.metadata.ownerReferences).toContainEqual(
      expect.objectContaining({ kind: "Cluster", name: CLUSTER }),
    );
  });

  it("reads status.initialization.provisioned and the endpoint of the Beskar7Cluster (contract v1beta2)", async () => {
    const patched = await kubectl([
      "patch",
      "beskar7clusters",
      CLUSTER,
      "-n",
      ns,
      "--subresource=status",
      "--type=merge",
      "-p",
      '{"status":{"initialization":{"provisioned":true}}}',
    ]);
    expect(patched.stderr).toBe("");
    const cluster = await waitFor(async () => {
      const c = await get("clusters.cluster.x-k8s.io", CLUSTER);
      return condition(c, "InfrastructureReady")?.status === "True" && c;
    }, "InfrastructureReady=True on the Cluster");
    expect(cluster.status?.initialization?.infrastructureProvisioned).toBe(true);
    expect(cluster.spec?.controlPlaneEndpoint).toEqual({ host: "192.0.2.100", port: 6443 });
  });

  it("defaults a MachineDeployment and makes a MachineSet, a Machine, a Beskar7Machine and a KubeadmConfig", async () => {
    // No selector and no template labels: CAPI's defaulting webhook fills them in. Without a
    // control plane provider the MachineSet preflight checks would hold the scale-up.
    await apply(`
apiVersion: ${INFRA}/v1beta1
kind: Beskar7MachineTemplate
metadata:
  name: ${WORKERS}
spec:
  template:
    spec:
      provisioningMode: RemoteConfig
      osFamily: kairos
      imageURL: https://images.example/kairos.iso
      configURL: https://config.example/worker.yaml
      hostSelector:
        matchLabels:
          beskar7.infrastructure.cluster.x-k8s.io/role: worker
---
apiVersion: bootstrap.cluster.x-k8s.io/v1beta2
kind: KubeadmConfigTemplate
metadata:
  name: ${WORKERS}
spec:
  template:
    spec:
      joinConfiguration:
        nodeRegistration:
          kubeletExtraArgs:
            - name: node-labels
              value: beskar7.infrastructure.cluster.x-k8s.io/role=worker
---
apiVersion: cluster.x-k8s.io/v1beta2
kind: MachineDeployment
metadata:
  name: ${WORKERS}
  annotations:
    machineset.cluster.x-k8s.io/skip-preflight-checks: All
spec:
  clusterName: ${CLUSTER}
  replicas: 1
  template:
    spec:
      clusterName: ${CLUSTER}
      version: v1.34.1
      bootstrap:
        configRef:
          apiGroup: bootstrap.cluster.x-k8s.io
          kind: KubeadmConfigTemplate
          name: ${WORKERS}
      infrastructureRef:
        apiGroup: ${INFRA}
        kind: Beskar7MachineTemplate
        name: ${WORKERS}
`);
    const md = await get("machinedeployments.cluster.x-k8s.io", WORKERS);
    expect(md?.spec?.selector).toMatchObject({
      matchLabels: {
        "cluster.x-k8s.io/cluster-name": CLUSTER,
        "cluster.x-k8s.io/deployment-name": WORKERS,
      },
    });

    const machineSet = await waitFor(async () => {
      const sets = await list("machinesets.cluster.x-k8s.io");
      return sets.find(s => s.metadata.ownerReferences?.some(o => o.name === WORKERS));
    }, "a MachineSet of the MachineDeployment");

    const machine = await waitFor(async () => {
      const machines = await list("machines.cluster.x-k8s.io");
      return machines.find(m =>
        m.metadata.ownerReferences?.some(o => o.name === machineSet.metadata.name),
      );
    }, "a Machine of the MachineSet");
    expect(machine.metadata.labels?.["cluster.x-k8s.io/cluster-name"]).toBe(CLUSTER);
    const refs = machine.spec as {
      bootstrap: { configRef: { kind: string; name: string } };
      infrastructureRef: { kind: string; name: string };
    };
    expect(refs.infrastructureRef.kind).toBe("Beskar7Machine");
    expect(refs.bootstrap.configRef.kind).toBe("KubeadmConfig");

    // The Beskar7Machine, cloned from the template, ends up owned by the Machine.
    const b7m = await waitFor(async () => {
      const m = await get("beskar7machines", refs.infrastructureRef.name);
      return m?.metadata.ownerReferences?.some(o => o.kind === "Machine") && m;
    }, "the Beskar7Machine owned by its Machine");
    expect(b7m.metadata.labels?.["cluster.x-k8s.io/cluster-name"]).toBe(CLUSTER);
    expect(b7m.metadata.annotations?.["cluster.x-k8s.io/cloned-from-name"]).toBe(WORKERS);
    expect(b7m.spec).toMatchObject({
      provisioningMode: "RemoteConfig",
      configURL: "https://config.example/worker.yaml",
    });

    // The KubeadmConfig, cloned from its template, is reconciled by the kubeadm bootstrap
    // manager, which waits (there is no control plane): it reports why in its conditions.
    const config = await waitFor(async () => {
      const c = await get(
        "kubeadmconfigs.bootstrap.cluster.x-k8s.io",
        refs.bootstrap.configRef.name,
      );
      return condition(c, "DataSecretAvailable") && c;
    }, "the KubeadmConfig's DataSecretAvailable condition, set by the kubeadm bootstrap manager");
    expect(config.metadata.ownerReferences).toContainEqual(
      expect.objectContaining({ kind: "Machine", name: machine.metadata.name }),
    );
    expect(condition(config, "DataSecretAvailable")).toMatchObject({
      status: "False",
      message: "Waiting for Cluster control plane to be initialized",
    });
  });

  it("serves the v1beta1 API through the core manager's conversion webhook", async () => {
    const result = await kubectl([
      "get",
      "clusters.v1beta1.cluster.x-k8s.io",
      CLUSTER,
      "-n",
      ns,
      "-o",
      "json",
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain("cluster.x-k8s.io/v1beta1 Cluster is deprecated");
    const v1beta1 = JSON.parse(result.stdout) as {
      apiVersion: string;
      spec: { infrastructureRef: Record<string, string> };
      status: { infrastructureReady?: boolean };
    };
    expect(v1beta1.apiVersion).toBe("cluster.x-k8s.io/v1beta1");
    // v1beta1 references carry apiVersion where v1beta2 ones carry apiGroup.
    expect(v1beta1.spec.infrastructureRef).toMatchObject({
      apiVersion: `${INFRA}/v1beta1`,
      kind: "Beskar7Cluster",
      name: CLUSTER,
    });
    expect(v1beta1.status.infrastructureReady).toBe(true);
  });

  it("rejects an invalid MachineDeployment through CAPI's validating webhook", async () => {
    const result = await kubectl(
      ["apply", "--server-side", "-n", ns, "-f", "-"],
      `
apiVersion: cluster.x-k8s.io/v1beta2
kind: MachineDeployment
metadata:
  name: invalid
spec:
  clusterName: ${CLUSTER}
  selector:
    matchLabels:
      pool: a
  template:
    metadata:
      labels:
        pool: b
    spec:
      clusterName: ${CLUSTER}
      bootstrap:
        dataSecretName: none
      infrastructureRef:
        apiGroup: ${INFRA}
        kind: Beskar7MachineTemplate
        name: ${WORKERS}
`,
    );
    expect(result.code).not.toBe(0);
    // The selector the defaulting webhook completed, checked by the validating webhook.
    expect(result.stderr).toContain(
      'spec.template.metadata.labels: Forbidden: must match spec.selector "cluster.x-k8s.io/cluster-name=demo,pool=a"',
    );
  });

  it("stop() ends the managers and removes the webhook registrations and conversion webhooks", async () => {
    const names = capi!.webhookConfigurations;
    const pids = [capi!.manager.pid, capi!.bootstrap.pid];
    await capi!.stop();
    expect(pids.filter(alive)).toEqual([]);
    capi = undefined;
    const left = await kubectl([
      "get",
      "mutatingwebhookconfigurations,validatingwebhookconfigurations",
      "-o",
      "name",
    ]);
    for (const name of names) expect(left.stdout).not.toContain(name);
    const strategy = await kubectl([
      "get",
      "crd",
      "clusters.cluster.x-k8s.io",
      "-o",
      "jsonpath={.spec.conversion.strategy}",
    ]);
    expect(strategy.stdout).toBe("None");
  });
});
