import { afterEach, describe, expect, it, vi } from "vitest";
import {
  UnsupportedOperationError,
  VerificationError,
  createRedfishClient,
  type RedfishClient,
  type RedfishClientOptions,
} from "../../../redfish/index";
import { type MockBmc, type MockBmcOptions, type MockReply, errorBody, startMock } from "./helpers";

const DELL = "nvidia-libredfish_dell_poweredge-r750_idrac9-6.00.30";
const HPE = "nvidia-libredfish_hpe_proliant-dl385-gen10plus-v2_ilo5-2.72";
const LENOVO = "nvidia-libredfish_lenovo_thinksystem-sr670-v2_xcc-2.83";
const SUPERMICRO = "nvidia-libredfish_supermicro_sys-821ge-tnhr-x13_bmc-11.01";
const DMTF = "dmtf_public-rackmount1";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function setup(
  mockup: string,
  bmcOptions: MockBmcOptions = {},
  clientOptions: Partial<RedfishClientOptions> = {},
): Promise<{ bmc: MockBmc; client: RedfishClient }> {
  const bmc = await startMock({ mockup, ...bmcOptions });
  const client = createRedfishClient({
    address: bmc.url,
    credentials: { username: bmc.username, password: bmc.password },
    tls: { insecure: true },
    retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 2 },
    verifyPollIntervalMs: 5,
    verifyTimeoutMs: 200,
    gracefulShutdownTimeoutMs: 50,
    ...clientOptions,
  });
  cleanups.push(async () => {
    await client.close();
    await bmc.stop();
  });
  return { bmc, client };
}

function posts(bmc: MockBmc, suffix: string): unknown[] {
  return bmc.requests.filter(r => r.method === "POST" && r.path.endsWith(suffix)).map(r => r.body);
}

