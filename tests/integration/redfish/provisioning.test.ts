// The whole provisioning sequence through the driver's public API against the test BMC serving
// every captured mockup: inventory, boot override, insert media, power on, eject, power off. After
// each step the BMC's own state is checked (not the driver's view of it), and so is what the step
// cost in HTTP requests, against budgets that catch regressions (a lost cache, a retry loop, a
// lost $expand).
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { UnsupportedOperationError, type BootTarget } from "../../../redfish/index";
import { listMockups, MockupStore, stringArray } from "../../../lab/bmc/mockup-store";
import { topologyOf } from "../../../lab/bmc/topology";
import { captureFacts, hasSecondRemovableSlot, normaliseMac } from "./capture";
import { measured, type Rig, startRig } from "./harness";

const iso = "http://127.0.0.1:9/images/installer.iso";
const usbImage = "http://127.0.0.1:9/images/config.img";

/**
 * What enrolling costs (the first `inventory()` of a new client: service root, login, Systems
 * collection with the system expanded, manager, inventory collections), exactly, per capture, as
 * the test BMC honours each capture's advertised ExpandQuery. The product target is 10 per host.
 * HPE's iLO 5 offers one level of `$expand` and lists 17 storage subsystems, 16 of them holding a
 * single NVMe drive: one GET per subsystem's drives on top of the 7 (docs/redfish-driver.md).
 */
const enrollCost: Record<string, number> = {
  "dmtf_public-rackmount1": 6,
  "nvidia-libredfish_dell_poweredge-r750_idrac9-6.00.30": 7,
  "nvidia-libredfish_hpe_proliant-dl385-gen10plus-v2_ilo5-2.72": 24,
  "nvidia-libredfish_lenovo_thinksystem-sr670-v2_xcc-2.83": 7,
  // The reset action's ActionInfo, read at enrolment so the first power action needs no GET of it.
  "nvidia-libredfish_nvidia_bluefield3-dpu-bmc_openbmc": 8,
  "nvidia-libredfish_supermicro_sys-821ge-tnhr-x13_bmc-11.01": 8,
};

/**
 * Request budgets of the other steps (upper bounds, measured with the driver at the time of
 * writing plus headroom).
 */
const budget = {
  bootOverride: 8,
  // Choosing a slot reads each one: media budgets add one request per slot the BMC lists.
  insertCd: 8,
  insertUsb: 8,
  powerOn: 6,
  // Per medium ejected: the action, and polls until the slot shows empty (Dell lags).
  eject: 10,
  powerOff: 6,
};

const costs: Record<string, Record<string, number>> = {};

afterAll(() => {
  // One line per mockup so a failing budget can be compared with the rest.
  for (const [folder, steps] of Object.entries(costs)) {
    console.log(`[request cost] ${folder}: ${JSON.stringify(steps)}`);
  }
});

