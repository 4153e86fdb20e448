// The PhysicalHost controller's port to a BMC, and the connector that turns a host (plus its
// Secret) into a connected system. This is the only place in the operator that reaches the
// driver: HostBmc speaks the controller's own types (the API's power states, disk media types and
// link states, validated MACs) and every failure leaves it as a BmcFailure, so the state machine
// never decodes Redfish strings or driver error codes. Tests substitute a HostBmc of their own.
import {
  DEFAULT_SOCKET_LINGER_MS,
  RedfishClientPool,
  canonicalBmcAddress,
  type HostInventory as RedfishInventory,
  type RedfishLogger,
  type RedfishSystem,
  type VirtualMediaSlot,
  withBmcDeadline,
} from "../../redfish";
import type { PhysicalHost, PowerStateName } from "../api";
import { bmcAccess, type AccessPolicy, type SecretReader } from "./credentials";
import { toBmcFailure } from "./failure";

export { BmcFailure, toBmcFailure } from "./failure";

export type DiskMediaType = "HDD" | "SSD" | "NVMe" | "Unknown";
export type LinkStatus = "Up" | "Down" | "Unknown";
export type HealthName = "OK" | "Warning" | "Critical" | "Unknown";

/** The inventory as the controller records it; every value is already in the API's terms. */
export interface HostInventory {
  manufacturer?: string;
  model?: string;
  serialNumber?: string;
  uuid?: string;
  biosVersion?: string;
  bmcFirmwareVersion?: string;
  health: HealthName;
  /** ComputerSystem.HostName, when the BMC knows it. */
  hostName?: string;
  powerState: PowerStateName;
  /** Non-negative integers; absent where the BMC reported none or nonsense. */
  processors: { count?: number; cores?: number; threads?: number; model?: string };
  /** Unrounded, as the BMC reports it; absent where it reported none or nonsense. */
  memory: { totalGiB?: number };
  disks: HostDisk[];
  nics: HostNic[];
  /** What the BMC can boot the host with; absent when it could not be read. */
  bootCapabilities?: BootCapabilities;
}

/** What the BMC offers for booting: the claim matches a machine's mode against it. */
export interface BootCapabilities {
  /** Absent when the slots could not be read. */
  virtualMedia?: ("CD" | "USB")[];
  /** Slots loadable with a CD or USB stick; absent when the slots could not be read. */
  virtualMediaSlots?: number;
  /** Allowed one-time boot targets; empty when the BMC does not list them. */
  bootTargets: string[];
  httpBootURI: boolean;
}

export interface HostDisk {
  /** The drive's name, else its Id. */
  name: string;
  sizeBytes?: number;
  mediaType: DiskMediaType;
}

export interface HostNic {
  name: string;
  /** Lower case, colon or dash separated; absent when the BMC reported none or garbage. */
  macAddress?: string;
  linkStatus: LinkStatus;
  speedMbps?: number;
  ipAddresses: string[];
}

/** One virtual media slot: its Id and what it holds. */
export interface MediaSlot {
  id: string;
  inserted: boolean;
  image?: string;
}

export type BootOverrideEnabled = "Disabled" | "Once" | "Continuous";

/** The one-time (or persistent) boot override as the BMC reports it. */
export interface BootOverride {
  /** Anything the BMC reports other than Disabled or Continuous counts as Once: it is set. */
  enabled: BootOverrideEnabled;
  /** The BMC's own target name, e.g. UsbCd on Supermicro for a Cd request. */
  target: string;
  mode?: string;
}

export interface BootOverrideRequest {
  target: "Cd" | "Pxe" | "UefiHttp";
  persistent?: boolean;
  mode?: "UEFI" | "Legacy";
  /** Required for UefiHttp. */
  httpBootUri?: string;
}

