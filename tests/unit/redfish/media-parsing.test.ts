import { describe, expect, it } from "vitest";
import { parseSlot, sameImage } from "../../../redfish/operations/media";

const base = {
  "@odata.id": "/redfish/v1/Managers/1/VirtualMedia/CD1",
  Id: "CD1",
  MediaTypes: ["CD", "DVD"],
};

describe("virtual media slot parsing", () => {
  it.each([
    [{ Image: "http://x/a.iso", Inserted: true, ConnectedVia: "URI" }, true],
    [{ Image: null, ImageName: "a.iso", Inserted: true }, true],
    [{ Image: "None", Inserted: true }, false],
    [{ Image: "None" }, false],
    [{ Image: "", Inserted: false }, false],
    [{ Image: "http://x/stale.iso", ImageName: "stale.iso", Inserted: false }, false],
    [{ Image: "http://x/stale.iso", ConnectedVia: "NotConnected" }, false],
    [{ Image: "http://x/a.iso", ConnectedVia: "URI" }, true],
  ])("%j is inserted=%s", (fields, inserted) => {
    const slot = parseSlot({ ...base, ...fields });
    expect(slot.inserted).toBe(inserted);
    if (!inserted) expect(slot.image).toBeUndefined();
  });

  it("shows ImageName when a BMC reports only that", () => {
    expect(parseSlot({ ...base, Image: null, ImageName: "a.iso", Inserted: true }).image).toBe(
      "a.iso",
    );
  });

  it("derives the insert method from Actions and the Allow header", () => {
    const action = {
      "#VirtualMedia.InsertMedia": {
        target: "/redfish/v1/Managers/1/VirtualMedia/CD1/Actions/VirtualMedia.InsertMedia",
      },
    };
    expect(parseSlot({ ...base, Actions: action }).insertMethod).toBe("action");
    expect(parseSlot(base, ["GET", "PATCH"]).insertMethod).toBe("patch");
    expect(parseSlot(base, ["GET"]).insertMethod).toBe("none");
    expect(
      parseSlot({ ...base, "@odata.id": "/redfish/v1/Systems/1/VirtualMedia/1" }).location,
    ).toBe("Systems");
  });
});

describe("sameImage", () => {
  it("accepts echoes, re-encodings and bare file names, and rejects other images", () => {
    const url = "http://10.0.0.1/images/boot image.iso";
    expect(sameImage(url, url)).toBe(true);
    expect(sameImage("http://10.0.0.1/images/boot%20image.iso", url)).toBe(true);
    expect(sameImage("boot image.iso", url)).toBe(true);
    expect(sameImage(undefined, url)).toBe(true);
    expect(sameImage("http://10.0.0.1/images/other.iso", url)).toBe(false);
  });
});
