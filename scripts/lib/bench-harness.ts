// What the benchmarks (scripts/bench-physicalhost.ts, scripts/bench-machines.ts) share: process
// accounting from /proc (CPU seconds, RSS and its peak, open fds), the real operator started as
// `npm run operator:local` starts it, its Prometheus metrics, simulated BMCs, a watch that restarts
// itself, statistics, and a run guard that always cleans up (signals, a hard time budget).
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, readdirSync, readFileSync, type WriteStream } from "node:fs";
import { request, type RequestOptions } from "node:https";
import { cpus, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";

import { Watch, type KubeConfig } from "@kubernetes/client-node";

import { TestBmc, type TestBmcOptions } from "../../lab/bmc/server";
import { capiCrdPaths } from "../../lab/controlplane/capi-crds";
import type { ControlPlane } from "../../lab/controlplane/controlplane";

export const ROOT = resolve(__dirname, "..", "..");
export const say = (line: string) => process.stderr.write(`[bench] ${line}\n`);
export const sleep = (ms: number) => new Promise<void>(r => setTimeout(r, ms));
export const MiB = 1024 * 1024;

export const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");
/** A capture's name without the common prefix, for tables. */
export const short = (mockup: string) => mockup.replace(/^nvidia-libredfish_/, "");

// -------------------------------------------------------------------------------- statistics

export function stats(values: number[]): {
  min: number;
  median: number;
  max: number;
  mean: number;
} {
  if (values.length === 0) return { min: NaN, median: NaN, max: NaN, mean: NaN };
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return {
    min: s[0]!,
    median: s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2,
    max: s[s.length - 1]!,
    mean: s.reduce((a, b) => a + b, 0) / s.length,
  };
}

/** Nearest-rank percentile: the value at rank floor(p% of n) (p99 of 100 values is their maximum). */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

// ------------------------------------------------------------------------- process accounting

const TICK = 100; // USER_HZ on Linux

/** CPU seconds (user + system) of a process, or NaN when it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / TICK;
  } catch {
    return Number.NaN;
  }
}

/** CPU seconds of a process and all its descendants (a tsx wrapper and the node it runs). */
export function treeCpuSeconds(pid: number): number {
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    // gone, or a kernel without the children file: the process alone
  }
  return children.reduce((sum, child) => sum + treeCpuSeconds(child), cpuSeconds(pid));
}

/** process.memoryUsage() in MiB, one line. */
export function memoryLine(usage: Record<string, number>): string {
  return Object.entries(usage)
    .map(([k, v]) => `${k} ${fmt(v / MiB, 0)}`)
    .join(", ");
}

/** VmRSS and VmHWM (peak) of a process in bytes. */
export function memory(pid: number): { rss: number; peak: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1]);
    return { rss: kb("VmRSS") * 1024, peak: kb("VmHWM") * 1024 };
  } catch {
    return { rss: Number.NaN, peak: Number.NaN };
  }
}

/** Open file descriptors (sockets included) of a process. */
export function openFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return Number.NaN;
  }
}

/** Busy and total CPU seconds of the whole machine (all cores). */
export function machineCpu(): { busy: number; total: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: (total - idle) / TICK, total: total / TICK };
}

export interface CpuSnapshot {
  at: number;
  module: number;
  apiserver: number;
  etcd: number;
  bench: number;
  machine: { busy: number; total: number };
}

export interface CpuDelta {
  wall: number;
  module: number;
  apiserver: number;
  etcd: number;
  bench: number;
  machineBusy: number;
  machineTotal: number;
}

/** CPU seconds so far of the module, the API server, etcd, this process and the machine. */
export function cpuSnapshot(pids: {
  module: number;
  apiserver: number;
  etcd: number;
}): CpuSnapshot {
  const self = process.cpuUsage();
  return {
    at: performance.now(),
    module: cpuSeconds(pids.module),
    apiserver: cpuSeconds(pids.apiserver),
    etcd: cpuSeconds(pids.etcd),
    bench: (self.user + self.system) / 1e6,
    machine: machineCpu(),
  };
}

