// Shared pieces of the hardening suite (tests/integration/hardening/): fleets of hosts behind
// multi-system test BMCs that know a canary password, the Cluster API objects Cluster API's machine
// controller would leave (a provisioned Cluster, Machines owning Beskar7Machines, a bootstrap
// Secret holding a canary payload), each host's history as a watch sees it, and the canary search
// over everything the operator says. Each suite prints a one-line summary of its counts.
import { KubeConfig } from "@kubernetes/client-node";
import { K8s, kind } from "kubernetes-fluent-client";
import { inject } from "vitest";

import {
  API_GROUP,
  API_VERSION,
  Beskar7Machine,
  CAPI_GROUP,
  CAPI_VERSION,
  CapiCluster,
  CapiMachine,
  Kinds,
  Labels,
  PhysicalHost,
} from "../../../capabilities/api";
import { multiSystemMockup } from "../../../lab/bmc/multi-system";
import { TestBmc, type TestBmcOptions } from "../../../lab/bmc/server";
import { watchPath } from "../../../scripts/lib/bench-harness";
import { CANARY_BOOTSTRAP, CANARY_PASSWORD, canaryNeedles } from "../support/canary";
import { eventually } from "../support/kube";
import { scrapeMetrics, type Operator } from "../support/operator";

/** A capture with a virtual CD and a removable-disk slot, copied per system of a multi-system BMC. */
/** The operator's settings for the suite: the test BMCs listen on loopback, which the address
 *  policy refuses unless allowed (tests/integration/support/operator.ts allows it too, once the
 *  policy lands there). */
export const OPERATOR_ENV: Record<string, string> = { BESKAR7_ALLOW_BMC_ADDRESSES: "loopback" };

export const FLEET_MOCKUP = "dmtf_public-rackmount1";
export const USERNAME = "hardening";

/** Secrets that must never leave their Secret: the run's canary (tests/integration/support/canary.ts). */
export { CANARY_BOOTSTRAP, CANARY_PASSWORD, canaryNeedles };

export interface FleetHost {
  name: string;
  bmc: TestBmc;
  /** The ComputerSystem's URI on its BMC. */
  system: string;
  systemId: string;
}

export interface Fleet {
  hosts: FleetHost[];
  bmcs: TestBmc[];
  stop(): Promise<void>;
}

/** `count` hosts, `perBmc` systems behind each test BMC (all with the canary password). */
export async function startFleet(
  count: number,
  perBmc: number,
  options: Partial<TestBmcOptions> = {},
  prefix = "h",
): Promise<Fleet> {
  const ids = Array.from({ length: perBmc }, (_, i) => `S${i + 1}`);
  const mockup = multiSystemMockup(FLEET_MOCKUP, ids);
  const bmcs = await Promise.all(
    Array.from({ length: Math.ceil(count / perBmc) }, () =>
      TestBmc.start({
        mockup,
        tls: "shared",
        latencyMs: 50,
        powerState: "Off",
        username: USERNAME,
        password: CANARY_PASSWORD,
        ...options,
      }),
    ),
  );
  const hosts: FleetHost[] = [];
  for (let i = 0; i < count; i++) {
    const bmc = bmcs[Math.floor(i / perBmc)]!;
    const systemId = ids[i % perBmc]!;
    hosts.push({
      name: `${prefix}-${String(i + 1).padStart(3, "0")}`,
      bmc,
      systemId,
      system: `/redfish/v1/Systems/${systemId}`,
    });
  }
  return { hosts, bmcs, stop: async () => void (await Promise.all(bmcs.map(b => b.stop()))) };
}

/** Runs `fn` over `items`, `concurrency` at a time. */
export async function eachLimited<T>(
  items: T[],
  concurrency: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) await fn(items[i]!, i);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

/** Registers the fleet as a person would: a labelled credentials Secret per host, a CA Secret. */
export async function registerFleet(ns: string, fleet: Fleet): Promise<void> {
  const ca = fleet.bmcs[0]!.caPem!;
  await K8s(kind.Secret).Apply(
    { metadata: { name: "bmc-ca", namespace: ns }, stringData: { "ca.crt": ca } },
    { force: true },
  );
  await eachLimited(fleet.hosts, 8, async host => {
    await K8s(kind.Secret).Apply(
      {
        metadata: {
          name: `${host.name}-bmc`,
          namespace: ns,
          labels: { [Labels.bmcCredentials]: "true" },
        },
        stringData: { username: USERNAME, password: CANARY_PASSWORD },
      },
      { force: true },
    );
    await K8s(PhysicalHost).Apply(
      {
        metadata: { name: host.name, namespace: ns },
        spec: {
          redfishConnection: {
            address: host.bmc.url,
            systemId: host.systemId,
            credentialsSecretRef: `${host.name}-bmc`,
            caBundleSecretRef: "bmc-ca",
          },
        },
      },
      { force: true },
    );
  });
}