for (const folder of listMockups()) {
  describe(`provisioning against ${folder}`, () => {
    const facts = captureFacts(folder);
    const cost: Record<string, number> = (costs[folder] = {});
    const slotCount = topologyOf(MockupStore.for(folder)).slots.size;
    let rig: Rig;

    beforeAll(async () => {
      rig = await startRig({ mockup: folder, powerState: "Off" });
    });
    afterAll(async () => {
      await rig?.close();
    });

    it("reads the inventory the capture states", async () => {
      const { result: inv, requests } = await measured(rig.bmc, () => rig.system.inventory());
      cost.inventory = requests;
      expect(inv.warnings).toEqual([]);
      expect(inv.manufacturer).toBe(facts.manufacturer);
      expect(inv.model).toBe(facts.model);
      expect(inv.serialNumber).toBe(facts.serialNumber);
      expect(inv.processors.count).toBe(facts.cpuCount);
      expect(inv.processors.cores).toBe(facts.cpuCores);
      expect(inv.processors.threads).toBe(facts.cpuThreads);
      if (inv.processors.items.length > 0) {
        expect(inv.processors.items.map(p => p.model?.trim())).toEqual(facts.cpuModels);
      }
      expect(inv.memory.totalGiB).toBe(facts.memoryGiB);
      const macs = inv.nics.flatMap(n => (n.macAddress ? [normaliseMac(n.macAddress)] : []));
      expect(new Set(macs)).toEqual(new Set(facts.systemMacs));
      expect(inv.powerState).toBe("Off");
      const disks = (list: typeof inv.disks) =>
        list.map(d => ({ id: d.id, sizeBytes: d.sizeBytes }));
      expect(disks(inv.disks)).toEqual(facts.disks);
      expect(enrollCost[folder], `no expected enrollment cost for ${folder}`).toBeDefined();
      expect(requests, JSON.stringify(rig.bmc.requests.recent)).toBe(enrollCost[folder]);

      // The same inventory from a service that offers no $expand, walked link by link.
      const plain = await startRig({ mockup: folder, powerState: "Off", expandQuery: false });
      try {
        const walked = await plain.system.inventory();
        expect(plain.bmc.requests.recent.filter(r => r.query)).toEqual([]);
        expect(disks(walked.disks)).toEqual(disks(inv.disks));
        expect(walked).toEqual(inv);
      } finally {
        await plain.close();
      }
    });

    it("clears media the capture left inserted", async () => {
      const stale = facts.slots.filter(s => s.inserted);
      const { requests } = await measured(rig.bmc, () =>
        stale.length > 0 ? rig.system.ejectMedia() : Promise.resolve([]),
      );
      expect(rig.bmc.insertedMedia()).toEqual([]);
      expect(rig.bmc.actionsOf("eject")).toHaveLength(stale.length);
      expect(requests).toBeLessThanOrEqual(stale.length * budget.eject + slotCount);
    });

    // Virtual CD where the capture offers one, else HTTP boot (BlueField), else PXE.
    const cdTarget = facts.bootTargets.some(t => t === "Cd" || t === "UsbCd");
    const target: BootTarget = cdTarget ? "Cd" : facts.hasHttpBootUri ? "UefiHttp" : "Pxe";
    const httpBootUri = "http://127.0.0.1:9/boot/grubx64.efi";

    it(`sets a one-time ${target} boot override`, async () => {
      const { result, requests } = await measured(rig.bmc, () =>
        rig.system.setBootOverride({
          target,
          mode: "UEFI",
          httpBootUri: target === "UefiHttp" ? httpBootUri : undefined,
        }),
      );
      cost.bootOverride = requests;
      const boot = rig.bmc.bootOverride();
      expect(boot.BootSourceOverrideEnabled).toBe("Once");
      // Supermicro boots virtual media only through UsbCd (REDFISH-QUIRKS.md).
      const expectedTarget =
        target === "Cd" && rig.bmc.profile.virtualCdBootTarget === "UsbCd" ? "UsbCd" : target;
      expect(boot.BootSourceOverrideTarget).toBe(expectedTarget);
      expect(result.targetSent).toBe(expectedTarget);
      if (target === "UefiHttp") expect(boot.HttpBootUri).toBe(httpBootUri);
      expect(rig.bmc.actionsOf("boot").length).toBeGreaterThanOrEqual(1);
      expect(requests).toBeLessThanOrEqual(budget.bootOverride);
    });

    if (facts.slots.length === 0) {
      it("reports that the BMC has no virtual media", async () => {
        expect(await rig.system.virtualMedia()).toEqual([]);
        await expect(rig.system.insertMedia({ image: iso, kind: "cd" })).rejects.toBeInstanceOf(
          UnsupportedOperationError,
        );
        expect(rig.bmc.actionsOf("insert")).toHaveLength(0);
      });
    } else {
      it("inserts the installer ISO as a CD", async () => {
        const { result, requests } = await measured(rig.bmc, () =>
          rig.system.insertMedia({ image: iso, kind: "cd" }),
        );
        cost.insertCd = requests;
        const mounted = rig.bmc.insertedMedia();
        expect(mounted).toEqual([
          expect.objectContaining({ image: iso, inserted: true, uri: result.slot.path }),
        ]);
        const types = stringArray(MockupStore.for(folder).json(result.slot.path)?.MediaTypes) ?? [];
        expect(types.some(t => t === "CD" || t === "DVD")).toBe(true);
        expect(rig.bmc.actionsOf("insert").filter(a => a.image === iso)).toHaveLength(1);
        expect(requests).toBeLessThanOrEqual(budget.insertCd + slotCount);
      });

      if (hasSecondRemovableSlot(facts)) {
        it("inserts a second medium as a USB stick in another slot", async () => {
          const { result, requests } = await measured(rig.bmc, () =>
            rig.system.insertMedia({ image: usbImage, kind: "usb" }),
          );
          cost.insertUsb = requests;
          const usb = rig.bmc.insertedMedia().find(s => s.image === usbImage);
          expect(usb?.uri).toBe(result.slot.path);
          // The driver may pick a Managers slot (Dell lists both); read its types from the capture.
          const types = stringArray(MockupStore.for(folder).json(usb?.uri ?? "")?.MediaTypes);
          expect(types).toContain("USBStick");
          expect(
            rig.bmc
              .insertedMedia()
              .map(s => s.image)
              .sort(),
          ).toEqual([usbImage, iso].sort());
          expect(rig.bmc.actionsOf("insert").filter(a => a.image === usbImage)).toHaveLength(1);
          expect(requests).toBeLessThanOrEqual(budget.insertUsb + slotCount);
        });
      }
    }

    it("powers on, booting what the override points at", async () => {
      const resetsBefore = rig.bmc.actionsOf("reset").length;
      const { requests } = await measured(rig.bmc, () => rig.system.powerOn());
      cost.powerOn = requests;
      expect(rig.bmc.powerState()).toBe("On");
      const resets = rig.bmc.actionsOf("reset").slice(resetsBefore);
      expect(resets).toHaveLength(1);
      expect(["On", "ForceOn", "PushPowerButton"]).toContain(resets[0]?.resetType);
      const boot = rig.bmc.lastBoot;
      if (target === "Cd" && facts.slots.length > 0) expect(boot?.media).toBe(iso);
      if (target === "UefiHttp") expect(boot?.media).toBe(httpBootUri);
      expect(requests).toBeLessThanOrEqual(budget.powerOn);
    });

    it("ejects every medium", async () => {
      const inserted = rig.bmc.insertedMedia().length;
      const ejectsBefore = rig.bmc.actionsOf("eject").length;
      const { requests } = await measured(rig.bmc, () => rig.system.ejectMedia());
      cost.eject = requests;
      expect(rig.bmc.insertedMedia()).toEqual([]);
      expect(rig.bmc.actionsOf("eject").length - ejectsBefore).toBe(inserted);
      expect(requests).toBeLessThanOrEqual(inserted * budget.eject + slotCount + 2);
    });

    it("powers off", async () => {
      const { requests } = await measured(rig.bmc, () => rig.system.powerOff());
      cost.powerOff = requests;
      expect(rig.bmc.powerState()).toBe("Off");
      expect(requests).toBeLessThanOrEqual(budget.powerOff);
    });

    it("logs out on close", async () => {
      expect(rig.bmc.actionsOf("session-create").length).toBeGreaterThanOrEqual(1);
      await rig.client.close();
      expect(rig.bmc.activeSessions).toBe(0);
    });
  });
}