export function cpuDelta(a: CpuSnapshot, b: CpuSnapshot): CpuDelta {
  return {
    wall: (b.at - a.at) / 1000,
    module: b.module - a.module,
    apiserver: b.apiserver - a.apiserver,
    etcd: b.etcd - a.etcd,
    bench: b.bench - a.bench,
    machineBusy: b.machine.busy - a.machine.busy,
    machineTotal: b.machine.total - a.machine.total,
  };
}

/** The machine's 1-, 5- and 15-minute load averages, as uptime prints them. */
export function loadAverage(): string {
  try {
    return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(", ");
  } catch {
    return "unknown";
  }
}

// ------------------------------------------------------------------------ run description

/** HEAD's short hash, marked when tracked files have changes. */
export function gitCommit(): string {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT });
    const dirty = execFileSync("git", ["status", "--porcelain", "--untracked-files=no"], {
      cwd: ROOT,
    });
    return `${head.toString().trim()}${dirty.length ? " (work tree has changes)" : ""}`;
  } catch {
    return "unknown";
  }
}

export function machineDescription(): string {
  return `${cpus().length} cores (${cpus()[0]?.model ?? "?"}), ${fmt(totalmem() / 1024 ** 3)} GiB`;
}

/** The operator settings of this run (BESKAR7_* from the environment). */
export function operatorEnv(): string[] {
  return Object.entries(process.env)
    .filter(([k]) => k.startsWith("BESKAR7_") && k !== "BESKAR7_SKIP_BUILD")
    .map(([k, v]) => `${k}=${v}`);
}

// ---------------------------------------------------------------------------------- run guard

export interface RunGuard {
  /** Registers a cleanup step; they run in reverse order. */
  add(fn: () => Promise<void>): void;
  /** Runs every cleanup step once (later calls get the same promise). */
  cleanup(): Promise<void>;
}

/**
 * Cleanups run on SIGINT/SIGTERM and when the whole run exceeds `budgetMs`, whatever hangs, and
 * then the process exits.
 */
export function runGuard(budgetMs: number): RunGuard {
  const steps: Array<() => Promise<void>> = [];
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    (cleaning ??= (async () => {
      for (const fn of steps.reverse()) {
        await fn().catch(err => say(`cleanup: ${err instanceof Error ? err.message : err}`));
      }
    })());
  const abort = (why: string, code: number) => {
    say(`${why}; cleaning up`);
    void cleanup().finally(() => process.exit(code));
  };
  process.on("SIGINT", () => abort("interrupted", 130));
  process.on("SIGTERM", () => abort("terminated", 143));
  setTimeout(
    () => abort(`the run exceeded ${fmt(budgetMs / 60_000, 0)} minutes`, 2),
    budgetMs,
  ).unref();
  return { add: fn => void steps.push(fn), cleanup };
}

// ----------------------------------------------------------------------------- control plane

/**
 * Installs Cluster API's core CRDs (as the test suite does) and waits until Machines and Clusters
 * are served: the module watches both, and Pepr ends the module when a watch cannot start.
 */
export async function installCapiCrds(plane: ControlPlane): Promise<void> {
  const capi = await capiCrdPaths();
  const kubectl = (...args: string[]) =>
    promisify(execFile)(plane.binaries.kubectl, ["--kubeconfig", plane.kubeconfig, ...args], {
      maxBuffer: 16 * 1024 * 1024,
    });
  await kubectl("apply", "--server-side", ...capi.core.flatMap(f => ["-f", f]));
  await kubectl(
    "wait",
    "--for=condition=Established",
    "--timeout=60s",
    "crd/machines.cluster.x-k8s.io",
    "crd/clusters.cluster.x-k8s.io",
  );
}

// ------------------------------------------------------------------------------------- BMCs

/** Starts `count` test BMCs, cycling through `mockups`, 50 at a time; `extra` adds options per
 *  BMC (its index). Register `stopAll` before awaiting, so an interrupt while they start still
 *  stops the ones that did. */
