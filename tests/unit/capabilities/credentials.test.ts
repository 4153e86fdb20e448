import { describe, expect, it } from "vitest";

import { Labels, type PhysicalHost } from "../../../capabilities/api";
import {
  CredentialsError,
  bmcAccess,
  referencedSecrets,
  operatorAccessPolicy,
  type SecretData,
  type SecretReader,
} from "../../../capabilities/physical-host/credentials";
import { makeHost } from "./helpers";

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");
const PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUZm9v\n-----END CERTIFICATE-----\n";
const PASSWORD = "s3cr3t-P@ss/word";

const POLICY = operatorAccessPolicy({
  allowBmcAddresses: [],
  serviceCidrs: ["10.96.0.0/12"],
  admissionSkippedNamespaces: ["kube-system", "pepr-system"],
});

function secrets(store: Record<string, SecretData>) {
  const reads: string[] = [];
  const read: SecretReader = async (namespace, name) => {
    reads.push(`${namespace}/${name}`);
    return structuredClone(store[`${namespace}/${name}`]);
  };
  return { read, policy: POLICY, reads };
}

/** A credentials Secret, marked for Beskar7 by its owner unless `labels` says otherwise. */
const credentials = (
  data: Record<string, string>,
  labels: Record<string, string> = { [Labels.bmcCredentials]: "true" },
): SecretData => ({
  metadata: { name: "server-21-bmc", labels },
  data,
});

const good = credentials({ username: b64("admin"), password: b64(PASSWORD) });

async function rejection(promise: Promise<unknown>): Promise<CredentialsError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CredentialsError);
  return err as CredentialsError;
}

