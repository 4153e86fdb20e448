// A test BMC whose system is a real virtual machine: the project's test BMC (lab/bmc/server.ts)
// serves the Redfish API, so the operator and `beskar7 bmc` work against it unchanged, and its
// power and boot actions drive a QEMU machine (qemu.ts) through the BMC's MachineBackend hook.
// The VM boots from the media the client inserted (read by URL, as a BMC does) and the one-time
// boot override's device, and reports the BMC's system UUID in SMBIOS so the boot service can
// look the host up by it.
//
// Why not sushy-tools' libvirt driver (what Metal3's CI uses): libvirtd cannot start its QEMU
// driver on this container-like machine without the users, D-Bus and udev a Debian install
// provides (see docs/vm-tests.md), and the test BMC keeps the vendor behaviours tests rely on.
import { randomUUID } from "node:crypto";

import {
  type MachineBackend,
  type MachineBootEvent,
  TestBmc,
  type TestBmcOptions,
} from "../bmc/server";
import {
  type BootDevice,
  GUEST_SERVICE_ADDRESS,
  type GuestForward,
  type LaunchConfig,
  type MachineMedium,
  QemuMachine,
} from "./qemu";

export interface VmBmcOptions {
  /** Capture served by the BMC (default dmtf_public-rackmount1: a CD slot and a USB slot). */
  mockup?: string;
  /** SMBIOS UUID of the machine, reported by Redfish as well (default: random). */
  uuid?: string;
  /** Services on 127.0.0.1 the guest may reach (at 10.0.2.100 unless said otherwise). */
  forwards?: readonly GuestForward[];
  /**
   * What DHCP offers a network (Pxe) boot as its boot file: a URL on 127.0.0.1, given to the guest
   * through the forwards (an iPXE script, as the lab's DHCP server would point at). A UefiHttp
   * boot uses the HttpBootUri the client set instead.
   */
  networkBootFile?: string;
  /** Hard limit on one power-on (default 180 s). */
  timeoutMs?: number;
  memoryMiB?: number;
  /** Console log, NVRAM and QMP socket; kept after stop (default: a temporary folder, removed). */
  workDir?: string;
  /** Further test BMC options (profile, credentials, TLS). */
  bmc?: Partial<TestBmcOptions>;
}

/** Which of the VM's devices a Redfish boot override target means. */
export function bootDeviceFor(target: string | undefined, virtualCdTarget: string): BootDevice {
  if (target === undefined) return "default";
  if (target === virtualCdTarget || target === "Cd" || target === "UsbCd") return "cd";
  if (target === "Usb") return "usb";
  if (target === "Pxe" || target === "UefiHttp") return "network";
  return "default";
}

/**
 * The VM's launch config for a boot: every inserted medium, the boot medium first of its kind;
 * for a network boot, the boot file DHCP offers (UefiHttp: the HttpBootUri; Pxe: the lab's
 * `networkBootFile`), as the guest reaches it through the forwards.
 */
export function launchConfigFor(
  event: MachineBootEvent,
  options: {
    virtualCdTarget: string;
    networkBootFile?: string;
    forwards?: readonly GuestForward[];
  },
): LaunchConfig {
  const media: MachineMedium[] = event.media.map(m => ({
    url: m.image,
    kind: m.mediaTypes.some(t => t === "USBStick" || t === "Floppy") ? "usb" : "cd",
  }));
  const first = media.findIndex(m => m.url === event.record.media);
  if (first > 0) media.unshift(...media.splice(first, 1));
  const boot = bootDeviceFor(event.record.target, options.virtualCdTarget);
  if (boot !== "network") return { media, boot };
  const file = event.record.target === "UefiHttp" ? event.record.media : options.networkBootFile;
  return file ? { media, boot, bootFile: guestUrl(file, options.forwards ?? []) } : { media, boot };
}

/** The MachineBackend: one QEMU machine per Redfish system, created at its first boot. */
export class VmBackend implements MachineBackend {
  readonly machines = new Map<string, QemuMachine>();
  /** Failures starting or resetting a machine (a test asserts there are none). */
  readonly errors: string[] = [];
  virtualCdTarget = "Cd";

