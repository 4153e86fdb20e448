// The controller runtime with a fake kind ("Widget") that has its own reconcile and finalize, as
// Beskar7Machine and Beskar7Cluster will: one patch per run, deletion through the queue with the
// finalizer removed only when finalize is done, interruption of a running reconcile, per-group
// limits, objects by state computed from the objects as they are, and a restart that resumes a
// pending deletion with nobody touching the object. The API server is an in-memory stand-in that
// applies merge and JSON patches the way the real one does for these calls.
import { describe, expect, it } from "vitest";

import type { EventInput } from "../../../../capabilities/lib/events";
import type { KubeClient } from "../../../../capabilities/lib/kube";
import {
  Controller,
  PEPR_FINALIZER,
  type ControllerDefinition,
  type FinalizeResult,
  type RunResult,
} from "../../../../capabilities/lib/runtime";

interface Widget {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace: string;
    generation?: number;
    resourceVersion?: string;
    deletionTimestamp?: string;
    finalizers?: string[];
    annotations?: Record<string, string>;
  };
  spec?: { group?: string; want?: string };
  status?: { state?: string; note?: string; tries?: number };
}

const PATH = "/apis/example.com/v1/namespaces/ns/widgets/";

/** An API server holding widgets: GET, merge patch of /status, JSON patch (test/remove). */
class FakeApi {
  readonly objects = new Map<string, Widget>();
  readonly calls: string[] = [];
  /** Fails the next calls whose description starts with a key, with that status code. */
  readonly failures: Array<{ prefix: string; status: number }> = [];
  #rv = 1;

  put(w: Widget): Widget {
    const stored = structuredClone({
      ...w,
      metadata: { ...w.metadata, resourceVersion: String(this.#rv++) },
    });
    this.objects.set(w.metadata.name, stored);
    return structuredClone(stored);
  }

  #check(call: string): void {
    this.calls.push(call);
    const i = this.failures.findIndex(f => call.startsWith(f.prefix));
    if (i >= 0) {
      const [f] = this.failures.splice(i, 1);
      throw { status: f!.status, statusText: "Injected", data: { message: `injected ${call}` } };
    }
  }

  #name(path: string): string {
    return path.slice(PATH.length).split("/")[0]!;
  }

