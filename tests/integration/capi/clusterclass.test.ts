// ClusterClass with Beskar7's templates, against Cluster API v1.14's own core manager (topology
// controller on: --feature-gates=ClusterTopology=true) and Beskar7's operator with its admission
// webhooks. The topology controller creates the Beskar7Cluster from the Beskar7ClusterTemplate and
// clones the Beskar7MachineTemplates, and before every later write it sends server-side-apply dry
// runs (annotated topology.cluster.x-k8s.io/dry-run) to find out whether anything would change;
// those go through Beskar7's webhooks, so an admission rule that refused them would stop the
// topology. When a ClusterClass points at a different template, the controller dry-runs the change
// against the existing clone, sees a diff, and rotates the clone instead of editing it.
//
// No control-plane provider runs: KubeadmControlPlane(Template)'s CRDs are installed (with the
// contract labels of the release) so that the topology controller can create the control plane
// object, and the test reports it provisioned by writing status.version, which is what the topology
// controller waits for before it creates MachineDeployments.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { stringify, parseAllDocuments } from "yaml";
import { readFile } from "node:fs/promises";

import { capiCrdPaths } from "../../../lab/controlplane/capi-crds";
import { startCapi, type CapiManagers } from "../../../lab/controlplane/capi-manager";
import { installBeskar7Crds } from "../api/kubectl";
import { createNamespace, eventually, kubectl } from "../support/kube";
import { startOperator, type Operator } from "../support/operator";
import { condition, inNamespace } from "./support";

const INFRA = "infrastructure.cluster.x-k8s.io";
const CLASS = "beskar7-class";
const CLUSTER = "topo";
const VERSION = "v1.34.1";

interface Ref {
  apiGroup?: string;
  apiVersion?: string;
  kind: string;
  name: string;
}

let capi: CapiManagers | undefined;
let operator: Operator | undefined;
let ns: string;
const { apply, get, list } = inNamespace(() => ns);

/** Admission denials anywhere: the operator's output or the core manager's log. */
function denials(): string[] {
  const text = `${operator?.output() ?? ""}\n${capi?.manager.tail() ?? ""}`;
  return text
    .split("\n")
    .filter(line => /denied the request|admission webhook .* denied|dry-run failed/i.test(line));
}

function waitFor<T>(check: () => Promise<T | undefined | false>, what: string): Promise<T> {
  return eventually(check, what, 90_000, 500).catch((err: Error) => {
    throw new Error(
      `${err.message}\n--- denials ---\n${denials().join("\n")}\n${capi?.logs().slice(-6000) ?? ""}\n--- operator ---\n${operator?.output().slice(-3000) ?? ""}`,
    );
  });
}

/** KubeadmControlPlane(Template) CRDs with the labels the release's kustomization adds; no
 *  conversion webhook (everything here speaks v1beta2, the storage version). */
async function installKubeadmControlPlaneCrds(): Promise<void> {
  const files = (await capiCrdPaths()).kubeadmControlPlane;
  const docs: string[] = [];
  for (const file of files) {
    for (const doc of parseAllDocuments(await readFile(file, "utf8"))) {
      const crd = doc.toJS() as { metadata: { labels?: Record<string, string> } } | null;
      if (!crd) continue;
      crd.metadata.labels = {
        ...crd.metadata.labels,
        "cluster.x-k8s.io/provider": "control-plane-kubeadm",
        "cluster.x-k8s.io/v1beta1": "v1beta1",
        "cluster.x-k8s.io/v1beta2": "v1beta2",
      };
      docs.push(stringify(crd));
    }
  }
  const applied = await kubectl(
    ["apply", "--server-side", "--force-conflicts", "--field-manager=beskar7-tests", "-f", "-"],
    docs.join("---\n"),
  );
  if (applied.code !== 0) throw new Error(applied.stderr);
  const waited = await kubectl([
    "wait",
    "--for=condition=Established",
    "--timeout=60s",
    "crd/kubeadmcontrolplanes.controlplane.cluster.x-k8s.io",
    "crd/kubeadmcontrolplanetemplates.controlplane.cluster.x-k8s.io",
  ]);
  if (waited.code !== 0) throw new Error(waited.stderr);
}

const machineTemplate = (name: string, role: string, image: string) => `
apiVersion: ${INFRA}/v1beta1
kind: Beskar7MachineTemplate
metadata:
  name: ${name}
spec:
  template:
    spec:
      provisioningMode: RemoteConfig
      osFamily: kairos
      imageURL: ${image}
      configURL: https://config.example/${role}.yaml
      hostSelector:
        matchLabels:
          beskar7.infrastructure.cluster.x-k8s.io/role: ${role}
`;

