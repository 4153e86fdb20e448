// The controller runtime every kind shares. A controller is declared with its kind, a reconcile
// and a finalize function and a grouping key; the runtime owns the rest:
//   - the work queue (requeue-after, the one backoff rule, jitter, one run per object at a time,
//     global and per-group limits), fed by Pepr's Reconcile and Finalize bindings;
//   - deletion through that same queue: an object with a deletionTimestamp is finalized, never
//     beside a reconcile of itself (a running reconcile is interrupted and stops before its next
//     action), retried with backoff, and resumed after a restart because the relist replays it;
//     the runtime removes the finalizer itself, only when finalize says it is done, so neither an
//     exception nor an API error ever drops it early;
//   - the status writer: a run returns a result, and the runtime writes its status in one merge
//     patch (none when nothing changed), then its annotations (one merge patch) and events;
//   - metrics (runs, durations, queue depth, objects by state computed from the objects as they
//     are) and shutdown (queues stopped, running work awaited, then the controller's own hooks).
// Reconcile and finalize functions stay pure in the sense that matters: they read the object and
// the outside world and return what to write; they never write to the API server themselves.
//
// Top-level code of capability files also runs during `pepr build`, so nothing here starts until
// the first event arrives.
import { Log } from "pepr";

import { describeError } from "../error-message";
import type { EventInput } from "../events";
import { apiServerEventRecorder, type EventRecorder } from "../events";
import { KubeClient, paths } from "../kube";
import { add, Metrics, registerMetrics, set } from "../metrics";
import type { BackoffSettings } from "./backoff";
import { onShutdown } from "./shutdown";
import { WorkQueue } from "./workqueue";

/** The finalizer Pepr's Finalize binding adds on admission; the runtime removes it when done. */
export const PEPR_FINALIZER = "pepr.dev/finalizer";

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    deletionTimestamp?: string | Date;
    finalizers?: string[];
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
  };
  status?: object;
}

/** What one run asks the runtime to write and when to run again. */
export interface RunResult {
  /** Merge patch of the status subresource (null removes a field); skipped if it changes nothing. */
  status?: Record<string, unknown>;
  /**
   * Annotations to set (a string) or remove (null) after the status is written: one-shot requests
   * acted on, bookkeeping such as the saved status of a paused host. One merge patch.
   */
  annotations?: Record<string, string | null>;
  /** Recorded after the status is written, so an event never reports what the API server refused. */
  events?: EventInput[];
  /** Run again after this long; undefined waits for the next change. */
  requeueAfterMs?: number;
}

export interface FinalizeResult extends RunResult {
  /** Cleanup is complete: the runtime removes the finalizer after writing the rest. */
  done?: boolean;
}

export interface RunContext {
  /** Fires when the run should stop before its next action (deletion began, shutdown). */
  signal: AbortSignal;
  now: Date;
}

export interface ControllerDefinition<T extends KubeObject> {
  /** Short name for logs and metric labels, e.g. "physicalhost". */
  name: string;
  /** Where objects of the kind live in the API. */
  resource: { group: string; version: string; plural: string };
  reconcile(obj: T, ctx: RunContext): Promise<RunResult>;
  finalize(obj: T, ctx: RunContext): Promise<FinalizeResult>;
  /** Objects of one group share `limits.perGroup` slots (e.g. hosts behind one BMC). */
  groupOf?(obj: T): string | undefined;
  /**
   * What of an object needs a run when it changes (see WorkQueue). The runtime adds deletion to
   * it, so the start of a deletion is never absorbed.
   */
  fingerprint?(obj: T): string;
  limits: {
    concurrency: number;
    perGroup?: number;
    backoff: BackoffSettings;
    /** Fraction by which requeue delays are shortened at random (0 to 1). */
    requeueJitter?: number;
  };
  /** Objects by state, as a gauge: the state of an object and the metric names. */
  states?: { of(obj: T): string | undefined; gauge: string; transitions?: string };
  /** Runs on shutdown after the queue has stopped (e.g. closing BMC sessions). */
  onShutdown?(): Promise<void>;
}

