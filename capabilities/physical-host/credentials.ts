// BMC credentials from the Secret a PhysicalHost names. Only Secrets that hosts reference are
// read, and each is labelled so the operator can watch exactly those (as Metal3 does).
import {
  CABundleSecretKey,
  CredentialsSecretKeys,
  HostErrorReason,
  Labels,
  type HostErrorReasonName,
  type PhysicalHost,
} from "../api";
import { BmcFailure } from "./failure";

export interface SecretData {
  metadata?: { name?: string; labels?: Record<string, string> };
  data?: Record<string, string>;
}

/** Reads a Secret; undefined when it does not exist. */
export type SecretReader = (namespace: string, name: string) => Promise<SecretData | undefined>;
/** Adds the credentials label to a Secret that lacks it (given the labels it has). */
export type SecretLabeller = (
  namespace: string,
  name: string,
  labels: Record<string, string> | undefined,
) => Promise<void>;

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

/** A Secret the host names in spec.redfishConnection[field], labelled for the watch if it was not. */
async function referencedSecret(
  namespace: string,
  name: string,
  field: "credentialsSecretRef" | "caBundleSecretRef",
  read: SecretReader,
  label: SecretLabeller,
): Promise<SecretData> {
  const secret = await read(namespace, name);
  if (!secret) {
    throw new CredentialsError(
      HostErrorReason.SecretNotFound,
      `Secret ${namespace}/${name} named by spec.redfishConnection.${field} does not exist`,
    );
  }
  if (secret.metadata?.labels?.[Labels.bmcCredentials] === undefined) {
    await label(namespace, name, secret.metadata?.labels);
  }
  return secret;
}

export async function bmcAccess(
  host: PhysicalHost,
  read: SecretReader,
  label: SecretLabeller,
): Promise<BmcAccess> {
  const namespace = host.metadata?.namespace ?? "default";
  const connection = host.spec?.redfishConnection;
  if (!connection) {
    throw new CredentialsError(HostErrorReason.SecretInvalid, "spec.redfishConnection is missing");
  }
  const secretName = connection.credentialsSecretRef;
  const secret = await referencedSecret(namespace, secretName, "credentialsSecretRef", read, label);
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
      label,
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
