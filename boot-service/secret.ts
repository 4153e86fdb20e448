// The boot service's Secret (token key, CA, serving certificate) and the ConfigMap that publishes
// its CA. The first service to start creates the Secret; a second one racing it loses the create
// (409), re-reads and uses the winner's, so every replica and the operator share one token key.
// Nothing here rotates the token key or the CA by itself: a broken Secret stops the service with
// what to do. Only the serving certificate is reissued (from the same CA) when the service's
// names changed or it nears expiry, which clients trusting the CA never notice.
import {
  ApiException,
  type CoreV1Api,
  type V1ConfigMap,
  type V1Secret,
} from "@kubernetes/client-node";

import { TOKEN_KEY_BYTES, newTokenKey } from "../boot/session";
import {
  issueServingCertificate,
  newCertificateAuthority,
  servingCertificateFits,
  type CertificateAuthority,
  type ServingPair,
} from "./ca";

export const SERVICE_SECRET = "beskar7-boot-service";
export const CA_CONFIGMAP = "beskar7-boot-ca";

export interface ServiceSecret {
  tokenKey: Buffer;
  ca: CertificateAuthority;
  serving: ServingPair;
}

const status = (err: unknown) => (err instanceof ApiException ? err.code : undefined);

/** Reads, or creates, the service's Secret; reissues the serving certificate when it must. */
export async function ensureServiceSecret(
  core: CoreV1Api,
  namespace: string,
  names: string[],
  log: (entry: Record<string, unknown>) => void,
): Promise<ServiceSecret> {
  for (let attempt = 0; attempt < 5; attempt++) {
    let secret = await readSecret(core, namespace);
    if (!secret) {
      const ca = newCertificateAuthority();
      const fresh: ServiceSecret = {
        tokenKey: newTokenKey(),
        ca,
        serving: issueServingCertificate(ca, names),
      };
      try {
        await core.createNamespacedSecret({ namespace, body: secretObject(namespace, fresh) });
        log({ msg: "created the boot service's Secret", secret: `${namespace}/${SERVICE_SECRET}` });
        return fresh;
      } catch (err) {
        if (status(err) !== 409) throw err;
        // Another replica won: use its Secret.
        secret = await readSecret(core, namespace);
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
      await core.replaceNamespacedSecret({
        name: SERVICE_SECRET,
        namespace,
        body: { ...secretObject(namespace, renewed), metadata: { ...secret.metadata } },
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
export async function publishCA(core: CoreV1Api, namespace: string, caCert: string): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    let existing: V1ConfigMap | undefined;
    try {
      existing = await core.readNamespacedConfigMap({ name: CA_CONFIGMAP, namespace });
    } catch (err) {
      if (status(err) !== 404) throw err;
    }
    const body: V1ConfigMap = {
      metadata: {
        ...existing?.metadata,
        name: CA_CONFIGMAP,
        namespace,
        labels: { ...existing?.metadata?.labels, ...LABELS },
      },
      data: { "ca.crt": caCert },
    };
    try {
      if (!existing) await core.createNamespacedConfigMap({ namespace, body });
      else if (existing.data?.["ca.crt"] !== caCert) {
        await core.replaceNamespacedConfigMap({ name: CA_CONFIGMAP, namespace, body });
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

async function readSecret(core: CoreV1Api, namespace: string): Promise<V1Secret | undefined> {
  try {
    return await core.readNamespacedSecret({ name: SERVICE_SECRET, namespace });
  } catch (err) {
    if (status(err) === 404) return undefined;
    throw err;
  }
}

function secretObject(namespace: string, s: ServiceSecret): V1Secret {
  const b64 = (v: string | Buffer) => Buffer.from(v).toString("base64");
  return {
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
function decode(secret: V1Secret, namespace: string): ServiceSecret {
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
