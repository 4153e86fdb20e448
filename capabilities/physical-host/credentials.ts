// BMC credentials from the Secret a PhysicalHost names, and the checks made before they are used.
// A host's creator chooses both the Secret's name and the BMC address, so the operator sends a
// password only when the Secret's owner has marked it for Beskar7 (the bmc-credentials label: the
// operator never labels a Secret itself), to an address the address policy allows, for a host
// admission has validated (not in a namespace the webhooks skip).
import {
  CABundleSecretKey,
  CredentialsSecretKeys,
  HostErrorReason,
  Labels,
  type HostErrorReasonName,
  type PhysicalHost,
} from "../api";
import {
  bmcAddressPolicy,
  refusalMessage,
  refusedBmcAddress,
  type BmcAddressPolicy,
} from "../../redfish";
import { BmcFailure } from "./failure";

export interface SecretData {
  metadata?: { name?: string; resourceVersion?: string; labels?: Record<string, string> };
  data?: Record<string, string>;
}

/** Reads a Secret; undefined when it does not exist. */
export type SecretReader = (namespace: string, name: string) => Promise<SecretData | undefined>;

/** What the operator refuses to act for, whatever a host says (operator-level settings). */
export interface AccessPolicy {
  addressPolicy: BmcAddressPolicy;
  /** Namespaces Pepr's admission webhooks skip (config.admissionSkippedNamespaces). */
  skippedNamespaces: readonly string[];
}

/** The setting that allows refused BMC addresses (capabilities/lib/config.ts). */
export const ALLOW_ADDRESSES_SETTING = "BESKAR7_ALLOW_BMC_ADDRESSES";

/** The operator's access policy from its configuration; a bad entry throws naming its setting. */
export function operatorAccessPolicy(config: {
  allowBmcAddresses: readonly string[];
  serviceCidrs: readonly string[];
  admissionSkippedNamespaces: readonly string[];
}): AccessPolicy {
  const named = <T>(setting: string, make: () => T): T => {
    try {
      return make();
    } catch (err) {
      throw new Error(`${setting}: ${(err as Error).message}`);
    }
  };
  named(ALLOW_ADDRESSES_SETTING, () => bmcAddressPolicy(config.allowBmcAddresses));
  return {
    addressPolicy: named("BESKAR7_SERVICE_CIDRS", () =>
      bmcAddressPolicy(config.allowBmcAddresses, config.serviceCidrs),
    ),
    skippedNamespaces: config.admissionSkippedNamespaces,
  };
}

export interface BmcAccess {
  address: string;
  systemId?: string;
  credentials: { username: string; password: string };
  tls: { insecure: boolean; caBundle?: string };
}

/** A credentials problem: it names the Secret and key, never a value. Not transient: someone
 *  has to fix the Secret (its change re-reconciles the host). */
export class CredentialsError extends BmcFailure {
  constructor(reason: HostErrorReasonName, message: string) {
    super(reason, message, false);
  }
}

function decode(data: Record<string, string> | undefined, key: string): string {
  const raw = data?.[key];
  return raw ? Buffer.from(raw, "base64").toString("utf8") : "";
}

/** A Secret the host names in spec.redfishConnection[field]. */
async function referencedSecret(
  namespace: string,
  name: string,
  field: "credentialsSecretRef" | "caBundleSecretRef",
  read: SecretReader,
): Promise<SecretData> {
  const secret = await read(namespace, name);
  if (!secret) {
    throw new CredentialsError(
      HostErrorReason.SecretNotFound,
      `Secret ${namespace}/${name} named by spec.redfishConnection.${field} does not exist`,
    );
  }
  return secret;
}

/**
 * Refuses, before any Secret is read or BMC asked, a host the operator must not act for: one in a
 * namespace whose objects admission never validated, or one whose BMC address the policy refuses.
 * Not transient: the host (or the operator's settings) must change.
 */
export function checkHostAccess(host: PhysicalHost, policy: AccessPolicy): void {
  const namespace = host.metadata?.namespace ?? "default";
  if (policy.skippedNamespaces.includes(namespace)) {
    throw new BmcFailure(
      HostErrorReason.NamespaceIgnored,
      `namespace ${namespace} is skipped by the admission webhooks (${policy.skippedNamespaces.join(", ")}), so this host was never validated and the operator does not act on it; create PhysicalHosts in another namespace`,
      false,
    );
  }
  const address = host.spec?.redfishConnection?.address ?? "";
  const refusal = refusedBmcAddress(address, policy.addressPolicy);
  if (refusal) {
    throw new BmcFailure(
      HostErrorReason.AddressRefused,
      `spec.redfishConnection.address: ${refusalMessage(refusal, ALLOW_ADDRESSES_SETTING)}`,
      false,
    );
  }
}

export async function bmcAccess(
  host: PhysicalHost,
  read: SecretReader,
  policy: AccessPolicy,
): Promise<BmcAccess> {
  const namespace = host.metadata?.namespace ?? "default";
  const connection = host.spec?.redfishConnection;
  if (!connection) {
    throw new CredentialsError(HostErrorReason.SecretInvalid, "spec.redfishConnection is missing");
  }
  checkHostAccess(host, policy);
  const secretName = connection.credentialsSecretRef;
  const secret = await referencedSecret(namespace, secretName, "credentialsSecretRef", read);
  if (secret.metadata?.labels?.[Labels.bmcCredentials] === undefined) {
    throw new CredentialsError(
      HostErrorReason.SecretNotLabelled,
      `Secret ${namespace}/${secretName} named by spec.redfishConnection.credentialsSecretRef is not marked for Beskar7: its owner must add the label ${Labels.bmcCredentials}=true (kubectl label secret -n ${namespace} ${secretName} ${Labels.bmcCredentials}=true); the operator uses no credentials Secret without it`,
    );
  }
  const username = decode(secret.data, CredentialsSecretKeys.username);
  const password = decode(secret.data, CredentialsSecretKeys.password);
  const missing = [
    !username && CredentialsSecretKeys.username,
    !password && CredentialsSecretKeys.password,
  ].filter(Boolean);
  if (missing.length) {
    throw new CredentialsError(
      HostErrorReason.SecretInvalid,
      `Secret ${namespace}/${secretName} has no ${missing.join(" or ")} (keys username and password are required)`,
    );
  }

  let caBundle: string | undefined;
  if (connection.caBundleSecretRef) {
    const ca = await referencedSecret(
      namespace,
      connection.caBundleSecretRef,
      "caBundleSecretRef",
      read,
    );
    caBundle = decode(ca.data, CABundleSecretKey);
    if (!caBundle.includes("BEGIN CERTIFICATE")) {
      throw new CredentialsError(
        HostErrorReason.SecretInvalid,
        `Secret ${namespace}/${connection.caBundleSecretRef} has no PEM certificate under key ${CABundleSecretKey}`,
      );
    }
  }

  return {
    address: connection.address,
    systemId: connection.systemId,
    credentials: { username, password },
    tls: { insecure: !!connection.insecureSkipVerify, caBundle },
  };
}

/** Secret names a host reads; a change to any of them re-reconciles the host. */
export function referencedSecrets(host: PhysicalHost): string[] {
  const c = host.spec?.redfishConnection;
  return [c?.credentialsSecretRef, c?.caBundleSecretRef].filter((n): n is string => !!n);
}
