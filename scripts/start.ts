// `npm start`: Beskar7's main job on its embedded default. It starts a real Kubernetes control
// plane (etcd + kube-apiserver), Cluster API v1.14's core and kubeadm bootstrap managers (CRDs and
// webhooks included), simulated BMCs serving the captures of real servers in
// lab/captures/redfish-mockups (Dell, HPE, Lenovo, Supermicro, OpenBMC, DMTF), and the operator
// with its webhooks; registers one PhysicalHost per BMC; then applies the example cluster
// examples/cluster/lab-cluster.yaml (one control-plane Machine, a MachineDeployment of two
// workers) and keeps running so
//   kubectl --kubeconfig .testenv/kubeconfig get clusters,machines,beskar7machines,physicalhosts -A
// shows the hosts enroll, get claimed and provisioned, and the Machines reach Running.
// Ctrl-C stops everything.
//
// The lab has no real servers, so it plays the two parts of the workload cluster that a booted OS
// would: the lab's own API server is the workload cluster (the lab-kubeconfig Secret points Cluster
// API at it), and when a host claimed by the cluster is Provisioned the lab registers a Node for it
// with the host's SMBIOS system UUID, as its kubelet would. Beskar7 then sets the Node's providerID
// and Cluster API links it to the Machine (nodeRef), which makes the Machine Running.
//
// The boot service (boot-service/, docs/boot-service.md) runs beside the operator, on a free
// loopback port over TLS; the operator gets its URL (BESKAR7_BOOT_URL), and its CA is written to
// .testenv/beskar7-boot-ca.crt.
//
// Options: --bmcs N (default: one per mockup; more cycle through them), --latency MS (added to
// every BMC response), --namespace NAME, --no-cluster (hosts only: no Cluster API managers, no
// example cluster; Cluster API's CRDs are still installed, the operator watches them), --vm (one
// more host is a real QEMU virtual machine, which an extra MachineDeployment of the example
// cluster provisions through the boot service, so its boot is real: scripts/lib/lab-vm.ts; the
// boot service then runs on plain HTTP, which the VM's installer fetches its configuration with).
import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdir, readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { parseArgs, promisify } from "node:util";

import { ensureControlPlaneBinaries } from "../lab/controlplane/binaries";
import { listMockups } from "../lab/bmc/mockup-store";
import { TestBmc } from "../lab/bmc/server";
import { capiCrdPaths } from "../lab/controlplane/capi-crds";
import { startCapi, type CapiManagers } from "../lab/controlplane/capi-manager";
import { freePort, startControlPlane, type ControlPlane } from "../lab/controlplane/controlplane";
import { alive } from "../lab/controlplane/process";
import { startBootService, type StartedBootService } from "../boot-service/start";
import { guestUrl } from "../lab/vm/bmc";
import type { GuestForward } from "../lab/vm/qemu";
import {
  startLabVm,
  type LabVm,
  VM_HOST,
  VM_DEPLOYMENT,
  VM_LABEL,
  vmPrerequisites,
  vmWorkerObjects,
} from "./lib/lab-vm";
import { hostName, registerHosts } from "./lib/register-hosts";

const ROOT = resolve(__dirname, "..");
const EXAMPLE_CLUSTER = join(ROOT, "examples", "cluster", "lab-cluster.yaml");
/** metadata.name of the Cluster in EXAMPLE_CLUSTER. */
const CLUSTER = "lab";
/** Label on the Nodes the lab registers for provisioned hosts (value: the PhysicalHost's name). */
const LAB_NODE_LABEL = "beskar7.infrastructure.cluster.x-k8s.io/lab-host";
/** Label on the PhysicalHosts whose BMC has virtual media; the example's machines select it. */
const VMEDIA_LABEL = "beskar7.infrastructure.cluster.x-k8s.io/lab-virtual-media";
/** Annotation the lab puts on a Machine whose Node it registered (see ClusterProgress.nudge). */
const NUDGED = "beskar7.infrastructure.cluster.x-k8s.io/lab-node-registered";
const say = (line: string) => process.stderr.write(`[beskar7] ${line}\n`);
const run = promisify(execFile);
/** Stops what main has started so far; also used when a later step fails. */
let shutdown: ((code: number) => Promise<void>) | undefined;

