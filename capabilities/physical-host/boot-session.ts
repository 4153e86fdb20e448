// The host controller's side of the boot service (boot/session.ts is the seam): where the
// service is and its HMAC key (read from the service's own Secret), the session a provisioning
// starts (status.boot), the media URLs the BMC is given for it, and the inspection report folded
// into hardwareDetails. Tokens are derived here each time they are needed and never stored, logged
// or put in status or events: withoutToken() is what any text naming a media URL goes through.
import http from "node:http";
import https from "node:https";

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
import { SingleFlightCache } from "../../boot/single-flight-cache";
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

/**
 * Whether the boot service serves a medium: `definite` failures are its own answers (it could not
 * read or patch the source ISO, say), which a BMC would get too; a transport error proves nothing
 * (the operator may not reach the service's external URL the way BMCs do).
 */
export type MediaProbe =
  | { ok: true }
  | {
      ok: false;
      definite: boolean;
      message: string;
      /** The service answered 404: it knows no such host, session or token (yet). */
      notFound?: boolean;
    };

/** What the controller knows of the boot service: its URL (if configured) and its key on demand. */
export interface BootServiceAccess {
  baseURL?: string;
  state(): Promise<BootServiceState>;
  /** Reads the start of a served medium as a BMC would; absent: media are not checked. */
  probeMedia?(url: string): Promise<MediaProbe>;
}

export const notConfigured: BootServiceAccess = {
  state: async () => ({
    ready: false,
    reason: ConditionReason.BootServiceNotConfigured,
    message: "the boot service is not configured: set BESKAR7_BOOT_URL to its external base URL",
  }),
};

/**
 * How long the service's key and CA, once read, are used without reading them again. The boot
 * service creates both once and never rotates them itself; each provisioning step read the key
 * anew, a thousand reads of one Secret when a hundred machines provision at once. Past this, for
 * up to BOOT_SERVICE_STALE_MS, the copy is still used while one read refreshes it in the
 * background, so the first claim after a quiet spell does not wait on the read. A key replaced by
 * hand (with the service restarted) is thus used by the runs of the next 30 s and by the first
 * run after that.
 */
export const BOOT_SERVICE_RECHECK_MS = 30_000;
export const BOOT_SERVICE_STALE_MS = 10 * 60_000;

/**
 * Access through the service's Secret: `readKey` returns the Secret's data (base64 values, as
 * the API server gives them) or undefined when it does not exist. A key or CA found is kept for
 * BOOT_SERVICE_RECHECK_MS; a missing one is read again on the next call.
 */
export function secretBootAccess(
  baseURL: string | undefined,
  namespace: string,
  readSecret: () => Promise<{ data?: Record<string, string> } | undefined>,
  readCA?: () => Promise<string | undefined>,
  now: () => number = Date.now,
): BootServiceAccess {
  if (!baseURL) return notConfigured;
  const ca = readCA && keptFor(readCA, v => v !== undefined, now);
  const probeMedia = ca
    ? async (url: string): Promise<MediaProbe> => probe(url, await ca().catch(() => undefined))
    : undefined;
  const tokenKey = (secret: { data?: Record<string, string> } | undefined) => {
    const raw = secret?.data?.[BootServiceSecret.tokenKey];
    const key = raw === undefined ? undefined : Buffer.from(raw, "base64");
    return key && key.length >= TOKEN_KEY_BYTES ? key : undefined;
  };
  const read = keptFor(readSecret, secret => !!tokenKey(secret), now);
  const where = `Secret ${namespace}/${BootServiceSecret.name} key ${BootServiceSecret.tokenKey}`;
  return {
    baseURL,
    state: async () => {
      const secret = await read();
      const key = tokenKey(secret);
      if (!key) {
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
    ...(probeMedia ? { probeMedia } : {}),
  };
}

/** A read whose answer, when `keep` accepts it, is reused for BOOT_SERVICE_RECHECK_MS (then
 *  refreshed in the background, for BOOT_SERVICE_STALE_MS); calls made while it is under way
 *  share it. */
function keptFor<T>(
  read: () => Promise<T>,
  keep: (value: T) => boolean,
  now: () => number,
): () => Promise<T> {
  const held = new SingleFlightCache<T>({
    ttlMs: value => (keep(value) ? BOOT_SERVICE_RECHECK_MS : 0),
    staleMs: BOOT_SERVICE_STALE_MS,
    now,
  });
  return () => held.get("", read);
}

/** Bytes a probe reads: up to the first ISO9660 volume descriptor (sector 16). */
const PROBE_BYTES = 16 * 2048 + 2048;
const PROBE_TIMEOUT_MS = 60_000;

/**
 * One Range request for the start of a served medium, trusting the service's CA: a 206 whose
 * sector 16 holds "CD001" is an ISO the BMC can boot; any other answer is the service's refusal,
 * whose text (it never contains a token) says why. Only the URL's host is ever shown.
 */
function probe(url: string, ca: string | undefined): Promise<MediaProbe> {
  // Plain HTTP only where the site opted in for an isolated provisioning network.
  const client = url.startsWith("http:") ? http : https;
  return new Promise(resolve => {
    const request = client.request(
      url,
      {
        headers: { Range: `bytes=0-${PROBE_BYTES - 1}` },
        ...(ca ? { ca } : {}),
        timeout: PROBE_TIMEOUT_MS,
      },
      response => {
        const chunks: Buffer[] = [];
        let length = 0;
        response.on("data", (chunk: Buffer) => {
          if (length < PROBE_BYTES) chunks.push(chunk);
          length += chunk.length;
        });
        response.on("error", () => resolve(indefinite("the response broke off")));
        response.on("end", () => {
          const body = Buffer.concat(chunks);
          const status = response.statusCode ?? 0;
          if (status === 206 && body.toString("latin1", 32769, 32774) === "CD001") {
            return resolve({ ok: true });
          }
          // The per-host iPXE script (no Range: it is a few hundred bytes).
          if (status === 200 && body.toString("latin1", 0, 6) === "#!ipxe") {
            return resolve({ ok: true });
          }
          const said = status === 206 ? "an image without an ISO9660 volume descriptor" : body;
          resolve({
            ok: false,
            definite: true,
            notFound: status === 404,
            message: `the boot service answered ${status} for this host's medium: ${said
              .toString()
              .trim()
              .slice(0, 512)}`,
          });
        });
      },
    );
    request.on("timeout", () => request.destroy(new Error("no answer in time")));
    request.on("error", err => resolve(indefinite(err.message)));
    request.end();
  });
}

function indefinite(why: string): MediaProbe {
  return { ok: false, definite: false, message: `the medium could not be checked: ${why}` };
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
        extraKernelArgs: request.extraKernelArgs,
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

/**
 * What a machine fetches first from the boot service on this delivery path: the patched ISO, the
 * config volume, or the per-host iPXE script; undefined where it fetches nothing from it.
 */
export function firstServedURL(
  host: PhysicalHost,
  request: HostProvisioning,
  service: BootServiceState,
): string | undefined {
  const delivery = host.status?.boot?.delivery;
  if (delivery === BootDelivery.NetworkBoot) {
    const session = sessionOf(host);
    return service.ready && session
      ? bootURL(service.baseURL, BootPaths.ipxe(session.systemUUID))
      : undefined;
  }
  const media = bootMedia(host, request, service);
  if (delivery === BootDelivery.PatchedISO) return media.bootISO;
  if (delivery === BootDelivery.ConfigVolume) return media.configMediaURL;
  return undefined;
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