export { describeError } from "../error-message";

export interface Services {
  kube: KubeClient;
  record: EventRecorder;
}

let services: Services | undefined;

/** One API client and event recorder for every controller of the process (created on first use). */
export function sharedServices(): Services {
  if (!services) {
    const kube = new KubeClient();
    const log = Log.child({ component: "events" });
    // Events have connections of their own: a burst of them never delays the work they report.
    const eventsKube = new KubeClient(undefined, undefined, { maxSockets: 4 });
    const record = apiServerEventRecorder(eventsKube, (msg, err) =>
      log.warn({ err: describeError(err) }, msg),
    );
    services = { kube, record };
    onShutdown(
      "api client",
      () => Promise.all([kube.close(), eventsKube.close()]).then(() => {}),
      2,
    );
  }
  return services;
}

interface Started<T extends KubeObject> {
  queue: WorkQueue<T>;
  kube: KubeClient;
  record: EventRecorder;
  log: typeof Log;
}

export class Controller<T extends KubeObject> {
  readonly #def: ControllerDefinition<T>;
  readonly #services: () => Services;
  #started?: Started<T>;
  /** The state of each object as last seen, for the by-state gauge. */
  readonly #states = new Map<string, string>();
  readonly #counts = new Map<string, number>();
  /** Per object, the chain of its events being recorded (#report). */
  readonly #reporting = new Map<string, Promise<void>>();

  constructor(def: ControllerDefinition<T>, services: () => Services = sharedServices) {
    this.#def = def;
    this.#services = services;
  }

  /**
   * A watch event (Pepr's Reconcile binding): the object is reconciled or, if deleting, finalized.
   * `first`: ahead of the objects already waiting (someone waits on this run).
   */
  enqueue(obj: T, first = false): void {
    const { queue } = this.#start(); // first: it registers the metrics #observe sets
    this.#observe(obj);
    queue.add(obj, first);
  }

  /**
   * Pepr's Finalize binding. Always false: the runtime removes the finalizer itself when finalize
   * is done, and a callback that threw would make Pepr remove it at once.
   */
  finalizing(obj: T): false {
    try {
      this.enqueue(obj);
    } catch (err) {
      this.#start().log.error({ err: describeError(err) }, "could not queue a deletion");
    }
    return false;
  }

  /** The object is gone from the API server. */
  deleted(obj: T): void {
    const { queue } = this.#start();
    this.#setState(keyOf(obj), undefined);
    queue.forget(obj.metadata?.namespace, obj.metadata?.name ?? "");
  }

  /** Runs the object again after a delay (e.g. a related object changed). */
  requeue(namespace: string | undefined, name: string, delayMs = 0): void {
    this.#start().queue.addAfter(namespace, name, delayMs);
  }

  /** The newest copy of the object the controller holds (from events, reads, its own writes). */
  held(namespace: string | undefined, name: string): T | undefined {
    return this.#start().queue.held(namespace, name);
  }

