// The provisioning request a Beskar7Machine writes into its host: what each mode carries over,
// and what it leaves out (a pre-baked ISO's command line is its own).
import { describe, expect, it } from "vitest";

import { provisioningRequest } from "../../../capabilities/machine/request";

const ISO = "https://images.example.com/talos.iso";

describe("provisioningRequest", () => {
  it("carries the OS family, configURL and extra kernel arguments of RemoteConfig", () => {
    expect(
      provisioningRequest(
        {
          provisioningMode: "RemoteConfig",
          imageURL: ISO,
          osFamily: "talos",
          configURL: "https://config.example.com/w.yaml",
          extraKernelArgs: ["console=ttyS0,115200n8"],
        },
        "bootstrap-w",
      ),
    ).toEqual({
      mode: "VirtualMedia",
      bootMode: "UEFI",
      bootISO: ISO,
      osFamily: "talos",
      configURL: "https://config.example.com/w.yaml",
      extraKernelArgs: ["console=ttyS0,115200n8"],
      bootstrapDataSecretRef: "bootstrap-w",
    });
  });

  it("leaves configURL out when the OS reads the bootstrap data, and everything OS-side for PreBakedISO", () => {
    expect(
      provisioningRequest(
        { provisioningMode: "RemoteConfig", imageURL: ISO, osFamily: "talos" },
        "b",
      ),
    ).not.toHaveProperty("configURL");
    const prebaked = provisioningRequest({ imageURL: ISO, osFamily: "talos" }, "b");
    expect(prebaked).toEqual({
      mode: "VirtualMedia",
      bootMode: "UEFI",
      bootISO: ISO,
      bootstrapDataSecretRef: "b",
    });
  });

  it("passes extra kernel arguments to the network modes", () => {
    const request = provisioningRequest(
      {
        provisioningMode: "iPXE",
        inspectionImageURL: "http://pxe.example.com/ipxe.efi",
        targetImageURL: "http://pxe.example.com/os.raw",
        osFamily: "flatcar",
        extraKernelArgs: ["nomodeset"],
      },
      "b",
    );
    expect(request).toMatchObject({ mode: "Network", extraKernelArgs: ["nomodeset"] });
  });

  it.each(["PXE", "iPXE"] as const)(
    "%s carries the kernel and its initramfs (targetInitrdURL); without one, none is written",
    mode => {
      const spec = {
        provisioningMode: mode,
        inspectionImageURL: "http://pxe.example.com/ipxe.efi",
        targetImageURL: "http://pxe.example.com/vmlinuz-amd64",
      };
      expect(
        provisioningRequest(
          { ...spec, targetInitrdURL: "http://pxe.example.com/initramfs-amd64.xz" },
          "b",
        ),
      ).toMatchObject({
        mode: "Network",
        targetImageURL: "http://pxe.example.com/vmlinuz-amd64",
        targetInitrdURL: "http://pxe.example.com/initramfs-amd64.xz",
      });
      expect(provisioningRequest(spec, "b")).not.toHaveProperty("targetInitrdURL");
    },
  );
});
