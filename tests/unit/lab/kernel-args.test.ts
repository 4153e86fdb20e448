// The simulated OS's readers (lab/os/kernel-args.ts) against what the boot service writes: a GRUB
// linux line as patched into an ISO, and both shapes of the service's iPXE script.
import { describe, expect, it } from "vitest";

import { ipxeScript } from "../../../boot/server/handler";
import { argValue, grubKernelArgs, ipxeBoot } from "../../../lab/os/kernel-args";

describe("grubKernelArgs", () => {
  it("reads the first linux line's arguments, quotes (as the patcher writes them) removed", () => {
    const cfg =
      "set timeout=1\nmenuentry install {\n  linux /boot/vmlinuz quiet 'talos.config=http://b/v1/config/u/t?a=b&c=d' x=1\n}\n" +
      "menuentry other {\n  linux /boot/other nope\n}\n";
    const args = grubKernelArgs(cfg);
    expect(args).toEqual(["quiet", "talos.config=http://b/v1/config/u/t?a=b&c=d", "x=1"]);
    expect(argValue(args, "talos.config")).toBe("http://b/v1/config/u/t?a=b&c=d");
    expect(argValue(args, "config_url")).toBeUndefined();
  });

  it("says so when there is no linux line", () => {
    expect(() => grubKernelArgs("menuentry x {\n}\n")).toThrow(/no linux line/);
  });
});

describe("ipxeBoot", () => {
  const args = ["config_url=http://b/v1/config/u/t", "beskar7.report=http://b/v1/report/u/r"];

  it("reads a chained image and its arguments, without --autofree or the fallback", () => {
    const boot = ipxeBoot(ipxeScript("ns/h", "http://img/target.efi", args));
    expect(boot).toEqual({ image: "http://img/target.efi", args });
  });

  it("reads a kernel with its initramfs", () => {
    const boot = ipxeBoot(
      ipxeScript("ns/h", "http://img/vmlinuz", args, "http://img/initramfs.xz"),
    );
    expect(boot.image).toBe("http://img/vmlinuz");
    expect(boot.initrd).toBe("http://img/initramfs.xz");
    expect(boot.args).toEqual(["initrd=initrd", ...args]);
    expect(argValue(boot.args, "beskar7.report")).toBe("http://b/v1/report/u/r");
  });

  it("says so when the script boots nothing", () => {
    expect(() => ipxeBoot("#!ipxe\nexit\n")).toThrow(/no chain or kernel line/);
  });
});
