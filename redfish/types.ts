// Public value types of the Redfish driver. Everything here is plain data so that consumers (the
// PhysicalHost controller, the CLI, tests) never depend on Redfish JSON shapes directly.

import type { BmcAddressPolicy } from "./address-policy";

/** BMC login. Held in memory only; never logged, never part of an error or event. */
export interface BmcCredentials {
  username: string;
  password: string;
}

/** TLS policy for one BMC. Verified against the system trust store unless told otherwise. */
export interface BmcTlsOptions {
  /** PEM bundle of CA certificates trusted for this BMC (replaces the system store). */
  caBundle?: string;
  /** Skip certificate verification entirely. Must be asked for explicitly. */
  insecure?: boolean;
}

export interface RetryOptions {
  /** Retries after the first attempt for requests that are safe to repeat. Default 3. */
  attempts?: number;
  /** First backoff delay; doubles each retry, with full jitter. Default 500 ms. */
  baseDelayMs?: number;
  /** Cap on a single backoff delay. Default 8000 ms. */
  maxDelayMs?: number;
}

/** Structured, credential-free log sink. The driver logs at debug for requests, warn for fallbacks. */
export interface RedfishLogger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

export type AuthMode = "auto" | "session" | "basic";

export interface RedfishClientOptions {
  /** `https://host[:port]`, `host[:port]` (https implied) or `http://…` for emulators. */
  address: string;
  credentials: BmcCredentials;
  tls?: BmcTlsOptions;
  /** Which ComputerSystem `client.system()` acts on when the BMC manages several. The pool ignores
   *  it (a shared client has no default system): pass the Id to `client.system(id)` instead. */
  systemId?: string;
  /** auto: SessionService when present, else Basic. Default auto. */
  auth?: AuthMode;
  /** Per-request timeout. Default 30000 ms. */
  timeoutMs?: number;
  retry?: RetryOptions;
  /** Requests in flight at once to this BMC; BMCs are slow and fragile. Default 4. */
  maxConcurrentRequests?: number;
  /** How often and how long 202 task monitors are polled. Defaults 2000 ms / 10 min. */
  taskPollIntervalMs?: number;
  taskTimeoutMs?: number;
  /** Graceful shutdown wait before forcing power off. Default 120000 ms. */
  gracefulShutdownTimeoutMs?: number;
  /** Interval for polling power state / media state while verifying an effect. Default 2000 ms. */
  verifyPollIntervalMs?: number;
  /** How long to wait for power or media changes to show. Default 60000 ms. */
  verifyTimeoutMs?: number;
  /** Largest response body accepted; a larger one is aborted at the limit with
   *  ResponseTooLargeError. Default 16 MiB (DEFAULT_MAX_RESPONSE_BYTES). */
  maxResponseBytes?: number;
  /** Most Members the driver accepts in one collection it walks; more is an InvalidResponseError.
   *  Default 10 000 (DEFAULT_MAX_COLLECTION_MEMBERS). */
  maxCollectionMembers?: number;
  logger?: RedfishLogger;
  /** Called after every HTTP request (for metrics). Must not throw. */
  onRequest?: (record: RequestRecord) => void;
  /** Addresses the client refuses to connect to (address-policy.ts); none when absent. */
  addressPolicy?: BmcAddressPolicy;
}

/** Per-client counters so tests and benchmarks can assert what an operation cost. */
export interface RequestRecord {
  method: string;
  path: string;
  status: number | undefined;
  durationMs: number;
}

export interface RequestStats {
  total: number;
  byMethod: Record<string, number>;
  /** Responses by HTTP status; `error` for requests that got no response. */
  byStatus: Record<string, number>;
  totalLatencyMs: number;
  maxLatencyMs: number;
  retries: number;
  logins: number;
  /** The most recent requests (bounded), oldest first. */
  recent: RequestRecord[];
}

/** Vendor families that need a named rule somewhere; detection covers everything else. */
export type BmcVendor = "Dell" | "HPE" | "Lenovo" | "Supermicro" | "AMI" | "OpenBMC" | "Generic";

export type PowerState = "On" | "Off" | "PoweringOn" | "PoweringOff" | "Paused" | "Unknown";

export type ResetType =
  | "On"
  | "ForceOff"
  | "GracefulShutdown"
  | "GracefulRestart"
  | "ForceRestart"
  | "Nmi"
  | "ForceOn"
  | "PushPowerButton"
  | "PowerCycle"
  | "Suspend"
  | "Pause"
  | "Resume";

export type Health = "OK" | "Warning" | "Critical" | "Unknown";

export interface ProcessorInfo {
  id: string;
  model?: string;
  manufacturer?: string;
  cores?: number;
  threads?: number;
  maxSpeedMHz?: number;
}

export interface DiskInfo {
  id: string;
  name?: string;
  model?: string;
  serialNumber?: string;
  sizeBytes?: number;
  mediaType?: string;
  protocol?: string;
  /** Storage controller or SimpleStorage the disk was found under. */
  controller?: string;
}