export async function listHosts(ns: string): Promise<PhysicalHost[]> {
  return (await K8s(PhysicalHost).InNamespace(ns).Get()).items;
}

export async function listMachines(ns: string): Promise<Beskar7Machine[]> {
  return (await K8s(Beskar7Machine).InNamespace(ns).Get()).items;
}

/** Waits until every host of the namespace satisfies `ok`; the failure names the others. */
export async function waitHosts(
  ns: string,
  count: number,
  ok: (h: PhysicalHost) => boolean,
  what: string,
  timeoutMs = 120_000,
): Promise<PhysicalHost[]> {
  let last: PhysicalHost[] = [];
  try {
    return await eventually(
      async () => {
        last = await listHosts(ns);
        return last.length === count && last.every(ok) && last;
      },
      what,
      timeoutMs,
      300,
    );
  } catch (err) {
    const off = last
      .filter(h => !ok(h))
      .map(
        h =>
          `${h.metadata?.name}: ${h.status?.state} ${h.status?.errorReason ?? ""} ${h.status?.errorMessage ?? ""}`,
      );
    throw new Error(`${(err as Error).message}\nnot yet: ${off.slice(0, 10).join("; ")}`);
  }
}

// ------------------------------------------------------------------------- Cluster API objects

export const CLUSTER = "hardening";
export const BOOTSTRAP_SECRET = "hardening-bootstrap";

/** What Cluster API's managers would have made before machines: a provisioned Cluster and the
 *  bootstrap data Secret (holding the canary payload unless `bootstrap` is given). */
export async function clusterFor(ns: string, bootstrap = CANARY_BOOTSTRAP): Promise<void> {
  await K8s(kind.Secret).Apply(
    {
      metadata: { name: BOOTSTRAP_SECRET, namespace: ns },
      type: "cluster.x-k8s.io/secret",
      stringData: { format: "cloud-config", value: bootstrap },
    },
    { force: true },
  );
  await K8s(CapiCluster).Apply({
    apiVersion: `${CAPI_GROUP}/${CAPI_VERSION}`,
    kind: "Cluster",
    metadata: { name: CLUSTER, namespace: ns },
    spec: { controlPlaneEndpoint: { host: "192.0.2.1", port: 6443 } },
  });
  await K8s(CapiCluster).PatchStatus({
    metadata: { name: CLUSTER, namespace: ns },
    status: { initialization: { infrastructureProvisioned: true } },
  });
}

/** The Beskar7Machine spec every machine of the suite asks for (the URL is never fetched). */
export const MACHINE_SPEC = {
  provisioningMode: "PreBakedISO",
  osFamily: "kairos",
  imageURL: "http://images.hardening.invalid/prebaked.iso",
} as const;

/** A Cluster API Machine and the Beskar7Machine it owns, as Cluster API's machine controller
 *  creates them (no Cluster API manager runs: nothing here depends on one); `spec` is the
 *  Beskar7Machine's, MACHINE_SPEC unless given. */
