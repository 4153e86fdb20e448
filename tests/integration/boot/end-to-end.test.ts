// The boot service end to end, through PhysicalHost objects: the real operator and the real boot
// service on the suite's API server, test BMCs that fetch the media URL they are given (over TLS
// trusting the boot service's CA, with Range requests, as a real BMC), and the test playing the
// booted OS: it reads the kernel arguments from the ISO the BMC fetched, fetches the configuration
// from the URL in them (or reads the configuration volume), and compares it byte for byte with
// the Machine's bootstrap data. Modes: PreBakedISO, RemoteConfig for each OS family (PatchedISO
// and ConfigVolume), iPXE with the inspection report; bad input: an ISO URL that 404s, an image
// that is not ISO9660, a BMC that never fetches.
import { randomUUID } from "node:crypto";
import https from "node:https";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { bootURL, BootPaths } from "../../../boot";
import type { HostProvisioning, PhysicalHost } from "../../../capabilities/api";
import type { StartedBootService } from "../../../boot-service/start";
import type { TestBmc } from "../../../lab/bmc/server";
import { argValue, grubKernelArgs, ipxeBoot } from "../../../lab/os/kernel-args";
import { buildIso, extractFromIso } from "../../unit/boot/patched-iso-fixtures";
import { claimHost, hostFor, inState, releaseHost, waitForHost } from "../physical-host/support";
import { createNamespace, createSecret } from "../support/kube";
import { CANARY_BOOTSTRAP_MARK } from "../support/canary";
import { startOperator, type Operator } from "../support/operator";
import { startTestBmc } from "../support/test-bmc";
import { imageServer, startTestBootService } from "./service";

const GRUB = "menuentry install {\n  linux /boot/vmlinuz quiet\n  initrd /boot/initrd\n}\n";
const STOCK_ISO = buildIso({ "boot/grub/grub.cfg": GRUB, "boot/vmlinuz": "kernel" });
const DELL = "nvidia-libredfish_dell_poweredge-r750_idrac9-6.00.30";
const HPE = "nvidia-libredfish_hpe_proliant-dl385-gen10plus-v2_ilo5-2.72";
const BLUEFIELD = "nvidia-libredfish_nvidia_bluefield3-dpu-bmc_openbmc";
const SIGNAL_TIMEOUT_MS = 8000;

/** An HTTPS request trusting the boot service's CA, as the booted OS (with the CA) would. */
function request(
  url: string,
  ca: string,
  init: { method?: string; body?: string } = {},
): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method: init.method ?? "GET",
        ca,
        headers: init.body ? { "Content-Type": "application/json" } : {},
      },
      res => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      },
    );
    req.on("error", reject);
    req.end(init.body);
  });
}

