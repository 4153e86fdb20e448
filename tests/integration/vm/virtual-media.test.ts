// Real boots over virtual media: the operator provisions PhysicalHosts whose BMCs are test BMCs
// with a QEMU machine behind them (lab/vm), and each machine boots the test installer
// (lab/vm/installer) under TCG with OVMF. The assertions are on what the VM itself printed on its
// serial console (its /proc/cmdline, the volumes it found, the configuration it fetched) and on
// what it asked the test's HTTP server for, not on what the BMC was told. The three VMs boot at
// once (it.concurrent); each has a hard time limit and a failure prints its console's last lines.
// Two more VMs are driven through the Redfish driver alone: power actions on a running OS, and a
// network boot (OVMF + iPXE's ROM, the script offered by the user network's DHCP).
import { execFileSync } from "node:child_process";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { configVolume } from "../../../boot/config-volume";
import { fileSource, patchIso } from "../../../boot/patched-iso";
import { renderBoot } from "../../../boot/render";
import { parseReport } from "../../../boot/server";
import { BootPaths, bootToken, newSessionId } from "../../../boot/session";
import { startVmBmc, type VmBmc } from "../../../lab/vm/bmc";
import { macFor } from "../../../lab/vm/qemu";
import { createRedfishClient } from "../../../redfish/index";
import { ensureInstaller, type Installer } from "../../../lab/vm/installer/build";
import { createNamespace } from "../support/kube";
import { startOperator, type Operator } from "../support/operator";
import { claimHost, hostFor, inState, waitForHost } from "../physical-host/support";
import { bootSeconds, TestFileServer, VM_BOOT_TIMEOUT_MS, waitForPowerOff } from "./support";

const sha256 = (data: Buffer | string) => createHash("sha256").update(data).digest("hex");

/** Assertions on the VM's BESKAR7-<what> console lines; a failure shows the console's tail. */
function saw(vm: VmBmc, what: string) {
  return expect(
    vm.machine.console.reports(what),
    `BESKAR7-${what} lines; the console's last lines:\n${vm.machine.console.tail(40)}\n`,
  );
}

/** The kernel arguments of the first `linux` line of a grub.cfg. */
function linuxLineArgs(grubCfg: string): string {
  const match = /^\s*linux\s+\S+\s+(.*?)\s*$/m.exec(grubCfg);
  if (!match) throw new Error("no linux line in grub.cfg");
  return match[1]!;
}