  kube(): KubeClient {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the fake's methods close over it
    const api = this;
    return {
      async get<T>(path: string): Promise<T> {
        api.#check(`get ${api.#name(path)}`);
        const w = api.objects.get(api.#name(path));
        if (!w) throw { status: 404, statusText: "Not Found", data: {} };
        return structuredClone(w) as T;
      },
      async mergePatch<T>(path: string, body: { status: Widget["status"] }): Promise<T> {
        api.#check(`status ${api.#name(path)}`);
        const w = api.objects.get(api.#name(path));
        if (!w) throw { status: 404, statusText: "Not Found", data: {} };
        const status: Record<string, unknown> = { ...w.status };
        for (const [k, v] of Object.entries(body.status ?? {})) {
          if (v === null) delete status[k];
          else status[k] = v;
        }
        return api.put({ ...w, status }) as T;
      },
      async jsonPatch<T>(
        path: string,
        ops: Array<{ op: string; path: string; value?: unknown }>,
      ): Promise<T> {
        api.#check(`patch ${api.#name(path)} ${ops.map(o => o.op).join(",")}`);
        const w = structuredClone(api.objects.get(api.#name(path)));
        if (!w) throw { status: 404, statusText: "Not Found", data: {} };
        for (const op of ops) {
          const [, , field, key] = op.path.split("/");
          if (field === "finalizers") {
            const i = Number(key);
            if (op.op === "test" && w.metadata.finalizers?.[i] !== op.value)
              throw { status: 422, statusText: "Unprocessable", data: {} };
            if (op.op === "remove") w.metadata.finalizers!.splice(i, 1);
          } else if (field === "annotations" && op.op === "remove") {
            delete w.metadata.annotations![key!.replace(/~1/g, "/").replace(/~0/g, "~")];
          }
        }
        if (w.metadata.deletionTimestamp && !w.metadata.finalizers?.length) {
          api.objects.delete(w.metadata.name);
          return w as T;
        }
        return api.put(w) as T;
      },
      async create() {
        throw new Error("not used");
      },
      async close() {},
    } as unknown as KubeClient;
  }

  /** Marks a widget deleted, as the API server does when it has finalizers. */
  delete(name: string): Widget {
    const w = this.objects.get(name)!;
    return this.put({
      ...w,
      metadata: { ...w.metadata, deletionTimestamp: "2025-01-01T00:00:00Z" },
    });
  }
}

const until = async (what: string, check: () => boolean, ms = 3000): Promise<void> => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise(r => setTimeout(r, 5));
  }
};

function widget(name: string, spec: Widget["spec"] = {}): Widget {
  return {
    apiVersion: "example.com/v1",
    kind: "Widget",
    metadata: { name, namespace: "ns", generation: 1, finalizers: [PEPR_FINALIZER] },
    spec,
  };
}

function controller(
  api: FakeApi,
  overrides: Partial<ControllerDefinition<Widget>> = {},
): { c: Controller<Widget>; events: EventInput[] } {
  const events: EventInput[] = [];
  const c = new Controller<Widget>(
    {
      name: "widget",
      resource: { group: "example.com", version: "v1", plural: "widgets" },
      reconcile: async w => ({ status: { state: "Ready", note: w.spec?.want ?? "" } }),
      finalize: async () => ({ done: true }),
      groupOf: w => w.spec?.group,
      fingerprint: w => String(w.metadata.generation),
      limits: { concurrency: 8, perGroup: 1, backoff: { baseMs: 20, maxMs: 40 } },
      states: { of: w => w.status?.state, gauge: "test_widgets_by_state" },
      ...overrides,
    },
    () => ({
      kube: api.kube(),
      record: async (_obj, event) => {
        events.push(event);
      },
    }),
  );
  return { c, events };
}

describe("Controller runtime", () => {
  it("writes a run's status in one patch, then its events, and nothing when it changes nothing", async () => {
    const api = new FakeApi();
    const reconcile = async (w: Widget): Promise<RunResult> => ({
      status: { state: "Ready", note: w.spec?.want ?? "" },
      events: [{ type: "Normal", reason: "Reconciled", message: w.metadata.name }],
    });
    const { c, events } = controller(api, { reconcile });
    c.enqueue(api.put(widget("a", { want: "x" })));
    await c.idle();
    expect(api.calls).toEqual(["status a"]);
    expect(api.objects.get("a")!.status).toEqual({ state: "Ready", note: "x" });
    expect(events.map(e => e.reason)).toEqual(["Reconciled"]);

    // A new generation runs again; the same status is not written twice.
    c.enqueue(
      api.put({
        ...api.objects.get("a")!,
        metadata: { ...api.objects.get("a")!.metadata, generation: 2 },
      }),
    );
    await c.idle();
    expect(api.calls).toEqual(["status a"]);
    expect(events).toHaveLength(2);
  });

  it("records events in order beside the next run, which uses the object as written, unread", async () => {
    const api = new FakeApi();
    const recorded: string[] = [];
    let release!: () => void;
    const slowEvents = new Promise<void>(resolve => (release = resolve));
    let runs = 0;
    const c = new Controller<Widget>(
      {
        name: "widget",
        resource: { group: "example.com", version: "v1", plural: "widgets" },
        reconcile: async w => {
          runs++;
          const tries = (w.status?.tries ?? 0) + 1;
          return {
            status: { state: "Ready", tries },
            events: [
              { type: "Normal", reason: `run${tries}a`, message: "" },
              { type: "Normal", reason: `run${tries}b`, message: "" },
            ],
            requeueAfterMs: tries < 2 ? 0 : undefined,
          };
        },
        finalize: async () => ({ done: true }),
        limits: { concurrency: 1, backoff: { baseMs: 20, maxMs: 40 } },
      },
      () => ({
        kube: api.kube(),
        record: async (_obj, event) => {
          await slowEvents; // the API server is slow to take events
          recorded.push(event.reason);
        },
      }),
    );
    c.enqueue(api.put(widget("a")));
    // The follow-up run starts while the first run's events are still being recorded, and runs on
    // the status patch's response: its tries count is 1, and nothing was read.
    await until("the second run", () => runs === 2);
    expect(recorded).toEqual([]);
    release();
    await c.idle();
    expect(recorded).toEqual(["run1a", "run1b", "run2a", "run2b"]);
    expect(api.calls).toEqual(["status a", "status a"]);
    expect(api.objects.get("a")!.status).toEqual({ state: "Ready", tries: 2 });
  });

  it("finalizes a deleting object instead of reconciling it, and removes the finalizer when done", async () => {
    const api = new FakeApi();
    const seen: string[] = [];
    const { c } = controller(api, {
      reconcile: async w => {
        seen.push(`reconcile ${w.metadata.name}`);
        return {};
      },
      finalize: async w => {
        seen.push(`finalize ${w.metadata.name}`);
        return { done: true, status: { state: "Deleting" } };
      },
    });
    api.put(widget("a"));
    c.enqueue(api.delete("a"));
    await c.idle();
    expect(seen).toEqual(["finalize a"]);
    expect(api.calls).toEqual(["status a", "patch a test,remove"]);
    expect(api.objects.has("a")).toBe(false);
  });

  it("keeps the finalizer when finalize throws or is not done, and retries with backoff", async () => {
    const api = new FakeApi();
    let tries = 0;
    const { c } = controller(api, {
      finalize: async (): Promise<FinalizeResult> => {
        tries++;
        if (tries === 1) throw new Error("BMC down");
        if (tries === 2) return { status: { tries }, requeueAfterMs: 10 };
        return { done: true };
      },
    });
    api.put(widget("a"));
    c.enqueue(api.delete("a"));
    await until("three tries", () => tries === 3 && !api.objects.has("a"));
    expect(api.calls.filter(x => x.startsWith("patch"))).toEqual(["patch a test,remove"]);
  });

  it("an API error at the first write of deletion leaves the finalizer, and the next try completes", async () => {
    const api = new FakeApi();
    let cleanups = 0;
    const { c } = controller(api, {
      finalize: async w => {
        if (w.status?.state !== "Deleting")
          return { status: { state: "Deleting" }, requeueAfterMs: 0 };
        cleanups++;
        return { done: true };
      },
    });
    api.put(widget("a"));
    api.failures.push({ prefix: "status a", status: 500 });
    c.enqueue(api.delete("a"));
    await c.idle();
    expect(api.objects.get("a")!.metadata.finalizers).toEqual([PEPR_FINALIZER]);
    expect(cleanups).toBe(0);
    await until("deletion", () => !api.objects.has("a"));
    expect(cleanups).toBe(1);
  });

  it("a delete waits for the running reconcile, which is told to stop", async () => {
    const api = new FakeApi();
    let release!: () => void;
    const gate = new Promise<void>(r => (release = r));
    const order: string[] = [];
    const { c } = controller(api, {
      reconcile: async (_w, { signal }) => {
        order.push("reconcile started");
        await gate;
        order.push(`reconcile sees aborted=${signal.aborted}`);
        signal.throwIfAborted(); // as the BMC port does before its next action
        order.push("reconcile acted");
        return {};
      },
      finalize: async () => {
        order.push("finalize");
        return { done: true };
      },
    });
    c.enqueue(api.put(widget("a")));
    await until("reconcile", () => order.length === 1);
    c.enqueue(api.delete("a"));
    await new Promise(r => setTimeout(r, 20));
    expect(order).toEqual(["reconcile started"]); // finalize waits
    release();
    await until("finalize", () => order.includes("finalize"));
    expect(order).toEqual(["reconcile started", "reconcile sees aborted=true", "finalize"]);
    await until("deletion", () => !api.objects.has("a"));
  });

  it("runs one object of a group at a time, deletions included", async () => {
    const api = new FakeApi();
    let running = 0;
    let most = 0;
    const work = async () => {
      running++;
      most = Math.max(most, running);
      await new Promise(r => setTimeout(r, 10));
      running--;
    };
    const { c } = controller(api, {
      reconcile: async () => {
        await work();
        return {};
      },
      finalize: async () => {
        await work();
        return { done: true };
      },
    });
    for (const name of ["a", "b", "c"]) c.enqueue(api.put(widget(name, { group: "bmc-1" })));
    api.put(widget("d", { group: "bmc-1" }));
    c.enqueue(api.delete("d"));
    await c.idle();
    expect(most).toBe(1);
    expect(api.objects.has("d")).toBe(false);
  });

  it("counts objects by state as they are: after a deletion and after a restart", async () => {
    const api = new FakeApi();
    const { c } = controller(api);
    for (const name of ["a", "b", "c"]) c.enqueue(api.put(widget(name)));
    await c.idle();
    expect(c.objectsByState()).toEqual({ Ready: 3 });
    const gone = api.delete("c");
    c.enqueue(gone);
    await c.idle();
    c.deleted(gone);
    expect(c.objectsByState()).toEqual({ Ready: 2 });

    // A new process starts from nothing and learns the states from the relist.
    const { c: again } = controller(api);
    for (const w of api.objects.values()) again.enqueue(structuredClone(w));
    await again.idle();
    expect(again.objectsByState()).toEqual({ Ready: 2 });
  });

  it("after a restart, a deletion waiting on its backoff is resumed with nobody touching the object", async () => {
    const api = new FakeApi();
    let attempts = 0;
    const failing = controller(api, {
      limits: { concurrency: 1, backoff: { baseMs: 60_000, maxMs: 60_000 } },
      finalize: async w => {
        attempts++;
        return { status: { tries: (w.status?.tries ?? 0) + 1 }, requeueAfterMs: 60_000 };
      },
    });
    api.put(widget("a"));
    failing.c.enqueue(api.delete("a"));
    await failing.c.idle();
    expect(attempts).toBe(1);
    await failing.c.shutdown(1000); // the operator stops during the minute-long backoff

    // The new process gets the object from its relist, unchanged, and finishes the deletion.
    const restarted = controller(api, {
      finalize: async w => ({ done: (w.status?.tries ?? 0) >= 1 }),
    });
    restarted.c.enqueue(structuredClone(api.objects.get("a")!));
    await restarted.c.idle();
    expect(api.objects.has("a")).toBe(false);
  });

  it("Pepr's Finalize callback never lets Pepr remove the finalizer", async () => {
    const api = new FakeApi();
    const { c } = controller(api, { finalize: async () => ({}) });
    api.put(widget("a"));
    expect(c.finalizing(api.delete("a"))).toBe(false);
    await c.idle();
    expect(api.objects.get("a")!.metadata.finalizers).toEqual([PEPR_FINALIZER]);
  });
});
