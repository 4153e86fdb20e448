// Real boots through the boot service: VMs behind test BMCs (lab/vm) boot the patched ISO the
// boot service makes from the installer ISO, read the configuration URL the service rendered into
// it, and fetch the bootstrap data from the service, as a Talos machine would. The assertions are
// on what each VM printed on its serial console (its /proc/cmdline, the configuration it fetched
// and its sha256) and on the host's status, which the service's record of that fetch moves to
// Provisioned. One VM is claimed through its PhysicalHost as the machine controller would, one
// through a Cluster API Machine owning a Beskar7Machine; both boot at once (it.concurrent). The
// service runs on plain HTTP (busybox wget does no TLS) with a guest-facing base URL for the VMs
// and the operator's host-facing one for the BMCs (startVmBootService explains why).
import { createHash, randomBytes } from "node:crypto";
import { K8s } from "kubernetes-fluent-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { BootPaths, bootToken, bootURL, newSessionId } from "../../../boot";
import { fileSource, patchIso } from "../../../boot/patched-iso";
import {
  API_GROUP,
  API_VERSION,
  Beskar7Machine,
  CAPI_GROUP,
  CAPI_VERSION,
  CapiCluster,
  CapiMachine,
  Kinds,
  Labels,
  type PhysicalHost,
} from "../../../capabilities/api";
import { startVmBmc, type VmBmc } from "../../../lab/vm/bmc";
import { ensureInstaller, type Installer } from "../../../lab/vm/installer/build";
import { getHost, hostFor, inState, patchHost, waitForHost } from "../physical-host/support";
import { createNamespace, createSecret, eventually } from "../support/kube";
import { startOperator, type Operator } from "../support/operator";
import {
  bootSeconds,
  startVmBootService,
  TestFileServer,
  type VmBootService,
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
  let boot: VmBootService;
  let operator: Operator;
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
    boot = await startVmBootService();
    operator = await startOperator({
      ...boot.operatorEnv,
      BESKAR7_ALLOW_BMC_ADDRESSES: "loopback",
    });
  }, 300_000);

  afterAll(async () => {
    await Promise.all(vms.map(vm => vm.stop()));
    await operator?.stop();
    await boot?.service.stop();
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

  /** The bootstrap token the service accepts for this host's current session. */
  async function configURLOf(host: PhysicalHost): Promise<string> {
    const token = bootToken(await boot.tokenKey(), "bootstrap", {
      hostUID: host.metadata!.uid!,
      systemUUID: host.status!.hardwareDetails!.systemUUID!,
      session: host.status!.boot!.session!,
    });
    return bootURL(
      boot.hostURL,
      BootPaths.config(host.status!.hardwareDetails!.systemUUID!, token),
    );
  }

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
      await patchHost(ns, name, [
        {
          op: "add",
          path: "/spec/consumerRef",
          value: {
            apiVersion: `${API_GROUP}/${API_VERSION}`,
            kind: "Beskar7Machine",
            name: `m-${name}`,
            uid: `uid-${name}`,
          },
        },
        {
          op: "add",
          path: "/spec/provisioning",
          value: {
            mode: "VirtualMedia",
            bootMode: "UEFI",
            bootISO: `${origin.url}/held/installer.iso`,
            osFamily: "talos",
            bootstrapDataSecretRef: `${name}-bootstrap`,
          },
        },
      ]);
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
      await patchHost(ns, name, [
        { op: "remove", path: "/spec/provisioning" },
        { op: "remove", path: "/spec/consumerRef" },
      ]);
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

  it.concurrent(
    "Cluster API: a Beskar7Machine owned by a Machine claims the VM's host; the VM fetches the Machine's bootstrap data byte for byte; the Machine deleted, the host is released, off, its medium ejected",
    async () => {
      const ns = await createNamespace("vm-capi");
      const cluster = "vm";
      const name = "worker-0";
      const vm = await vmHost(ns, "capi-host");
      // What Cluster API leaves before infrastructure: the bootstrap Secret, a provisioned Cluster.
      const bootstrap = `#cloud-config\n# ${randomBytes(16).toString("hex")}\nversion: v1alpha1\n`;
      await createSecret(ns, `${name}-bootstrap`, { value: bootstrap, format: "cloud-config" });
      await K8s(CapiCluster).Apply({
        apiVersion: `${CAPI_GROUP}/${CAPI_VERSION}`,
        kind: "Cluster",
        metadata: { name: cluster, namespace: ns },
        spec: { controlPlaneEndpoint: { host: "192.0.2.1", port: 6443 } },
      });
      await K8s(CapiCluster).PatchStatus({
        metadata: { name: cluster, namespace: ns },
        status: { initialization: { infrastructureProvisioned: true } },
      });
      const owner = await K8s(CapiMachine).Apply({
        apiVersion: `${CAPI_GROUP}/${CAPI_VERSION}`,
        kind: "Machine",
        metadata: { name, namespace: ns, labels: { [Labels.clusterName]: cluster } },
        spec: {
          clusterName: cluster,
          bootstrap: { dataSecretName: `${name}-bootstrap` },
          infrastructureRef: { apiGroup: API_GROUP, kind: Kinds.Beskar7Machine, name },
        },
      });
      await K8s(Beskar7Machine).Create({
        apiVersion: `${API_GROUP}/${API_VERSION}`,
        kind: Kinds.Beskar7Machine,
        metadata: {
          name,
          namespace: ns,
          labels: { [Labels.clusterName]: cluster },
          ownerReferences: [
            {
              apiVersion: `${CAPI_GROUP}/${CAPI_VERSION}`,
              kind: "Machine",
              name,
              uid: owner.metadata!.uid!,
              controller: true,
              blockOwnerDeletion: true,
            },
          ],
        },
        spec: {
          provisioningMode: "RemoteConfig",
          osFamily: "talos",
          imageURL: `${origin.url}/installer.iso`,
          bootMode: "UEFI",
        },
      } as Beskar7Machine);

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

      // Deleted as Cluster API does (no garbage collector runs here): the Beskar7Machine, then
      // its Machine. The host is released: off, its medium ejected.
      await K8s(Beskar7Machine).InNamespace(ns).Delete(name);
      await K8s(CapiMachine).InNamespace(ns).Delete(name);
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
