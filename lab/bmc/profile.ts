// Vendor profile: which REDFISH-QUIRKS.md behaviours the test BMC reproduces. It is derived from
// the capture (ServiceRoot Vendor, system Manufacturer, folder name) and every field can be
// overridden, so a quirk seen on one vendor (e.g. AMI's required TransferProtocolType) can be
// switched on for any mockup.
import { dig, type JsonObject, type MockupStore, odataId } from "./mockup-store";

export type Vendor = "dell" | "hpe" | "lenovo" | "supermicro" | "openbmc" | "dmtf" | "generic";

export interface VendorProfile {
  vendor: Vendor;
  /** Shape of ETag values: HPE issues weak `W/"…"` tags, everyone else strong ones. */
  etag: "strong" | "weak";
  /** Lenovo XCC: PATCH without If-Match → 428 PreconditionRequired. */
  requireIfMatch: boolean;
  /** AMI MegaRAC: InsertMedia without TransferProtocolType → 400 ActionParameterMissing. */
  requireTransferProtocolType: boolean;
  /** AMI MegaRAC: a Boot PATCH must carry Mode, Enabled and Target together. */
  requireFullBootObject: boolean;
  /** Supermicro X11/X12: InsertMedia rejects Inserted/WriteProtected, eject keeps Image/ImageName. */
  supermicroLegacyVirtualMedia: boolean;
  /** Supermicro: a virtual CD only boots with target UsbCd (Cd means the physical drive). */
  virtualCdBootTarget: "Cd" | "UsbCd";
  /** Supermicro: a Boot PATCH without BootSourceOverrideEnabled is rejected (ironic story 2008547). */
  requireOverrideEnabledInBootPatch: boolean;
  /** Supermicro X13: EjectMedia is only advertised (and accepted) while media is inserted. */
  ejectActionOnlyWhenInserted: boolean;
  /** HPE iLO: EjectMedia needs a JSON `{}` body (415 without a body/content type, 400 if empty). */
  ejectNeedsJsonBody: boolean;
  /** HPE iLO: BootSourceOverrideEnabled is rejected when the resulting target is None. */
  rejectOverrideEnabledWithTargetNone: boolean;
  /** HPE iLO: actions answer 200 with a Base.Success ExtendedInfo body instead of 204. */
  actionSuccessBody: boolean;
  /** HPE iLO: task-starting actions return the TaskMonitor in the body, without Location. */
  taskMonitorInBody: boolean;
  /** HPE iLO: Boot PATCH answers UnableToModifyDuringSystemPOST this long after power-on (ms). */
  postWindowMs: number;
  /** Dell iDRAC: after an eject the slot still shows the medium and inserts fail with SYS518 (ms). */
  ejectSettleMs: number;
  /**
   * AMI MegaRAC (several OEM boards): VirtualMedia slots list no MediaTypes, are named
   * "virtual <Id>" (e.g. Id CD1, Name "virtual CD1") and show Image "None" when empty.
   */
  amiVirtualMedia: boolean;
  /** Lenovo XCC: only EXT slots take remote URL mounts; Remote/RDOC slots fail. */
  onlyExtSlotsTakeUrls: boolean;
  /** How the session Location header is given: relative path, absolute URL or missing. */
  sessionLocation: "relative" | "absolute" | "none";
  /** Idle time after which a session token is invalid (401). */
  sessionTimeoutMs: number;
  /** Active sessions the BMC accepts before refusing new logins (leaks exhaust it). */
  maxSessions: number;
  /** Prefix of Base message ids in error bodies, from the capture's registries (e.g. Base.1.12). */
  baseRegistry: string;
}

export type ProfileOverrides = Partial<VendorProfile>;

function detectVendor(store: MockupStore): Vendor {
  const root = store.json("/redfish/v1");
  const hints: string[] = [store.name];
  const vendor = dig(root, "Vendor");
  if (typeof vendor === "string") hints.push(vendor);
  if (root && dig(root, "Oem") && typeof dig(root, "Oem") === "object") {
    hints.push(...Object.keys(dig(root, "Oem") as JsonObject));
  }
  const systems = dig(store.json("/redfish/v1/Systems"), "Members");
  if (Array.isArray(systems)) {
    for (const member of systems) {
      const id = odataId(member);
      const manufacturer = id ? dig(store.json(id), "Manufacturer") : undefined;
      if (typeof manufacturer === "string") hints.push(manufacturer);
    }
  }
  const text = hints.join(" ").toLowerCase();
  if (/\bdell\b|idrac/.test(text)) return "dell";
  if (/\bhpe?\b|ilo|proliant/.test(text)) return "hpe";
  if (/lenovo|xcc/.test(text)) return "lenovo";
  if (/supermicro/.test(text)) return "supermicro";
  if (/openbmc|bluefield|nvidia|mellanox/.test(text)) return "openbmc";
  if (/dmtf|contoso/.test(text)) return "dmtf";
  return "generic";
}

function detectBaseRegistry(store: MockupStore): string {
  const members = dig(store.json("/redfish/v1/Registries"), "Members");
  if (Array.isArray(members)) {
    for (const member of members) {
      const id = odataId(member) ?? "";
      if (!/\/Base[^/]*$/.test(id)) continue;
      // The registry file names its version ("Registry": "Base.1.12.0") even when the URI doesn't.
      const registry = dig(store.json(id), "Registry");
      const match = /^Base\.(\d+)\.(\d+)/.exec(
        typeof registry === "string" ? registry : (id.split("/").pop() ?? ""),
      );
      if (match) return `Base.${match[1]}.${match[2]}`;
    }
  }
  return "Base.1.8";
}

const defaults: Omit<VendorProfile, "vendor" | "baseRegistry"> = {
  etag: "strong",
  requireIfMatch: false,
  requireTransferProtocolType: false,
  requireFullBootObject: false,
  supermicroLegacyVirtualMedia: false,
  virtualCdBootTarget: "Cd",
  requireOverrideEnabledInBootPatch: false,
  ejectActionOnlyWhenInserted: false,
  ejectNeedsJsonBody: false,
  rejectOverrideEnabledWithTargetNone: false,
  actionSuccessBody: false,
  taskMonitorInBody: false,
  postWindowMs: 0,
  ejectSettleMs: 0,
  onlyExtSlotsTakeUrls: false,
  amiVirtualMedia: false,
  sessionLocation: "relative",
  sessionTimeoutMs: 30 * 60_000,
  maxSessions: 32,
};

const byVendor: Record<Vendor, Partial<VendorProfile>> = {
  dell: { ejectSettleMs: 300 },
  hpe: {
    etag: "weak",
    ejectNeedsJsonBody: true,
    rejectOverrideEnabledWithTargetNone: true,
    actionSuccessBody: true,
    taskMonitorInBody: true,
    postWindowMs: 1000,
  },
  lenovo: { requireIfMatch: true, onlyExtSlotsTakeUrls: true },
  supermicro: {
    virtualCdBootTarget: "UsbCd",
    requireOverrideEnabledInBootPatch: true,
    ejectActionOnlyWhenInserted: true,
  },
  openbmc: {},
  dmtf: {},
  generic: {},
};

export function deriveProfile(store: MockupStore, overrides: ProfileOverrides = {}): VendorProfile {
  const vendor = overrides.vendor ?? detectVendor(store);
  return {
    vendor,
    baseRegistry: detectBaseRegistry(store),
    ...defaults,
    ...byVendor[vendor],
    ...overrides,
  };
}