describe("bmcAccess", () => {
  it("reads the Secret in the host's namespace and returns address, login and TLS policy", async () => {
    const s = secrets({ "lab/server-21-bmc": good });
    const host = makeHost();
    host.spec!.redfishConnection.systemId = "System.Embedded.1";
    expect(await bmcAccess(host, s.read, s.policy)).toEqual({
      address: "https://10.0.0.21",
      systemId: "System.Embedded.1",
      credentials: { username: "admin", password: PASSWORD },
      tls: { insecure: false, caBundle: undefined },
    });
    expect(s.reads).toEqual(["lab/server-21-bmc"]);
  });

  it("honours insecureSkipVerify", async () => {
    const s = secrets({ "lab/server-21-bmc": good });
    const host = makeHost();
    host.spec!.redfishConnection.insecureSkipVerify = true;
    expect((await bmcAccess(host, s.read, s.policy)).tls).toEqual({
      insecure: true,
      caBundle: undefined,
    });
  });

  it("uses the default namespace for a host without one", async () => {
    const s = secrets({ "default/server-21-bmc": good });
    const host = makeHost();
    delete host.metadata!.namespace;
    await bmcAccess(host, s.read, s.policy);
    expect(s.reads).toEqual(["default/server-21-bmc"]);
  });

  it("fails with SecretNotFound for a missing Secret, naming it", async () => {
    const s = secrets({});
    const err = await rejection(bmcAccess(makeHost(), s.read, s.policy));
    expect(err.reason).toBe("SecretNotFound");
    expect(err.name).toBe("CredentialsError");
    expect(err.message).toBe(
      "Secret lab/server-21-bmc named by spec.redfishConnection.credentialsSecretRef does not exist",
    );
  });

  it("fails with SecretInvalid without a redfishConnection", async () => {
    const s = secrets({});
    const host = makeHost();
    delete (host.spec as Partial<NonNullable<PhysicalHost["spec"]>>).redfishConnection;
    const err = await rejection(bmcAccess(host, s.read, s.policy));
    expect(err.reason).toBe("SecretInvalid");
    expect(err.message).toContain("spec.redfishConnection");
  });

  it.each<[string, Record<string, string>, string]>([
    ["no password", { username: b64("admin") }, "has no password"],
    ["an empty password", { username: b64("admin"), password: "" }, "has no password"],
    ["no username", { password: b64(PASSWORD) }, "has no username"],
    ["no data", {}, "has no username or password"],
  ])("fails with SecretInvalid for %s, naming the keys but no value", async (_w, data, text) => {
    const s = secrets({ "lab/server-21-bmc": credentials(data) });
    const err = await rejection(bmcAccess(makeHost(), s.read, s.policy));
    expect(err.reason).toBe("SecretInvalid");
    expect(err.message).toContain(`Secret lab/server-21-bmc ${text}`);
    expect(err.message).toContain("keys username and password are required");
    expect(err.message).not.toContain("admin");
    expect(err.message).not.toContain(PASSWORD);
    expect(err.message).not.toContain(b64(PASSWORD));
  });

  it("refuses a Secret its owner has not labelled, naming the label to add", async () => {
    for (const labels of [{}, { team: "infra" }] as Record<string, string>[]) {
      const s = secrets({ "lab/server-21-bmc": credentials(good.data!, labels) });
      const err = await rejection(bmcAccess(makeHost(), s.read, s.policy));
      expect(err.reason).toBe("SecretNotLabelled");
      expect(err.transient).toBe(false);
      expect(err.message).toContain(`add the label ${Labels.bmcCredentials}=true`);
      expect(err.message).toContain(
        `kubectl label secret -n lab server-21-bmc ${Labels.bmcCredentials}=true`,
      );
      expect(err.message).not.toContain(PASSWORD);
    }
  });

  it("accepts the label whatever its value", async () => {
    const s = secrets({
      "lab/server-21-bmc": credentials(good.data!, { [Labels.bmcCredentials]: "" }),
    });
    expect((await bmcAccess(makeHost(), s.read, s.policy)).credentials.password).toBe(PASSWORD);
  });

  it.each([
    ["https://169.254.169.254", "link-local"],
    ["https://[fe80::1]", "link-local"],
    ["https://127.0.0.1:8443", "loopback"],
    ["https://localhost", "loopback"],
    ["https://[::1]", "loopback"],
    ["https://0.0.0.0", "unspecified"],
    ["https://kubernetes.default.svc", "service"],
    ["https://10.96.0.1", "service"],
  ])("refuses %s (%s) before reading the Secret", async (address, cls) => {
    const s = secrets({ "lab/server-21-bmc": good });
    const host = makeHost();
    host.spec!.redfishConnection.address = address;
    const err = await bmcAccess(host, s.read, s.policy).catch((e: unknown) => e);
    expect(err).toMatchObject({ reason: "AddressRefused", transient: false });
    expect((err as Error).message).toContain(`BESKAR7_ALLOW_BMC_ADDRESSES=${cls}`);
    expect(s.reads).toEqual([]);
  });

  it("allows a refused class or CIDR the operator lists", async () => {
    const s = secrets({ "lab/server-21-bmc": good });
    const host = makeHost();
    host.spec!.redfishConnection.address = "https://127.0.0.1:8443";
    const loopback = operatorAccessPolicy({
      allowBmcAddresses: ["loopback"],
      serviceCidrs: [],
      admissionSkippedNamespaces: [],
    });
    expect((await bmcAccess(host, s.read, loopback)).address).toBe("https://127.0.0.1:8443");
    host.spec!.redfishConnection.address = "https://169.254.10.20";
    const cidr = operatorAccessPolicy({
      allowBmcAddresses: ["169.254.10.0/24"],
      serviceCidrs: [],
      admissionSkippedNamespaces: [],
    });
    expect((await bmcAccess(host, s.read, cidr)).address).toBe("https://169.254.10.20");
  });

  it("refuses a host in a namespace the admission webhooks skip, before anything else", async () => {
    const s = secrets({ "kube-system/server-21-bmc": good });
    const host = makeHost();
    host.metadata!.namespace = "kube-system";
    const err = await bmcAccess(host, s.read, s.policy).catch((e: unknown) => e);
    expect(err).toMatchObject({ reason: "NamespaceIgnored", transient: false });
    expect((err as Error).message).toContain("namespace kube-system is skipped");
    expect(s.reads).toEqual([]);
  });

  it("names the setting of a bad policy entry", () => {
    expect(() =>
      operatorAccessPolicy({
        allowBmcAddresses: ["loopbak"],
        serviceCidrs: [],
        admissionSkippedNamespaces: [],
      }),
    ).toThrow('BESKAR7_ALLOW_BMC_ADDRESSES: "loopbak" is not one of loopback');
    expect(() =>
      operatorAccessPolicy({
        allowBmcAddresses: [],
        serviceCidrs: ["10.96.0.0/33"],
        admissionSkippedNamespaces: [],
      }),
    ).toThrow('BESKAR7_SERVICE_CIDRS: "10.96.0.0/33" is not a CIDR');
  });

  describe("CA bundle", () => {
    const withCA = () => {
      const host = makeHost();
      host.spec!.redfishConnection.caBundleSecretRef = "bmc-ca";
      return host;
    };

    it("reads the PEM bundle; its Secret needs no label (a CA certificate is no secret)", async () => {
      const s = secrets({
        "lab/server-21-bmc": good,
        "lab/bmc-ca": { metadata: { labels: { a: "b" } }, data: { "ca.crt": b64(PEM) } },
      });
      const access = await bmcAccess(withCA(), s.read, s.policy);
      expect(access.tls).toEqual({ insecure: false, caBundle: PEM });
      expect(s.reads).toEqual(["lab/server-21-bmc", "lab/bmc-ca"]);
    });

    it("fails with SecretNotFound for a missing CA Secret, naming the field", async () => {
      const s = secrets({ "lab/server-21-bmc": good });
      const err = await rejection(bmcAccess(withCA(), s.read, s.policy));
      expect(err.reason).toBe("SecretNotFound");
      expect(err.message).toBe(
        "Secret lab/bmc-ca named by spec.redfishConnection.caBundleSecretRef does not exist",
      );
    });

    it.each<[string, Record<string, string>]>([
      ["no ca.crt", { "tls.crt": b64(PEM) }],
      ["no PEM certificate", { "ca.crt": b64("not a certificate") }],
    ])("fails with SecretInvalid for %s", async (_w, data) => {
      const s = secrets({ "lab/server-21-bmc": good, "lab/bmc-ca": { data } });
      const err = await rejection(bmcAccess(withCA(), s.read, s.policy));
      expect(err.reason).toBe("SecretInvalid");
      expect(err.message).toBe("Secret lab/bmc-ca has no PEM certificate under key ca.crt");
    });

    it("checks the credentials before the CA bundle", async () => {
      const s = secrets({ "lab/server-21-bmc": credentials({}) });
      const err = await rejection(bmcAccess(withCA(), s.read, s.policy));
      expect(err.message).toContain("server-21-bmc");
      expect(s.reads).toEqual(["lab/server-21-bmc"]);
    });
  });
});

describe("referencedSecrets", () => {
  it("lists the credentials Secret and, when set, the CA bundle Secret", () => {
    const host = makeHost();
    expect(referencedSecrets(host)).toEqual(["server-21-bmc"]);
    host.spec!.redfishConnection.caBundleSecretRef = "bmc-ca";
    expect(referencedSecrets(host)).toEqual(["server-21-bmc", "bmc-ca"]);
    expect(referencedSecrets({ metadata: { name: "x" } })).toEqual([]);
  });
});
