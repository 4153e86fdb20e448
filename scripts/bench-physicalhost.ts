// Benchmark of the PhysicalHost controller: N PhysicalHosts enrolled by the real operator (the
// built Pepr module, as `npm run operator:local` runs it) against a real etcd + kube-apiserver and
// N simulated BMCs (lab/bmc) that answer every request after a fixed latency.
//
//   npx tsx scripts/bench-physicalhost.ts --hosts 100 [--latency 50] [--mockup NAME | --mixed]
//       [--rest-minutes 5] [--timeout-minutes 15] [--skip-build] [--json FILE] [--cpu-prof DIR]
//       [--heap-snapshot DIR] [--alloc-prof DIR]
//
// It reports:
//   - time from the start of registration (Secrets + PhysicalHosts, 16 at a time, as
//     scripts/lib/register-hosts.ts does) to the last host Available, and the registration alone;
//   - the module process's RSS (/proc/<pid>/status VmRSS) once all are Available and after the
//     rest phase, and its peak (VmHWM);
//   - BMC requests per host to enroll: each BMC's request count at the moment the benchmark's
//     watch first sees its host Available (and again once BMC traffic has been quiet for 5 s, which
//     adds the reconcile the operator's own status write triggers), min/median/max per mockup;
//   - BMC requests per host per hour at rest: counters reset once everything is quiet, then
//     counted for --rest-minutes. Choose a whole multiple of the power-check interval (default 5
//     minutes, the production interval) so every host's periodic check falls into the window the
//     same number of times; the rate is the count scaled to an hour.
//   - CPU seconds spent by each process (module, kube-apiserver, etcd, this process with all the
//     BMCs) and by the whole machine, since the 2 cores are shared by all of them.
//
// Everything listens on 127.0.0.1. The run is bounded (--timeout-minutes for enrollment, plus the
// rest phase) and always cleans up: the operator gets SIGINT (it removes its webhooks and stops
// the module), then the BMCs and the control plane are stopped and the scratch directory removed.
// Operator settings come from the environment (BESKAR7_*); leave them unset for the production
// defaults.
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { parseArgs } from "node:util";

import { CustomObjectsApi, KubeConfig } from "@kubernetes/client-node";

import { API_GROUP, API_VERSION, HostState } from "../capabilities/api/constants";
import { listMockups } from "../lab/bmc/mockup-store";
import type { TestBmc } from "../lab/bmc/server";
import { startControlPlane, type ControlPlane } from "../lab/controlplane/controlplane";
import {
  cpuDelta,
  cpuSnapshot,
  fmt,
  gitCommit,
  installCapiCrds,
  machineDescription,
  memory,
  memoryLine,
  metricSum,
  MiB,
  openFds,
  operatorEnv,
  percentile,
  runGuard,
  say,
  scrapeMetrics,
  short,
  sleep,
  startBmcs,
  startOperator,
  stats,
  watchPath,
  type CpuDelta,
  type CpuSnapshot,
} from "./lib/bench-harness";
import {
  remoteHeapSnapshot,
  remoteMemoryUsage,
  startAllocationSampler,
  startProfiler,
  summarise,
  summariseAllocations,
  summariseHeap,
  type Profiler,
} from "./lib/bench-profile";
import { hostName, registerHosts } from "./lib/register-hosts";

const NAMESPACE = "bench";

