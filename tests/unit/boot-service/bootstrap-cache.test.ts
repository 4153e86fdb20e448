// The boot service's bootstrap data cache (boot-service/bootstrap-cache.ts) and its use by the
// Kubernetes HostDirectory (boot-service/hosts.ts) over a fake API client that counts Secret GETs:
// a burst of reads is one GET, a read after the TTL or in a new session reads again, a missing
// Secret or key is never kept, and the entry and byte bounds hold.
import { describe, expect, it } from "vitest";

import { BootstrapCache } from "../../../boot-service/bootstrap-cache";
import { KubeHostDirectory } from "../../../boot-service/hosts";
import { KubeError, type KubeClient } from "../../../boot-service/kube";
import { BootDataUnavailable, type HostView } from "../../../boot/server";

/** A clock the test moves. */
function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
}

/** A load that counts its calls and answers after a tick, so concurrent callers overlap. */
function counted(value: () => Buffer | Error) {
  const calls = { n: 0 };
  const load = async () => {
    calls.n++;
    await new Promise(r => setTimeout(r, 5));
    const v = value();
    if (v instanceof Error) throw v;
    return v;
  };
  return { calls, load };
}

describe("BootstrapCache", () => {
  it("gives concurrent reads of one key one load and the same bytes", async () => {
    const cache = new BootstrapCache();
    const { calls, load } = counted(() => Buffer.from("data"));
    const results = await Promise.all(Array.from({ length: 20 }, () => cache.get("k", load)));
    expect(calls.n).toBe(1);
    for (const r of results) expect(r.toString()).toBe("data");
    await cache.get("k", load);
    expect(calls.n).toBe(1);
  });

  it("loads again once the TTL has passed", async () => {
    const t = clock();
    const cache = new BootstrapCache({ ttlMs: 10_000, now: t.now });
    let version = 1;
    const { calls, load } = counted(() => Buffer.from(`v${version}`));
    expect((await cache.get("k", load)).toString()).toBe("v1");
    version = 2;
    t.advance(9_999);
    expect((await cache.get("k", load)).toString()).toBe("v1");
    t.advance(1);
    expect((await cache.get("k", load)).toString()).toBe("v2");
    expect(calls.n).toBe(2);
  });

  it("keeps no failure: the next read loads again and keeps the success", async () => {
    const cache = new BootstrapCache();
    let missing = true;
    const { calls, load } = counted(() =>
      missing ? new BootDataUnavailable("Secret ns/x does not exist") : Buffer.from("now here"),
    );
    const failed = await Promise.allSettled([cache.get("k", load), cache.get("k", load)]);
    expect(failed.map(f => f.status)).toEqual(["rejected", "rejected"]);
    expect(calls.n).toBe(1);
    expect(cache.size().entries).toBe(0);
    await expect(cache.get("k", load)).rejects.toBeInstanceOf(BootDataUnavailable);
    expect(calls.n).toBe(2);
    missing = false;
    expect((await cache.get("k", load)).toString()).toBe("now here");
    await cache.get("k", load);
    expect(calls.n).toBe(3);
  });

  it("holds its entry bound, dropping the oldest first", async () => {
    const cache = new BootstrapCache({ maxEntries: 3 });
    for (const key of ["a", "b", "c", "d"]) await cache.get(key, async () => Buffer.from(key));
    expect(cache.size()).toEqual({ entries: 3, bytes: 3 });
    const { calls, load } = counted(() => Buffer.from("a2"));
    expect((await cache.get("a", load)).toString()).toBe("a2");
    expect(calls.n).toBe(1);
    // "d" survived both evictions.
    const d = counted(() => Buffer.from("d2"));
    expect((await cache.get("d", d.load)).toString()).toBe("d");
    expect(d.calls.n).toBe(0);
  });

  it("holds its byte bound, and serves but does not keep a value larger than it", async () => {
    const cache = new BootstrapCache({ maxBytes: 100 });
    await cache.get("a", async () => Buffer.alloc(40));
    await cache.get("b", async () => Buffer.alloc(40));
    await cache.get("c", async () => Buffer.alloc(40));
    expect(cache.size()).toEqual({ entries: 2, bytes: 80 });
    const big = await cache.get("big", async () => Buffer.alloc(101));
    expect(big.length).toBe(101);
    expect(cache.size()).toEqual({ entries: 2, bytes: 80 });
  });

  it("drops expired entries, releasing their bytes", async () => {
    const t = clock();
    const cache = new BootstrapCache({ ttlMs: 1_000, now: t.now });
    await cache.get("a", async () => Buffer.alloc(10));
    t.advance(500);
    await cache.get("b", async () => Buffer.alloc(20));
    t.advance(500);
    expect(cache.size()).toEqual({ entries: 1, bytes: 20 });
    t.advance(500);
    expect(cache.size()).toEqual({ entries: 0, bytes: 0 });
  });
});

