// Every example, the seed manifests (unchanged) and the clusterctl cluster template apply with
// server-side apply to a real API server that also has the Cluster API v1.14 CRDs installed.
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";

import { capiCrdPaths } from "../../../lab/controlplane/capi-crds";
import {
  GENERATED,
  ROOT,
  applyYaml,
  freshNamespace,
  installBeskar7Crds,
  kubectl,
  mustKubectl,
} from "./kubectl";

const EXAMPLES = join(ROOT, "examples");
const SEEDS = join(ROOT, "tests/fixtures/seeds");

async function yamlFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true });
  return entries.filter(name => name.endsWith(".yaml")).sort();
}

/** clusterctl's variable syntax: ${VAR} and ${VAR:=default}; unknown variables are an error. */
function substitute(template: string, values: Record<string, string>): string {
  return template.replace(
    /\$\{([A-Z0-9_]+)(?::=([^}]*))?\}/g,
    (_match, name: string, fallback?: string) => {
      const value = values[name] ?? fallback;
      if (value === undefined) throw new Error(`cluster template variable ${name} has no value`);
      return value;
    },
  );
}

beforeAll(async () => {
  const capi = await capiCrdPaths();
  const files = [...capi.core, ...capi.kubeadmControlPlane, ...capi.kubeadmBootstrap];
  await mustKubectl(["apply", "--server-side", ...files.flatMap(file => ["-f", file])]);
  await mustKubectl([
    "wait",
    "--for=condition=Established",
    "--timeout=120s",
    ...files.flatMap(file => ["-f", file]),
  ]);
  await installBeskar7Crds();
}, 600_000);

describe("examples/", () => {
  it("has an example of every kind, in every provisioning mode, and a whole cluster", async () => {
    const files = await yamlFiles(EXAMPLES);
    const text = (await Promise.all(files.map(f => readFile(join(EXAMPLES, f), "utf8")))).join(
      "\n",
    );
    for (const kind of [
      "PhysicalHost",
      "Beskar7Machine",
      "Beskar7MachineTemplate",
      "Beskar7Cluster",
      "Beskar7ClusterTemplate",
      "Secret",
      "Cluster",
      "KubeadmControlPlane",
      "KubeadmConfigTemplate",
      "MachineDeployment",
    ]) {
      expect(text).toMatch(new RegExp(`^kind: ${kind}$`, "m"));
    }
    for (const mode of ["PreBakedISO", "RemoteConfig", "PXE", "iPXE"]) {
      expect(text).toContain(`provisioningMode: ${mode}\n`);
    }
  });

  it("every file applies with server-side apply", async () => {
    const ns = await freshNamespace("api-examples");
    const files = await yamlFiles(EXAMPLES);
    expect(files.length).toBeGreaterThanOrEqual(10);
    for (const file of files) {
      const result = await applyYaml(await readFile(join(EXAMPLES, file), "utf8"), ns);
      expect(result.stderr, file).toBe("");
      expect(result.code, file).toBe(0);
    }
    const cluster = await mustKubectl([
      "get",
      "clusters.cluster.x-k8s.io",
      "bm-demo",
      "-n",
      ns,
      "-o",
      "jsonpath={.spec.infrastructureRef.kind}/{.spec.infrastructureRef.name}",
    ]);
    expect(cluster).toBe("Beskar7Cluster/bm-demo");
    const hosts = await mustKubectl(["get", "physicalhosts", "-n", ns, "-o", "name"]);
    expect(hosts.trim().split("\n")).toHaveLength(5);
  });
});

describe("seed manifests (tests/fixtures/seeds, verbatim)", () => {
  it("the v1alpha1 manifests of seed 000 apply unchanged, with a deprecation warning", async () => {
    for (const file of (await yamlFiles(SEEDS)).filter(f => f.startsWith("000-"))) {
      // They name namespace default themselves.
      const result = await kubectl(["apply", "--server-side", "-f", join(SEEDS, file)]);
      expect(result.code, `${file}: ${result.stderr}`).toBe(0);
      if (file !== "000-redfish-credentials-secret.yaml") {
        expect(result.stderr).toContain("v1alpha1");
        expect(result.stderr).toContain(
          "is deprecated; use infrastructure.cluster.x-k8s.io/v1beta1",
        );
      }
    }
    const machine = await mustKubectl([
      "get",
      "beskar7machines.v1beta1.infrastructure.cluster.x-k8s.io",
      "node-02",
      "-n",
      "default",
      "-o",
      "jsonpath={.apiVersion} {.spec.provisioningMode} {.spec.configURL}",
    ]);
    expect(machine).toBe(
      "infrastructure.cluster.x-k8s.io/v1beta1 RemoteConfig https://your-server.com/path/to/kairos-config.yaml",
    );
  });

  it("the v1beta1 manifests of seed 001 apply unchanged", async () => {
    const ns = await freshNamespace("api-seeds");
    for (const file of (await yamlFiles(SEEDS)).filter(f => f.startsWith("001-"))) {
      const result = await kubectl(["apply", "--server-side", "-n", ns, "-f", join(SEEDS, file)]);
      expect(result.code, `${file}: ${result.stderr}`).toBe(0);
      expect(result.stderr).toBe("");
    }
    const requirements = await mustKubectl([
      "get",
      "b7m",
      "worker-01",
      "-n",
      ns,
      "-o",
      "jsonpath={.spec.hardwareRequirements.minCPUCores}/{.spec.hardwareRequirements.minMemoryGB} {.spec.bootMode}",
    ]);
    expect(requirements).toBe("4/16 UEFI");
  });
});

describe("clusterctl cluster template", () => {
  it("applies once its variables are substituted", async () => {
    const ns = await freshNamespace("api-template");
    const template = await readFile(join(GENERATED, "cluster-template.yaml"), "utf8");
    const rendered = substitute(template, {
      CLUSTER_NAME: "tmpl",
      NAMESPACE: ns,
      KUBERNETES_VERSION: "v1.34.1",
      CONTROL_PLANE_ENDPOINT_HOST: "192.0.2.50",
      BESKAR7_IMAGE_URL: "https://images.example.com/kairos.iso",
      BESKAR7_CONTROL_PLANE_CONFIG_URL: "https://config.example.com/cp.yaml",
      BESKAR7_WORKER_CONFIG_URL: "https://config.example.com/worker.yaml",
    });
    const result = await applyYaml(rendered);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const port = await mustKubectl([
      "get",
      "b7c",
      "tmpl",
      "-n",
      ns,
      "-o",
      "jsonpath={.spec.controlPlaneEndpoint.port}",
    ]);
    expect(port).toBe("6443");
    const replicas = await mustKubectl([
      "get",
      "kubeadmcontrolplanes.controlplane.cluster.x-k8s.io",
      "tmpl-control-plane",
      "-n",
      ns,
      "-o",
      "jsonpath={.spec.replicas}",
    ]);
    expect(replicas).toBe("1");
  });

  it("refuses to render with a required variable missing", async () => {
    const template = await readFile(join(GENERATED, "cluster-template.yaml"), "utf8");
    expect(() => substitute(template, { CLUSTER_NAME: "x", NAMESPACE: "y" })).toThrow(
      /KUBERNETES_VERSION|CONTROL_PLANE_ENDPOINT_HOST|BESKAR7_IMAGE_URL/,
    );
  });
});
