// Hardening suite, RBAC: what every ServiceAccount of the release may do, as the API server itself
// answers `kubectl auth can-i --list` for it (impersonated), after the release's RBAC objects are
// applied to the suite's API server. The people/Cluster API roles of manifests/generated/rbac.yaml
// are bound to stand-in accounts and checked the same way. The rules: no wildcard anywhere, no
// Secret write, and a cluster-wide Secret read only where docs/api.md's RBAC section says so.
import { resolve } from "node:path";
import { parseAllDocuments, stringify } from "yaml";
import { beforeAll, describe, expect, it } from "vitest";

import { buildRelease } from "../../../scripts/lib/release";
import { kubectl } from "../support/kube";
import { ensureModuleBuilt } from "../support/operator";

const MODULE_YAML = resolve(__dirname, "..", "..", "..", "dist", "pepr-module-beskar7.yaml");
const RBAC_KINDS = new Set([
  "Namespace",
  "ServiceAccount",
  "ClusterRole",
  "ClusterRoleBinding",
  "Role",
  "RoleBinding",
]);
const WRITE_VERBS = ["create", "update", "patch", "delete", "deletecollection", "*"];
/** The one account docs/api.md documents as reading Secrets cluster-wide (RBAC cannot select by label). */
const DOCUMENTED_SECRET_READERS = new Set(["system:serviceaccount:pepr-system:pepr-beskar7"]);

interface Doc {
  kind: string;
  metadata: { name: string; namespace?: string };
}

/** One row of `kubectl auth can-i --list`. */
interface Rule {
  resource: string;
  nonResourceURLs: string;
  resourceNames: string;
  verbs: string[];
}

function parseCanIList(text: string): Rule[] {
  const rules: Rule[] = [];
  for (const line of text.split("\n").slice(1)) {
    const m = /^(\S*)\s+(\[[^\]]*\])\s+(\[[^\]]*\])\s+\[([^\]]*)\]\s*$/.exec(line);
    if (!m) continue;
    rules.push({
      resource: m[1]!,
      nonResourceURLs: m[2]!,
      resourceNames: m[3]!,
      verbs: m[4]!.split(/\s+/).filter(Boolean),
    });
  }
  return rules;
}

async function canIList(user: string, namespace: string): Promise<Rule[]> {
  const r = await kubectl(["auth", "can-i", "--list", `--as=${user}`, "-n", namespace]);
  if (r.code !== 0) throw new Error(`kubectl auth can-i --list as ${user}: ${r.stderr}`);
  return parseCanIList(r.stdout);
}

async function canI(user: string, args: string[]): Promise<boolean> {
  const r = await kubectl(["auth", "can-i", ...args, `--as=${user}`]);
  return r.stdout.trim() === "yes";
}

const key = (r: Rule) =>
  `${r.resource} ${r.nonResourceURLs} ${r.resourceNames} ${r.verbs.join(",")}`;

