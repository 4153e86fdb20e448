// Whether a host's BMC can carry out a provisioning request's boot, from the capabilities it
// reported at enrollment (status.hardwareDetails.bootCapabilities). One rule for both sides: the
// machine controller does not claim a host that fails it (claim.ts), and the PhysicalHost
// controller refuses such a request before any BMC action (delivery.ts), so the two never
// disagree about which hosts can boot what.
//
// Only what cannot work excludes a host. Capabilities not recorded (a host enrolled before they
// were), or a BMC that lists no boot targets, leave the host in: the PhysicalHost controller would
// still try, and the BMC's answer decides. The virtual-CD override target is not checked: where a
// system lists none, the driver may still find it in the BMC's settings object (BlueField).
import type { HardwareDetails, HostProvisioning } from "../api";
import { HostBootMethod, NetworkBootTarget } from "../api";

export type BootCapabilities = HardwareDetails["bootCapabilities"];

/** The part of a provisioning request that decides what the BMC must offer. */
export type BootMethod = Pick<HostProvisioning, "mode" | "networkBootTarget">;

/**
 * What the BMC lacks to boot `boot`, as a short phrase ("no UefiHttp boot target"), or undefined
 * when it can or when its capabilities are not known. A virtual-media boot needs a slot that takes
 * a CD (one is enough: without a second slot for a configuration volume the boot service patches
 * the ISO or the bootstrap data goes undelivered with a warning, see delivery.ts); PXE needs the
 * Pxe override target; UEFI HTTP boot needs the UefiHttp target and a place for the boot URI
 * (Boot.HttpBootUri, or the vendor's BIOS attribute, as the driver reported in httpBootURI).
 */
export function missingBootCapability(
  capabilities: BootCapabilities,
  boot: BootMethod,
): string | undefined {
  if (!capabilities) return undefined;
  const targets = capabilities.bootTargets ?? [];
  const noTarget = (target: string) =>
    targets.length > 0 && !targets.includes(target) ? `no ${target} boot target` : undefined;
  if (boot.mode === HostBootMethod.VirtualMedia) {
    const media = capabilities.virtualMedia;
    return media && !media.includes("CD") ? "no virtual media slot that takes a CD" : undefined;
  }
  if (boot.networkBootTarget === NetworkBootTarget.UefiHttp) {
    return (
      noTarget(NetworkBootTarget.UefiHttp) ??
      (capabilities.httpBootURI === false ? "no way to set an HTTP boot URI" : undefined)
    );
  }
  return noTarget(NetworkBootTarget.Pxe);
}