describe("power", () => {
  it("reads reset types from AllowableValues (Dell) and from ActionInfo (Supermicro)", async () => {
    const dell = await setup(DELL);
    expect(await dell.client.system().allowedResetTypes()).toContain("PowerCycle");
    const smc = await setup(SUPERMICRO);
    const types = await smc.client.system().allowedResetTypes();
    expect(types.length).toBeGreaterThan(0);
    expect(smc.bmc.log()).toContain("GET /redfish/v1/Systems/1/ResetActionInfo");
  });

  it("learns the reset types in the inventory: a reset after it sends no ActionInfo GET (Supermicro)", async () => {
    const smc = await setup(SUPERMICRO);
    const system = smc.client.system();
    await system.inventory();
    const actionInfoGets = () =>
      smc.bmc.requests.filter(r => r.method === "GET" && r.path.endsWith("/ResetActionInfo"))
        .length;
    expect(actionInfoGets()).toBe(1);
    await system.reset("ForceOff");
    expect(actionInfoGets()).toBe(1);
    expect(posts(smc.bmc, "/Actions/ComputerSystem.Reset")).toEqual([{ ResetType: "ForceOff" }]);
  });

  it("refuses a reset type the BMC does not offer (HPE has no PowerCycle)", async () => {
    const { client } = await setup(HPE);
    await expect(client.system().reset("PowerCycle")).rejects.toBeInstanceOf(
      UnsupportedOperationError,
    );
  });

  it("power cycle falls back to off + on where PowerCycle is not offered", async () => {
    const { bmc, client } = await setup(HPE);
    await client.system().powerCycle();
    expect(posts(bmc, "ComputerSystem.Reset")).toEqual([
      { ResetType: "ForceOff" },
      { ResetType: "On" },
    ]);
  });

  it("shuts down gracefully, then forces off when the OS ignores it", async () => {
    const { bmc, client } = await setup(DELL);
    // The OS ignores ACPI: GracefulShutdown is accepted but the state stays On.
    bmc.overrides.push(request =>
      request.method === "POST" &&
      (request.body as { ResetType?: string }).ResetType === "GracefulShutdown"
        ? { status: 204 }
        : undefined,
    );
    await client.system().powerOff();
    expect(posts(bmc, "ComputerSystem.Reset")).toEqual([
      { ResetType: "GracefulShutdown" },
      { ResetType: "ForceOff" },
    ]);
    expect(await client.system().powerState()).toBe("Off");
  });

  it("is a no-op when already in the wanted state, says so, and verifies power on", async () => {
    const { bmc, client } = await setup(DELL);
    expect(await client.system().powerOn()).toBe(false);
    expect(posts(bmc, "ComputerSystem.Reset")).toHaveLength(0);
    const from = bmc.requests.length;
    expect(await client.system().powerOff({ force: true })).toBe(true);
    // One read of the system told the power state and the reset types before the ForceOff.
    const during = bmc.requests.slice(from);
    const beforeReset = during.slice(
      0,
      during.findIndex(r => r.method === "POST"),
    );
    expect(beforeReset.map(r => r.method)).toEqual(["GET"]);
    expect(await client.system().powerOn()).toBe(true);
    expect(posts(bmc, "ComputerSystem.Reset")).toEqual([
      { ResetType: "ForceOff" },
      { ResetType: "On" },
    ]);
  });

  describe("a system read ahead (readAhead: a host being claimed)", () => {
    const SYSTEM = "/redfish/v1/Systems/System.Embedded.1";
    const systemGets = (bmc: MockBmc, from: number) =>
      bmc.requests.slice(from).filter(r => r.method === "GET" && r.path === SYSTEM).length;
    /** A Dell BMC and its system, resolved: what follows is the system's own requests. */
    const dellSystem = async () => {
      const { bmc, client } = await setup(DELL);
      const system = client.system();
      await system.resolve();
      return { bmc, system };
    };

    it("stands in for the power-off's own read: one GET, then the ForceOff", async () => {
      const { bmc, system } = await dellSystem();
      const from = bmc.requests.length;
      await system.readAhead();
      expect(await system.powerOff({ force: true })).toBe(true);
      const during = bmc.requests.slice(from);
      expect(during.slice(0, 2).map(r => `${r.method} ${r.path}`)).toEqual([
        `GET ${SYSTEM}`,
        `POST ${SYSTEM}/Actions/ComputerSystem.Reset`,
      ]);
    });

    it("is joined while under way: a power-off that starts during it sends no GET of its own", async () => {
      const { bmc, system } = await dellSystem();
      // The BMC takes 150 ms over each read of the system (the mockup's answer, late).
      const mockupAnswer = (server: MockBmc) =>
        (server as unknown as { get(key: string): MockReply }).get(SYSTEM.slice(1));
      bmc.overrides.push((request, server) =>
        request.method === "GET" && request.path === SYSTEM
          ? { ...mockupAnswer(server), delayMs: 150 }
          : undefined,
      );
      const from = bmc.requests.length;
      void system.readAhead();
      await new Promise(r => setTimeout(r, 20));
      expect(await system.powerOff({ force: true })).toBe(true);
      const during = bmc.requests.slice(from);
      const beforeReset = during.slice(
        0,
        during.findIndex(r => r.method === "POST"),
      );
      expect(beforeReset.map(r => r.method)).toEqual(["GET"]);
    });

    it("is used once, and not after a write, after 3 s, or when it failed", async () => {
      const { bmc, system } = await dellSystem();

      // Used once: the second power-off reads for itself.
      let from = bmc.requests.length;
      await system.readAhead();
      await system.powerOff({ force: true });
      await system.powerOn();
      from = bmc.requests.length;
      await system.powerOff({ force: true });
      expect(systemGets(bmc, from)).toBeGreaterThanOrEqual(2); // its read, then the verification
      const firstIsGet = bmc.requests[from];
      expect(`${firstIsGet?.method} ${firstIsGet?.path}`).toBe(`GET ${SYSTEM}`);

      // A write since (the power-on) voids it: the power-off reads the state afresh, sees On.
      await system.readAhead(); // reads Off
      await system.powerOn();
      from = bmc.requests.length;
      expect(await system.powerOff({ force: true })).toBe(true);
      expect(bmc.requests[from]?.method).toBe("GET");

      // Older than 3 s: read again.
      await system.powerOn();
      await system.readAhead();
      const now = Date.now();
      const clock = vi.spyOn(Date, "now").mockReturnValue(now + 3_500);
      try {
        from = bmc.requests.length;
        await system.powerOff({ force: true });
        expect(bmc.requests[from]?.method).toBe("GET");
      } finally {
        clock.mockRestore();
      }

      // A read ahead that failed: the power-off reads for itself.
      await system.powerOn();
      bmc.overrides.push(request =>
        request.method === "GET" && request.path === SYSTEM
          ? { status: 500, body: errorBody("Base.1.8.InternalError", "busy") }
          : undefined,
      );
      await system.readAhead(); // never rejects
      bmc.overrides.pop();
      from = bmc.requests.length;
      expect(await system.powerOff({ force: true })).toBe(true);
      expect(bmc.requests[from]?.method).toBe("GET");
    });
  });

  it("reports a power change that never shows as VerificationError", async () => {
    const { bmc, client } = await setup(DELL);
    bmc.overrides.push(request => (request.method === "POST" ? { status: 204 } : undefined));
    await expect(client.system().powerOff({ force: true })).rejects.toBeInstanceOf(
      VerificationError,
    );
  });
});

