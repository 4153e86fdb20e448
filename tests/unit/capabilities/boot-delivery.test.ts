// The operator's side of the boot service: the delivery-path rules (delivery.ts) for every mode,
// OS family and BMC, the boot session a provisioning starts (status.boot) and the media URLs the
// BMC gets for it, the waits when the service or the host's UUID is missing, the OS's signal and
// its timeout, the inspection report folded into hardwareDetails, and release ending the session.
import { describe, expect, it } from "vitest";

import { BootPaths, bootToken, bootURL, verifyBootToken, type BootSession } from "../../../boot";
import type { HostProvisioning, PhysicalHost } from "../../../capabilities/api";
import {
  foldReport,
  BOOT_SERVICE_RECHECK_MS,
  BOOT_SERVICE_STALE_MS,
  secretBootAccess,
  withoutToken,
  type BootServiceAccess,
} from "../../../capabilities/physical-host/boot-session";
import type { HostControllerDeps } from "../../../capabilities/physical-host/controller";
import {
  chooseDelivery,
  bootSignalOf,
  type DeliveryInput,
} from "../../../capabilities/physical-host/delivery";
import { provisioningPlan } from "../../../capabilities/physical-host/states";
import { BOOT_ISO, CONSUMER, HostHarness, NOW, condition, makeHost } from "./helpers";
import { FakeBmc } from "./fake-bmc";

const KEY = Buffer.alloc(32, 7);
const BASE = "https://boot.example:8443/prefix";
const UUID = "4c4c4544-0033-3510-8052-b4c04f4e4a32";
const CONFIG = "https://config.example/talos.yaml";

/** A BMC offering every boot method, with `slots` virtual media slots (absent: not known). */
const caps = (slots: number | undefined) =>
  slots === undefined
    ? undefined
    : { bootTargets: ["Pxe", "Cd", "UefiHttp"], httpBootURI: true, virtualMediaSlots: slots };

const vm = (extra: Partial<HostProvisioning> = {}): HostProvisioning => ({
  mode: "VirtualMedia",
  bootISO: BOOT_ISO,
  bootstrapDataSecretRef: "worker-0-bootstrap",
  ...extra,
});

/** A network boot request: UEFI HTTP with its boot URI, unless `extra` names another target. */
const network = (extra: Partial<HostProvisioning> = {}): HostProvisioning => {
  const target = extra.networkBootTarget ?? "UefiHttp";
  return {
    mode: "Network",
    networkBootTarget: target,
    httpBootURI: target === "UefiHttp" ? "https://boot.example/ipxe.efi" : undefined,
    targetImageURL: "https://images.example/os.raw",
    bootstrapDataSecretRef: "b",
    ...extra,
  };
};

