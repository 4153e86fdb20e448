// Beskar7 as a Cluster API infrastructure provider, end to end: Cluster API v1.14's own core
// manager and kubeadm bootstrap manager (lab/controlplane/capi-manager.ts), Beskar7's operator
// (built module, webhooks) and test BMCs over real captures, on the suite's API server, which also
// plays the workload cluster (reached through the <cluster>-kubeconfig Secret). No CAPI object is
// faked: Machines, MachineSets and Beskar7Machines are made by Cluster API from templates.
import { readFile } from "node:fs/promises";
import { K8s, kind } from "kubernetes-fluent-client";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";

import { PhysicalHost } from "../../../capabilities/api";
import type { StartedBootService } from "../../../boot-service/start";
import type { TestBmc } from "../../../lab/bmc/server";
import { startCapi, type CapiManagers } from "../../../lab/controlplane/capi-manager";
import { installBeskar7Crds } from "../api/kubectl";
import {
  getHost,
  hostFor,
  inState,
  patchHost,
  waitForHost,
  waitGone,
} from "../physical-host/support";
import { createNamespace, eventually, kubectl } from "../support/kube";
import { buildIso } from "../../unit/boot/patched-iso-fixtures";
import { imageServer, startTestBootService } from "../boot/service";
import { CANARY_BOOTSTRAP_MARK } from "../support/canary";
import { startOperator, type Operator } from "../support/operator";
import { startTestBmc } from "../support/test-bmc";
import { apply, condition, get, list, type Obj } from "./support";

const INFRA = "infrastructure.cluster.x-k8s.io";
const DELL = "nvidia-libredfish_dell_poweredge-r750_idrac9-6.00.30"; // 512 GiB, 36 cores
const DMTF = "dmtf_public-rackmount1"; // 96 GiB, 8 cores

let capi: CapiManagers | undefined;
let operator: Operator | undefined;
let boot: StartedBootService | undefined;
/** Serves the RemoteConfig workers' installer ISO, which the boot service patches. */
let images: { url: string; close(): void } | undefined;
const bmcs = new Map<string, TestBmc>();

/** eventually(), with the operator's and the managers' recent output when it fails. */
function waitFor<T>(check: () => Promise<T | undefined | false>, what: string, ms = 120_000) {
  return eventually(check, what, ms, 500).catch((err: Error) => {
    throw new Error(
      `${err.message}\n--- operator ---\n${operator?.output().slice(-4000)}\n--- capi ---\n${capi?.logs().slice(-3000)}`,
    );
  });
}

/** A host behind its own test BMC, with its own SMBIOS UUID. */
async function host(ns: string, name: string, mockup: string, labels: Record<string, string>) {
  const uuid = `4c4c4544-0000-4000-8000-${Buffer.from(`${ns}/${name}`).toString("hex").slice(-12).padStart(12, "0")}`;
  const b = await startTestBmc({ mockup, identity: { uuid, serialNumber: name } });
  bmcs.set(`${ns}/${name}`, b);
  await hostFor(b, ns, name);
  await patchHost(ns, name, [{ op: "add", path: "/metadata/labels", value: labels }]);
  return b;
}

/** The workload cluster is this API server, reached as Cluster API reaches one. */
async function kubeconfigSecret(ns: string, cluster: string): Promise<void> {
  const value = await readFile(inject("kubeconfig"), "utf8");
  await K8s(kind.Secret).Apply(
    {
      metadata: {
        name: `${cluster}-kubeconfig`,
        namespace: ns,
        labels: { "cluster.x-k8s.io/cluster-name": cluster },
      },
      type: "cluster.x-k8s.io/secret",
      stringData: { value },
    },
    { force: true },
  );
}

function clusterYaml(cluster: string, endpoint = "192.0.2.10"): string {
  return `
apiVersion: ${INFRA}/v1beta1
kind: Beskar7Cluster
metadata:
  name: ${cluster}
spec:
  controlPlaneEndpoint:
    host: ${endpoint}
    port: 6443
---
apiVersion: cluster.x-k8s.io/v1beta2
kind: Cluster
metadata:
  name: ${cluster}
spec:
  infrastructureRef:
    apiGroup: ${INFRA}
    kind: Beskar7Cluster
    name: ${cluster}
`;
}

