// examples/networkpolicy-egress.yaml (issue 13): it parses, its pod selectors are the pod labels
// Pepr 1.1.4 gives this module's Deployments (app=pepr-<uuid>[-watcher] and pepr.dev/controller,
// from Pepr's assets/k8sObjects.ts; the uuid is package.json's), so it applies to the operator and
// nothing else, and the API server accepts it in Pepr's namespace (server-side dry run).
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";

import { ROOT, kubectl, mustKubectl } from "../api/kubectl";
import pkg from "../../../package.json";

interface Policy {
  kind: string;
  metadata: { name: string; namespace?: string };
  spec: {
    podSelector: { matchLabels: Record<string, string> };
    policyTypes: string[];
    egress: Array<{ to: Array<Record<string, unknown>>; ports: Array<{ port: number }> }>;
  };
}

const FILE = join(ROOT, "examples/networkpolicy-egress.yaml");

describe("examples/networkpolicy-egress.yaml", () => {
  it("selects exactly the module's watcher and admission pods, egress only", async () => {
    const policies = parseAllDocuments(await readFile(FILE, "utf8")).map(d => d.toJS() as Policy);
    expect(policies.map(p => p.kind)).toEqual(["NetworkPolicy", "NetworkPolicy"]);
    for (const p of policies) {
      expect(p.metadata.namespace).toBeUndefined(); // applied with -n pepr-system
      expect(p.spec.policyTypes).toEqual(["Egress"]);
    }
    const app = `pepr-${pkg.pepr.uuid}`;
    const podLabels = [
      { app: `${app}-watcher`, "pepr.dev/controller": "watcher" },
      { app, "pepr.dev/controller": "admission" },
    ];
    const selects = (p: Policy, l: Record<string, string>) =>
      Object.entries(p.spec.podSelector.matchLabels).every(([k, v]) => l[k] === v);
    // Each policy selects exactly one of the two Deployments' pods.
    for (const p of policies) expect(podLabels.filter(l => selects(p, l))).toHaveLength(1);
    const watcher = policies.find(
      p => p.spec.podSelector.matchLabels["pepr.dev/controller"] === "watcher",
    )!;
    const admission = policies.find(
      p => p.spec.podSelector.matchLabels["pepr.dev/controller"] === "admission",
    )!;
    // Only the watcher reaches BMCs (port 443); the admission pods only the API server.
    expect(watcher.spec.egress.flatMap(e => e.ports.map(p => p.port))).toContain(443);
    expect(admission.spec.egress.flatMap(e => e.ports.map(p => p.port))).toEqual([6443]);
  });

  it("is accepted by the API server in pepr-system (server-side dry run)", async () => {
    const exists = await kubectl(["get", "namespace", "pepr-system"]);
    if (exists.code !== 0) await mustKubectl(["create", "namespace", "pepr-system"]);
    const out = await mustKubectl([
      "apply",
      "--server-side",
      "--dry-run=server",
      "-n",
      "pepr-system",
      "-f",
      FILE,
    ]);
    expect(out).toContain(
      "networkpolicy.networking.k8s.io/beskar7-watcher-egress serverside-applied (server dry run)",
    );
    expect(out).toContain(
      "networkpolicy.networking.k8s.io/beskar7-admission-egress serverside-applied (server dry run)",
    );
  });
});