describe("chooseDelivery", () => {
  const choose = (request: HostProvisioning, slots?: number, configured = true) =>
    chooseDelivery({ request, capabilities: caps(slots), bootServiceConfigured: configured });

  it("PreBakedISO without bootstrap data: the ISO unchanged, no boot service", () => {
    const c = choose(vm({ bootstrapDataSecretRef: undefined }), 1);
    expect(c).toMatchObject({ ok: true, delivery: "PreBakedISO", usesBootService: false });
    expect(c.ok && c.bootstrapNotDelivered).toBeFalsy();
  });

  it("PreBakedISO with bootstrap data and a second slot: a cidata config volume", () => {
    const c = choose(vm(), 2);
    expect(c).toMatchObject({ ok: true, delivery: "ConfigVolume", usesBootService: true });
    expect(c.ok && c.reason).toContain("cidata");
  });

  it.each([
    [1, undefined, "1 loadable virtual media slot"],
    [undefined, undefined, "slots are not known"],
    [2, "https://images.example/user-config.img", "configMediaURL"],
  ])(
    "PreBakedISO with bootstrap data but %s slot(s): never dropped silently",
    (slots, media, why) => {
      const c = choose(vm({ configMediaURL: media }), slots);
      expect(c).toMatchObject({ ok: true, delivery: "PreBakedISO", usesBootService: false });
      expect(c.ok && c.bootstrapNotDelivered).toContain("cannot be delivered to a pre-baked ISO");
      expect(c.ok && c.bootstrapNotDelivered).toContain(why);
    },
  );

  it("PreBakedISO with bootstrap data and no boot service configured says so", () => {
    const c = choose(vm(), 2, false);
    expect(c).toMatchObject({ ok: true, delivery: "PreBakedISO" });
    expect(c.ok && c.bootstrapNotDelivered).toContain("BESKAR7_BOOT_URL");
  });

  it.each([
    // kairos and LeapMicro read a volume with no kernel argument: a second slot takes it.
    ["kairos", 2, "ConfigVolume", "cidata"],
    ["LeapMicro", 2, "ConfigVolume", "ignition"],
    ["kairos", 1, "PatchedISO", "1 loadable virtual media slot"],
    ["LeapMicro", undefined, "PatchedISO", "not known"],
    // talos reads its volume only with talos.config=metal-iso: patched even with two slots.
    ["talos", 2, "PatchedISO", "talos.config=metal-iso"],
    // flatcar reads no volume on bare metal.
    ["flatcar", 2, "PatchedISO", "reads no configuration volume"],
  ] as const)(
    "RemoteConfig %s with %s slot(s) and only bootstrap data: %s",
    (os, slots, delivery, why) => {
      const c = choose(vm({ osFamily: os }), slots);
      expect(c).toMatchObject({ ok: true, delivery, usesBootService: true });
      expect(c.ok && c.reason).toContain(why);
      expect(c.ok && c.bootstrapNotDelivered).toBeFalsy();
    },
  );

  it.each(["kairos", "talos", "flatcar", "LeapMicro"] as const)(
    "RemoteConfig %s with a configURL: patched, and bootstrap data alongside is reported undelivered",
    os => {
      const c = choose(vm({ osFamily: os, configURL: CONFIG }), 2);
      expect(c).toMatchObject({ ok: true, delivery: "PatchedISO" });
      expect(c.ok && c.bootstrapNotDelivered).toContain("reads one configuration");
      const alone = choose(
        vm({ osFamily: os, configURL: CONFIG, bootstrapDataSecretRef: undefined }),
        2,
      );
      expect(alone.ok && alone.bootstrapNotDelivered).toBeFalsy();
    },
  );

  it("RemoteConfig with neither configURL nor bootstrap data is refused with what is missing", () => {
    const c = choose(vm({ osFamily: "talos", bootstrapDataSecretRef: undefined }), 2);
    expect(c).toEqual({ ok: false, message: expect.stringContaining("set configURL") });
  });

  it.each(["Pxe", "UefiHttp"] as const)(
    "network boot (%s) is NetworkBoot, signalled by the report",
    target => {
      const request = network({ networkBootTarget: target });
      const c = choose(request, 0);
      expect(c).toMatchObject({ ok: true, delivery: "NetworkBoot", usesBootService: true });
      expect(bootSignalOf(request, "NetworkBoot")).toBe("reported");
    },
  );

  it.each<[string, HostProvisioning, NonNullable<DeliveryInput["capabilities"]>, string]>([
    ["virtual media", vm(), { virtualMedia: ["USB"], virtualMediaSlots: 1 }, "takes a CD"],
    [
      "PXE",
      network({ networkBootTarget: "Pxe" }),
      { bootTargets: ["Cd", "UefiHttp"], httpBootURI: true },
      "no Pxe",
    ],
    ["UEFI HTTP", network(), { bootTargets: ["Pxe", "Cd"] }, "no UefiHttp boot target"],
    ["a UEFI HTTP URI", network(), { bootTargets: ["UefiHttp"], httpBootURI: false }, "URI"],
  ])(
    "refuses %s on a BMC that cannot do it, with what it lacks (the claim rule)",
    (_what, request, capabilities, lacks) => {
      const c = chooseDelivery({ request, capabilities, bootServiceConfigured: true });
      expect(c).toEqual({ ok: false, message: expect.stringContaining(lacks) });
      expect(c.ok || c.message).toContain("status.hardwareDetails.bootCapabilities");
    },
  );

  it("tries where the BMC did not say: no capabilities recorded, or no boot targets listed", () => {
    for (const request of [vm(), network({ networkBootTarget: "Pxe" }), network()]) {
      expect(chooseDelivery({ request, bootServiceConfigured: true }).ok).toBe(true);
      const silent = { bootTargets: [], httpBootURI: true };
      expect(
        chooseDelivery({ request, capabilities: silent, bootServiceConfigured: true }).ok,
      ).toBe(true);
    }
  });

  it("the OS signals only where it fetches its configuration from the boot service", () => {
    expect(bootSignalOf(vm({ osFamily: "talos" }), "PatchedISO")).toBe("configFetched");
    expect(
      bootSignalOf(vm({ osFamily: "talos", configURL: CONFIG }), "PatchedISO"),
    ).toBeUndefined();
    expect(bootSignalOf(vm({ osFamily: "kairos" }), "ConfigVolume")).toBeUndefined();
    expect(bootSignalOf(vm(), "PreBakedISO")).toBeUndefined();
    expect(provisioningPlan(vm({ osFamily: "kairos" }), "ConfigVolume")).toEqual([
      "PowerOff",
      "EjectMedia",
      "InsertBootMedia",
      "InsertConfigMedia",
      "SetBootOverride",
      "PowerOn",
    ]);
    expect(provisioningPlan(vm({ osFamily: "talos" }), "PatchedISO").at(-1)).toBe("AwaitBoot");
  });
});

