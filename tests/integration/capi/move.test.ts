// `clusterctl move` (Cluster API v1.14.2's clusterctl) of a cluster whose machine holds a
// provisioned PhysicalHost, from the suite's API server to a second one this file starts.
//
// What clusterctl needs, set up here as `clusterctl init` would leave it:
//  - every provider CRD labelled clusterctl.cluster.x-k8s.io (discovery lists only those), in both
//    clusters; the PhysicalHost CRD carries clusterctl.cluster.x-k8s.io/move (manifests/crds.ts)
//    since hosts are owned by no Cluster;
//  - the provider inventory: the Provider CRD (cmd/clusterctl/config/manifest/clusterctl-api.yaml)
//    and one Provider per installed provider, in both clusters;
//  - Cluster status: infrastructure provisioned and control plane initialized, and a nodeRef on
//    every Machine (no Cluster API manager runs here: the test writes those statuses);
//  - the BMC credential Secrets labelled clusterctl.cluster.x-k8s.io/move (they belong to no
//    Cluster either); the bootstrap Secret is named <cluster>-…, which clusterctl ties to the Cluster.
//
// Beskar7's operator runs against the source only. The host is claimed and provisioned by the
// operator for real (test BMC), then clusterctl pauses the Cluster (the machine controller then
// pauses the host), copies the objects, deletes the source's and unpauses the target's.
//
// clusterctl creates objects anew: new UIDs, and no status (the API server drops status on create
// for kinds with a status subresource; clusterctl v1.14's mover copies none).
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";

import { ensureCapiBinaries } from "../../../lab/controlplane/capi";
import { capiCrdPaths } from "../../../lab/controlplane/capi-crds";
import { startControlPlane, type ControlPlane } from "../../../lab/controlplane/controlplane";
import type { TestBmc } from "../../../lab/bmc/server";
import { generatedCrdFiles, installBeskar7Crds } from "../api/kubectl";
import { createNamespace, eventually } from "../support/kube";
import { startOperator, type Operator } from "../support/operator";
import { startTestBmc } from "../support/test-bmc";

const INFRA = "infrastructure.cluster.x-k8s.io";
const CLUSTER = "moved";
const MACHINE = `${CLUSTER}-m0`;
const HOST = "host-0";

