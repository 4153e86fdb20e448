// Hardening suite, the API server restarted: on a control plane of its own (restarting the suite's
// would disturb other test files), kube-apiserver is killed and started again with the same
// command line (etcd keeps the data) once right after hosts are registered (mid-enrollment) and
// once when the first provisioning step is recorded (mid-provisioning); every watch drops with it.
// The final states of those hosts must equal those of identical hosts (same capture, same BMC
// setup) enrolled and provisioned beforehand on the same control plane with no fault, and each
// BMC must have seen the same actions.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import type { HostProvisioning, PhysicalHost } from "../../../capabilities/api";
import { type ControlPlane, startControlPlane } from "../../../lab/controlplane/controlplane";
import { installCapiCrds } from "../../../scripts/lib/bench-harness";
import { claimHost } from "../physical-host/support";
import { createNamespace, eventually } from "../support/kube";
import { startOperator, type Operator } from "../support/operator";
import {
  canarySummary,
  eachLimited,
  type Fleet,
  listHosts,
  OPERATOR_ENV,
  registerFleet,
  searchCanary,
  sleep,
  startFleet,
  waitHosts,
  withOperatorLog,
} from "./support";

const PER_GROUP = 6;
const DOWN_MS = 3000;
const PROVISIONING: HostProvisioning = {
  mode: "VirtualMedia",
  bootISO: "http://images.hardening.invalid/restart.iso",
};

/** kube-apiserver restarted with its own command line; returns the new process. */
async function restartApiServer(plane: ControlPlane, current: number): Promise<ChildProcess> {
  const argv = readFileSync(`/proc/${current}/cmdline`, "utf8").split("\0").filter(Boolean);
  // Killed outright (a crash or an OOM kill; a graceful stop drains watches for up to a minute).
  process.kill(current, "SIGKILL");
  await eventually(
    async () => {
      try {
        // Gone, or a zombie its parent has not reaped yet.
        return / Z /.test(readFileSync(`/proc/${current}/stat`, "utf8"));
      } catch {
        return true;
      }
    },
    "kube-apiserver to stop",
    30_000,
    100,
  );
  await sleep(DOWN_MS);
  const fd = openSync(join(plane.dir, "kube-apiserver.log"), "a");
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", fd, fd] });
  closeSync(fd);
  await eventually(
    async () => {
      const r = await kubectlOn(plane, ["get", "--raw", "/readyz"]);
      return r === "ok";
    },
    "kube-apiserver ready again",
    90_000,
    300,
  );
  return child;
}

async function kubectlOn(plane: ControlPlane, args: string[]): Promise<string> {
  const child = spawn(plane.binaries.kubectl, ["--kubeconfig", plane.kubeconfig, ...args]);
  let out = "";
  child.stdout.on("data", d => (out += d));
  await new Promise(r => child.on("close", r));
  return out.trim();
}

/** What a run leaves on a host, without times, UIDs and names. */
function finalState(host: PhysicalHost): unknown {
  const s = host.status ?? {};
  return {
    state: s.state,
    power: s.observedPowerState,
    hardware: s.hardwareDetails,
    steps: s.provisioning?.completedSteps?.map(c => c.step),
    currentStep: s.provisioning?.currentStep,
    error: s.errorReason,
    conditions: s.conditions
      ?.map(c => `${c.type}=${c.status}/${c.reason}`)
      .sort()
      .join(" "),
  };
}

/** The BMC's state-changing actions for one system, in order (sessions are not actions). */
function actionsOf(fleet: Fleet, index: number): string[] {
  const host = fleet.hosts[index]!;
  return host.bmc.actions
    .filter(a => !a.kind.startsWith("session"))
    .filter(a => JSON.stringify(a).includes(`/Systems/${host.systemId}`))
    .map(a =>
      a.kind === "reset" ? `reset ${a.resetType}` : a.kind === "insert" ? "insert" : a.kind,
    );
}

