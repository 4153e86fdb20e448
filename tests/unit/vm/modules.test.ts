// The installer's kernel module list (lab/vm/installer/build.ts moduleLoadOrder): from a
// depmod-made modules.dep, the modules asked for and everything they need, dependencies first and
// each once; an unknown module or a cycle is an error naming it.
import { describe, expect, it } from "vitest";

import { moduleLoadOrder } from "../../../lab/vm/installer/build";

const dep = [
  "kernel/drivers/scsi/sr_mod.ko: kernel/drivers/scsi/scsi_mod.ko kernel/drivers/cdrom/cdrom.ko kernel/drivers/scsi/scsi_common.ko",
  "kernel/drivers/scsi/scsi_mod.ko: kernel/drivers/scsi/scsi_common.ko",
  "kernel/drivers/scsi/scsi_common.ko:",
  "kernel/drivers/cdrom/cdrom.ko:",
  "kernel/fs/isofs/isofs.ko: kernel/drivers/cdrom/cdrom.ko",
  "kernel/drivers/usb/storage/usb-storage.ko: kernel/drivers/scsi/scsi_mod.ko",
  "",
].join("\n");

describe("moduleLoadOrder", () => {
  it("loads dependencies before the modules that need them, each once", () => {
    const order = moduleLoadOrder(dep, ["isofs", "sr_mod", "usb-storage"]);
    expect(order).toEqual([
      "kernel/drivers/cdrom/cdrom.ko",
      "kernel/fs/isofs/isofs.ko",
      "kernel/drivers/scsi/scsi_common.ko",
      "kernel/drivers/scsi/scsi_mod.ko",
      "kernel/drivers/scsi/sr_mod.ko",
      "kernel/drivers/usb/storage/usb-storage.ko",
    ]);
    for (const [i, path] of order.entries()) {
      const line = dep.split("\n").find(l => l.startsWith(`${path}:`))!;
      for (const needed of line.split(":")[1]!.trim().split(/\s+/).filter(Boolean)) {
        expect(order.indexOf(needed)).toBeLessThan(i);
      }
    }
  });

  it("names a module the kernel package does not have", () => {
    expect(() => moduleLoadOrder(dep, ["virtio_net"])).toThrow(
      "kernel module virtio_net is not in the kernel package",
    );
  });

  it("refuses a dependency cycle", () => {
    const cyclic = "a.ko: b.ko\nb.ko: a.ko\n";
    expect(() => moduleLoadOrder(cyclic, ["a"])).toThrow(/cycle: a.ko -> b.ko/);
  });
});
