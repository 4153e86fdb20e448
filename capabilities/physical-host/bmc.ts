// The PhysicalHost controller's port to a BMC: the narrow part of the Redfish driver it uses, and
// the connector that turns a host (plus its Secret) into a connected system. This is the only
// place in the operator that reaches the driver; tests substitute a HostBmc of their own.
import {
  RedfishClientPool,
  type HostInventory as RedfishInventory,
  type RedfishLogger,
  type RedfishSystem,
} from "../../redfish";
import type { PhysicalHost } from "../api";
import { bmcAccess, type SecretLabeller, type SecretReader } from "./credentials";

export type HostBmc = Pick<
  RedfishSystem,
  | "inventory"
  | "powerState"
  | "powerOn"
  | "powerOff"
  | "restart"
  | "virtualMedia"
  | "insertMedia"
  | "ejectMedia"
  | "bootOverride"
  | "setBootOverride"
  | "clearBootOverride"
>;

export type HostInventory = RedfishInventory;

export interface BmcConnection {
  bmc: HostBmc;
  /** The BMC's address, for per-BMC limits and logs. */
  address: string;
  release(): void;
}

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

/** One shared client per BMC (keyed by address and a hash of the credentials), reused across
 *  reconciles so sessions and keep-alive connections are not re-opened each time. */
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
  const connect: BmcConnector = async host => {
    const access = await bmcAccess(host, options.readSecret, options.labelSecret);
    const { client, release } = pool.acquire({
      address: access.address,
      credentials: access.credentials,
      tls: access.tls,
      systemId: access.systemId,
    });
    return { bmc: client.system(access.systemId), address: access.address, release };
  };
  return { connect, pool };
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
export function redfishOperation(method: string, path: string): string {
  const segments = path.split("?")[0]!.split("/").filter(Boolean).slice(2); // after redfish/v1
  const action = segments.indexOf("Actions");
  if (action >= 0 && segments[action + 1]) return `${method} ${segments[action + 1]}`;
  const resource = [...segments].reverse().find(s => RESOURCES.has(s));
  return `${method} ${resource ?? (segments.length ? "Other" : "ServiceRoot")}`;
}
