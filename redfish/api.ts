// The driver's interfaces. A RedfishClient is one BMC (one session, one connection pool, one
// semaphore); a RedfishSystem is one ComputerSystem on it. Implementations live in client.ts and
// system.ts.
import type {
  BiosSettings,
  BmcVendor,
  BootOverrideRequest,
  BootOverrideResult,
  BootOverrideState,
  HostInventory,
  InsertMediaRequest,
  InsertMediaResult,
  MediaKind,
  PowerOffOptions,
  PowerState,
  RequestStats,
  ResetType,
  SetBiosResult,
  TaskResult,
  VirtualMediaSlot,
} from "./types";

/** A parsed Redfish response: JSON body (or undefined), status and the headers that matter. */
export interface RedfishResponse<T = unknown> {
  status: number;
  body: T;
  etag?: string;
  location?: string;
  allow?: string[];
  headers: Record<string, string | string[] | undefined>;
}

export interface RequestOptions {
  /** Send this If-Match value (already quoted as the BMC gave it). */
  ifMatch?: string;
  /** Extra headers (never authentication). */
  headers?: Record<string, string>;
  /** Follow a 202 task monitor to completion before returning. Default true for writes. */
  waitForTask?: boolean;
  /** Retry this non-GET request on the transient errors the quirks list names. */
  retryTransient?: boolean;
}

export interface RedfishClient {
  /** Normalised base URL, e.g. https://10.0.0.5:443 */
  readonly baseUrl: string;

  /** Raw access for operations the typed API does not cover. Paths start with /redfish/v1. */
  get<T = Record<string, unknown>>(
    path: string,
    options?: RequestOptions,
  ): Promise<RedfishResponse<T>>;
  post<T = unknown>(
    path: string,
    body: unknown,
    options?: RequestOptions,
  ): Promise<RedfishResponse<T>>;
  /** PATCH with ETag handling: fetches the ETag if none is given and the BMC needs one. */
  patch<T = unknown>(
    path: string,
    body: unknown,
    options?: RequestOptions,
  ): Promise<RedfishResponse<T>>;
  delete<T = unknown>(path: string, options?: RequestOptions): Promise<RedfishResponse<T>>;
  /** Polls a task monitor (path or absolute URL) until it stops answering 202. */
  waitForTask(monitor: string): Promise<TaskResult>;

  /** Vendor family, from the service root (cached). */
  vendor(): Promise<BmcVendor>;
  /** Ids of every ComputerSystem the BMC manages. */
  systemIds(): Promise<string[]>;
  /** A handle on one system; resolved lazily. Without an id: the client's systemId, or the only one. */
  system(systemId?: string): RedfishSystem;

  stats(): RequestStats;
  resetStats(): void;
  /** Closes keep-alive sockets that are idle; the session stays. The next request reconnects. */
  closeIdleConnections(): void;
  /** Logs out (DELETE session) and closes keep-alive sockets. Safe to call twice. */
  close(): Promise<void>;
}

export interface RedfishSystem {
  /** The resolved Id (after `resolve()`), or the requested one. */
  readonly requestedId?: string;
  /** The ComputerSystem's @odata.id; throws SystemSelectionError when ambiguous or missing. */
  resolve(): Promise<string>;
  /**
   * Reads the system now for a call expected in a moment: the next powerOff (or inventory) within
   * 3 s uses this read instead of its own GET, unless anything is written to the BMC first.
   * Never rejects.
   */
  readAhead(): Promise<void>;

  inventory(): Promise<HostInventory>;

  powerState(): Promise<PowerState>;
  /** ResetType values the BMC advertises (AllowableValues or ActionInfo). */
  allowedResetTypes(): Promise<ResetType[]>;
  /** Sends one ComputerSystem.Reset; UnsupportedOperationError if the type is not offered. */
  reset(type: ResetType): Promise<void>;
  /** Powers on and waits until the BMC reports On. No-op when already on: then false. */
  powerOn(): Promise<boolean>;
  /** Graceful shutdown, waits, then ForceOff; waits until Off. No-op when already off: then
   *  false. One read of the system tells the power state and the reset types. */
  powerOff(options?: PowerOffOptions): Promise<boolean>;
  /** Restart: GracefulRestart/ForceRestart; when off, powers on. */
  restart(options?: { force?: boolean }): Promise<void>;
  /** PowerCycle where offered, else off then on. */
  powerCycle(): Promise<void>;

  bootOverride(): Promise<BootOverrideState>;
  /** The virtual media kinds some slot of the system can be loaded with. */
  loadableMediaKinds(): Promise<MediaKind[]>;
  /** Sets, then reads back, the boot override. Throws VerificationError if it did not stick. */
  setBootOverride(request: BootOverrideRequest): Promise<BootOverrideResult>;
  clearBootOverride(): Promise<BootOverrideState>;

  virtualMedia(): Promise<VirtualMediaSlot[]>;
  /** Inserts into a free slot accepting `kind` and verifies it shows as inserted. */
  insertMedia(request: InsertMediaRequest): Promise<InsertMediaResult>;
  /** Ejects one slot (path or Id) or, without one, every slot holding `kind` (default: all). */
  ejectMedia(target?: { slot?: string; kind?: MediaKind }): Promise<VirtualMediaSlot[]>;

  bios(): Promise<BiosSettings>;
  setBiosAttributes(
    attributes: Record<string, unknown>,
    options?: { applyTime?: string },
  ): Promise<SetBiosResult>;
}