describe("secretBootAccess", () => {
  it("is not configured without a URL, and names the Secret while it is missing or short", async () => {
    expect(await secretBootAccess(undefined, "ns", async () => undefined).state()).toMatchObject({
      ready: false,
      reason: "BootServiceNotConfigured",
    });
    const missing = await secretBootAccess(BASE, "ns", async () => undefined).state();
    expect(missing).toMatchObject({ ready: false, reason: "BootServiceSecretMissing" });
    expect(!missing.ready && missing.message).toContain("ns/beskar7-boot-service");
    const short = await secretBootAccess(BASE, "ns", async () => ({
      data: { "token-key": Buffer.alloc(8).toString("base64") },
    })).state();
    expect(short).toMatchObject({ ready: false, reason: "BootServiceSecretMissing" });
    const ok = await secretBootAccess(BASE, "ns", async () => ({
      data: { "token-key": KEY.toString("base64") },
    })).state();
    expect(ok).toEqual({ ready: true, baseURL: BASE, key: KEY });
  });
});

describe("secretBootAccess keeps what it read", () => {
  it("reads a found key once per recheck period (then refreshes it behind the stale copy), a missing one every time, and the CA likewise", async () => {
    let now = 0;
    let stored: { data?: Record<string, string> } | undefined;
    let keyReads = 0;
    let caReads = 0;
    const access = secretBootAccess(
      BASE,
      "ns",
      async () => (keyReads++, stored),
      async () => (caReads++, "CA PEM"),
      () => now,
    );
    expect(await access.state()).toMatchObject({ ready: false });
    expect(await access.state()).toMatchObject({ ready: false });
    expect(keyReads).toBe(2);
    stored = { data: { "token-key": KEY.toString("base64") } };
    await Promise.all([access.state(), access.state()]);
    expect(keyReads).toBe(3);
    now = BOOT_SERVICE_RECHECK_MS - 1;
    expect(await access.state()).toEqual({ ready: true, baseURL: BASE, key: KEY });
    expect(keyReads).toBe(3);
    now = BOOT_SERVICE_RECHECK_MS + 1;
    stored = undefined; // deleted: the stale copy answers while the refresh reads, then it is gone
    expect(await access.state()).toEqual({ ready: true, baseURL: BASE, key: KEY });
    expect(keyReads).toBe(4);
    await new Promise(resolve => setImmediate(resolve));
    expect(await access.state()).toMatchObject({ ready: false });
    expect(keyReads).toBe(5);
    now += BOOT_SERVICE_RECHECK_MS + BOOT_SERVICE_STALE_MS;
    stored = { data: { "token-key": KEY.toString("base64") } };
    await access.state();
    now += BOOT_SERVICE_RECHECK_MS + BOOT_SERVICE_STALE_MS; // past the stale window: waits on the read
    stored = undefined;
    expect(await access.state()).toMatchObject({ ready: false });
    expect(keyReads).toBe(7);
    expect(caReads).toBe(0);
  });
});

