// `npm start -- --vm`: one host of the lab is a real virtual machine, so a newcomer sees a real
// boot. A QEMU machine (TCG, OVMF: lab/vm/qemu.ts) behind a Redfish BMC (startVmBmc), registered
// as a PhysicalHost labelled VM_LABEL, which an extra MachineDeployment of the example cluster
// (one worker, RemoteConfig talos) selects. The operator inserts the boot service's patched copy
// of the test installer ISO (lab/vm/installer) that lab/image-server.ts serves; the VM
// boots it, finds talos.config=<the boot service's URL for this host> on its command line and
// fetches the Machine's bootstrap data from the boot service, which moves the host to Provisioned.
//
// The guest's network is QEMU's user network with restrict=on and one forward: 10.0.2.100:80 to
// the boot service on 127.0.0.1. The image server needs none: the BMC (QEMU's curl driver) and the
// boot service read the ISO on the host. The installer ISO carries beskar7.hold, so the VM stays
// up after its fetch as an installed OS would, until the Machine is deleted or the lab stops.
import { mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";

import { bufferSource, patchIso } from "../../boot/patched-iso";
import { missingVmPackages } from "../../lab/controlplane/debian";
import { imageServer } from "../../lab/image-server";
import { startVmBmc, type VmBmc } from "../../lab/vm/bmc";
import { ensureInstaller, type Installer } from "../../lab/vm/installer/build";
import type { GuestForward } from "../../lab/vm/qemu";

/** metadata.name of the VM's PhysicalHost. */
export const VM_HOST = "vm-0001";
/** Label on the VM's PhysicalHost; the VM MachineDeployment's template selects it. */
export const VM_LABEL = "beskar7.infrastructure.cluster.x-k8s.io/lab-vm";
/** The MachineDeployment (and its Beskar7MachineTemplate) of the one VM worker. */
export const VM_DEPLOYMENT = "lab-vm";
/** How long the installer stays up after its fetch: the lab's VM behaves as a running OS. */
const HOLD_SECONDS = 24 * 3600;

/**
 * What --vm needs before anything starts: Debian's VM packages (named, with the command that
 * installs them) and the test installer (built from them, or taken from the cache).
 */
export async function vmPrerequisites(log: (line: string) => void): Promise<Installer> {
  const missing = missingVmPackages();
  if (missing.length > 0) {
    throw new Error(
      `--vm needs Debian's ${missing.join(" ")} (not installed): run npm run test:prepare as root, ` +
        `or apt-get install -y --no-install-recommends ${missing.join(" ")}`,
    );
  }
  return ensureInstaller(log);
}

export interface LabVm {
  bmc: VmBmc;
  /** The serial console's log file. */
  consoleLog: string;
  /** The installer ISO (with beskar7.hold) as the BMC and the boot service read it. */
  imageURL: string;
  /** Stops the VM (QMP quit), its BMC and the image server; the console log is kept. */
  stop(): Promise<void>;
}

/**
 * Starts the VM's BMC (powered off) and the image server. `dir`: the lab's state folder (the VM's
 * console log, NVRAM and QMP socket go to dir/vm/<host>, emptied first). `bootService`: the port
 * the boot service listens on (127.0.0.1), which the guest reaches as http://10.0.2.100.
 * `say`: the lab's log; it gets the console's BESKAR7- lines and the VM's power-ons and stops.
 */
export async function startLabVm(options: {
  dir: string;
  installer: Installer;
  bootService: GuestForward;
  say: (line: string) => void;
}): Promise<LabVm> {
  const workDir = join(options.dir, "vm", VM_HOST);
  await rm(workDir, { recursive: true, force: true });
  await mkdir(workDir, { recursive: true });
  const held = await patchIso(bufferSource(await readFile(options.installer.iso)), {
    kernelArguments: [`beskar7.hold=${HOLD_SECONDS}`],
    name: "installer.iso",
  });
  // The installer is small (17 MB): served from memory.
  const images = await imageServer({ "/installer.iso": await held.image.read(0, held.image.size) });
  const bmc = await startVmBmc({
    forwards: [options.bootService],
    // The hold is the lab's limit; this only catches a machine that outlives it.
    timeoutMs: (HOLD_SECONDS + 600) * 1000,
    workDir,
    bmc: { tls: "shared" },
  });
  const watcher = watchConsole(bmc, options.say);
  return {
    bmc,
    consoleLog: join(workDir, "console.log"),
    imageURL: `${images.url}/installer.iso`,
    async stop() {
      clearInterval(watcher);
      await bmc.stop();
      images.close();
    },
  };
}

/**
 * Tells the lab's log what the VM does: each power-on and stop, and the installer's BESKAR7- lines
 * (tokens in them are already redacted by the installer), with the seconds since power-on.
 */
function watchConsole(vm: VmBmc, say: (line: string) => void): NodeJS.Timeout {
  let printed = 0;
  let runs = 0;
  let ended = 0;
  return setInterval(() => {
    const machine = vm.machine;
    const { lines } = machine.console;
    for (; runs < machine.runs.length; runs++) {
      const { config } = machine.runs[runs]!;
      say(`vm: ${VM_HOST} powered on (boot device: ${config.boot}, media: ${config.media.length})`);
    }
    const since = () => (((Date.now() - (machine.lastRun?.startedAt ?? 0)) / 1000) | 0) + " s";
    for (; printed < lines.length; printed++) {
      const line = lines[printed]!;
      if (line.startsWith("BESKAR7-") || line.startsWith("[beskar7:")) {
        say(`vm: ${line} (${since()} after power-on)`);
      }
    }
    for (; ended < machine.runs.length && machine.runs[ended]!.ending; ended++) {
      const run = machine.runs[ended]!;
      const seconds = Math.round((run.endedAt! - run.startedAt) / 1000);
      say(`vm: ${VM_HOST} stopped (${run.ending}) after ${seconds} s`);
    }
  }, 1000);
}

/**
 * The VM worker of the example cluster: a MachineDeployment of one Machine whose
 * Beskar7MachineTemplate selects the VM's host and boots the installer as Talos would
 * (RemoteConfig: the configuration URL is on the kernel line, so the VM fetches the Machine's
 * bootstrap data itself). Its kubeadm configuration is the example's worker template, lab-md-0.
 */
export function vmWorkerObjects(cluster: string, imageURL: string): object[] {
  const labels = {
    "cluster.x-k8s.io/cluster-name": cluster,
    "cluster.x-k8s.io/deployment-name": VM_DEPLOYMENT,
  };
  return [
    {
      apiVersion: "infrastructure.cluster.x-k8s.io/v1beta1",
      kind: "Beskar7MachineTemplate",
      metadata: { name: VM_DEPLOYMENT },
      spec: {
        template: {
          spec: {
            provisioningMode: "RemoteConfig",
            osFamily: "talos",
            imageURL,
            bootMode: "UEFI",
            hostSelector: { matchLabels: { [VM_LABEL]: "true" } },
          },
        },
      },
    },
    {
      apiVersion: "cluster.x-k8s.io/v1beta2",
      kind: "MachineDeployment",
      metadata: {
        name: VM_DEPLOYMENT,
        // As the example's lab-md-0: no control-plane provider, so no MachineSet preflight.
        annotations: { "machineset.cluster.x-k8s.io/skip-preflight-checks": "All" },
      },
      spec: {
        clusterName: cluster,
        replicas: 1,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            clusterName: cluster,
            version: "v1.34.1",
            bootstrap: {
              configRef: {
                apiGroup: "bootstrap.cluster.x-k8s.io",
                kind: "KubeadmConfigTemplate",
                name: "lab-md-0",
              },
            },
            infrastructureRef: {
              apiGroup: "infrastructure.cluster.x-k8s.io",
              kind: "Beskar7MachineTemplate",
              name: VM_DEPLOYMENT,
            },
          },
        },
      },
    },
  ];
}
