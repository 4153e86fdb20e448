// clusterctl v1.14 (built from the Go module, lab/controlplane/capi.ts) reads Beskar7's release
// files (`npm run release`: infrastructure-components.yaml, metadata.yaml, cluster-template.yaml)
// from a local provider repository, the layout a release on GitHub has:
// <repo>/infrastructure-beskar7/<version>/{infrastructure-components,metadata,cluster-template}.yaml
// It generates the provider components and a cluster with their variables substituted, and lists
// the template's variables. No management cluster is involved.
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseAllDocuments } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { ensureCapiBinaries } from "../../../lab/controlplane/capi";
import { CLUSTER_TEMPLATE_VARIABLES } from "../../../manifests/clusterctl";
import { buildRelease } from "../../../scripts/lib/release";
import { ensureModuleBuilt } from "../support/operator";

const ROOT = resolve(__dirname, "..", "..", "..");
const MODULE_YAML = join(ROOT, "dist", "pepr-module-beskar7.yaml");

let clusterctlBin: string;
let dir: string;
let config: string;
let version: string;

/** Runs clusterctl with a private home (no user config, no cache shared with anything else) and
 *  without its online version check. */
function clusterctl(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise(resolvePromise => {
    execFile(
      clusterctlBin,
      [...args, "--config", config],
      {
        env: {
          PATH: process.env.PATH ?? "",
          HOME: join(dir, "home"),
          XDG_CONFIG_HOME: join(dir, "home", ".config"),
          CLUSTERCTL_DISABLE_VERSIONCHECK: "true",
          // No cluster is needed; make sure none is reached.
          KUBECONFIG: join(dir, "no-kubeconfig"),
          ...env,
        },
        maxBuffer: 64 << 20,
      },
      (error, stdout, stderr) =>
        resolvePromise({
          code: error ? ((error as { code?: number }).code ?? 1) : 0,
          stdout,
          stderr,
        }),
    );
  });
}