export interface HostBmc {
  inventory(): Promise<HostInventory>;
  powerState(): Promise<PowerStateName>;
  /** Powers on and waits until the BMC reports On; false (nothing sent) when already on. */
  powerOn(): Promise<boolean>;
  /** Graceful shutdown (unless forced), then ForceOff; waits until Off; false (nothing sent) when
   *  already off. Reads the power state itself: no powerState() call is needed before it. */
  powerOff(options?: { force?: boolean; gracefulTimeoutMs?: number }): Promise<boolean>;
  restart(options?: { force?: boolean }): Promise<void>;
  virtualMedia(): Promise<MediaSlot[]>;
  /** Inserts into a free slot for `kind` and verifies it shows as inserted. */
  insertMedia(request: {
    image: string;
    kind: "cd" | "usb";
  }): Promise<{ slot: MediaSlot; alreadyInserted: boolean }>;
  /** Ejects every slot. */
  ejectMedia(): Promise<void>;
  bootOverride(): Promise<BootOverride>;
  /** Sets, then reads back, the override; `targetSent` is the BMC's name for the target. */
  setBootOverride(
    request: BootOverrideRequest,
  ): Promise<{ targetSent: string; state: BootOverride }>;
  clearBootOverride(): Promise<void>;
}

/** Calls `fn`, turning whatever it throws into a BmcFailure. */
async function translatedCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toBmcFailure(err);
  }
}

/**
 * The controller's view of one system of the driver. With a deadline (epoch ms), every call's BMC
 * requests stop at it (DeadlineExceeded, a transient BMCUnreachable failure).
 */
export function hostBmc(system: RedfishSystem, deadline?: number): HostBmc {
  const translated = <T>(fn: () => Promise<T>, at = deadline): Promise<T> =>
    translatedCall(at === undefined ? fn : () => withBmcDeadline(at, fn));
  // A graceful shutdown configured longer than the deadline still gets its wait, plus 3 minutes
  // for the forced off and its verification.
  const shutdownDeadline = (gracefulTimeoutMs = 0) =>
    deadline === undefined
      ? undefined
      : Math.max(deadline, Date.now() + gracefulTimeoutMs + 180_000);
  return {
    inventory: () =>
      translated(async () => {
        const raw = await system.inventory();
        // The slots are an addition: a BMC whose slots cannot be read still enrolls. One read
        // gives both the kinds and the number of loadable slots (a second one takes a config
        // volume beside the ISO).
        const slots = await system.virtualMedia().catch(() => undefined);
        return { ...toHostInventory(raw), bootCapabilities: toBootCapabilities(raw, slots) };
      }),
    powerState: () => translated(async () => toPowerState(await system.powerState())),
    powerOn: () => translated(() => system.powerOn()),
    powerOff: options =>
      translated(() => system.powerOff(options), shutdownDeadline(options?.gracefulTimeoutMs)),
    restart: options => translated(() => system.restart(options)),
    virtualMedia: () => translated(async () => (await system.virtualMedia()).map(toMediaSlot)),
    insertMedia: request =>
      translated(async () => {
        const result = await system.insertMedia(request);
        return { slot: toMediaSlot(result.slot), alreadyInserted: !!result.alreadyInserted };
      }),
    ejectMedia: () =>
      translated(async () => {
        await system.ejectMedia();
      }),
    bootOverride: () => translated(async () => toBootOverride(await system.bootOverride())),
    setBootOverride: request =>
      translated(async () => {
        const result = await system.setBootOverride(request);
        return { targetSent: result.targetSent, state: toBootOverride(result.state) };
      }),
    clearBootOverride: () =>
      translated(async () => {
        await system.clearBootOverride();
      }),
  };
}

// ---- translation of the driver's values ----------------------------------------------------

const MAC = /^([0-9A-Fa-f]{2}[:-]){5,19}[0-9A-Fa-f]{2}$/;

/**
 * The status schema's limits (capabilities/api/sources/physicalhost.ts HardwareDetails and
 * common.ts MachineAddress; a unit test holds this table to the schema). Everything copied from a
 * BMC goes through them here, so a BMC reporting a 300-character manufacturer, a fractional or
 * negative count or a thousand NICs cannot make the API server refuse the status patch.
 */