describe("boot override", () => {
  it("sets a one-time Pxe override in UEFI mode and reads it back (Dell)", async () => {
    const { bmc, client } = await setup(DELL);
    await client.system().resolve();
    const before = bmc.requests.length;
    const result = await client.system().setBootOverride({ target: "Pxe", mode: "UEFI" });
    expect(result.state.enabled).toBe("Once");
    expect(result.state.target).toBe("Pxe");
    // One read of the system before the PATCH (it tells the targets and where to write), one
    // after it (the read-back).
    expect(bmc.requests.slice(before).map(r => r.method)).toEqual(["GET", "PATCH", "GET"]);
    const patch = bmc.requests.find(r => r.method === "PATCH");
    expect(patch?.body).toEqual({
      Boot: {
        BootSourceOverrideTarget: "Pxe",
        BootSourceOverrideEnabled: "Once",
        BootSourceOverrideMode: "UEFI",
      },
    });
  });

  it("falls back from Continuous to Once where the BMC offers no Continuous (Lenovo)", async () => {
    const { bmc, client } = await setup(LENOVO);
    const result = await client.system().setBootOverride({ target: "Hdd", persistent: true });
    expect(result.persistenceFellBackToOnce).toBe(true);
    expect(result.state.enabled).toBe("Once");
    // Lenovo's settings object (Pending) holds only BootOrder: the override goes to the system.
    expect(bmc.requests.filter(r => r.method === "PATCH").map(r => r.path)).toEqual([
      "/redfish/v1/Systems/1",
    ]);
  });

  it("sends UsbCd for a virtual CD on Supermicro and keeps Mode in the PATCH", async () => {
    const { bmc, client } = await setup(SUPERMICRO);
    const result = await client.system().setBootOverride({ target: "Cd" });
    expect(result.targetSent).toBe("UsbCd");
    const patch = bmc.requests.find(r => r.method === "PATCH")?.body as {
      Boot: Record<string, unknown>;
    };
    expect(patch.Boot.BootSourceOverrideMode).toBe("UEFI");
    expect(patch.Boot.BootSourceOverrideEnabled).toBe("Once");
  });

  it("rejects a target the BMC does not list (UefiHttp on Lenovo)", async () => {
    const { client } = await setup(LENOVO);
    const error = await client
      .system()
      .setBootOverride({ target: "UefiHttp", httpBootUri: "http://x/boot.efi" })
      .catch(e => e);
    expect(error).toBeInstanceOf(UnsupportedOperationError);
    expect(error.message).toContain("Pxe");
  });

  it("writes the override to a settings object that carries it (AMI SD style)", async () => {
    const { bmc, client } = await setup(DELL);
    const systemPath = "/redfish/v1/Systems/System.Embedded.1";
    const system = bmc.resource(systemPath) ?? {};
    bmc.setResource(systemPath, {
      ...system,
      "@Redfish.Settings": { SettingsObject: { "@odata.id": `${systemPath}/SD` } },
    });
    bmc.setResource(`${systemPath}/SD`, {
      "@odata.id": `${systemPath}/SD`,
      Boot: { BootSourceOverrideTarget: "None", BootSourceOverrideEnabled: "Disabled" },
    });
    const result = await client.system().setBootOverride({ target: "Pxe" });
    expect(result.state.target).toBe("Pxe");
    expect(bmc.requests.filter(r => r.method === "PATCH").map(r => r.path)).toEqual([
      `${systemPath}/SD`,
    ]);
  });

  it("writes HttpBootUri with UefiHttp where the Boot object has it (BlueField)", async () => {
    const { bmc, client } = await setup("nvidia-libredfish_nvidia_bluefield3-dpu-bmc_openbmc");
    const result = await client
      .system()
      .setBootOverride({ target: "UefiHttp", httpBootUri: "http://10.0.0.1/boot.efi" });
    expect(result.state.httpBootUri).toBe("http://10.0.0.1/boot.efi");
    const patch = bmc.requests.find(r => r.method === "PATCH")?.body as {
      Boot: Record<string, unknown>;
    };
    expect(patch.Boot.HttpBootUri).toBe("http://10.0.0.1/boot.efi");
    // Its settings object lists no UefiHttp, so the override goes to the system itself.
    expect(bmc.requests.filter(r => r.method === "PATCH").map(r => r.path)).toEqual([
      "/redfish/v1/Systems/Bluefield",
    ]);
  });

  it("retries HPE's UnableToModifyDuringSystemPOST and clears keeping a real target", async () => {
    const { bmc, client } = await setup(HPE);
    let rejected = 0;
    bmc.overrides.push(request => {
      if (request.method !== "PATCH" || rejected >= 1) return undefined;
      rejected += 1;
      return { status: 400, body: errorBody("iLO.2.14.UnableToModifyDuringSystemPOST", "in POST") };
    });
    await client.system().setBootOverride({ target: "Pxe" });
    expect(rejected).toBe(1);
    const state = await client.system().clearBootOverride();
    expect(state.enabled).toBe("Disabled");
    const clear = bmc.requests.filter(r => r.method === "PATCH").at(-1)?.body as {
      Boot: Record<string, unknown>;
    };
    expect(clear.Boot.BootSourceOverrideTarget).not.toBe("None");
  });

  it("throws VerificationError when the override does not read back", async () => {
    const { bmc, client } = await setup(DELL);
    bmc.overrides.push(request => (request.method === "PATCH" ? { status: 204 } : undefined));
    await expect(client.system().setBootOverride({ target: "Pxe" })).rejects.toBeInstanceOf(
      VerificationError,
    );
  });
});