beforeAll(async () => {
  clusterctlBin = (await ensureCapiBinaries()).clusterctl;
  ensureModuleBuilt();
  // What `npm run release` writes to dist/release/, built the same way (scripts/release.ts).
  const files = buildRelease(MODULE_YAML);
  const pkg = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as {
    version: string;
  };
  version = `v${pkg.version}`;
  dir = await mkdtemp(join(tmpdir(), "beskar7-clusterctl-"));
  const release = join(dir, "repository", "infrastructure-beskar7", version);
  await mkdir(release, { recursive: true });
  await mkdir(join(dir, "home", ".config"), { recursive: true });
  for (const [name, text] of Object.entries(files)) await writeFile(join(release, name), text);
  config = join(dir, "clusterctl.yaml");
  await writeFile(
    config,
    [
      "providers:",
      "  - name: beskar7",
      "    type: InfrastructureProvider",
      `    url: file://${join(release, "infrastructure-components.yaml")}`,
      "",
    ].join("\n"),
  );
}, 900_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("clusterctl v1.14 with Beskar7's release files", () => {
  it("reports the version it was built at", async () => {
    const result = await clusterctl(["version", "-o", "short"]);
    expect(result.stderr).toBe("");
    expect(result.stdout.trim()).toBe("v1.14.2");
  });

  it("generates the provider components with the webhook token and boot URL substituted", async () => {
    const token = "0123456789abcdef0123456789abcdef";
    const bootURL = "https://192.0.2.10:30843";
    const result = await clusterctl(
      ["generate", "provider", "--infrastructure", `beskar7:${version}`],
      { BESKAR7_WEBHOOK_TOKEN: token, BESKAR7_BOOT_URL: bootURL },
    );
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).not.toContain("${BESKAR7_WEBHOOK_TOKEN}");
    expect(result.stdout).not.toContain("${BESKAR7_BOOT_URL}");
    expect(result.stdout).toContain(`/mutate/${token}`);
    // The boot service's external URL, which BMCs and booting hosts reach.
    expect(result.stdout).toContain(bootURL);
    const docs = parseAllDocuments(result.stdout).map(
      d =>
        d.toJS() as {
          kind: string;
          metadata: { name: string; labels?: Record<string, string> };
        },
    );
    const crds = docs.filter(d => d.kind === "CustomResourceDefinition").map(d => d.metadata.name);
    expect(crds).toContain("physicalhosts.infrastructure.cluster.x-k8s.io");
    // clusterctl labels every object with the provider it belongs to.
    for (const doc of docs) {
      expect(doc.metadata.labels?.["cluster.x-k8s.io/provider"], doc.metadata.name).toBe(
        "infrastructure-beskar7",
      );
    }
  });

  it("refuses to generate the components without the webhook token or the boot URL", async () => {
    const args = ["generate", "provider", "--infrastructure", `beskar7:${version}`];
    const withoutToken = await clusterctl(args, { BESKAR7_BOOT_URL: "https://192.0.2.10:30843" });
    expect(withoutToken.code).not.toBe(0);
    expect(withoutToken.stderr).toContain("BESKAR7_WEBHOOK_TOKEN");
    const withoutURL = await clusterctl(args, { BESKAR7_WEBHOOK_TOKEN: "0123456789abcdef" });
    expect(withoutURL.code).not.toBe(0);
    expect(withoutURL.stderr).toContain("BESKAR7_BOOT_URL");
  });

  it("lists the cluster template's variables", async () => {
    const result = await clusterctl([
      "generate",
      "cluster",
      "demo",
      "--infrastructure",
      `beskar7:${version}`,
      // Without a management cluster clusterctl cannot discover a namespace itself.
      "--target-namespace",
      "lab",
      "--list-variables",
    ]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const required = section(result.stdout, "Required Variables:");
    const optional = section(result.stdout, "Optional Variables:");
    expect(required.sort()).toEqual(
      [
        "BESKAR7_CONTROL_PLANE_CONFIG_URL",
        "BESKAR7_IMAGE_URL",
        "BESKAR7_WORKER_CONFIG_URL",
        "CONTROL_PLANE_ENDPOINT_HOST",
        "KUBERNETES_VERSION",
      ].sort(),
    );
    expect(optional.sort()).toEqual(
      [
        "BESKAR7_OS_FAMILY",
        "CLUSTER_NAME",
        "CONTROL_PLANE_ENDPOINT_PORT",
        "CONTROL_PLANE_MACHINE_COUNT",
        "NAMESPACE",
        "POD_CIDR",
        "WORKER_MACHINE_COUNT",
      ].sort(),
    );
    // Every documented variable is in the template, and no other.
    expect([...required, ...optional].sort()).toEqual(
      Object.keys(CLUSTER_TEMPLATE_VARIABLES).sort(),
    );
  });

  it("generates a cluster with the variables substituted", async () => {
    const result = await clusterctl(
      [
        "generate",
        "cluster",
        "demo",
        "--infrastructure",
        `beskar7:${version}`,
        "--target-namespace",
        "lab",
        "--kubernetes-version",
        "v1.34.1",
        "--control-plane-machine-count",
        "3",
        "--worker-machine-count",
        "2",
      ],
      {
        CONTROL_PLANE_ENDPOINT_HOST: "10.0.0.10",
        BESKAR7_IMAGE_URL: "https://images.example/kairos.iso",
        BESKAR7_CONTROL_PLANE_CONFIG_URL: "https://config.example/cp.yaml",
        BESKAR7_WORKER_CONFIG_URL: "https://config.example/worker.yaml",
      },
    );
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).not.toContain("${");
    type Obj = { kind: string; metadata: { name: string; namespace: string }; spec: never };
    const docs = parseAllDocuments(result.stdout).map(d => d.toJS() as Obj);
    const byKind = (kind: string) => docs.filter(d => d.kind === kind);
    expect(docs.map(d => d.metadata.namespace)).toEqual(docs.map(() => "lab"));
    const cluster = byKind("Cluster")[0] as unknown as {
      metadata: { name: string };
      spec: { clusterNetwork: { pods: { cidrBlocks: string[] } } };
    };
    expect(cluster.metadata.name).toBe("demo");
    expect(cluster.spec.clusterNetwork.pods.cidrBlocks).toEqual(["192.168.0.0/16"]);
    const b7c = byKind("Beskar7Cluster")[0] as unknown as {
      spec: { controlPlaneEndpoint: { host: string; port: number } };
    };
    expect(b7c.spec.controlPlaneEndpoint).toEqual({ host: "10.0.0.10", port: 6443 });
    const kcp = byKind("KubeadmControlPlane")[0] as unknown as {
      spec: { replicas: number; version: string };
    };
    expect(kcp.spec.replicas).toBe(3);
    expect(kcp.spec.version).toBe("v1.34.1");
    const md = byKind("MachineDeployment")[0] as unknown as {
      metadata: { name: string };
      spec: { replicas: number };
    };
    expect(md.metadata.name).toBe("demo-md-0");
    expect(md.spec.replicas).toBe(2);
    const templates = byKind("Beskar7MachineTemplate") as unknown as Array<{
      metadata: { name: string };
      spec: { template: { spec: { imageURL: string; configURL: string; osFamily: string } } };
    }>;
    expect(
      Object.fromEntries(templates.map(t => [t.metadata.name, t.spec.template.spec])),
    ).toMatchObject({
      "demo-control-plane": {
        imageURL: "https://images.example/kairos.iso",
        configURL: "https://config.example/cp.yaml",
        osFamily: "kairos",
      },
      "demo-md-0": { configURL: "https://config.example/worker.yaml" },
    });
  });
});

/** The variable names listed under a heading of `clusterctl generate cluster --list-variables`. */
function section(output: string, heading: string): string[] {
  const lines = output.split("\n");
  const start = lines.findIndex(line => line.trim() === heading);
  if (start < 0) throw new Error(`no "${heading}" in:\n${output}`);
  const names: string[] = [];
  for (const line of lines.slice(start + 1)) {
    const match = /^\s+-\s+([A-Z0-9_]+)/.exec(line);
    if (!match) break;
    names.push(match[1]!);
  }
  return names;
}