interface Options {
  hosts: number;
  latencyMs: number;
  mockups: string[];
  restMinutes: number;
  timeoutMinutes: number;
  build: boolean;
  json?: string;
  cpuProf?: string;
  heapSnapshot?: string;
  allocProf?: string;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      hosts: { type: "string", default: "100" },
      latency: { type: "string", default: "50" },
      mockup: { type: "string" },
      mixed: { type: "boolean", default: false },
      "rest-minutes": { type: "string", default: "5" },
      "timeout-minutes": { type: "string", default: "15" },
      "skip-build": { type: "boolean", default: false },
      json: { type: "string" },
      "cpu-prof": { type: "string" },
      "heap-snapshot": { type: "string" },
      "alloc-prof": { type: "string" },
    },
  });
  const num = (name: string, raw: string, min: number, max: number) => {
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min || n > max)
      throw new Error(`--${name} must be ${min}..${max}`);
    return n;
  };
  const all = listMockups();
  let mockups = all;
  if (values.mockup && values.mixed) throw new Error("--mockup and --mixed exclude each other");
  if (values.mockup) {
    const key = values.mockup.toLowerCase();
    mockups = all.filter(m => m === values.mockup || m.toLowerCase().includes(key));
    if (mockups.length !== 1) {
      throw new Error(`--mockup ${values.mockup} matches ${mockups.length} of: ${all.join(", ")}`);
    }
  }
  return {
    hosts: Math.round(num("hosts", values.hosts!, 1, 5000)),
    latencyMs: num("latency", values.latency!, 0, 10_000),
    mockups,
    restMinutes: num("rest-minutes", values["rest-minutes"]!, 0, 120),
    timeoutMinutes: num("timeout-minutes", values["timeout-minutes"]!, 1, 120),
    build: !values["skip-build"],
    json: values.json,
    cpuProf: values["cpu-prof"] ? resolve(values["cpu-prof"]) : undefined,
    heapSnapshot: values["heap-snapshot"] ? resolve(values["heap-snapshot"]) : undefined,
    allocProf: values["alloc-prof"] ? resolve(values["alloc-prof"]) : undefined,
  };
}

// ---------------------------------------------------------------------------- host tracking

interface HostRecord {
  name: string;
  bmc: TestBmc;
  mockup: string;
  addedAt?: number;
  availableAt?: number;
  /** The BMC's request count when the watch first saw the host Available. */
  requestsAtAvailable?: number;
  requestsWhenQuiet?: number;
  restRequests?: number;
  state?: string;
  errorSeen?: string;
  /** Seen Available by a LIST, not by the watch (its time is late by up to 5 s). */
  missedByWatch?: boolean;
}

interface ObservedHost {
  metadata?: { name?: string };
  status?: Record<string, unknown>;
}

/** Records what one event (or list item) says about a host: first seen, first Available, Error. */
function observe(hosts: Map<string, HostRecord>, obj: ObservedHost, viaList = false): void {
  const record = hosts.get(obj.metadata?.name ?? "");
  if (!record) return;
  const now = performance.now();
  record.addedAt ??= now;
  const state = obj.status?.state as string | undefined;
  record.state = state;
  if (state === HostState.Available && record.availableAt === undefined) {
    record.availableAt = now;
    record.requestsAtAvailable = record.bmc.requests.total;
    if (viaList) record.missedByWatch = true;
  }
  if (state === HostState.Error && !record.errorSeen) {
    record.errorSeen = `${obj.status?.errorReason}: ${obj.status?.errorMessage}`;
  }
}

/**
 * A LIST of the hosts, for when the watch has stalled: under this load the watch has been seen
 * to miss a host's events without ending. Hosts first seen Available here are marked, and their
 * times are late by up to the polling interval.
 */
async function listHosts(kc: KubeConfig, hosts: Map<string, HostRecord>): Promise<number> {
  const api = kc.makeApiClient(CustomObjectsApi);
  const list = (await api.listNamespacedCustomObject({
    group: API_GROUP,
    version: API_VERSION,
    namespace: NAMESPACE,
    plural: "physicalhosts",
  })) as { items: ObservedHost[] };
  let missed = 0;
  for (const item of list.items) {
    const record = hosts.get(item.metadata?.name ?? "");
    const before = record?.availableAt;
    observe(hosts, item, true);
    if (record && before === undefined && record.availableAt !== undefined) missed++;
  }
  return missed;
}

function watchHosts(kc: KubeConfig, hosts: Map<string, HostRecord>): { stop(): void } {
  const path = `/apis/${API_GROUP}/${API_VERSION}/namespaces/${NAMESPACE}/physicalhosts`;
  return watchPath<ObservedHost>(kc, path, (_type, obj) => observe(hosts, obj));
}