export function startBmcs(
  count: number,
  mockups: string[],
  latencyMs: number,
  extra: (index: number) => Partial<TestBmcOptions> = () => ({}),
): { bmcs: TestBmc[]; ready: Promise<TestBmc[]>; stopAll(): Promise<void> } {
  const bmcs: TestBmc[] = [];
  const ready = (async () => {
    for (let i = 0; i < count; i += 50) {
      const batch = Array.from({ length: Math.min(50, count - i) }, (_, j) =>
        TestBmc.start({
          mockup: mockups[(i + j) % mockups.length]!,
          latencyMs,
          tls: "shared",
          ...extra(i + j),
        }),
      );
      bmcs.push(...(await Promise.all(batch)));
    }
    return bmcs;
  })();
  return {
    bmcs,
    ready,
    stopAll: async () => void (await Promise.all(bmcs.map(b => b.stop()))),
  };
}

// ------------------------------------------------------------------------------- the operator

export interface Operator {
  child: ChildProcess;
  modulePid: number;
  webhookPort: number;
  stop(): Promise<void>;
}

export interface OperatorOptions {
  /** Run `pepr build` first (false: reuse dist/). */
  build: boolean;
  /** Keep the operator's whole output (the module's log) in this file. */
  logFile?: string;
  /** Settings the run makes (e.g. the boot service's URL), over the environment's. */
  env?: Record<string, string>;
}

/** Starts operator:local; onStop receives its stop function at once, so that an interrupt while
 *  it builds or starts still stops it. */
export async function startOperator(
  kubeconfig: string,
  opts: OperatorOptions,
  onStop: (stop: () => Promise<void>) => void,
): Promise<Operator> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env, KUBECONFIG: kubeconfig };
  if (!opts.build) env.BESKAR7_SKIP_BUILD = "1";
  const child = spawn(join(ROOT, "node_modules", ".bin", "tsx"), ["scripts/operator-local.ts"], {
    cwd: ROOT,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logFile: WriteStream | undefined = opts.logFile
    ? createWriteStream(opts.logFile)
    : undefined;
  // The module logs a line per reconcile at info level; keep only warnings and errors, counted.
  let warnings = 0;
  const lastWarnings: string[] = [];
  const onLog = (chunk: Buffer) => {
    logFile?.write(chunk);
    for (const line of chunk.toString().split("\n")) {
      if (line.startsWith("npm warn")) continue;
      if (/"level":(40|50|60)/.test(line) || /\b(warn|error)\b/i.test(line)) {
        warnings++;
        if (lastWarnings.length < 5) lastWarnings.push(line.slice(0, 300));
      }
    }
  };
  child.stdout!.on("data", onLog);
  let stderr = "";
  const ready = new Promise<{ pid: number; port: number }>((ok, fail) => {
    child.stderr!.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      onLog(chunk);
      const m =
        /\[operator:local\] ready: webhooks at https:\/\/127\.0\.0\.1:(\d+).*module pid (\d+)/.exec(
          stderr,
        );
      if (m) ok({ port: Number(m[1]), pid: Number(m[2]) });
    });
    child.once("exit", code =>
      fail(new Error(`the operator exited (${code}) before it was ready:\n${stderr.slice(-2000)}`)),
    );
  });
  const stop = async () => {
    if (warnings)
      say(`operator warnings/errors logged: ${warnings}; first: ${lastWarnings.join("\n  ")}`);
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise(r => child.once("exit", r));
      child.kill("SIGINT");
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      await exited;
      clearTimeout(timer);
    }
    await new Promise<void>(r => (logFile ? logFile.end(r) : r()));
  };
  onStop(stop);
  const { pid, port } = await Promise.race([
    ready,
    sleep(180_000).then(() => Promise.reject(new Error("the operator was not ready in 180 s"))),
  ]);
  return { child, modulePid: pid, webhookPort: port, stop };
}

/** The module's Prometheus text (Pepr serves /metrics on its webhook port), or "" on failure. */
export function scrapeMetrics(port: number): Promise<string> {
  return getText({ host: "127.0.0.1", port, path: "/metrics", rejectUnauthorized: false });
}