function workersYaml(
  cluster: string,
  name: string,
  replicas: number,
  bootstrapSecret: string,
  spec: string,
): string {
  return `
apiVersion: ${INFRA}/v1beta1
kind: Beskar7MachineTemplate
metadata:
  name: ${name}
spec:
  template:
    spec:
${spec}
---
apiVersion: cluster.x-k8s.io/v1beta2
kind: MachineDeployment
metadata:
  name: ${name}
  annotations:
    machineset.cluster.x-k8s.io/skip-preflight-checks: All
spec:
  clusterName: ${cluster}
  replicas: ${replicas}
  template:
    spec:
      clusterName: ${cluster}
      version: v1.34.1
      bootstrap:
        dataSecretName: ${bootstrapSecret}
      infrastructureRef:
        apiGroup: ${INFRA}
        kind: Beskar7MachineTemplate
        name: ${name}
`;
}

async function machinesOf(ns: string, md: string): Promise<Obj[]> {
  return (await list(ns, "machines.cluster.x-k8s.io")).filter(
    m => m.metadata.labels?.["cluster.x-k8s.io/deployment-name"] === md,
  );
}

beforeAll(async () => {
  await installBeskar7Crds();
  // Without a control-plane provider, Cluster API watches a cluster's Nodes only once its control
  // plane is initialized, which takes the first control-plane Machine's nodeRef: that Machine sees
  // its Node at the next resync. A short resync keeps the test short (the default is 10 min).
  capi = await startCapi({
    kubeconfig: inject("kubeconfig"),
    kubectl: inject("kubectl"),
    args: { manager: ["--sync-period=15s"] },
  });
  // RemoteConfig workers boot the ISO patched by the boot service (issue 11).
  images = await imageServer({
    "/kairos.iso": buildIso({ "boot/grub/grub.cfg": "menuentry k {\n  linux /vmlinuz quiet\n}\n" }),
  });
  const started = await startTestBootService();
  boot = started.service;
  operator = await startOperator({
    ...started.operatorEnv,
    BESKAR7_HOST_LOST_AFTER_MS: "4000",
    BESKAR7_NODE_CHECK_INTERVAL_MS: "500",
    BESKAR7_MACHINE_RECHECK_MS: "3000",
  });
});

afterAll(async () => {
  await operator?.stop();
  await boot?.stop();
  images?.close();
  await capi?.stop();
  await Promise.all([...bmcs.values()].map(b => b.stop()));
});

