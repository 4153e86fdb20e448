// Who may fetch what: the rules a token in a URL must pass before the server does anything for
// the host it names. Tokens are HMACs over (purpose, host UID, UUID, session) (see boot/session.ts),
// so a token from another host, for another purpose, or from a session that has since been
// removed (host released, media ejected) simply does not verify; no per-token state is kept. A
// token is also only good while its host is being provisioned (Provisioning or Provisioned with a
// session) and for a limited time after the session was issued.
//
// Every refusal here ends in the same 404 as an unknown UUID, so a URL reveals nothing about
// which hosts exist; the reason only goes to a metric.
import { verifyBootToken, type BootSession, type TokenPurpose } from "../session";
import type { HostDirectory, HostView } from "./directory";

/** Why a request was refused: the `reason` label of beskar7_boot_refusals_total. */
export type RefusalReason =
  | "unknown-host"
  | "duplicate-uuid"
  | "not-provisioning"
  | "no-session"
  | "bad-token"
  | "expired"
  | "wrong-delivery"
  | "not-inspecting"
  | "no-route";

export const PROVISIONING_STATES: readonly string[] = ["Provisioning", "Provisioned"];

const UUID_SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export type Access = { host: HostView } | { refused: RefusalReason };

export interface AccessRules {
  directory: HostDirectory;
  /** The HMAC key (the service's Secret, "token-key"). */
  tokenKey: Buffer;
  /** How long a session's tokens stay valid after status.boot.issuedTime. */
  tokenTTLms: number;
  now?: () => number;
}

/** The host a UUID names, when exactly one host carries it and it is being provisioned. */
export function provisioningHost(rules: AccessRules, uuid: string): Access {
  const access = hostWithSession(rules, uuid);
  if ("host" in access && sessionExpired(rules, access.host)) return { refused: "expired" };
  return access;
}

function hostWithSession(rules: AccessRules, uuid: string): Access {
  if (!UUID_SHAPE.test(uuid)) return { refused: "unknown-host" };
  const found = rules.directory.lookup(uuid);
  if ("missing" in found) return { refused: "unknown-host" };
  if ("duplicate" in found) return { refused: "duplicate-uuid" };
  const host = found.found;
  if (!PROVISIONING_STATES.includes(host.state)) return { refused: "not-provisioning" };
  if (!host.boot?.session) return { refused: "no-session" };
  return { host };
}

/** The host, when `token` is its current token for `purpose`. */
export function authorize(
  rules: AccessRules,
  uuid: string,
  purpose: TokenPurpose,
  token: string,
): Access {
  const access = hostWithSession(rules, uuid);
  if ("refused" in access) return access;
  if (!verifyBootToken(rules.tokenKey, purpose, sessionOf(access.host), token)) {
    return { refused: "bad-token" };
  }
  if (sessionExpired(rules, access.host)) return { refused: "expired" };
  return access;
}

/** The session the host's tokens are bound to. */
export function sessionOf(host: HostView): BootSession {
  return { hostUID: host.uid, systemUUID: host.systemUUID, session: host.boot?.session ?? "" };
}

function sessionExpired(rules: AccessRules, host: HostView): boolean {
  const issued = Date.parse(host.boot?.issuedTime ?? "");
  // A session without a readable issue time cannot be shown to be fresh.
  if (Number.isNaN(issued)) return true;
  return (rules.now ?? Date.now)() > issued + rules.tokenTTLms;
}
