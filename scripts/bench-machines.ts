// Benchmark of the Beskar7Machine controller: M Beskar7Machines created at once against H Available
// PhysicalHosts, with the real operator (the built Pepr module, as `npm run operator:local` runs
// it), the real boot service (boot-service/, plain HTTP on 127.0.0.1), a real etcd +
// kube-apiserver with Cluster API's CRDs, and H simulated BMCs (lab/bmc) that answer every request
// after a fixed latency, cycling through every capture, each with its own SMBIOS UUID.
//
//   npx tsx scripts/bench-machines.ts [--machines 100] [--hosts 120] [--latency-ms 50]
//       [--mode mixed|PreBakedISO|RemoteConfig|PXE|iPXE] [--os-family mixed|kairos|talos|...]
//       [--timeout-minutes 15] [--stall-seconds 120] [--skip-build] [--json FILE]
//       [--operator-log FILE] [--boot-service-log FILE] [--no-boot-service] [--powered-off]
//
// --no-boot-service (with --mode PreBakedISO) runs without the boot service, as a site that
// serves no configuration does: the claim's first run then reaches its first BMC action, where
// with the service it first writes the boot session the service must see before any medium.
//
// --powered-off powers every server off at its BMC before the machines are created, as a released
// host is left: a claim's first BMC action is then its first insert (or a network boot's
// override), which follows the boot session's write and the probe of what the service serves,
// instead of a ForceOff, which needs neither.
//
// Every server has an OS (scripts/lib/simulated-os.ts): when its BMC powers it on after its
// provisioning actions, it does at once what the booted OS would at the boot service (reads the
// patched ISO's kernel arguments and fetches its configuration, reads its configuration volume,
// or fetches its iPXE script and posts an inspection report), so RemoteConfig, PXE and iPXE hosts
// reach Provisioned on the OS's signal as with real servers; its time is measured on its own. The
// images are real: a small ISO9660 installer image mastered once with xorriso (the patched-ISO
// tests' builder), the iPXE binary and the target image, served on 127.0.0.1 with Range support.
//
// The wait for the machines ends when all are provisioned, after --timeout-minutes, or once no
// further machine has become provisioned for --stall-seconds after the first did (machines whose
// host cannot run their mode never get there). --operator-log keeps the module's whole log,
// --boot-service-log the boot service's (a line per request, with its duration).
//
// No Cluster API manager runs: the benchmark plays its part. It creates one v1beta2 Cluster with
// status.initialization.infrastructureProvisioned=true (through the status subresource), one
// bootstrap data Secret, and per machine a v1beta2 Machine (spec.bootstrap.dataSecretName set,
// infrastructureRef naming the Beskar7Machine) and the Beskar7Machine itself with an
// ownerReference to that Machine, as Cluster API's Machine controller would set it. The
// Beskar7Machines are all created at once (concurrent requests) once every host is Available and
// BMC traffic has been quiet for 5 s. With --mode mixed (the default) the machines cycle through
// the four provisioning modes; which capture each lands on is the controller's choice. The OS
// family of RemoteConfig, PXE and iPXE machines (--os-family) decides what the boot service
// serves: with mixed (the default) each mode's machines cycle through the four families, so
// RemoteConfig gets the patched ISO (talos, flatcar; kairos and LeapMicro on one-slot BMCs) and
// the configuration volume (kairos, LeapMicro on two-slot BMCs).
//
// It reports:
//   - claims: how many hosts were claimed, and double claims, counted three ways: a host whose
//     spec.consumerRef named more than one machine over the run (the benchmark's PhysicalHost
//     watch keeps each host's consumerRef history), two machines whose status.hostRef names one
//     host, and the operator's HostClaimed Events naming one host for two machines;
//   - claim to first BMC action: from the moment the PhysicalHost watch first sees
//     spec.consumerRef set to the first state-changing action the host's test BMC records after
//     the machines were created (bmc.actions: reset, media, boot override; sessions are not
//     actions), and to the first BMC request after the claim, median / p99 / max;
//   - Beskar7Machine created (the create call returned) to status.initialization.provisioned as
//     seen by the benchmark's watch, per mode and per delivery path (status.boot.delivery),
//     median / p99 / max; split per mode into created to power-on (the BMC's boot of the
//     server), the simulated OS's own time (power-on to its signal) and power-on to provisioned;
//     the OS's HTTP requests per provisioning; every OS error and configuration that was not the
//     bootstrap data;
//   - BMC requests per provisioning: each claimed host's BMC requests from the creation of the
//     machines (its host was idle until then) to the moment its machine is seen provisioned, per
//     capture and per mode;
//   - the module process's RSS (/proc/<pid>/status VmRSS) before registration, once every host is
//     Available and quiet (the machine controller watches them, no machine exists yet), and once
//     every machine is provisioned and BMC traffic is quiet again, and its peak (VmHWM); with
//     --machines 0 the run stops after the first of these;
//   - CPU seconds of each process and the machine's load average, since the cores are shared;
//   - the API server's requests over the same span, by verb and resource, and its admission
//     webhook calls: what the burst cost the API server, which the claims' writes wait on.
import { randomUUID } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

import { CoreV1Api, CustomObjectsApi, KubeConfig } from "@kubernetes/client-node";
import { K8s, kind } from "kubernetes-fluent-client";

import {
  API_GROUP,
  API_VERSION,
  Beskar7Machine,
  CAPI_GROUP,
  CAPI_VERSION,
  CapiCluster,
  CapiMachine,
  HostState,
  Kinds,
  Labels,
  ProvisioningMode,
  type ProvisioningModeName,
} from "../capabilities/api";
import { OsFamilies, type OsFamily } from "../boot/os";
import { startBootService } from "../boot-service/start";
import { listMockups } from "../lab/bmc/mockup-store";
import type { BmcAction, TestBmc } from "../lab/bmc/server";
import { freePort, startControlPlane } from "../lab/controlplane/controlplane";
import { imageServer } from "../lab/image-server";
import { buildIso } from "../lab/xorriso";
import {
  apiServerRequests,
  cpuDelta,
  cpuSnapshot,
  fmt,
  gitCommit,
  installCapiCrds,
  loadAverage,
  machineDescription,
  memory,
  metricSum,
  MiB,
  operatorEnv,
  percentile,
  requestDelta,
  runGuard,
  SECONDS,
  say,
  scrapeMetrics,
  short,
  sleep,
  startBmcs,
  startOperator,
  stats,
  treeCpuSeconds,
  watchPath,
  type CpuDelta,
} from "./lib/bench-harness";
import { hostName, registerHosts } from "./lib/register-hosts";
import { SimulatedOs, type OsRun } from "./lib/simulated-os";

