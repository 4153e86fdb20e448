// The seam between the operator and the boot service: boot sessions, their tokens and the URL
// layout of the service. Both sides import this file and nothing else of each other.
//
// A boot session is one provisioning of one host. The host controller starts it by writing a
// random session id into the host's status (status.boot.session); releasing the host removes it.
// Tokens are not stored anywhere: each is HMAC-SHA256 over (purpose, host UID, system UUID,
// session id) with a key only the operator and the boot service read (the boot service's Secret),
// so the service checks a presented token by recomputing it from the host it finds by UUID. A new
// session, a released host (no session), another host's UUID or another purpose all give a
// different token: every one of those is refused without any per-token state. Tokens are 256-bit
// and compared in constant time.
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** What a token opens: the media the BMC fetches, the configuration/bootstrap data the OS
 * fetches, or the inspection report the inspection image posts. One never opens another. */
export type TokenPurpose = "media" | "bootstrap" | "report";

export interface BootSession {
  /** metadata.uid of the PhysicalHost. */
  hostUID: string;
  /** The host's SMBIOS/Redfish system UUID (status.hardwareDetails.systemUUID), lowercase. */
  systemUUID: string;
  /** status.boot.session: random per provisioning, removed on release. */
  session: string;
}

/** Minimum key length: the HMAC key is 32 random bytes. */
export const TOKEN_KEY_BYTES = 32;

/** A new session id (128 random bits, hex). Not a secret: tokens need the key as well. */
export function newSessionId(): string {
  return randomBytes(16).toString("hex");
}

/** A new HMAC key for the boot service's Secret. */
export function newTokenKey(): Buffer {
  return randomBytes(TOKEN_KEY_BYTES);
}

/** The system UUID as tokens and URLs use it: lowercase, trimmed. */
export function canonicalUUID(uuid: string): string {
  return uuid.trim().toLowerCase();
}

/** The 256-bit token for one purpose of one session, base64url (43 characters). */
export function bootToken(key: Buffer, purpose: TokenPurpose, session: BootSession): string {
  if (key.length < TOKEN_KEY_BYTES) {
    throw new Error(`boot token key is ${key.length} bytes; at least ${TOKEN_KEY_BYTES} needed`);
  }
  if (!session.hostUID || !session.systemUUID || !session.session) {
    throw new Error("boot token needs the host UID, its system UUID and a session id");
  }
  return createHmac("sha256", key)
    .update(
      `beskar7-boot/v1\n${purpose}\n${session.hostUID}\n${canonicalUUID(session.systemUUID)}\n${session.session}`,
    )
    .digest("base64url");
}

/** Whether `presented` is the token for this purpose and session (constant-time compare). */
export function verifyBootToken(
  key: Buffer,
  purpose: TokenPurpose,
  session: BootSession,
  presented: string,
): boolean {
  const expected = Buffer.from(bootToken(key, purpose, session));
  const given = Buffer.from(presented);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * The service's URL layout, relative to its base URL. Tokens are path segments, not query
 * strings, so no proxy or BMC treats them as parameters; the bootstrap token appears only inside
 * what the boot service serves (a kernel argument in a patched ISO or iPXE script), never in a URL
 * the operator hands to a BMC.
 */
export const BootPaths = {
  /** The installer ISO the BMC mounts: the stock ISO patched with this host's kernel arguments. */
  bootIso: (uuid: string, mediaToken: string) =>
    `/v1/media/${canonicalUUID(uuid)}/${mediaToken}/boot.iso`,
  /** The per-host configuration volume the BMC mounts on a second slot. */
  configIso: (uuid: string, mediaToken: string) =>
    `/v1/media/${canonicalUUID(uuid)}/${mediaToken}/config.iso`,
  /** The OS configuration (Machine bootstrap data unless the user gave a configURL). */
  config: (uuid: string, bootstrapToken: string) =>
    `/v1/config/${canonicalUUID(uuid)}/${bootstrapToken}`,
  /** Where the inspection image (or an OS that calls back) posts its report. */
  report: (uuid: string, reportToken: string) => `/v1/report/${canonicalUUID(uuid)}/${reportToken}`,
  /** The per-host iPXE script, looked up by the UUID iPXE substitutes for ${uuid}. */
  ipxe: (uuid: string) => `/v1/ipxe/${canonicalUUID(uuid)}`,
} as const;

/** Joins the service's base URL (which may carry a path prefix) and one of BootPaths. */
export function bootURL(base: string, path: string): string {
  return `${base.replace(/\/+$/, "")}${path}`;
}