export const INVENTORY_LIMITS = {
  /** manufacturer, model, serialNumber, biosVersion, bmcFirmwareVersion, cpu model, disk and
   *  NIC names. */
  text: 256,
  uuid: 64,
  /** MachineAddress.address (host name and IP addresses). */
  address: 256,
  disks: 128,
  nics: 64,
  /** IP addresses kept per NIC (MachineAddresses holds 32 in all). */
  addressesPerNic: 32,
  /** bootCapabilities.bootTargets: items and length of each. */
  bootTargets: 32,
  bootTarget: 64,
} as const;

/**
 * Control characters (C0, DEL, C1) go; the rest is trimmed and cut to `max` UTF-16 units (never
 * inside a surrogate pair). Kubernetes counts code points, so this is within its limit too.
 */
export function cleanText(value: unknown, max: number): string | undefined {
  if (typeof value !== "string") return undefined;
  // eslint-disable-next-line no-control-regex
  const text = value.replace(/[\u0000-\u001f\u007f-\u009f]/g, "").trim();
  if (text.length === 0) return undefined;
  return text.length > max ? cutText(text, max).trimEnd() : text;
}

/** The longest prefix of `text` of at most `max` UTF-16 units that splits no surrogate pair. */
export function cutText(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = text.slice(0, max);
  const last = cut.charCodeAt(cut.length - 1);
  return last >= 0xd800 && last <= 0xdbff ? cut.slice(0, -1) : cut;
}

/** A count or size as a non-negative safe integer (rounded), or undefined. */
export function cleanCount(value: unknown): number | undefined {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) return undefined;
  const rounded = Math.round(value);
  return Number.isSafeInteger(rounded) ? rounded : undefined;
}

/** A non-negative finite number (memory is rounded by the state machine), or undefined. */
function cleanAmount(value: unknown): number | undefined {
  return typeof value === "number" && Number.isFinite(value) && value >= 0 && value <= 2 ** 50
    ? value
    : undefined;
}

const HEALTH = new Set<string>(["OK", "Warning", "Critical", "Unknown"]);

export function toHostInventory(inventory: RedfishInventory): HostInventory {
  const { text, uuid, address } = INVENTORY_LIMITS;
  const processors = inventory.processors ?? { count: 0, cores: 0, threads: 0, items: [] };
  return {
    manufacturer: cleanText(inventory.manufacturer, text),
    model: cleanText(inventory.model, text),
    serialNumber: cleanText(inventory.serialNumber, text),
    uuid: cleanText(inventory.uuid, uuid),
    biosVersion: cleanText(inventory.biosVersion, text),
    bmcFirmwareVersion: cleanText(inventory.bmcFirmwareVersion, text),
    health: HEALTH.has(inventory.health) ? inventory.health : "Unknown",
    hostName: cleanText(inventory.hostName, address),
    powerState: toPowerState(inventory.powerState),
    processors: {
      count: cleanCount(processors.count),
      cores: cleanCount(processors.cores),
      threads: cleanCount(processors.threads),
      model: cleanText((processors.items ?? []).find(p => cleanText(p.model, text))?.model, text),
    },
    memory: { totalGiB: cleanAmount(inventory.memory?.totalGiB) },
    disks: (inventory.disks ?? []).slice(0, INVENTORY_LIMITS.disks).map(d => ({
      name: cleanText(d.name, text) ?? cleanText(d.id, text) ?? "",
      sizeBytes: cleanCount(d.sizeBytes),
      mediaType: diskType(d.mediaType, d.protocol),
    })),
    nics: (inventory.nics ?? []).slice(0, INVENTORY_LIMITS.nics).map(n => ({
      name: cleanText(n.id, text) ?? "",
      macAddress: MAC.test(n.macAddress ?? "") ? n.macAddress!.toLowerCase() : undefined,
      linkStatus: linkStatus(n.linkStatus),
      speedMbps: cleanCount(n.speedMbps),
      ipAddresses: (n.ipAddresses ?? [])
        .slice(0, INVENTORY_LIMITS.addressesPerNic)
        .flatMap(ip => cleanText(ip, address) ?? []),
    })),
  };
}