  constructor(private readonly options: VmBmcOptions & { uuid: string }) {}

  machine(system: string, uuid: string): QemuMachine {
    let machine = this.machines.get(system);
    if (!machine) {
      machine = new QemuMachine({
        name: `${system.split("/").pop() ?? "system"}-${uuid.slice(0, 8)}`,
        uuid,
        forwards: this.options.forwards,
        timeoutMs: this.options.timeoutMs,
        memoryMiB: this.options.memoryMiB,
        workDir: this.options.workDir,
      });
      this.machines.set(system, machine);
    }
    return machine;
  }

  boot(event: MachineBootEvent): void {
    const machine = this.machine(event.system, event.uuid ?? this.options.uuid);
    machine.onStopped = event.poweredOff;
    let action: Promise<void>;
    try {
      const config = launchConfigFor(event, {
        ...this.options,
        virtualCdTarget: this.virtualCdTarget,
      });
      action = machine.isRunning ? machine.reset(config) : machine.powerOn(config);
    } catch (err) {
      action = Promise.reject(err);
    }
    action.catch(err => this.errors.push(`${event.system}: ${String(err)}`));
  }

  powerOff(system: string): void {
    this.machines
      .get(system)
      ?.powerOff()
      .catch(err => this.errors.push(`${system}: power off: ${String(err)}`));
  }

  async dispose(): Promise<void> {
    await Promise.all([...this.machines.values()].map(m => m.dispose()));
  }
}

export interface VmBmc {
  bmc: TestBmc;
  backend: VmBackend;
  uuid: string;
  /** The machine of the BMC's (first) system; it exists from its first power-on. */
  readonly machine: QemuMachine;
  /** A URL on 127.0.0.1 as the guest reaches it through the forwards (http://10.0.2.100/...). */
  guestUrl(hostUrl: string): string;
  stop(): Promise<void>;
}

/** Starts a test BMC (powered off) whose system is a QEMU machine. */
export async function startVmBmc(options: VmBmcOptions = {}): Promise<VmBmc> {
  const uuid = (options.uuid ?? randomUUID()).toLowerCase();
  const backend = new VmBackend({ ...options, uuid });
  const bmc = await TestBmc.start({
    mockup: options.mockup ?? "dmtf_public-rackmount1",
    powerState: "Off",
    emptyMedia: true,
    ...options.bmc,
    identity: { uuid, ...options.bmc?.identity },
    machine: backend,
  });
  backend.virtualCdTarget = bmc.profile.virtualCdBootTarget;
  const system = bmc.systems[0]!;
  return {
    bmc,
    backend,
    uuid,
    get machine() {
      return backend.machine(system, uuid);
    },
    guestUrl: (hostUrl: string) => guestUrl(hostUrl, options.forwards ?? []),
    async stop() {
      await backend.dispose();
      await bmc.stop();
    },
  };
}

/**
 * http://127.0.0.1:<hostPort>/p as the guest reaches it: http://10.0.2.100[:guestPort]/p. The rest
 * of the URL is kept as written, so an iPXE setting such as ${uuid} stays for iPXE to fill.
 */
export function guestUrl(hostUrl: string, forwards: readonly GuestForward[]): string {
  const url = new URL(hostUrl);
  const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
  const forward = forwards.find(f => f.hostPort === port);
  if (!["127.0.0.1", "localhost"].includes(url.hostname) || !forward) {
    throw new Error(
      `${url.origin} is not forwarded to the guest (forwards: ${JSON.stringify(forwards)})`,
    );
  }
  const guest = new URL(url.origin);
  guest.hostname = forward.guestAddress ?? GUEST_SERVICE_ADDRESS;
  guest.port = String(forward.guestPort);
  const rest = hostUrl.startsWith(url.origin)
    ? hostUrl.slice(url.origin.length)
    : url.href.slice(url.origin.length);
  return `${guest.origin}${rest}`;
}