const NAMESPACE = "bench";
const CLUSTER = "bench";
const BOOTSTRAP_SECRET = "bench-bootstrap";
const MODES = Object.values(ProvisioningMode) as ProvisioningModeName[];
const DELIVERIES = ["PreBakedISO", "ConfigVolume", "PatchedISO", "NetworkBoot"];
/** The boot service's namespace (its Secret and CA ConfigMap), the operator's default. */
const BOOT_NAMESPACE = "pepr-system";
/** A stock installer's GRUB configuration: one kernel line, and the rest of its sector as room
 *  for the kernel arguments the boot service writes into it. */
const GRUB = "menuentry install {\n  linux /boot/vmlinuz quiet\n  initrd /boot/initrd\n}\n";

interface Options {
  machines: number;
  hosts: number;
  latencyMs: number;
  modes: ProvisioningModeName[];
  families: OsFamily[];
  timeoutMinutes: number;
  stallSeconds: number;
  build: boolean;
  /** Run without the boot service (PreBakedISO only): no boot session before the first action. */
  bootService: boolean;
  poweredOff: boolean;
  json?: string;
  operatorLog?: string;
  bootServiceLog?: string;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      machines: { type: "string", default: "100" },
      hosts: { type: "string", default: "120" },
      "latency-ms": { type: "string", default: "50" },
      mode: { type: "string", default: "mixed" },
      "os-family": { type: "string", default: "mixed" },
      "timeout-minutes": { type: "string", default: "15" },
      "stall-seconds": { type: "string", default: "120" },
      "skip-build": { type: "boolean", default: false },
      "no-boot-service": { type: "boolean", default: false },
      "powered-off": { type: "boolean", default: false },
      json: { type: "string" },
      "operator-log": { type: "string" },
      "boot-service-log": { type: "string" },
    },
  });
  const num = (name: string, raw: string, min: number, max: number) => {
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min || n > max)
      throw new Error(`--${name} must be ${min}..${max}`);
    return n;
  };
  const mode = values.mode!;
  const modes =
    mode === "mixed" ? MODES : MODES.filter(m => m.toLowerCase() === mode.toLowerCase());
  if (!modes.length) throw new Error(`--mode must be mixed or one of ${MODES.join(", ")}`);
  const family = values["os-family"]!;
  const families =
    family === "mixed"
      ? [...OsFamilies]
      : OsFamilies.filter(f => f.toLowerCase() === family.toLowerCase());
  if (!families.length) {
    throw new Error(`--os-family must be mixed or one of ${OsFamilies.join(", ")}`);
  }
  if (values["no-boot-service"] && (modes.length !== 1 || modes[0] !== "PreBakedISO")) {
    throw new Error(
      "--no-boot-service needs --mode PreBakedISO (the other modes need the service)",
    );
  }
  const machines = Math.round(num("machines", values.machines!, 0, 5000));
  const hosts = Math.round(num("hosts", values.hosts!, 1, 5000));
  if (machines > hosts) throw new Error("--machines must not exceed --hosts");
  return {
    machines,
    hosts,
    latencyMs: num("latency-ms", values["latency-ms"]!, 0, 10_000),
    modes,
    families,
    timeoutMinutes: num("timeout-minutes", values["timeout-minutes"]!, 1, 120),
    stallSeconds: num("stall-seconds", values["stall-seconds"]!, 10, 7200),
    build: !values["skip-build"],
    bootService: !values["no-boot-service"],
    poweredOff: values["powered-off"]!,
    json: values.json,
    operatorLog: values["operator-log"],
    bootServiceLog: values["boot-service-log"],
  };
}

/** The Beskar7Machine spec of each mode, its images on the benchmark's image server. No configURL:
 *  the bootstrap data is the OS's configuration, as with Cluster API's bootstrap providers. */
function machineSpec(
  mode: ProvisioningModeName,
  osFamily: OsFamily,
  images: string,
): Record<string, string> {
  switch (mode) {
    case ProvisioningMode.PreBakedISO:
      return { provisioningMode: mode, imageURL: `${images}/installer.iso` };
    case ProvisioningMode.RemoteConfig:
      return { provisioningMode: mode, osFamily, imageURL: `${images}/installer.iso` };
    case ProvisioningMode.PXE:
    case ProvisioningMode.iPXE:
      return {
        provisioningMode: mode,
        osFamily,
        inspectionImageURL: `${images}/ipxe.efi`,
        targetImageURL: `${images}/target.efi`,
      };
  }
}

// ---------------------------------------------------------------------------------- tracking

interface HostRecord {
  name: string;
  bmc: TestBmc;
  mockup: string;
  /** The SMBIOS UUID its BMC reports (the boot service finds the host by it). */
  uuid: string;
  state?: string;
  /** status.boot.delivery as last seen. */
  delivery?: string;
  availableAt?: number;
  errorSeen?: string;
  /** Every consumer the host's spec.consumerRef named, in order, with when the watch saw it. */
  consumers: Array<{ uid: string; name: string; at: number; seenAt: number; startedAt?: number }>;
  /** The BMC's requests once machines exist, with their wall-clock time (Date.now(), as bmc.actions). */
  requestLog: Array<{ at: number; method: string; path: string }>;
  /** bmc.actions.length and the request counter when the machines were created. */
  actionsBefore?: number;
  requestsBefore?: number;
  kindsBefore?: Record<string, number>;
}

interface MachineRecord {
  name: string;
  mode: ProvisioningModeName;
  osFamily: OsFamily;
  uid?: string;
  createdAt?: number;
  provisionedAt?: number;
  host?: string;
  /** The host's BMC request count when the machine was seen provisioned. */
  requestsAtProvisioned?: number;
  kindsAtProvisioned?: Record<string, number>;
  phase?: string;
  ready?: string;
  conditions?: Array<{ type: string; status: string; reason?: string; message?: string }>;
}

interface ObservedHost {
  metadata?: { name?: string; resourceVersion?: string };
  spec?: { consumerRef?: { uid?: string; name?: string } };
  status?: {
    state?: string;
    errorReason?: string;
    errorMessage?: string;
    boot?: { delivery?: string };
    provisioning?: { consumerUID?: string; startedTime?: string };
  };
}

interface ObservedMachine {
  metadata?: { name?: string; uid?: string };
  status?: {
    phase?: string;
    hostRef?: { name?: string };
    initialization?: { provisioned?: boolean };
    conditions?: MachineRecord["conditions"];
  };
}

