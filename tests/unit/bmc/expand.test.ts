import { describe, expect, it } from "vitest";

import { request } from "../../../lab/bmc/http";
import { call, messageIds, startBmc } from "./helpers";

type Body = Record<string, unknown>;
const asBody = (value: unknown): Body => (value ?? {}) as Body;
const list = (value: unknown): Body[] => (Array.isArray(value) ? (value as Body[]) : []);
/** A bare reference object, as a plain GET shows a hyperlink. */
const isLink = (value: unknown): boolean =>
  typeof value === "object" &&
  value !== null &&
  Object.keys(value).length === 1 &&
  "@odata.id" in value;

describe("test BMC: $expand levels", () => {
  it("expands collection members at level 1 and their hyperlinks only from level 2", async () => {
    // Lenovo XCC advertises MaxLevels 2.
    const bmc = await startBmc("lenovo");
    const storage = "/redfish/v1/Systems/1/Storage";
    const one = await call(bmc, "GET", `${storage}?$expand=.($levels=1)`);
    expect(one.status).toBe(200);
    const oneMembers = list(one.json?.Members);
    expect(oneMembers.map(m => m.Id)).toEqual(["M.2", "Direct_Attached_NVMe"]);
    expect(list(oneMembers[0]?.Drives).every(isLink)).toBe(true);

    const two = await call(bmc, "GET", `${storage}?$expand=.($levels=2)`);
    expect(two.status).toBe(200);
    const twoMembers = list(two.json?.Members);
    const drives = twoMembers.flatMap(m => list(m.Drives));
    expect(drives.map(d => d.Id)).toEqual([
      "Drive.M.2_Bay_0",
      "Drive.M.2_Bay_1",
      "Drive.Bay_0",
      "Drive.Bay_1",
    ]);
    expect(drives.every(d => typeof d.CapacityBytes === "number")).toBe(true);
    // Level 2 is the last: the Volumes collection is inlined, its members stay links.
    const volumes = asBody(twoMembers[0]?.Volumes);
    expect(volumes["@odata.type"]).toMatch(/VolumeCollection/);
    expect(list(volumes.Members).every(isLink)).toBe(true);
    // `.` leaves hyperlinks under Links alone, at every level.
    expect(list(asBody(twoMembers[0]?.Links).Enclosures).every(isLink)).toBe(true);
    expect(isLink(asBody(drives[0]?.Links).Chassis)).toBe(true);
  });

  it("defaults to one level without $levels and keeps links that resolve to nothing", async () => {
    const bmc = await startBmc("dmtf");
    const log = "/redfish/v1/Systems/437XR1138R2/LogServices/Log1";
    const res = await call(bmc, "GET", `${log}?$expand=.`);
    expect(res.status).toBe(200);
    // The capture links Entries but does not contain them.
    expect(res.json?.Entries).toEqual({ "@odata.id": `${log}/Entries` });
    const systems = await call(bmc, "GET", "/redfish/v1/Systems?$expand=.");
    expect(list(systems.json?.Members)[0]?.SerialNumber).toBe("437XR1138R2");
    expect(isLink(list(systems.json?.Members)[0]?.Processors)).toBe(true);
  });

  it("counts an expanded request once and logs its query", async () => {
    const bmc = await startBmc("lenovo");
    await call(bmc, "GET", "/redfish/v1/Systems/1/Storage?$expand=.($levels=2)");
    expect(bmc.requests.total).toBe(1);
    expect(bmc.requests.snapshot()).toEqual({ "GET /redfish/v1/Systems/1/Storage": 1 });
    expect(bmc.requests.recent.at(-1)).toEqual({
      method: "GET",
      path: "/redfish/v1/Systems/1/Storage",
      query: "$expand=.($levels=2)",
      status: 200,
    });
  });
});

