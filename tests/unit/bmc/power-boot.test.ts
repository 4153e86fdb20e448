import { describe, expect, it } from "vitest";

import { call, messageIds, startBmc } from "./helpers";

const reset = "Actions/ComputerSystem.Reset";

describe("test BMC: power", () => {
  it("changes PowerState through ComputerSystem.Reset and records each action", async () => {
    const bmc = await startBmc("dell", { powerState: "Off" });
    const sys = bmc.systems[0] ?? "";
    expect((await call(bmc, "GET", sys)).json?.PowerState).toBe("Off");
    const on = await call(bmc, "POST", `${sys}/${reset}`, { body: { ResetType: "On" } });
    expect(on.status).toBe(204);
    expect(bmc.powerState()).toBe("On");
    expect((await call(bmc, "GET", sys)).json?.PowerState).toBe("On");
    await call(bmc, "POST", `${sys}/${reset}`, { body: { ResetType: "ForceOff" } });
    expect(bmc.powerState()).toBe("Off");
    expect(bmc.actionsOf("reset").map(a => a.resetType)).toEqual(["On", "ForceOff"]);
    // The chassis the system links to follows its power.
    const chassis = await call(bmc, "GET", "/redfish/v1/Chassis/System.Embedded.1");
    expect(chassis.json?.PowerState).toBe("Off");
  });

  it("accepts only the ResetTypes the system advertises", async () => {
    const hpe = await startBmc("hpe");
    const res = await call(hpe, "POST", "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset", {
      body: { ResetType: "PowerCycle" },
    });
    expect(res.status).toBe(400);
    expect(messageIds(res.json)).toEqual(["Base.1.4.ActionParameterValueNotInList"]);
    expect(hpe.actionsOf("reset")).toHaveLength(0);
    const missing = await call(hpe, "POST", "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset", {
      body: {},
    });
    expect(messageIds(missing.json)).toEqual(["Base.1.4.ActionParameterMissing"]);
    // Supermicro lists its reset types only in the ActionInfo, PowerCycle included.
    const smc = await startBmc("supermicro");
    const cycle = await call(smc, "POST", "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset", {
      body: { ResetType: "PowerCycle" },
    });
    expect(cycle.status).toBe(204);
  });

  it("answers HPE actions with 200 and a Success message", async () => {
    const hpe = await startBmc("hpe", { powerState: "Off" });
    const res = await call(hpe, "POST", "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset", {
      body: { ResetType: "On" },
    });
    expect(res.status).toBe(200);
    expect(messageIds(res.json)).toEqual(["Base.1.4.Success"]);
  });

  it("returns 404 for action targets the capture does not have", async () => {
    const bmc = await startBmc("dmtf");
    const res = await call(
      bmc,
      "POST",
      "/redfish/v1/Systems/437XR1138R2/Actions/ComputerSystem.Explode",
      {
        body: {},
      },
    );
    expect(res.status).toBe(404);
  });
});

