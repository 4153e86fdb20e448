import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { WorkQueue, type ObjectRef } from "../../../../capabilities/lib/runtime/workqueue";

interface Obj extends ObjectRef {
  metadata: { name: string; namespace: string; deletionTimestamp?: string };
  group?: string;
  version: number;
}

const obj = (name: string, version = 1, group?: string): Obj => ({
  metadata: { name, namespace: "ns" },
  version,
  group,
});

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>(r => (resolve = r));
  return { promise, resolve };
}

describe("WorkQueue", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("coalesces a burst of events into one run with the newest object", async () => {
    const seen: number[] = [];
    const busy = deferred();
    const q = new WorkQueue<Obj>({
      name: "t",
      concurrency: 1,
      fetch: async () => undefined,
      reconcile: async o => {
        if (o.metadata.name === "z") await busy.promise;
        seen.push(o.version);
      },
    });
    // The only slot is busy with "z" while three events arrive for "a".
    q.add(obj("z", 0));
    q.add(obj("a", 1));
    q.add(obj("a", 2));
    q.add(obj("a", 3));
    busy.resolve();
    await q.idle();
    expect(seen).toEqual([0, 3]);
  });

  it("never runs one object twice at once and re-runs it once after a mid-run event", async () => {
    const gate = deferred();
    let running = 0;
    let maxRunning = 0;
    const versions: number[] = [];
    const q = new WorkQueue<Obj>({
      name: "t",
      concurrency: 4,
      fetch: async () => undefined,
      reconcile: async o => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        versions.push(o.version);
        if (o.version === 1) await gate.promise;
        running--;
      },
    });
    q.add(obj("a", 1));
    q.add(obj("a", 2));
    q.add(obj("a", 3));
    gate.resolve();
    await vi.runAllTimersAsync();
    await q.idle();
    expect(maxRunning).toBe(1);
    expect(versions).toEqual([1, 3]);
  });

  it("requeues after the delay a reconcile asks for, re-reading the object first", async () => {
    const fetched: string[] = [];
    const runs: number[] = [];
    const q = new WorkQueue<Obj>({
      name: "t",
      concurrency: 1,
      fetch: async (_ns, name) => {
        fetched.push(name);
        return obj(name, 10);
      },
      reconcile: async o => {
        runs.push(o.version);
        return runs.length < 3 ? { requeueAfterMs: 30_000 } : undefined;
      },
    });
    q.add(obj("a", 1));
    await q.idle();
    expect(runs).toEqual([1]);
    await vi.advanceTimersByTimeAsync(29_999);
    expect(runs).toEqual([1]);
    await vi.advanceTimersByTimeAsync(1);
    await q.idle();
    expect(runs).toEqual([1, 10]);
    expect(fetched).toEqual(["a"]);
    await vi.advanceTimersByTimeAsync(30_000);
    await q.idle();
    expect(runs).toEqual([1, 10, 10]);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(runs).toHaveLength(3);
    expect(q.stats().delayed).toBe(0);
  });

  it("retries failures with capped exponential backoff and jitter, and resets on success", async () => {
    let attempts = 0;
    const errors: Array<[number, number]> = [];
    const q = new WorkQueue<Obj>({
      name: "t",
      concurrency: 1,
      backoffBaseMs: 1000,
      backoffMaxMs: 8000,
      random: () => 0.999999, // jitter at its top: delays are ~the raw backoff
      fetch: async (_ns, name) => obj(name),
      reconcile: async () => {
        attempts++;
        if (attempts <= 5) throw new Error("BMC unreachable");
      },
      onError: (_o, _e, failures, delay) => errors.push([failures, delay]),
    });
    q.add(obj("a"));
    await q.idle();
    for (let i = 0; i < 5; i++) {
      await vi.advanceTimersByTimeAsync(8000);
      await q.idle();
    }
    expect(attempts).toBe(6);
    expect(errors.map(([f]) => f)).toEqual([1, 2, 3, 4, 5]);
    expect(errors.map(([, d]) => d)).toEqual([1000, 2000, 4000, 8000, 8000]);
    expect(q.backoff(1)).toBeGreaterThanOrEqual(500);
  });

  it("spreads retries with jitter between half and all of the raw backoff", () => {
    const low = new WorkQueue<Obj>({
      name: "t",
      concurrency: 1,
      fetch: async () => undefined,
      reconcile: async () => undefined,
      random: () => 0,
    });
    expect(low.backoff(3)).toBe(2000);
  });

  it("bounds concurrency globally and per group", async () => {
    const gates = new Map<string, ReturnType<typeof deferred>>();
    const active = new Set<string>();
    let maxGlobal = 0;
    let maxPerGroup = 0;
    const q = new WorkQueue<Obj>({
      name: "t",
      concurrency: 3,
      groupConcurrency: 1,
      groupOf: o => o.group,
      fetch: async () => undefined,
      reconcile: async o => {
        active.add(o.metadata.name);
        maxGlobal = Math.max(maxGlobal, active.size);
        const perGroup = [...active].filter(n => n.startsWith(o.group!)).length;
        maxPerGroup = Math.max(maxPerGroup, perGroup);
        const gate = deferred();
        gates.set(o.metadata.name, gate);
        await gate.promise;
        active.delete(o.metadata.name);
      },
    });
    for (const g of ["a", "b"]) for (let i = 0; i < 3; i++) q.add(obj(`${g}${i}`, 1, g));
    q.add(obj("c0", 1, "c"));
    q.add(obj("d0", 1, "d"));
    await vi.advanceTimersByTimeAsync(0);
    expect(active.size).toBe(3);
    while (gates.size) {
      const [name, gate] = gates.entries().next().value!;
      gates.delete(name);
      gate.resolve();
      await vi.advanceTimersByTimeAsync(0);
    }
    await q.idle();
    expect(maxGlobal).toBe(3);
    expect(maxPerGroup).toBe(1);
  });

  it("runs an object added first ahead of those waiting, also one already queued", async () => {
    const started: string[] = [];
    const gate = deferred();
    const q = new WorkQueue<Obj>({
      name: "t",
      concurrency: 1,
      fetch: async () => undefined,
      reconcile: async o => {
        started.push(o.metadata.name);
        await gate.promise;
      },
    });
    q.add(obj("busy"));
    for (const name of ["w1", "w2", "w3"]) q.add(obj(name));
    q.add(obj("claimed"), true);
    q.add(obj("w3", 2), true); // queued already: moves to the head, once
    await vi.advanceTimersByTimeAsync(0);
    gate.resolve();
    await q.idle();
    expect(started).toEqual(["busy", "w3", "claimed", "w1", "w2"]);
  });

  it("drops objects that are gone, runs objects being deleted, and forget cancels timers", async () => {
    const runs: string[] = [];
    const q = new WorkQueue<Obj>({
      name: "t",
      concurrency: 1,
      fetch: async (_ns, name) =>
        name === "gone"
          ? undefined
          : { ...obj(name), metadata: { name, namespace: "ns", deletionTimestamp: "now" } },
      reconcile: async o => {
        runs.push(`${o.metadata.name}${o.metadata.deletionTimestamp ? " (deleting)" : ""}`);
        return o.metadata.deletionTimestamp ? {} : { requeueAfterMs: 1000 };
      },
    });
    q.add(obj("gone"));
    q.add(obj("deleting"));
    await q.idle();
    expect(runs).toEqual(["gone", "deleting"]);
    await vi.advanceTimersByTimeAsync(1000);
    await q.idle();
    // The re-read finds one object gone (dropped) and the other being deleted: the controller
    // runtime finalizes it, so it runs.
    expect(runs).toEqual(["gone", "deleting", "deleting (deleting)"]);

    q.add(obj("kept"));
    await q.idle();
    q.forget("ns", "kept");
    expect(q.stats().delayed).toBe(0);
    await vi.advanceTimersByTimeAsync(5000);
    expect(runs).toEqual(["gone", "deleting", "deleting (deleting)", "kept"]);
  });

  it("aborts a running run when an event interrupts it, then runs the newer object", async () => {
    const gate = deferred();
    const seen: Array<{ version: number; aborted: boolean }> = [];
    const q = new WorkQueue<Obj>({
      name: "t",
      concurrency: 1,
      fetch: async () => undefined,
      interrupts: (running, incoming) => incoming.version > running.version,
      reconcile: async (o, signal) => {
        if (o.version === 1) await gate.promise;
        seen.push({ version: o.version, aborted: signal.aborted });
      },
    });
    q.add(obj("a", 1));
    await vi.advanceTimersByTimeAsync(0);
    q.add(obj("a", 1)); // no interruption: same version
    q.add(obj("a", 2));
    gate.resolve();
    await q.idle();
    expect(seen).toEqual([
      { version: 1, aborted: true },
      { version: 2, aborted: false },
    ]);
  });

  it("shutdown aborts running runs, waits for them, and starts nothing new", async () => {
    const gate = deferred();
    const runs: string[] = [];
    let abortedSeen = false;
    const q = new WorkQueue<Obj>({
      name: "t",
      concurrency: 1,
      fetch: async () => undefined,
      reconcile: async (o, signal) => {
        runs.push(o.metadata.name);
        await gate.promise;
        abortedSeen = signal.aborted;
      },
    });
    q.add(obj("a"));
    q.add(obj("b"));
    await vi.advanceTimersByTimeAsync(0);
    const stopped = q.shutdown(10_000);
    gate.resolve();
    await stopped;
    expect(abortedSeen).toBe(true);
    expect(runs).toEqual(["a"]);
    q.add(obj("c"));
    await vi.advanceTimersByTimeAsync(1000);
    expect(runs).toEqual(["a"]);
  });

  it("an event cancels a pending delayed run instead of adding a second one", async () => {
    const runs: number[] = [];
    const q = new WorkQueue<Obj>({
      name: "t",
      concurrency: 1,
      fetch: async (_ns, name) => obj(name, 99),
      reconcile: async o => {
        runs.push(o.version);
        return { requeueAfterMs: 10_000 };
      },
    });
    q.add(obj("a", 1));
    await q.idle();
    await vi.advanceTimersByTimeAsync(5000);
    q.add(obj("a", 2));
    await q.idle();
    expect(runs).toEqual([1, 2]);
    await vi.advanceTimersByTimeAsync(9_999);
    expect(runs).toEqual([1, 2]);
    await vi.advanceTimersByTimeAsync(1);
    await q.idle();
    expect(runs).toEqual([1, 2, 99]);
  });

  it("absorbs events whose fingerprint matches the last run, such as its own status writes", async () => {
    const runs: string[] = [];
    let fail = false;
    // The fingerprint ignores `version` (think: status), and follows `group` (think: spec).
    const q = new WorkQueue<Obj>({
      name: "t",
      concurrency: 1,
      fingerprint: o => o.group ?? "",
      fetch: async (_ns, name) => obj(name, 50, "g1"),
      reconcile: async o => {
        runs.push(`${o.version}/${o.group}`);
        if (fail) throw new Error("BMC down");
        return { requeueAfterMs: 10_000 };
      },
    });
    q.add(obj("a", 1, "g1"));
    await q.idle();
    q.add(obj("a", 2, "g1")); // the echo of the run's own status patch
    await q.idle();
    expect(runs).toEqual(["1/g1"]);
    // The periodic requeue survives the absorbed event.
    await vi.advanceTimersByTimeAsync(10_000);
    await q.idle();
    expect(runs).toEqual(["1/g1", "50/g1"]);
    q.add(obj("a", 3, "g2")); // a change that matters
    await q.idle();
    expect(runs).toEqual(["1/g1", "50/g1", "3/g2"]);
    // After a failure any event runs again at once, fingerprint or not.
    fail = true;
    q.add(obj("a", 4, "g3"));
    await q.idle();
    q.add(obj("a", 5, "g3"));
    await q.idle();
    expect(runs).toEqual(["1/g1", "50/g1", "3/g2", "4/g3", "5/g3"]);
  });

  it("absorbs a same-fingerprint event that arrives while the object is running", async () => {
    const gate = deferred();
    const runs: number[] = [];
    const q = new WorkQueue<Obj>({
      name: "t",
      concurrency: 1,
      fingerprint: o => o.group ?? "",
      fetch: async () => undefined,
      reconcile: async o => {
        runs.push(o.version);
        if (o.version === 1) await gate.promise;
      },
    });
    q.add(obj("a", 1, "g"));
    await vi.advanceTimersByTimeAsync(0);
    q.add(obj("a", 2, "g")); // status echo mid-run: no second run
    gate.resolve();
    await q.idle();
    expect(runs).toEqual([1]);
  });

  it("shortens requeue delays by up to the jitter fraction, never lengthens them", async () => {
    const runs: number[] = [];
    let draw = 0;
    const draws = [1, 0, 0.5];
    const q = new WorkQueue<Obj>({
      name: "t",
      concurrency: 1,
      requeueJitter: 0.1,
      random: () => draws[draw++ % draws.length]!,
      fetch: async (_ns, name) => obj(name, 2),
      reconcile: async () => {
        runs.push(Date.now());
        return { requeueAfterMs: 100_000 };
      },
    });
    const start = Date.now();
    q.add(obj("a", 1));
    await q.idle();
    // Draws 1, 0, 0.5: the next runs come 90 s, 100 s and 95 s apart.
    for (const step of [90_000, 100_000, 95_000]) {
      await vi.advanceTimersByTimeAsync(step - 1);
      const before = runs.length;
      await vi.advanceTimersByTimeAsync(1);
      await q.idle();
      expect(runs.length).toBe(before + 1);
    }
    expect(runs.map(t => t - start)).toEqual([0, 90_000, 190_000, 285_000]);
  });

  it("keeps the defaults of options given as undefined (an undefined jitter once made every delay NaN)", async () => {
    const runs: number[] = [];
    const q = new WorkQueue<Obj>({
      name: "t",
      concurrency: 1,
      groupConcurrency: undefined,
      requeueJitter: undefined,
      backoffBaseMs: undefined,
      fetch: async () => obj("a"),
      reconcile: async () => {
        runs.push(Date.now());
        return { requeueAfterMs: 1000 };
      },
    });
    q.add(obj("a"));
    await q.idle();
    await vi.advanceTimersByTimeAsync(999);
    expect(runs).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    await q.idle();
    expect(runs).toHaveLength(2);
    expect(q.backoff(1)).toBeGreaterThanOrEqual(500);
  });
});
