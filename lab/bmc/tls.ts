// Self-signed serving certificates for test BMCs. The key pair comes from node:crypto (native,
// ~50 ms) and node-forge only builds the X.509 certificate, so generating one per instance stays
// cheap; the certificate is its own CA, so clients trust it by passing its PEM as the CA bundle.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import forge from "node-forge";

export interface TlsMaterial {
  /** PEM certificate, usable directly as a client's CA bundle. */
  certPem: string;
  keyPem: string;
}

export function generateTls(commonName = "beskar7-test-bmc"): TlsMaterial {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const keyPem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const pubPem = publicKey.export({ type: "spki", format: "pem" }).toString();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(pubPem);
  // Positive serial: a leading 0x00-0x7f byte keeps the DER integer non-negative.
  cert.serialNumber = "01" + randomBytes(15).toString("hex");
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 7 * 24 * 3600_000);
  const attrs = [
    { name: "commonName", value: commonName },
    { name: "organizationName", value: "Beskar7 test BMC" },
  ];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.setExtensions([
    { name: "basicConstraints", cA: true },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, keyCertSign: true },
    { name: "extKeyUsage", serverAuth: true },
    {
      name: "subjectAltName",
      altNames: [
        { type: 7, ip: "127.0.0.1" },
        { type: 2, value: "localhost" },
      ],
    },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(keyPem), forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem };
}

let shared: TlsMaterial | undefined;

/** One certificate for the whole process: for runs with hundreds of BMCs. */
export function sharedTls(): TlsMaterial {
  shared ??= generateTls("beskar7-test-bmc-shared");
  return shared;
}