async function main(): Promise<void> {
  const started = Date.now();
  const { values } = parseArgs({
    options: {
      bmcs: { type: "string" },
      latency: { type: "string", default: "0" },
      namespace: { type: "string", default: "beskar7-demo" },
      "no-cluster": { type: "boolean", default: false },
      vm: { type: "boolean", default: false },
    },
  });
  const mockups = listMockups();
  const count = values.bmcs ? Number(values.bmcs) : mockups.length;
  if (!Number.isInteger(count) || count < 1 || count > 2000)
    throw new Error("--bmcs must be 1..2000");
  const latencyMs = Number(values.latency);
  const namespace = values.namespace!;
  const withCluster = !values["no-cluster"];
  if (withCluster && count < 3) throw new Error("the example cluster needs --bmcs 3 or more");
  if (values.vm && !withCluster)
    throw new Error("--vm boots its VM as a worker of the example cluster: drop --no-cluster");
  // Before anything starts: a missing VM package fails here, naming it.
  const installer = values.vm ? await vmPrerequisites(line => say(`vm: ${line}`)) : undefined;

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
  const kubectlBin = (await ensureControlPlaneBinaries()).kubectl;
  const kubectl = async (args: string[], input?: string): Promise<string> => {
    const child = run(kubectlBin, ["--kubeconfig", kubeconfig, ...args], {
      maxBuffer: 64 * 1024 * 1024,
    });
    if (input !== undefined) child.child.stdin!.end(input);
    return (await child).stdout;
  };

  let stopping = false;
  let capi: CapiManagers | undefined;
  let kubelet: NodeJS.Timeout | undefined;
  const bmcs: TestBmc[] = [];
  let operator: ReturnType<typeof spawn> | undefined;
  let bootService: StartedBootService | undefined;
  let labVm: LabVm | undefined;
  const stop = async (code = 0) => {
    if (stopping) return;
    stopping = true;
    say("stopping");
    clearInterval(kubelet);
    await bootService?.stop();
    if (operator && operator.exitCode === null) {
      const exited = new Promise(r => operator!.once("exit", r));
      operator.kill("SIGINT");
      await exited;
    }
    if (capi && plane) {
      // Our own control plane stops next (Ctrl-C has signalled it already): unregistering the
      // managers' webhooks and conversions would only wait on an API server that is going away.
      for (const pid of [capi.manager.pid, capi.bootstrap.pid]) {
        try {
          process.kill(pid, "SIGTERM");
        } catch {
          // already gone
        }
      }
    } else {
      await capi?.stop().catch(err => say(`stopping Cluster API: ${String(err)}`));
    }
    await Promise.all([...bmcs.map(b => b.stop()), labVm?.stop()]);
    await plane?.stop();
    process.exit(code);
  };
  shutdown = stop;
  process.on("SIGINT", () => void stop());
  process.on("SIGTERM", () => void stop());

  // Cluster API first: the operator's machine and cluster controllers watch its Machines and
  // Clusters, so its CRDs must exist before the operator starts.
  if (withCluster) {
    say("starting Cluster API's core and kubeadm bootstrap managers");
    const capiDir = join(dir, "start-capi");
    await mkdir(capiDir, { recursive: true });
    capi = await startCapi({
      kubeconfig,
      kubectl: kubectlBin,
      dir: capiDir,
      log: line => say(`capi: ${line}`),
    });
    say(`Cluster API logs: ${capi.manager.logFile}, ${capi.bootstrap.logFile}`);
  } else {
    const crds = await capiCrdPaths();
    const files = [...crds.core, ...crds.kubeadmBootstrap].flatMap(file => ["-f", file]);
    await kubectl(["apply", "--server-side", "--force-conflicts", ...files]);
    await kubectl(["wait", "--for=condition=Established", "--timeout=120s", ...files]);
    say("installed Cluster API's CRDs (no managers: --no-cluster)");
  }
  if (stopping) return;

  say(`starting ${count} simulated BMC(s)${latencyMs ? ` with ${latencyMs} ms latency` : ""}`);
  for (let i = 0; i < count; i++) {
    bmcs.push(
      await TestBmc.start({ mockup: mockups[i % mockups.length]!, latencyMs, tls: "shared" }),
    );
  }

  const bootPort = await freePort();
  // With --vm the VM's installer fetches from the service with busybox wget, which has no TLS:
  // the service runs on plain HTTP (the VM's network is isolated, restrict=on) and has two URLs
  // on one listener, as in the VM tests: the operator's and the BMCs' http://127.0.0.1:<port>,
  // and its own, rendered into what the VM boots, http://10.0.2.100, forwarded to that port.
  const bootForward: GuestForward = { guestPort: 80, hostPort: bootPort };
  const bootURL = `${installer ? "http" : "https"}://127.0.0.1:${bootPort}`;
  if (installer) {
    labVm = await startLabVm({ dir, installer, bootService: bootForward, say });
  }
  const op = spawn(join(ROOT, "node_modules", ".bin", "tsx"), ["scripts/operator-local.ts"], {
    cwd: ROOT,
    env: { ...process.env, KUBECONFIG: kubeconfig, BESKAR7_BOOT_URL: bootURL },
    stdio: ["ignore", "inherit", "pipe"],
  });
  operator = op;
  let operatorErr = "";
  const ready = new Promise<void>((ok, fail) => {
    op.stderr!.on("data", (chunk: Buffer) => {
      process.stderr.write(chunk);
      operatorErr += chunk.toString();
      if (operatorErr.includes("[operator:local] ready:")) ok();
    });
    op.once("exit", code => fail(new Error(`the operator exited (${code})`)));
  });

  await ready;
  // After the operator, which registers the pepr-system namespace the service keeps its Secret in.
  bootService = await startBootService(
    installer
      ? {
          kubeconfig,
          url: guestUrl(bootURL, [bootForward]),
          listen: `127.0.0.1:${bootPort}`,
          plainHttp: true,
        }
      : { kubeconfig, url: bootURL },
  );
  say(
    installer
      ? `boot service at ${bootURL} on plain HTTP, for the VM at ${bootService.url} (metrics: ${bootService.metricsURL}/metrics)`
      : `boot service at ${bootService.url} (CA: ${bootService.caFile}, metrics: ${bootService.metricsURL}/metrics)`,
  );
  const names = await registerHosts(
    namespace,
    labVm ? [...bmcs, labVm.bmc.bmc] : bmcs,
    16,
    (bmc, i) => (i < count ? hostName(bmc, i) : VM_HOST),
  );
  say(`registered ${names.length} PhysicalHost(s) in namespace ${namespace}`);

  if (withCluster) {
    // The example boots ISOs over virtual media; not every captured BMC has it (the OpenBMC of
    // the BlueField DPU has none), and a host's capabilities are not a claim criterion, so the
    // example selects the hosts labelled here, as a person labels servers by what they can do.
    const withMedia = names.filter((_, i) => i < count && bmcs[i]!.virtualMedia().length > 0);
    if (withMedia.length < 3)
      throw new Error("the example cluster needs 3 BMCs with virtual media");
    await kubectl([
      "label",
      "physicalhosts",
      "-n",
      namespace,
      ...withMedia,
      `${VMEDIA_LABEL}=true`,
    ]);
    await applyExampleCluster(kubectl, kubeconfig, namespace);
    say(`applied ${EXAMPLE_CLUSTER} (Cluster "${CLUSTER}") in namespace ${namespace}`);
    if (labVm) {
      await kubectl(["label", "physicalhosts", "-n", namespace, VM_HOST, `${VM_LABEL}=true`]);
      const objects = vmWorkerObjects(CLUSTER, labVm.imageURL);
      await kubectl(
        ["apply", "--server-side", "-n", namespace, "-f", "-"],
        JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }),
      );
      say(
        `applied MachineDeployment ${VM_DEPLOYMENT}: one worker on the VM's host ${VM_HOST} (label ${VM_LABEL}=true)`,
      );
    }
    const progress = new ClusterProgress(kubectl, namespace, started);
    let busy = false;
    kubelet = setInterval(() => {
      if (stopping || busy) return;
      busy = true;
      progress
        .tick()
        .catch(err => {
          if (!stopping) say(`lab: ${err instanceof Error ? err.message : String(err)}`);
        })
        .finally(() => (busy = false));
    }, 2000);
    say("Watch the hosts get claimed and provisioned and the Machines reach Running with:");
    say(
      `  ${kubectlBin} --kubeconfig ${kubeconfig} get clusters,machines,beskar7machines,physicalhosts -A`,
    );
  } else {
    say("Watch them with:");
    say(`  ${kubectlBin} --kubeconfig ${kubeconfig} -n ${namespace} get physicalhosts -o wide`);
  }
  if (labVm) {
    say(`The VM (${VM_HOST}) boots once its Machine claims the host; watch it with:`);
    say(`  ${kubectlBin} --kubeconfig ${kubeconfig} -n ${namespace} get physicalhosts -w`);
    say(`  tail -f ${labVm.consoleLog}`);
    say(
      "  (BESKAR7-CMDLINE: the kernel line with talos.config; BESKAR7-CONFIG: the bootstrap data fetched)",
    );
  }
  say("Ctrl-C stops everything.");
}

