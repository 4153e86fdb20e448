// Every named vendor rule of the driver lives in this file. The rest of the driver decides by
// feature detection (links, @Redfish.AllowableValues, @Redfish.ActionInfo, @Redfish.Settings,
// Allow headers, error bodies); a rule appears here only where detection cannot tell. Each rule
// cites its row in the vendor-quirks notes (REDFISH-QUIRKS.md) as "QUIRKS: <vendor> | <operation>".
import type { RedfishError } from "./errors";
import type { BmcVendor } from "./types";

/** Vendor family from the service root (Vendor, Oem keys) and, failing that, a Manufacturer. */
export function detectVendor(root: Record<string, unknown>, manufacturer?: string): BmcVendor {
  const oem = root.Oem && typeof root.Oem === "object" ? Object.keys(root.Oem) : [];
  const hints = [String(root.Vendor ?? ""), String(root.Product ?? ""), ...oem, manufacturer ?? ""]
    .join(" ")
    .toLowerCase();
  if (/\bdell\b/.test(hints)) return "Dell";
  if (/\bhpe?\b|hewlett/.test(hints)) return "HPE";
  if (/lenovo/.test(hints)) return "Lenovo";
  if (/supermicro/.test(hints)) return "Supermicro";
  if (/\bami\b|megarac|gigabyte|asrock/.test(hints)) return "AMI";
  if (/openbmc|nvidia/.test(hints)) return "OpenBMC";
  return "Generic";
}

/** What the driver was doing when an error came back; some errors are transient only there. */
export type WriteContext = "bootOverride" | "insertMedia" | "other";

/**
 * Errors from writes that are known to clear up on their own, so the write is retried with
 * backoff. GETs are retried on any 5xx/unreachable without consulting this.
 */
export function isTransientWriteError(error: RedfishError, context: WriteContext): boolean {
  // Generic: 503 means the service is busy by definition (DSP0266); connection resets and
  // refusals mean the request never took effect. QUIRKS: All | async / tasks (sushy connector).
  if (error.status === 503) return true;
  if (error.code === "Unreachable" && /ECONNRESET|ECONNREFUSED/.test(String(error.cause ?? ""))) {
    return true;
  }
  // QUIRKS: Dell | insert/eject timing — SYS518 "iDRAC not ready" is retryable.
  if (error.hasMessageId("SYS518")) return true;
  // QUIRKS: HPE iLO | boot override — iLO rejects boot changes during POST.
  if (
    context === "bootOverride" &&
    (error.hasMessageId("UnableToModifyDuringSystemPOST") ||
      error.hasMessageId("InvalidOperationForSystemState"))
  ) {
    return true;
  }
  // QUIRKS: Dell | insert/eject timing — an insert right after an eject can return 5xx.
  if (context === "insertMedia" && error.status !== undefined && error.status >= 500) return true;
  return false;
}

/**
 * The boot override target to send for a virtual-CD boot. QUIRKS: Supermicro | boot override —
 * Supermicro boots virtual media with `UsbCd`, not `Cd`, even where `Cd` is listed; the choice
 * cannot be detected because both values are advertised.
 */
export function virtualCdBootTarget(vendor: BmcVendor, allowedTargets: string[]): string {
  const offersUsbCd = allowedTargets.includes("UsbCd");
  if (vendor === "Supermicro" && offersUsbCd) return "UsbCd";
  // Detection: a BMC that lists UsbCd but not Cd can only mean UsbCd.
  if (allowedTargets.length > 0 && !allowedTargets.includes("Cd") && offersUsbCd) return "UsbCd";
  return "Cd";
}

/**
 * Whether every boot PATCH must carry Mode, Enabled and Target together.
 * QUIRKS: AMI MegaRAC | boot / settings / ETag — "send the full Boot object every time".
 * QUIRKS: Supermicro | boot override — "always send BootSourceOverrideEnabled" (the driver always
 * does) and newer boards need Mode in the same PATCH.
 */
export function requiresFullBootObject(vendor: BmcVendor): boolean {
  return vendor === "AMI" || vendor === "Supermicro";
}

/**
 * Whether disabling the override must keep a real target instead of `None`.
 * QUIRKS: HPE iLO | boot override — "rejects BootSourceOverrideEnabled when the target is None".
 */
export function keepTargetWhenDisabling(vendor: BmcVendor): boolean {
  return vendor === "HPE";
}

/**
 * Whether a virtual media slot may take a remote URL mount.
 * QUIRKS: Lenovo XCC | VirtualMedia — only EXT slots take remote URL mounts; RDOC slots fail.
 * Nothing in the slot resource says so, hence a rule.
 */
export function slotAcceptsRemoteImage(vendor: BmcVendor, slotId: string): boolean {
  if (vendor === "Lenovo") return /^EXT/i.test(slotId);
  return true;
}

/**
 * What a virtual media slot that lists no MediaTypes takes, from its Id and Name: CD/DVD/ISO → CD
 * and DVD, USB/Floppy/Removable → USBStick, anything else nothing.
 * QUIRKS: AMI MegaRAC | VirtualMedia — firmware on several OEM boards lists its virtual CD as Id
 * "CD1", Name "virtual CD1" without MediaTypes (Image "None" when empty, remote media switched on
 * by an OEM action), so without this no slot accepts an ISO. Nothing else in the resource says
 * what the slot takes, hence a rule; applied to any vendor's slot without MediaTypes.
 */
export function inferredMediaTypes(slotId: string, name: string | undefined): string[] {
  const text = `${slotId} ${name ?? ""}`;
  if (/cd|dvd|iso/i.test(text)) return ["CD", "DVD"];
  if (/usb|floppy|removable/i.test(text)) return ["USBStick"];
  return [];
}

/**
 * Whether to prefer virtual media slots under Systems over those under Managers. Detection picks
 * Systems whenever the system links VirtualMedia; this only orders the list.
 * QUIRKS: Dell iDRAC9 | VirtualMedia location — Systems path on FW ≥ 6.00, Managers still listed.
 */
export function preferSystemVirtualMedia(_vendor: BmcVendor): boolean {
  return true;
}

/**
 * EjectMedia always carries an empty JSON object body: iLO answers 415/400 otherwise and DSP0266
 * allows it everywhere. QUIRKS: HPE iLO 5 | VirtualMedia.
 */
export const EJECT_MEDIA_BODY: Readonly<Record<string, never>> = Object.freeze({});

/**
 * Boot targets a BMC may report back for the one that was sent.
 * QUIRKS: Supermicro | boot override — "Pxe is turned into UefiBootNext".
 */
export function acceptableReadBackTargets(vendor: BmcVendor, sent: string): string[] {
  if (vendor === "Supermicro" && sent === "Pxe") return ["Pxe", "UefiBootNext"];
  return [sent];
}

/**
 * BIOS attributes that carry an HTTP boot URI on BMCs whose Boot object has no HttpBootUri.
 * QUIRKS: All | HTTP boot; Dell | BIOS (`HttpDev1Uri`, `HttpDev1EnDis`); HPE iLO 6 | HTTP boot
 * (`UrlBootFile`). Lenovo has no UefiHttp target at all (Lenovo | boot / BIOS), so no rule.
 */
export function httpBootUriBiosAttributes(
  vendor: BmcVendor,
  uri: string,
): Record<string, string> | undefined {
  if (vendor === "Dell") return { HttpDev1EnDis: "Enabled", HttpDev1Uri: uri };
  if (vendor === "HPE") return { UrlBootFile: uri };
  return undefined;
}
