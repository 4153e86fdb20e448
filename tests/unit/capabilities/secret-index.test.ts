import { describe, expect, it } from "vitest";

import { SecretIndex } from "../../../capabilities/physical-host/secret-index";
import { makeHost } from "./helpers";

/** What the metadata watch passes on: no data, only name, namespace and resourceVersion. */
const secret = (name: string, resourceVersion: string, namespace = "lab") => ({
  name,
  namespace,
  resourceVersion,
});

function hostUsing(name: string, credentials: string, ca?: string, errorReason?: string) {
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
  if (errorReason) host.status = { ...host.status, errorReason } as typeof host.status;
  return host;
}

describe("SecretIndex", () => {
  it("re-queues no healthy host on a Secret's first sight or an unchanged version", () => {
    const index = new SecretIndex();
    index.track(hostUsing("a", "bmc"));
    expect(index.changed(secret("bmc", "1"), false)).toEqual([]);
    expect(index.changed(secret("bmc", "1"), false)).toEqual([]);
  });

  it("re-queues hosts waiting on a Secret at its first sight (its owner just labelled it)", () => {
    const index = new SecretIndex();
    index.track(hostUsing("a", "bmc", undefined, "SecretNotLabelled"));
    index.track(hostUsing("b", "bmc"));
    index.track(hostUsing("c", "bmc", undefined, "AuthenticationFailed"));
    expect(index.changed(secret("bmc", "1"), false).sort()).toEqual(["a", "c"]);
    // Once healthy, the host is no longer waiting.
    index.track(hostUsing("a", "bmc"));
    index.track(hostUsing("c", "bmc"));
    expect(index.changed(secret("bmc", "1"), true).sort()).toEqual(["a", "b", "c"]);
    expect(index.changed(secret("bmc", "2"), false)).toEqual([]);
  });

  it("re-queues exactly the hosts using a Secret whose version changed, or that was deleted", () => {
    const index = new SecretIndex();
    index.track(hostUsing("a", "bmc"));
    index.track(hostUsing("b", "bmc", "ca"));
    index.track(hostUsing("c", "other"));
    index.changed(secret("bmc", "1"), false);
    expect(index.changed(secret("bmc", "2"), false).sort()).toEqual(["a", "b"]);
    expect(index.changed(secret("ca", "7"), true)).toEqual(["b"]);
    expect(index.changed(secret("bmc", "2", "elsewhere"), true)).toEqual([]);
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

  it("remembers versions only of Secrets some host names, however many labelled Secrets exist", () => {
    const index = new SecretIndex();
    index.track(hostUsing("a", "bmc"));
    for (let i = 0; i < 10_000; i++) index.changed(secret(`stranger-${i}`, "1"), false);
    index.changed(secret("bmc", "1"), false);
    expect(index.remembered).toBe(1);
    expect(index.used({ name: "bmc", namespace: "lab" })).toBe(true);
    expect(index.used({ name: "stranger-1", namespace: "lab" })).toBe(false);
    index.untrack("lab", "a");
    expect(index.remembered).toBe(0);
  });
});
