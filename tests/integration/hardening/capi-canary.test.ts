// Hardening suite, secrets through Cluster API: one provisioning flow driven by Cluster API
// v1.14's own core manager (a Cluster and a MachineDeployment of two workers whose bootstrap data
// is a canary payload, on hosts whose BMC password is a canary), then the canary is searched for
// in the operator's and the managers' logs, every event, every object of the namespace (status and
// conditions included) and the module's metrics: zero hits.
import { K8s, kind } from "kubernetes-fluent-client";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";

import { startCapi, type CapiManagers } from "../../../lab/controlplane/capi-manager";
import { installBeskar7Crds } from "../api/kubectl";
import { apply, list } from "../capi/support";
import { createNamespace, eventually } from "../support/kube";
import { startOperator, type Operator } from "../support/operator";
import {
  BOOTSTRAP_SECRET,
  CANARY_BOOTSTRAP,
  canarySummary,
  type Fleet,
  MACHINE_SPEC,
  OPERATOR_ENV,
  registerFleet,
  searchCanary,
  startFleet,
  waitHosts,
  withOperatorLog,
} from "./support";

const INFRA = "infrastructure.cluster.x-k8s.io";
const CLUSTER = "canary";
const WORKERS = 2;

describe("no canary leaks through a Cluster API provisioning flow", () => {
  let capi: CapiManagers | undefined;
  let operator: Operator;
  let fleet: Fleet;
  let ns: string;

  beforeAll(async () => {
    await installBeskar7Crds();
    capi = await startCapi({ kubeconfig: inject("kubeconfig"), kubectl: inject("kubectl") });
    operator = await startOperator(OPERATOR_ENV);
    ns = await createNamespace("hardening-capi");
    fleet = await startFleet(WORKERS, 2, {}, "capi");
    await registerFleet(ns, fleet);
    await withOperatorLog(operator, () =>
      waitHosts(ns, WORKERS, h => h.status?.state === "Available", "hosts Available"),
    );
    await K8s(kind.Secret).Apply(
      {
        metadata: { name: BOOTSTRAP_SECRET, namespace: ns },
        type: "cluster.x-k8s.io/secret",
        stringData: { value: CANARY_BOOTSTRAP, format: "cloud-config" },
      },
      { force: true },
    );
  });

  afterAll(async () => {
    await operator?.stop();
    await capi?.stop();
    await fleet?.stop();
  });

  it("provisions two workers and leaks neither the BMC password nor the bootstrap data", async () => {
    await apply(
      ns,
      `
apiVersion: ${INFRA}/v1beta1
kind: Beskar7Cluster
metadata:
  name: ${CLUSTER}
spec:
  controlPlaneEndpoint:
    host: 192.0.2.20
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
---
apiVersion: ${INFRA}/v1beta1
kind: Beskar7MachineTemplate
metadata:
  name: workers
spec:
  template:
    spec:
      provisioningMode: ${MACHINE_SPEC.provisioningMode}
      osFamily: ${MACHINE_SPEC.osFamily}
      imageURL: ${MACHINE_SPEC.imageURL}
---
apiVersion: cluster.x-k8s.io/v1beta2
kind: MachineDeployment
metadata:
  name: workers
  annotations:
    machineset.cluster.x-k8s.io/skip-preflight-checks: All
spec:
  clusterName: ${CLUSTER}
  replicas: ${WORKERS}
  template:
    spec:
      clusterName: ${CLUSTER}
      version: v1.34.1
      bootstrap:
        dataSecretName: ${BOOTSTRAP_SECRET}
      infrastructureRef:
        apiGroup: ${INFRA}
        kind: Beskar7MachineTemplate
        name: workers
`,
    );
    const machines = await withOperatorLog(operator, () =>
      eventually(
        async () => {
          const all = await list(ns, "machines.cluster.x-k8s.io");
          return (
            all.length === WORKERS &&
            all.every(m => m.spec?.providerID?.startsWith("beskar7://")) &&
            all
          );
        },
        "Cluster API's Machines with Beskar7 providerIDs",
        180_000,
        500,
      ).catch((err: Error) => {
        err.message += `\n--- capi ---\n${capi?.logs().slice(-3000)}`;
        throw err;
      }),
    );
    const hosts = await waitHosts(
      ns,
      WORKERS,
      h => h.status?.state === "Provisioned",
      "hosts Provisioned",
    );

    // Cluster API's own objects too: what its managers copied from ours.
    const capiObjects = [];
    for (const resource of [
      "machinesets.cluster.x-k8s.io",
      "machinedeployments.cluster.x-k8s.io",
      "beskar7machinetemplates.infrastructure.cluster.x-k8s.io",
      "beskar7clusters.infrastructure.cluster.x-k8s.io",
    ])
      capiObjects.push(...(await list(ns, resource)));
    const report = await searchCanary([ns], operator, [
      capi?.logs() ?? "",
      ...capiObjects.map(o => JSON.stringify(o)),
    ]);
    report.objects += capiObjects.length;
    console.log(
      `capi flow: ${machines.length} Machines made by Cluster API's manager, ${hosts.length} hosts Provisioned; ` +
        `capi ${canarySummary(report)} (operator and managers' logs)`,
    );
    expect(report.hits).toEqual([]);
  }, 300_000);
});
