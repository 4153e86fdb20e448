// The provisioning request a Beskar7Machine writes into its claimed host's spec: the machine's
// provisioning mode translated into what the PhysicalHost controller executes (virtual media or a
// network boot), plus the name of the Secret holding Cluster API's bootstrap data. Only that name
// travels; the boot service serves the bytes to this host alone.
import {
  BootMode,
  HostBootMethod,
  NetworkBootTarget,
  ProvisioningMode,
  type Beskar7MachineSpec,
  type HostProvisioning,
} from "../api";
import { effectiveProvisioningMode } from "./admission";

export function provisioningRequest(
  spec: Beskar7MachineSpec,
  bootstrapDataSecret: string,
): HostProvisioning {
  const mode = effectiveProvisioningMode(spec);
  const bootMode = spec.bootMode ?? BootMode.UEFI;
  const configURL = spec.configURL ?? spec.configurationURL;
  const osConfig = spec.osFamily
    ? {
        osFamily: spec.osFamily,
        ...(configURL ? { configURL } : {}),
        ...(spec.extraKernelArgs?.length ? { extraKernelArgs: spec.extraKernelArgs } : {}),
      }
    : {};
  switch (mode) {
    case ProvisioningMode.PreBakedISO:
    case ProvisioningMode.RemoteConfig:
      return {
        mode: HostBootMethod.VirtualMedia,
        bootMode,
        bootISO: spec.imageURL,
        ...(mode === ProvisioningMode.RemoteConfig ? osConfig : {}),
        bootstrapDataSecretRef: bootstrapDataSecret,
      };
    case ProvisioningMode.PXE:
      return {
        mode: HostBootMethod.Network,
        bootMode,
        networkBootTarget: NetworkBootTarget.Pxe,
        targetImageURL: spec.targetImageURL,
        ...(spec.targetInitrdURL ? { targetInitrdURL: spec.targetInitrdURL } : {}),
        ...osConfig,
        bootstrapDataSecretRef: bootstrapDataSecret,
      };
    case ProvisioningMode.iPXE:
      return {
        mode: HostBootMethod.Network,
        bootMode: BootMode.UEFI,
        networkBootTarget: NetworkBootTarget.UefiHttp,
        httpBootURI: spec.inspectionImageURL,
        targetImageURL: spec.targetImageURL,
        ...(spec.targetInitrdURL ? { targetInitrdURL: spec.targetInitrdURL } : {}),
        ...osConfig,
        bootstrapDataSecretRef: bootstrapDataSecret,
      };
  }
}