function observeHost(hosts: Map<string, HostRecord>, obj: ObservedHost): void {
  const record = hosts.get(obj.metadata?.name ?? "");
  if (!record) return;
  const now = Date.now();
  record.state = obj.status?.state;
  if (obj.status?.boot?.delivery) record.delivery = obj.status.boot.delivery;
  if (record.state === HostState.Available) record.availableAt ??= now;
  if (record.state === HostState.Error && !record.errorSeen) {
    record.errorSeen = `${obj.status?.errorReason}: ${obj.status?.errorMessage}`;
  }
  const consumer = obj.spec?.consumerRef;
  const last = record.consumers[record.consumers.length - 1];
  if (consumer?.uid && consumer.uid !== last?.uid) {
    record.consumers.push({ uid: consumer.uid, name: consumer.name ?? "?", at: now, seenAt: now });
  }
  // This watch can see a claim a second or more after it was written (the API server is busy),
  // after the host's first BMC action even. The host controller stamps the provisioning it starts
  // on the claim with its own clock (startedTime, ms, same machine): the claim is no later than
  // either, so the earlier of the two is taken.
  const started = obj.status?.provisioning;
  const claim = record.consumers.find(c => c.uid === started?.consumerUID);
  const stamped = started?.startedTime ? Date.parse(started.startedTime) : NaN;
  if (claim && !Number.isNaN(stamped)) claim.startedAt = stamped;
  if (claim && stamped < claim.at) claim.at = stamped;
}

function observeMachine(
  machines: Map<string, MachineRecord>,
  hosts: Map<string, HostRecord>,
  obj: ObservedMachine,
): void {
  const record = machines.get(obj.metadata?.name ?? "");
  if (!record) return;
  record.uid ??= obj.metadata?.uid;
  record.phase = obj.status?.phase;
  record.conditions = obj.status?.conditions;
  record.ready = obj.status?.conditions?.find(c => c.type === "Ready")?.status;
  if (obj.status?.hostRef?.name) record.host = obj.status.hostRef.name;
  if (obj.status?.initialization?.provisioned && record.provisionedAt === undefined) {
    record.provisionedAt = Date.now();
    const bmc = record.host ? hosts.get(record.host)?.bmc : undefined;
    record.requestsAtProvisioned = bmc?.requests.total;
    record.kindsAtProvisioned = bmc?.requests.snapshot();
  }
}

/** Waits until no BMC has answered a request for `quietMs` (at most `maxMs`). */
async function waitQuiet(bmcs: TestBmc[], quietMs = 5000, maxMs = 120_000): Promise<void> {
  const total = () => bmcs.reduce((a, b) => a + b.requests.total, 0);
  let last = total();
  let since = performance.now();
  const deadline = performance.now() + maxMs;
  while (performance.now() - since < quietMs && performance.now() < deadline) {
    await sleep(500);
    const n = total();
    if (n !== last) {
      last = n;
      since = performance.now();
    }
  }
}

/** Runs `fn` over `items`, `concurrency` at a time. */
async function eachLimited<T>(
  items: T[],
  concurrency: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) await fn(items[i]!);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

// ------------------------------------------------------------------------------------ result

interface Row {
  group: string;
  n: number;
  min: number;
  median: number;
  p99: number;
  max: number;
}

function row(group: string, values: number[]): Row {
  const s = stats(values);
  return {
    group,
    n: values.length,
    min: s.min,
    median: s.median,
    p99: percentile(values, 99),
    max: s.max,
  };
}

/**
 * One claim's timeline, in ms from the claim (the earlier of the benchmark's watch seeing it and
 * the host controller's stamp): when each saw it, and the BMC's requests up to the first action.
 */
interface ClaimTrace {
  machine: string;
  host: string;
  mockup: string;
  firstActionMs: number;
  firstActionKind: string;
  watchSawMs: number;
  hostStartedMs?: number;
  requests: string[];
}

function claimTrace(
  machine: string,
  host: HostRecord,
  claim: HostRecord["consumers"][number],
  action: BmcAction,
): ClaimTrace {
  const ms = (t: number) => Math.round(t - claim.at);
  return {
    machine,
    host: host.name,
    mockup: short(host.mockup),
    firstActionMs: ms(action.at),
    firstActionKind: action.kind,
    watchSawMs: ms(claim.seenAt),
    hostStartedMs: claim.startedAt === undefined ? undefined : ms(claim.startedAt),
    requests: host.requestLog
      .filter(r => r.at >= claim.at && r.at <= action.at)
      .map(r => `${ms(r.at)} ${r.method} ${r.path}`),
  };
}

interface BenchResult {
  command: string;
  date: string;
  commit: string;
  machine: string;
  load: { start: string; machinesCreated: string; end: string };
  operatorEnv: string[];
  machines: number;
  hosts: number;
  latencyMs: number;
  modes: string[];
  osFamilies: string[];
  bootService: boolean;
  /** Every server was powered off at its BMC before the machines (--powered-off). */
  poweredOff: boolean;
  timedOut: false | "timeout" | "stalled";
  /** Watch events the benchmark received from the machines' creation to the end of the wait. */
  watchEvents: { machines: number; hosts: number };
  waitSeconds: number;
  allAvailableSeconds: number;
  provisioned: number;
  claimedHosts: number;
  doubleClaims: { byConsumerHistory: number; byHostRef: number; byEvents: number };
  hostClaimedEvents: number;
  machinesCreateSeconds: number;
  allProvisionedSeconds: number;
  claimToFirstActionSeconds: Row;
  /** Every machine's claim to first BMC action, ascending (how many miss 1 s, and by how much). */
  claimToFirstActionSamples: number[];
  claimToFirstRequestSeconds: Row;
  /** The slowest claims' timelines (ms from the claim): where the time to the first action went. */
  slowestClaims: ClaimTrace[];
  createdToClaimSeconds: Row;
  createdToProvisionedSeconds: Row[];
  /** By the host's status.boot.delivery: what the boot service served. */
  createdToProvisionedByDeliverySeconds: Row[];
  /** Per mode: the controller's part up to the BMC's power-on of the server. */
  createdToPowerOnSeconds: Row[];
  /** Per mode: the simulated OS's own time, power-on to its signal (or its configuration read). */
  osSeconds: Row[];
  /** Per mode: power-on to provisioned (the OS, the boot service and the controllers). */
  powerOnToProvisionedSeconds: Row[];
  /** Per mode: HTTP requests the simulated OS made (Range reads of its media included). */
  osRequestsPerProvisioning: Row[];
  /** Per mode: what the OS found it booted (OsPath), counted. */
  osPaths: Record<string, Record<string, number>>;
  osErrors: string[];
  /** Machines whose OS read a configuration that was not the bootstrap data. */
  configNotBootstrapData: string[];
  requestsPerProvisioning: Row[];
  requestsPerProvisioningByMode: Row[];
  requestKindsPerCapture: Record<string, Record<string, number>>;
  moduleRssMiB: { beforeRegistration: number; allAvailable: number; end: number; peak: number };
  machineReconciles: number;
  meanMachineReconcileMs: number;
  cpuMachines: CpuDelta;
  /**
   * The API server's requests over the same span as cpuMachines, by "VERB resource[/sub]", the
   * seconds it spent on them ("seconds VERB resource[/sub]"), and its admission webhook calls
   * ("admission <type> <operation>"): everyone's, the benchmark's own creates and watches included.
   */
  apiRequests: Record<string, number>;
  /** The namespace's Events at the end, by "involved kind reason", with their counts summed. */
  eventsByReason: Record<string, number>;
  /** CPU seconds of the boot service over the same span as cpuMachines. */
  cpuBootService: number;
  hostErrors: string[];
  notProvisioned: string[];
}

