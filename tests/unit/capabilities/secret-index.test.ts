import { describe, expect, it } from "vitest";

import { SecretIndex } from "../../../capabilities/physical-host/secret-index";
import { makeHost } from "./helpers";

const secret = (name: string, password: string, namespace = "lab") => ({
  metadata: { name, namespace },
  data: {
    username: Buffer.from("root").toString("base64"),
    password: Buffer.from(password).toString("base64"),
  },
});

function hostUsing(name: string, credentials: string, ca?: string) {
  const host = makeHost({
    spec: {
      redfishConnection: {
        address: "https://10.0.0.5",
        credentialsSecretRef: credentials,
        ...(ca ? { caBundleSecretRef: ca } : {}),
      },
    },
  });
  host.metadata!.name = name;
  host.metadata!.namespace = "lab";
  return host;
}

describe("SecretIndex", () => {
  it("re-queues nobody on a Secret's first sight or on a change that leaves its data alone", () => {
    const index = new SecretIndex();
    index.track(hostUsing("a", "bmc"));
    expect(index.changed(secret("bmc", "one"), false)).toEqual([]);
    expect(index.changed(secret("bmc", "one"), false)).toEqual([]);
  });

  it("re-queues exactly the hosts using a Secret whose data changed, or that was deleted", () => {
    const index = new SecretIndex();
    index.track(hostUsing("a", "bmc"));
    index.track(hostUsing("b", "bmc", "ca"));
    index.track(hostUsing("c", "other"));
    index.changed(secret("bmc", "one"), false);
    expect(index.changed(secret("bmc", "two"), false).sort()).toEqual(["a", "b"]);
    expect(index.changed(secret("ca", "x"), true)).toEqual(["b"]);
    expect(index.changed(secret("bmc", "two", "elsewhere"), true)).toEqual([]);
  });

  it("follows a host that switches Secrets, and forgets deleted hosts", () => {
    const index = new SecretIndex();
    index.track(hostUsing("a", "old"));
    index.track(hostUsing("a", "new"));
    index.changed(secret("old", "1"), false);
    index.changed(secret("new", "1"), false);
    expect(index.changed(secret("old", "2"), false)).toEqual([]);
    expect(index.changed(secret("new", "2"), false)).toEqual(["a"]);
    index.untrack("lab", "a");
    expect(index.changed(secret("new", "3"), false)).toEqual([]);
  });
});
