// Real boots through the boot service: VMs behind test BMCs (lab/vm) boot the patched ISO the
// boot service makes from the installer ISO, read the configuration URL the service rendered into
// it, and fetch the bootstrap data from the service, as a Talos machine would; or boot the ISO
// unchanged and find the service's configuration volume on the BMC's second slot by its label, as
// Kairos and Leap Micro do. The assertions are on what each VM printed on its serial console (its
// /proc/cmdline, the volumes and files it found, the configuration it fetched, with sha256s) and
// on the host's status, which the service's record of a fetch moves to Provisioned. Three VMs are
// claimed through their PhysicalHosts as the machine controller would, one through a Cluster API
// Machine owning a Beskar7Machine; all boot at once (it.concurrent). The service runs on plain
// HTTP (busybox wget does no TLS) with a guest-facing base URL for the VMs and the operator's
// host-facing one for the BMCs (startVmBootService in support.ts explains why).
import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { BootPaths, bootToken, bootURL, newSessionId, type TokenPurpose } from "../../../boot";
import { fileSource, patchIso } from "../../../boot/patched-iso";
import type { PhysicalHost } from "../../../capabilities/api";
import { startVmBmc, type VmBmc } from "../../../lab/vm/bmc";
import { ensureInstaller, type Installer } from "../../../lab/vm/installer/build";
import { clusterFor, createMachine, deleteMachine } from "../hardening/support";
import {
  claimHost,
  getHost,
  hostFor,
  inState,
  releaseHost,
  waitForHost,
} from "../physical-host/support";
import { CANARY_BOOTSTRAP_MARK } from "../support/canary";
import { createNamespace, createSecret, eventually } from "../support/kube";
import {
  bootSeconds,
  startVmProvisioning,
  TestFileServer,
  type VmBootService,
  type VmProvisioning,
  VM_BOOT_TIMEOUT_MS,
  waitForPowerOff,
} from "./support";

const sha256 = (data: Buffer | string) => createHash("sha256").update(data).digest("hex");

/** Assertions on the VM's BESKAR7-<what> console lines; a failure shows the console's tail. */
function saw(vm: VmBmc, what: string) {
  return expect(
    vm.machine.console.reports(what),
    `BESKAR7-${what} lines; the console's last lines:\n${vm.machine.console.tail(40)}\n`,
  );
}

/** A plain HTTP GET from the host: what another machine on the provisioning network could do. */
async function get(url: string): Promise<{ status: number; body: Buffer }> {
  const response = await fetch(url);
  return { status: response.status, body: Buffer.from(await response.arrayBuffer()) };
}