interface Obj {
  metadata: {
    name: string;
    uid?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: Array<{ kind: string; name: string; uid: string }>;
  };
  spec?: Record<string, unknown> & {
    consumerRef?: { kind: string; name: string; namespace?: string; uid?: string };
    providerID?: string;
  };
  status?: Record<string, unknown> & { state?: string };
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function run(
  bin: string,
  args: string[],
  input?: string,
  env?: NodeJS.ProcessEnv,
): Promise<Result> {
  return new Promise(resolve => {
    const child = execFile(bin, args, { env, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin!.end(input ?? "");
  });
}

let target: ControlPlane | undefined;
let operator: Operator | undefined;
let bmc: TestBmc | undefined;
let home: string;
let ns: string;

const kubectlOn = (kubeconfig: string) => async (args: string[], input?: string) => {
  const result = await run(inject("kubectl"), ["--kubeconfig", kubeconfig, ...args], input);
  return result;
};
const source = () => kubectlOn(inject("kubeconfig"));
const dest = () => kubectlOn(target!.kubeconfig);

async function must(
  kubectl: ReturnType<typeof kubectlOn>,
  args: string[],
  input?: string,
): Promise<string> {
  const result = await kubectl(args, input);
  if (result.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${result.stderr}`);
  return result.stdout;
}

async function get(
  kubectl: ReturnType<typeof kubectlOn>,
  resource: string,
  name: string,
): Promise<Obj | undefined> {
  const result = await kubectl(["get", resource, name, "-n", ns, "-o", "json"]);
  return result.code === 0 ? (JSON.parse(result.stdout) as Obj) : undefined;
}

/** What `clusterctl init` leaves in a management cluster, minus the controllers. */
async function prepareManagementCluster(kubectl: ReturnType<typeof kubectlOn>): Promise<void> {
  const capi = await capiCrdPaths();
  const { moduleDir } = await ensureCapiBinaries();
  const files = [
    ...capi.core,
    ...capi.kubeadmBootstrap,
    ...(await generatedCrdFiles()),
    join(moduleDir, "cmd/clusterctl/config/manifest/clusterctl-api.yaml"),
  ];
  await must(kubectl, [
    "apply",
    "--server-side",
    "--force-conflicts",
    ...files.flatMap(f => ["-f", f]),
  ]);
  await must(kubectl, [
    "wait",
    "--for=condition=Established",
    "--timeout=60s",
    ...files.flatMap(f => ["-f", f]),
  ]);
  const crds = (await must(kubectl, ["get", "crd", "-o", "name"]))
    .split("\n")
    .filter(n => n.endsWith(".cluster.x-k8s.io"));
  await must(kubectl, ["label", "--overwrite", ...crds, "clusterctl.cluster.x-k8s.io="]);
  const providers = [
    ["cluster-api", "capi-system", "CoreProvider", "cluster-api", "v1.14.2"],
    [
      "bootstrap-kubeadm",
      "capi-kubeadm-bootstrap-system",
      "BootstrapProvider",
      "kubeadm",
      "v1.14.2",
    ],
    ["infrastructure-beskar7", "beskar7-system", "InfrastructureProvider", "beskar7", "v0.1.0"],
  ];
  for (const [name, namespace, type, providerName, version] of providers) {
    await must(
      kubectl,
      ["apply", "--server-side", "-f", "-"],
      JSON.stringify({
        apiVersion: "v1",
        kind: "List",
        items: [
          { apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } },
          {
            apiVersion: "clusterctl.cluster.x-k8s.io/v1alpha3",
            kind: "Provider",
            metadata: {
              name,
              namespace,
              labels: { "clusterctl.cluster.x-k8s.io": "", "cluster.x-k8s.io/provider": name },
            },
            type,
            providerName,
            version,
          },
        ],
      }),
    );
  }
}

beforeAll(async () => {
  await installBeskar7Crds();
  home = await mkdtemp(join(tmpdir(), "beskar7-move-"));
  target = await startControlPlane(join(home, "target"), { log: () => undefined });
  await prepareManagementCluster(source());
  await prepareManagementCluster(dest());
  bmc = await startTestBmc({
    mockup: "nvidia-libredfish_dell_poweredge-r750_idrac9-6.00.30",
    powerState: "On",
  });
  operator = await startOperator();
  ns = await createNamespace("capi-move");
});

afterAll(async () => {
  await operator?.stop();
  await bmc?.stop();
  await target?.stop();
  if (home) await rm(home, { recursive: true, force: true });
});

function waitFor<T>(check: () => Promise<T | undefined | false>, what: string): Promise<T> {
  return eventually(check, what, 90_000, 500).catch((err: Error) => {
    throw new Error(`${err.message}\n--- operator ---\n${operator?.output().slice(-4000) ?? ""}`);
  });
}

describe("clusterctl move of a cluster with a provisioned PhysicalHost", () => {
  let sourceHost: Obj;
  let sourceMachine: Obj;

  it("the operator claims and provisions the host for the cluster's machine", async () => {
    const kubectl = source();
    await must(
      kubectl,
      ["apply", "--server-side", "-n", ns, "-f", "-"],
      `
apiVersion: v1
kind: Secret
metadata:
  name: ${HOST}-bmc
  labels:
    clusterctl.cluster.x-k8s.io/move: ""
    beskar7.infrastructure.cluster.x-k8s.io/bmc-credentials: "true"
stringData: { username: ${bmc!.username}, password: ${bmc!.password} }
---
apiVersion: v1
kind: Secret
metadata:
  name: ${HOST}-ca
  labels: { clusterctl.cluster.x-k8s.io/move: "" }
stringData:
  ca.crt: ${JSON.stringify(bmc!.caPem)}
---
apiVersion: ${INFRA}/v1beta1
kind: PhysicalHost
metadata:
  name: ${HOST}
  labels: { beskar7.infrastructure.cluster.x-k8s.io/role: worker }
spec:
  redfishConnection:
    address: ${bmc!.url}
    credentialsSecretRef: ${HOST}-bmc
    caBundleSecretRef: ${HOST}-ca
---
apiVersion: cluster.x-k8s.io/v1beta2
kind: Cluster
metadata:
  name: ${CLUSTER}
spec:
  infrastructureRef: { apiGroup: ${INFRA}, kind: Beskar7Cluster, name: ${CLUSTER} }
`,
    );
    const cluster = (await get(kubectl, "clusters.cluster.x-k8s.io", CLUSTER))!;
    // What Cluster API's controllers would have written (none runs here).
    const ownedByCluster = [
      {
        apiVersion: "cluster.x-k8s.io/v1beta2",
        kind: "Cluster",
        name: CLUSTER,
        uid: cluster.metadata.uid,
      },
    ];
    await must(
      kubectl,
      ["apply", "--server-side", "-n", ns, "-f", "-"],
      JSON.stringify({
        apiVersion: "v1",
        kind: "List",
        items: [
          {
            apiVersion: `${INFRA}/v1beta1`,
            kind: "Beskar7Cluster",
            metadata: {
              name: CLUSTER,
              labels: { "cluster.x-k8s.io/cluster-name": CLUSTER },
              ownerReferences: ownedByCluster,
            },
            spec: { controlPlaneEndpoint: { host: "192.0.2.10", port: 6443 } },
          },
          {
            apiVersion: "cluster.x-k8s.io/v1beta2",
            kind: "Machine",
            metadata: {
              name: MACHINE,
              labels: { "cluster.x-k8s.io/cluster-name": CLUSTER },
              ownerReferences: ownedByCluster,
            },
            spec: {
              clusterName: CLUSTER,
              version: "v1.34.1",
              bootstrap: { dataSecretName: `${MACHINE}-bootstrap` },
              infrastructureRef: { apiGroup: INFRA, kind: "Beskar7Machine", name: MACHINE },
            },
          },
        ],
      }),
    );
    const machine = (await get(kubectl, "machines.cluster.x-k8s.io", MACHINE))!;
    await must(
      kubectl,
      ["apply", "--server-side", "-n", ns, "-f", "-"],
      JSON.stringify({
        apiVersion: "v1",
        kind: "List",
        items: [
          {
            // Bootstrap data, owned by its Machine (through a KubeadmConfig in a real cluster),
            // which is how clusterctl finds it.
            apiVersion: "v1",
            kind: "Secret",
            metadata: {
              name: `${MACHINE}-bootstrap`,
              labels: { "cluster.x-k8s.io/cluster-name": CLUSTER },
              ownerReferences: [
                {
                  apiVersion: "cluster.x-k8s.io/v1beta2",
                  kind: "Machine",
                  name: MACHINE,
                  uid: machine.metadata.uid,
                },
              ],
            },
            type: "cluster.x-k8s.io/secret",
            stringData: { value: "#cloud-config", format: "cloud-config" },
          },
          {
            apiVersion: `${INFRA}/v1beta1`,
            kind: "Beskar7Machine",
            metadata: {
              name: MACHINE,
              labels: { "cluster.x-k8s.io/cluster-name": CLUSTER },
              ownerReferences: [
                {
                  apiVersion: "cluster.x-k8s.io/v1beta2",
                  kind: "Machine",
                  name: MACHINE,
                  uid: machine.metadata.uid,
                  controller: true,
                },
              ],
            },
            spec: {
              provisioningMode: "PreBakedISO",
              imageURL: "http://127.0.0.1:8080/kairos.iso",
              hostSelector: {
                matchLabels: { "beskar7.infrastructure.cluster.x-k8s.io/role": "worker" },
              },
            },
          },
        ],
      }),
    );
    const now = new Date().toISOString();
    await must(kubectl, [
      "patch",
      "clusters.cluster.x-k8s.io",
      CLUSTER,
      "-n",
      ns,
      "--subresource=status",
      "--type=merge",
      "-p",
      JSON.stringify({
        status: {
          initialization: { infrastructureProvisioned: true, controlPlaneInitialized: true },
          conditions: [
            {
              type: "ControlPlaneInitialized",
              status: "True",
              reason: "Initialized",
              message: "",
              lastTransitionTime: now,
            },
          ],
        },
      }),
    ]);
    await must(kubectl, [
      "patch",
      "machines.cluster.x-k8s.io",
      MACHINE,
      "-n",
      ns,
      "--subresource=status",
      "--type=merge",
      "-p",
      JSON.stringify({ status: { nodeRef: { name: "node-0" } } }),
    ]);

    sourceHost = await waitFor(async () => {
      const h = await get(kubectl, "physicalhosts", HOST);
      return h?.status?.state === "Provisioned" && h;
    }, "the host Provisioned for the machine");
    expect(sourceHost.spec?.consumerRef).toMatchObject({
      kind: "Beskar7Machine",
      name: MACHINE,
      uid: (await get(kubectl, "beskar7machines", MACHINE))!.metadata.uid,
    });
    sourceMachine = await waitFor(async () => {
      const m = await get(kubectl, "beskar7machines", MACHINE);
      const init = m?.status?.initialization as { provisioned?: boolean } | undefined;
      return init?.provisioned && m;
    }, "the Beskar7Machine provisioned");
    expect(sourceMachine.spec?.providerID).toBe(`beskar7://${ns}/${HOST}`);
  });

  let moveStartedAt = 0;
  let moveOutput = "";

  it("clusterctl move succeeds and makes no BMC call that changes anything", async () => {
    const { clusterctl } = await ensureCapiBinaries();
    moveStartedAt = Date.now();
    const result = await run(
      clusterctl,
      [
        "move",
        "--kubeconfig",
        inject("kubeconfig"),
        "--to-kubeconfig",
        target!.kubeconfig,
        "--namespace",
        ns,
        "-v",
        "5",
      ],
      undefined,
      { PATH: process.env.PATH ?? "", HOME: home, XDG_CONFIG_HOME: join(home, ".config") },
    );
    moveOutput = `${result.stdout}\n${result.stderr}`;
    expect(result.code, moveOutput).toBe(0);
    // Give the source operator time to react to the deletions before looking at the BMC.
    await new Promise(r => setTimeout(r, 5000));
    const actions = bmc!.actions.filter(
      a => a.at >= moveStartedAt && a.kind !== "session-create" && a.kind !== "session-delete",
    );
    expect(actions, operator?.output().slice(-4000)).toEqual([]);
    // The source is empty of everything that moved.
    expect(await get(source(), "physicalhosts", HOST)).toBeUndefined();
    expect(await get(source(), "beskar7machines", MACHINE)).toBeUndefined();
  });

  it("the target has the host, its credentials and the machine, the host still naming the machine", async () => {
    const kubectl = dest();
    const host = (await get(kubectl, "physicalhosts", HOST))!;
    const machine = (await get(kubectl, "beskar7machines", MACHINE))!;
    expect(host).toBeDefined();
    expect(machine).toBeDefined();
    expect(await get(kubectl, "secrets", `${HOST}-bmc`)).toBeDefined();
    expect(await get(kubectl, "secrets", `${HOST}-ca`)).toBeDefined();
    expect(await get(kubectl, "secrets", `${MACHINE}-bootstrap`)).toBeDefined();
    expect(host.spec?.provisioning).toEqual(sourceHost.spec?.provisioning);
    expect(machine.spec?.providerID).toBe(sourceMachine.spec?.providerID);
    // Same kind, name and namespace; the uid is the source machine's, which the target machine
    // does not have: clusterctl gives every object a new uid.
    expect(host.spec?.consumerRef).toEqual(sourceHost.spec?.consumerRef);
    expect(host.spec?.consumerRef?.uid).toBe(sourceMachine.metadata.uid);
    expect(machine.metadata.uid).not.toBe(sourceMachine.metadata.uid);
    // The block-move annotation held clusterctl until the host was paused and its status saved.
    expect(host.metadata.annotations?.["clusterctl.cluster.x-k8s.io/block-move"]).toBeUndefined();
    const saved = JSON.parse(
      host.metadata.annotations?.["beskar7.infrastructure.cluster.x-k8s.io/status"] ?? "{}",
    ) as { state?: string; provisioning?: unknown };
    expect(saved.state).toBe("Provisioned");
    expect(saved.provisioning).toEqual(sourceHost.status?.provisioning);
    // Cluster unpaused by clusterctl at the end.
    const cluster = (await get(kubectl, "clusters.cluster.x-k8s.io", CLUSTER))!;
    expect(cluster.spec?.paused ?? false).toBe(false);
  });

  it("with the operator running in the target, the host gets its status back and stays Provisioned for the moved machine, with no BMC action", async () => {
    await operator?.stop();
    operator = await startOperator({}, target!.kubeconfig);
    const startedAt = Date.now();
    const kubectl = dest();
    const host = await waitFor(async () => {
      const h = await get(kubectl, "physicalhosts", HOST);
      return h?.status?.state ? h : undefined;
    }, "the moved host's status");
    expect(host.status?.state).toBe("Provisioned");
    expect(host.status?.provisioning).toEqual(sourceHost.status?.provisioning);
    // clusterctl copies no status: the Cluster says its infrastructure is there again, as Cluster
    // API's own controllers would in a real target.
    await must(kubectl, [
      "patch",
      "clusters.cluster.x-k8s.io",
      CLUSTER,
      "-n",
      ns,
      "--subresource=status",
      "--type=merge",
      "-p",
      JSON.stringify({ status: { initialization: { infrastructureProvisioned: true } } }),
    ]);
    const machine = await waitFor(async () => {
      const m = await get(kubectl, "beskar7machines", MACHINE);
      const init = m?.status?.initialization as { provisioned?: boolean } | undefined;
      return init?.provisioned && m;
    }, "the moved Beskar7Machine provisioned again");
    expect((machine.status as { hostRef?: { name?: string } }).hostRef?.name).toBe(HOST);
    await new Promise(r => setTimeout(r, 3000)); // a couple of power checks
    const after = await get(kubectl, "physicalhosts", HOST);
    expect(after?.status?.state).toBe("Provisioned");
    expect(after?.metadata.annotations?.["cluster.x-k8s.io/paused"]).toBeUndefined();
    const actions = bmc!.actions.filter(
      a => a.at >= startedAt && a.kind !== "session-create" && a.kind !== "session-delete",
    );
    expect(actions, operator?.output().slice(-4000)).toEqual([]);
  });
});