describe("withoutToken and foldReport", () => {
  it("hides the token segment of media URLs", () => {
    const url = bootURL(BASE, BootPaths.bootIso(UUID, "A".repeat(43)));
    expect(withoutToken(`inserted ${url} into CD1`)).toBe(
      `inserted ${BASE}/v1/media/${UUID}/<token>/boot.iso into CD1`,
    );
  });

  it("folds the report into hardwareDetails, keeping the BMC's UUID and capabilities", () => {
    const folded = foldReport(
      {
        systemUUID: UUID,
        cpu: { count: 2, cores: 32, threads: 64 },
        memoryGiB: 256,
        bootCapabilities: { bootTargets: ["Pxe"], httpBootURI: true },
      },
      {
        cpu: { cores: 8, model: "Tiny" },
        memoryMiB: 16_384,
        disks: [{ name: "nvme0n1", sizeBytes: 500e9, type: "NVMe" }],
        nics: [{ mac: "AA:BB:CC:DD:EE:FF", name: "eno1" }],
        systemUUID: "other",
      },
    );
    expect(folded).toEqual({
      systemUUID: UUID,
      cpu: { count: 2, cores: 8, threads: 64, model: "Tiny" },
      memoryGiB: 16,
      disks: [{ name: "nvme0n1", sizeBytes: 500e9, mediaType: "NVMe" }],
      nics: [{ name: "eno1", macAddress: "aa:bb:cc:dd:ee:ff" }],
      bootCapabilities: { bootTargets: ["Pxe"], httpBootURI: true },
    });
  });
});

/** A HostHarness whose controller knows a boot service (or a given access). */
class BootHarness extends HostHarness {
  boot: BootServiceAccess | undefined = {
    baseURL: BASE,
    state: async () => ({ ready: true, baseURL: BASE, key: KEY }),
  };
  override deps(): HostControllerDeps {
    return { ...super.deps(), bootService: this.boot };
  }
}

async function claimedWith(
  request: HostProvisioning,
  slots?: number,
  bmc = new FakeBmc(),
): Promise<BootHarness> {
  const h = new BootHarness(makeHost(), bmc);
  await h.reconcile(); // enrolled
  h.host = {
    ...h.host,
    status: {
      ...h.host.status,
      hardwareDetails: { ...h.host.status!.hardwareDetails, bootCapabilities: caps(slots) },
    },
  };
  h.editSpec(spec => {
    spec.consumerRef = CONSUMER;
    spec.provisioning = request;
  });
  h.clearRecords();
  return h;
}

const sessionOf = (host: PhysicalHost): BootSession => ({
  hostUID: host.metadata!.uid!,
  systemUUID: UUID,
  session: host.status!.boot!.session,
});