describe("test BMC: boot override", () => {
  it("validates targets against AllowableValues and keeps the change", async () => {
    const bmc = await startBmc("dell");
    const sys = "/redfish/v1/Systems/System.Embedded.1";
    const bad = await call(bmc, "PATCH", sys, {
      body: { Boot: { BootSourceOverrideTarget: "Usb" } },
    });
    expect(bad.status).toBe(400);
    expect(messageIds(bad.json)).toEqual(["Base.1.12.PropertyValueNotInList"]);
    const unknown = await call(bmc, "PATCH", sys, {
      body: { Boot: { HttpBootUri: "http://x/boot.efi" } },
    });
    expect(messageIds(unknown.json)).toEqual(["Base.1.12.PropertyUnknown"]);
    const before = (await call(bmc, "GET", sys)).headers.etag;
    const ok = await call(bmc, "PATCH", sys, {
      body: { Boot: { BootSourceOverrideTarget: "Cd", BootSourceOverrideEnabled: "Once" } },
    });
    expect(ok.status).toBe(204);
    const after = await call(bmc, "GET", sys);
    expect(after.json?.Boot).toMatchObject({
      BootSourceOverrideTarget: "Cd",
      BootSourceOverrideEnabled: "Once",
    });
    expect(after.headers.etag).not.toBe(before);
    expect(bmc.actionsOf("boot")).toEqual([
      expect.objectContaining({
        system: sys,
        patch: { BootSourceOverrideTarget: "Cd", BootSourceOverrideEnabled: "Once" },
      }),
    ]);
  });

  it("Lenovo: 428 without If-Match, 412 on a stale ETag, success with the current one", async () => {
    const bmc = await startBmc("lenovo");
    const sys = "/redfish/v1/Systems/1";
    const patch = { Boot: { BootSourceOverrideTarget: "Pxe", BootSourceOverrideEnabled: "Once" } };
    const noMatch = await call(bmc, "PATCH", sys, { body: patch });
    expect(noMatch.status).toBe(428);
    expect(messageIds(noMatch.json)).toEqual(["Base.1.12.PreconditionRequired"]);
    const stale = await call(bmc, "PATCH", sys, {
      body: patch,
      headers: { "If-Match": '"deadbeef"' },
    });
    expect(stale.status).toBe(412);
    const etag = String((await call(bmc, "GET", sys)).headers.etag);
    const ok = await call(bmc, "PATCH", sys, { body: patch, headers: { "If-Match": etag } });
    expect(ok.status).toBe(204);
    // The ETag changed, so the old one is now stale.
    const again = await call(bmc, "PATCH", sys, { body: patch, headers: { "If-Match": etag } });
    expect(again.status).toBe(412);
    // Lenovo offers no Continuous.
    const fresh = String((await call(bmc, "GET", sys)).headers.etag);
    const continuous = await call(bmc, "PATCH", sys, {
      body: { Boot: { BootSourceOverrideEnabled: "Continuous" } },
      headers: { "If-Match": fresh },
    });
    expect(continuous.status).toBe(400);
  });

  it("HPE: accepts its weak ETag with or without W/, rejects Enabled with target None", async () => {
    const bmc = await startBmc("hpe");
    const sys = "/redfish/v1/Systems/1";
    const etag = String((await call(bmc, "GET", sys)).headers.etag);
    const strong = etag.replace(/^W\//, "");
    const disable = await call(bmc, "PATCH", sys, {
      body: { Boot: { BootSourceOverrideEnabled: "Disabled", BootSourceOverrideTarget: "None" } },
      headers: { "If-Match": strong },
    });
    expect(disable.status).toBe(400);
    const ok = await call(bmc, "PATCH", sys, {
      body: { Boot: { BootSourceOverrideEnabled: "Once", BootSourceOverrideTarget: "Cd" } },
      headers: { "If-Match": strong },
    });
    expect(ok.status).toBe(200);
  });

  it("HPE: refuses boot changes during POST right after power-on, then accepts them", async () => {
    const bmc = await startBmc("hpe", { powerState: "Off", profile: { postWindowMs: 200 } });
    const sys = "/redfish/v1/Systems/1";
    await call(bmc, "POST", `${sys}/${reset}`, { body: { ResetType: "On" } });
    const patch = { Boot: { BootSourceOverrideEnabled: "Once", BootSourceOverrideTarget: "Pxe" } };
    const during = await call(bmc, "PATCH", sys, { body: patch });
    expect(during.status).toBe(400);
    expect(during.json).toEqual({
      error: {
        code: "iLO.0.10.ExtendedInfo",
        message: "See @Message.ExtendedInfo for more information.",
        "@Message.ExtendedInfo": [
          {
            MessageId: "iLO.2.15.UnableToModifyDuringSystemPOST",
            MessageArgs: ["BootSourceOverrideEnabled"],
          },
        ],
      },
    });
    await new Promise(r => setTimeout(r, 250));
    expect((await call(bmc, "PATCH", sys, { body: patch })).status).toBe(200);
  });

  it("HPE: UefiTargetBootSourceOverride must be one of the listed device paths", async () => {
    const bmc = await startBmc("hpe");
    const sys = "/redfish/v1/Systems/1";
    const bad = await call(bmc, "PATCH", sys, {
      body: {
        Boot: {
          BootSourceOverrideTarget: "UefiTarget",
          BootSourceOverrideEnabled: "Once",
          UefiTargetBootSourceOverride: "HD(9)",
        },
      },
    });
    expect(bad.status).toBe(400);
  });

  it("Supermicro: requires BootSourceOverrideEnabled and boots a virtual CD only via UsbCd", async () => {
    const bmc = await startBmc("supermicro", { powerState: "Off" });
    const sys = "/redfish/v1/Systems/1";
    const etag = () => call(bmc, "GET", sys).then(r => String(r.headers.etag));
    const noEnabled = await call(bmc, "PATCH", sys, {
      body: { Boot: { BootSourceOverrideTarget: "UsbCd" } },
    });
    expect(noEnabled.status).toBe(400);
    expect(messageIds(noEnabled.json)).toEqual(["Base.1.10.PropertyMissing"]);
    const slot = "/redfish/v1/Managers/1/VirtualMedia/VirtualMedia1";
    await call(bmc, "POST", `${slot}/Actions/VirtualMedia.InsertMedia`, {
      body: { Image: "http://127.0.0.1/boot.iso" },
    });
    await call(bmc, "PATCH", sys, {
      body: { Boot: { BootSourceOverrideTarget: "Cd", BootSourceOverrideEnabled: "Once" } },
      headers: { "If-Match": await etag() },
    });
    await call(bmc, "POST", `${sys}/${reset}`, { body: { ResetType: "On" } });
    expect(bmc.lastBoot?.target).toBe("Cd");
    expect(bmc.lastBoot?.media).toBeUndefined();
    await call(bmc, "POST", `${sys}/${reset}`, { body: { ResetType: "ForceOff" } });
    await call(bmc, "PATCH", sys, {
      body: { Boot: { BootSourceOverrideTarget: "UsbCd", BootSourceOverrideEnabled: "Once" } },
    });
    await call(bmc, "POST", `${sys}/${reset}`, { body: { ResetType: "On" } });
    expect(bmc.lastBoot).toMatchObject({ target: "UsbCd", media: "http://127.0.0.1/boot.iso" });
    // A Once override is consumed by the boot that used it.
    expect(bmc.bootOverride().BootSourceOverrideEnabled).toBe("Disabled");
  });

  it("AMI-style: a Boot PATCH must carry Mode, Enabled and Target together", async () => {
    const bmc = await startBmc("dmtf", { profile: { requireFullBootObject: true } });
    const sys = "/redfish/v1/Systems/437XR1138R2";
    const partial = await call(bmc, "PATCH", sys, {
      body: { Boot: { BootSourceOverrideTarget: "Pxe" } },
    });
    expect(partial.status).toBe(400);
    expect(messageIds(partial.json)).toEqual([
      "Base.1.5.PropertyMissing",
      "Base.1.5.PropertyMissing",
    ]);
    const full = await call(bmc, "PATCH", sys, {
      body: {
        Boot: {
          BootSourceOverrideTarget: "Pxe",
          BootSourceOverrideEnabled: "Once",
          BootSourceOverrideMode: "UEFI",
        },
      },
    });
    expect(full.status).toBe(204);
  });

  it("BlueField: HttpBootUri with UefiHttp boots that URI; the settings object stages changes until boot", async () => {
    const bmc = await startBmc("bluefield", { powerState: "Off" });
    const sys = "/redfish/v1/Systems/Bluefield";
    const ok = await call(bmc, "PATCH", sys, {
      body: {
        Boot: {
          BootSourceOverrideTarget: "UefiHttp",
          BootSourceOverrideEnabled: "Once",
          HttpBootUri: "http://127.0.0.1/boot.efi",
        },
      },
    });
    expect(ok.status).toBe(204);
    await call(bmc, "POST", `${sys}/${reset}`, { body: { ResetType: "On" } });
    expect(bmc.lastBoot).toMatchObject({ target: "UefiHttp", media: "http://127.0.0.1/boot.efi" });
    const staged = await call(bmc, "PATCH", `${sys}/Settings`, {
      body: { Boot: { BootSourceOverrideTarget: "Pxe", BootSourceOverrideEnabled: "Once" } },
    });
    expect(staged.status).toBe(204);
    expect(bmc.bootOverride().BootSourceOverrideTarget).toBe("UefiHttp");
    expect((await call(bmc, "GET", `${sys}/Settings`)).json?.Boot).toMatchObject({
      BootSourceOverrideTarget: "Pxe",
    });
    await call(bmc, "POST", `${sys}/${reset}`, { body: { ResetType: "ForceRestart" } });
    expect(bmc.lastBoot).toMatchObject({ target: "Pxe" });
  });
});

describe("test BMC: BIOS settings", () => {
  it("stages attributes in the settings object and applies them at the next boot", async () => {
    const bmc = await startBmc("dell", { powerState: "On" });
    const settings = "/redfish/v1/Systems/System.Embedded.1/Bios/Settings";
    const attrs = bmc.biosAttributes();
    const [name, value] = Object.entries(attrs).find(([, v]) => typeof v === "string") ?? ["", ""];
    const unknown = await call(bmc, "PATCH", settings, {
      body: { Attributes: { NoSuchAttribute: "x" } },
    });
    expect(unknown.status).toBe(400);
    const wrongType = await call(bmc, "PATCH", settings, { body: { Attributes: { [name]: 12 } } });
    expect(messageIds(wrongType.json)).toEqual(["Base.1.12.PropertyValueTypeError"]);
    const badTime = await call(bmc, "PATCH", settings, {
      body: {
        Attributes: { [name]: `${String(value)}-new` },
        "@Redfish.SettingsApplyTime": { ApplyTime: "Immediate" },
      },
    });
    expect(badTime.status).toBe(400);
    const ok = await call(bmc, "PATCH", settings, {
      body: {
        Attributes: { [name]: `${String(value)}-new` },
        "@Redfish.SettingsApplyTime": { ApplyTime: "OnReset" },
      },
    });
    expect(ok.status).toBe(204);
    expect(bmc.biosPending()).toEqual({ [name]: `${String(value)}-new` });
    expect((await call(bmc, "GET", settings)).json?.Attributes).toMatchObject({
      [name]: `${String(value)}-new`,
    });
    expect(bmc.biosAttributes()[name]).toBe(value);
    await call(bmc, "POST", "/redfish/v1/Systems/System.Embedded.1/Actions/ComputerSystem.Reset", {
      body: { ResetType: "ForceRestart" },
    });
    expect(bmc.biosAttributes()[name]).toBe(`${String(value)}-new`);
    expect(bmc.biosPending()).toEqual({});
  });

  it("refuses PATCH on read-only resources with 405", async () => {
    const bmc = await startBmc("hpe");
    const res = await call(bmc, "PATCH", "/redfish/v1/Managers/1", { body: { Name: "x" } });
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe("GET, HEAD");
  });
});