interface Row {
  group: string;
  n: number;
  min: number;
  median: number;
  max: number;
  mean: number;
}

interface BenchResult {
  command: string;
  date: string;
  commit: string;
  machine: string;
  operatorEnv: string[];
  hosts: number;
  latencyMs: number;
  mockups: string[];
  timedOut: boolean;
  available: number;
  registrationSeconds: number;
  allAvailableSeconds: number;
  firstAvailableSeconds: number;
  availableAtPercentiles: { p50: number; p90: number };
  createdToAvailableSeconds: {
    min: number;
    median: number;
    max: number;
    mean: number;
    p90: number;
  };
  moduleRssMiB: {
    beforeRegistration: number;
    allAvailable: number;
    afterRest: number;
    peak: number;
  };
  moduleFds: { allAvailable: number; afterRest: number };
  requestsToEnroll: Row[];
  requestsUntilQuiet: Row[];
  requestsAfterAvailable: Row[];
  requestsPerHostPerHourAtRest: Row[];
  restMinutes: number;
  restRequestsPerMinute: number[];
  cpuEnrollment: CpuDelta;
  cpuRest: CpuDelta;
  benchEventLoopDelayMs: { p99: number; max: number };
  operatorMetrics: { reconciles: number; meanReconcileMs: number };
  reconcilesAtEnd?: number;
  requestKindsPerMockup: Record<string, Record<string, number>>;
  errors: string[];
  errorCount: number;
  seenOnlyByList: number;
  timeline: Array<{ s: number; available: number; rssMiB: number; fds: number }>;
}

// ------------------------------------------------------------------------------------- main

