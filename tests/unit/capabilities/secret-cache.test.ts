import { describe, expect, it } from "vitest";

import { Labels } from "../../../capabilities/api";
import type { SecretData } from "../../../capabilities/physical-host/credentials";
import { SecretCache } from "../../../capabilities/physical-host/secret-cache";

/** A Secret store that counts reads and can hold a read open until released. */
function store(labelled = true) {
  let version = 1;
  const reads: string[] = [];
  let gate: Promise<void> | undefined;
  const secret = (): SecretData & { metadata: { resourceVersion: string } } => ({
    metadata: {
      name: "bmc",
      resourceVersion: String(version),
      labels: labelled ? { [Labels.bmcCredentials]: "true" } : {},
    },
    data: { password: Buffer.from(`pw-${version}`).toString("base64") },
  });
  return {
    reads,
    bump: () => version++,
    hold: () => {
      let open!: () => void;
      gate = new Promise(resolve => (open = resolve));
      return () => {
        gate = undefined;
        open();
      };
    },
    read: async (namespace: string, name: string) => {
      reads.push(`${namespace}/${name}`);
      const value = secret();
      await gate;
      return value;
    },
  };
}

const password = (s: SecretData | undefined) =>
  Buffer.from(s?.data?.password ?? "", "base64").toString("utf8");

describe("SecretCache", () => {
  it("reads a labelled Secret once until the watch reports a change", async () => {
    const s = store();
    const cache = new SecretCache(s.read);
    expect(password(await cache.read("lab", "bmc"))).toBe("pw-1");
    expect(password(await cache.read("lab", "bmc"))).toBe("pw-1");
    expect(s.reads).toEqual(["lab/bmc"]);

    s.bump();
    cache.changed("lab", "bmc");
    expect(password(await cache.read("lab", "bmc"))).toBe("pw-2");
    expect(s.reads).toHaveLength(2);
  });

  it("uses a copy of an unlabelled Secret (a CA bundle), whose changes no watch reports, briefly", async () => {
    const s = store(false);
    let now = 0;
    const cache = new SecretCache(s.read, {
      maxAgeMs: 10_000,
      unwatchedMaxAgeMs: 1000,
      now: () => now,
    });
    await cache.read("lab", "bmc");
    now = 999;
    await cache.read("lab", "bmc");
    expect(s.reads).toHaveLength(1);
    s.bump();
    now = 1000;
    expect(password(await cache.read("lab", "bmc"))).toBe("pw-2");
    expect(s.reads).toHaveLength(2);
  });

  it("shares one read among hosts asking at once", async () => {
    const s = store();
    const cache = new SecretCache(s.read);
    const release = s.hold();
    const both = Promise.all([cache.read("lab", "bmc"), cache.read("lab", "bmc")]);
    release();
    expect((await both).map(password)).toEqual(["pw-1", "pw-1"]);
    expect(s.reads).toHaveLength(1);
  });

  it("does not keep a read that a change report overtook", async () => {
    const s = store();
    const cache = new SecretCache(s.read);
    const release = s.hold();
    const first = cache.read("lab", "bmc"); // reads version 1, held open
    s.bump();
    cache.changed("lab", "bmc"); // version 2 reported while the read is under way
    release();
    expect(password(await first)).toBe("pw-1");
    expect(cache.size).toBe(0);
    expect(password(await cache.read("lab", "bmc"))).toBe("pw-2");
  });

  it("reads again once a copy is older than its maximum age", async () => {
    const s = store();
    let now = 0;
    const cache = new SecretCache(s.read, { maxAgeMs: 1000, now: () => now });
    await cache.read("lab", "bmc");
    now = 999;
    await cache.read("lab", "bmc");
    expect(s.reads).toHaveLength(1);
    now = 1000;
    await cache.read("lab", "bmc");
    expect(s.reads).toHaveLength(2);
  });

  it("keeps nothing of a failed read, and keeps only what bmcAccess uses", async () => {
    let fail = true;
    const cache = new SecretCache(async () => {
      if (fail) throw Object.assign(new Error("boom"), { status: 500 });
      return {
        metadata: {
          name: "bmc",
          labels: { [Labels.bmcCredentials]: "" },
          managedFields: [{ manager: "kubectl" }],
        },
        data: { username: "YQ==" },
      } as SecretData;
    });
    await expect(cache.read("lab", "bmc")).rejects.toThrow("boom");
    expect(cache.size).toBe(0);
    fail = false;
    await cache.read("lab", "bmc");
    expect(await cache.read("lab", "bmc")).toEqual({
      metadata: { name: "bmc", labels: { [Labels.bmcCredentials]: "" } },
      data: { username: "YQ==" },
    });
  });
});
