// The generated CRDs and RBAC on a real kube-apiserver: they apply with server-side apply, the
// schema descriptions reach `kubectl explain`, the printer columns reach `kubectl get -o wide`,
// and the operator's ClusterRole grants exactly what it should.
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";

import {
  GENERATED,
  applyYaml,
  eventually,
  freshNamespace,
  generatedCrdFiles,
  installBeskar7Crds,
  mustKubectl,
} from "./kubectl";

let ns: string;

beforeAll(async () => {
  await installBeskar7Crds();
  ns = await freshNamespace("api-manifests");
});

describe("generated CRDs", () => {
  it("are all established and serve v1beta1 (storage) and v1alpha1", async () => {
    const files = await generatedCrdFiles();
    expect(files).toHaveLength(5);
    const out = await mustKubectl([
      "get",
      "crd",
      "-l",
      "cluster.x-k8s.io/provider=infrastructure-beskar7",
      "-o",
      'jsonpath={range .items[*]}{.metadata.name} {.status.storedVersions} {.metadata.labels.cluster\\.x-k8s\\.io/v1beta2}{"\\n"}{end}',
    ]);
    const lines = out.trim().split("\n").sort();
    expect(lines).toEqual([
      'beskar7clusters.infrastructure.cluster.x-k8s.io ["v1beta1"] v1beta1',
      'beskar7clustertemplates.infrastructure.cluster.x-k8s.io ["v1beta1"] v1beta1',
      'beskar7machines.infrastructure.cluster.x-k8s.io ["v1beta1"] v1beta1',
      'beskar7machinetemplates.infrastructure.cluster.x-k8s.io ["v1beta1"] v1beta1',
      'physicalhosts.infrastructure.cluster.x-k8s.io ["v1beta1"] v1beta1',
    ]);
  });

  it("re-apply with server-side apply without conflicts (idempotent)", async () => {
    const files = await generatedCrdFiles();
    const out = await mustKubectl(["apply", "--server-side", ...files.flatMap(f => ["-f", f])]);
    expect(out).toContain("physicalhosts.infrastructure.cluster.x-k8s.io serverside-applied");
  });

  it("kubectl explain prints the field descriptions of spec.redfishConnection", async () => {
    const out = await eventually(async () => {
      const text = await mustKubectl(["explain", "physicalhost.spec.redfishConnection"]);
      if (!text.includes("address")) throw new Error(`not published yet:\n${text}`);
      return text;
    });
    expect(out).toContain("how to reach and authenticate to the host's BMC over Redfish");
    expect(out).toMatch(/address\s+<string> -required-\s+URL of the BMC's Redfish service/);
    expect(out).toMatch(/credentialsSecretRef\s+<string> -required-\s+name of a Secret/);
    expect(out).toMatch(/insecureSkipVerify\s+<boolean>\s+skip verification/);
    expect(out).toMatch(/caBundleSecretRef\s+<string>\s+name of a Secret/);
    expect(out).toMatch(/systemId\s+<string>\s+Redfish ComputerSystem Id/);
  });

  it("kubectl explain works through short names and the other kinds", async () => {
    const mode = await mustKubectl(["explain", "b7m.spec.provisioningMode"]);
    expect(mode).toContain("PreBakedISO");
    const state = await mustKubectl(["explain", "ph.status.state"]);
    expect(state).toContain("Deprovisioning:");
    const endpoint = await mustKubectl(["explain", "b7c.spec.controlPlaneEndpoint.port"]);
    expect(endpoint).toContain("1-65535");
    const template = await mustKubectl(["explain", "b7mt.spec.template.spec.providerID"]);
    expect(template).toContain("Must not be set in a template");
  });

  it("kubectl get -o wide shows state, power, consumer, address, manufacturer and model", async () => {
    const host = `
apiVersion: infrastructure.cluster.x-k8s.io/v1beta1
kind: PhysicalHost
metadata: { name: wide-01 }
spec:
  redfishConnection: { address: "https://[fd00::1]:8443", credentialsSecretRef: bmc }
`;
    expect((await applyYaml(host, ns)).code).toBe(0);
    const status = JSON.stringify({
      status: {
        state: "Available",
        observedPowerState: "Off",
        hardwareDetails: { manufacturer: "Dell Inc.", model: "PowerEdge R640" },
      },
    });
    await mustKubectl([
      "patch",
      "physicalhost",
      "wide-01",
      "-n",
      ns,
      "--subresource=status",
      "--type=merge",
      "-p",
      status,
    ]);
    const narrow = await mustKubectl(["get", "physicalhosts", "-n", ns]);
    expect(narrow.split("\n")[0]).toMatch(/^NAME\s+STATE\s+POWER\s+CONSUMER\s+AGE$/);
    const wide = await mustKubectl(["get", "physicalhosts", "-n", ns, "-o", "wide"]);
    const [header, row] = wide.split("\n");
    expect(header).toMatch(/NAME\s+STATE\s+POWER\s+CONSUMER\s+ADDRESS\s+MANUFACTURER\s+MODEL/);
    expect(row).toMatch(
      /wide-01\s+Available\s+Off\s+https:\/\/\[fd00::1\]:8443\s+Dell Inc\.\s+PowerEdge R640/,
    );
  });

  it("the CRDs are listed in the cluster-api category", async () => {
    const out = await mustKubectl(["get", "cluster-api", "-n", ns, "-o", "name"]);
    expect(out).toContain("physicalhost.infrastructure.cluster.x-k8s.io/wide-01");
  });
});

describe("generated RBAC", () => {
  const operator = "system:serviceaccount:pepr-system:pepr-beskar7";
  // A SubjectAccessReview names group, resource and subresource exactly, and works for kinds whose
  // CRDs are not installed (kubectl auth can-i would need discovery to resolve them).
  const can = async (verb: string, resource: string, namespace = "default"): Promise<string> => {
    const [plural = "", ...groupParts] = resource.split("/")[0]!.split(".");
    const subresource = resource.split("/")[1] ?? "";
    const review = {
      apiVersion: "authorization.k8s.io/v1",
      kind: "SubjectAccessReview",
      spec: {
        user: operator,
        groups: ["system:serviceaccounts", "system:serviceaccounts:pepr-system"],
        resourceAttributes: {
          verb,
          resource: plural,
          group: groupParts.join("."),
          subresource,
          namespace,
        },
      },
    };
    const out = await mustKubectl(
      ["create", "-o", "jsonpath={.status.allowed}", "-f", "-"],
      JSON.stringify(review),
    );
    return out.trim() === "true" ? "yes" : "no";
  };

  beforeAll(async () => {
    // The operator's Role for the boot service's Secret lives in Pepr's namespace, which Pepr's
    // own manifests create.
    await mustKubectl(
      ["apply", "--server-side", "-f", "-"],
      JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: "pepr-system" } }),
    );
    await mustKubectl(["apply", "--server-side", "-f", join(GENERATED, "rbac.yaml")]);
  });

  it("applies with server-side apply and carries the CAPI aggregation label", async () => {
    const out = await mustKubectl([
      "get",
      "clusterrole",
      "-l",
      "cluster.x-k8s.io/aggregate-to-manager=true",
      "-o",
      "name",
    ]);
    expect(out).toContain("clusterrole.rbac.authorization.k8s.io/beskar7-capi-manager");
  });

  it("lets the operator reconcile our kinds and their status", async () => {
    await eventually(async () =>
      expect(await can("patch", "physicalhosts.infrastructure.cluster.x-k8s.io")).toBe("yes"),
    );
    expect(await can("patch", "physicalhosts.infrastructure.cluster.x-k8s.io/status")).toBe("yes");
    expect(await can("watch", "beskar7machines.infrastructure.cluster.x-k8s.io")).toBe("yes");
    expect(await can("update", "beskar7clusters.infrastructure.cluster.x-k8s.io/finalizers")).toBe(
      "yes",
    );
    expect(await can("get", "machines.cluster.x-k8s.io")).toBe("yes");
    expect(await can("create", "events")).toBe("yes");
  });

  it("denies the operator what it does not need", async () => {
    await eventually(async () => expect(await can("get", "secrets")).toBe("yes"));
    expect(await can("patch", "secrets")).toBe("no");
    expect(await can("create", "secrets")).toBe("no");
    expect(await can("update", "secrets")).toBe("no");
    expect(await can("delete", "secrets")).toBe("no");
    expect(await can("delete", "physicalhosts.infrastructure.cluster.x-k8s.io")).toBe("no");
    expect(await can("create", "physicalhosts.infrastructure.cluster.x-k8s.io")).toBe("no");
    expect(await can("patch", "machines.cluster.x-k8s.io")).toBe("no");
    expect(await can("get", "configmaps")).toBe("no");
    expect(await can("create", "pods")).toBe("no");
  });
});
