// The boot service's Secret (token key, CA, serving certificate) and the ConfigMap that publishes
// its CA. The first service to start creates the Secret; a second one racing it loses the create
// (409), re-reads and uses the winner's, so every replica and the operator share one token key.
// Nothing here rotates the token key or the CA by itself: a broken Secret stops the service with
// what to do. Only the serving certificate is reissued (from the same CA) when the service's
// names changed or it nears expiry, which clients trusting the CA never notice.
import { TOKEN_KEY_BYTES, newTokenKey } from "../boot/session";
import {
  issueServingCertificate,
  newCertificateAuthority,
  servingCertificateFits,
  type CertificateAuthority,
  type ServingPair,
} from "./ca";
import { KubeError, type KubeClient } from "./kube";

interface ObjectMeta {
  name?: string;
  namespace?: string;
  labels?: Record<string, string>;
  resourceVersion?: string;
}
interface SecretObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  type?: string;
  data?: Record<string, string>;
}
interface ConfigMapObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  data?: Record<string, string>;
}

export const SERVICE_SECRET = "beskar7-boot-service";
export const CA_CONFIGMAP = "beskar7-boot-ca";

export interface ServiceSecret {
  tokenKey: Buffer;
  ca: CertificateAuthority;
  serving: ServingPair;
}

const status = (err: unknown) => (err instanceof KubeError ? err.status : undefined);
const secrets = (namespace: string) => `/api/v1/namespaces/${namespace}/secrets`;
const configMaps = (namespace: string) => `/api/v1/namespaces/${namespace}/configmaps`;

/** Reads, or creates, the service's Secret; reissues the serving certificate when it must. */
export async function ensureServiceSecret(
  kube: KubeClient,
  namespace: string,
  names: string[],
  log: (entry: Record<string, unknown>) => void,
): Promise<ServiceSecret> {
  for (let attempt = 0; attempt < 5; attempt++) {
    let secret = await readSecret(kube, namespace);
    if (!secret) {
      const ca = newCertificateAuthority();
      const fresh: ServiceSecret = {
        tokenKey: newTokenKey(),
        ca,
        serving: issueServingCertificate(ca, names),
      };
      try {
        await kube.request("POST", secrets(namespace), secretObject(namespace, fresh));
        log({ msg: "created the boot service's Secret", secret: `${namespace}/${SERVICE_SECRET}` });
        return fresh;
      } catch (err) {
        if (status(err) !== 409) throw err;
        // Another replica won: use its Secret.
        secret = await readSecret(kube, namespace);
        if (!secret) continue;
      }
    }
    const current = decode(secret, namespace);
    if (servingCertificateFits(current.ca, current.serving, names)) return current;
    const renewed: ServiceSecret = {
      ...current,
      serving: issueServingCertificate(current.ca, names),
    };
    try {
      await kube.request("PUT", `${secrets(namespace)}/${SERVICE_SECRET}`, {
        ...secretObject(namespace, renewed),
        metadata: { ...secret.metadata },
      });
      log({ msg: "reissued the serving certificate", names });
      return renewed;
    } catch (err) {
      if (status(err) !== 409) throw err;
    }
  }
  throw new Error(
    `could not settle Secret ${namespace}/${SERVICE_SECRET}: it kept changing under the boot service`,
  );
}

/** Publishes the CA certificate in ConfigMap beskar7-boot-ca, key ca.crt (create or update). */
export async function publishCA(
  kube: KubeClient,
  namespace: string,
  caCert: string,
): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    let existing: ConfigMapObject | undefined;
    try {
      existing = await kube.request<ConfigMapObject>(
        "GET",
        `${configMaps(namespace)}/${CA_CONFIGMAP}`,
      );
    } catch (err) {
      if (status(err) !== 404) throw err;
    }
    const body: ConfigMapObject = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: {
        ...existing?.metadata,
        name: CA_CONFIGMAP,
        namespace,
        labels: { ...existing?.metadata?.labels, ...LABELS },
      },
      data: { "ca.crt": caCert },
    };
    try {
      if (!existing) await kube.request("POST", configMaps(namespace), body);
      else if (existing.data?.["ca.crt"] !== caCert) {
        await kube.request("PUT", `${configMaps(namespace)}/${CA_CONFIGMAP}`, body);
      }
      return;
    } catch (err) {
      if (status(err) !== 409) throw err;
    }
  }
  throw new Error(`could not publish ConfigMap ${namespace}/${CA_CONFIGMAP}: it kept changing`);
}

const LABELS = {
  "app.kubernetes.io/part-of": "beskar7",
  "app.kubernetes.io/component": "boot-service",
};

async function readSecret(kube: KubeClient, namespace: string): Promise<SecretObject | undefined> {
  try {
    return await kube.request<SecretObject>("GET", `${secrets(namespace)}/${SERVICE_SECRET}`);
  } catch (err) {
    if (status(err) === 404) return undefined;
    throw err;
  }
}

function secretObject(namespace: string, s: ServiceSecret): SecretObject {
  const b64 = (v: string | Buffer) => Buffer.from(v).toString("base64");
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: SERVICE_SECRET, namespace, labels: LABELS },
    type: "Opaque",
    data: {
      "token-key": b64(s.tokenKey),
      "ca.crt": b64(s.ca.caCert),
      "ca.key": b64(s.ca.caKey),
      "tls.crt": b64(s.serving.cert),
      "tls.key": b64(s.serving.key),
    },
  };
}

/** The Secret's contents, or an error naming what is missing and what to do. */
function decode(secret: SecretObject, namespace: string): ServiceSecret {
  const field = (key: string) => Buffer.from(secret.data?.[key] ?? "", "base64");
  const where = `Secret ${namespace}/${SERVICE_SECRET}`;
  const tokenKey = field("token-key");
  if (tokenKey.length < TOKEN_KEY_BYTES) {
    throw new Error(
      `${where}: "token-key" holds ${tokenKey.length} bytes, ${TOKEN_KEY_BYTES} are needed. The boot service never replaces a key by itself; delete the Secret to have a new one made (every boot token in flight becomes invalid)`,
    );
  }
  const caCert = field("ca.crt").toString();
  const caKey = field("ca.key").toString();
  if (!caCert.includes("BEGIN CERTIFICATE") || !caKey.includes("PRIVATE KEY")) {
    throw new Error(
      `${where}: "ca.crt" or "ca.key" is missing or not PEM. Delete the Secret to have a new CA made (then re-trust it where hosts were told to)`,
    );
  }
  return {
    tokenKey,
    ca: { caCert, caKey },
    serving: { cert: field("tls.crt").toString(), key: field("tls.key").toString() },
  };
}