/** The workload cluster is the lab's own API server: Cluster API and Beskar7 reach it through the
 *  <cluster>-kubeconfig Secret, written before the Cluster so Cluster API never generates one. */
async function applyExampleCluster(
  kubectl: (args: string[], input?: string) => Promise<string>,
  kubeconfig: string,
  namespace: string,
): Promise<void> {
  const secret = {
    apiVersion: "v1",
    kind: "Secret",
    type: "cluster.x-k8s.io/secret",
    metadata: {
      name: `${CLUSTER}-kubeconfig`,
      namespace,
      labels: { "cluster.x-k8s.io/cluster-name": CLUSTER },
    },
    data: { value: (await readFile(kubeconfig)).toString("base64") },
  };
  await kubectl(["apply", "--server-side", "-f", "-"], JSON.stringify(secret));
  await kubectl(["apply", "--server-side", "-n", namespace, "-f", EXAMPLE_CLUSTER]);
}

interface Host {
  metadata: { name: string };
  spec?: { consumerRef?: { name?: string } };
  status?: { state?: string; hardwareDetails?: { systemUUID?: string } };
}
interface Machine {
  metadata: { name: string; annotations?: Record<string, string> };
  spec?: { providerID?: string };
  status?: { phase?: string; nodeRef?: { name?: string } };
}
interface Node {
  metadata: { name: string };
  spec?: { providerID?: string };
}