export interface NicInfo {
  id: string;
  name?: string;
  macAddress?: string;
  linkStatus?: string;
  speedMbps?: number;
  enabled?: boolean;
  /** IPv4/IPv6 addresses the BMC reports for the interface (an OS agent or DHCP snooping). */
  ipAddresses?: string[];
}

export interface HostInventory {
  vendor: BmcVendor;
  /** ComputerSystem.HostName, when the BMC knows it. */
  hostName?: string;
  systemId: string;
  manufacturer?: string;
  model?: string;
  serialNumber?: string;
  sku?: string;
  uuid?: string;
  biosVersion?: string;
  bmcFirmwareVersion?: string;
  bmcModel?: string;
  redfishVersion?: string;
  health: Health;
  powerState: PowerState;
  processors: { count: number; cores: number; threads: number; items: ProcessorInfo[] };
  memory: { totalGiB: number };
  disks: DiskInfo[];
  nics: NicInfo[];
  /** BootSourceOverrideTarget AllowableValues; empty when the BMC does not list them. */
  bootTargets: string[];
  /** Whether a UEFI HTTP boot URI can be set (Boot.HttpBootUri, or the vendor's BIOS attribute). */
  httpBootUri: boolean;
  /** Links that could not be read; inventory is still returned with what was found. */
  warnings: string[];
}

export type BootTarget = "Pxe" | "Cd" | "Hdd" | "UefiHttp" | "UefiTarget" | "Usb" | "BiosSetup";
export type BootOverrideEnabled = "Disabled" | "Once" | "Continuous";
export type BootMode = "UEFI" | "Legacy";

export interface BootOverrideRequest {
  target: BootTarget;
  /** Continuous when true, else Once. Falls back to Once where Continuous is not offered. */
  persistent?: boolean;
  mode?: BootMode;
  /** Required for UefiHttp: the URI the firmware fetches. */
  httpBootUri?: string;
  /** Required for UefiTarget: a UEFI device path the BMC lists. */
  uefiTarget?: string;
}

export interface BootOverrideState {
  enabled: BootOverrideEnabled | string;
  /** What the BMC reports, e.g. `UsbCd` on Supermicro for a `Cd` request. */
  target: string;
  mode?: string;
  httpBootUri?: string;
  uefiTarget?: string;
  allowedTargets: string[];
  allowedEnabled: string[];
  allowedModes: string[];
}

export interface BootOverrideResult {
  state: BootOverrideState;
  /** The Redfish target value sent (may differ from the request, e.g. UsbCd). */
  targetSent: string;
  /** Continuous was asked for but the BMC only offers Once; the caller must re-apply per boot. */
  persistenceFellBackToOnce: boolean;
  warnings: string[];
}

export type MediaKind = "cd" | "usb";

export interface VirtualMediaSlot {
  /** The slot's @odata.id, which is also how callers name it. */
  path: string;
  id: string;
  location: "Systems" | "Managers";
  mediaTypes: string[];
  /** Inserted after normalising vendor oddities (Image "None", NotConnected with an image). */
  inserted: boolean;
  image?: string;
  writeProtected?: boolean;
  connectedVia?: string;
  /** How this slot can be loaded: InsertMedia action, PATCH of the slot, or not at all. */
  insertMethod: "action" | "patch" | "none";
}

export interface InsertMediaRequest {
  /** http(s)/nfs/cifs URL of the image. */
  image: string;
  /** cd for an ISO (default), usb for a small config volume. */
  kind?: MediaKind;
  /** Use this slot (its path or Id) instead of choosing by media type. */
  slot?: string;
  /** Credentials for the image server, sent only if the BMC asks for them. */
  imageCredentials?: BmcCredentials;
  writeProtected?: boolean;
}

export interface InsertMediaResult {
  slot: VirtualMediaSlot;
  /** Action parameter names (or PATCH properties) in the request the BMC accepted. */
  parametersSent: string[];
  /** The image was in a slot already: nothing was sent. */
  alreadyInserted?: boolean;
}

export interface BiosSettings {
  attributes: Record<string, unknown>;
  /** Attributes queued in the settings object and not applied yet. */
  pending: Record<string, unknown>;
  settingsPath?: string;
  supportedApplyTimes: string[];
}

export interface SetBiosResult {
  /** Where the change was written: the settings object, or the Bios resource itself. */
  writtenTo: string;
  applyTime?: string;
  /** True when the change takes effect only after a reset. */
  requiresReset: boolean;
}

export interface PowerOffOptions {
  /** Skip the graceful attempt. */
  force?: boolean;
  /** Override the client's graceful shutdown timeout. */
  gracefulTimeoutMs?: number;
}

export interface TaskResult {
  taskState?: string;
  taskStatus?: string;
  messages: { messageId?: string; message?: string }[];
  /** Final body returned by the task monitor, if any. */
  body?: unknown;
}
