// A late watch event must not replace a newer copy or a pending re-read (issue 13): the host
// reconciler recorded a provisioning step in its status patch (resourceVersion 5), and an event
// for the object as it was before (resourceVersion 3) arrives afterwards. Run on that copy, the
// reconcile would not see the recorded step and would do it again.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import {
  WorkQueue,
  olderVersion,
  type ObjectRef,
} from "../../../../capabilities/lib/runtime/workqueue";

interface Obj extends ObjectRef {
  metadata: { name: string; namespace: string; resourceVersion: string };
  completedSteps: string[];
}

const at = (resourceVersion: string, completedSteps: string[]): Obj => ({
  metadata: { name: "h", namespace: "ns", resourceVersion },
  completedSteps,
});

describe("WorkQueue and stale copies", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  function queue(server: { current: Obj }) {
    const runs: Obj[] = [];
    const q: WorkQueue<Obj> = new WorkQueue<Obj>({
      name: "t",
      concurrency: 1,
      fetch: async () => structuredClone(server.current),
      reconcile: async o => {
        runs.push(o);
        if (o.completedSteps.length === 0) {
          // The run records its step: the API server now has version 5, and the runtime says so.
          server.current = at("5", ["PowerOff"]);
          q.written("ns", "h", "5");
          return { requeueAfterMs: 1000 };
        }
        return undefined;
      },
    });
    return { q, runs };
  }

  it("ignores an event older than the run's own write, and the next run re-reads", async () => {
    const server = { current: at("3", []) };
    const { q, runs } = queue(server);
    q.add(at("3", []));
    await q.idle();
    // Late: the watch delivers version 4 (before the write) after the write.
    q.add(at("4", []));
    await q.idle();
    await vi.advanceTimersByTimeAsync(1000);
    await q.idle();
    expect(runs.map(r => r.metadata.resourceVersion)).toEqual(["3", "5"]);
    expect(runs[1]!.completedSteps).toEqual(["PowerOff"]);
  });

  it("an event that arrived during the run, older than its write, is re-read before re-running", async () => {
    const server = { current: at("3", []) };
    const runs: Obj[] = [];
    const gate: { open?: () => void } = {};
    const q: WorkQueue<Obj> = new WorkQueue<Obj>({
      name: "t",
      concurrency: 1,
      fetch: async () => structuredClone(server.current),
      reconcile: async o => {
        runs.push(o);
        if (o.completedSteps.length === 0) {
          await new Promise<void>(r => (gate.open = r));
          server.current = at("5", ["PowerOff"]);
          q.written("ns", "h", "5");
        }
        return undefined;
      },
    });
    q.add(at("3", []));
    await vi.advanceTimersByTimeAsync(0);
    q.add(at("4", [])); // a label change by someone else, before the run's write
    gate.open!();
    await q.idle();
    await vi.advanceTimersByTimeAsync(0);
    await q.idle();
    expect(runs.map(r => r.metadata.resourceVersion)).toEqual(["3", "5"]);
  });

  it("a newer event replaces the copy as before", async () => {
    const server = { current: at("3", []) };
    const { q, runs } = queue(server);
    q.add(at("3", []));
    await q.idle();
    q.add(at("9", ["PowerOff", "EjectMedia"]));
    await q.idle();
    expect(runs.map(r => r.metadata.resourceVersion)).toEqual(["3", "9"]);
  });

  it("compares resourceVersions as numbers, and never calls an opaque one older", () => {
    expect(olderVersion("9", "10")).toBe(true);
    expect(olderVersion("10", "9")).toBe(false);
    expect(olderVersion("12345678901234567890", "12345678901234567891")).toBe(true);
    expect(olderVersion("abc", "10")).toBe(false);
    expect(olderVersion(undefined, "10")).toBe(false);
  });
});
