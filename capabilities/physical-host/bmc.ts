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

/** The driver's inventory, with the addresses some BMCs report for the host's interfaces. */
export type HostInventory = RedfishInventory & {
  hostName?: string;
  nics: Array<RedfishInventory["nics"][number] & { ipAddresses?: string[] }>;
};

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
  onRequest?: (
    method: string,
    path: string,
    status: number | undefined,
    durationMs: number,
  ) => void;
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
