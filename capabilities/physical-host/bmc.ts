// The PhysicalHost controller's port to a BMC, and the connector that turns a host (plus its
// Secret) into a connected system. This is the only place in the operator that reaches the
// driver: HostBmc speaks the controller's own types (the API's power states, disk media types and
// link states, validated MACs) and every failure leaves it as a BmcFailure, so the state machine
// never decodes Redfish strings or driver error codes. Tests substitute a HostBmc of their own.
import {
  RedfishClientPool,
  canonicalBmcAddress,
  type HostInventory as RedfishInventory,
  type RedfishLogger,
  type RedfishSystem,
  type VirtualMediaSlot,
} from "../../redfish";
import type { PhysicalHost, PowerStateName } from "../api";
import { bmcAccess, type SecretLabeller, type SecretReader } from "./credentials";
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
  processors: { count: number; cores: number; threads: number; model?: string };
  /** Unrounded, as the BMC reports it. */
  memory: { totalGiB: number };
  disks: HostDisk[];
  nics: HostNic[];
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
  /** Powers on and waits until the BMC reports On; no-op when on. */
  powerOn(): Promise<void>;
  /** Graceful shutdown (unless forced), then ForceOff; waits until Off. */
  powerOff(options?: { force?: boolean; gracefulTimeoutMs?: number }): Promise<void>;
  restart(options?: { force?: boolean }): Promise<void>;
  virtualMedia(): Promise<MediaSlot[]>;
  /** Inserts into a free slot for `kind` and verifies it shows as inserted. */
  insertMedia(request: { image: string; kind: "cd" | "usb" }): Promise<{ slot: MediaSlot }>;
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
async function translated<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toBmcFailure(err);
  }
}

/** The controller's view of one system of the driver. */
function hostBmc(system: RedfishSystem): HostBmc {
  return {
    inventory: () => translated(async () => toHostInventory(await system.inventory())),
    powerState: () => translated(async () => toPowerState(await system.powerState())),
    powerOn: () => translated(() => system.powerOn()),
    powerOff: options => translated(() => system.powerOff(options)),
    restart: options => translated(() => system.restart(options)),
    virtualMedia: () => translated(async () => (await system.virtualMedia()).map(toMediaSlot)),
    insertMedia: request =>
      translated(async () => ({ slot: toMediaSlot((await system.insertMedia(request)).slot) })),
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

export function toHostInventory(inventory: RedfishInventory): HostInventory {
  return {
    manufacturer: inventory.manufacturer,
    model: inventory.model,
    serialNumber: inventory.serialNumber,
    uuid: inventory.uuid,
    biosVersion: inventory.biosVersion,
    bmcFirmwareVersion: inventory.bmcFirmwareVersion,
    health: inventory.health,
    hostName: inventory.hostName,
    powerState: toPowerState(inventory.powerState),
    processors: {
      count: inventory.processors.count,
      cores: inventory.processors.cores,
      threads: inventory.processors.threads,
      model: inventory.processors.items.find(p => p.model)?.model,
    },
    memory: { totalGiB: inventory.memory.totalGiB },
    disks: inventory.disks.map(d => ({
      name: d.name ?? d.id,
      sizeBytes: d.sizeBytes,
      mediaType: diskType(d.mediaType, d.protocol),
    })),
    nics: inventory.nics.map(n => ({
      name: n.id,
      macAddress: MAC.test(n.macAddress ?? "") ? n.macAddress!.toLowerCase() : undefined,
      linkStatus: linkStatus(n.linkStatus),
      speedMbps: n.speedMbps,
      ipAddresses: n.ipAddresses ?? [],
    })),
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

export interface BmcConnection {
  bmc: HostBmc;
  /** The BMC's address, for logs. */
  address: string;
  release(): void;
}

/** Connects a host's BMC; throws a BmcFailure (a CredentialsError for Secret problems). */
export type BmcConnector = (host: PhysicalHost) => Promise<BmcConnection>;

export interface ConnectorOptions {
  readSecret: SecretReader;
  labelSecret: SecretLabeller;
  logger?: RedfishLogger;
  requestTimeoutMs?: number;
  maxConcurrentRequests?: number;
  /** Sink for per-request statistics (metrics): operation name, status, latency. */
  onRequest?: (operation: string, status: number | undefined, durationMs: number) => void;
}

/**
 * One shared client per BMC (keyed by its canonical address and a hash of the credentials),
 * reused across reconciles so sessions and keep-alive connections are not re-opened each time.
 * Hosts sharing a BMC share the client but each names its own system: a host without systemId
 * on a multi-system BMC gets a SystemSelection failure whatever its neighbours chose.
 * `pool.closeAll()` logs every session out (for shutdown).
 */
export function poolConnector(options: ConnectorOptions): {
  connect: BmcConnector;
  pool: RedfishClientPool;
} {
  const pool = new RedfishClientPool({
    defaults: {
      logger: options.logger,
      timeoutMs: options.requestTimeoutMs,
      maxConcurrentRequests: options.maxConcurrentRequests,
      onRequest: options.onRequest
        ? r => options.onRequest!(redfishOperation(r.method, r.path), r.status, r.durationMs)
        : undefined,
    },
  });
  const connect: BmcConnector = host =>
    translated(async () => {
      const access = await bmcAccess(host, options.readSecret, options.labelSecret);
      const { client, release } = pool.acquire({
        address: access.address,
        credentials: access.credentials,
        tls: access.tls,
      });
      return {
        bmc: hostBmc(client.system(access.systemId)),
        address: access.address,
        release,
      };
    });
  return { connect, pool };
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
