// `npm start`: Beskar7's main job on its embedded default. It starts a real Kubernetes control
// plane (etcd + kube-apiserver), simulated BMCs serving the captures of real servers in
// lab/captures/redfish-mockups (Dell, HPE, Lenovo, Supermicro, OpenBMC, DMTF), and the operator
// with its webhooks; registers one PhysicalHost per BMC; and keeps running so
//   kubectl --kubeconfig .testenv/kubeconfig get physicalhosts -o wide
// shows them enroll and reach Available with their inventory. Ctrl-C stops everything.
//
// Options: --bmcs N (default: one per mockup; more cycle through them), --latency MS (added to
// every BMC response), --namespace NAME.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdir, readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

import { ensureControlPlaneBinaries } from "../lab/controlplane/binaries";
import { listMockups } from "../lab/bmc/mockup-store";
import { TestBmc } from "../lab/bmc/server";
import { startControlPlane, type ControlPlane } from "../lab/controlplane/controlplane";
import { alive } from "../lab/controlplane/process";
import { registerHosts } from "./lib/register-hosts";

const ROOT = resolve(__dirname, "..");
const say = (line: string) => process.stderr.write(`[beskar7] ${line}\n`);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      bmcs: { type: "string" },
      latency: { type: "string", default: "0" },
      namespace: { type: "string", default: "beskar7-demo" },
    },
  });
  const mockups = listMockups();
  const count = values.bmcs ? Number(values.bmcs) : mockups.length;
  if (!Number.isInteger(count) || count < 1 || count > 2000)
    throw new Error("--bmcs must be 1..2000");
  const latencyMs = Number(values.latency);
  const namespace = values.namespace!;

  // The control plane `npm run testenv:start` runs, or one of our own for as long as we run.
  const dir = join(ROOT, ".testenv");
  await mkdir(dir, { recursive: true });
  const kubeconfig = join(dir, "kubeconfig");
  let plane: ControlPlane | undefined;
  if (await testenvRunning(join(dir, "state.json"))) {
    say(`using the running test control plane (${kubeconfig})`);
  } else {
    say("starting etcd and kube-apiserver");
    plane = await startControlPlane(join(dir, "start-controlplane"));
    await copyFile(plane.kubeconfig, kubeconfig);
  }
  process.env.KUBECONFIG = kubeconfig;

  say(`starting ${count} simulated BMC(s)${latencyMs ? ` with ${latencyMs} ms latency` : ""}`);
  const bmcs: TestBmc[] = [];
  for (let i = 0; i < count; i++) {
    bmcs.push(
      await TestBmc.start({ mockup: mockups[i % mockups.length]!, latencyMs, tls: "shared" }),
    );
  }

  const operator = spawn(join(ROOT, "node_modules", ".bin", "tsx"), ["scripts/operator-local.ts"], {
    cwd: ROOT,
    env: { ...process.env, KUBECONFIG: kubeconfig },
    stdio: ["ignore", "inherit", "pipe"],
  });
  let operatorErr = "";
  const ready = new Promise<void>((ok, fail) => {
    operator.stderr!.on("data", (chunk: Buffer) => {
      process.stderr.write(chunk);
      operatorErr += chunk.toString();
      if (operatorErr.includes("[operator:local] ready:")) ok();
    });
    operator.once("exit", code => fail(new Error(`the operator exited (${code})`)));
  });

  const stop = async () => {
    say("stopping");
    if (operator.exitCode === null) {
      const exited = new Promise(r => operator.once("exit", r));
      operator.kill("SIGINT");
      await exited;
    }
    await Promise.all(bmcs.map(b => b.stop()));
    await plane?.stop();
    process.exit(0);
  };
  process.on("SIGINT", () => void stop());
  process.on("SIGTERM", () => void stop());

  await ready;
  await registerHosts(namespace, bmcs);
  const kubectl = (await ensureControlPlaneBinaries()).kubectl;
  say(`registered ${count} PhysicalHost(s) in namespace ${namespace}. Watch them with:`);
  say(`  ${kubectl} --kubeconfig ${kubeconfig} -n ${namespace} get physicalhosts -o wide`);
  say("Ctrl-C stops the operator, the BMCs and the control plane.");
}

async function testenvRunning(stateFile: string): Promise<boolean> {
  if (!existsSync(stateFile)) return false;
  const { pids } = JSON.parse(await readFile(stateFile, "utf8")) as { pids: number[] };
  return pids.every(alive);
}

main().catch(err => {
  say(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
