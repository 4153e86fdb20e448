// AMI MegaRAC on several OEM boards: VirtualMedia slots without MediaTypes (Id "CD1", Name
// "virtual CD1"), Image "None" when empty. The driver infers what a slot takes from its Id and
// Name (vendors.ts inferredMediaTypes) and inserts an ISO; served by the test BMC's
// amiVirtualMedia option over the DMTF capture.
import { afterEach, describe, expect, it } from "vitest";

import { TestBmc } from "../../../lab/bmc/server";
import { createRedfishClient } from "../../../redfish";
import { parseSlot } from "../../../redfish/operations/media";
import { inferredMediaTypes } from "../../../redfish/vendors";

const ISO = "http://10.0.0.1/images/installer.iso";
const started: TestBmc[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map(bmc => bmc.stop()));
});

describe("virtual media slots without MediaTypes (AMI MegaRAC)", () => {
  it("infers a slot's media from its Id and Name, and reads None/none/blank images as empty", () => {
    expect(inferredMediaTypes("CD1", "virtual CD1")).toEqual(["CD", "DVD"]);
    expect(inferredMediaTypes("1", "Virtual ISO image")).toEqual(["CD", "DVD"]);
    expect(inferredMediaTypes("USB1", "virtual USB1")).toEqual(["USBStick"]);
    expect(inferredMediaTypes("Floppy1", undefined)).toEqual(["USBStick"]);
    expect(inferredMediaTypes("RemovableDisk", undefined)).toEqual(["USBStick"]);
    expect(inferredMediaTypes("Slot7", "VirtualMedia")).toEqual([]);
    for (const Image of ["None", "none", "", "  "]) {
      const slot = parseSlot({
        "@odata.id": "/redfish/v1/Managers/Self/VirtualMedia/CD1",
        Id: "CD1",
        Name: "virtual CD1",
        Image,
        // "None" in any case overrides Inserted; a blank Image leaves Inserted authoritative.
        Inserted: Image.trim() === "" ? undefined : true,
      });
      expect(slot, JSON.stringify(Image)).toMatchObject({
        mediaTypes: ["CD", "DVD"],
        inserted: false,
        image: undefined,
      });
    }
    // Listed MediaTypes always win over the name.
    expect(parseSlot({ Id: "CD1", MediaTypes: ["USBStick"] }).mediaTypes).toEqual(["USBStick"]);
  });

  it("inserts an ISO into the virtual CD of a BMC that lists no MediaTypes", async () => {
    const bmc = await TestBmc.start({
      mockup: "dmtf_public-rackmount1",
      tls: false,
      profile: { amiVirtualMedia: true },
    });
    started.push(bmc);
    const client = createRedfishClient({
      address: bmc.url,
      credentials: { username: bmc.username, password: bmc.password },
      verifyPollIntervalMs: 50,
    });
    try {
      const system = client.system();
      await system.ejectMedia();
      const slots = await system.virtualMedia();
      expect(slots.map(s => [s.id, s.mediaTypes, s.inserted])).toEqual(
        expect.arrayContaining([
          ["CD1", ["CD", "DVD"], false],
          ["Floppy1", ["USBStick"], false],
        ]),
      );
      const shown = await client.get(slots.find(s => s.id === "CD1")!.path);
      expect(shown.body).toMatchObject({ Name: "virtual CD1", Image: "None" });
      expect(shown.body).not.toHaveProperty("MediaTypes");

      const { slot } = await system.insertMedia({ image: ISO, kind: "cd" });
      expect(slot).toMatchObject({ id: "CD1", inserted: true, image: ISO });
      expect(bmc.insertedMedia()).toEqual([
        expect.objectContaining({ uri: slot.path, image: ISO, inserted: true }),
      ]);
    } finally {
      await client.close();
    }
  });
});