describe("test BMC: $expand options", () => {
  const system = "/redfish/v1/Systems/437XR1138R2";

  it("`.` expands hyperlinks outside Links, `~` only those under Links, `*` both", async () => {
    const bmc = await startBmc("dmtf");
    const dot = asBody((await call(bmc, "GET", `${system}?$expand=.($levels=1)`)).json);
    expect(asBody(dot.Processors)["@odata.type"]).toMatch(/ProcessorCollection/);
    expect(list(asBody(dot.Processors).Members).every(isLink)).toBe(true);
    expect(list(asBody(dot.Links).ManagedBy).every(isLink)).toBe(true);

    const tilde = asBody((await call(bmc, "GET", `${system}?$expand=~($levels=1)`)).json);
    expect(isLink(tilde.Processors)).toBe(true);
    expect(list(asBody(tilde.Links).ManagedBy)[0]?.FirmwareVersion).toBe("1.45.455b66-rev4");

    const all = asBody((await call(bmc, "GET", `${system}?$expand=*($levels=1)`)).json);
    expect(asBody(all.Processors)["@odata.type"]).toMatch(/ProcessorCollection/);
    expect(list(asBody(all.Links).ManagedBy)[0]?.FirmwareVersion).toBe("1.45.455b66-rev4");
  });

  it("never inlines a resource inside itself", async () => {
    const bmc = await startBmc("dmtf");
    // System → Links.Chassis → chassis → Links.ComputerSystems → the system again.
    const res = await call(bmc, "GET", `${system}?$expand=~($levels=6)`);
    expect(res.status).toBe(200);
    const chassis = list(asBody(res.json?.Links).Chassis)[0];
    expect(chassis?.Id).toBe("1U");
    expect(list(asBody(chassis?.Links).ComputerSystems)).toEqual([{ "@odata.id": system }]);
    // The manager is reached twice on different paths; each is inlined where it is not an ancestor.
    expect(list(asBody(chassis?.Links).ManagedBy)[0]?.Id).toBe("BMC");
    expect(list(asBody(res.json?.Links).ManagedBy)[0]?.Id).toBe("BMC");
  });

  it("answers 400 QueryParameterOutOfRange for $levels above the advertised MaxLevels", async () => {
    const dell = await startBmc("dell"); // MaxLevels 1
    const res = await call(dell, "GET", "/redfish/v1/Systems?$expand=.($levels=2)");
    expect(res.status).toBe(400);
    expect(messageIds(res.json)).toEqual(["Base.1.12.QueryParameterOutOfRange"]);
    const info = list(asBody(res.json?.error)["@Message.ExtendedInfo"])[0];
    expect(info?.MessageArgs).toEqual(["2", "$levels", "1 to 1"]);
    expect((await call(dell, "GET", "/redfish/v1/Systems?$expand=.($levels=0)")).status).toBe(400);
    const lenovo = await startBmc("lenovo"); // MaxLevels 2
    expect((await call(lenovo, "GET", "/redfish/v1/Systems?$expand=.($levels=2)")).status).toBe(
      200,
    );
    expect((await call(lenovo, "GET", "/redfish/v1/Systems?$expand=.($levels=3)")).status).toBe(
      400,
    );
  });

  it("answers 400 for an option the root marks unsupported (HPE: ExpandAll and Links false)", async () => {
    const bmc = await startBmc("hpe");
    for (const option of ["*", "~"]) {
      const res = await call(bmc, "GET", `/redfish/v1/Systems?$expand=${option}($levels=1)`);
      expect(res.status).toBe(400);
      // iLO's terse error shape, Base registry of the capture.
      expect(res.json).toEqual({
        error: {
          code: "iLO.0.10.ExtendedInfo",
          message: "See @Message.ExtendedInfo for more information.",
          "@Message.ExtendedInfo": [
            {
              MessageId: "Base.1.4.QueryParameterValueFormatError",
              MessageArgs: [`${option}($levels=1)`, "$expand"],
            },
          ],
        },
      });
    }
    const ok = await call(bmc, "GET", "/redfish/v1/Systems?$expand=.($levels=1)");
    expect(ok.status).toBe(200);
    expect(list(ok.json?.Members)[0]?.Id).toBe("1");
    const garbage = await call(bmc, "GET", "/redfish/v1/Systems?$expand=Members");
    expect(garbage.status).toBe(400);
  });

  it("follows an overridden ExpandQuery, and answers 501 when none is advertised", async () => {
    const limited = await startBmc("dmtf", {
      expandQuery: { NoLinks: true, Levels: true, MaxLevels: 1 },
    });
    const root = await request(limited.url, "/redfish/v1");
    expect(asBody(root.json?.ProtocolFeaturesSupported).ExpandQuery).toEqual({
      NoLinks: true,
      Levels: true,
      MaxLevels: 1,
    });
    expect((await call(limited, "GET", `${system}?$expand=*`)).status).toBe(400);
    expect((await call(limited, "GET", `${system}?$expand=.($levels=2)`)).status).toBe(400);

    const none = await startBmc("dmtf", { expandQuery: false });
    const bare = await request(none.url, "/redfish/v1");
    expect(asBody(bare.json?.ProtocolFeaturesSupported)).not.toHaveProperty("ExpandQuery");
    expect(asBody(bare.json?.ProtocolFeaturesSupported)).toHaveProperty("SelectQuery");
    const res = await call(none, "GET", "/redfish/v1/Systems?$expand=.");
    expect(res.status).toBe(501);
    expect(messageIds(res.json)).toEqual(["Base.1.5.QueryNotSupported"]);
    expect((await call(none, "GET", "/redfish/v1/Systems")).status).toBe(200);
  });

  it("needs credentials to expand the service root", async () => {
    const bmc = await startBmc("dmtf");
    expect((await request(bmc.url, "/redfish/v1?$expand=.")).status).toBe(401);
    const expanded = await call(bmc, "GET", "/redfish/v1?$expand=.");
    expect(asBody(expanded.json?.Systems).Members).toBeDefined();
  });
});