describe("PhysicalHost controller with the boot service", () => {
  it("RemoteConfig talos: a session, the patched ISO's URL with the media token, AwaitBoot, then Provisioned on the fetch", async () => {
    const h = await claimedWith(vm({ osFamily: "talos" }), 1);
    await h.reconcile();
    const boot = h.host.status!.boot!;
    expect(boot.session).toMatch(/^[0-9a-f]{32}$/);
    expect(boot.issuedTime).toBe(NOW.toISOString());
    expect(boot.delivery).toBe("PatchedISO");
    expect(boot.reason).toContain("talos.config=metal-iso");
    expect(boot.kernelArgs).toEqual([
      "talos.platform=metal",
      `talos.config=${BASE}/v1/config/${UUID}/<token>`,
    ]);
    expect(condition(h.host.status, "BootDelivered")).toMatchObject({
      status: "True",
      reason: "BootDeliveryChosen",
    });

    await h.reconcileUntil("Provisioning");
    for (
      let i = 0;
      i < 10 && !h.host.status?.provisioning?.completedSteps?.some(s => s.step === "PowerOn");
      i++
    ) {
      await h.reconcile();
    }
    const inserted = h.bmc.argsOf("insertMedia").map(a => (a[0] as { image: string }).image);
    const token = bootToken(KEY, "media", sessionOf(h.host));
    expect(inserted).toEqual([bootURL(BASE, BootPaths.bootIso(UUID, token))]);
    expect(verifyBootToken(KEY, "media", sessionOf(h.host), token)).toBe(true);
    // The token never reaches status or events.
    expect(JSON.stringify(h.host.status)).not.toContain(token);
    expect(JSON.stringify(h.events)).not.toContain(token);
    expect(JSON.stringify(h.events)).toContain("<token>");

    // Powered on: waiting for the OS to fetch its configuration, with no BMC call.
    h.bmc.resetCounters();
    const wait = await h.reconcile();
    expect(h.host.status?.state).toBe("Provisioning");
    expect(h.host.status?.provisioning?.currentStep).toBe("AwaitBoot");
    expect(condition(h.host.status, "Provisioned")?.reason).toBe("WaitingForBootSignal");
    expect(wait.requeueAfterMs).toBeGreaterThan(0);
    expect(h.bmc.actions()).toEqual([]);

    // The boot service records the fetch (a merge patch of status.boot): Provisioned.
    h.host.status!.boot = { ...h.host.status!.boot!, configFetchedTime: NOW.toISOString() };
    await h.reconcileUntil("Provisioned");
    expect(h.host.status?.boot?.configFetchedTime).toBe(NOW.toISOString());
    expect(condition(h.host.status, "BootDelivered")?.reason).toBe("BootSignalReceived");

    // Release: deprovisioned, and status.boot (the session) is gone.
    h.editSpec(spec => {
      delete spec.consumerRef;
      delete spec.provisioning;
    });
    await h.reconcileUntil("Available");
    expect(h.host.status?.boot).toBeUndefined();
  });

  it("a signal that does not come gives BootSignalTimeout once, and the host keeps waiting", async () => {
    const h = await claimedWith(vm({ osFamily: "flatcar" }), 2);
    h.config = { ...h.config, bootSignalTimeoutMs: 60_000 };
    for (let i = 0; i < 12 && h.host.status?.provisioning?.currentStep !== "AwaitBoot"; i++) {
      await h.reconcile();
    }
    expect(h.host.status?.provisioning?.currentStep).toBe("AwaitBoot");
    h.now = new Date(NOW.getTime() + 61_000);
    h.events.length = 0;
    await h.reconcile();
    await h.reconcile();
    expect(h.host.status?.state).toBe("Provisioning");
    expect(condition(h.host.status, "BootDelivered")).toMatchObject({
      status: "False",
      reason: "BootSignalTimeout",
    });
    expect(h.eventReasons().filter(r => r === "BootSignalTimeout")).toHaveLength(1);
  });

  it("ConfigVolume: the user's ISO unchanged plus the service's config.iso, Provisioned on power-on", async () => {
    const h = await claimedWith(vm({ osFamily: "kairos" }), 2);
    await h.reconcileUntil("Provisioned");
    expect(h.host.status?.boot?.delivery).toBe("ConfigVolume");
    const token = bootToken(KEY, "media", sessionOf(h.host));
    expect(h.bmc.argsOf("insertMedia").map(a => (a[0] as { image: string }).image)).toEqual([
      BOOT_ISO,
      bootURL(BASE, BootPaths.configIso(UUID, token)),
    ]);
  });

  it("NetworkBoot: waits in Provisioning for the report, folds it, and the requirements see it", async () => {
    const h = await claimedWith(network({ bootMode: "UEFI", osFamily: "flatcar" }), 0);
    for (let i = 0; i < 12 && h.host.status?.provisioning?.currentStep !== "AwaitInspection"; i++) {
      await h.reconcile();
    }
    expect(h.host.status?.state).toBe("Provisioning");
    expect(h.host.status?.boot?.delivery).toBe("NetworkBoot");
    h.host.status!.boot = {
      ...h.host.status!.boot!,
      reportedTime: NOW.toISOString(),
      report: { memoryMiB: 8192, cpu: { cores: 4 } },
    };
    await h.reconcileUntil("Provisioned");
    expect(h.host.status?.hardwareDetails).toMatchObject({ memoryGiB: 8, cpu: { cores: 4 } });
  });

  it("a request the BMC cannot boot holds the host in Claimed, with what it lacks, before any BMC action", async () => {
    const h = await claimedWith(network({ bootMode: "UEFI", osFamily: "flatcar" }));
    h.host.status!.hardwareDetails!.bootCapabilities = {
      bootTargets: ["Pxe", "Cd", "Hdd"],
      httpBootURI: false,
    };
    await h.reconcile();
    await h.reconcile();
    expect(h.host.status?.state).toBe("Claimed");
    expect(condition(h.host.status, "BootDelivered")).toMatchObject({
      status: "False",
      reason: "BootConfigInvalid",
      message: expect.stringContaining("network boot (UefiHttp): no UefiHttp boot target"),
    });
    expect(h.bmc.actions()).toEqual([]);
    expect(h.host.status?.boot).toBeUndefined();
  });

  it("NetworkBoot: an OS that never reports (Talos, Flatcar) ends the wait by fetching its configuration", async () => {
    const h = await claimedWith(
      network({
        bootMode: "UEFI",
        targetImageURL: "https://images.example/flatcar_production_pxe.vmlinuz",
        targetInitrdURL: "https://images.example/flatcar_production_pxe_image.cpio.gz",
        osFamily: "flatcar",
      }),
      0,
    );
    for (let i = 0; i < 12 && h.host.status?.provisioning?.currentStep !== "AwaitInspection"; i++) {
      await h.reconcile();
    }
    // No signal yet: the host keeps waiting.
    await h.reconcile();
    expect(h.host.status?.provisioning?.currentStep).toBe("AwaitInspection");
    expect(condition(h.host.status, "Provisioned")).toMatchObject({
      reason: "WaitingForBootSignal",
      message:
        "powered on; waiting for the inspection image's report or the OS fetching its configuration",
    });
    const inventory = structuredClone(h.host.status?.hardwareDetails);
    h.host.status!.boot = { ...h.host.status!.boot!, configFetchedTime: NOW.toISOString() };
    await h.reconcileUntil("Provisioned");
    expect(condition(h.host.status, "BootDelivered")).toMatchObject({
      status: "True",
      reason: "BootSignalReceived",
      message: "the OS fetched its configuration from the boot service",
    });
    // No report: the inventory is the BMC's, unchanged.
    expect(h.host.status?.hardwareDetails).toEqual(inventory);
  });

  it.each([
    ["not configured", undefined, "BootServiceNotConfigured"],
    [
      "configured without its Secret",
      secretBootAccess(BASE, "pepr-system", async () => undefined),
      "BootServiceSecretMissing",
    ],
  ])(
    "boot service %s: the host waits Claimed, no BMC call, a growing requeue",
    async (_w, access, reason) => {
      const h = await claimedWith(vm({ osFamily: "talos" }), 1);
      h.boot = access;
      const first = await h.reconcile();
      expect(h.host.status?.state).toBe("Claimed");
      expect(condition(h.host.status, "BootDelivered")).toMatchObject({ status: "False", reason });
      expect(h.bmc.actions()).toEqual([]);
      expect(h.host.status?.boot).toBeUndefined();
      h.now = new Date(NOW.getTime() + 40_000);
      const later = await h.reconcile();
      expect(later.requeueAfterMs!).toBeGreaterThan(first.requeueAfterMs!);
      expect(h.eventReasons().filter(r => r === reason)).toHaveLength(1);
    },
  );

  it("a medium the boot service refuses holds the host before any BMC action; an unanswered probe does not", async () => {
    const h = await claimedWith(vm({ osFamily: "talos" }), 1);
    const probed: string[] = [];
    let answer: "refused" | "silent" = "refused";
    h.boot = {
      baseURL: BASE,
      state: async () => ({ ready: true, baseURL: BASE, key: KEY }),
      probeMedia: async url => {
        probed.push(url);
        return answer === "refused"
          ? { ok: false, definite: true, message: "the source ISO answered 404" }
          : { ok: false, definite: false, message: "the medium could not be checked: timeout" };
      },
    };
    await h.reconcile(); // the session
    await h.reconcile(); // the probe
    expect(h.host.status?.state).toBe("Provisioning");
    expect(condition(h.host.status, "BootDelivered")).toMatchObject({
      status: "False",
      reason: "BootMediaUnavailable",
      message: "the source ISO answered 404",
    });
    expect(h.bmc.actions()).toEqual([]);
    const token = bootToken(KEY, "media", sessionOf(h.host));
    expect(probed).toEqual([bootURL(BASE, BootPaths.bootIso(UUID, token))]);
    expect(JSON.stringify(h.host.status)).not.toContain(token);

    answer = "silent";
    await h.reconcileUntil("Provisioning");
    for (let i = 0; i < 10 && h.host.status?.provisioning?.currentStep !== "AwaitBoot"; i++) {
      await h.reconcile();
    }
    expect(h.host.status?.provisioning?.currentStep).toBe("AwaitBoot");
    expect(h.bmc.actions()).toContain("insertMedia");
  });

  it("a pre-baked ISO whose cidata volume the boot service refuses boots alone, saying the bootstrap data was not delivered", async () => {
    const h = await claimedWith(vm(), 2);
    h.boot = {
      baseURL: BASE,
      state: async () => ({ ready: true, baseURL: BASE, key: KEY }),
      probeMedia: async () => ({ ok: false, definite: true, message: "no config volume" }),
    };
    await h.reconcile();
    expect(h.host.status?.boot?.delivery).toBe("ConfigVolume");
    await h.reconcileUntil("Provisioned");
    expect(h.host.status?.boot?.delivery).toBe("PreBakedISO");
    expect(condition(h.host.status, "BootDelivered")).toMatchObject({
      status: "False",
      reason: "BootstrapDataNotDelivered",
    });
    expect(condition(h.host.status, "BootDelivered")?.message).toContain("no config volume");
    expect(h.bmc.argsOf("insertMedia").map(a => (a[0] as { image: string }).image)).toEqual([
      BOOT_ISO,
    ]);
  });

  it("a 404 right after the session started is the service not having seen it yet: probed again within a quarter second, nothing said, the bootstrap data kept", async () => {
    const h = await claimedWith(vm(), 2);
    let seen = false;
    const probed: string[] = [];
    h.boot = {
      baseURL: BASE,
      state: async () => ({ ready: true, baseURL: BASE, key: KEY }),
      probeMedia: async url => {
        probed.push(url);
        return seen
          ? { ok: true }
          : { ok: false, definite: true, notFound: true, message: "answered 404" };
      },
    };
    // The session, and the unchanged ISO, which the service does not serve: it goes in meanwhile.
    await h.reconcile();
    expect(h.bmc.actions()).toEqual(["insertMedia"]);
    expect(h.bmc.slots.filter(s => s.inserted).map(s => s.image)).toEqual([BOOT_ISO]);
    expect(probed).toEqual([]);
    // The volume is served: read as the BMC would first, and not handed over on a 404.
    expect(await h.reconcile()).toEqual({ requeueAfterMs: 250 });
    expect(probed).toHaveLength(1);
    expect(probed[0]).toContain("/config.iso");
    expect(h.bmc.actions()).toEqual(["insertMedia"]);
    expect(h.bmc.slots.filter(s => s.inserted)).toHaveLength(1);
    expect(condition(h.host.status, "BootDelivered")?.reason).not.toBe("BootMediaUnavailable");
    expect(h.events.map(e => e.type)).not.toContain("Warning");
    seen = true;
    await h.reconcileUntil("Provisioned");
    expect(h.host.status?.boot?.delivery).toBe("ConfigVolume");
  });

  it("NetworkBoot: the override is set while the service learns of the session; the iPXE script is fetched before the power-on, and a 404 meanwhile waits", async () => {
    const h = await claimedWith(
      network({
        networkBootTarget: "Pxe",
        bootMode: "UEFI",
        targetImageURL: "https://images.example/vmlinuz",
        osFamily: "flatcar",
      }),
      0,
    );
    const probed: string[] = [];
    let seen = false;
    h.boot = {
      baseURL: BASE,
      state: async () => ({ ready: true, baseURL: BASE, key: KEY }),
      probeMedia: async url => {
        probed.push(url);
        return seen
          ? { ok: true }
          : { ok: false, definite: true, notFound: true, message: "answered 404" };
      },
    };
    await h.reconcile(); // the session; the host is off, nothing inserted: the override
    expect(probed).toEqual([]);
    expect(h.bmc.actions()).toEqual(["setBootOverride"]);
    expect(await h.reconcile()).toEqual({ requeueAfterMs: 250 });
    expect(h.bmc.actions()).toEqual(["setBootOverride"]);
    seen = true;
    await h.reconcile();
    expect(h.bmc.actions()).toEqual(["setBootOverride", "powerOn"]);
    expect(probed).toEqual([
      bootURL(BASE, BootPaths.ipxe(UUID)),
      bootURL(BASE, BootPaths.ipxe(UUID)),
    ]);
  });

  it("a running host is powered off in the run that starts its session, before the service can know it; the probe comes before the first insert", async () => {
    const h = await claimedWith(vm({ osFamily: "talos" }), 1, new FakeBmc({ power: "On" }));
    const probed: string[] = [];
    h.boot = {
      baseURL: BASE,
      state: async () => ({ ready: true, baseURL: BASE, key: KEY }),
      probeMedia: async url => {
        probed.push(url);
        return { ok: false, definite: true, message: "the source ISO answered 404" };
      },
    };
    await h.reconcile(); // claim, session and power-off in one run
    expect(h.host.status?.boot?.session).toMatch(/^[0-9a-f]{32}$/);
    expect(h.bmc.actions()).toEqual(["powerOff"]);
    expect(probed).toEqual([]);
    await h.reconcile(); // nothing to eject; the patched ISO is probed and refused
    expect(probed).toHaveLength(1);
    expect(condition(h.host.status, "BootDelivered")).toMatchObject({
      reason: "BootMediaUnavailable",
      message: "the source ISO answered 404",
    });
    // Held off with nothing inserted, as a released host is.
    expect(h.bmc.actions()).toEqual(["powerOff"]);
    expect(h.bmc.power).toBe("Off");
  });

  it("a session decided in a run whose clearing steps send nothing is written before the probe", async () => {
    const h = await claimedWith(vm({ osFamily: "talos" }), 1);
    let probes = 0;
    h.boot = {
      baseURL: BASE,
      state: async () => ({ ready: true, baseURL: BASE, key: KEY }),
      probeMedia: async () => {
        probes++;
        return { ok: true };
      },
    };
    expect(await h.reconcile()).toEqual({ requeueAfterMs: 0 });
    expect(h.host.status?.boot?.session).toMatch(/^[0-9a-f]{32}$/);
    expect(probes).toBe(0);
    await h.reconcile();
    expect(probes).toBe(1);
    expect(h.bmc.actions()).toEqual(["insertMedia"]);
  });

  it("a 404 that lasts beyond the session's first 30 s is a refusal", async () => {
    const h = await claimedWith(vm({ osFamily: "talos" }), 1);
    h.boot = {
      baseURL: BASE,
      state: async () => ({ ready: true, baseURL: BASE, key: KEY }),
      probeMedia: async () => ({
        ok: false,
        definite: true,
        notFound: true,
        message: "answered 404",
      }),
    };
    await h.reconcile(); // the session, issued now
    h.now = new Date(h.now.getTime() + 29_000);
    expect(await h.reconcile()).toEqual({ requeueAfterMs: 250 });
    h.now = new Date(h.now.getTime() + 1_000);
    await h.reconcile();
    expect(condition(h.host.status, "BootDelivered")).toMatchObject({
      reason: "BootMediaUnavailable",
      message: "answered 404",
    });
    expect(h.bmc.actions()).toEqual([]);
  });

  it("a host without a system UUID cannot use the boot service: SystemUUIDUnknown", async () => {
    const h = await claimedWith(vm({ osFamily: "kairos" }), 1);
    delete h.host.status!.hardwareDetails!.systemUUID;
    await h.reconcile();
    expect(h.host.status?.state).toBe("Claimed");
    expect(condition(h.host.status, "BootDelivered")?.reason).toBe("SystemUUIDUnknown");
    expect(h.bmc.actions()).toEqual([]);
  });

  it("PreBakedISO on a one-slot BMC boots, and says the bootstrap data was not delivered", async () => {
    const h = await claimedWith(vm(), 1);
    await h.reconcileUntil("Provisioned");
    expect(h.host.status?.boot).toBeUndefined();
    expect(condition(h.host.status, "BootDelivered")).toMatchObject({
      status: "False",
      reason: "BootstrapDataNotDelivered",
    });
    expect(h.eventReasons()).toContain("BootstrapDataNotDelivered");
  });

  it("a new session removes what the boot service wrote for the last one", async () => {
    const h = await claimedWith(vm({ osFamily: "talos" }), 1);
    h.host.status!.boot = {
      session: "00".repeat(16),
      issuedTime: NOW.toISOString(),
      delivery: "PatchedISO",
      reason: "old",
      configFetchedTime: NOW.toISOString(),
      reportedTime: NOW.toISOString(),
    };
    await h.reconcile();
    expect(h.host.status?.boot?.session).not.toBe("00".repeat(16));
    expect(h.host.status?.boot?.configFetchedTime).toBeUndefined();
    expect(h.host.status?.boot?.reportedTime).toBeUndefined();
  });
});