async function main(): Promise<void> {
  const opts = options();
  const commit = gitCommit();
  // A hard bound on the whole run, whatever hangs: start-up, enrollment, rest phase, reporting.
  const guard = runGuard((opts.timeoutMinutes + opts.restMinutes + 10) * 60_000);
  const cleanups = { push: guard.add };
  const cleanup = guard.cleanup;

  const work = await mkdtemp(join(tmpdir(), "beskar7-bench-"));
  cleanups.push(() => rm(work, { recursive: true, force: true }));
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });

  try {
    say("starting etcd and kube-apiserver");
    const plane: ControlPlane = await startControlPlane(join(work, "plane"), { log: say });
    cleanups.push(() => plane.stop());
    process.env.KUBECONFIG = plane.kubeconfig;
    // The module watches Cluster API's Machines and Clusters: their CRDs must be there.
    await installCapiCrds(plane);

    say(
      `starting ${opts.hosts} BMCs (${opts.mockups.map(short).join(", ")}), ${opts.latencyMs} ms latency`,
    );
    const started = startBmcs(opts.hosts, opts.mockups, opts.latencyMs);
    cleanups.push(started.stopAll);
    const bmcs: TestBmc[] = await started.ready;

    say(`starting the operator${opts.build ? " (pepr build first)" : ""}`);
    const operator = await startOperator(plane.kubeconfig, { build: opts.build }, stop =>
      cleanups.push(stop),
    );
    say(`operator ready: module pid ${operator.modulePid}`);

    const hosts = new Map<string, HostRecord>();
    bmcs.forEach((bmc, i) => {
      const name = hostName(bmc, i);
      hosts.set(name, { name, bmc, mockup: opts.mockups[i % opts.mockups.length]! });
    });
    const kc = new KubeConfig();
    kc.loadFromFile(plane.kubeconfig);
    const watcher = watchHosts(kc, hosts);
    cleanups.push(async () => watcher.stop());
    await sleep(1000); // let the watch establish before the first host exists

    const cpu = (): CpuSnapshot =>
      cpuSnapshot({
        module: operator.modulePid,
        apiserver: plane.pids.kubeApiserver,
        etcd: plane.pids.etcd,
      });
    const rssBefore = memory(operator.modulePid);
    if (opts.heapSnapshot) {
      const usage = await remoteMemoryUsage(operator.modulePid, "pepr-beskar7.js");
      say(`module memory before registration (MiB): ${memoryLine(usage)}`);
    }
    const records = [...hosts.values()];
    const availableCount = () => records.filter(r => r.availableAt !== undefined).length;

    let profiler: Profiler | undefined;
    if (opts.cpuProf) {
      profiler = await startProfiler(operator.modulePid, "pepr-beskar7.js");
      say("profiling the module (inspector on 127.0.0.1:9229)");
    }

    const allocSampler = opts.allocProf
      ? await startAllocationSampler(operator.modulePid, "pepr-beskar7.js")
      : undefined;

    // ---- enrollment
    loopDelay.enable();
    const cpuStart = cpu();
    const t0 = performance.now();
    let registeredAt = NaN;
    const registration = registerHosts(NAMESPACE, bmcs).then(() => {
      registeredAt = performance.now();
      say(`registered ${opts.hosts} hosts in ${fmt((registeredAt - t0) / 1000)} s`);
    });
    let registrationError: unknown;
    registration.catch(error => (registrationError = error));
    const deadline = t0 + opts.timeoutMinutes * 60_000;
    const timeline: Array<{ s: number; available: number; rssMiB: number; fds: number }> = [];
    let lastProgress = 0;
    let lastCount = 0;
    let lastCountChange = performance.now();
    let timedOut = false;
    while (availableCount() < opts.hosts) {
      if (performance.now() > deadline) {
        timedOut = true;
        break;
      }
      // Hosts that were never created cannot become Available: stop instead of waiting.
      if (registrationError) throw registrationError;
      await sleep(250);
      const now = performance.now();
      if (now - lastProgress >= 5000) {
        lastProgress = now;
        const count = availableCount();
        if (count !== lastCount) {
          lastCount = count;
          lastCountChange = now;
        } else if (now - lastCountChange >= 10_000) {
          const missed = await listHosts(kc, hosts).catch(() => 0);
          if (missed > 0) say(`the watch missed ${missed} Available hosts; a LIST found them`);
          lastCountChange = now;
        }
        const byState: Record<string, number> = {};
        for (const r of records) byState[r.state ?? "-"] = (byState[r.state ?? "-"] ?? 0) + 1;
        const rss = memory(operator.modulePid).rss / MiB;
        const fds = openFds(operator.modulePid);
        timeline.push({ s: (now - t0) / 1000, available: availableCount(), rssMiB: rss, fds });
        say(
          `${fmt((now - t0) / 1000, 0)} s: ${availableCount()}/${opts.hosts} Available ` +
            `${JSON.stringify(byState)} module RSS ${fmt(rss, 0)} MiB, ${fds} fds`,
        );
      }
    }
    await registration;
    const tAll = timedOut ? NaN : Math.max(...records.map(r => r.availableAt!));
    const cpuEnroll = cpu();
    const rssAtAvailable = memory(operator.modulePid);
    const fdsAtAvailable = openFds(operator.modulePid);
    const loopP99 = loopDelay.percentile(99) / 1e6;
    const loopMax = loopDelay.max / 1e6;
    loopDelay.disable();
    say(
      timedOut
        ? `timed out after ${opts.timeoutMinutes} min: ${availableCount()}/${opts.hosts} Available`
        : `all ${opts.hosts} Available after ${fmt((tAll - t0) / 1000)} s`,
    );

    // ---- quiet: the operator's own status writes trigger one more reconcile per host
    const totalRequests = () => bmcs.reduce((a, b) => a + b.requests.total, 0);
    let last = totalRequests();
    let stableSince = performance.now();
    const quietDeadline = performance.now() + 120_000;
    while (performance.now() - stableSince < 5000 && performance.now() < quietDeadline) {
      await sleep(500);
      const n = totalRequests();
      if (n !== last) {
        last = n;
        stableSince = performance.now();
      }
    }
    for (const r of records) r.requestsWhenQuiet = r.bmc.requests.total;
    const byMockupSnapshot = new Map<string, Record<string, number>>();
    for (const r of records) {
      if (!byMockupSnapshot.has(r.mockup))
        byMockupSnapshot.set(r.mockup, r.bmc.requests.snapshot());
    }
    const metricsText = await scrapeMetrics(operator.webhookPort);
    const cpuQuiet = cpu();
    if (profiler && opts.cpuProf) {
      const profile = await profiler.stop();
      await mkdir(opts.cpuProf, { recursive: true });
      const base = join(opts.cpuProf, `module-${opts.hosts}-hosts`);
      await writeFile(`${base}.cpuprofile`, JSON.stringify(profile));
      const summary = summarise(profile);
      await writeFile(`${base}.txt`, `${summary}\n`);
      say(`module CPU profile (registration start to quiet) in ${base}.cpuprofile:\n${summary}`);
    }

    if (allocSampler && opts.allocProf) {
      const profile = await allocSampler.stop();
      await mkdir(opts.allocProf, { recursive: true });
      const base = join(opts.allocProf, `module-${opts.hosts}-hosts`);
      await writeFile(`${base}.heapprofile`, JSON.stringify(profile));
      const summary = summariseAllocations(profile);
      await writeFile(`${base}.txt`, `${summary}\n`);
      say(`module allocations (registration start to quiet) in ${base}.heapprofile:\n${summary}`);
    }
    if (opts.heapSnapshot) {
      await mkdir(opts.heapSnapshot, { recursive: true });
      const usage = await remoteMemoryUsage(operator.modulePid, "pepr-beskar7.js");
      say(`module memory when quiet (MiB): ${memoryLine(usage)}`);
      const file = join(opts.heapSnapshot, `module-${opts.hosts}-hosts.heapsnapshot`);
      await remoteHeapSnapshot(operator.modulePid, "pepr-beskar7.js", file);
      const summary = summariseHeap(await readFile(file, "utf8"));
      await writeFile(file.replace(/\.heapsnapshot$/, ".txt"), `${summary}\n`);
      say(`module heap snapshot (after a full GC) in ${file}:\n${summary}`);
    }

    // ---- rest
    let restMs = 0;
    let rssAfterRest = { rss: NaN, peak: NaN };
    let fdsAfterRest = NaN;
    const restBuckets: number[] = [];
    if (opts.restMinutes > 0 && !timedOut) {
      say(`at rest for ${opts.restMinutes} min (counters reset)`);
      for (const b of bmcs) b.requests.reset();
      const restStart = performance.now();
      const restEnd = restStart + opts.restMinutes * 60_000;
      let bucketStart = totalRequests();
      while (performance.now() < restEnd) {
        await sleep(Math.min(60_000, restEnd - performance.now()));
        const n = totalRequests();
        restBuckets.push(n - bucketStart);
        bucketStart = n;
        say(`  rest ${fmt((performance.now() - restStart) / 60_000)} min: ${n} requests so far`);
      }
      restMs = performance.now() - restStart;
      for (const r of records) r.restRequests = r.bmc.requests.total;
      rssAfterRest = memory(operator.modulePid);
      fdsAfterRest = openFds(operator.modulePid);
    }
    const cpuEnd = cpu();
    const metricsEnd = opts.restMinutes > 0 ? await scrapeMetrics(operator.webhookPort) : "";

    // ---- report
    const enrolled = records.filter(r => r.requestsAtAvailable !== undefined);
    const mockupsSeen = [...new Set(records.map(r => r.mockup))];
    const rows = (pick: (r: HostRecord) => number | undefined): Row[] => [
      ...mockupsSeen.map(m => {
        const v = records
          .filter(r => r.mockup === m)
          .map(pick)
          .filter(x => x !== undefined);
        return { group: short(m), n: v.length, ...stats(v as number[]) };
      }),
      ...(mockupsSeen.length > 1
        ? [
            {
              group: "all",
              n: records.map(pick).filter(x => x !== undefined).length,
              ...stats(records.map(pick).filter(x => x !== undefined) as number[]),
            },
          ]
        : []),
    ];
    const enrollRows = rows(r => r.requestsAtAvailable);
    const quietRows = rows(r => r.requestsWhenQuiet);
    const extraRows = rows(r =>
      r.requestsAtAvailable === undefined
        ? undefined
        : r.requestsWhenQuiet! - r.requestsAtAvailable,
    );
    const restHours = restMs / 3_600_000;
    const restRows = restMs
      ? rows(r => (r.restRequests === undefined ? undefined : r.restRequests / restHours))
      : [];
    const latencies = enrolled.map(r => (r.availableAt! - (r.addedAt ?? t0)) / 1000);
    const sinceStart = enrolled.map(r => (r.availableAt! - t0) / 1000);
    const d = cpuDelta;
    const cpuEnrollment = d(cpuStart, cpuEnroll);
    const cpuRest = d(cpuQuiet, cpuEnd);
    const reconciles = metricSum(
      metricsText,
      "beskar7_reconciles_total",
      'controller="physicalhost"',
    );
    const reconcileMs = metricSum(
      metricsText,
      "beskar7_reconcile_duration_ms_total",
      'controller="physicalhost"',
    );
    const errors = records.filter(r => r.errorSeen);

    const result: BenchResult = {
      command: `npx tsx scripts/bench-physicalhost.ts ${process.argv.slice(2).join(" ")}`.trim(),
      date: new Date().toISOString(),
      commit,
      machine: machineDescription(),
      operatorEnv: operatorEnv(),
      hosts: opts.hosts,
      latencyMs: opts.latencyMs,
      mockups: opts.mockups.map(short),
      timedOut,
      available: availableCount(),
      registrationSeconds: (registeredAt - t0) / 1000,
      allAvailableSeconds: (tAll - t0) / 1000,
      firstAvailableSeconds: Math.min(...sinceStart),
      availableAtPercentiles: { p50: percentile(sinceStart, 50), p90: percentile(sinceStart, 90) },
      createdToAvailableSeconds: { ...stats(latencies), p90: percentile(latencies, 90) },
      moduleRssMiB: {
        beforeRegistration: rssBefore.rss / MiB,
        allAvailable: rssAtAvailable.rss / MiB,
        afterRest: rssAfterRest.rss / MiB,
        peak: Math.max(rssAtAvailable.peak, rssAfterRest.peak || 0) / MiB,
      },
      moduleFds: { allAvailable: fdsAtAvailable, afterRest: fdsAfterRest },
      requestsToEnroll: enrollRows,
      requestsUntilQuiet: quietRows,
      requestsAfterAvailable: extraRows,
      requestsPerHostPerHourAtRest: restRows,
      restMinutes: restMs / 60_000,
      restRequestsPerMinute: restBuckets,
      cpuEnrollment,
      cpuRest,
      benchEventLoopDelayMs: { p99: loopP99, max: loopMax },
      operatorMetrics: {
        reconciles,
        meanReconcileMs: reconciles ? reconcileMs / reconciles : NaN,
      },
      reconcilesAtEnd: metricsEnd ? metricSum(metricsEnd, "beskar7_reconciles_total") : undefined,
      requestKindsPerMockup: Object.fromEntries(
        [...byMockupSnapshot].map(([m, snap]) => [short(m), snap]),
      ),
      errors: errors.slice(0, 10).map(r => `${r.name}: ${r.errorSeen}`),
      errorCount: errors.length,
      seenOnlyByList: records.filter(r => r.missedByWatch).length,
      timeline,
    };
    if (opts.json) await writeFile(opts.json, JSON.stringify(result, null, 2));
    process.stdout.write(report(result));
  } finally {
    await cleanup();
  }
}