  /** How many objects are in each state, from the objects as last seen (the by-state gauge). */
  objectsByState(): Record<string, number> {
    return Object.fromEntries([...this.#counts].filter(([, n]) => n > 0));
  }

  /** Resolves when nothing is ready or running and every event is recorded. For tests. */
  async idle(): Promise<void> {
    await this.#start().queue.idle();
    await this.#reported();
  }

  /** Stops the queue, waits up to timeoutMs for running work, then the controller's own hooks. */
  async shutdown(timeoutMs: number): Promise<void> {
    if (!this.#started) return;
    const started = Date.now();
    await this.#started.queue.shutdown(timeoutMs);
    // Events of the last runs, within what is left of the time allowed.
    await Promise.race([
      this.#reported(),
      new Promise(resolve =>
        setTimeout(resolve, Math.max(0, timeoutMs - (Date.now() - started))).unref(),
      ),
    ]);
    await this.#def.onShutdown?.();
  }

  #start(): Started<T> {
    if (this.#started) return this.#started;
    registerMetrics();
    const def = this.#def;
    const { kube, record } = this.#services();
    const log = Log.child({ controller: def.name });
    const queue = new WorkQueue<T>({
      name: def.name,
      concurrency: def.limits.concurrency,
      groupConcurrency: def.limits.perGroup,
      groupOf: def.groupOf ? obj => def.groupOf!(obj) : undefined,
      backoffBaseMs: def.limits.backoff.baseMs,
      backoffMaxMs: def.limits.backoff.maxMs,
      requeueJitter: def.limits.requeueJitter,
      fetch: async (namespace, name) => {
        const obj = await orUndefinedIfGone(kube.get<T>(this.#path(namespace, name)));
        if (obj) this.#observe(obj);
        return obj;
      },
      reconcile: (obj, signal) => this.#run(obj, signal),
      fingerprint: def.fingerprint
        ? obj => `${deleting(obj) ? "deleting " : ""}${def.fingerprint!(obj)}`
        : undefined,
      interrupts: (running, incoming) => !deleting(running) && deleting(incoming),
      onError: (obj, err, failures, retryInMs) =>
        log.warn(
          { ...ref(obj), failures, retryInMs, err: describeError(err) },
          deleting(obj) ? "finalize failed" : "reconcile failed",
        ),
      onRun: (obj, ms, ok) => {
        add(Metrics.reconciles, { controller: def.name, result: ok ? "success" : "error" });
        add(Metrics.reconcileMs, { controller: def.name }, ms);
        log.debug({ ...ref(obj), ms, ok }, "ran");
      },
    });
    setInterval(() => {
      const stats = queue.stats();
      for (const k of ["ready", "active", "delayed"] as const) {
        set(Metrics.queueDepth, { controller: def.name, kind: k }, stats[k]);
      }
    }, 5000).unref();
    onShutdown(def.name, timeoutMs => this.shutdown(timeoutMs), 0);
    this.#started = { queue, kube, record, log };
    return this.#started;
  }

  async #run(obj: T, signal: AbortSignal): Promise<{ requeueAfterMs?: number }> {
    const def = this.#def;
    const ctx: RunContext = { signal, now: new Date() };
    const finalizing = deleting(obj);
    if (finalizing && !obj.metadata?.finalizers?.includes(PEPR_FINALIZER)) return {};
    let result: FinalizeResult;
    try {
      result = finalizing ? await def.finalize(obj, ctx) : await def.reconcile(obj, ctx);
    } catch (err) {
      // Interrupted: the event that interrupted the run has queued the next one already.
      if (signal.aborted) return {};
      throw err;
    }
    await this.#apply(obj, result, finalizing);
    return result.requeueAfterMs === undefined ? {} : { requeueAfterMs: result.requeueAfterMs };
  }

  /**
   * Writes a result: status (one patch), annotations (one patch), and last the finalizer; its
   * events are recorded after the writes, beside the object's next run.
   */
  async #apply(obj: T, result: FinalizeResult, finalizing: boolean): Promise<void> {
    const { kube } = this.#start();
    const path = this.#path(obj.metadata?.namespace, obj.metadata?.name ?? "");
    let latest: T = obj;
    // Each write goes to the queue: a watch event older than it is stale, and a run that follows
    // at once uses the object as written instead of reading it again.
    const written = (o: T) =>
      this.#start().queue.written(
        o.metadata?.namespace,
        o.metadata?.name ?? "",
        o.metadata?.resourceVersion,
        o,
      );
    if (result.status && changes((obj.status ?? {}) as Record<string, unknown>, result.status)) {
      latest = await kube.mergePatch<T>(`${path}/status`, { status: result.status });
      this.#observe(latest);
      written(latest);
    }
    if (result.annotations && Object.keys(result.annotations).length) {
      const patched = await kube.mergePatch<T | undefined>(path, {
        metadata: { annotations: result.annotations },
      });
      if (patched) {
        latest = patched;
        written(patched);
      }
    }
    this.#report(obj, result.events ?? []);
    if (finalizing && result.done) await this.#removeFinalizer(path, latest);
  }

  /**
   * Records a run's events after its writes, in order after the object's earlier events, without
   * holding the run's slot: four events after a claim kept the host from its next run (and other
   * hosts from the slot) for four API round trips. A failure to record is logged, never thrown.
   */
  #report(obj: T, events: EventInput[]): void {
    if (!events.length) return;
    const { record } = this.#start();
    const key = keyOf(obj);
    const after = (this.#reporting.get(key) ?? Promise.resolve()).then(async () => {
      for (const event of events) await record(obj, event);
    });
    this.#reporting.set(key, after);
    void after.finally(() => {
      if (this.#reporting.get(key) === after) this.#reporting.delete(key);
    });
  }

  /** Resolves when the events recorded so far are written. */
  async #reported(): Promise<void> {
    while (this.#reporting.size) await Promise.allSettled([...this.#reporting.values()]);
  }

  /**
   * Removes Pepr's finalizer with a JSON patch that first tests it is still at the index seen, so
   * a concurrent change to the list is never overwritten; on a conflict the object is re-read.
   */
  async #removeFinalizer(path: string, seen: T): Promise<void> {
    const { kube } = this.#start();
    let current: T | undefined = seen;
    for (let attempt = 0; current && attempt < 3; attempt++) {
      const index = current.metadata?.finalizers?.indexOf(PEPR_FINALIZER) ?? -1;
      if (index < 0) return;
      try {
        await kube.jsonPatch(path, [
          { op: "test", path: `/metadata/finalizers/${index}`, value: PEPR_FINALIZER },
          { op: "remove", path: `/metadata/finalizers/${index}` },
        ] as never);
        return;
      } catch (err) {
        const status = (err as { status?: number }).status;
        if (status === 404) return;
        if (status !== 422 && status !== 409) throw err;
        current = await orUndefinedIfGone(kube.get<T>(path));
      }
    }
    if (current) throw new Error("the finalizer list kept changing; retrying");
  }