describe("the API server restarted mid-enrollment and mid-provisioning", () => {
  let work: string;
  let plane: ControlPlane;
  let apiserver: ChildProcess | undefined;
  let operator: Operator;
  let reference: Fleet;
  let faulted: Fleet;
  const suiteKubeconfig = process.env.KUBECONFIG;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), "beskar7-hardening-apiserver-"));
    plane = await startControlPlane(join(work, "plane"), { log: () => undefined });
    await installCapiCrds(plane);
    // This file's own client calls (fluent client, helpers) go to the dedicated control plane.
    process.env.KUBECONFIG = plane.kubeconfig;
    reference = await startFleet(PER_GROUP, 2, {}, "ref");
    faulted = await startFleet(PER_GROUP, 2, {}, "restart");
    operator = await startOperator(OPERATOR_ENV, plane.kubeconfig);
  });

  afterAll(async () => {
    await operator?.stop();
    await reference?.stop();
    await faulted?.stop();
    if (apiserver && apiserver.exitCode === null) {
      apiserver.kill("SIGTERM");
      await new Promise(r => apiserver!.once("exit", r));
    }
    await plane?.stop();
    process.env.KUBECONFIG = suiteKubeconfig;
    await rm(work, { recursive: true, force: true });
  });

  it("ends every host as a run without faults does", async () => {
    // The fault-free run.
    const refNs = await createNamespace("hardening-reference");
    await registerFleet(refNs, reference);
    await withOperatorLog(operator, () =>
      waitHosts(refNs, PER_GROUP, h => h.status?.state === "Available", "reference Available"),
    );
    await eachLimited(reference.hosts, 6, h => claimHost(refNs, h.name, PROVISIONING));
    const refHosts = await withOperatorLog(operator, () =>
      waitHosts(refNs, PER_GROUP, h => h.status?.state === "Provisioned", "reference Provisioned"),
    );

    // The same with two restarts.
    const ns = await createNamespace("hardening-restart");
    let pid = plane.pids.kubeApiserver;
    await registerFleet(ns, faulted);
    const enrolling = (await listHosts(ns)).filter(h => h.status?.state !== "Available").length;
    apiserver = await restartApiServer(plane, pid);
    pid = apiserver.pid!;
    await withOperatorLog(operator, () =>
      waitHosts(ns, PER_GROUP, h => h.status?.state === "Available", "Available after a restart"),
    );
    await eachLimited(faulted.hosts, 6, h => claimHost(ns, h.name, PROVISIONING));
    const midway = await eventually(
      async () => {
        const hosts = await listHosts(ns);
        return hosts.some(h => (h.status?.provisioning?.completedSteps?.length ?? 0) > 0) && hosts;
      },
      "a first provisioning step recorded",
      60_000,
      100,
    );
    const provisionedAtRestart = midway.filter(h => h.status?.state === "Provisioned").length;
    apiserver = await restartApiServer(plane, pid);
    const hosts = await withOperatorLog(operator, () =>
      waitHosts(
        ns,
        PER_GROUP,
        h => h.status?.state === "Provisioned",
        "Provisioned after a restart",
        120_000,
      ),
    );
    // A little longer: a late retry would show as a further BMC action.
    await sleep(3000);

    const name = (h: PhysicalHost) => h.metadata!.name!;
    const byIndex = (list: PhysicalHost[], prefix: string) =>
      Array.from(
        { length: PER_GROUP },
        (_, i) => list.find(h => name(h) === `${prefix}-${String(i + 1).padStart(3, "0")}`)!,
      );
    const ref = byIndex(refHosts, "ref");
    const got = byIndex(hosts, "restart");
    const statesEqual = got.filter(
      (h, i) => JSON.stringify(finalState(h)) === JSON.stringify(finalState(ref[i]!)),
    );
    const actionsEqual = got.filter(
      (_, i) => JSON.stringify(actionsOf(faulted, i)) === JSON.stringify(actionsOf(reference, i)),
    );
    const alive = operator.child.exitCode === null;
    console.log(
      `apiserver: 2 restarts (${DOWN_MS / 1000} s down each; ${enrolling}/${PER_GROUP} hosts not yet Available ` +
        `at the first, ${provisionedAtRestart}/${PER_GROUP} Provisioned at the second), ` +
        `operator alive: ${alive}; final states equal to the fault-free run: ${statesEqual.length}/${PER_GROUP}, ` +
        `BMC action sequences equal: ${actionsEqual.length}/${PER_GROUP}`,
    );
    for (let i = 0; i < PER_GROUP; i++) {
      expect(finalState(got[i]!), name(got[i]!)).toEqual(finalState(ref[i]!));
      expect(actionsOf(faulted, i), name(got[i]!)).toEqual(actionsOf(reference, i));
    }
    expect(alive).toBe(true);

    const report = await searchCanary([refNs, ns], operator);
    console.log(`apiserver ${canarySummary(report)}`);
    expect(report.hits).toEqual([]);
  }, 400_000);
});