describe("KubeHostDirectory bootstrap data", () => {
  const secretBytes = "#cloud-config\n# canary-4f1d9 bootstrap secret\n";

  /** An API client holding Secrets by path, counting GETs. */
  function fakeKube() {
    const secrets = new Map<string, Record<string, string>>();
    const gets: string[] = [];
    const kube = {
      async request(method: string, path: string) {
        gets.push(`${method} ${path}`);
        await new Promise(r => setTimeout(r, 5));
        const data = secrets.get(path);
        if (!data) throw new KubeError(`secrets not found`, 404);
        return { data };
      },
    } as unknown as KubeClient;
    return { kube, secrets, gets };
  }

  const host = (session: string): HostView => ({
    key: "team-a/host-1",
    uid: "uid-1",
    systemUUID: "4c4c4544-0042-1000-8000-00000000be7c",
    state: "Provisioning",
    boot: { session, issuedTime: new Date().toISOString(), delivery: "ConfigVolume" },
    provisioning: { osFamily: "kairos", bootstrapDataSecretRef: "machine-1-bootstrap" },
  });
  const path = "/api/v1/namespaces/team-a/secrets/machine-1-bootstrap";

  it("reads the Secret once for a burst of one session, again in a new session", async () => {
    const api = fakeKube();
    api.secrets.set(path, { value: Buffer.from(secretBytes).toString("base64") });
    const directory = new KubeHostDirectory(api.kube, () => undefined);
    const burst = await Promise.all(
      Array.from({ length: 12 }, () => directory.bootstrapData(host("s1"))),
    );
    for (const data of burst) expect(data.toString()).toBe(secretBytes);
    await directory.bootstrapData(host("s1"));
    expect(api.gets).toEqual([`GET ${path}`]);

    // A new claim of the host (a new session) may come with a re-created Secret: read it.
    api.secrets.set(path, { value: Buffer.from("recreated").toString("base64") });
    expect((await directory.bootstrapData(host("s2"))).toString()).toBe("recreated");
    expect(api.gets).toHaveLength(2);
  });

  it("reads a missing Secret or key again on the next request, without its bytes in errors", async () => {
    const api = fakeKube();
    const directory = new KubeHostDirectory(api.kube, () => undefined);
    await expect(directory.bootstrapData(host("s1"))).rejects.toThrow(
      "bootstrap data Secret team-a/machine-1-bootstrap does not exist",
    );
    api.secrets.set(path, { other: Buffer.from(secretBytes).toString("base64") });
    const noKey = await directory.bootstrapData(host("s1")).catch((e: unknown) => e);
    expect(noKey).toBeInstanceOf(BootDataUnavailable);
    expect((noKey as Error).message).toBe('Secret team-a/machine-1-bootstrap has no key "value"');
    expect((noKey as Error).message).not.toContain("canary");
    api.secrets.set(path, { value: Buffer.from(secretBytes).toString("base64") });
    expect((await directory.bootstrapData(host("s1"))).toString()).toBe(secretBytes);
    expect(api.gets).toHaveLength(3);
  });
});