describe("boot service end to end", () => {
  let operator: Operator;
  let boot: StartedBootService;
  let images: { url: string; close(): void };
  let ns: string;
  let base: string;
  const bmcs: TestBmc[] = [];

  beforeAll(async () => {
    images = await imageServer({
      "/stock.iso": STOCK_ISO,
      "/not-an-iso.iso": Buffer.alloc(256 * 1024, 0x41),
      "/user-config.yaml": Buffer.from("#cloud-config\nhostname: from-config-url\n"),
    });
    const started = await startTestBootService();
    boot = started.service;
    base = started.url;
    operator = await startOperator({
      ...started.operatorEnv,
      BESKAR7_BOOT_SIGNAL_TIMEOUT_MS: String(SIGNAL_TIMEOUT_MS),
    });
    ns = await createNamespace("boot-e2e");
  }, 240_000);

  afterAll(async () => {
    await operator?.stop();
    await boot?.stop();
    images?.close();
    await Promise.all(bmcs.map(b => b.stop()));
  });

  /** A host on a fetching test BMC, Available, claimed with `provisioning` and bootstrap data. */
  async function provision(
    name: string,
    mockup: string,
    provisioning: Omit<HostProvisioning, "bootstrapDataSecretRef">,
    options: { bootstrap?: Buffer | null; fetch?: boolean } = {},
  ): Promise<{ bmc: TestBmc; uuid: string; bootstrap?: Buffer }> {
    const uuid = randomUUID();
    const bmc = await startTestBmc({
      mockup,
      powerState: "Off",
      identity: { uuid },
      ...(options.fetch === false ? {} : { fetchInsertedMedia: { ca: boot.caCert } }),
    });
    bmcs.push(bmc);
    await hostFor(bmc, ns, name);
    await waitForHost(ns, name, inState("Available"), "Available");
    const bootstrap =
      options.bootstrap === null
        ? undefined
        : (options.bootstrap ??
          Buffer.from(`#bootstrap ${name} ${randomUUID()}\n# ${CANARY_BOOTSTRAP_MARK}\n`));
    if (bootstrap) await createSecret(ns, `${name}-bootstrap`, { value: bootstrap.toString() });
    await claimHost(
      ns,
      name,
      bootstrap ? { ...provisioning, bootstrapDataSecretRef: `${name}-bootstrap` } : provisioning,
    );
    return { bmc, uuid, bootstrap };
  }

  const step = (s: string) => (h: PhysicalHost) => h.status?.provisioning?.currentStep === s;

  /** The patched ISO as the BMC fetched it, and the kernel arguments in its GRUB configuration. */
  async function patchedArgs(bmc: TestBmc): Promise<{ image: string; args: string[] }> {
    await bmc.mediaFetcher!.settled();
    const [fetch] = bmc.mediaFetcher!.fetches;
    expect(fetch?.error).toBeUndefined();
    expect(fetch?.status).toBe(206);
    expect(fetch?.iso9660).toBe(true);
    expect(fetch!.ranges.every(r => r.status === 206)).toBe(true);
    const iso = await bmc.mediaFetcher!.readAll(fetch!.image);
    expect(iso.length).toBe(STOCK_ISO.length);
    const cfg = extractFromIso(iso, "/boot/grub/grub.cfg").toString();
    return { image: fetch!.image, args: grubKernelArgs(cfg) };
  }

  it.each([
    ["talos", "talos.config", ["talos.platform=metal"]],
    ["flatcar", "ignition.config.url", ["flatcar.first_boot=1"]],
  ] as const)(
    "RemoteConfig %s: the BMC fetches the patched ISO, the OS reads its config URL and gets the bootstrap data; Provisioned on that fetch",
    async (os, parameter, fixed) => {
      const name = `patched-${os.toLowerCase()}`;
      const { bmc, uuid, bootstrap } = await provision(name, DELL, {
        mode: "VirtualMedia",
        bootMode: "UEFI",
        bootISO: `${images.url}/stock.iso`,
        osFamily: os,
      });
      const waiting = await waitForHost(ns, name, step("AwaitBoot"), "powered on, AwaitBoot");
      expect(waiting.status?.boot?.delivery).toBe("PatchedISO");
      expect(waiting.status?.boot?.kernelArgs).toContain(
        `${parameter}=${base}/v1/config/${uuid}/<token>`,
      );
      const { image, args } = await patchedArgs(bmc);
      expect(image.startsWith(`${base}/v1/media/${uuid}/`)).toBe(true);
      expect(args.slice(0, 2)).toEqual(["quiet", ...fixed].slice(0, 2));
      const configURL = argValue(args, parameter)!;
      expect(configURL.startsWith(`${base}/v1/config/${uuid}/`)).toBe(true);
      const config = await request(configURL, boot.caCert);
      expect(config.status).toBe(200);
      expect(config.body.equals(bootstrap!)).toBe(true);

      const done = await waitForHost(ns, name, inState("Provisioned"), "Provisioned on the fetch");
      expect(done.status?.boot?.configFetchedTime).toBeDefined();
      // No token in status.
      expect(JSON.stringify(done.status)).not.toContain(image.split("/")[6]!);

      // Released: the session ends, and the URLs the OS and the BMC had are refused.
      await releaseHost(ns, name);
      const free = await waitForHost(ns, name, inState("Available"), "Available after release");
      expect(free.status?.boot).toBeUndefined();
      await expect(request(configURL, boot.caCert)).resolves.toMatchObject({ status: 404 });
    },
  );

  it.each([
    ["kairos", "user-data", DELL],
    ["LeapMicro", "combustion/script", HPE],
  ] as const)(
    "RemoteConfig %s on a two-slot BMC: the ISO unchanged plus the config volume, whose %s is the bootstrap data",
    async (os, path, mockup) => {
      const name = `volume-${os.toLowerCase()}`;
      const { bmc, uuid, bootstrap } = await provision(name, mockup, {
        mode: "VirtualMedia",
        bootMode: "UEFI",
        bootISO: `${images.url}/stock.iso`,
        osFamily: os,
      });
      const host = await waitForHost(ns, name, inState("Provisioned"), "Provisioned");
      expect(host.status?.boot?.delivery).toBe("ConfigVolume");
      await bmc.mediaFetcher!.settled();
      const fetched = bmc.mediaFetcher!.fetches;
      expect(fetched).toHaveLength(2);
      expect(fetched.map(f => f.image)).toContain(`${images.url}/stock.iso`);
      expect(
        fetched.some(
          f => f.image.startsWith(`${base}/v1/media/${uuid}/`) && f.image.endsWith("/config.iso"),
        ),
      ).toBe(true);
      for (const f of fetched) expect(f).toMatchObject({ status: 206, iso9660: true });
      const volumeURL = fetched.find(f => f.image.endsWith("/config.iso"))!.image;
      const volume = await bmc.mediaFetcher!.readAll(volumeURL);
      expect(extractFromIso(volume, `/${path}`, "joliet").equals(bootstrap!)).toBe(true);
    },
  );

  it("RemoteConfig kairos with a configURL: the OS reads configURL; the bootstrap data is reported undelivered", async () => {
    const name = "both-kairos";
    const { bmc } = await provision(name, DELL, {
      mode: "VirtualMedia",
      bootMode: "UEFI",
      bootISO: `${images.url}/stock.iso`,
      osFamily: "kairos",
      configURL: `${images.url}/user-config.yaml`,
    });
    const host = await waitForHost(ns, name, inState("Provisioned"), "Provisioned at power-on");
    expect(host.status?.boot?.delivery).toBe("PatchedISO");
    const delivered = host.status?.conditions?.find(c => c.type === "BootDelivered");
    expect(delivered).toMatchObject({ status: "False", reason: "BootstrapDataNotDelivered" });
    const { args } = await patchedArgs(bmc);
    expect(argValue(args, "config_url")).toBe(`${images.url}/user-config.yaml`);
  });

  it("PreBakedISO: the ISO unchanged, fetched by the BMC, Provisioned at power-on", async () => {
    const name = "prebaked";
    const { bmc } = await provision(
      name,
      DELL,
      { mode: "VirtualMedia", bootMode: "UEFI", bootISO: `${images.url}/stock.iso` },
      { bootstrap: null },
    );
    const host = await waitForHost(ns, name, inState("Provisioned"), "Provisioned");
    expect(host.status?.boot).toBeUndefined();
    await bmc.mediaFetcher!.settled();
    expect(bmc.mediaFetcher!.fetches).toEqual([
      expect.objectContaining({ image: `${images.url}/stock.iso`, status: 206, iso9660: true }),
    ]);
  });

  it("iPXE: the firmware chains to the host's iPXE script, the inspection report folds into hardwareDetails, the target OS gets the bootstrap data", async () => {
    const name = "ipxe";
    const { bmc, uuid, bootstrap } = await provision(name, BLUEFIELD, {
      mode: "Network",
      bootMode: "UEFI",
      networkBootTarget: "UefiHttp",
      httpBootURI: `${images.url}/ipxe.efi`,
      targetImageURL: `${images.url}/flatcar.efi`,
      osFamily: "flatcar",
    });
    const waiting = await waitForHost(ns, name, step("AwaitInspection"), "AwaitInspection");
    expect(waiting.status?.state).toBe("Provisioning");
    expect(waiting.status?.boot?.delivery).toBe("NetworkBoot");
    expect(bmc.lastBoot).toMatchObject({ target: "UefiHttp", media: `${images.url}/ipxe.efi` });

    // What the iPXE binary's embedded script chains to.
    const script = await request(bootURL(base, BootPaths.ipxe(uuid)), boot.caCert);
    expect(script.status).toBe(200);
    const { image, args } = ipxeBoot(script.body.toString());
    expect(image).toBe(`${images.url}/flatcar.efi`);
    const reportURL = argValue(args, "beskar7.report")!;
    const configURL = argValue(args, "ignition.config.url")!;

    const report = {
      systemUUID: uuid,
      cpu: { count: 1, cores: 6, model: "Inspected CPU" },
      memoryMiB: 24 * 1024,
      disks: [{ name: "nvme0n1", sizeBytes: 512e9, type: "NVMe" }],
      nics: [{ mac: "aa:bb:cc:00:11:22", name: "eth0" }],
    };
    const posted = await request(reportURL, boot.caCert, {
      method: "POST",
      body: JSON.stringify(report),
    });
    expect(posted.status).toBe(202);
    const done = await waitForHost(ns, name, inState("Provisioned"), "Provisioned on the report");
    expect(done.status?.hardwareDetails).toMatchObject({
      systemUUID: uuid,
      memoryGiB: 24,
      cpu: { cores: 6, model: "Inspected CPU" },
      disks: [{ name: "nvme0n1", sizeBytes: 512e9, mediaType: "NVMe" }],
    });
    const config = await request(configURL, boot.caCert);
    expect(config.body.equals(bootstrap!)).toBe(true);
  });

  it.each([
    ["an ISO URL that 404s", "/missing.iso", "404"],
    ["an image that is not ISO9660", "/not-an-iso.iso", "ISO9660"],
  ])(
    "%s: the boot service refuses the patched ISO, so the host waits off with nothing inserted and its reason",
    async (_what, path, why) => {
      const name = `bad-${path.replace(/[^a-z]/g, "")}`;
      const { bmc } = await provision(name, DELL, {
        mode: "VirtualMedia",
        bootMode: "UEFI",
        bootISO: `${images.url}${path}`,
        osFamily: "talos",
      });
      const host = await waitForHost(
        ns,
        name,
        h => h.status?.conditions?.some(c => c.reason === "BootMediaUnavailable") ?? false,
        "BootMediaUnavailable",
      );
      const condition = host.status?.conditions?.find(c => c.type === "BootDelivered");
      expect(condition?.message).toContain(why);
      expect(host.status?.state).toBe("Provisioning");
      // Power-off and eject run before the probe (they change nothing the host boots); the
      // refused medium stops the rest: nothing inserted, never powered on, no override.
      expect(host.status?.provisioning?.completedSteps?.map(s => s.step)).toEqual([
        "PowerOff",
        "EjectMedia",
      ]);
      expect(bmc.actionsOf("insert")).toEqual([]);
      expect(bmc.actionsOf("reset").map(a => a.resetType)).not.toContain("On");
      expect(bmc.powerState()).toBe("Off");
      expect(bmc.actionsOf("boot")).toEqual([]);
      // Released, it deprovisions cleanly and ends the session.
      await releaseHost(ns, name);
      const free = await waitForHost(ns, name, inState("Available"), "Available after release");
      expect(free.status?.boot).toBeUndefined();
    },
  );

  it("a BMC that never fetches: powered on, no media GET, BootSignalTimeout", async () => {
    const name = "no-fetch";
    await provision(
      name,
      DELL,
      {
        mode: "VirtualMedia",
        bootMode: "UEFI",
        bootISO: `${images.url}/stock.iso`,
        osFamily: "flatcar",
      },
      { fetch: false },
    );
    const host = await waitForHost(
      ns,
      name,
      h => h.status?.conditions?.some(c => c.reason === "BootSignalTimeout") ?? false,
      "BootSignalTimeout",
      SIGNAL_TIMEOUT_MS + 60_000,
    );
    const condition = host.status?.conditions?.find(c => c.type === "BootDelivered");
    expect(condition?.message).toContain("the BMC may not have fetched the media");
  });
});
