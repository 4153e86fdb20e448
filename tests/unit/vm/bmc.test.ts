// The VM-backed BMC before any boot: powered off, its capture's "inserted" images gone (they exist
// nowhere, and QEMU would try to read them) without an action recorded, and the system UUID it
// serves the one the VM will carry in SMBIOS. No QEMU is started here.
import { afterEach, describe, expect, it } from "vitest";

import { startVmBmc, type VmBmc } from "../../../lab/vm/bmc";

describe("startVmBmc", () => {
  let vm: VmBmc | undefined;
  afterEach(async () => {
    await vm?.stop();
    vm = undefined;
  });

  it("starts off, with empty slots and the given UUID, and records no actions", async () => {
    vm = await startVmBmc({
      uuid: "4C4C4544-0042-3010-8058-B4C04F4B4E32",
      bmc: { tls: false },
    });
    expect(vm.uuid).toBe("4c4c4544-0042-3010-8058-b4c04f4b4e32");
    expect(vm.bmc.powerState()).toBe("Off");
    expect(vm.bmc.virtualMedia().length).toBeGreaterThan(0);
    expect(vm.bmc.insertedMedia()).toEqual([]);
    const auth = Buffer.from(`${vm.bmc.username}:${vm.bmc.password}`).toString("base64");
    const system = (await (
      await fetch(`${vm.bmc.url}${vm.bmc.systems[0]}`, {
        headers: { authorization: `Basic ${auth}` },
      })
    ).json()) as { UUID: string; PowerState: string };
    expect(system.UUID).toBe(vm.uuid);
    expect(vm.machine.options.uuid).toBe(vm.uuid);
    expect(vm.bmc.actions).toEqual([]);
  });
});