/** The body of an HTTPS GET, or "" on any failure or a status other than 200. */
function getText(options: RequestOptions): Promise<string> {
  return new Promise(done => {
    const req = request({ ...options, timeout: 10_000 }, res => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => done(res.statusCode === 200 ? body : ""));
    });
    req.on("error", () => done(""));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

export function metricSum(text: string, name: string, labelFilter = ""): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    // Pepr's collector prefixes every metric with "pepr_".
    const full = line.startsWith(`pepr_${name}`) ? `pepr_${name}` : name;
    if (!line.startsWith(full)) continue;
    const rest = line.slice(full.length);
    if (!(rest.startsWith("{") || rest.startsWith(" "))) continue;
    if (labelFilter && !rest.includes(labelFilter)) continue;
    sum += Number(line.trim().split(/\s+/).pop());
  }
  return sum;
}

/** Prefix of apiServerRequests' keys that hold seconds spent, not a count. */
export const SECONDS = "seconds ";

/**
 * The API server's request counters (`apiserver_request_total`) by "VERB resource[/subresource]",
 * the seconds it spent on them (`apiserver_request_duration_seconds_sum`, as "seconds VERB …"),
 * and its admission webhook calls (`apiserver_admission_webhook_admission_duration_seconds`) as
 * "admission <type> <operation>", summed over codes, groups and webhooks; {} when unreadable.
 * Two snapshots' difference (requestDelta) is what a span of a run cost the API server.
 */
export async function apiServerRequests(kc: KubeConfig): Promise<Record<string, number>> {
  const server = kc.getCurrentCluster()?.server;
  if (!server) return {};
  const options: RequestOptions = {};
  await kc.applyToHTTPSOptions(options);
  const url = new URL("/metrics", server);
  const text = await getText({
    ...options,
    host: url.hostname,
    port: url.port,
    path: url.pathname,
  });
  const counts: Record<string, number> = {};
  const label = (labels: string, name: string) =>
    new RegExp(`(?:^|,)${name}="([^"]*)"`).exec(labels)?.[1] ?? "";
  for (const line of text.split("\n")) {
    const m =
      /^(apiserver_request_total|apiserver_request_duration_seconds_sum|apiserver_admission_webhook_admission_duration_seconds_count)\{(.*)\} (\S+)$/.exec(
        line,
      );
    if (!m) continue;
    const [, metric, labels, value] = m as unknown as [string, string, string, string];
    const request = `${label(labels, "verb")} ${label(labels, "resource")}${label(labels, "subresource") ? `/${label(labels, "subresource")}` : ""}`;
    const key =
      metric === "apiserver_request_total"
        ? request
        : metric === "apiserver_request_duration_seconds_sum"
          ? `${SECONDS}${request}`
          : `admission ${label(labels, "type")} ${label(labels, "operation")}`;
    counts[key] = (counts[key] ?? 0) + Number(value);
  }
  return counts;
}

/** `after` minus `before`, the keys that moved only. */
export function requestDelta(
  before: Record<string, number>,
  after: Record<string, number>,
): Record<string, number> {
  const delta: Record<string, number> = {};
  for (const [key, value] of Object.entries(after)) {
    const d = value - (before[key] ?? 0);
    if (d > 0) delta[key] = d;
  }
  return delta;
}

// -------------------------------------------------------------------------------------- watch

/**
 * Watches a collection path (e.g. /apis/<group>/<version>/namespaces/<ns>/<plural>) and calls
 * `onEvent` for every event; a watch that ends is restarted after 500 ms (its initial list
 * replays every object as ADDED, so handlers must be idempotent).
 */
export function watchPath<T>(
  kc: KubeConfig,
  path: string,
  onEvent: (type: string, obj: T) => void,
): { stop(): void } {
  let controller: AbortController | undefined;
  let stopped = false;
  const begin = async (): Promise<void> => {
    if (stopped) return;
    controller = await new Watch(kc).watch(
      path,
      { allowWatchBookmarks: false },
      (type, obj: T) => onEvent(type, obj),
      err => {
        if (!stopped) {
          if (err) say(`watch of ${path} ended (${String(err)}); restarting`);
          setTimeout(() => void begin().catch(e => say(`watch restart failed: ${e}`)), 500);
        }
      },
    );
  };
  void begin().catch(err => say(`watch of ${path} failed: ${err}`));
  return {
    stop: () => {
      stopped = true;
      controller?.abort();
    },
  };
}
