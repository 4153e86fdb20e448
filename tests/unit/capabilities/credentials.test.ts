import { describe, expect, it } from "vitest";

import { Labels, type PhysicalHost } from "../../../capabilities/api";
import {
  CredentialsError,
  bmcAccess,
  referencedSecrets,
  type SecretData,
  type SecretLabeller,
  type SecretReader,
} from "../../../capabilities/physical-host/credentials";
import { makeHost } from "./helpers";

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");
const PEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUZm9v\n-----END CERTIFICATE-----\n";
const PASSWORD = "s3cr3t-P@ss/word";

function secrets(store: Record<string, SecretData>) {
  const reads: string[] = [];
  const labelled: Array<{ ns: string; name: string; labels: Record<string, string> | undefined }> =
    [];
  const read: SecretReader = async (namespace, name) => {
    reads.push(`${namespace}/${name}`);
    return structuredClone(store[`${namespace}/${name}`]);
  };
  const label: SecretLabeller = async (ns, name, labels) => {
    labelled.push({ ns, name, labels });
  };
  return { read, label, reads, labelled };
}

const credentials = (
  data: Record<string, string>,
  labels?: Record<string, string>,
): SecretData => ({
  metadata: { name: "server-21-bmc", ...(labels ? { labels } : {}) },
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
    expect(await bmcAccess(host, s.read, s.label)).toEqual({
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
    expect((await bmcAccess(host, s.read, s.label)).tls).toEqual({
      insecure: true,
      caBundle: undefined,
    });
  });

  it("uses the default namespace for a host without one", async () => {
    const s = secrets({ "default/server-21-bmc": good });
    const host = makeHost();
    delete host.metadata!.namespace;
    await bmcAccess(host, s.read, s.label);
    expect(s.reads).toEqual(["default/server-21-bmc"]);
  });

  it("fails with SecretNotFound for a missing Secret, naming it", async () => {
    const s = secrets({});
    const err = await rejection(bmcAccess(makeHost(), s.read, s.label));
    expect(err.reason).toBe("SecretNotFound");
    expect(err.name).toBe("CredentialsError");
    expect(err.message).toBe(
      "Secret lab/server-21-bmc named by spec.redfishConnection.credentialsSecretRef does not exist",
    );
    expect(s.labelled).toEqual([]);
  });

  it("fails with SecretInvalid without a redfishConnection", async () => {
    const s = secrets({});
    const host = makeHost();
    delete (host.spec as Partial<NonNullable<PhysicalHost["spec"]>>).redfishConnection;
    const err = await rejection(bmcAccess(host, s.read, s.label));
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
    const err = await rejection(bmcAccess(makeHost(), s.read, s.label));
    expect(err.reason).toBe("SecretInvalid");
    expect(err.message).toContain(`Secret lab/server-21-bmc ${text}`);
    expect(err.message).toContain("keys username and password are required");
    expect(err.message).not.toContain("admin");
    expect(err.message).not.toContain(PASSWORD);
    expect(err.message).not.toContain(b64(PASSWORD));
  });

  it("labels an unlabelled Secret, passing its existing labels", async () => {
    const s = secrets({
      "lab/server-21-bmc": credentials(good.data!, { team: "infra" }),
    });
    await bmcAccess(makeHost(), s.read, s.label);
    expect(s.labelled).toEqual([{ ns: "lab", name: "server-21-bmc", labels: { team: "infra" } }]);
  });

  it("labels a Secret without any labels (labels undefined)", async () => {
    const s = secrets({ "lab/server-21-bmc": good });
    await bmcAccess(makeHost(), s.read, s.label);
    expect(s.labelled).toEqual([{ ns: "lab", name: "server-21-bmc", labels: undefined }]);
  });

  it("does not relabel a Secret that has the label, whatever its value", async () => {
    const s = secrets({
      "lab/server-21-bmc": credentials(good.data!, { [Labels.bmcCredentials]: "" }),
    });
    await bmcAccess(makeHost(), s.read, s.label);
    expect(s.labelled).toEqual([]);
  });

  it("labels the Secret even when its content is invalid (so fixing it re-triggers)", async () => {
    const s = secrets({ "lab/server-21-bmc": credentials({}) });
    await rejection(bmcAccess(makeHost(), s.read, s.label));
    expect(s.labelled.map(l => l.name)).toEqual(["server-21-bmc"]);
  });

  describe("CA bundle", () => {
    const withCA = () => {
      const host = makeHost();
      host.spec!.redfishConnection.caBundleSecretRef = "bmc-ca";
      return host;
    };

    it("reads the PEM bundle and labels its Secret too", async () => {
      const s = secrets({
        "lab/server-21-bmc": credentials(good.data!, { [Labels.bmcCredentials]: "true" }),
        "lab/bmc-ca": { metadata: { labels: { a: "b" } }, data: { "ca.crt": b64(PEM) } },
      });
      const access = await bmcAccess(withCA(), s.read, s.label);
      expect(access.tls).toEqual({ insecure: false, caBundle: PEM });
      expect(s.reads).toEqual(["lab/server-21-bmc", "lab/bmc-ca"]);
      expect(s.labelled).toEqual([{ ns: "lab", name: "bmc-ca", labels: { a: "b" } }]);
    });

    it("fails with SecretNotFound for a missing CA Secret, naming the field", async () => {
      const s = secrets({ "lab/server-21-bmc": good });
      const err = await rejection(bmcAccess(withCA(), s.read, s.label));
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
      const err = await rejection(bmcAccess(withCA(), s.read, s.label));
      expect(err.reason).toBe("SecretInvalid");
      expect(err.message).toBe("Secret lab/bmc-ca has no PEM certificate under key ca.crt");
    });

    it("checks the credentials before the CA bundle", async () => {
      const s = secrets({ "lab/server-21-bmc": credentials({}) });
      const err = await rejection(bmcAccess(withCA(), s.read, s.label));
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