export async function createMachine(
  ns: string,
  name: string,
  spec: Beskar7Machine["spec"] = MACHINE_SPEC,
): Promise<void> {
  const owner = await K8s(CapiMachine).Apply({
    apiVersion: `${CAPI_GROUP}/${CAPI_VERSION}`,
    kind: "Machine",
    metadata: { name, namespace: ns, labels: { [Labels.clusterName]: CLUSTER } },
    spec: {
      clusterName: CLUSTER,
      bootstrap: { dataSecretName: BOOTSTRAP_SECRET },
      infrastructureRef: { apiGroup: API_GROUP, kind: Kinds.Beskar7Machine, name },
    },
  });
  await K8s(Beskar7Machine).Create({
    apiVersion: `${API_GROUP}/${API_VERSION}`,
    kind: Kinds.Beskar7Machine,
    metadata: {
      name,
      namespace: ns,
      labels: { [Labels.clusterName]: CLUSTER },
      ownerReferences: [
        {
          apiVersion: `${CAPI_GROUP}/${CAPI_VERSION}`,
          kind: "Machine",
          name,
          uid: owner.metadata!.uid!,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec,
  } as Beskar7Machine);
}

/** Deletes a machine as Cluster API does: the Beskar7Machine, then (no garbage collector runs
 *  in the test control plane) its Machine. */
export async function deleteMachine(ns: string, name: string): Promise<void> {
  await K8s(Beskar7Machine).InNamespace(ns).Delete(name);
  await K8s(CapiMachine).InNamespace(ns).Delete(name);
}

/** Waits until the namespace has no Beskar7Machine left; the failure describes the rest. */
export async function waitMachinesGone(
  ns: string,
  what: string,
  timeoutMs = 120_000,
): Promise<void> {
  let last: Beskar7Machine[] = [];
  try {
    await eventually(
      async () => {
        last = await listMachines(ns);
        return last.length === 0;
      },
      what,
      timeoutMs,
      500,
    );
  } catch (err) {
    const rest = last.map(
      m =>
        `${m.metadata?.name} (${m.metadata?.deletionTimestamp ? "deleting" : "live"}, ` +
        `${m.status?.phase}, host ${m.status?.hostRef?.name}: ` +
        `${m.status?.conditions?.map(c => `${c.type}=${c.status} ${c.reason} ${c.message}`).join("; ")})`,
    );
    throw new Error(`${(err as Error).message}\nleft: ${rest.slice(0, 8).join("\n")}`);
  }
}

// ------------------------------------------------------------------------------ host history

export interface HostHistory {
  /** Consumer UIDs in the order the watch saw them ("" when released). */
  consumers: string[];
  /** States in the order the watch saw them (consecutive repeats folded). */
  states: string[];
}

/** Watches the namespace's PhysicalHosts and keeps each one's consumers and states. */
export function watchHosts(ns: string): { histories: Map<string, HostHistory>; stop(): void } {
  const kc = new KubeConfig();
  kc.loadFromFile(inject("kubeconfig"));
  const histories = new Map<string, HostHistory>();
  const watch = watchPath<PhysicalHost>(
    kc,
    `/apis/${API_GROUP}/${API_VERSION}/namespaces/${ns}/physicalhosts`,
    (_type, host) => observeHost(histories, host),
  );
  return { histories, stop: () => watch.stop() };
}

export function observeHost(histories: Map<string, HostHistory>, host: PhysicalHost): void {
  const name = host.metadata?.name ?? "";
  const h = histories.get(name) ?? { consumers: [], states: [] };
  histories.set(name, h);
  const consumer = host.spec?.consumerRef?.uid ?? "";
  if (h.consumers[h.consumers.length - 1] !== consumer) h.consumers.push(consumer);
  const state = host.status?.state ?? "";
  if (state && h.states[h.states.length - 1] !== state) h.states.push(state);
}

/** Hosts whose consumer changed from one machine to another without a release in between. */
export function doubleClaims(histories: Map<string, HostHistory>): string[] {
  const found: string[] = [];
  for (const [name, h] of histories) {
    for (let i = 1; i < h.consumers.length; i++) {
      if (h.consumers[i - 1] && h.consumers[i] && h.consumers[i - 1] !== h.consumers[i])
        found.push(name);
    }
  }
  return found;
}

// -------------------------------------------------------------------------------- the canary

export interface CanaryReport {
  hits: string[];
  logLines: number;
  events: number;
  objects: number;
  conditions: number;
  metricLines: number;
}

/** Searches the operator's whole output, the namespace's events, every Beskar7 and Cluster API
 *  object (status and conditions included; Secrets excluded: they hold the canary by design) and
 *  the module's metrics for the canary in every form. */
export async function searchCanary(
  namespaces: string[],
  operator: Operator | undefined,
  extraLogs: string[] = [],
): Promise<CanaryReport> {
  const needles = canaryNeedles();
  const report: CanaryReport = {
    hits: [],
    logLines: 0,
    events: 0,
    objects: 0,
    conditions: 0,
    metricLines: 0,
  };
  const search = (where: string, text: string) => {
    for (const needle of needles) if (text.includes(needle)) report.hits.push(where);
  };
  const logs = [operator?.output() ?? "", ...extraLogs].join("\n");
  report.logLines = logs.split("\n").length;
  search("operator output", logs);
  if (operator && operator.child.exitCode === null) {
    const metrics = await scrapeMetrics(operator);
    report.metricLines = metrics.split("\n").length;
    search("metrics", metrics);
  }
  for (const ns of namespaces) {
    const events = (await K8s(kind.CoreEvent).InNamespace(ns).Get()).items;
    report.events += events.length;
    for (const e of events) search(`event ${e.metadata?.name}`, JSON.stringify(e));
    const objects = [
      ...(await listHosts(ns)),
      ...(await listMachines(ns)),
      ...(await K8s(CapiMachine).InNamespace(ns).Get()).items,
      ...(await K8s(CapiCluster).InNamespace(ns).Get()).items,
    ];
    report.objects += objects.length;
    for (const o of objects) {
      const conditions = (o as { status?: { conditions?: unknown[] } }).status?.conditions;
      report.conditions += conditions?.length ?? 0;
      search(`${o.kind ?? "object"} ${ns}/${o.metadata?.name}`, JSON.stringify(o));
    }
  }
  return report;
}

export function canarySummary(r: CanaryReport): string {
  return (
    `canary: ${r.logLines} log lines, ${r.events} events, ${r.objects} objects ` +
    `(${r.conditions} conditions), ${r.metricLines} metric lines searched, ${r.hits.length} hits`
  );
}

/** Runs `fn`; a failure carries the operator's recent output. */
export async function withOperatorLog<T>(operator: Operator, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    (err as Error).message += `\n--- operator ---\n${operator.output().slice(-4000)}`;
    throw err;
  }
}

export const sleep = (ms: number) => new Promise<void>(r => setTimeout(r, ms));