/** The kinds a slot takes, by the MediaTypes the driver parsed (AMI's inferred ones included). */
function slotKinds(slot: VirtualMediaSlot): ("CD" | "USB")[] {
  if (slot.insertMethod === "none") return [];
  const kinds: ("CD" | "USB")[] = [];
  if (slot.mediaTypes.some(t => t === "CD" || t === "DVD")) kinds.push("CD");
  if (slot.mediaTypes.some(t => t === "USBStick" || t === "Floppy")) kinds.push("USB");
  return kinds;
}

/** What the BMC can boot the host with; without readable slots, virtual media is left unsaid. */
export function toBootCapabilities(
  inventory: RedfishInventory,
  slots: VirtualMediaSlot[] | undefined,
): BootCapabilities {
  const loadable = slots?.map(slotKinds).filter(kinds => kinds.length > 0);
  const media = loadable
    ? (["CD", "USB"] as const).filter(kind => loadable.some(kinds => kinds.includes(kind)))
    : undefined;
  return {
    ...(media ? { virtualMedia: [...media] } : {}),
    ...(loadable ? { virtualMediaSlots: loadable.length } : {}),
    bootTargets: (inventory.bootTargets ?? [])
      .slice(0, INVENTORY_LIMITS.bootTargets)
      .flatMap(t => cleanText(t, INVENTORY_LIMITS.bootTarget) ?? []),
    httpBootURI: !!inventory.httpBootUri,
  };
}

/** Redfish Drive.MediaType is HDD/SSD/SMR and the protocol says NVMe; the API has four values. */
function diskType(mediaType?: string, protocol?: string): DiskMediaType {
  if (protocol === "NVMe") return "NVMe";
  if (mediaType === "SSD") return "SSD";
  if (mediaType === "HDD" || mediaType === "SMR") return "HDD";
  return "Unknown";
}

/** Redfish LinkStatus is LinkUp/LinkDown/NoLink. */
function linkStatus(value?: string): LinkStatus {
  if (value === "LinkUp") return "Up";
  if (value === "LinkDown" || value === "NoLink") return "Down";
  return "Unknown";
}

/** Redfish adds Paused (and BMCs invent more); the API has On, Off, the two transitions, Unknown. */
export function toPowerState(power: string): PowerStateName {
  return power === "On" || power === "Off" || power === "PoweringOn" || power === "PoweringOff"
    ? power
    : "Unknown";
}

function toMediaSlot(slot: VirtualMediaSlot): MediaSlot {
  return { id: slot.id, inserted: slot.inserted, image: slot.image };
}

function toBootOverride(state: { enabled: string; target: string; mode?: string }): BootOverride {
  const enabled: BootOverrideEnabled =
    state.enabled === "Disabled" || state.enabled === "Continuous" ? state.enabled : "Once";
  return { enabled, target: state.target, mode: state.mode };
}

// ---- connector -------------------------------------------------------------------------------

/** A host's next run within this long is "soon": its BMC's sockets are kept for it (the pool's
 *  linger). */
export const NEXT_RUN_SOON_MS = DEFAULT_SOCKET_LINGER_MS;

export interface BmcConnection {
  bmc: HostBmc;
  /** The BMC's address, for logs. */
  address: string;
  /** `soon`: the host's next run follows within seconds, so the BMC's sockets are kept for it. */
  release(options?: { soon?: boolean }): void;
}

/** Connects a host's BMC; throws a BmcFailure (a CredentialsError for Secret problems). */
export type BmcConnector = (host: PhysicalHost) => Promise<BmcConnection>;

export interface ConnectorOptions {
  readSecret: SecretReader;
  /** Addresses and namespaces refused before any request; the policy also goes to the driver,
   *  which judges every address a BMC's name resolves to. */
  access: AccessPolicy;
  logger?: RedfishLogger;
  requestTimeoutMs?: number;
  maxConcurrentRequests?: number;
  /** Bound on all BMC time of one connection (one reconcile or finalize run). Default 5 min. */
  operationDeadlineMs?: number;
  /** Sink for per-request statistics (metrics): operation name, status, latency. */
  onRequest?: (operation: string, status: number | undefined, durationMs: number) => void;
}

/**
 * How long one reconcile (or finalize run) may spend on its BMC: above the longest legitimate
 * sequence (graceful shutdown 2 min, then force off and its 1 min verification, ejects), so only
 * a BMC that keeps answering slowly meets it; the run then fails as BMCUnreachable and is retried
 * with backoff instead of holding its worker and the BMC's slot indefinitely.
 */
