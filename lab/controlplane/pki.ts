// Certificates for the test environment and local runs: a throwaway CA per run signs the API
// server's and the webhook server's serving certificates and an admin client certificate. Keys
// come from Node's crypto (fast); node-forge only builds and signs the certificates.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { isIP } from "node:net";
import forge from "node-forge";

export interface ForgeKey {
  pem: string;
  privateKey: forge.pki.rsa.PrivateKey;
  publicKey: forge.pki.rsa.PublicKey;
}

export function newKey(): ForgeKey {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const pem = privateKey.export({ type: "pkcs1", format: "pem" }).toString();
  const key = forge.pki.privateKeyFromPem(pem) as forge.pki.rsa.PrivateKey;
  return { pem, privateKey: key, publicKey: forge.pki.setRsaPublicKey(key.n, key.e) };
}

export interface CertificateRequest {
  subject: string;
  organization?: string;
  publicKey: forge.pki.rsa.PublicKey;
  signer: forge.pki.rsa.PrivateKey;
  issuer?: forge.pki.Certificate;
  isCA?: boolean;
  altNames?: Array<{ type: number; value?: string; ip?: string }>;
  usage?: "server" | "client";
}

export function certificate(req: CertificateRequest): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = req.publicKey;
  cert.serialNumber = `01${randomBytes(8).toString("hex")}`;
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 365 * 24 * 3600 * 1000);
  const attrs: forge.pki.CertificateField[] = [{ name: "commonName", value: req.subject }];
  if (req.organization) attrs.push({ name: "organizationName", value: req.organization });
  cert.setSubject(attrs);
  cert.setIssuer(req.issuer ? req.issuer.subject.attributes : attrs);
  const extensions: object[] = [{ name: "basicConstraints", cA: !!req.isCA, critical: true }];
  if (req.isCA) {
    extensions.push({
      name: "keyUsage",
      keyCertSign: true,
      cRLSign: true,
      digitalSignature: true,
      critical: true,
    });
  } else {
    extensions.push({
      name: "keyUsage",
      digitalSignature: true,
      keyEncipherment: true,
      critical: true,
    });
    extensions.push({
      name: "extKeyUsage",
      serverAuth: req.usage === "server",
      clientAuth: req.usage === "client",
    });
  }
  if (req.altNames) extensions.push({ name: "subjectAltName", altNames: req.altNames });
  cert.setExtensions(extensions);
  cert.sign(req.signer, forge.md.sha256.create());
  return cert;
}

export interface ServingCertificate {
  caPem: string;
  certPem: string;
  keyPem: string;
}

/** A fresh CA and a serving certificate for the given DNS names and IP addresses. */
export function servingCertificate(
  hosts: string[],
  subject = "beskar7-webhook",
): ServingCertificate {
  const ca = newKey();
  const caCert = certificate({
    subject: `${subject}-ca`,
    publicKey: ca.publicKey,
    signer: ca.privateKey,
    isCA: true,
  });
  const key = newKey();
  const cert = certificate({
    subject,
    publicKey: key.publicKey,
    signer: ca.privateKey,
    issuer: caCert,
    usage: "server",
    altNames: hosts.map(h => (isIP(h) ? { type: 7, ip: h } : { type: 2, value: h })),
  });
  return {
    caPem: forge.pki.certificateToPem(caCert),
    certPem: forge.pki.certificateToPem(cert),
    keyPem: key.pem,
  };
}