describe("RBAC of the release", () => {
  const accounts: string[] = [];
  let baseline: Set<string>;

  beforeAll(async () => {
    ensureModuleBuilt();
    const components = buildRelease(MODULE_YAML)["infrastructure-components.yaml"]!;
    const docs = parseAllDocuments(components)
      .map(d => d.toJS() as Doc | null)
      .filter((d): d is Doc => !!d && RBAC_KINDS.has(d.kind));
    for (const doc of docs.filter(d => d.kind === "ServiceAccount"))
      accounts.push(`system:serviceaccount:${doc.metadata.namespace}:${doc.metadata.name}`);
    // The roles for people and for Cluster API's manager are bound by their users; stand-in
    // accounts hold them here so the same questions can be asked of them.
    const standIns = [
      ["beskar7-capi-manager", "capi-system", "capi-manager"],
      ["beskar7-viewer", "default", "beskar7-viewer-user"],
      ["beskar7-editor", "default", "beskar7-editor-user"],
    ];
    const bindings = standIns.flatMap(([role, ns, sa]) => [
      { apiVersion: "v1", kind: "Namespace", metadata: { name: ns } },
      { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: sa, namespace: ns } },
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRoleBinding",
        metadata: { name: `hardening-${sa}` },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: role },
        subjects: [{ kind: "ServiceAccount", name: sa, namespace: ns }],
      },
    ]);
    const yaml = [...docs, ...bindings].map(d => stringify(d)).join("---\n");
    const applied = await kubectl(
      [
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=beskar7-hardening",
        "-f",
        "-",
      ],
      yaml,
    );
    if (applied.code !== 0) throw new Error(`applying the release RBAC: ${applied.stderr}`);
    for (const [, ns, sa] of standIns) accounts.push(`system:serviceaccount:${ns}:${sa}`);
    // What every authenticated account may do (discovery, self reviews): not the release's doing.
    baseline = new Set(
      (await canIList("system:serviceaccount:default:hardening-nobody", "default")).map(key),
    );
  });

  it("gives no wildcard, no Secret write and no undocumented cluster-wide Secret read", async () => {
    const findings: string[] = [];
    let rules = 0;
    const secretReaders: string[] = [];
    for (const user of accounts) {
      // A namespace none of the release's namespaced roles live in: what shows here is cluster-wide.
      const granted = (await canIList(user, "hardening-elsewhere")).filter(
        r => !baseline.has(key(r)),
      );
      rules += granted.length;
      for (const r of granted) {
        if (r.resource.split(".").includes("*") || r.verbs.includes("*"))
          findings.push(`${user}: wildcard ${key(r)}`);
        if (r.nonResourceURLs.includes("*")) findings.push(`${user}: wildcard URL ${key(r)}`);
        if (r.resource === "secrets" || r.resource === "*") {
          const writes = r.verbs.filter(v => WRITE_VERBS.includes(v));
          if (writes.length) findings.push(`${user}: Secret write (${writes.join(", ")})`);
        }
      }
      if (await canI(user, ["list", "secrets", "--all-namespaces"])) {
        secretReaders.push(user);
        if (!DOCUMENTED_SECRET_READERS.has(user))
          findings.push(`${user}: reads Secrets cluster-wide, which docs/api.md does not document`);
      }
      for (const verb of ["create", "update", "patch", "delete"]) {
        if (await canI(user, [verb, "secrets", "--all-namespaces"]))
          findings.push(`${user}: may ${verb} Secrets`);
      }
    }
    console.log(
      `rbac: ${accounts.length} accounts (release service accounts and role stand-ins), ` +
        `${rules} granted rules beyond the default, ` +
        `${findings.filter(f => f.includes("wildcard")).length} wildcards, ` +
        `${findings.filter(f => /Secret write|may \w+ Secrets/.test(f)).length} Secret writes, ` +
        `${secretReaders.length} cluster-wide Secret readers (${secretReaders.join(", ") || "none"})`,
    );
    expect(findings).toEqual([]);
  });

  it("gives Cluster API's manager no create, update or delete of PhysicalHosts, and people's roles what they say", async () => {
    const capi = "system:serviceaccount:capi-system:capi-manager";
    const viewer = "system:serviceaccount:default:beskar7-viewer-user";
    const editor = "system:serviceaccount:default:beskar7-editor-user";
    const hosts = "physicalhosts.infrastructure.cluster.x-k8s.io";
    const findings: string[] = [];
    for (const verb of ["create", "update", "delete"]) {
      if (await canI(capi, [verb, hosts, "-n", "default"]))
        findings.push(`Cluster API's manager may ${verb} PhysicalHosts`);
    }
    for (const resource of [hosts, "beskar7machines.infrastructure.cluster.x-k8s.io"]) {
      for (const verb of ["create", "update", "patch", "delete"]) {
        if (await canI(viewer, [verb, resource, "-n", "default"]))
          findings.push(`the viewer may ${verb} ${resource}`);
      }
    }
    if (await canI(editor, ["patch", hosts, "--subresource=status", "-n", "default"]))
      findings.push("the editor may write PhysicalHost status");
    if (await canI(editor, ["get", "secrets", "-n", "default"]))
      findings.push("the editor may read Secrets");
    expect(findings).toEqual([]);
  });
});