/** Plays the kubelets of the provisioned hosts (one Node each, removed when the host is
 *  released) and reports the example cluster's progress once a change is seen. */
class ClusterProgress {
  readonly #nodes = new Set<string>();
  #last = "";
  #done = false;

  constructor(
    private readonly kubectl: (args: string[], input?: string) => Promise<string>,
    private readonly namespace: string,
    private readonly started: number,
  ) {}

  async tick(): Promise<void> {
    const hosts = JSON.parse(
      await this.kubectl(["get", "physicalhosts", "-n", this.namespace, "-o", "json"]),
    ) as { items: Host[] };
    for (const host of hosts.items) {
      const name = host.metadata.name;
      const uuid = host.status?.hardwareDetails?.systemUUID;
      const booted = host.status?.state === "Provisioned" && !!host.spec?.consumerRef && !!uuid;
      if (booted && !this.#nodes.has(name)) {
        await this.registerNode(name, uuid!);
        this.#nodes.add(name);
        say(`lab: host ${name} booted; registered Node ${name} (systemUUID ${uuid})`);
      } else if (!booted && this.#nodes.has(name)) {
        await this.kubectl(["delete", "node", name, "--ignore-not-found", "--wait=false"]);
        this.#nodes.delete(name);
        say(`lab: host ${name} released; deleted Node ${name}`);
      }
    }
    const machines = JSON.parse(
      await this.kubectl([
        "get",
        "machines.cluster.x-k8s.io",
        "-n",
        this.namespace,
        "-l",
        `cluster.x-k8s.io/cluster-name=${CLUSTER}`,
        "-o",
        "json",
      ]),
    ) as { items: Machine[] };
    await this.nudge(machines.items);
    const phases = machines.items
      .map(m => `${m.metadata.name}=${m.status?.phase ?? "-"}`)
      .sort()
      .join(" ");
    if (phases !== this.#last) {
      this.#last = phases;
      const seconds = Math.round((Date.now() - this.started) / 1000);
      say(`lab: after ${seconds}s: ${phases || "no machines yet"}`);
      const running = machines.items.filter(m => m.status?.phase === "Running").length;
      if (!this.#done && machines.items.length >= 3 && running === machines.items.length) {
        this.#done = true;
        say(`lab: the example cluster's ${running} Machines are Running (${seconds}s after start)`);
      }
    }
  }