beforeAll(async () => {
  await installBeskar7Crds();
  await installKubeadmControlPlaneCrds();
  capi = await startCapi({
    kubeconfig: inject("kubeconfig"),
    kubectl: inject("kubectl"),
    // ClusterTopology is an alpha gate, off by default in v1.14.
    args: { manager: ["--feature-gates=ClusterTopology=true"] },
  });
  operator = await startOperator();
  ns = await createNamespace("capi-clusterclass");
});

afterAll(async () => {
  await operator?.stop();
  await capi?.stop();
});

describe("ClusterClass with Beskar7's templates", () => {
  it("the ClusterClass controller accepts the Beskar7ClusterTemplate and Beskar7MachineTemplates", async () => {
    await apply(`
apiVersion: ${INFRA}/v1beta1
kind: Beskar7ClusterTemplate
metadata:
  name: ${CLASS}
spec:
  template:
    spec:
      controlPlaneEndpoint:
        host: 192.0.2.50
      failureDomains:
        - name: rack-a
          controlPlane: true
---
${machineTemplate(`${CLASS}-control-plane`, "control-plane", "https://images.example/kairos.iso")}
---
${machineTemplate(`${CLASS}-worker`, "worker", "https://images.example/kairos.iso")}
---
apiVersion: controlplane.cluster.x-k8s.io/v1beta2
kind: KubeadmControlPlaneTemplate
metadata:
  name: ${CLASS}
spec:
  template:
    spec:
      kubeadmConfigSpec:
        initConfiguration:
          nodeRegistration:
            kubeletExtraArgs:
              - name: node-labels
                value: beskar7.infrastructure.cluster.x-k8s.io/role=control-plane
---
apiVersion: bootstrap.cluster.x-k8s.io/v1beta2
kind: KubeadmConfigTemplate
metadata:
  name: ${CLASS}-worker
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
kind: ClusterClass
metadata:
  name: ${CLASS}
spec:
  infrastructure:
    templateRef:
      apiVersion: ${INFRA}/v1beta1
      kind: Beskar7ClusterTemplate
      name: ${CLASS}
  controlPlane:
    templateRef:
      apiVersion: controlplane.cluster.x-k8s.io/v1beta2
      kind: KubeadmControlPlaneTemplate
      name: ${CLASS}
    machineInfrastructure:
      templateRef:
        apiVersion: ${INFRA}/v1beta1
        kind: Beskar7MachineTemplate
        name: ${CLASS}-control-plane
  workers:
    machineDeployments:
      - class: worker
        bootstrap:
          templateRef:
            apiVersion: bootstrap.cluster.x-k8s.io/v1beta2
            kind: KubeadmConfigTemplate
            name: ${CLASS}-worker
        infrastructure:
          templateRef:
            apiVersion: ${INFRA}/v1beta1
            kind: Beskar7MachineTemplate
            name: ${CLASS}-worker
`);
    const cc = await waitFor(async () => {
      const c = await get("clusterclasses.cluster.x-k8s.io", CLASS);
      return condition(c, "VariablesReady")?.status === "True" && c;
    }, "the ClusterClass reconciled (VariablesReady=True)");
    expect(cc.status?.observedGeneration).toBe(1);
    // The ClusterClass controller makes itself an owner of the templates it references (an
    // UPDATE of each, which Beskar7's webhooks must let through).
    const template = await waitFor(async () => {
      const t = await get("beskar7machinetemplates", `${CLASS}-worker`);
      return t?.metadata.ownerReferences?.some(o => o.kind === "ClusterClass") && t;
    }, "the ClusterClass's ownerReference on the worker Beskar7MachineTemplate");
    expect(template.metadata.ownerReferences).toContainEqual(
      expect.objectContaining({ kind: "ClusterClass", name: CLASS }),
    );
  });

  it("a Cluster with spec.topology gets a Beskar7Cluster and a control plane on a cloned Beskar7MachineTemplate", async () => {
    await apply(`
apiVersion: cluster.x-k8s.io/v1beta2
kind: Cluster
metadata:
  name: ${CLUSTER}
spec:
  topology:
    classRef:
      name: ${CLASS}
    version: ${VERSION}
    controlPlane:
      replicas: 1
    workers:
      machineDeployments:
        - class: worker
          name: md-0
          replicas: 1
`);
    const cluster = await waitFor(async () => {
      const c = await get("clusters.cluster.x-k8s.io", CLUSTER);
      const spec = c?.spec as { infrastructureRef?: Ref; controlPlaneRef?: Ref } | undefined;
      return !!spec?.infrastructureRef?.name && !!spec.controlPlaneRef?.name && c;
    }, "the Cluster's infrastructureRef and controlPlaneRef, set by the topology controller");
    const refs = cluster.spec as { infrastructureRef: Ref; controlPlaneRef: Ref };
    expect(refs.infrastructureRef.kind).toBe("Beskar7Cluster");

    const b7c = await waitFor(
      () => get("beskar7clusters", refs.infrastructureRef.name),
      "the Beskar7Cluster",
    );
    expect(b7c.metadata.labels?.["cluster.x-k8s.io/cluster-name"]).toBe(CLUSTER);
    expect(b7c.metadata.labels?.["topology.cluster.x-k8s.io/owned"]).toBe("");
    // From the template, with Beskar7's defaulting webhook's port.
    expect(b7c.spec).toMatchObject({
      controlPlaneEndpoint: { host: "192.0.2.50", port: 6443 },
      failureDomains: [{ name: "rack-a", controlPlane: true }],
    });

    const kcp = await waitFor(
      () => get("kubeadmcontrolplanes.controlplane.cluster.x-k8s.io", refs.controlPlaneRef.name),
      "the KubeadmControlPlane",
    );
    const cpInfra = (kcp.spec as { machineTemplate: { spec: { infrastructureRef: Ref } } })
      .machineTemplate.spec.infrastructureRef;
    expect(cpInfra.kind).toBe("Beskar7MachineTemplate");
    const cpTemplate = await waitFor(
      () => get("beskar7machinetemplates", cpInfra.name),
      "the control plane's Beskar7MachineTemplate clone",
    );
    expect(cpTemplate.metadata.annotations?.["cluster.x-k8s.io/cloned-from-name"]).toBe(
      `${CLASS}-control-plane`,
    );
    expect(cpTemplate.metadata.labels?.["topology.cluster.x-k8s.io/owned"]).toBe("");
  });

  it("once the control plane reports its version, a MachineDeployment on a cloned worker Beskar7MachineTemplate", async () => {
    const cluster = (await get("clusters.cluster.x-k8s.io", CLUSTER))!;
    const cpName = (cluster.spec as { controlPlaneRef: Ref }).controlPlaneRef.name;
    // What KCP would report once its first machine is up: the topology controller holds new
    // MachineDeployments until the control plane is no longer provisioning.
    const patched = await kubectl([
      "patch",
      "kubeadmcontrolplanes.controlplane.cluster.x-k8s.io",
      cpName,
      "-n",
      ns,
      "--subresource=status",
      "--type=merge",
      "-p",
      JSON.stringify({ status: { version: VERSION, replicas: 1 } }),
    ]);
    expect(patched.code, patched.stderr).toBe(0);

    const md = await waitFor(async () => {
      const mds = await list("machinedeployments.cluster.x-k8s.io");
      return mds.find(
        m => m.metadata.labels?.["topology.cluster.x-k8s.io/deployment-name"] === "md-0",
      );
    }, "the topology's MachineDeployment md-0");
    const infraRef = (md.spec as { template: { spec: { infrastructureRef: Ref } } }).template.spec
      .infrastructureRef;
    expect(infraRef.kind).toBe("Beskar7MachineTemplate");
    const clone = await waitFor(
      () => get("beskar7machinetemplates", infraRef.name),
      "the worker Beskar7MachineTemplate clone",
    );
    expect(clone.metadata.annotations?.["cluster.x-k8s.io/cloned-from-name"]).toBe(
      `${CLASS}-worker`,
    );
    expect(clone.spec).toMatchObject({
      template: { spec: { imageURL: "https://images.example/kairos.iso" } },
    });

    const reconciled = await waitFor(async () => {
      const c = await get("clusters.cluster.x-k8s.io", CLUSTER);
      return condition(c, "TopologyReconciled")?.status === "True" && c;
    }, "TopologyReconciled=True on the Cluster");
    expect(condition(reconciled, "TopologyReconciled")?.reason).toBe("ReconcileSucceeded");
    expect(denials()).toEqual([]);
  });

  it("Beskar7's webhooks pass a topology dry run that changes a template, and refuse the same change without the annotation", async () => {
    const md = (await list("machinedeployments.cluster.x-k8s.io"))[0]!;
    const name = (md.spec as { template: { spec: { infrastructureRef: Ref } } }).template.spec
      .infrastructureRef.name;
    const change = (annotations: Record<string, string>) =>
      stringify({
        apiVersion: `${INFRA}/v1beta1`,
        kind: "Beskar7MachineTemplate",
        metadata: { name, namespace: ns, annotations },
        spec: {
          template: {
            spec: {
              provisioningMode: "RemoteConfig",
              osFamily: "kairos",
              imageURL: "https://images.example/kairos-next.iso",
              configURL: "https://config.example/worker.yaml",
            },
          },
        },
      });
    const args = [
      "apply",
      "--server-side",
      "--dry-run=server",
      "--force-conflicts",
      "--field-manager=capi-topology",
      "-f",
      "-",
    ];
    const dryRun = await kubectl(args, change({ "topology.cluster.x-k8s.io/dry-run": "" }));
    expect(dryRun.code, dryRun.stderr).toBe(0);
    const refused = await kubectl(args, change({}));
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("spec.template: is immutable");
  });

  it("pointing the ClusterClass at a new worker template rotates the clone, with no admission denial", async () => {
    const before = (await list("machinedeployments.cluster.x-k8s.io"))[0]!;
    const oldClone = (before.spec as { template: { spec: { infrastructureRef: Ref } } }).template
      .spec.infrastructureRef.name;
    await apply(`
${machineTemplate(`${CLASS}-worker-v2`, "worker", "https://images.example/kairos-v2.iso")}
`);
    const patched = await kubectl([
      "patch",
      "clusterclasses.cluster.x-k8s.io",
      CLASS,
      "-n",
      ns,
      "--type=json",
      "-p",
      JSON.stringify([
        {
          op: "replace",
          path: "/spec/workers/machineDeployments/0/infrastructure/templateRef/name",
          value: `${CLASS}-worker-v2`,
        },
      ]),
    ]);
    expect(patched.code, patched.stderr).toBe(0);

    const rotated = await waitFor(async () => {
      const md = (await list("machinedeployments.cluster.x-k8s.io"))[0];
      const ref = (md?.spec as { template: { spec: { infrastructureRef: Ref } } } | undefined)
        ?.template.spec.infrastructureRef;
      return ref && ref.name !== oldClone && ref.name;
    }, "the MachineDeployment pointing at a new Beskar7MachineTemplate clone");
    const clone = (await get("beskar7machinetemplates", rotated))!;
    expect(clone.metadata.annotations?.["cluster.x-k8s.io/cloned-from-name"]).toBe(
      `${CLASS}-worker-v2`,
    );
    expect(clone.spec).toMatchObject({
      template: { spec: { imageURL: "https://images.example/kairos-v2.iso" } },
    });
    await waitFor(async () => {
      const c = await get("clusters.cluster.x-k8s.io", CLUSTER);
      return condition(c, "TopologyReconciled")?.status === "True" && c;
    }, "TopologyReconciled=True after the rotation");
    expect(denials()).toEqual([]);
  });

  it("a change of the Beskar7ClusterTemplate's content reaches the Beskar7Cluster in place", async () => {
    await apply(`
apiVersion: ${INFRA}/v1beta1
kind: Beskar7ClusterTemplate
metadata:
  name: ${CLASS}-v2
spec:
  template:
    spec:
      controlPlaneEndpoint:
        host: 192.0.2.50
      failureDomains:
        - name: rack-a
          controlPlane: true
        - name: rack-b
          controlPlane: false
`);
    const patched = await kubectl([
      "patch",
      "clusterclasses.cluster.x-k8s.io",
      CLASS,
      "-n",
      ns,
      "--type=json",
      "-p",
      JSON.stringify([
        { op: "replace", path: "/spec/infrastructure/templateRef/name", value: `${CLASS}-v2` },
      ]),
    ]);
    expect(patched.code, patched.stderr).toBe(0);
    const cluster = (await get("clusters.cluster.x-k8s.io", CLUSTER))!;
    const name = (cluster.spec as { infrastructureRef: Ref }).infrastructureRef.name;
    const b7c = await waitFor(async () => {
      const c = await get("beskar7clusters", name);
      const domains = (c?.spec as { failureDomains?: unknown[] } | undefined)?.failureDomains;
      return domains?.length === 2 && c;
    }, "the second failure domain on the Beskar7Cluster");
    expect(b7c.spec).toMatchObject({ controlPlaneEndpoint: { host: "192.0.2.50", port: 6443 } });
    expect(denials()).toEqual([]);
  });
});
