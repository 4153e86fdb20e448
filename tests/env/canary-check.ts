// The integration run's final canary check (docs/guarantees.md, "Secrets"), run by the global
// teardown while the suite's API server is still up: every Event and every PhysicalHost,
// Beskar7Machine and Beskar7Cluster left in any namespace (status and conditions included), plus
// the hits each operator's output and metrics gave when it stopped (tests/integration/support/
// operator.ts). Returns where a needle was found, never the needle.
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

import { API_GROUP, Plurals } from "../../capabilities/api/constants";
import { CANARY_HITS_FILE, findCanary } from "../integration/support/canary";

interface Item {
  kind?: string;
  metadata?: { name?: string; namespace?: string };
}

/** All objects of `resource` in all namespaces; none when its CRD was never installed. */
async function listAll(kubectl: string, kubeconfig: string, resource: string): Promise<Item[]> {
  try {
    const { stdout } = await promisify(execFile)(
      kubectl,
      ["--kubeconfig", kubeconfig, "get", resource, "--all-namespaces", "-o", "json"],
      { maxBuffer: 1 << 30 },
    );
    return (JSON.parse(stdout) as { items: Item[] }).items;
  } catch (err) {
    if (/doesn't have a resource type/.test(String((err as { stderr?: string }).stderr))) return [];
    throw err;
  }
}

export async function searchRunForCanary(
  kubectl: string,
  kubeconfig: string,
  runDir: string,
): Promise<string[]> {
  const recorded = await readFile(join(runDir, CANARY_HITS_FILE), "utf8").catch(() => "");
  const hits = recorded.split("\n").filter(Boolean);
  const resources = [
    "events",
    ...(["PhysicalHost", "Beskar7Machine", "Beskar7Cluster"] as const).map(
      k => `${Plurals[k]}.${API_GROUP}`,
    ),
  ];
  const counts: string[] = [];
  for (const resource of resources) {
    const items = await listAll(kubectl, kubeconfig, resource);
    counts.push(`${items.length} ${resource.split(".")[0]}`);
    for (const o of items) {
      const where = `${o.kind ?? resource} ${o.metadata?.namespace}/${o.metadata?.name}`;
      hits.push(...findCanary(where, JSON.stringify(o)));
    }
  }
  process.stderr.write(
    `[testenv] canary search: ${counts.join(", ")}, ${recorded ? "operator hits recorded" : "no operator hits"}; ${hits.length} hits\n`,
  );
  return hits;
}
