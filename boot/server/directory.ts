// The boot server's one port to the outside: where it finds a host by the UUID in a URL, where it
// reads that host's bootstrap data, and where it records what the host did (fetched its
// configuration, posted its inspection report). The Kubernetes adapter (boot-service/hosts.ts)
// implements it over PhysicalHosts and Secrets; tests implement it with a Map. Keeping the HTTP
// core behind this narrow interface keeps boot/ free of Kubernetes, like redfish/.
import type { InspectionReport } from "./report";

/** How the host controller chose to get the host booted (PhysicalHost status.boot.delivery). */
export type Delivery = "PreBakedISO" | "PatchedISO" | "ConfigVolume" | "NetworkBoot";

/** The few facts of a host the server acts on: a view of a PhysicalHost. */
export interface HostView {
  /** namespace/name, for logs and messages. */
  key: string;
  /** metadata.uid: part of every token, so a re-created host of the same name gets new ones. */
  uid: string;
  /** status.hardwareDetails.systemUUID, lowercase. */
  systemUUID: string;
  /** status.state ("Provisioning", "Provisioned", ...). */
  state: string;
  /** status.boot: the current boot session, absent when the host is not being provisioned. */
  boot?: {
    session: string;
    issuedTime: string;
    delivery: Delivery;
    configFetchedTime?: string;
    reportedTime?: string;
  };
  /** spec.provisioning: what the claiming machine asked for. */
  provisioning?: {
    osFamily?: string;
    bootISO?: string;
    configURL?: string;
    bootstrapDataSecretRef?: string;
    targetImageURL?: string;
    targetInitrdURL?: string;
    extraKernelArgs?: string[];
  };
}

/** A lookup by UUID: the host, nothing, or several hosts claiming the UUID (all refused). */
export type HostLookup =
  | { found: HostView }
  | { missing: true }
  | { duplicate: number /** how many hosts carry the UUID */ };

/** What the server records on a host (merged into status.boot). */
export type BootSignal =
  | { configFetchedTime: string }
  | { reportedTime: string; report: InspectionReport };

export interface HostDirectory {
  /** The host whose system UUID is `uuid` (already canonical: lowercase). */
  lookup(uuid: string): HostLookup;
  /**
   * The host's bootstrap data (the Secret spec.provisioning.bootstrapDataSecretRef names, key
   * "value"). Throws BootDataUnavailable when there is none to serve.
   */
  bootstrapData(host: HostView): Promise<Buffer>;
  /** Records a signal on the host; throws when the write fails. */
  recordSignal(host: HostView, signal: BootSignal): Promise<void>;
  /**
   * Brings the view of the host carrying `uuid` up to date, for a request refused on a view that
   * may lag (the host controller writes a session and at once reads what the service serves for
   * it); resolves whether the view changed. `ready` says whether a newer view lets the request
   * through: one that does not (an older write the view had not seen yet) is waited past.
   * Optional: a directory that is always current needs none. The implementation bounds how often
   * it reads, since anyone can send such requests.
   */
  refresh?(uuid: string, ready?: () => boolean): Promise<boolean>;
}

/** The host has no bootstrap data to serve (no Secret named, Secret or key missing). */
export class BootDataUnavailable extends Error {
  override readonly name = "BootDataUnavailable";
}
