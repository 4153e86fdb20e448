// One virtual machine for the VM tests: a QEMU process with software emulation (TCG: this machine
// has no KVM) and UEFI firmware (OVMF), all from Debian's packages. Power on starts the process,
// reset presses its reset button over QMP (or starts it anew when its media or boot device
// changed, which a running QEMU cannot take), power off quits it. Virtual media are attached as
// the BMC would: a URL read with HTTP Range requests by QEMU's curl block driver (Debian's
// qemu-block-extra), never downloaded first; a CD on the SATA controller or a USB stick.
//
// Networking is QEMU's user-mode stack with restrict=on: the guest gets 10.0.2.15 by DHCP and can
// reach nothing but the explicit forwards (guestfwd), each to a port on 127.0.0.1 — no bridge, no
// tap, no route out. A forward runs `busybox nc` per connection (QEMU's `cmd:` form), since a
// forward to a tcp chardev connects once and serves a single connection.
//
// Each power-on has a hard time limit; the serial console is captured (console.ts).
import { type ChildProcess, spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { SerialConsole } from "./console";
import { QmpClient } from "./qmp";

/** Debian's paths (packages qemu-system-x86, ovmf, ipxe-qemu, busybox-static). */
export const VmFiles = {
  qemu: "/usr/bin/qemu-system-x86_64",
  ovmfCode: "/usr/share/OVMF/OVMF_CODE_4M.fd",
  ovmfVars: "/usr/share/OVMF/OVMF_VARS_4M.fd",
  ipxeRom: "/usr/lib/ipxe/qemu/efi-virtio.rom",
  busybox: "/bin/busybox",
} as const;

/** The address the guest reaches the suite's services at (QEMU's user network is 10.0.2.0/24). */
export const GUEST_SERVICE_ADDRESS = "10.0.2.100";

export interface GuestForward {
  /** Port the guest connects to on `guestAddress` (default 10.0.2.100). */
  guestPort: number;
  guestAddress?: string;
  /** Port on 127.0.0.1 the connection is forwarded to. */
  hostPort: number;
}

export interface MachineMedium {
  url: string;
  /** A CD on the SATA controller, or a USB stick. */
  kind: "cd" | "usb";
}

/** What the firmware boots first: a medium of that kind, the network (iPXE), or its own order. */
export type BootDevice = "cd" | "usb" | "network" | "default";

export interface LaunchConfig {
  media: MachineMedium[];
  boot: BootDevice;
  /**
   * The boot file name the user network's DHCP offers (option 67): for network boots, a URL the
   * guest can reach (an iPXE script or EFI binary), which iPXE's ROM fetches and runs.
   */
  bootFile?: string;
}

export interface QemuMachineOptions {
  name: string;
  /** SMBIOS system UUID (type 1): the same the BMC reports as the system's UUID. */
  uuid: string;
  memoryMiB?: number;
  forwards?: readonly GuestForward[];
  /** Hard limit on one power-on, after which the process is killed (default 180 s). */
  timeoutMs?: number;
  /** Console log, NVRAM and QMP socket go here (default: a new temporary folder). */
  workDir?: string;
}

export interface MachineRun {
  config: LaunchConfig;
  startedAt: number;
  endedAt?: number;
  /** How the run ended: "poweroff" (the guest), "quit" (power off), "timeout", "exit <code>". */
  ending?: string;
}

const running = new Set<QemuMachine>();
process.once("exit", () => {
  for (const machine of running) machine.kill();
});

export class QemuMachine {
  readonly console: SerialConsole;
  readonly runs: MachineRun[] = [];
  readonly workDir: string;
  /** Called when the machine stops by itself (guest power-off, crash, time limit). */
  onStopped: (() => void) | undefined;
  /** QEMU's own stderr (errors such as a medium URL it could not open). */
  stderr = "";

  private child: ChildProcess | undefined;
  private qmp: QmpClient | undefined;
  private current: MachineRun | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopping: string | undefined;
  private exited: Promise<void> = Promise.resolve();

  constructor(readonly options: QemuMachineOptions) {
    this.workDir = options.workDir ?? mkdtempSync(join(tmpdir(), `beskar7-vm-${options.name}-`));
    this.console = new SerialConsole(join(this.workDir, "console.log"));
  }

  get isRunning(): boolean {
    return this.child !== undefined;
  }

  get lastRun(): MachineRun | undefined {
    return this.runs[this.runs.length - 1];
  }

  /** Starts the machine; a running one is stopped first (a cold boot with the new config). */
  async powerOn(config: LaunchConfig): Promise<void> {
    if (this.child) await this.powerOff();
    this.start(config);
  }

  /** Resets a running machine (QMP system_reset) or, if its media or boot device changed, restarts it. */
  async reset(config: LaunchConfig): Promise<void> {
    if (this.child && this.qmp && sameConfig(this.current?.config, config)) {
      this.console.write("\n[beskar7: system_reset]\n");
      await this.qmp.execute("system_reset");
      return;
    }
    await this.powerOn(config);
  }

  /** Pulls the plug: QMP quit, SIGKILL if QEMU does not go within 5 s. */
  async powerOff(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.stopping = "quit";
    const killer = setTimeout(() => child.kill("SIGKILL"), 5000);
    try {
      await this.qmp?.execute("quit");
    } catch {
      child.kill("SIGKILL");
    }
    await this.exited;
    clearTimeout(killer);
  }

  /** Resolves when the running QEMU process has exited (at once when none runs). */
  whenStopped(): Promise<void> {
    return this.exited;
  }

  /** Synchronous SIGKILL, for process exit. */
  kill(): void {
    this.stopping = this.stopping ?? "killed";
    this.child?.kill("SIGKILL");
  }

  /** Stops the machine and removes its work folder. */
  async dispose(): Promise<void> {
    await this.powerOff();
    if (!this.options.workDir) rmSync(this.workDir, { recursive: true, force: true });
  }

  private start(config: LaunchConfig): void {
    for (const file of [VmFiles.qemu, VmFiles.ovmfCode, VmFiles.busybox]) {
      if (!existsSync(file)) {
        throw new Error(
          `${file} is missing: run npm run test:prepare (it installs the VM packages)`,
        );
      }
    }
    const vars = join(this.workDir, "OVMF_VARS.fd");
    if (!existsSync(vars)) copyFileSync(VmFiles.ovmfVars, vars);
    const qmpPath = join(this.workDir, "qmp.sock");
    rmSync(qmpPath, { force: true });
    const args = qemuArguments(this.options, config, vars, qmpPath);
    const run: MachineRun = { config, startedAt: Date.now() };
    this.runs.push(run);
    this.current = run;
    this.stopping = undefined;
    this.console.reopen();
    const child = spawn(VmFiles.qemu, args, { stdio: ["pipe", "pipe", "pipe"] });
    this.child = child;
    running.add(this);
    child.stdout!.on("data", (chunk: Buffer) => this.console.write(chunk));
    child.stderr!.on("data", (chunk: Buffer) => {
      this.stderr += chunk.toString("utf8");
    });
    this.exited = new Promise(resolve => {
      child.once("exit", (code, signal) => {
        clearTimeout(this.timer);
        running.delete(this);
        this.qmp?.close();
        this.qmp = undefined;
        this.child = undefined;
        run.endedAt = Date.now();
        run.ending =
          this.stopping ??
          (code === 0
            ? "poweroff"
            : `exit ${code ?? signal}: ${this.stderr.trim().split("\n").pop() ?? ""}`);
        this.console.close(`(the machine stopped: ${run.ending})`);
        if (!this.stopping || this.stopping === "timeout") this.onStopped?.();
        resolve();
      });
    });
    const timeoutMs = this.options.timeoutMs ?? 180_000;
    this.timer = setTimeout(() => {
      this.stopping = "timeout";
      this.console.write(`\n[beskar7: hard time limit of ${timeoutMs / 1000} s reached]\n`);
      child.kill("SIGKILL");
    }, timeoutMs);
    QmpClient.connect(qmpPath).then(
      client => {
        if (this.child === child) this.qmp = client;
        else client.close();
      },
      err => {
        this.stderr += `${String(err)}\n`;
      },
    );
  }
}

function sameConfig(a: LaunchConfig | undefined, b: LaunchConfig): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** A locally administered MAC derived from the UUID, so each host's NIC is its own. */
export function macFor(uuid: string): string {
  const hex = uuid.replace(/-/g, "").toLowerCase().padEnd(12, "0");
  return `52:54:00:${hex.slice(-6).match(/../g)!.join(":")}`;
}

/** The QEMU command line for a machine and launch config (exported for tests of its shape). */
export function qemuArguments(
  options: QemuMachineOptions,
  config: LaunchConfig,
  varsPath: string,
  qmpPath: string,
): string[] {
  const forwards = (options.forwards ?? []).map(f => {
    if (!Number.isInteger(f.hostPort) || f.hostPort <= 0 || f.hostPort > 65535) {
      throw new Error(`guest forward to host port ${f.hostPort}: not a port`);
    }
    return `guestfwd=tcp:${f.guestAddress ?? GUEST_SERVICE_ADDRESS}:${f.guestPort}-cmd:${VmFiles.busybox} nc 127.0.0.1 ${f.hostPort}`;
  });
  const network = config.boot === "network";
  if (config.bootFile !== undefined && !/^https?:\/\/[^\s,]+$/.test(config.bootFile)) {
    // QEMU splits its options at commas; a URL with one would add options of its own.
    throw new Error(
      `boot file ${JSON.stringify(config.bootFile)}: an http(s) URL without commas or spaces`,
    );
  }
  const args = [
    "-name",
    options.name,
    "-machine",
    "q35,accel=tcg",
    "-m",
    String(options.memoryMiB ?? 512),
    "-smp",
    "1",
    "-nodefaults",
    "-no-user-config",
    "-display",
    "none",
    "-serial",
    "stdio",
    "-qmp",
    `unix:${qmpPath},server=on,wait=off`,
    "-drive",
    `if=pflash,format=raw,unit=0,readonly=on,file=${VmFiles.ovmfCode}`,
    "-drive",
    `if=pflash,format=raw,unit=1,file=${varsPath}`,
    "-smbios",
    `type=1,uuid=${options.uuid}`,
    "-netdev",
    [
      "user",
      "id=net0",
      "restrict=on",
      ...(config.bootFile ? [`bootfile=${config.bootFile}`] : []),
      ...forwards,
    ].join(","),
    "-device",
    // iPXE's option ROM only when booting from the network: it adds seconds to every TCG boot.
    `virtio-net-pci,netdev=net0,mac=${macFor(options.uuid)},romfile=${network ? VmFiles.ipxeRom : ""}${network ? ",bootindex=1" : ""}`,
  ];
  let cds = 0;
  let usbController = false;
  let bootAssigned = network;
  config.media.forEach((medium, index) => {
    const url = new URL(medium.url);
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new Error(
        `virtual medium ${index} (${url.protocol}): only http and https URLs can be attached`,
      );
    }
    const node = `media${index}`;
    args.push(
      "-blockdev",
      JSON.stringify({
        driver: "raw",
        "node-name": node,
        "read-only": true,
        file: {
          driver: url.protocol === "https:" ? "https" : "http",
          url: medium.url,
          timeout: 30,
          // Test services use their own CAs; a BMC is told to skip verification the same way.
          ...(url.protocol === "https:" ? { sslverify: false } : {}),
        },
      }),
    );
    const boot = !bootAssigned && config.boot === medium.kind;
    if (boot) bootAssigned = true;
    const bootIndex = boot ? ",bootindex=1" : "";
    if (medium.kind === "cd") {
      if (cds >= 6) throw new Error("more than six virtual CDs");
      args.push("-device", `ide-cd,drive=${node},bus=ide.${cds}${bootIndex}`);
      cds += 1;
    } else {
      if (!usbController) args.push("-device", "qemu-xhci,id=xhci");
      usbController = true;
      args.push("-device", `usb-storage,bus=xhci.0,drive=${node},removable=on${bootIndex}`);
    }
  });
  return args;
}