describe("test BMC: expanded bodies show current state", () => {
  it("power state, as a plain GET shows it", async () => {
    const bmc = await startBmc("dell", { powerState: "Off" });
    const members = list((await call(bmc, "GET", "/redfish/v1/Systems?$expand=.")).json?.Members);
    expect(members[0]?.PowerState).toBe("Off");
    bmc.setPowerState("On");
    const after = list((await call(bmc, "GET", "/redfish/v1/Systems?$expand=.")).json?.Members);
    expect(after[0]?.PowerState).toBe("On");
  });

  it("inserted media and an EjectMedia action shown only while inserted (Supermicro)", async () => {
    const bmc = await startBmc("supermicro");
    const collection = "/redfish/v1/Managers/1/VirtualMedia";
    const slot = `${collection}/VirtualMedia1`;
    const inserted = await call(bmc, "POST", `${slot}/Actions/VirtualMedia.InsertMedia`, {
      body: { Image: "http://127.0.0.1/boot.iso" },
    });
    expect(inserted.status).toBeLessThan(300);
    const plain = (await call(bmc, "GET", slot)).json;
    const members = list((await call(bmc, "GET", `${collection}?$expand=.`)).json?.Members);
    const expanded = members.find(m => m["@odata.id"] === slot);
    expect(expanded).toEqual(plain);
    expect(expanded).toMatchObject({ Image: "http://127.0.0.1/boot.iso", Inserted: true });
    expect(asBody(expanded?.Actions)).toHaveProperty("#VirtualMedia.EjectMedia");
  });

  it("a boot override staged in the settings object (BlueField)", async () => {
    const bmc = await startBmc("bluefield");
    const sys = "/redfish/v1/Systems/Bluefield";
    const staged = await call(bmc, "PATCH", `${sys}/Settings`, {
      body: { Boot: { BootSourceOverrideTarget: "Pxe", BootSourceOverrideEnabled: "Once" } },
    });
    expect(staged.status).toBe(204);
    const body = asBody((await call(bmc, "GET", `${sys}?$expand=.($levels=1)`)).json);
    const settings = asBody(asBody(body["@Redfish.Settings"]).SettingsObject);
    expect(asBody(settings.Boot)).toMatchObject({
      BootSourceOverrideTarget: "Pxe",
      BootSourceOverrideEnabled: "Once",
    });
  });
});