/** The API server's requests in the burst, most first, with the count per machine. */
function apiRequestTable(requests: Record<string, number>, machines: number): string {
  const entries = Object.entries(requests)
    .filter(([k]) => !k.startsWith(SECONDS))
    .sort((a, b) => b[1] - a[1]);
  const meanMs = (key: string) => {
    const seconds = requests[`${SECONDS}${key}`];
    return seconds === undefined || key.startsWith("WATCH")
      ? ""
      : fmt((1000 * seconds) / requests[key]!, 0);
  };
  const total = (filter: (key: string) => boolean) =>
    entries.filter(([k]) => filter(k)).reduce((sum, [, n]) => sum + n, 0);
  const writes = total(k => /^(POST|PUT|PATCH|DELETE|APPLY) /.test(k));
  return [
    `| API server requests from creation to all provisioned (writes ${writes}, ${fmt(writes / machines, 1)} per machine) | count | per machine | mean ms |`,
    "| --- | --- | --- | --- |",
    ...entries.map(([key, n]) => `| ${key} | ${n} | ${fmt(n / machines, 1)} | ${meanMs(key)} |`),
  ].join("\n");
}

// -------------------------------------------------------------------------------------- main

async function main(): Promise<void> {
  const opts = options();
  const commit = gitCommit();
  const loadStart = loadAverage();
  const guard = runGuard((2 * opts.timeoutMinutes + 10) * 60_000);
  const work = await mkdtemp(join(tmpdir(), "beskar7-bench-machines-"));
  guard.add(() => rm(work, { recursive: true, force: true }));

  try {
    say(`load average ${loadStart}; starting etcd and kube-apiserver`);
    const plane = await startControlPlane(join(work, "plane"), { log: say });
    guard.add(() => plane.stop());
    process.env.KUBECONFIG = plane.kubeconfig;

    say("installing Cluster API's core CRDs");
    await installCapiCrds(plane);

    say("mastering the installer ISO (xorriso); starting the image server");
    const images = await imageServer({
      "/installer.iso": buildIso({ "boot/grub/grub.cfg": GRUB, "boot/vmlinuz": "kernel" }),
      "/ipxe.efi": Buffer.alloc(64 * 1024, 0x49),
      "/target.efi": Buffer.alloc(256 * 1024, 0x54),
    });
    guard.add(async () => images.close());

    // The OS of every server; the BMCs call it on power-on. Bootstrap data unique to the run.
    const bootstrapData = Buffer.from(`#cloud-config\n# beskar7 bench ${randomUUID()}\n`);
    const bmcByUuid = new Map<string, TestBmc>();
    // The boot service's URL is set once the BMCs hold their ports (below).
    const osOptions = { bootURL: "", bootstrapData, bmcOf: (uuid: string) => bmcByUuid.get(uuid) };
    const os = new SimulatedOs(osOptions);

    const mockups = listMockups();
    say(
      `starting ${opts.hosts} BMCs (${mockups.map(short).join(", ")}), ${opts.latencyMs} ms latency`,
    );
    // One SMBIOS UUID per server: the boot service refuses a UUID two hosts share.
    const uuids = Array.from({ length: opts.hosts }, () => randomUUID());
    const started = startBmcs(opts.hosts, mockups, opts.latencyMs, i => ({
      identity: { uuid: uuids[i] },
      machine: os,
    }));
    guard.add(started.stopAll);
    const bmcs = await started.ready;
    bmcs.forEach((bmc, i) => bmcByUuid.set(uuids[i]!, bmc));
    // Chosen after the BMCs listen: a port picked before could go to one of them (EADDRINUSE).
    const bootBase = `http://127.0.0.1:${await freePort()}`;
    osOptions.bootURL = bootBase;

    say(`starting the operator${opts.build ? " (pepr build first)" : ""}`);
    const operatorLog = opts.operatorLog ?? join(work, "operator.log");
    const operator = await startOperator(
      plane.kubeconfig,
      {
        build: opts.build,
        logFile: operatorLog,
        env: opts.bootService
          ? { BESKAR7_BOOT_URL: bootBase, BESKAR7_NAMESPACE: BOOT_NAMESPACE }
          : { BESKAR7_NAMESPACE: BOOT_NAMESPACE },
      },
      stop => guard.add(stop),
    );
    say(`operator ready: module pid ${operator.modulePid}; its log: ${operatorLog}`);

    // After the operator, which registers the CRDs and the namespace the service needs.
    let bootPid: number | undefined;
    if (opts.bootService) {
      const bootLogFile = opts.bootServiceLog ?? join(work, "boot-service.log");
      const bootLog = createWriteStream(bootLogFile);
      const boot = await startBootService({
        kubeconfig: plane.kubeconfig,
        url: bootBase,
        plainHttp: true,
        namespace: BOOT_NAMESPACE,
        caFile: join(work, "boot-ca.crt"),
        onLog: line => bootLog.write(`${line}\n`),
      }).catch(async (err: unknown) => {
        bootLog.end();
        throw err;
      });
      guard.add(async () => {
        await boot.stop();
        await new Promise<void>(r => bootLog.end(r));
      });
      bootPid = boot.child.pid!;
      say(`boot service at ${bootBase} (pid ${bootPid}); its log: ${bootLogFile}`);
    } else {
      say("no boot service (--no-boot-service): pre-baked ISOs boot without their bootstrap data");
    }
    const pids = {
      module: operator.modulePid,
      apiserver: plane.pids.kubeApiserver,
      etcd: plane.pids.etcd,
    };

    const kc = new KubeConfig();
    kc.loadFromFile(plane.kubeconfig);
    const hosts = new Map<string, HostRecord>();
    bmcs.forEach((bmc, i) => {
      const name = hostName(bmc, i);
      hosts.set(name, {
        name,
        bmc,
        mockup: mockups[i % mockups.length]!,
        uuid: uuids[i]!,
        consumers: [],
        requestLog: [],
      });
    });
    const machines = new Map<string, MachineRecord>();
    for (let i = 0; i < opts.machines; i++) {
      const name = `m-${String(i + 1).padStart(4, "0")}`;
      // Each mode's machines cycle through the OS families.
      const osFamily = opts.families[Math.floor(i / opts.modes.length) % opts.families.length]!;
      machines.set(name, { name, mode: opts.modes[i % opts.modes.length]!, osFamily });
    }
    const ns = `/namespaces/${NAMESPACE}`;
    const watchEvents = { hosts: 0, machines: 0 };
    const hostWatch = watchPath<ObservedHost>(
      kc,
      `/apis/${API_GROUP}/${API_VERSION}${ns}/physicalhosts`,
      (_t, obj) => {
        watchEvents.hosts++;
        observeHost(hosts, obj);
      },
    );
    guard.add(async () => hostWatch.stop());
    const machineWatch = watchPath<ObservedMachine>(
      kc,
      `/apis/${API_GROUP}/${API_VERSION}${ns}/beskar7machines`,
      (_t, obj) => {
        watchEvents.machines++;
        observeMachine(machines, hosts, obj);
      },
    );
    guard.add(async () => machineWatch.stop());
    await sleep(1000);

    // ---- hosts
    const rssBeforeRegistration = memory(operator.modulePid).rss;
    const records = [...hosts.values()];
    const t0 = Date.now();
    await registerHosts(NAMESPACE, bmcs);
    say(`registered ${opts.hosts} hosts in ${fmt((Date.now() - t0) / 1000)} s`);
    const custom = kc.makeApiClient(CustomObjectsApi);
    const listAll = async <T>(group: string, version: string, plural: string) =>
      (
        (await custom.listNamespacedCustomObject({
          group,
          version,
          namespace: NAMESPACE,
          plural,
        })) as {
          items: T[];
        }
      ).items;
    const hostDeadline = Date.now() + opts.timeoutMinutes * 60_000;
    let lastReport = 0;
    while (records.some(r => r.availableAt === undefined)) {
      if (Date.now() > hostDeadline) throw new Error("hosts did not all become Available in time");
      await sleep(500);
      if (Date.now() - lastReport > 10_000) {
        lastReport = Date.now();
        // A LIST as well: under load the watch has been seen to miss events without ending.
        for (const h of await listAll<ObservedHost>(API_GROUP, API_VERSION, "physicalhosts"))
          observeHost(hosts, h);
        const available = records.filter(r => r.availableAt !== undefined).length;
        say(`${fmt((Date.now() - t0) / 1000, 0)} s: ${available}/${opts.hosts} Available`);
      }
    }
    const allAvailableSeconds = (Math.max(...records.map(r => r.availableAt!)) - t0) / 1000;
    say(`all ${opts.hosts} hosts Available after ${fmt(allAvailableSeconds)} s; waiting for quiet`);
    await waitQuiet(bmcs);
    if (opts.poweredOff) {
      // At the BMC, unseen by the operator until its next power check (5 min away).
      for (const r of records) r.bmc.setPowerState("Off");
      say("every server powered off at its BMC (--powered-off)");
    }
    const rssAllAvailable = memory(operator.modulePid).rss;
    say(`module RSS with every host Available, no machine: ${fmt(rssAllAvailable / MiB, 0)} MiB`);

    // ---- the Cluster API side, as its managers would leave it
    await K8s(kind.Secret).Apply({
      metadata: { name: BOOTSTRAP_SECRET, namespace: NAMESPACE },
      type: "cluster.x-k8s.io/secret",
      stringData: { format: "cloud-config", value: bootstrapData.toString() },
    });
    await K8s(CapiCluster).Apply({
      apiVersion: `${CAPI_GROUP}/${CAPI_VERSION}`,
      kind: "Cluster",
      metadata: { name: CLUSTER, namespace: NAMESPACE },
      // The schema wants a non-empty spec; the endpoint is a documentation address.
      spec: { controlPlaneEndpoint: { host: "192.0.2.1", port: 6443 } },
    });
    await K8s(CapiCluster).PatchStatus({
      metadata: { name: CLUSTER, namespace: NAMESPACE },
      status: { initialization: { infrastructureProvisioned: true } },
    });
    const machineList = [...machines.values()];
    const owners = new Map<string, { uid: string }>();
    await eachLimited(machineList, 16, async m => {
      const created = await K8s(CapiMachine).Apply({
        apiVersion: `${CAPI_GROUP}/${CAPI_VERSION}`,
        kind: "Machine",
        metadata: { name: m.name, namespace: NAMESPACE, labels: { [Labels.clusterName]: CLUSTER } },
        spec: {
          clusterName: CLUSTER,
          bootstrap: { dataSecretName: BOOTSTRAP_SECRET },
          infrastructureRef: { apiGroup: API_GROUP, kind: Kinds.Beskar7Machine, name: m.name },
        },
      });
      owners.set(m.name, { uid: created.metadata!.uid! });
    });
    if (opts.machines) say(`created the Cluster and ${opts.machines} Machines; quiet again`);

    // Request timestamps from here on (bmc.actions carry their own).
    for (const r of records) {
      r.actionsBefore = r.bmc.actions.length;
      r.requestsBefore = r.bmc.requests.total;
      r.kindsBefore = r.bmc.requests.snapshot();
      const counter = r.bmc.requests;
      const record = counter.record.bind(counter);
      counter.record = (method: string, path: string) => {
        r.requestLog.push({ at: Date.now(), method, path });
        record(method, path);
      };
    }

    // ---- the machines, all at once
    const loadMachines = loadAverage();
    const api0 = await apiServerRequests(kc);
    const cpuStart = cpuSnapshot(pids);
    const bootCpu0 = bootPid === undefined ? 0 : treeCpuSeconds(bootPid);
    os.arm();
    const tm = Date.now();
    const eventsBefore = { ...watchEvents };
    await Promise.all(
      machineList.map(async m => {
        const created = await K8s(Beskar7Machine).Create({
          apiVersion: `${API_GROUP}/${API_VERSION}`,
          kind: Kinds.Beskar7Machine,
          metadata: {
            name: m.name,
            namespace: NAMESPACE,
            labels: { [Labels.clusterName]: CLUSTER },
            ownerReferences: [
              {
                apiVersion: `${CAPI_GROUP}/${CAPI_VERSION}`,
                kind: "Machine",
                name: m.name,
                uid: owners.get(m.name)!.uid,
                controller: true,
                blockOwnerDeletion: true,
              },
            ],
          },
          spec: machineSpec(m.mode, m.osFamily, images.url),
        } as Beskar7Machine);
        m.createdAt = Date.now();
        m.uid = created.metadata?.uid;
      }),
    );
    const machinesCreateSeconds = (Date.now() - tm) / 1000;
    if (opts.machines)
      say(`created ${opts.machines} Beskar7Machines in ${fmt(machinesCreateSeconds)} s`);

    const deadline = tm + opts.timeoutMinutes * 60_000;
    let timedOut: false | "timeout" | "stalled" = false;
    lastReport = Date.now();
    const provisionedCount = () => machineList.filter(m => m.provisionedAt !== undefined).length;
    let lastCount = 0;
    let lastChange = Date.now();
    const reconcileCount = async () =>
      metricSum(
        await scrapeMetrics(operator.webhookPort),
        "beskar7_reconciles_total",
        'controller="beskar7machine"',
      );
    let lastReconciles = await reconcileCount();
    while (provisionedCount() < opts.machines) {
      if (Date.now() > deadline) {
        timedOut = "timeout";
        break;
      }
      if (provisionedCount() !== lastCount) {
        lastCount = provisionedCount();
        lastChange = Date.now();
      } else if (lastCount > 0 && Date.now() - lastChange > opts.stallSeconds * 1000) {
        timedOut = "stalled";
        break;
      }
      await sleep(250);
      if (Date.now() - lastReport >= 5000) {
        lastReport = Date.now();
        const phases: Record<string, number> = {};
        for (const m of machineList) phases[m.phase ?? "-"] = (phases[m.phase ?? "-"] ?? 0) + 1;
        const states: Record<string, number> = {};
        for (const r of records) states[r.state ?? "-"] = (states[r.state ?? "-"] ?? 0) + 1;
        const reconciles = await reconcileCount();
        say(
          `${fmt((Date.now() - tm) / 1000, 0)} s: ${provisionedCount()}/${opts.machines} provisioned; ` +
            `machines ${JSON.stringify(phases)} hosts ${JSON.stringify(states)} ` +
            `machine reconciles +${reconciles - lastReconciles}, watch events so far: ` +
            `${watchEvents.machines - eventsBefore.machines} machine, ${watchEvents.hosts - eventsBefore.hosts} host; ` +
            `module RSS ${fmt(memory(operator.modulePid).rss / MiB, 0)} MiB`,
        );
        lastReconciles = reconciles;
      }
    }
    const tEnd = Date.now();
    const cpuEnd = cpuSnapshot(pids);
    const apiRequests = requestDelta(api0, await apiServerRequests(kc));
    const bootCpu = bootPid === undefined ? 0 : treeCpuSeconds(bootPid) - bootCpu0;
    const eventsDuring = {
      machines: watchEvents.machines - eventsBefore.machines,
      hosts: watchEvents.hosts - eventsBefore.hosts,
    };
    say(
      timedOut
        ? `${timedOut === "timeout" ? "timed out" : `no progress for ${opts.stallSeconds} s`}: ` +
            `${provisionedCount()}/${opts.machines} provisioned`
        : `all ${opts.machines} provisioned after ${fmt((tEnd - tm) / 1000)} s; waiting for quiet`,
    );
    await waitQuiet(bmcs);
    await Promise.race([os.settled(), sleep(30_000)]);
    const rssEnd = memory(operator.modulePid);
    const loadEnd = loadAverage();
    const metrics = await scrapeMetrics(operator.webhookPort);

    // ---- the final word of the API server: consumers, hostRefs, events
    for (const h of await listAll<ObservedHost>(API_GROUP, API_VERSION, "physicalhosts"))
      observeHost(hosts, h);
    for (const m of await listAll<ObservedMachine>(API_GROUP, API_VERSION, "beskar7machines"))
      observeMachine(machines, hosts, m);
    const events = (await kc.makeApiClient(CoreV1Api).listNamespacedEvent({ namespace: NAMESPACE }))
      .items;
    const claimEvents = events.filter(
      e => e.reason === "HostClaimed" && e.involvedObject?.kind === Kinds.Beskar7Machine,
    );
    const machinesPerHostByEvents = new Map<string, Set<string>>();
    for (const e of claimEvents) {
      const host = /claimed PhysicalHost (\S+)/.exec(e.message ?? "")?.[1] ?? "?";
      const set = machinesPerHostByEvents.get(host) ?? new Set<string>();
      set.add(e.involvedObject.uid ?? e.involvedObject.name ?? "?");
      machinesPerHostByEvents.set(host, set);
    }
    const hostRefCount = new Map<string, number>();
    for (const m of machineList) {
      if (m.host) hostRefCount.set(m.host, (hostRefCount.get(m.host) ?? 0) + 1);
    }
    const doubleClaims = {
      byConsumerHistory: records.filter(r => new Set(r.consumers.map(c => c.uid)).size > 1).length,
      byHostRef: [...hostRefCount.values()].filter(n => n > 1).length,
      byEvents: [...machinesPerHostByEvents.values()].filter(s => s.size > 1).length,
    };
    const claimedHosts = records.filter(r => r.consumers.length > 0).length;

    // ---- per machine figures
    const claimToAction: number[] = [];
    const claimToRequest: number[] = [];
    const claimTraces: ClaimTrace[] = [];
    const createdToClaim: number[] = [];
    const createdToProvisioned = new Map<string, number[]>();
    const requestsByCapture = new Map<string, number[]>();
    const requestsByMode = new Map<string, number[]>();
    const kindsPerCapture: Record<string, Record<string, number>> = {};
    const byDelivery = new Map<string, number[]>();
    const createdToPowerOn = new Map<string, number[]>();
    const osTime = new Map<string, number[]>();
    const powerOnToProvisioned = new Map<string, number[]>();
    const osRequests = new Map<string, number[]>();
    const osPaths: Record<string, Record<string, number>> = {};
    const osErrors: string[] = [];
    const configNotBootstrapData: string[] = [];
    const push = (map: Map<string, number[]>, key: string, v: number) =>
      map.set(key, [...(map.get(key) ?? []), v]);
    for (const m of machineList) {
      const host = m.host ? hosts.get(m.host) : undefined;
      const run: OsRun | undefined = host ? os.firstRun(host.uuid) : undefined;
      if (host && run) {
        const where = `${m.name} (${m.mode}, ${m.osFamily}) on ${host.name}`;
        push(createdToPowerOn, m.mode, (run.bootAt - m.createdAt!) / 1000);
        if (run.signalAt !== undefined) push(osTime, m.mode, (run.signalAt - run.bootAt) / 1000);
        if (m.provisionedAt !== undefined) {
          push(powerOnToProvisioned, m.mode, (m.provisionedAt - run.bootAt) / 1000);
        }
        push(osRequests, m.mode, run.requests);
        const paths = (osPaths[m.mode] ??= {});
        paths[run.path ?? "unknown"] = (paths[run.path ?? "unknown"] ?? 0) + 1;
        if (run.error) osErrors.push(`${where}: ${run.error}`);
        if (run.configMatches === false) configNotBootstrapData.push(where);
      }
      const claim = host?.consumers.find(c => c.uid === m.uid);
      if (host && claim) {
        createdToClaim.push((claim.at - m.createdAt!) / 1000);
        const action = host.bmc.actions
          .slice(host.actionsBefore)
          .find(a => a.kind !== "session-create" && a.kind !== "session-delete");
        if (action) claimToAction.push((action.at - claim.at) / 1000);
        const request = host.requestLog.find(r => r.at >= claim.at);
        if (request !== undefined) claimToRequest.push((request.at - claim.at) / 1000);
        if (action) claimTraces.push(claimTrace(m.name, host, claim, action));
      }
      if (m.provisionedAt !== undefined) {
        push(createdToProvisioned, m.mode, (m.provisionedAt - m.createdAt!) / 1000);
        // A pre-baked ISO has no boot session, so no status.boot.
        push(byDelivery, host?.delivery ?? "PreBakedISO", (m.provisionedAt - m.createdAt!) / 1000);
        if (host && m.requestsAtProvisioned !== undefined) {
          const n = m.requestsAtProvisioned - host.requestsBefore!;
          push(requestsByCapture, short(host.mockup), n);
          push(requestsByMode, m.mode, n);
          const capture = `${short(host.mockup)} ${m.mode}`;
          if (!kindsPerCapture[capture]) {
            const diff: Record<string, number> = {};
            for (const [k, v] of Object.entries(m.kindsAtProvisioned ?? {})) {
              const d = v - (host.kindsBefore?.[k] ?? 0);
              if (d) diff[k] = d;
            }
            kindsPerCapture[capture] = diff;
          }
        }
      }
    }
    const rows = (map: Map<string, number[]>, order: string[]) => [
      ...order.filter(k => map.has(k)).map(k => row(k, map.get(k)!)),
      ...(map.size > 1 ? [row("all", [...map.values()].flat())] : []),
    ];
    const reconciles = metricSum(
      metrics,
      "beskar7_reconciles_total",
      'controller="beskar7machine"',
    );
    const reconcileMs = metricSum(
      metrics,
      "beskar7_reconcile_duration_ms_total",
      'controller="beskar7machine"',
    );
    const allProvisioned = machineList.map(m => m.provisionedAt ?? NaN);

    const result: BenchResult = {
      command: `npx tsx scripts/bench-machines.ts ${process.argv.slice(2).join(" ")}`.trim(),
      date: new Date().toISOString(),
      commit,
      machine: machineDescription(),
      load: { start: loadStart, machinesCreated: loadMachines, end: loadEnd },
      operatorEnv: operatorEnv(),
      machines: opts.machines,
      hosts: opts.hosts,
      latencyMs: opts.latencyMs,
      modes: opts.modes,
      osFamilies: opts.families,
      bootService: opts.bootService,
      poweredOff: opts.poweredOff,
      timedOut,
      watchEvents: eventsDuring,
      waitSeconds: (tEnd - tm) / 1000,
      allAvailableSeconds,
      provisioned: provisionedCount(),
      claimedHosts,
      doubleClaims,
      hostClaimedEvents: claimEvents.reduce((a, e) => a + (e.count ?? 1), 0),
      machinesCreateSeconds,
      allProvisionedSeconds: opts.machines ? (Math.max(...allProvisioned) - tm) / 1000 : NaN,
      claimToFirstActionSeconds: row("claim to first BMC action", claimToAction),
      claimToFirstActionSamples: [...claimToAction].sort((a, b) => a - b),
      claimToFirstRequestSeconds: row("claim to first BMC request", claimToRequest),
      slowestClaims: claimTraces.sort((a, b) => b.firstActionMs - a.firstActionMs).slice(0, 10),
      createdToClaimSeconds: row("created to claimed", createdToClaim),
      createdToProvisionedSeconds: rows(createdToProvisioned, MODES),
      createdToProvisionedByDeliverySeconds: rows(byDelivery, DELIVERIES),
      createdToPowerOnSeconds: rows(createdToPowerOn, MODES),
      osSeconds: rows(osTime, MODES),
      powerOnToProvisionedSeconds: rows(powerOnToProvisioned, MODES),
      osRequestsPerProvisioning: rows(osRequests, MODES),
      osPaths,
      osErrors,
      configNotBootstrapData,
      requestsPerProvisioning: rows(
        requestsByCapture,
        mockups.map(m => short(m)),
      ),
      requestsPerProvisioningByMode: rows(requestsByMode, MODES),
      requestKindsPerCapture: kindsPerCapture,
      moduleRssMiB: {
        beforeRegistration: rssBeforeRegistration / MiB,
        allAvailable: rssAllAvailable / MiB,
        end: rssEnd.rss / MiB,
        peak: rssEnd.peak / MiB,
      },
      machineReconciles: reconciles,
      meanMachineReconcileMs: reconciles ? reconcileMs / reconciles : NaN,
      cpuMachines: cpuDelta(cpuStart, cpuEnd),
      apiRequests,
      eventsByReason: events.reduce<Record<string, number>>((by, e) => {
        const key = `${e.involvedObject?.kind ?? "?"} ${e.reason ?? "?"}`;
        by[key] = (by[key] ?? 0) + (e.count ?? 1);
        return by;
      }, {}),
      cpuBootService: bootCpu,
      hostErrors: records.filter(r => r.errorSeen).map(r => `${r.name}: ${r.errorSeen}`),
      notProvisioned: machineList
        .filter(m => m.provisionedAt === undefined)
        .slice(0, 20)
        .map(
          m =>
            `${m.name} (${m.mode}) phase ${m.phase ?? "-"}, host ${m.host ?? "-"}: ` +
            (m.conditions ?? [])
              .filter(c => c.status !== "True")
              .map(c => `${c.type}=${c.status} ${c.reason ?? ""} ${c.message ?? ""}`.trim())
              .join("; "),
        ),
    };
    if (opts.json) await writeFile(opts.json, JSON.stringify(result, null, 2));
    process.stdout.write(report(result));
  } finally {
    await guard.cleanup();
  }
}

