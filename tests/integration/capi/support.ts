// Helpers for the Cluster API tests: objects of any kind through kubectl (server-side apply, get,
// list) in a test's namespace, and their conditions. kubectl calls are bounded, so a slow webhook
// fails a test with a message instead of hanging it.
import { kubectl } from "../support/kube";

/** Any object as kubectl prints it, with the fields these tests read. */
export interface Obj {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    finalizers?: string[];
    ownerReferences?: Array<{ kind: string; name: string; controller?: boolean }>;
  };
  spec?: Record<string, unknown> & { providerID?: string; replicas?: number };
  status?: Record<string, unknown> & {
    phase?: string;
    observedGeneration?: number;
    nodeRef?: { name?: string };
    initialization?: Record<string, boolean | undefined>;
    conditions?: Array<{ type: string; status: string; reason?: string; message?: string }>;
    hostRef?: { name: string };
    failureReason?: string;
  };
}

const TIMEOUT = "--request-timeout=30s";

export async function apply(ns: string, yaml: string): Promise<void> {
  const args = ["apply", "--server-side", "--field-manager=beskar7-tests", TIMEOUT, "-n", ns];
  const r = await kubectl([...args, "-f", "-"], yaml);
  if (r.code !== 0) throw new Error(`kubectl apply failed: ${r.stderr}`);
}

export async function get(ns: string, resource: string, name: string): Promise<Obj | undefined> {
  const r = await kubectl(["get", resource, name, "-n", ns, "-o", "json", TIMEOUT]);
  return r.code === 0 ? (JSON.parse(r.stdout) as Obj) : undefined;
}

export async function list(ns: string, resource: string): Promise<Obj[]> {
  const r = await kubectl(["get", resource, "-n", ns, "-o", "json", TIMEOUT]);
  if (r.code !== 0) throw new Error(r.stderr);
  return (JSON.parse(r.stdout) as { items: Obj[] }).items;
}

/** apply, get and list bound to the namespace a test file creates in its beforeAll. */
export function inNamespace(ns: () => string) {
  return {
    apply: (yaml: string) => apply(ns(), yaml),
    get: (resource: string, name: string) => get(ns(), resource, name),
    list: (resource: string) => list(ns(), resource),
  };
}

export const condition = (obj: Obj | undefined, type: string) =>
  obj?.status?.conditions?.find(c => c.type === type);