  #path(namespace: string | undefined, name: string): string {
    const { group, version, plural } = this.#def.resource;
    return paths.object(group, version, plural, namespace ?? "default", name);
  }

  #observe(obj: T): void {
    if (this.#def.states) this.#setState(keyOf(obj), this.#def.states.of(obj));
  }

  #setState(key: string, state: string | undefined): void {
    const states = this.#def.states;
    if (!states) return;
    const before = this.#states.get(key);
    if (before === state) return;
    if (state === undefined) this.#states.delete(key);
    else this.#states.set(key, state);
    for (const [label, delta] of [
      [before, -1],
      [state, 1],
    ] as const) {
      if (label === undefined) continue;
      const n = (this.#counts.get(label) ?? 0) + delta;
      this.#counts.set(label, n);
      set(states.gauge, { state: label }, n);
    }
    if (before !== undefined && state !== undefined && states.transitions) {
      add(states.transitions, { from: before, to: state });
    }
  }
}

function deleting(obj: KubeObject): boolean {
  return !!obj.metadata?.deletionTimestamp;
}

function keyOf(obj: KubeObject): string {
  return `${obj.metadata?.namespace ?? ""}/${obj.metadata?.name ?? ""}`;
}

function ref(obj: KubeObject): { name?: string; namespace?: string } {
  return { name: obj.metadata?.name, namespace: obj.metadata?.namespace };
}

/** A read that answers undefined for an object that does not exist. */
export async function orUndefinedIfGone<T>(read: Promise<T>): Promise<T | undefined> {
  try {
    return await read;
  } catch (err) {
    if ((err as { status?: number }).status === 404) return undefined;
    throw err;
  }
}

/** Whether a merge patch would change anything (null means "remove"). */
export function changes(before: Record<string, unknown>, patch: Record<string, unknown>): boolean {
  for (const [key, value] of Object.entries(patch)) {
    const old = before[key];
    if (value === null ? old !== undefined : canonical(old) !== canonical(value)) return true;
  }
  return false;
}

/** JSON with sorted keys and no undefined fields: the API server returns objects with sorted
 *  keys, so insertion order must not count as a change. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b)),
        )
      : v,
  );
}
