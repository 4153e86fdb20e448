// The clusterctl provider release assembled from the schema's manifests and the built module:
// it holds no key or token, wires the webhooks to cert-manager and a clusterctl variable, and
// every object applies to the real API server (cert-manager's own kinds aside, as the suite has
// no cert-manager).
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseAllDocuments, stringify } from "yaml";
import { beforeAll, describe, expect, it } from "vitest";

import { buildRelease, TOKEN_VARIABLE } from "../../../scripts/lib/release";
import { kubectl } from "../support/kube";
import { ensureModuleBuilt } from "../support/operator";

const MODULE_YAML = resolve(__dirname, "..", "..", "..", "dist", "pepr-module-beskar7.yaml");

type Doc = {
  kind: string;
  apiVersion: string;
  metadata: { name: string; annotations?: Record<string, string> };
  webhooks?: Array<{ clientConfig: Record<string, unknown> & { service?: { path?: string } } }>;
};

describe("clusterctl release files", () => {
  let files: Record<string, string>;
  let components: string;
  let docs: Doc[];

  beforeAll(() => {
    ensureModuleBuilt();
    files = buildRelease(MODULE_YAML);
    components = files["infrastructure-components.yaml"]!;
    docs = parseAllDocuments(components).map(d => d.toJS() as Doc);
  });

  it("holds no private key, certificate or webhook token", () => {
    expect(components).not.toMatch(/tls\.key|BEGIN (RSA |EC )?PRIVATE KEY|BEGIN CERTIFICATE/);
    expect(components).not.toMatch(/\/(mutate|validate)\/[0-9a-f]{32,}/);
    expect(components).toContain(TOKEN_VARIABLE);
  });

  it("has the five CRDs, Pepr's store, the least-privilege RBAC and the module", () => {
    const names = (kind: string) => docs.filter(d => d.kind === kind).map(d => d.metadata.name);
    expect(names("CustomResourceDefinition")).toEqual(
      expect.arrayContaining([
        "physicalhosts.infrastructure.cluster.x-k8s.io",
        "beskar7machines.infrastructure.cluster.x-k8s.io",
        "beskar7machinetemplates.infrastructure.cluster.x-k8s.io",
        "beskar7clusters.infrastructure.cluster.x-k8s.io",
        "beskar7clustertemplates.infrastructure.cluster.x-k8s.io",
        "peprstores.pepr.dev",
      ]),
    );
    expect(names("ClusterRole")).not.toContain("pepr-beskar7");
    expect(names("Deployment").sort()).toEqual([
      "beskar7-boot-service",
      "pepr-beskar7",
      "pepr-beskar7-watcher",
    ]);
    for (const webhook of docs.filter(d => d.kind.endsWith("WebhookConfiguration"))) {
      expect(webhook.metadata.annotations?.["cert-manager.io/inject-ca-from"]).toBe(
        "pepr-system/pepr-beskar7",
      );
      for (const hook of webhook.webhooks ?? []) {
        expect(hook.clientConfig.caBundle).toBeUndefined();
        expect(hook.clientConfig.service?.path).toMatch(
          /^\/(mutate|validate)\/\$\{BESKAR7_WEBHOOK_TOKEN\}$/,
        );
      }
    }
    expect(files["metadata.yaml"]).toContain("contract: v1beta2");
  });

  it("ships the module in a Secret well under the 1 MiB object limit", () => {
    const secret = docs.find(
      d => d.kind === "Secret" && d.metadata.name === "pepr-beskar7-module",
    ) as (Doc & { data?: Record<string, string> }) | undefined;
    const bytes = Object.values(secret?.data ?? {}).reduce((n, v) => n + v.length, 0);
    expect(bytes).toBeGreaterThan(10_000);
    expect(bytes).toBeLessThan(512 * 1024);
  });

  it("applies to the API server once clusterctl substitutes its variable", async () => {
    const dir = mkdtempSync(join(tmpdir(), "beskar7-release-"));
    const substituted = components.replaceAll(TOKEN_VARIABLE, "0123456789abcdef0123456789abcdef");
    // cert-manager's kinds need cert-manager's CRDs, which only a real management cluster has.
    const applicable = parseAllDocuments(substituted)
      .map(d => d.toJS() as { apiVersion: string })
      .filter(d => !d.apiVersion.startsWith("cert-manager.io/"));
    const file = join(dir, "components.yaml");
    writeFileSync(file, applicable.map(d => stringify(d)).join("---\n"));
    try {
      const applied = await kubectl([
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=clusterctl",
        "-f",
        file,
      ]);
      expect(applied.stderr).toBe("");
      expect(applied.code).toBe(0);
      const sa = await kubectl([
        "auth",
        "can-i",
        "patch",
        "physicalhosts.infrastructure.cluster.x-k8s.io/status",
        "--as=system:serviceaccount:pepr-system:pepr-beskar7",
        "-A",
      ]);
      expect(sa.stdout.trim()).toBe("yes");
    } finally {
      // Nothing serves these webhooks in this suite, and they would fail every later request.
      await kubectl([
        "delete",
        "--ignore-not-found",
        "mutatingwebhookconfiguration,validatingwebhookconfiguration",
        "pepr-beskar7",
      ]);
    }
  });
});
