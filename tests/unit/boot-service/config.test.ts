// The boot service's configuration and certificates: every bad setting is refused naming the
// variable; plain HTTP is only ever an explicit opt-in; the serving certificate the CA issues
// covers the URL's host and the extra names, verifies against the CA, and is judged unfit when
// a name is missing or it was issued by another CA.
import { X509Certificate } from "node:crypto";
import { describe, expect, it } from "vitest";

import {
  issueServingCertificate,
  newCertificateAuthority,
  servingCertificateFits,
  servingNames,
} from "../../../boot-service/ca";
import { loadConfig, parseDuration } from "../../../boot-service/config";

describe("boot service configuration", () => {
  const base = { BESKAR7_BOOT_URL: "https://10.0.0.5:30843" };

  it("has the documented defaults", () => {
    expect(loadConfig(base)).toEqual({
      url: "https://10.0.0.5:30843",
      listen: { host: "0.0.0.0", port: 8443 },
      metricsListen: { host: "0.0.0.0", port: 9090 },
      plainHttp: false,
      namespace: "pepr-system",
      extraSANs: [],
      tokenTTLms: 24 * 3600_000,
      shutdownGraceMs: 30_000,
    });
  });

  it("refuses bad settings, naming the variable", () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{}, /BESKAR7_BOOT_URL is required/],
      [{ BESKAR7_BOOT_URL: "not a url" }, /BESKAR7_BOOT_URL=.* is not a URL/],
      [
        { BESKAR7_BOOT_URL: "http://10.0.0.5:8080" },
        /plain HTTP needs BESKAR7_BOOT_PLAIN_HTTP=true/,
      ],
      [{ ...base, BESKAR7_BOOT_PLAIN_HTTP: "true" }, /must be http:\/\//],
      [
        { ...base, BESKAR7_BOOT_PLAIN_HTTP: "yes" },
        /BESKAR7_BOOT_PLAIN_HTTP=.*expected true or false/,
      ],
      [{ BESKAR7_BOOT_URL: "https://u:p@boot.example" }, /no credentials/],
      [{ ...base, BESKAR7_BOOT_LISTEN: "8443" }, /BESKAR7_BOOT_LISTEN=.*address:port/],
      [{ ...base, BESKAR7_BOOT_METRICS_LISTEN: "0.0.0.0:99999" }, /BESKAR7_BOOT_METRICS_LISTEN/],
      [{ ...base, BESKAR7_BOOT_TOKEN_TTL: "1 day" }, /BESKAR7_BOOT_TOKEN_TTL=.*duration/],
      [{ ...base, BESKAR7_BOOT_SANS: "boot.example,bad name" }, /BESKAR7_BOOT_SANS: "bad name"/],
      [{ ...base, BESKAR7_NAMESPACE: "Pepr_System" }, /BESKAR7_NAMESPACE=.*not a namespace/],
    ];
    for (const [env, message] of cases) expect(() => loadConfig(env)).toThrow(message);
  });

  it("takes plain HTTP, durations and extra names when asked", () => {
    const config = loadConfig({
      BESKAR7_BOOT_URL: "http://boot.provisioning.lan:8080/prefix/",
      BESKAR7_BOOT_PLAIN_HTTP: "true",
      BESKAR7_BOOT_LISTEN: "[::]:8080",
      BESKAR7_BOOT_TOKEN_TTL: "90m",
      BESKAR7_BOOT_SANS: "10.0.0.5, boot.example",
    });
    expect(config.url).toBe("http://boot.provisioning.lan:8080/prefix");
    expect(config.listen).toEqual({ host: "::", port: 8080 });
    expect(config.tokenTTLms).toBe(90 * 60_000);
    expect(config.extraSANs).toEqual(["10.0.0.5", "boot.example"]);
    expect(parseDuration("X", "500ms")).toBe(500);
  });
});

describe("boot service CA", () => {
  const ca = newCertificateAuthority();

  it("issues a serving certificate for the URL's host and the extra names", () => {
    const names = servingNames("https://10.0.0.5:30843/boot", ["boot.example", "10.0.0.5"]);
    expect(names).toEqual(["10.0.0.5", "boot.example"]);
    const pair = issueServingCertificate(ca, names);
    const cert = new X509Certificate(pair.cert);
    const caCert = new X509Certificate(ca.caCert);
    expect(caCert.ca).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.checkIP("10.0.0.5")).toBe("10.0.0.5");
    expect(cert.checkHost("boot.example")).toBe("boot.example");
    expect(cert.checkHost("other.example")).toBeUndefined();
    expect(servingCertificateFits(ca, pair, names)).toBe(true);
    expect(servingCertificateFits(ca, pair, [...names, "new.example"])).toBe(false);
    expect(servingCertificateFits(newCertificateAuthority(), pair, names)).toBe(false);
    expect(servingNames("https://[fd00::5]:8443", [])).toEqual(["fd00::5"]);
  });
});