describe("VMs booting over virtual media (QEMU TCG + OVMF behind a test BMC)", () => {
  let installer: Installer;
  let installerIso: Awaited<ReturnType<typeof fileSource>>;
  let files: TestFileServer;
  let operator: Operator;
  let ns: string;
  const vms: VmBmc[] = [];
  const timings: string[] = [];

  beforeAll(async () => {
    installer = await ensureInstaller(line => process.stderr.write(`[vm] ${line}\n`));
    installerIso = await fileSource(installer.iso);
    files = await TestFileServer.start();
    // The VM-backed BMCs listen on 127.0.0.1, which the operator refuses unless told.
    operator = await startOperator({ BESKAR7_ALLOW_BMC_ADDRESSES: "loopback" });
    ns = await createNamespace("vm");
  });

  afterAll(async () => {
    await Promise.all(vms.map(vm => vm.stop()));
    await operator?.stop();
    await files?.stop();
    await installerIso?.close();
    if (timings.length > 0) process.stderr.write(`[vm] boot times: ${timings.join(", ")}\n`);
  });

  /** A PhysicalHost on a VM-backed BMC, Available. */
  async function vmHost(name: string): Promise<VmBmc> {
    const vm = await startVmBmc({
      forwards: [{ guestPort: 80, hostPort: files.port }],
      timeoutMs: VM_BOOT_TIMEOUT_MS,
    });
    vms.push(vm);
    await hostFor(vm.bmc, ns, name);
    await waitForHost(ns, name, inState("Available"), "Available");
    return vm;
  }

  /** Waits for the VM's power-off and records how long the boot took. */
  async function booted(name: string, vm: VmBmc): Promise<void> {
    await waitForPowerOff(vm.machine);
    timings.push(`${name} ${bootSeconds(vm.machine).toFixed(1)} s`);
    expect(vm.backend.errors).toEqual([]);
  }

  it.concurrent(
    "PreBakedISO: the VM boots the ISO it was given, unchanged, and powers off",
    async () => {
      const vm = await vmHost("prebaked");
      const iso = files.serve("/prebaked/installer.iso", installerIso);
      await claimHost(ns, "prebaked", { mode: "VirtualMedia", bootISO: iso, bootMode: "UEFI" });
      await booted("prebaked", vm);

      // The ISO's own grub.cfg, read back with xorriso (an independent ISO9660 reader).
      const out = mkdtempSync(join(tmpdir(), "beskar7-grubcfg-"));
      try {
        execFileSync(
          "xorriso",
          [
            "-osirrox",
            "on",
            "-indev",
            installer.iso,
            "-extract",
            "/boot/grub/grub.cfg",
            join(out, "grub.cfg"),
          ],
          { stdio: "ignore" },
        );
        const args = linuxLineArgs(readFileSync(join(out, "grub.cfg"), "utf8"));
        saw(vm, "CMDLINE").toEqual([`BOOT_IMAGE=/boot/vmlinuz ${args}`]);
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
      saw(vm, "UUID").toEqual([vm.uuid]);
      expect(vm.machine.console.reports("NET")[0]).toMatch(/^eth0 10\.0\.2\.15 /);
      // The BMC read the ISO by Range requests, as a BMC does, and the VM asked for nothing else.
      expect(files.requestsFor("/prebaked/installer.iso", "GET").every(r => r.status === 206)).toBe(
        true,
      );
      saw(vm, "CONFIG").toEqual([]);
      await waitForHost(ns, "prebaked", h => h.status?.state === "Provisioned", "Provisioned");
      expect(vm.bmc.powerState()).toBe("Off");
    },
    VM_BOOT_TIMEOUT_MS + 120_000,
  );

  it.concurrent(
    "RemoteConfig, config volume: the VM finds the cidata volume by label and reads user-data",
    async () => {
      const vm = await vmHost("volume");
      const userData = `#cloud-config\nhostname: volume-${vm.uuid}\n`;
      const volume = configVolume("kairos", { config: userData }, { hostname: "volume" });
      const iso = files.serve("/volume/installer.iso", installerIso);
      const config = files.serve("/volume/config.iso", volume.image);
      await claimHost(ns, "volume", {
        mode: "VirtualMedia",
        bootISO: iso,
        configMediaURL: config,
        bootMode: "UEFI",
      });
      await booted("volume", vm);

      const volumes = vm.machine.console.reports("VOLUME");
      expect(volumes).toContain(`cidata user-data ${sha256(userData)}`);
      expect(volumes.some(v => v.startsWith("cidata meta-data "))).toBe(true);
      saw(vm, "MEDIA").toEqual(expect.arrayContaining([expect.stringMatching(/ cidata iso9660$/)]));
    },
    VM_BOOT_TIMEOUT_MS + 120_000,
  );

  it.concurrent(
    "RemoteConfig, patched ISO: the VM's command line carries talos.config and it fetches that configuration",
    async () => {
      const vm = await vmHost("patched");
      const machineConfig = `version: v1alpha1\nmachine:\n  type: worker\n# ${vm.uuid}\n`;
      // The boot service's URL layout, with a real 256-bit bootstrap token in the path.
      const token = bootToken(randomBytes(32), "bootstrap", {
        hostUID: "uid-patched",
        systemUUID: vm.uuid,
        session: newSessionId(),
      });
      const configPath = BootPaths.config(vm.uuid, token);
      files.serve(configPath, Buffer.from(machineConfig));
      const rendered = renderBoot(
        { name: "patched", systemUUID: vm.uuid },
        {
          osFamily: "talos",
          configURL: vm.guestUrl(`${files.url}${configPath}`),
          extraKernelArgs: [
            `beskar7.report=${vm.guestUrl(`${files.url}/report/${vm.uuid}`)}`,
            `beskar7.callback=${vm.guestUrl(`${files.url}/callback/${vm.uuid}`)}`,
          ],
        },
      );
      const patched = await patchIso(installerIso, {
        kernelArguments: rendered.kernelArgs,
        name: "installer.iso",
      });
      expect(patched.files.some(f => f.path === "/boot/grub/grub.cfg" && f.lines === 1)).toBe(true);
      const iso = files.serve("/patched/installer.iso", patched.image);
      await claimHost(ns, "patched", { mode: "VirtualMedia", bootISO: iso, bootMode: "UEFI" });
      await booted("patched", vm);

      // The VM got the token on its command line; its console shows it redacted, nowhere whole.
      const commandLine = `${installer.commandLine} ${rendered.commandLine}`;
      saw(vm, "CMDLINE").toEqual([commandLine.replace(token, "<redacted>")]);
      expect(vm.machine.console.lines.filter(line => line.includes(token))).toEqual([]);
      expect(rendered.commandLine).toBe(
        `talos.platform=metal talos.config=http://10.0.2.100${configPath}` +
          ` beskar7.report=http://10.0.2.100/report/${vm.uuid}` +
          ` beskar7.callback=http://10.0.2.100/callback/${vm.uuid}`,
      );
      saw(vm, "CONFIG").toEqual([
        `http://10.0.2.100/v1/config/${vm.uuid}/<redacted> ${sha256(machineConfig)} ${Buffer.byteLength(machineConfig)}`,
      ]);
      expect(files.requestsFor(configPath, "GET").map(r => r.status)).toEqual([200]);

      // The hardware report, in the boot service's schema (parseReport refuses anything else):
      // this machine's SMBIOS UUID and NIC, as the VM read them itself.
      const reports = files.requestsFor(`/report/${vm.uuid}`, "POST");
      expect(reports).toHaveLength(1);
      const report = parseReport(reports[0]!.body!, vm.uuid);
      expect(report.nics).toEqual([{ name: "eth0", mac: macFor(vm.uuid) }]);
      expect(report.cpu).toMatchObject({ count: 1, cores: 1 });
      expect(report.memoryMiB).toBeGreaterThan(400);
      expect(report.disks.map(d => d.name)).toContain("sr0");
      // The callback carries what the VM printed, the configuration line included.
      const callbacks = files.requestsFor(`/callback/${vm.uuid}`, "POST");
      expect(callbacks).toHaveLength(1);
      expect(callbacks[0]!.body!.toString("utf8")).toContain(
        `BESKAR7-CONFIG: http://10.0.2.100/v1/config/${vm.uuid}/<redacted> `,
      );
    },
    VM_BOOT_TIMEOUT_MS + 120_000,
  );

  it.concurrent(
    "power through the Redfish driver: On boots the VM, ForceRestart resets the same QEMU process, ForceOff stops it",
    async () => {
      const vm = await startVmBmc({
        forwards: [{ guestPort: 80, hostPort: files.port }],
        // Two boots in one power-on (a reset does not restart the limit).
        timeoutMs: 2 * VM_BOOT_TIMEOUT_MS,
      });
      vms.push(vm);
      const client = createRedfishClient({
        address: vm.bmc.url,
        credentials: { username: vm.bmc.username, password: vm.bmc.password },
        tls: { caBundle: vm.bmc.caPem! },
        timeoutMs: 10_000,
      });
      try {
        // The installer stays up (beskar7.hold) so the power actions meet a running OS.
        const held = await patchIso(installerIso, {
          kernelArguments: ["beskar7.hold=600"],
          name: "installer.iso",
        });
        const system = client.system();
        await system.insertMedia({
          image: files.serve("/power/installer.iso", held.image),
          kind: "cd",
        });
        await system.setBootOverride({ target: "Cd", persistent: true, mode: "UEFI" });
        await system.powerOn();
        const console = vm.machine.console;
        await console.waitFor(/^BESKAR7-HOLD: 600$/, VM_BOOT_TIMEOUT_MS);
        timings.push(`power (first boot) ${bootSeconds(vm.machine).toFixed(1)} s`);

        const mark = console.lines.length;
        await system.restart({ force: true });
        await console.waitFor(/^BESKAR7-HOLD: 600$/, VM_BOOT_TIMEOUT_MS, mark);
        expect(console.lines.slice(mark)).toContain("[beskar7: system_reset]");
        expect(vm.machine.runs, "a reset is not a new QEMU process").toHaveLength(1);
        saw(vm, "CMDLINE").toHaveLength(2);

        await system.powerOff({ force: true });
        await vm.machine.whenStopped();
        expect(vm.machine.lastRun?.ending).toBe("quit");
        expect(vm.bmc.powerState()).toBe("Off");
        saw(vm, "POWEROFF").toEqual([]);
        expect(vm.backend.errors).toEqual([]);
      } finally {
        await client.close();
      }
    },
    2 * VM_BOOT_TIMEOUT_MS,
  );
  it.concurrent(
    "network boot: Pxe starts iPXE from the NIC, which fetches the per-host script by the SMBIOS UUID it fills in, and the installer it boots posts its report",
    async () => {
      const uuid = randomUUID();
      const vm = await startVmBmc({
        uuid,
        forwards: [{ guestPort: 80, hostPort: files.port }],
        // As the boot service's DHCP setup would: iPXE fills ${uuid} from SMBIOS.
        networkBootFile: `${files.url}${BootPaths.ipxe("${uuid}")}`,
        timeoutMs: VM_BOOT_TIMEOUT_MS,
      });
      vms.push(vm);
      const kernel = files.serve(`/netboot/${uuid}/vmlinuz`, await readFile(installer.kernel));
      const initrd = files.serve(`/netboot/${uuid}/initrd.gz`, await readFile(installer.initrd));
      const report = vm.guestUrl(`${files.url}/report/${uuid}`);
      // iPXE's EFI build hands the kernel its initrd by the name in initrd= (Debian's 1.0.0 ROM).
      const script = [
        "#!ipxe",
        `kernel ${vm.guestUrl(kernel)} initrd=initrd.gz console=ttyS0,115200 quiet beskar7.report=${report}`,
        `initrd ${vm.guestUrl(initrd)}`,
        "boot",
        "",
      ].join("\n");
      files.serve(BootPaths.ipxe(uuid), Buffer.from(script));
      const client = createRedfishClient({
        address: vm.bmc.url,
        credentials: { username: vm.bmc.username, password: vm.bmc.password },
        tls: { caBundle: vm.bmc.caPem! },
        timeoutMs: 10_000,
      });
      try {
        const system = client.system();
        await system.setBootOverride({ target: "Pxe", mode: "UEFI" });
        await system.powerOn();
        await booted("network", vm);
      } finally {
        await client.close();
      }

      expect(files.requestsFor(BootPaths.ipxe(uuid), "GET").map(r => r.status)).toEqual([200]);
      saw(vm, "CMDLINE").toEqual([
        `vmlinuz initrd=initrd.gz console=ttyS0,115200 quiet beskar7.report=${report}`,
      ]);
      const posted = files.requestsFor(`/report/${uuid}`, "POST");
      expect(posted).toHaveLength(1);
      const body = JSON.parse(posted[0]!.body!.toString("utf8")) as {
        systemUUID: string;
        nics: Array<{ mac: string }>;
      };
      expect(body.systemUUID).toBe(uuid);
      expect(body.nics.map(n => n.mac)).toEqual([macFor(uuid)]);
      expect(vm.bmc.powerState()).toBe("Off");
    },
    VM_BOOT_TIMEOUT_MS + 120_000,
  );
});