describe("Beskar7 with Cluster API's core manager", () => {
  let ns: string;
  const cluster = "demo";

  beforeAll(async () => {
    ns = await createNamespace("capi-e2e");
    await host(ns, "cp-0", DELL, {
      "beskar7.infrastructure.cluster.x-k8s.io/role": "control-plane",
    });
    for (const n of ["w-0", "w-1", "w-2"])
      await host(ns, n, DELL, { "beskar7.infrastructure.cluster.x-k8s.io/role": "worker" });
    // A worker-labelled host with 96 GiB: below the workers' hardwareRequirements.
    await host(ns, "small", DMTF, { "beskar7.infrastructure.cluster.x-k8s.io/role": "worker" });
    for (const n of ["cp-0", "w-0", "w-1", "w-2", "small"])
      await waitForHost(ns, n, inState("Available"), "Available");
    await kubeconfigSecret(ns, cluster);
    await K8s(kind.Secret).Apply(
      {
        metadata: { name: "worker-bootstrap", namespace: ns },
        type: "cluster.x-k8s.io/secret",
        stringData: {
          value: `#cloud-config\n# worker bootstrap data\n# ${CANARY_BOOTSTRAP_MARK}\n`,
          format: "cloud-config",
        },
      },
      { force: true },
    );
  });

  it("a Cluster with a control-plane Machine (kubeadm bootstrap) and a MachineDeployment of three workers reaches Provisioned", async () => {
    await apply(
      ns,
      `${clusterYaml(cluster)}
---
apiVersion: bootstrap.cluster.x-k8s.io/v1beta2
kind: KubeadmConfig
metadata:
  name: ${cluster}-cp-0
spec:
  initConfiguration:
    nodeRegistration:
      name: cp-0
---
apiVersion: ${INFRA}/v1beta1
kind: Beskar7Machine
metadata:
  name: ${cluster}-cp-0
spec:
  provisioningMode: PreBakedISO
  imageURL: https://images.example/control-plane.iso
  hostSelector:
    matchLabels:
      beskar7.infrastructure.cluster.x-k8s.io/role: control-plane
---
apiVersion: cluster.x-k8s.io/v1beta2
kind: Machine
metadata:
  name: ${cluster}-cp-0
  labels:
    cluster.x-k8s.io/control-plane: ""
spec:
  clusterName: ${cluster}
  version: v1.34.1
  bootstrap:
    configRef:
      apiGroup: bootstrap.cluster.x-k8s.io
      kind: KubeadmConfig
      name: ${cluster}-cp-0
  infrastructureRef:
    apiGroup: ${INFRA}
    kind: Beskar7Machine
    name: ${cluster}-cp-0
---
${workersYaml(
  cluster,
  `${cluster}-md-0`,
  3,
  "worker-bootstrap",
  `      provisioningMode: RemoteConfig
      osFamily: kairos
      imageURL: ${images!.url}/kairos.iso
      configURL: https://config.example/worker.yaml
      hardwareRequirements:
        minMemoryGB: 128
      hostSelector:
        matchLabels:
          beskar7.infrastructure.cluster.x-k8s.io/role: worker`,
)}`,
    );

    const infra = await waitFor(async () => {
      const all = await list(ns, "beskar7machines");
      return (
        all.length === 4 && all.every(m => m.status?.initialization?.provisioned === true) && all
      );
    }, "four provisioned Beskar7Machines");
    const claimed = infra.map(m => m.status?.hostRef?.name).sort();
    expect(claimed).toEqual(["cp-0", "w-0", "w-1", "w-2"]);
    for (const m of infra) {
      expect(m.spec?.providerID).toBe(`beskar7://${ns}/${m.status?.hostRef?.name}`);
      expect(condition(m, "Ready")?.status).toBe("True");
    }
    // The control plane's bootstrap data came from Cluster API's kubeadm bootstrap provider.
    const cpHost = await getHost(ns, "cp-0");
    const dataSecret = cpHost.spec?.provisioning?.bootstrapDataSecretRef;
    expect(dataSecret).toBeDefined();
    const kubeadm = await get(ns, "kubeadmconfigs.bootstrap.cluster.x-k8s.io", `${cluster}-cp-0`);
    expect(kubeadm?.status?.dataSecretName).toBe(dataSecret);
    // The request carries the Secret's name, never its bytes.
    expect(JSON.stringify(cpHost.spec)).not.toContain("#cloud-config");
    expect(JSON.stringify(await getHost(ns, "w-0"))).not.toContain("worker bootstrap data");

    // providerIDs reach the Machines.
    await waitFor(async () => {
      const machines = await list(ns, "machines.cluster.x-k8s.io");
      return (
        machines.length === 4 && machines.every(m => m.spec?.providerID?.startsWith("beskar7://"))
      );
    }, "providerIDs on all four Machines");
    const b7c = await get(ns, "beskar7clusters", cluster);
    expect(b7c?.status?.initialization?.provisioned).toBe(true);
    const c = await get(ns, "clusters.cluster.x-k8s.io", cluster);
    expect(condition(c, "InfrastructureReady")?.status).toBe("True");

    // The under-spec host was never claimed.
    const small = await getHost(ns, "small");
    expect(small.spec?.consumerRef).toBeUndefined();
    expect(small.status?.state).toBe("Available");
  });

  it("a Node with the host's systemUUID gets its providerID; the Machines get nodeRefs and go Running", async () => {
    for (const name of ["cp-0", "w-0", "w-1", "w-2"]) {
      const h = await getHost(ns, name);
      const nodeName = `${ns}-${name}`;
      await K8s(kind.Node).Apply({ metadata: { name: nodeName } }, { force: true });
      const r = await kubectl([
        "patch",
        "node",
        nodeName,
        "--subresource=status",
        "--type=merge",
        "-p",
        JSON.stringify({
          status: {
            nodeInfo: {
              systemUUID: h.status?.hardwareDetails?.systemUUID?.toUpperCase(),
              machineID: name,
              bootID: name,
              kernelVersion: "6.1",
              osImage: "test",
              containerRuntimeVersion: "containerd://2",
              kubeletVersion: "v1.34.1",
              kubeProxyVersion: "v1.34.1",
              operatingSystem: "linux",
              architecture: "amd64",
            },
          },
        }),
      ]);
      expect(r.stderr).toBe("");
    }
    await waitFor(async () => {
      const nodes = await Promise.all(
        ["cp-0", "w-0", "w-1", "w-2"].map(n => K8s(kind.Node).Get(`${ns}-${n}`)),
      );
      return nodes.every(
        n => n.spec?.providerID === `beskar7://${ns}/${n.metadata!.name!.slice(ns.length + 1)}`,
      );
    }, "providerIDs on the Nodes");
    await waitFor(async () => {
      const machines = await list(ns, "machines.cluster.x-k8s.io");
      return (
        machines.every(m => m.status?.nodeRef?.name && m.status.phase === "Running") && machines
      );
    }, "nodeRefs and phase Running on the Machines");
  });

  it("a paused cluster sends zero BMC requests", async () => {
    await kubectl([
      "patch",
      "clusters.cluster.x-k8s.io",
      cluster,
      "-n",
      ns,
      "--type=merge",
      "-p",
      '{"spec":{"paused":true}}',
    ]);
    await waitFor(async () => {
      const hosts = await Promise.all(["cp-0", "w-0", "w-1", "w-2"].map(n => getHost(ns, n)));
      return hosts.every(h => h.metadata?.annotations?.["cluster.x-k8s.io/paused"]) && hosts;
    }, "the cluster's hosts paused");
    const before = ["cp-0", "w-0", "w-1", "w-2"].map(n => bmcs.get(`${ns}/${n}`)!.requests.total);
    await new Promise(r => setTimeout(r, 5000)); // several power-check intervals (1.5 s here)
    const after = ["cp-0", "w-0", "w-1", "w-2"].map(n => bmcs.get(`${ns}/${n}`)!.requests.total);
    expect(after).toEqual(before);
    await kubectl([
      "patch",
      "clusters.cluster.x-k8s.io",
      cluster,
      "-n",
      ns,
      "--type=merge",
      "-p",
      '{"spec":{"paused":false}}',
    ]);
    await waitFor(async () => {
      const hosts = await Promise.all(["cp-0", "w-0", "w-1", "w-2"].map(n => getHost(ns, n)));
      return hosts.every(h => !h.metadata?.annotations?.["cluster.x-k8s.io/paused"]) && hosts;
    }, "the cluster's hosts resumed");
  });

  it("scaling the MachineDeployment down releases hosts to Available, powered off, media ejected", async () => {
    await kubectl([
      "scale",
      "machinedeployments.cluster.x-k8s.io",
      `${cluster}-md-0`,
      "-n",
      ns,
      "--replicas=1",
    ]);
    const released = await waitFor(async () => {
      const hosts = await Promise.all(["w-0", "w-1", "w-2"].map(n => getHost(ns, n)));
      const free = hosts.filter(h => h.status?.state === "Available" && !h.spec?.consumerRef);
      return free.length === 2 && free;
    }, "two worker hosts Available again");
    for (const h of released) {
      const b = bmcs.get(`${ns}/${h.metadata!.name}`)!;
      expect(b.powerState()).toBe("Off");
      expect(b.insertedMedia()).toEqual([]);
    }
    // Cluster API removes the Machines last (after their Nodes): wait for it.
    await waitFor(
      async () => (await machinesOf(ns, `${cluster}-md-0`)).length === 1,
      "one worker Machine left",
    );
  });

  it("deleting the Cluster leaves every host Available, powered off, media ejected", async () => {
    await kubectl(["delete", "clusters.cluster.x-k8s.io", cluster, "-n", ns, "--wait=false"]);
    await waitFor(
      async () => (await get(ns, "clusters.cluster.x-k8s.io", cluster)) === undefined,
      "the Cluster gone",
      180_000,
    );
    expect(await list(ns, "beskar7machines")).toEqual([]);
    for (const name of ["cp-0", "w-0", "w-1", "w-2", "small"]) {
      const h = await waitForHost(ns, name, inState("Available"), "Available");
      expect(h.spec?.consumerRef).toBeUndefined();
      if (name === "small") continue; // never claimed, so never touched
      const b = bmcs.get(`${ns}/${name}`)!;
      expect(b.powerState()).toBe("Off");
      expect(b.insertedMedia()).toEqual([]);
    }
  });
});

