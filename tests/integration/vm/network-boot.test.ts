// A real network boot in iPXE mode through the real operator and the real boot service: a Cluster
// API Machine owns a Beskar7Machine (provisioningMode iPXE) that claims a host whose BMC is a test
// BMC with a QEMU machine behind it (lab/vm). The operator sets the UEFI HTTP boot override to the
// inspection image and powers the VM on; OVMF runs iPXE's ROM, which fetches the inspection image,
// chains to the boot service's per-host iPXE script by the SMBIOS UUID, and boots the script's
// kernel and initramfs (the test installer's, targetImageURL and targetInitrdURL) with the
// arguments the service rendered. The installer posts its hardware report to the service and
// fetches the Machine's bootstrap data as Flatcar would (ignition.config.url). Asserted: what the
// VM printed on its serial console, the report folded into the host's hardwareDetails with the
// VM's own facts, the host Provisioned and the machine provisioned. The VM's network is QEMU's
// user network with restrict=on and two forwards (the boot service and the file server).
import { createHash, randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { K8s } from "kubernetes-fluent-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { Beskar7Machine, providerIDFor } from "../../../capabilities/api";
import { startVmBmc, type VmBmc } from "../../../lab/vm/bmc";
import { ensureInstaller, type Installer } from "../../../lab/vm/installer/build";
import { macFor } from "../../../lab/vm/qemu";
import { clusterFor, createMachine } from "../hardening/support";
import { hostFor, inState, waitForHost } from "../physical-host/support";
import { createNamespace, eventually } from "../support/kube";
import {
  bootSeconds,
  startVmProvisioning,
  TestFileServer,
  type VmBootService,
  type VmProvisioning,
  VM_BOOT_TIMEOUT_MS,
  waitForPowerOff,
} from "./support";

/** A capture whose BMC offers the UefiHttp boot target and Boot.HttpBootUri (iPXE mode needs both). */
const UEFI_HTTP_BMC = "nvidia-libredfish_nvidia_bluefield3-dpu-bmc_openbmc";
/** Where the VM reaches the file server (the boot service has port 80). */
const FILES_GUEST_PORT = 8080;
/** RAM of the VM: a whole GiB, so the reported memory rounds to 1 GiB in hardwareDetails. */
const VM_MEMORY_MIB = 1024;

const sha256 = (data: Buffer | string) => createHash("sha256").update(data).digest("hex");

describe("VM network boot through the boot service (iPXE mode, kernel + initramfs)", () => {
  let installer: Installer;
  let files: TestFileServer;
  let provisioning: VmProvisioning;
  let boot: VmBootService;
  const vms: VmBmc[] = [];

  beforeAll(async () => {
    installer = await ensureInstaller(line => process.stderr.write(`[vm] ${line}\n`));
    files = await TestFileServer.start();
    provisioning = await startVmProvisioning();
    boot = provisioning.boot;
  }, 300_000);

  afterAll(async () => {
    await Promise.all(vms.map(vm => vm.stop()));
    await provisioning?.stop();
    await files?.stop();
  });

  it(
    "a Machine's Beskar7Machine in iPXE mode: the VM HTTP-boots the inspection image, chains to the service's script, boots its kernel and initramfs, reports (hardwareDetails filled with the VM's facts) and fetches the bootstrap data; host and machine provisioned",
    async () => {
      const ns = await createNamespace("vm-ipxe");
      const hostName = "ipxe-host";
      const machineName = "worker-0";
      const vm = await startVmBmc({
        mockup: UEFI_HTTP_BMC,
        forwards: [boot.forward, { guestPort: FILES_GUEST_PORT, hostPort: files.port }],
        memoryMiB: VM_MEMORY_MIB,
        timeoutMs: VM_BOOT_TIMEOUT_MS,
      });
      vms.push(vm);
      await hostFor(vm.bmc, ns, hostName);
      const enrolled = await waitForHost(ns, hostName, inState("Available"), "Available");
      expect(enrolled.status?.hardwareDetails?.systemUUID).toBe(vm.uuid);
      expect(enrolled.status?.hardwareDetails?.bootCapabilities).toMatchObject({
        httpBootURI: true,
        bootTargets: expect.arrayContaining(["UefiHttp"]),
      });

      // The inspection image the firmware HTTP-boots. A real one is an iPXE EFI binary with this
      // script embedded; the VM's firmware already runs iPXE (its NIC's ROM), so the script alone
      // stands in for it. iPXE fills ${uuid} from SMBIOS.
      const inspection = files.serve(
        "/ipxe/inspect.ipxe",
        Buffer.from(`#!ipxe\nchain ${boot.guestURL}/v1/ipxe/\${uuid}\n`),
      );
      // The OS the service's script boots: the installer's kernel and initramfs, as the VM
      // reaches them (the URLs go into the script unchanged).
      const kernelPath = "/os/vmlinuz";
      const initrdPath = "/os/initrd.gz";
      const kernel = vm.guestUrl(files.serve(kernelPath, await readFile(installer.kernel)));
      const initrd = vm.guestUrl(files.serve(initrdPath, await readFile(installer.initrd)));

      const bootstrap = `{"ignition":{"version":"3.4.0"},"beskar7":"${randomBytes(16).toString("hex")}"}`;
      await clusterFor(ns, bootstrap);
      await createMachine(ns, machineName, {
        provisioningMode: "iPXE",
        inspectionImageURL: inspection,
        targetImageURL: kernel,
        targetInitrdURL: initrd,
        osFamily: "flatcar",
        // The installer prints on the serial console; quiet keeps the kernel's log off it.
        extraKernelArgs: ["console=ttyS0,115200", "quiet"],
        bootMode: "UEFI",
      });

      await waitForPowerOff(vm.machine);
      process.stderr.write(`[vm] ipxe boot ${bootSeconds(vm.machine).toFixed(1)} s\n`);
      expect(vm.backend.errors).toEqual([]);
      const console = vm.machine.console;
      const saw = (what: string) =>
        expect(
          console.reports(what),
          `BESKAR7-${what} lines; the console's last lines:\n${console.tail(40)}\n`,
        );

      // The BMC was told to HTTP-boot the inspection image; the VM fetched it, then the kernel
      // and initramfs the service's script named.
      expect(vm.bmc.lastBoot).toMatchObject({ target: "UefiHttp", media: inspection });
      expect(files.requestsFor("/ipxe/inspect.ipxe", "GET").map(r => r.status)).toEqual([200]);
      expect(files.requestsFor(kernelPath, "GET").map(r => r.status)).toContain(200);
      expect(files.requestsFor(initrdPath, "GET").map(r => r.status)).toContain(200);

      // What the VM saw: iPXE names the kernel image by its file name and hands it the initrd
      // by name; then the service's arguments (Flatcar's, the extra ones, the report URL), with
      // the tokens redacted on the console.
      const service = `${boot.guestURL}/v1`;
      saw("CMDLINE").toEqual([
        [
          "vmlinuz initrd=initrd",
          "flatcar.first_boot=1",
          `ignition.config.url=${service}/config/${vm.uuid}/<redacted>`,
          "console=ttyS0,115200 quiet",
          `beskar7.report=${service}/report/${vm.uuid}/<redacted>`,
        ].join(" "),
      ]);
      saw("REPORT").toEqual([
        expect.stringMatching(`^${service}/report/${vm.uuid}/<redacted> \\d+$`),
      ]);
      saw("REPORT-ERROR").toEqual([]);
      saw("CONFIG").toEqual([
        `${service}/config/${vm.uuid}/<redacted> ${sha256(bootstrap)} ${Buffer.byteLength(bootstrap)}`,
      ]);

      // The report reached the service and filled hardwareDetails with the VM's own facts (the
      // captured BMC says 0 CPUs and 0 GiB; the VM has one QEMU CPU, 1 GiB, one NIC, no disk).
      const host = await waitForHost(ns, hostName, inState("Provisioned"), "Provisioned");
      expect(host.status?.boot?.delivery).toBe("NetworkBoot");
      expect(host.status?.boot?.reportedTime).toBeDefined();
      expect(host.status?.boot?.configFetchedTime).toBeDefined();
      const report = host.status!.boot!.report!;
      expect(report.systemUUID).toBe(vm.uuid);
      expect(report.memoryMiB).toBeGreaterThan(VM_MEMORY_MIB * 0.8);
      expect(report.memoryMiB).toBeLessThanOrEqual(VM_MEMORY_MIB);
      expect(host.status?.hardwareDetails).toMatchObject({
        systemUUID: vm.uuid,
        cpu: { count: 1, cores: 1, model: expect.stringMatching(/QEMU/) },
        memoryGiB: 1,
        nics: [{ name: "eth0", macAddress: macFor(vm.uuid) }],
        disks: [],
      });
      expect(host.status?.conditions?.find(c => c.type === "BootDelivered")).toMatchObject({
        status: "True",
        message: "the inspection report arrived and was folded into hardwareDetails",
      });

      // The machine is provisioned on that host.
      await eventually(
        async () => {
          const machine = await K8s(Beskar7Machine).InNamespace(ns).Get(machineName);
          return machine.status?.initialization?.provisioned === true;
        },
        "the Beskar7Machine provisioned",
        60_000,
      );
      const machine = await K8s(Beskar7Machine).InNamespace(ns).Get(machineName);
      expect(machine.status?.hostRef?.name).toBe(hostName);
      expect(machine.spec?.providerID).toBe(providerIDFor(ns, hostName));
    },
    VM_BOOT_TIMEOUT_MS + 240_000,
  );
});