function report(x: BenchResult): string {
  const table = (title: string, rows: Row[], unit = "", digits = 2) =>
    [
      `| ${title} | n | min | median | p99 | max |`,
      "| --- | --- | --- | --- | --- | --- |",
      ...rows.map(
        r =>
          `| ${r.group} | ${r.n} | ${fmt(r.min, digits)}${unit} | ${fmt(r.median, digits)}${unit} | ${fmt(r.p99, digits)}${unit} | ${fmt(r.max, digits)}${unit} |`,
      ),
    ].join("\n");
  const c = x.cpuMachines;
  const d = x.doubleClaims;
  const lines = [
    "",
    `### ${x.machines} machines, ${x.hosts} hosts`,
    "",
    "```",
    x.command,
    "```",
    "",
    `${x.date}; commit ${x.commit}; ${x.machine}; operator env: ${x.operatorEnv.join(" ") || "defaults"}; ` +
      `OS families ${x.osFamilies.join(", ")}; ` +
      `load average at start ${x.load.start}, when the machines were created ${x.load.machinesCreated}, at the end ${x.load.end}`,
    "",
    "| metric | value |",
    "| --- | --- |",
    `| hosts registered to all Available | ${fmt(x.allAvailableSeconds)} s |`,
    `| machines provisioned | ${x.provisioned}/${x.machines}${x.timedOut === "timeout" ? " (timed out)" : x.timedOut ? " (stopped: no progress)" : ""} |`,
    `| hosts claimed | ${x.claimedHosts} |`,
    `| **double claims** (consumerRef history / hostRef / HostClaimed events) | **${d.byConsumerHistory} / ${d.byHostRef} / ${d.byEvents}** |`,
    `| HostClaimed events | ${x.hostClaimedEvents} |`,
    `| creating the Beskar7Machines (concurrent creates) | ${fmt(x.machinesCreateSeconds)} s |`,
    `| **machines created to all provisioned** | **${fmt(x.allProvisionedSeconds)} s** |`,
    `| module RSS before registration | ${fmt(x.moduleRssMiB.beforeRegistration, 0)} MiB |`,
    `| **module RSS, every host Available, no machine** | **${fmt(x.moduleRssMiB.allAvailable, 0)} MiB** |`,
    ...(x.machines
      ? [
          `| **module RSS, every machine provisioned and quiet** | **${fmt(x.moduleRssMiB.end, 0)} MiB** |`,
        ]
      : []),
    `| module peak RSS (VmHWM) | ${fmt(x.moduleRssMiB.peak, 0)} MiB |`,
    `| machine reconciles / mean duration | ${x.machineReconciles} / ${fmt(x.meanMachineReconcileMs, 0)} ms |`,
    `| watch events seen in ${fmt(x.waitSeconds, 0)} s from creation: Beskar7Machine / PhysicalHost | ${x.watchEvents.machines} / ${x.watchEvents.hosts} |`,
    `| CPU s from the machines' creation to all provisioned (wall ${fmt(c.wall)} s): module / apiserver / etcd / boot service / bench+BMCs+OS | ${fmt(c.module)} / ${fmt(c.apiserver)} / ${fmt(c.etcd)} / ${fmt(x.cpuBootService)} / ${fmt(c.bench)} |`,
    `| machine CPU busy meanwhile | ${fmt((100 * c.machineBusy) / c.machineTotal, 0)}% of ${fmt(c.machineTotal)} core-s (others: ${fmt(c.machineBusy - c.module - c.apiserver - c.etcd - x.cpuBootService - c.bench)} s) |`,
    "",
    ...(x.machines
      ? [
          table(
            "seconds",
            [x.createdToClaimSeconds, x.claimToFirstRequestSeconds, x.claimToFirstActionSeconds],
            " s",
          ),
          "",
          table("created to provisioned, by mode", x.createdToProvisionedSeconds, " s"),
          "",
          table(
            "created to provisioned, by delivery",
            x.createdToProvisionedByDeliverySeconds,
            " s",
          ),
          "",
          table("created to power-on (controller), by mode", x.createdToPowerOnSeconds, " s"),
          "",
          table("simulated OS, power-on to its signal, by mode", x.osSeconds, " s"),
          "",
          table("power-on to provisioned, by mode", x.powerOnToProvisionedSeconds, " s"),
          "",
          table("simulated OS's HTTP requests, by mode", x.osRequestsPerProvisioning, "", 0),
          "",
          apiRequestTable(x.apiRequests, x.machines),
          "",
          `Events in the namespace at the end (kind reason: count): ${Object.entries(
            x.eventsByReason,
          )
            .sort((a, b) => b[1] - a[1])
            .map(([k, n]) => `${k}: ${n}`)
            .join("; ")}`,
          "",
          `What the OS booted, by mode: ${Object.entries(x.osPaths)
            .map(([mode, paths]) => `${mode} ${JSON.stringify(paths)}`)
            .join("; ")}`,
          "",
          table("BMC requests per provisioning, by capture", x.requestsPerProvisioning, "", 0),
          "",
          table("BMC requests per provisioning, by mode", x.requestsPerProvisioningByMode, "", 0),
          "",
        ]
      : []),
    ...(x.osErrors.length
      ? ["Simulated OS errors (first 20):", ...x.osErrors.slice(0, 20).map(e => `- ${e}`), ""]
      : []),
    ...(x.configNotBootstrapData.length
      ? [
          `**Configuration read was not the bootstrap data**: ${x.configNotBootstrapData.join(", ")}`,
          "",
        ]
      : []),
    ...(x.hostErrors.length
      ? ["Hosts that went through Error:", ...x.hostErrors.slice(0, 20).map(e => `- ${e}`), ""]
      : []),
    ...(x.notProvisioned.length
      ? ["Machines not provisioned (first 20):", ...x.notProvisioned.map(e => `- ${e}`), ""]
      : []),
  ];
  return `${lines.join("\n")}\n`;
}

main().then(
  () => process.exit(0),
  err => {
    // The fluent client rejects with plain objects ({ status, statusText, data }).
    say(err instanceof Error ? (err.stack ?? err.message) : JSON.stringify(err));
    process.exit(1);
  },
);