describe("Racing, failures and missing pieces", () => {
  let ns: string;
  const cluster = "race";

  beforeAll(async () => {
    ns = await createNamespace("capi-race");
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        host(ns, `r-${i}`, DMTF, { "beskar7.infrastructure.cluster.x-k8s.io/role": "race" }),
      ),
    );
    for (let i = 0; i < 10; i++) await waitForHost(ns, `r-${i}`, inState("Available"), "Available");
    await kubeconfigSecret(ns, cluster);
    await apply(ns, clusterYaml(cluster));
  });

  it("20 machines racing for 10 hosts claim every host exactly once; the other 10 wait with a reason", async () => {
    // Bootstrap data never comes: claimed machines wait there, which is all this test needs.
    await apply(
      ns,
      workersYaml(
        cluster,
        "racers",
        20,
        "no-such-bootstrap-secret",
        `      imageURL: https://images.example/os.iso
      hostSelector:
        matchLabels:
          beskar7.infrastructure.cluster.x-k8s.io/role: race`,
      ),
    );
    const settled = await waitFor(async () => {
      const all = await list(ns, "beskar7machines");
      if (all.length !== 20) return false;
      const holding = all.filter(m => m.status?.hostRef);
      const waiting = all.filter(m => condition(m, "HostClaimed")?.reason === "NoMatchingHost");
      return holding.length === 10 && waiting.length === 10 && { holding, waiting };
    }, "10 machines holding hosts and 10 waiting");
    const held = settled.holding.map(m => m.status!.hostRef!.name).sort();
    expect(new Set(held).size).toBe(10);
    for (const m of settled.waiting) {
      expect(condition(m, "HostClaimed")?.message).toMatch(
        /10 hosts considered in the machine's namespace: 10 claimed by another machine/,
      );
    }
    // Every host has one consumer, the one that holds it, and was claimed once.
    const events = JSON.parse(
      (
        await kubectl([
          "get",
          "events",
          "-n",
          ns,
          "--field-selector",
          "reason=HostClaimed",
          "-o",
          "json",
        ])
      ).stdout,
    ) as { items: Array<{ message: string }> };
    const perHost = new Map<string, number>();
    for (const e of events.items) {
      const h = /PhysicalHost (\S+)/.exec(e.message)?.[1];
      if (h) perHost.set(h, (perHost.get(h) ?? 0) + 1);
    }
    expect([...perHost.values()]).toEqual(Array(10).fill(1));
    for (const m of settled.holding) {
      expect(condition(m, "HostProvisioned")).toMatchObject({
        reason: "BootstrapDataMissing",
        message: expect.stringContaining("no-such-bootstrap-secret"),
      });
    }
    await kubectl([
      "scale",
      "machinedeployments.cluster.x-k8s.io",
      "racers",
      "-n",
      ns,
      "--replicas=0",
    ]);
    for (let i = 0; i < 10; i++) {
      await waitForHost(
        ns,
        `r-${i}`,
        h => h.status?.state === "Available" && !h.spec?.consumerRef,
        "released",
      );
    }
  });

  it("a MachineDeployment whose Beskar7MachineTemplate is missing says which", async () => {
    await apply(
      ns,
      `
apiVersion: cluster.x-k8s.io/v1beta2
kind: MachineDeployment
metadata:
  name: orphan
  annotations:
    machineset.cluster.x-k8s.io/skip-preflight-checks: All
spec:
  clusterName: ${cluster}
  replicas: 1
  template:
    spec:
      clusterName: ${cluster}
      version: v1.34.1
      bootstrap:
        dataSecretName: anything
      infrastructureRef:
        apiGroup: ${INFRA}
        kind: Beskar7MachineTemplate
        name: no-such-template
`,
    );
    // No Beskar7Machine can exist without its template: Cluster API reports it on the
    // MachineDeployment (its condition names the kind; its spec names the template).
    let text = "";
    await waitFor(
      async () => {
        const r = await kubectl([
          "get",
          "machinedeployments.cluster.x-k8s.io/orphan",
          "-n",
          ns,
          "-o",
          "yaml",
          "--request-timeout=10s",
        ]);
        text = r.stdout;
        return /blocked because Beskar7MachineTemplate\s+does not exist/.test(text);
      },
      "a condition saying the template is missing",
      60_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${text}`);
    });
    expect(text).toContain("name: no-such-template");
    await kubectl([
      "delete",
      "machinedeployments.cluster.x-k8s.io",
      "orphan",
      "-n",
      ns,
      "--wait=false",
      "--request-timeout=10s",
    ]);
  });

  it("a claimed host force-deleted, or whose BMC is lost for good, fails its machine terminally", async () => {
    await K8s(kind.Secret).Apply(
      { metadata: { name: "boot", namespace: ns }, stringData: { value: "#cloud-config\n" } },
      { force: true },
    );
    await apply(
      ns,
      workersYaml(
        cluster,
        "doomed",
        2,
        "boot",
        `      imageURL: https://images.example/os.iso
      hostSelector:
        matchLabels:
          beskar7.infrastructure.cluster.x-k8s.io/role: race`,
      ),
    );
    const provisioned = await waitFor(async () => {
      const all = (await list(ns, "beskar7machines")).filter(
        m => m.status?.initialization?.provisioned,
      );
      return all.length === 2 && all;
    }, "two provisioned machines");
    const [forced, dead] = provisioned;
    // One host is force-deleted under its machine...
    const forcedHost = forced!.status!.hostRef!.name;
    await patchHost(ns, forcedHost, [
      {
        op: "add",
        path: "/metadata/annotations",
        value: { "beskar7.infrastructure.cluster.x-k8s.io/force-delete": "true" },
      },
    ]);
    await K8s(PhysicalHost).InNamespace(ns).Delete(forcedHost);
    await waitGone(ns, forcedHost);
    // ...the other's BMC dies for good.
    await bmcs.get(`${ns}/${dead!.status!.hostRef!.name}`)!.down();
    for (const m of [forced!, dead!]) {
      const failed = await waitFor(async () => {
        const now = await get(ns, "beskar7machines", m.metadata.name);
        return now?.status?.failureReason === "HostLost" && now;
      }, `machine ${m.metadata.name} failed with HostLost`);
      expect(condition(failed, "Ready")).toMatchObject({ status: "False", reason: "HostLost" });
      expect(failed.status?.phase).toBe("Failed");
    }
    await bmcs.get(`${ns}/${dead!.status!.hostRef!.name}`)!.up();
    await kubectl(["delete", "machinedeployments.cluster.x-k8s.io", "doomed", "-n", ns]);
  });

  it("a Machine deleted while its host is mid-provisioning leaves the host deprovisioned and Available", async () => {
    const free = (await K8s(PhysicalHost).InNamespace(ns).Get()).items.find(
      h => h.status?.state === "Available" && !h.spec?.consumerRef,
    )!;
    const b = bmcs.get(`${ns}/${free.metadata!.name}`)!;
    b.latencyMs = 400; // slow enough to catch it mid-way
    await patchHost(ns, free.metadata!.name!, [
      { op: "add", path: "/metadata/labels/mid", value: "yes" },
    ]);
    await apply(
      ns,
      workersYaml(
        cluster,
        "interrupted",
        1,
        "boot",
        `      imageURL: https://images.example/os.iso
      hostSelector:
        matchLabels:
          mid: "yes"`,
      ),
    );
    await waitForHost(ns, free.metadata!.name!, inState("Provisioning"), "Provisioning", 60_000);
    await kubectl([
      "delete",
      "machinedeployments.cluster.x-k8s.io",
      "interrupted",
      "-n",
      ns,
      "--wait=false",
    ]);
    const h = await waitForHost(
      ns,
      free.metadata!.name!,
      x => x.status?.state === "Available" && !x.spec?.consumerRef && !x.status?.provisioning,
      "Available again",
      120_000,
    );
    expect(h.spec?.provisioning).toBeUndefined();
    expect(b.powerState()).toBe("Off");
    expect(b.insertedMedia()).toEqual([]);
    b.latencyMs = 0;
  });
});