  /**
   * Cluster API watches a workload cluster's Nodes only once its control plane is initialized,
   * and without a control-plane provider that takes the first control-plane Machine's nodeRef:
   * the Node that Beskar7 gives the Machine's providerID goes unnoticed until the Machine's next
   * resync (--sync-period, 10 min). So once such a Node exists, the lab annotates its Machine
   * (once), which makes Cluster API look again.
   */
  private async nudge(machines: Machine[]): Promise<void> {
    const waiting = machines.filter(
      m => m.spec?.providerID && !m.status?.nodeRef?.name && !m.metadata.annotations?.[NUDGED],
    );
    if (!waiting.length) return;
    const nodes = JSON.parse(
      await this.kubectl(["get", "nodes", "-l", LAB_NODE_LABEL, "-o", "json"]),
    ) as { items: Node[] };
    for (const machine of waiting) {
      const node = nodes.items.find(n => n.spec?.providerID === machine.spec!.providerID);
      if (!node) continue;
      await this.kubectl([
        "annotate",
        "machines.cluster.x-k8s.io",
        machine.metadata.name,
        "-n",
        this.namespace,
        `${NUDGED}=${node.metadata.name}`,
      ]);
    }
  }

  /** What a kubelet does on first start: a Node carrying the SMBIOS system UUID, Ready. */
  private async registerNode(name: string, systemUUID: string): Promise<void> {
    const node = {
      apiVersion: "v1",
      kind: "Node",
      metadata: { name, labels: { [LAB_NODE_LABEL]: name, "kubernetes.io/hostname": name } },
    };
    await this.kubectl(["apply", "--server-side", "-f", "-"], JSON.stringify(node));
    const now = new Date().toISOString();
    const status = {
      status: {
        nodeInfo: {
          systemUUID,
          machineID: systemUUID.replace(/-/g, "").toLowerCase(),
          bootID: "",
          kernelVersion: "",
          osImage: "lab (simulated)",
          containerRuntimeVersion: "",
          kubeletVersion: "v1.34.1",
          kubeProxyVersion: "",
          operatingSystem: "linux",
          architecture: "amd64",
        },
        conditions: [
          ...Object.entries({
            MemoryPressure: "KubeletHasSufficientMemory",
            DiskPressure: "KubeletHasNoDiskPressure",
            PIDPressure: "KubeletHasSufficientPID",
          }).map(([type, reason]) => ({
            type,
            status: "False",
            reason,
            message: "simulated by npm start",
            lastHeartbeatTime: now,
            lastTransitionTime: now,
          })),
          {
            type: "Ready",
            status: "True",
            reason: "KubeletReady",
            message: "simulated by npm start",
            lastHeartbeatTime: now,
            lastTransitionTime: now,
          },
        ],
      },
    };
    await this.kubectl([
      "patch",
      "node",
      name,
      "--subresource=status",
      "--type=merge",
      "-p",
      JSON.stringify(status),
    ]);
  }
}

async function testenvRunning(stateFile: string): Promise<boolean> {
  if (!existsSync(stateFile)) return false;
  const { pids } = JSON.parse(await readFile(stateFile, "utf8")) as { pids: number[] };
  return pids.every(alive);
}

main().catch(err => {
  say(err instanceof Error ? err.message : String(err));
  if (shutdown) void shutdown(1);
  else process.exit(1);
});
