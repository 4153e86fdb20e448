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

/** Lets a background refresh finish. */
const settled = () => new Promise(resolve => setImmediate(resolve));

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

  it("refreshes a copy of an unlabelled Secret (a CA bundle), whose changes no watch reports, after a short age", async () => {
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
    // Stale: answered at once from the copy while one read refreshes it.
    expect(password(await cache.read("lab", "bmc"))).toBe("pw-1");
    expect(s.reads).toHaveLength(2);
    await settled();
    expect(password(await cache.read("lab", "bmc"))).toBe("pw-2");
    expect(s.reads).toHaveLength(2);
  });

  it("does not make a run wait on a stale copy's refresh, and drops the copy when the refresh fails", async () => {
    let now = 0;
    let fail = false;
    let reads = 0;
    const gate: { open?: () => void } = {};
    const cache = new SecretCache(
      async () => {
        reads++;
        if (reads > 1) await new Promise<void>(resolve => (gate.open = resolve));
        if (fail) throw Object.assign(new Error("apiserver down"), { status: 503 });
        return { metadata: { name: "bmc", labels: { [Labels.bmcCredentials]: "" } }, data: {} };
      },
      { maxAgeMs: 1000, now: () => now },
    );
    await cache.read("lab", "bmc");
    now = 1500;
    fail = true;
    // The refresh is held open: both reads answer from the copy, and share the one refresh.
    expect(await cache.read("lab", "bmc")).toBeDefined();
    expect(await cache.read("lab", "bmc")).toBeDefined();
    expect(reads).toBe(2);
    gate.open!();
    await settled();
    expect(cache.size).toBe(0);
    gate.open = undefined;
    const next = cache.read("lab", "bmc");
    gate.open!();
    await expect(next).rejects.toThrow("apiserver down");
  });

  it("keeps its copy when the watch reports the version it holds (the watch's list), not when it reports another or a deletion", async () => {
    const s = store();
    const cache = new SecretCache(s.read);
    await cache.read("lab", "bmc");
    cache.changed("lab", "bmc", "1"); // the list at the watch's start: the version read
    await cache.read("lab", "bmc");
    expect(s.reads).toHaveLength(1);
    cache.changed("lab", "bmc", "1", true);
    await cache.read("lab", "bmc");
    expect(s.reads).toHaveLength(2);
    s.bump();
    cache.changed("lab", "bmc", "2");
    expect(password(await cache.read("lab", "bmc"))).toBe("pw-2");
    expect(s.reads).toHaveLength(3);
  });

  it("keeps a read under way when the watch reports the version it reads", async () => {
    const s = store();
    const cache = new SecretCache(s.read);
    const release = s.hold();
    const reading = cache.read("lab", "bmc");
    cache.changed("lab", "bmc", "1");
    release();
    expect(password(await reading)).toBe("pw-1");
    expect(cache.size).toBe(1);
    await cache.read("lab", "bmc");
    expect(s.reads).toHaveLength(1);
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

  it("refreshes a copy older than its maximum age, and waits on the read once it is twice that old", async () => {
    const s = store();
    let now = 0;
    const cache = new SecretCache(s.read, { maxAgeMs: 1000, now: () => now });
    await cache.read("lab", "bmc");
    now = 999;
    await cache.read("lab", "bmc");
    expect(s.reads).toHaveLength(1);
    s.bump();
    now = 1000;
    expect(password(await cache.read("lab", "bmc"))).toBe("pw-1");
    expect(s.reads).toHaveLength(2);
    await settled();
    // The refresh ended at 1000: fresh until 2000, then stale until 3000.
    s.bump();
    now = 3000;
    const release = s.hold();
    const waited = cache.read("lab", "bmc");
    release();
    expect(password(await waited)).toBe("pw-3");
    expect(s.reads).toHaveLength(3);
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
      metadata: {
        name: "bmc",
        resourceVersion: undefined,
        labels: { [Labels.bmcCredentials]: "" },
      },
      data: { username: "YQ==" },
    });
  });
});