describe("VMs booting through the boot service (patched ISO, plain HTTP)", () => {
  let installer: Installer;
  let installerIso: Awaited<ReturnType<typeof fileSource>>;
  let origin: TestFileServer;
  let provisioning: VmProvisioning;
  let boot: VmBootService;
  const vms: VmBmc[] = [];
  const timings: string[] = [];

  beforeAll(async () => {
    installer = await ensureInstaller(line => process.stderr.write(`[vm] ${line}\n`));
    installerIso = await fileSource(installer.iso);
    // The site's image server: the boot service reads the stock ISO from it to patch it.
    origin = await TestFileServer.start();
    origin.serve("/installer.iso", installerIso);
    // The same installer told to stay up after its fetch (beskar7.hold), so a release meets a
    // running OS; the boot service patches its talos arguments in after this one.
    const held = await patchIso(installerIso, {
      kernelArguments: ["beskar7.hold=600"],
      name: "installer.iso",
    });
    origin.serve("/held/installer.iso", held.image);
    provisioning = await startVmProvisioning();
    boot = provisioning.boot;
  }, 300_000);

  afterAll(async () => {
    await Promise.all(vms.map(vm => vm.stop()));
    await provisioning?.stop();
    await origin?.stop();
    await installerIso?.close();
    if (timings.length > 0) process.stderr.write(`[vm] boot times: ${timings.join(", ")}\n`);
  });

  /** A PhysicalHost on a VM-backed BMC that reaches the boot service, Available. */
  async function vmHost(ns: string, name: string): Promise<VmBmc> {
    const vm = await startVmBmc({ forwards: [boot.forward], timeoutMs: VM_BOOT_TIMEOUT_MS });
    vms.push(vm);
    await hostFor(vm.bmc, ns, name);
    const host = await waitForHost(ns, name, inState("Available"), "Available");
    // The service finds the host by the UUID the VM's firmware reports (its SMBIOS UUID).
    expect(host.status?.hardwareDetails?.systemUUID).toBe(vm.uuid);
    return vm;
  }

  /** The URL the service accepts for `path` with this host's token for `purpose`, by hostURL. */
  async function serviceURL(
    host: PhysicalHost,
    purpose: TokenPurpose,
    path: (uuid: string, token: string) => string,
  ): Promise<string> {
    const systemUUID = host.status!.hardwareDetails!.systemUUID!;
    const token = bootToken(await boot.tokenKey(), purpose, {
      hostUID: host.metadata!.uid!,
      systemUUID,
      session: host.status!.boot!.session!,
    });
    return bootURL(boot.hostURL, path(systemUUID, token));
  }

  /** The bootstrap data's URL for this host's current session. */
  const configURLOf = (host: PhysicalHost) => serviceURL(host, "bootstrap", BootPaths.config);

  /** Waits for the VM's power-off and records how long the boot took. */
  async function booted(name: string, vm: VmBmc): Promise<void> {
    await waitForPowerOff(vm.machine);
    timings.push(`${name} ${bootSeconds(vm.machine).toFixed(1)} s`);
    expect(vm.backend.errors).toEqual([]);
  }

  it.concurrent(
    "RemoteConfig talos through a PhysicalHost: the VM boots the service's patched ISO, its command line carries talos.config, it fetches the bootstrap data; Provisioned on that fetch; released, the VM is off and the medium ejected",
    async () => {
      const ns = await createNamespace("vm-boot");
      const name = "talos";
      const vm = await vmHost(ns, name);
      const bootstrap = `version: v1alpha1\nmachine:\n  type: worker\n  token: ${randomBytes(12).toString("hex")}\n`;
      await createSecret(ns, `${name}-bootstrap`, { value: bootstrap });
      await claimHost(ns, name, {
        mode: "VirtualMedia",
        bootMode: "UEFI",
        bootISO: `${origin.url}/held/installer.iso`,
        osFamily: "talos",
        bootstrapDataSecretRef: `${name}-bootstrap`,
      });
      const console = vm.machine.console;
      await console.waitFor(/^BESKAR7-HOLD: 600$/, VM_BOOT_TIMEOUT_MS);
      timings.push(`${name} (to the fetch) ${bootSeconds(vm.machine).toFixed(1)} s`);
      // The VM's own view first: a failed fetch shows here with its console, not as a status wait.
      saw(vm, "CONFIG").toEqual([
        `${boot.guestURL}/v1/config/${vm.uuid}/<redacted> ${sha256(bootstrap)} ${Buffer.byteLength(bootstrap)}`,
      ]);

      const host = await waitForHost(ns, name, inState("Provisioned"), "Provisioned on the fetch");
      expect(host.status?.boot?.delivery).toBe("PatchedISO");
      expect(host.status?.boot?.configFetchedTime).toBeDefined();
      // The medium the BMC read is the service's, by the host-facing URL.
      const [medium] = vm.bmc.insertedMedia();
      expect(medium?.image?.startsWith(`${boot.hostURL}/v1/media/${vm.uuid}/`)).toBe(true);

      // What the VM saw: the service's guest-facing config URL on its command line, the token
      // redacted on the console.
      const configURL = await configURLOf(host);
      const guestConfigURL = configURL.replace(boot.hostURL, boot.guestURL);
      const token = configURL.split("/").pop()!;
      saw(vm, "CMDLINE").toEqual([
        `${installer.commandLine} beskar7.hold=600 talos.platform=metal talos.config=${guestConfigURL}`.replace(
          token,
          "<redacted>",
        ),
      ]);
      expect(console.lines.filter(line => line.includes(token))).toEqual([]);

      // Another machine presenting this host's UUID with any other token gets nothing.
      const other = randomBytes(32).toString("base64url");
      expect((await get(bootURL(boot.hostURL, BootPaths.config(vm.uuid, other)))).status).toBe(404);
      expect((await get(configURL)).body.toString()).toBe(bootstrap);

      // Released: the operator powers the running VM off and ejects the medium; the token is dead.
      await releaseHost(ns, name);
      await waitForHost(ns, name, inState("Available"), "Available after release");
      await vm.machine.whenStopped();
      expect(vm.machine.lastRun?.ending, "the OS was still up: the release powered it off").toBe(
        "quit",
      );
      expect(vm.bmc.powerState()).toBe("Off");
      expect(vm.bmc.insertedMedia()).toEqual([]);
      saw(vm, "POWEROFF").toEqual([]);
      expect((await get(configURL)).status).toBe(404);
      expect(vm.backend.errors).toEqual([]);
    },
    VM_BOOT_TIMEOUT_MS + 180_000,
  );

  it.concurrent.each([
    // What each OS expects in that file: a cloud-config, a combustion script.
    {
      family: "kairos",
      label: "cidata",
      file: "user-data",
      others: ["meta-data"],
      first: "#cloud-config",
    },
    {
      family: "LeapMicro",
      label: "ignition",
      file: "combustion/script",
      others: [],
      first: "#!/bin/bash",
    },
  ] as const)(
    "RemoteConfig $family on a two-slot BMC: the ISO boots unchanged, the service's config volume is on the second slot, the VM finds it by its label $label and reads $file, the bootstrap data byte for byte; released, the medium is ejected and the volume's URL dead",
    async ({ family, label, file, others, first }) => {
      const ns = await createNamespace("vm-volume");
      const name = family.toLowerCase();
      const vm = await vmHost(ns, name);
      const available = await getHost(ns, name);
      // A volume needs a slot beside the boot ISO's (capabilities/physical-host/delivery.ts).
      expect(available.status?.hardwareDetails?.bootCapabilities?.virtualMediaSlots).toBe(2);
      const bootstrap = `${first}\n# ${family} ${randomBytes(12).toString("hex")}\n# ${CANARY_BOOTSTRAP_MARK}\n`;
      await createSecret(ns, `${name}-bootstrap`, { value: bootstrap });
      // Its own path on the origin, so the requests below are this VM's BMC's alone.
      const isoURL = origin.serve(`/${name}/installer.iso`, installerIso);
      await claimHost(ns, name, {
        mode: "VirtualMedia",
        bootMode: "UEFI",
        bootISO: isoURL,
        osFamily: family,
        bootstrapDataSecretRef: `${name}-bootstrap`,
      });
      await booted(name, vm);

      // What the VM saw: the installer's own command line (no configuration URL was patched in),
      // the volume by its label on the USB slot, and the file the OS reads holding the bootstrap
      // data; it fetched nothing.
      saw(vm, "CMDLINE").toEqual([installer.commandLine]);
      saw(vm, "MEDIA").toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^sr\d BESKAR7_INSTALLER iso9660$/),
          expect.stringMatching(new RegExp(`^sd[a-z] ${label} iso9660$`)),
        ]),
      );
      saw(vm, "VOLUME").toContain(`${label} ${file} ${sha256(bootstrap)}`);
      const filesSeen = vm.machine.console.reports("VOLUME").map(v => v.split(" ").slice(0, 2));
      expect(filesSeen.map(([l, f]) => `${l} ${f}`).sort()).toEqual(
        [file, ...others].map(f => `${label} ${f}`).sort(),
      );
      saw(vm, "CONFIG").toEqual([]);

      const host = await waitForHost(ns, name, inState("Provisioned"), "Provisioned");
      expect(host.status?.boot?.delivery).toBe("ConfigVolume");
      // The BMC read the boot ISO from the origin itself, by Range requests, and the volume from
      // the service under this session's media token.
      const volumeURL = await serviceURL(host, "media", BootPaths.configIso);
      expect(
        vm.bmc
          .insertedMedia()
          .map(m => m.image)
          .sort(),
      ).toEqual([isoURL, volumeURL].sort());
      const isoReads = origin.requestsFor(`/${name}/installer.iso`, "GET");
      expect(isoReads.length).toBeGreaterThan(0);
      expect(isoReads.every(r => r.status === 206)).toBe(true);
      const token = volumeURL.split("/").at(-2)!;
      expect(vm.machine.console.lines.filter(line => line.includes(token))).toEqual([]);
      // Another token for this UUID gets nothing.
      const other = randomBytes(32).toString("base64url");
      expect((await get(bootURL(boot.hostURL, BootPaths.configIso(vm.uuid, other)))).status).toBe(
        404,
      );

      // Released: the media are ejected and the volume's URL is refused.
      await releaseHost(ns, name);
      await waitForHost(ns, name, inState("Available"), "Available after release");
      expect(vm.bmc.insertedMedia()).toEqual([]);
      expect(vm.bmc.powerState()).toBe("Off");
      expect((await get(volumeURL)).status).toBe(404);
    },
    VM_BOOT_TIMEOUT_MS + 180_000,
  );

  it.concurrent(
    "Cluster API: a Beskar7Machine owned by a Machine claims the VM's host; the VM fetches the Machine's bootstrap data byte for byte; the Machine deleted, the host is released, off, its medium ejected",
    async () => {
      const ns = await createNamespace("vm-capi");
      const name = "worker-0";
      const vm = await vmHost(ns, "capi-host");
      // What Cluster API leaves before infrastructure: the bootstrap Secret, a provisioned Cluster.
      const bootstrap = `#cloud-config\n# ${randomBytes(16).toString("hex")}\nversion: v1alpha1\n`;
      await clusterFor(ns, bootstrap);
      await createMachine(ns, name, {
        provisioningMode: "RemoteConfig",
        osFamily: "talos",
        imageURL: `${origin.url}/installer.iso`,
        bootMode: "UEFI",
      });

      await booted("capi", vm);
      saw(vm, "CONFIG").toEqual([
        `${boot.guestURL}/v1/config/${vm.uuid}/<redacted> ${sha256(bootstrap)} ${Buffer.byteLength(bootstrap)}`,
      ]);
      const host = await waitForHost(ns, "capi-host", inState("Provisioned"), "Provisioned");
      expect(host.spec?.consumerRef?.name).toBe(name);
      const configURL = await configURLOf(host);
      expect((await get(configURL)).body.toString()).toBe(bootstrap);
      // The same host's UUID with the token of another session (a stale or guessed one): nothing.
      const stale = bootToken(await boot.tokenKey(), "bootstrap", {
        hostUID: host.metadata!.uid!,
        systemUUID: vm.uuid,
        session: newSessionId(),
      });
      expect((await get(bootURL(boot.hostURL, BootPaths.config(vm.uuid, stale)))).status).toBe(404);

      // Deleted as Cluster API does: the host is released, off, its medium ejected.
      await deleteMachine(ns, name);
      await waitForHost(ns, "capi-host", inState("Available"), "Available after the delete");
      await eventually(
        async () => vm.bmc.insertedMedia().length === 0,
        "the VM's medium ejected",
        30_000,
      );
      expect(vm.bmc.powerState()).toBe("Off");
      expect((await getHost(ns, "capi-host")).spec?.consumerRef).toBeUndefined();
      expect((await get(configURL)).status).toBe(404);
    },
    VM_BOOT_TIMEOUT_MS + 180_000,
  );
});
