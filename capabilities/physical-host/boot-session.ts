// The host controller's side of the boot service (boot/session.ts is the seam): where the
// service is and its HMAC key (read from the service's own Secret), the session a provisioning
// starts (status.boot), the media URLs the BMC is given for it, and the inspection report folded
// into hardwareDetails. Tokens are derived here each time they are needed and never stored, logged
// or put in status or events: withoutToken() is what any text naming a media URL goes through.
import {
  BootConfigError,
  BootPaths,
  bootToken,
  bootURL,
  canonicalUUID,
  newSessionId,
  renderBoot,
  TOKEN_KEY_BYTES,
  type BootSession,
} from "../../boot";
import {
  BootDelivery,
  BootServiceSecret,
  ConditionReason,
  type BootStatus,
  type HardwareDetails,
  type HostProvisioning,
  type InspectionReport,
  type PhysicalHost,
} from "../api";
import type { DeliveryChoice } from "./delivery";

export type BootServiceState =
  | { ready: true; baseURL: string; key: Buffer }
  | {
      ready: false;
      reason:
        | typeof ConditionReason.BootServiceNotConfigured
        | typeof ConditionReason.BootServiceSecretMissing;
      message: string;
    };

/** What the controller knows of the boot service: its URL (if configured) and its key on demand. */
export interface BootServiceAccess {
  baseURL?: string;
  state(): Promise<BootServiceState>;
}

export const notConfigured: BootServiceAccess = {
  state: async () => ({
    ready: false,
    reason: ConditionReason.BootServiceNotConfigured,
    message: "the boot service is not configured: set BESKAR7_BOOT_URL to its external base URL",
  }),
};

/**
 * Access through the service's Secret: `readKey` returns the Secret's data (base64 values, as
 * the API server gives them) or undefined when it does not exist.
 */
export function secretBootAccess(
  baseURL: string | undefined,
  namespace: string,
  readSecret: () => Promise<{ data?: Record<string, string> } | undefined>,
): BootServiceAccess {
  if (!baseURL) return notConfigured;
  const where = `Secret ${namespace}/${BootServiceSecret.name} key ${BootServiceSecret.tokenKey}`;
  return {
    baseURL,
    state: async () => {
      const secret = await readSecret();
      const raw = secret?.data?.[BootServiceSecret.tokenKey];
      const key = raw === undefined ? undefined : Buffer.from(raw, "base64");
      if (!key || key.length < TOKEN_KEY_BYTES) {
        return {
          ready: false,
          reason: ConditionReason.BootServiceSecretMissing,
          message: secret
            ? `${where} is missing or shorter than ${TOKEN_KEY_BYTES} bytes; the boot service writes it at its first start`
            : `${where} does not exist yet; the boot service creates it at its first start`,
        };
      }
      return { ready: true, baseURL, key };
    },
  };
}

/** The session of a host's current provisioning, when it has one and its UUID is known. */
export function sessionOf(host: PhysicalHost): BootSession | undefined {
  const session = host.status?.boot?.session;
  const uuid = host.status?.hardwareDetails?.systemUUID;
  const uid = host.metadata?.uid;
  if (!session || !uuid || !uid) return undefined;
  return { hostUID: uid, systemUUID: canonicalUUID(uuid), session };
}

/** Stands for a token while kernel arguments are rendered for status; replaced by <token>. */
const TOKEN_STAND_IN = "b7token0standin";

/**
 * A new session for a provisioning: status.boot with the delivery, its reason and (where the
 * boot service puts them on a command line) the kernel arguments with the token hidden. Fields
 * the boot service wrote for an earlier session are removed (null in the merge patch).
 * Throws BootConfigError when the request cannot be rendered for its OS.
 */
export function newBootStatus(
  host: PhysicalHost,
  request: HostProvisioning,
  choice: Extract<DeliveryChoice, { ok: true }>,
  baseURL: string,
  now: Date,
): Record<string, unknown> {
  const boot: Record<string, unknown> = {
    session: newSessionId(),
    issuedTime: now.toISOString(),
    delivery: choice.delivery,
    reason: choice.reason.slice(0, 1024),
    kernelArgs: null,
    configFetchedTime: null,
    reportedTime: null,
    report: null,
  };
  const onCommandLine =
    choice.delivery === BootDelivery.PatchedISO ||
    (choice.delivery === BootDelivery.NetworkBoot && !!request.osFamily);
  if (onCommandLine && request.osFamily) {
    const uuid = host.status?.hardwareDetails?.systemUUID ?? "";
    const rendered = renderBoot(
      { name: host.metadata?.name ?? "host", systemUUID: uuid },
      {
        osFamily: request.osFamily,
        configURL: request.configURL ?? bootURL(baseURL, BootPaths.config(uuid, TOKEN_STAND_IN)),
      },
    );
    boot.kernelArgs = rendered.kernelArgs.map(arg => arg.split(TOKEN_STAND_IN).join("<token>"));
  }
  return boot;
}

export { BootConfigError };

/** The media the BMC is given for this provisioning: the boot service's where it serves them. */
export interface BootMedia {
  bootISO?: string;
  configMediaURL?: string;
}

export function bootMedia(
  host: PhysicalHost,
  request: HostProvisioning,
  service: BootServiceState | undefined,
): BootMedia {
  const delivery = host.status?.boot?.delivery;
  const served = delivery === BootDelivery.PatchedISO || delivery === BootDelivery.ConfigVolume;
  if (!served) return { bootISO: request.bootISO, configMediaURL: request.configMediaURL };
  const session = sessionOf(host);
  if (!service?.ready || !session) {
    throw new Error("the boot service's key and the host's boot session are needed for its media");
  }
  const token = bootToken(service.key, "media", session);
  return delivery === BootDelivery.PatchedISO
    ? {
        bootISO: bootURL(service.baseURL, BootPaths.bootIso(session.systemUUID, token)),
        configMediaURL: request.configMediaURL,
      }
    : {
        bootISO: request.bootISO,
        configMediaURL: bootURL(service.baseURL, BootPaths.configIso(session.systemUUID, token)),
      };
}

/** A text naming boot service media URLs with their token segment replaced by <token>. */
export function withoutToken(text: string): string {
  return text.replace(/(\/v1\/media\/[^/\s]+\/)[^/\s]+(\/(?:boot|config)\.iso)/g, "$1<token>$2");
}

/**
 * The inspection report folded into the Redfish inventory: what the OS saw replaces what the BMC
 * said for CPUs, memory, disks and NICs (the inspection image reads the hardware itself); the
 * system UUID stays the BMC's, since the boot service finds the host by it.
 */
export function foldReport(
  details: HardwareDetails | undefined,
  report: InspectionReport,
): HardwareDetails {
  const out: HardwareDetails = { ...details };
  if (report.cpu) out.cpu = { ...details?.cpu, ...report.cpu };
  if (report.memoryMiB !== undefined) out.memoryGiB = Math.round(report.memoryMiB / 1024);
  if (report.disks) {
    out.disks = report.disks.map(d => ({
      name: d.name,
      ...(d.sizeBytes !== undefined ? { sizeBytes: d.sizeBytes } : {}),
      mediaType: d.type ?? "Unknown",
    }));
  }
  if (report.nics) {
    out.nics = report.nics.map(n => ({ name: n.name ?? n.mac, macAddress: n.mac.toLowerCase() }));
  }
  return out;
}

export type { BootStatus };