export const DEFAULT_OPERATION_DEADLINE_MS = 5 * 60_000;

/**
 * One shared client per BMC (keyed by its canonical address and a hash of the credentials),
 * reused across reconciles so sessions and keep-alive connections are not re-opened each time.
 * Hosts sharing a BMC share the client but each names its own system: a host without systemId
 * on a multi-system BMC gets a SystemSelection failure whatever its neighbours chose.
 * `pool.closeAll()` logs every session out (for shutdown).
 */
export function poolConnector(options: ConnectorOptions): {
  connect: BmcConnector;
  /**
   * Reads the host's system now, for a run expected in a moment (a claim under way): its
   * power-off takes this read instead of a GET of its own (RedfishSystem.readAhead), and the
   * BMC's connection is open by then. Never rejects: a failed read leaves the run to read.
   */
  readAhead: (host: PhysicalHost) => Promise<void>;
  pool: RedfishClientPool;
} {
  const pool = new RedfishClientPool({
    defaults: {
      logger: options.logger,
      timeoutMs: options.requestTimeoutMs,
      maxConcurrentRequests: options.maxConcurrentRequests,
      addressPolicy: options.access.addressPolicy,
      onRequest: options.onRequest
        ? r => options.onRequest!(redfishOperation(r.method, r.path), r.status, r.durationMs)
        : undefined,
    },
  });
  const deadlineMs = options.operationDeadlineMs ?? DEFAULT_OPERATION_DEADLINE_MS;
  /** The host's system on the pooled client of its BMC (its Secret read, its address judged). */
  const acquire = async (host: PhysicalHost) => {
    const access = await bmcAccess(host, options.readSecret, options.access);
    const { client, release } = pool.acquire({
      address: access.address,
      credentials: access.credentials,
      tls: access.tls,
    });
    return { system: client.system(access.systemId), address: access.address, release };
  };
  const connect: BmcConnector = host =>
    translatedCall(async () => {
      const deadline = Date.now() + deadlineMs;
      const { system, address, release } = await acquire(host);
      return {
        bmc: hostBmc(system, deadline),
        address,
        release: ({ soon = false } = {}) => release({ lingerSockets: soon }),
      };
    });
  const readAhead = async (host: PhysicalHost): Promise<void> => {
    try {
      const { system, release } = await acquire(host);
      try {
        await system.readAhead();
      } finally {
        // The run follows within a second: its sockets stay for it.
        release({ lingerSockets: true });
      }
    } catch {
      // Credentials or address refused: the run finds the same and says so.
    }
  };
  return { connect, readAhead, pool };
}

/**
 * The work queue's per-BMC group: hosts whose addresses name the same BMC (https://BMC1 and
 * https://bmc1:443) share one group, so per-BMC concurrency limits hold across spellings.
 */
export function bmcGroupKey(host: PhysicalHost): string {
  return canonicalBmcAddress(host.spec?.redfishConnection?.address ?? "");
}

/** Resources named in metrics; anything else along a path is an Id, which would explode the
 *  label's cardinality. */
const RESOURCES = new Set([
  "Systems",
  "Managers",
  "Chassis",
  "SessionService",
  "Sessions",
  "VirtualMedia",
  "EthernetInterfaces",
  "Processors",
  "Memory",
  "Storage",
  "Drives",
  "SimpleStorage",
  "Bios",
  "Settings",
  "TaskService",
  "Tasks",
]);

/** A metrics label for a Redfish request: "POST ComputerSystem.Reset", "GET VirtualMedia". */
function redfishOperation(method: string, path: string): string {
  const segments = path.split("?")[0]!.split("/").filter(Boolean).slice(2); // after redfish/v1
  const action = segments.indexOf("Actions");
  if (action >= 0 && segments[action + 1]) return `${method} ${segments[action + 1]}`;
  const resource = [...segments].reverse().find(s => RESOURCES.has(s));
  return `${method} ${resource ?? (segments.length ? "Other" : "ServiceRoot")}`;
}