function report(x: BenchResult): string {
  const table = (title: string, rows: Row[], digits = 0) =>
    [
      `| ${title} | hosts | min | median | max |`,
      "| --- | --- | --- | --- | --- |",
      ...rows.map(
        row =>
          `| ${row.group} | ${row.n} | ${fmt(row.min, digits)} | ${fmt(row.median, digits)} | ${fmt(row.max, digits)} |`,
      ),
    ].join("\n");
  const c = x.cpuEnrollment;
  const cr = x.cpuRest;
  const lines = [
    "",
    `### ${x.hosts} hosts`,
    "",
    "```",
    x.command,
    "```",
    "",
    `${x.date}; commit ${x.commit}; ${x.machine}; operator env: ${x.operatorEnv.join(" ") || "defaults"}`,
    "",
    "| metric | value |",
    "| --- | --- |",
    `| hosts Available | ${x.available}/${x.hosts}${x.timedOut ? " (timed out)" : ""} |`,
    `| registration (Secrets + PhysicalHosts) | ${fmt(x.registrationSeconds)} s |`,
    `| registration start to first Available | ${fmt(x.firstAvailableSeconds)} s |`,
    `| registration start to 50% / 90% Available | ${fmt(x.availableAtPercentiles.p50)} s / ${fmt(x.availableAtPercentiles.p90)} s |`,
    `| **registration start to all Available** | **${fmt(x.allAvailableSeconds)} s** |`,
    `| host created to Available, median / p90 / max | ${fmt(x.createdToAvailableSeconds.median)} / ${fmt(x.createdToAvailableSeconds.p90)} / ${fmt(x.createdToAvailableSeconds.max)} s |`,
    `| module RSS before registration | ${fmt(x.moduleRssMiB.beforeRegistration, 0)} MiB |`,
    `| **module RSS when all Available** | **${fmt(x.moduleRssMiB.allAvailable, 0)} MiB** |`,
    ...(x.restMinutes
      ? [`| module RSS after the rest phase | ${fmt(x.moduleRssMiB.afterRest, 0)} MiB |`]
      : []),
    `| module peak RSS (VmHWM) | ${fmt(x.moduleRssMiB.peak, 0)} MiB |`,
    `| module open fds when all Available${x.restMinutes ? " / after rest" : ""} | ${x.moduleFds.allAvailable}${x.restMinutes ? ` / ${x.moduleFds.afterRest}` : ""} |`,
    `| reconciles until quiet / mean duration | ${x.operatorMetrics.reconciles} / ${fmt(x.operatorMetrics.meanReconcileMs, 0)} ms |`,
    `| hosts that went through Error | ${x.errorCount} |`,
    ...(x.seenOnlyByList
      ? [
          `| hosts the watch missed (seen Available by a LIST, up to 5 s late) | ${x.seenOnlyByList} |`,
        ]
      : []),
    `| CPU s during enrollment (wall ${fmt(c.wall)} s): module / apiserver / etcd / bench+BMCs | ${fmt(c.module)} / ${fmt(c.apiserver)} / ${fmt(c.etcd)} / ${fmt(c.bench)} |`,
    `| machine CPU busy during enrollment | ${fmt((100 * c.machineBusy) / c.machineTotal, 0)}% of ${fmt(c.machineTotal)} core-s (others: ${fmt(c.machineBusy - c.module - c.apiserver - c.etcd - c.bench)} s) |`,
    `| bench process event-loop delay p99 / max | ${fmt(x.benchEventLoopDelayMs.p99, 0)} / ${fmt(x.benchEventLoopDelayMs.max, 0)} ms |`,
    ...(x.restMinutes
      ? [
          `| CPU s at rest (${fmt(cr.wall, 0)} s): module / apiserver / etcd / bench+BMCs | ${fmt(cr.module)} / ${fmt(cr.apiserver)} / ${fmt(cr.etcd)} / ${fmt(cr.bench)} |`,
          `| rest-phase BMC requests per minute | ${x.restRequestsPerMinute.join(", ")} |`,
        ]
      : []),
    "",
    table("BMC requests to enroll (at first Available)", x.requestsToEnroll),
    "",
    table("BMC requests until quiet (+ reconcile of own status write)", x.requestsUntilQuiet),
    "",
    table("BMC requests after first Available, until quiet", x.requestsAfterAvailable),
    "",
    ...(x.requestsPerHostPerHourAtRest.length
      ? [
          table(
            `BMC requests per host per hour at rest (${fmt(x.restMinutes)} min window)`,
            x.requestsPerHostPerHourAtRest,
            1,
          ),
          "",
        ]
      : []),
    ...(x.errors.length ? ["Errors seen:", ...x.errors.map(e => `- ${e}`), ""] : []),
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
