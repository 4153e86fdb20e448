import { readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

import { listMockups, MockupStore, mockupsDir, normalisePath } from "../../../lab/bmc/mockup-store";
import { deriveProfile } from "../../../lab/bmc/profile";
import { topologyOf } from "../../../lab/bmc/topology";
import { mockup } from "./helpers";

describe("MockupStore", () => {
  it("lists every mockup folder of lab/captures", () => {
    const folders = readdirSync(mockupsDir(), { withFileTypes: true })
      .filter(d => d.isDirectory())
      .map(d => d.name)
      .sort();
    expect(listMockups()).toEqual(folders);
    expect(folders.length).toBeGreaterThanOrEqual(6);
  });

  it("shares one parsed tree per folder between callers", () => {
    const a = MockupStore.for(mockup("dell"));
    const b = MockupStore.for(join(mockupsDir(), mockup("dell")));
    expect(a).toBe(b);
    expect(a.get("/redfish/v1")).toBe(b.get("/redfish/v1/"));
  });

  it("normalises trailing slashes, duplicate slashes and queries", () => {
    expect(normalisePath("/redfish/v1/Systems/")).toBe("/redfish/v1/Systems");
    expect(normalisePath("/redfish//v1/Systems?$expand=.")).toBe("/redfish/v1/Systems");
  });

  it("serves HPE lowercase URIs captured as their own folders, and percent-encoded names", () => {
    const hpe = MockupStore.for(mockup("hpe"));
    expect(hpe.json("/redfish/v1/systems/1/bios/settings/")?.["@odata.id"]).toContain("settings");
    expect(
      hpe.json("/redfish/v1/Registries/%23SmartStorageMessages.v2_0_1.SmartStorageMessages"),
    ).toBeDefined();
    expect(hpe.json("/redfish/v1/Systems/1/DoesNotExist")).toBeUndefined();
  });

  it("refuses paths escaping the mockup folder", () => {
    const store = MockupStore.for(mockup("dmtf"));
    expect(store.json("/redfish/../../dell/redfish/v1")).toBeUndefined();
  });
});

describe("vendor profiles and topology", () => {
  const expected: Record<string, string> = {
    dell: "dell",
    hpe: "hpe",
    lenovo: "lenovo",
    supermicro: "supermicro",
    bluefield: "openbmc",
    dmtf: "dmtf",
  };
  for (const [keyword, vendor] of Object.entries(expected)) {
    it(`detects ${vendor} for the ${keyword} capture`, () => {
      expect(deriveProfile(MockupStore.for(mockup(keyword))).vendor).toBe(vendor);
    });
  }

  it("reads the Base registry version from the capture", () => {
    expect(deriveProfile(MockupStore.for(mockup("dell"))).baseRegistry).toBe("Base.1.12");
    expect(deriveProfile(MockupStore.for(mockup("hpe"))).baseRegistry).toBe("Base.1.4");
  });

  it("lets every quirk be overridden", () => {
    const profile = deriveProfile(MockupStore.for(mockup("dell")), {
      requireTransferProtocolType: true,
    });
    expect(profile.vendor).toBe("dell");
    expect(profile.requireTransferProtocolType).toBe(true);
  });

  it("takes reset types from AllowableValues or from the ActionInfo", () => {
    const hpe = topologyOf(MockupStore.for(mockup("hpe")));
    expect([...hpe.systems.values()][0]?.resetTypes).not.toContain("PowerCycle");
    const smc = topologyOf(MockupStore.for(mockup("supermicro")));
    expect([...smc.systems.values()][0]?.resetTypes).toContain("PowerCycle");
  });

  it("finds virtual-media slots under Systems and Managers", () => {
    const dell = topologyOf(MockupStore.for(mockup("dell")));
    const paths = [...dell.slots.keys()];
    expect(paths.some(p => p.includes("/Systems/"))).toBe(true);
    expect(paths.some(p => p.includes("/Managers/"))).toBe(true);
    const dellSystem = [...dell.systems.values()][0];
    expect(dellSystem?.slots.every(p => p.includes("/Systems/"))).toBe(true);
  });
});
