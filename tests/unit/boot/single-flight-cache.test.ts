// The shared single-flight TTL cache (boot/single-flight-cache.ts) on its own, with a clock the
// test moves and loads the test holds open: one load per key for concurrent gets, expiry at the
// TTL (fixed or chosen per value, 0 keeping nothing), failures never kept, delete() dropping a
// value and a load under way, the entry and weight bounds dropping the oldest first, and a stale
// value answered at once while one background load refreshes it.
import { describe, expect, it } from "vitest";

import { SingleFlightCache } from "../../../boot/single-flight-cache";

/** A clock the test moves. */
function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
}

/** A load that counts its calls and stays open until the test settles it. */
function heldLoad<V>() {
  let calls = 0;
  const open: { resolve: (v: V) => void; reject: (e: Error) => void }[] = [];
  const load = () => {
    calls++;
    return new Promise<V>((resolve, reject) => open.push({ resolve, reject }));
  };
  return {
    load,
    calls: () => calls,
    resolve: (v: V) => open.shift()!.resolve(v),
    reject: (e: Error) => open.shift()!.reject(e),
  };
}

describe("SingleFlightCache", () => {
  it("gives concurrent gets of one key one load and its value; other keys load on their own", async () => {
    const cache = new SingleFlightCache<string>({ ttlMs: 1000 });
    const l = heldLoad<string>();
    const gets = [cache.get("a", l.load), cache.get("a", l.load), cache.get("a", l.load)];
    const other = cache.get("b", l.load);
    expect(l.calls()).toBe(2);
    l.resolve("A");
    l.resolve("B");
    expect(await Promise.all(gets)).toEqual(["A", "A", "A"]);
    expect(await other).toBe("B");
    expect(await cache.get("a", l.load)).toBe("A");
    expect(l.calls()).toBe(2);
    expect(cache.size).toBe(2);
  });

  it("keeps a value for its TTL from the end of its load, then loads again", async () => {
    const t = clock();
    const cache = new SingleFlightCache<string>({ ttlMs: 1000, now: t.now });
    let version = 1;
    let calls = 0;
    const load = async () => {
      calls++;
      return `v${version}`;
    };
    const pending = cache.get("k", load);
    t.advance(500); // the load takes 500 ms: the TTL runs from its end
    expect(await pending).toBe("v1");
    version = 2;
    t.advance(999);
    expect(await cache.get("k", load)).toBe("v1");
    t.advance(1);
    expect(cache.size).toBe(0);
    expect(await cache.get("k", load)).toBe("v2");
    expect(calls).toBe(2);
  });

  it("chooses the TTL per value; a TTL of 0 keeps nothing", async () => {
    const t = clock();
    const cache = new SingleFlightCache<string | undefined>({
      ttlMs: v => (v === undefined ? 0 : v.startsWith("long") ? 10_000 : 1000),
      now: t.now,
    });
    let calls = 0;
    const answer = (v: string | undefined) => async () => {
      calls++;
      return v;
    };
    expect(await cache.get("missing", answer(undefined))).toBeUndefined();
    expect(await cache.get("missing", answer(undefined))).toBeUndefined();
    expect(calls).toBe(2);
    await cache.get("short", answer("short"));
    await cache.get("long", answer("long"));
    expect(cache.size).toBe(2);
    t.advance(1000);
    expect(cache.size).toBe(1);
    expect(await cache.get("long", answer("long again"))).toBe("long");
    expect(await cache.get("short", answer("short again"))).toBe("short again");
    t.advance(9000);
    expect(await cache.get("long", answer("long again"))).toBe("long again");
  });

  it("keeps no failure: every get sharing it fails, and the next get loads again", async () => {
    const cache = new SingleFlightCache<string>({ ttlMs: 1000 });
    const l = heldLoad<string>();
    const failing = Promise.allSettled([cache.get("k", l.load), cache.get("k", l.load)]);
    l.reject(new Error("read failed"));
    const settled = await failing;
    expect(settled.map(s => s.status)).toEqual(["rejected", "rejected"]);
    expect(cache.size).toBe(0);
    const again = cache.get("k", l.load);
    expect(l.calls()).toBe(2);
    l.resolve("ok");
    expect(await again).toBe("ok");
    expect(await cache.get("k", l.load)).toBe("ok");
    expect(l.calls()).toBe(2);
  });

  it("delete() drops a kept value, and a load under way answers its callers but is not kept", async () => {
    const cache = new SingleFlightCache<string>({ ttlMs: 60_000 });
    const l = heldLoad<string>();
    const kept = cache.get("k", l.load);
    l.resolve("v1");
    await kept;
    cache.delete("k");
    expect(cache.size).toBe(0);

    const overtaken = cache.get("k", l.load); // reads v2, held open
    cache.delete("k"); // a change reported while it reads
    const fresh = cache.get("k", l.load); // a new load, not the overtaken one
    expect(l.calls()).toBe(3);
    l.resolve("v2");
    expect(await overtaken).toBe("v2");
    expect(cache.size).toBe(0);
    l.resolve("v3");
    expect(await fresh).toBe("v3");
    expect(await cache.get("k", l.load)).toBe("v3");
    expect(l.calls()).toBe(3);
  });

  it("holds the entry bound, dropping the oldest first", async () => {
    const cache = new SingleFlightCache<string>({ ttlMs: 60_000, maxEntries: 2 });
    for (const key of ["a", "b", "c"]) await cache.get(key, async () => key);
    expect(cache.size).toBe(2);
    expect(await cache.get("a", async () => "a reloaded")).toBe("a reloaded");
    // "c" survived both evictions; "b" went with the second.
    expect(await cache.get("c", async () => "c reloaded")).toBe("c");
    expect(await cache.get("b", async () => "b reloaded")).toBe("b reloaded");
  });

  it("holds the weight bound; a value heavier than it is returned but not kept", async () => {
    const t = clock();
    const cache = new SingleFlightCache<Buffer>({
      ttlMs: 1000,
      maxWeight: 100,
      weigh: b => b.length,
      now: t.now,
    });
    await cache.get("a", async () => Buffer.alloc(40));
    await cache.get("b", async () => Buffer.alloc(40));
    await cache.get("c", async () => Buffer.alloc(40));
    expect([cache.size, cache.weight]).toEqual([2, 80]);
    expect((await cache.get("big", async () => Buffer.alloc(101))).length).toBe(101);
    expect([cache.size, cache.weight]).toEqual([2, 80]);
    t.advance(1000);
    expect([cache.size, cache.weight]).toEqual([0, 0]);
  });

  it("keeps, on a delete() naming the current value, a kept value or a load under way that is it", async () => {
    const cache = new SingleFlightCache<{ v: string }>({ ttlMs: 60_000 });
    const l = heldLoad<{ v: string }>();
    const isV2 = (x: { v: string }) => x.v === "v2";
    await cache.get("kept", async () => ({ v: "v2" }));
    cache.delete("kept", isV2);
    expect(await cache.get("kept", async () => ({ v: "reloaded" }))).toEqual({ v: "v2" });
    cache.delete("kept", x => x.v === "v3");
    expect(await cache.get("kept", async () => ({ v: "v3" }))).toEqual({ v: "v3" });

    const current = cache.get("loading", l.load);
    cache.delete("loading", isV2); // reported while the load reads: it reads v2, so it stays
    l.resolve({ v: "v2" });
    expect(await current).toEqual({ v: "v2" });
    expect(await cache.get("loading", l.load)).toEqual({ v: "v2" });
    const older = cache.get("older", l.load);
    cache.delete("older", isV2); // the load reads v1, older than reported: answered, not kept
    l.resolve({ v: "v1" });
    expect(await older).toEqual({ v: "v1" });
    expect(cache.size).toBe(2);
    expect(l.calls()).toBe(2);
  });

  describe("stale-while-revalidate (staleMs)", () => {
    const settled = () => new Promise(resolve => setImmediate(resolve));

    it("answers at once from a stale value while one load refreshes it, then from the refreshed one", async () => {
      const t = clock();
      const cache = new SingleFlightCache<string>({ ttlMs: 1000, staleMs: 5000, now: t.now });
      const l = heldLoad<string>();
      const first = cache.get("k", l.load);
      l.resolve("v1");
      expect(await first).toBe("v1");
      t.advance(1000);
      // Stale: two gets, the old value for both, one refresh between them.
      expect(await cache.get("k", l.load)).toBe("v1");
      expect(await cache.get("k", l.load)).toBe("v1");
      expect(l.calls()).toBe(2);
      l.resolve("v2");
      await settled();
      expect(await cache.get("k", l.load)).toBe("v2");
      expect(l.calls()).toBe(2);
    });

    it("waits on a load once the stale window is over", async () => {
      const t = clock();
      const cache = new SingleFlightCache<string>({ ttlMs: 1000, staleMs: 5000, now: t.now });
      await cache.get("k", async () => "v1");
      t.advance(6000);
      expect(cache.size).toBe(0);
      expect(await cache.get("k", async () => "v2")).toBe("v2");
    });

    it("drops the stale value when its refresh fails or finds nothing to keep", async () => {
      const t = clock();
      const cache = new SingleFlightCache<string | undefined>({
        ttlMs: v => (v === undefined ? 0 : 1000),
        staleMs: 5000,
        now: t.now,
      });
      await cache.get("fails", async () => "v1");
      await cache.get("gone", async () => "v1");
      t.advance(1000);
      expect(await cache.get("fails", () => Promise.reject(new Error("read failed")))).toBe("v1");
      expect(await cache.get("gone", async () => undefined)).toBe("v1");
      await settled();
      expect(cache.size).toBe(0);
      await expect(
        cache.get("fails", () => Promise.reject(new Error("still failing"))),
      ).rejects.toThrow("still failing");
    });

    it("keeps no refresh that delete() overtook", async () => {
      const t = clock();
      const cache = new SingleFlightCache<string>({ ttlMs: 1000, staleMs: 5000, now: t.now });
      const l = heldLoad<string>();
      await cache.get("k", async () => "v1");
      t.advance(1000);
      expect(await cache.get("k", l.load)).toBe("v1");
      cache.delete("k"); // a change reported while the refresh reads
      l.resolve("v2 (overtaken)");
      await settled();
      expect(cache.size).toBe(0);
      expect(await cache.get("k", async () => "v3")).toBe("v3");
    });
  });
});
