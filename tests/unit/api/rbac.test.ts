// Least privilege of the generated RBAC, checked on the objects (the integration test checks
// the same through the API server's authorizer).
import { Testing } from "cdk8s";
import { describe, expect, it } from "vitest";

import { API_GROUP } from "../../../capabilities/api/constants";
import { Beskar7Rbac, OPERATOR_SERVICE_ACCOUNT, operatorRules } from "../../../manifests/rbac";

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}
interface Role {
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  rules?: Rule[];
  subjects?: unknown[];
}

const objects = new Beskar7Rbac(Testing.app(), "rbac").toJson() as Role[];
const role = (name: string) => {
  const found = objects.find(o => o.kind === "ClusterRole" && o.metadata.name === name);
  if (!found?.rules) throw new Error(`no ClusterRole ${name}`);
  return found.rules;
};
const verbsFor = (rules: Rule[], group: string, resource: string) =>
  rules
    .filter(r => r.apiGroups.includes(group) && r.resources.includes(resource))
    .flatMap(r => r.verbs)
    .sort();

describe("operator ClusterRole", () => {
  const rules = operatorRules();

  it("uses no wildcards", () => {
    for (const rule of rules) {
      expect([...rule.apiGroups, ...rule.resources, ...rule.verbs]).not.toContain("*");
    }
  });

  it("reads Secrets and never writes them (no create, update, patch or delete)", () => {
    expect(verbsFor(rules, "", "secrets")).toEqual(["get", "list", "watch"]);
  });

  it("reconciles our kinds without creating or deleting them", () => {
    for (const plural of ["physicalhosts", "beskar7machines", "beskar7clusters"]) {
      expect(verbsFor(rules, API_GROUP, plural)).toEqual([
        "get",
        "list",
        "patch",
        "update",
        "watch",
      ]);
      expect(verbsFor(rules, API_GROUP, `${plural}/status`)).toEqual(["get", "patch", "update"]);
      expect(verbsFor(rules, API_GROUP, `${plural}/finalizers`)).toEqual(["update"]);
    }
  });

  it("only reads Cluster API Machines and Clusters, and writes events", () => {
    expect(verbsFor(rules, "cluster.x-k8s.io", "machines")).toEqual(["get", "list", "watch"]);
    expect(verbsFor(rules, "cluster.x-k8s.io", "clusters")).toEqual(["get", "list", "watch"]);
    expect(verbsFor(rules, "", "events")).toEqual(["create", "patch"]);
  });

  it("is bound to the Pepr module's service account", () => {
    const binding = objects.find(o => o.kind === "ClusterRoleBinding");
    expect(binding?.subjects).toEqual([{ kind: "ServiceAccount", ...OPERATOR_SERVICE_ACCOUNT }]);
  });
});

describe("other roles", () => {
  it("aggregate full access to the four contract kinds into the CAPI manager, and only reads of PhysicalHosts", () => {
    const capi = objects.find(o => o.metadata.name === "beskar7-capi-manager");
    expect(capi?.metadata.labels?.["cluster.x-k8s.io/aggregate-to-manager"]).toBe("true");
    const rules = role("beskar7-capi-manager");
    expect(verbsFor(rules, API_GROUP, "physicalhosts")).toEqual(["get", "list", "watch"]);
    for (const plural of [
      "beskar7machines",
      "beskar7machinetemplates",
      "beskar7clusters",
      "beskar7clustertemplates",
    ]) {
      expect(verbsFor(rules, API_GROUP, plural)).toEqual(
        ["create", "delete", "get", "list", "patch", "update", "watch"].sort(),
      );
    }
  });

  it("give viewers read-only access and editors no status writes", () => {
    const viewer = role("beskar7-viewer");
    expect(new Set(viewer.flatMap(r => r.verbs))).toEqual(new Set(["get", "list", "watch"]));
    const editor = role("beskar7-editor");
    expect(verbsFor(editor, API_GROUP, "physicalhosts")).toContain("create");
    expect(verbsFor(editor, API_GROUP, "physicalhosts/status")).toEqual(["get", "list", "watch"]);
  });
});