describe("virtual media", () => {
  it("lists Dell slots under Systems and Managers", async () => {
    const { client } = await setup(DELL);
    const slots = await client.system().virtualMedia();
    expect(slots.map(slot => slot.location).sort()).toEqual([
      "Managers",
      "Managers",
      "Systems",
      "Systems",
    ]);
    expect(slots.every(slot => !slot.inserted)).toBe(true);
  });

  it("inserts an ISO and a config image at once into separate slots (HPE), ejects with {}", async () => {
    const { bmc, client } = await setup(HPE);
    const system = client.system();
    const iso = await system.insertMedia({ image: "http://10.0.0.1/boot.iso", kind: "cd" });
    const cfg = await system.insertMedia({ image: "http://10.0.0.1/cfg.img", kind: "usb" });
    expect(iso.slot.mediaTypes).toContain("CD");
    expect(cfg.slot.mediaTypes).toContain("USBStick");
    expect(iso.slot.path).not.toBe(cfg.slot.path);
    expect(iso.parametersSent).toEqual(["Image"]);
    expect(iso.alreadyInserted).toBeUndefined();
    // Again: found in its slot, nothing sent.
    const postsBefore = bmc.requests.filter(r => r.method === "POST").length;
    const again = await system.insertMedia({ image: "http://10.0.0.1/boot.iso", kind: "cd" });
    expect(again).toMatchObject({ alreadyInserted: true, parametersSent: [] });
    expect(again.slot.path).toBe(iso.slot.path);
    expect(bmc.requests.filter(r => r.method === "POST")).toHaveLength(postsBefore);
    const ejected = await system.ejectMedia();
    expect(ejected).toHaveLength(2);
    expect(posts(bmc, "VirtualMedia.EjectMedia")).toEqual([{}, {}]);
  });

  it("adds TransferProtocolType, then credentials, when the BMC asks (AMI-style errors)", async () => {
    const { bmc, client } = await setup(HPE);
    bmc.overrides.push(request => {
      if (!request.path.endsWith("VirtualMedia.InsertMedia")) return undefined;
      const body = request.body as Record<string, unknown>;
      if (!body.TransferProtocolType) {
        return {
          status: 400,
          body: errorBody(
            "Base.1.5.ActionParameterMissing",
            "requires the parameter TransferProtocolType",
            {
              MessageArgs: ["/x", "TransferProtocolType"],
            },
          ),
        };
      }
      if (!body.UserName) {
        return {
          status: 400,
          body: errorBody("Base.1.12.ActionParameterMissing", "requires the parameter UserName", {
            MessageArgs: ["/x", "UserName"],
          }),
        };
      }
      return undefined;
    });
    const result = await client.system().insertMedia({
      image: "https://10.0.0.1/boot.iso",
      imageCredentials: { username: "web", password: "img-pass" },
    });
    expect(result.parametersSent).toEqual([
      "Image",
      "TransferProtocolType",
      "UserName",
      "Password",
    ]);
    const bodies = posts(bmc, "VirtualMedia.InsertMedia") as Record<string, unknown>[];
    expect(bodies).toHaveLength(3);
    expect(bodies[2]?.TransferProtocolType).toBe("HTTPS");
  });

  it("fills required ActionInfo parameters up front (Supermicro X13)", async () => {
    const { bmc, client } = await setup(SUPERMICRO);
    const result = await client.system().insertMedia({ image: "http://10.0.0.1/boot.iso" });
    expect(result.slot.inserted).toBe(true);
    expect(bmc.log().some(line => line.includes("InsertMediaActionInfo"))).toBe(true);
    expect(posts(bmc, "VirtualMedia.InsertMedia")).toHaveLength(1);
  });

  it("drops parameters the BMC rejects (Supermicro X11: Inserted/WriteProtected)", async () => {
    const { bmc, client } = await setup(HPE);
    bmc.overrides.push(request => {
      if (!request.path.endsWith("VirtualMedia.InsertMedia")) return undefined;
      const body = request.body as Record<string, unknown>;
      if ("WriteProtected" in body) {
        return {
          status: 400,
          body: errorBody(
            "Base.1.4.GeneralError",
            "WriteProtected is not in the list of valid properties for the resource.",
          ),
        };
      }
      return undefined;
    });
    const result = await client
      .system()
      .insertMedia({ image: "http://10.0.0.1/rw.img", kind: "usb", writeProtected: false });
    expect(result.parametersSent).toEqual(["Image"]);
    expect(posts(bmc, "VirtualMedia.InsertMedia")).toEqual([
      { Image: "http://10.0.0.1/rw.img", WriteProtected: false },
      { Image: "http://10.0.0.1/rw.img" },
    ]);
  });

  it("moves to the next slot when one refuses the image (Cisco vKVM devices)", async () => {
    const { bmc, client } = await setup(DELL);
    let refused = "";
    bmc.overrides.push(request => {
      if (!request.path.endsWith("VirtualMedia.InsertMedia") || refused) return undefined;
      refused = request.path;
      return { status: 400, body: errorBody("Base.1.8.GeneralError", "internal device") };
    });
    const result = await client.system().insertMedia({ image: "http://10.0.0.1/boot.iso" });
    expect(refused).not.toBe("");
    expect(refused.startsWith(result.slot.path)).toBe(false);
  });

  it("PATCHes EXT slots on Lenovo, which have no InsertMedia action", async () => {
    const { bmc, client } = await setup(LENOVO, { requireIfMatch: true });
    const result = await client.system().insertMedia({ image: "http://10.0.0.1/boot.iso" });
    expect(result.slot.id).toMatch(/^EXT/);
    const patch = bmc.requests.find(r => r.method === "PATCH");
    expect(patch?.body).toEqual({
      Image: "http://10.0.0.1/boot.iso",
      Inserted: true,
      WriteProtected: true,
    });
    expect(patch?.headers["if-match"]).toBeDefined();
    await client.system().ejectMedia();
    expect(bmc.resource(result.slot.path)?.Inserted).toBe(false);
  });

  it('treats Image "None" and NotConnected-with-image as empty', async () => {
    const { bmc, client } = await setup(HPE);
    const none = { ...bmc.resource("/redfish/v1/Managers/1/VirtualMedia/2"), Image: "None" };
    bmc.setResource("/redfish/v1/Managers/1/VirtualMedia/2", { ...none, Inserted: undefined });
    const stale = bmc.resource("/redfish/v1/Managers/1/VirtualMedia/1") ?? {};
    bmc.setResource("/redfish/v1/Managers/1/VirtualMedia/1", {
      ...stale,
      Image: "http://old/img.iso",
      Inserted: false,
      ConnectedVia: "NotConnected",
    });
    const slots = await client.system().virtualMedia();
    expect(slots.every(slot => !slot.inserted && slot.image === undefined)).toBe(true);
  });

  it("retries a Dell insert that fails with 5xx right after an eject", async () => {
    const { bmc, client } = await setup(DELL);
    let failed = false;
    bmc.overrides.push(request => {
      if (!request.path.endsWith("VirtualMedia.InsertMedia") || failed) return undefined;
      failed = true;
      return { status: 500, body: errorBody("IDRAC.2.8.VRM0012", "busy") };
    });
    const result = await client.system().insertMedia({ image: "http://10.0.0.1/boot.iso" });
    expect(result.slot.location).toBe("Systems");
    expect(posts(bmc, "VirtualMedia.InsertMedia")).toHaveLength(2);
  });
});

describe("BIOS", () => {
  it("writes attributes to the settings object with an apply time (Dell)", async () => {
    const { bmc, client } = await setup(DELL);
    const result = await client.system().setBiosAttributes({ BootMode: "Uefi" });
    expect(result.writtenTo).toBe("/redfish/v1/Systems/System.Embedded.1/Bios/Settings");
    expect(result.applyTime).toBe("OnReset");
    const patch = bmc.requests.find(r => r.method === "PATCH");
    expect(patch?.body).toEqual({
      Attributes: { BootMode: "Uefi" },
      "@Redfish.SettingsApplyTime": { ApplyTime: "OnReset" },
    });
    const bios = await client.system().bios();
    expect(bios.pending).toEqual(bios.attributes.BootMode === "Uefi" ? {} : { BootMode: "Uefi" });
  });
});

describe("enrollment", () => {
  it("enrolls within a small, documented number of requests", async () => {
    const { client } = await setup(DMTF);
    const inventory = await client.system().inventory();
    expect(inventory.manufacturer).toBe("Contoso");
    const stats = client.stats();
    expect(stats.byMethod.POST).toBe(1);
    expect(stats.total).toBeLessThanOrEqual(16);
  });
});
