// The boot service's own certificate authority: a CA made once and kept in the service's Secret,
// and the serving certificate it issues for the host name or IP of BESKAR7_BOOT_URL (plus
// BESKAR7_BOOT_SANS). Hosts and BMCs trust the CA, which the service publishes in a ConfigMap,
// rather than a certificate that changes whenever the URL does.
//
// Node can parse X.509 (crypto.X509Certificate) but not issue it, and the Pepr controller image
// the service runs on is not promised to have an openssl binary, so certificates are built with
// node-forge, bundled into the service (keys come from node:crypto, which is much faster).
// node-forge is loaded only when a certificate is issued (first start, renewal): checking an
// existing pair needs only node:crypto, and a restarted service then never pays forge's ~8 MiB.
// lab/controlplane/pki.ts does the same for the test control plane; production code cannot
// import lab/, and this CA has other needs (long-lived CA, reissue when the names change).
import { X509Certificate, generateKeyPairSync, randomBytes } from "node:crypto";
import { isIP } from "node:net";
import type forgeTypes from "node-forge";

export interface CertificateAuthority {
  caCert: string;
  caKey: string;
}

export interface ServingPair {
  cert: string;
  key: string;
}

const DAY = 24 * 3600 * 1000;
/** The CA lives ten years: rotating it means re-trusting it on every OS configuration. */
const CA_LIFETIME = 3650 * DAY;
const SERVING_LIFETIME = 365 * DAY;
/** A serving certificate this close to expiry is reissued at start. */
const RENEW_BEFORE = 30 * DAY;

type Forge = typeof forgeTypes;
let loadedForge: Forge | undefined;

/** node-forge, required on first use (esbuild keeps a bundled module's require lazy). */
function forgeLib(): Forge {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  loadedForge ??= require("node-forge") as Forge;
  return loadedForge;
}

function rsaKey(): { pem: string; key: forgeTypes.pki.rsa.PrivateKey } {
  const forge = forgeLib();
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const pem = privateKey.export({ type: "pkcs1", format: "pem" }).toString();
  return { pem, key: forge.pki.privateKeyFromPem(pem) as forgeTypes.pki.rsa.PrivateKey };
}

function newCertificate(
  publicKey: forgeTypes.pki.PublicKey,
  lifetime: number,
): forgeTypes.pki.Certificate {
  const cert = forgeLib().pki.createCertificate();
  cert.publicKey = publicKey;
  // Positive (leading 0x01) and random, as RFC 5280 asks.
  cert.serialNumber = `01${randomBytes(15).toString("hex")}`;
  cert.validity.notBefore = new Date(Date.now() - 5 * 60_000);
  cert.validity.notAfter = new Date(Date.now() + lifetime);
  return cert;
}

export function newCertificateAuthority(): CertificateAuthority {
  const forge = forgeLib();
  const { pem, key } = rsaKey();
  const cert = newCertificate(forge.pki.setRsaPublicKey(key.n, key.e), CA_LIFETIME);
  const subject = [
    { name: "commonName", value: "Beskar7 boot service CA" },
    { name: "organizationName", value: "beskar7" },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: "basicConstraints", cA: true, pathLenConstraint: 0, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  cert.sign(key, forge.md.sha256.create());
  return { caCert: forge.pki.certificateToPem(cert), caKey: pem };
}

/** A serving certificate for `names` (DNS names and IP addresses), issued by `ca`. */
export function issueServingCertificate(ca: CertificateAuthority, names: string[]): ServingPair {
  if (names.length === 0) throw new Error("a serving certificate needs at least one name");
  const forge = forgeLib();
  const caCert = forge.pki.certificateFromPem(ca.caCert);
  const caKey = forge.pki.privateKeyFromPem(ca.caKey);
  const { pem, key } = rsaKey();
  const cert = newCertificate(forge.pki.setRsaPublicKey(key.n, key.e), SERVING_LIFETIME);
  cert.setSubject([{ name: "commonName", value: names[0]!.slice(0, 64) }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: "basicConstraints", cA: false, critical: true },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", serverAuth: true },
    {
      name: "subjectAltName",
      altNames: names.map(n => (isIP(n) ? { type: 7, ip: n } : { type: 2, value: n })),
    },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: pem };
}

/** Whether `pair` was issued by `ca`, covers every name and is not about to expire. */
export function servingCertificateFits(
  ca: CertificateAuthority,
  pair: ServingPair,
  names: string[],
): boolean {
  try {
    const cert = new X509Certificate(pair.cert);
    if (!cert.verify(new X509Certificate(ca.caCert).publicKey)) return false;
    if (Date.parse(cert.validTo) - Date.now() < RENEW_BEFORE) return false;
    return names.every(n =>
      isIP(n) ? cert.checkIP(n) !== undefined : cert.checkHost(n) !== undefined,
    );
  } catch {
    return false;
  }
}

/** The names a serving certificate must carry: the URL's host, then the extra SANs. */
export function servingNames(url: string, extra: string[]): string[] {
  const host = new URL(url).hostname.replace(/^\[(.*)\]$/, "$1");
  return [...new Set([host, ...extra])];
}
