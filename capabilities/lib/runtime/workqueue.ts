// The piece Pepr's Reconcile lacks: a work queue that requeues.
//
// Pepr hands every watch event to a Reconcile callback but never retries a failure, never
// requeues after a delay and replays every object after a relist. Controllers here therefore pass
// each event to a WorkQueue, which
//   - keeps at most one pending entry per object (a burst of events is one reconcile, with the
//     newest object), and never runs the same object twice at once;
//   - requeues after the delay a reconcile asks for (periodic re-checks, polling a BMC action);
//   - retries failures with capped exponential backoff and jitter;
//   - bounds work globally and per group (per BMC), delaying rather than rejecting excess work;
//   - re-reads an object from the API server before a delayed run, since the copy it holds may be
//     stale by then, and drops objects that are gone; objects being deleted run like any other
//     (the controller runtime decides between reconcile and finalize), so a delete waits for a
//     running reconcile of the same object and shares the same limits;
//   - interrupts a running reconcile when an event says so (deletion began): the run's AbortSignal
//     fires, and the run stops before its next action;
//   - never lets an event older than a copy it has seen (by resourceVersion: a late watch event,
//     or one from before the reconcile's own write) replace that copy or a pending re-read, which
//     would run the reconcile on a status that rolls back what it recorded;
//   - optionally absorbs events that change nothing the reconcile reads from the object (its
//     fingerprint), such as the echo of the reconcile's own status write, as controller-runtime's
//     generation predicates do.
// State that must survive a restart lives in the objects' status, not here: after a restart the
// relist replays every object and the handlers resume from status.
import { olderVersion } from "../../../boot/resource-version";
import { backoffDelay } from "./backoff";

export { olderVersion };

export interface ObjectRef {
  metadata?: {
    name?: string;
    namespace?: string;
    deletionTimestamp?: string | Date;
    uid?: string;
    resourceVersion?: string;
  };
}

/** What a reconcile asks for next; nothing means "done until the next event". */
export interface Outcome {
  requeueAfterMs?: number;
}

export interface WorkQueueOptions<T extends ObjectRef> {
  name: string;
  /** One run for the object; `signal` fires when the run should stop early (see interrupts). */
  reconcile: (obj: T, signal: AbortSignal) => Promise<Outcome | void>;
  /** The object as the API server has it now, or undefined when it is gone. */
  fetch: (namespace: string | undefined, name: string) => Promise<T | undefined>;
  concurrency: number;
  /** Objects in one group share groupConcurrency slots, e.g. hosts behind one BMC. */
  groupOf?: (obj: T) => string | undefined;
  groupConcurrency?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  onError?: (obj: T, err: unknown, failures: number, retryInMs: number) => void;
  onRun?: (obj: T, durationMs: number, ok: boolean) => void;
  random?: () => number;
  /**
   * Requeue delays a reconcile asks for are shortened by a random fraction up to this (0 to 1;
   * default 0), so objects created together do not stay in lockstep and periodic checks spread
   * out instead of arriving as one burst every interval.
   */
  requeueJitter?: number;
  /**
   * What of an object, when it changes, needs a reconcile (e.g. generation and annotations). An
   * event whose fingerprint equals that of the last successful run is absorbed: the newest copy
   * is kept and pending timers stay. Without it every event runs.
   */
  fingerprint?: (obj: T) => string;
  /** Whether an event for an object that is running should abort that run (e.g. deletion began). */
  interrupts?: (running: T, incoming: T) => boolean;
}

interface Entry<T> {
  key: string;
  namespace: string | undefined;
  name: string;
  obj?: T;
  /** The held copy may be stale: fetch before running. */
  refetch: boolean;
  /** The newest resourceVersion seen of the object (events, reads, the reconcile's writes). */
  newest?: string;
  timer?: NodeJS.Timeout;
  dueAt?: number;
  failures: number;
  /** Fingerprint of the object the current or last run reconciled; cleared when a run fails. */
  reconciled?: string;
  active: boolean;
  /** An event arrived while running: run again when done. */
  dirty: boolean;
  /** The running run's abort switch. */
  abort?: AbortController;
  queued: boolean;
}

export function objectKey(obj: ObjectRef): string {
  return `${obj.metadata?.namespace ?? ""}/${obj.metadata?.name ?? ""}`;
}

export class WorkQueue<T extends ObjectRef> {
  readonly #opts: Required<
    Pick<
      WorkQueueOptions<T>,
      "backoffBaseMs" | "backoffMaxMs" | "random" | "groupConcurrency" | "requeueJitter"
    >
  > &
    WorkQueueOptions<T>;
  readonly #entries = new Map<string, Entry<T>>();
  readonly #ready: string[] = [];
  readonly #groupActive = new Map<string, number>();
  #active = 0;
  #stopped = false;
  #idleWaiters: Array<() => void> = [];

  constructor(opts: WorkQueueOptions<T>) {
    // An option given as undefined keeps its default (a spread would overwrite it: an undefined
    // jitter made every requeue delay NaN, which setTimeout runs at once).
    const given = Object.fromEntries(
      Object.entries(opts).filter(([, value]) => value !== undefined),
    ) as WorkQueueOptions<T>;
    this.#opts = {
      backoffBaseMs: 1000,
      backoffMaxMs: 5 * 60_000,
      random: Math.random,
      groupConcurrency: Number.POSITIVE_INFINITY,
      requeueJitter: 0,
      ...given,
    };
  }

  /**
   * A watch event: hold the newest copy and run it as soon as capacity allows. `first` puts it at
   * the head of the ready list (work someone waits on, such as a claimed host's first action).
   */
  add(obj: T, first = false): void {
    if (this.#stopped) return;
    const entry = this.#entry(obj.metadata?.namespace, obj.metadata?.name ?? "");
    // Older than a copy already seen: it says nothing new, and the pending run (or re-read) stays.
    if (olderVersion(obj.metadata?.resourceVersion, entry.newest)) return;
    this.#saw(entry, obj.metadata?.resourceVersion);
    if (entry.active && entry.abort && entry.obj && this.#opts.interrupts?.(entry.obj, obj)) {
      entry.abort.abort(new Error("interrupted by a newer event"));
    }
    entry.obj = obj;
    entry.refetch = false;
    if (
      entry.reconciled !== undefined &&
      entry.failures === 0 &&
      !entry.dirty &&
      this.#opts.fingerprint?.(obj) === entry.reconciled
    ) {
      return;
    }
    this.#clearTimer(entry);
    if (entry.active) {
      entry.dirty = true;
      return;
    }
    this.#enqueue(entry, first);
  }

  /**
   * Run the object again after a delay; an earlier pending time wins. A delayed run re-reads the
   * object first (a periodic check also catches what a watch missed); one without delay runs on
   * the newest copy held, which the watch and the reconcile's own writes keep current.
   */
  addAfter(namespace: string | undefined, name: string, delayMs: number): void {
    if (this.#stopped) return;
    const entry = this.#entry(namespace, name);
    const dueAt = Date.now() + delayMs;
    if (entry.queued || (entry.timer && entry.dueAt !== undefined && entry.dueAt <= dueAt)) return;
    this.#clearTimer(entry);
    entry.dueAt = dueAt;
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      entry.dueAt = undefined;
      if (delayMs > 0) entry.refetch = true;
      if (entry.active) entry.dirty = true;
      else this.#enqueue(entry);
    }, delayMs);
    entry.timer.unref?.();
  }

  /**
   * A version of the object this process wrote (the reconcile's own status patch): events older
   * than it are stale from now on. Given the object as written (the write's response), the next
   * run uses it; otherwise the next run re-reads the object unless a newer event brings it.
   */
  written(
    namespace: string | undefined,
    name: string,
    resourceVersion: string | undefined,
    obj?: T,
  ): void {
    const entry = this.#entries.get(`${namespace ?? ""}/${name}`);
    if (!entry || !resourceVersion || olderVersion(resourceVersion, entry.newest)) return;
    this.#saw(entry, resourceVersion);
    if (obj && obj.metadata?.resourceVersion === resourceVersion) {
      entry.obj = obj;
      entry.refetch = false;
    } else if (olderVersion(entry.obj?.metadata?.resourceVersion, resourceVersion)) {
      entry.refetch = true;
    }
  }

  #saw(entry: Entry<T>, resourceVersion: string | undefined): void {
    if (resourceVersion && !olderVersion(resourceVersion, entry.newest))
      entry.newest = resourceVersion;
  }

  /** The object was deleted: drop its timers and state. */
  forget(namespace: string | undefined, name: string): void {
    const key = `${namespace ?? ""}/${name}`;
    const entry = this.#entries.get(key);
    if (!entry) return;
    this.#clearTimer(entry);
    if (!entry.active) this.#entries.delete(key);
    entry.dirty = false;
    entry.obj = undefined;
    entry.refetch = true;
    const i = this.#ready.indexOf(key);
    if (i >= 0) this.#ready.splice(i, 1);
    entry.queued = false;
  }

  /** The newest copy held of the object, or undefined (never seen, or gone). */
  held(namespace: string | undefined, name: string): T | undefined {
    return this.#entries.get(`${namespace ?? ""}/${name}`)?.obj;
  }

  stats(): { tracked: number; ready: number; active: number; delayed: number } {
    let delayed = 0;
    for (const e of this.#entries.values()) if (e.timer) delayed++;
    return {
      tracked: this.#entries.size,
      ready: this.#ready.length,
      active: this.#active,
      delayed,
    };
  }

  /** Resolves when nothing is ready or running (timers may still be pending). For tests. */
  idle(): Promise<void> {
    if (this.#active === 0 && this.#ready.length === 0) return Promise.resolve();
    return new Promise(resolve => this.#idleWaiters.push(resolve));
  }

  /**
   * Stops the queue: no new runs, timers cleared, running runs aborted. Resolves when they have
   * ended or after timeoutMs, whichever comes first.
   */
  async shutdown(timeoutMs = 0): Promise<void> {
    this.#stopped = true;
    for (const entry of this.#entries.values()) {
      this.#clearTimer(entry);
      entry.abort?.abort(new Error("the operator is stopping"));
    }
    this.#ready.length = 0;
    if (this.#active === 0 || timeoutMs <= 0) return;
    await new Promise<void>(resolve => {
      const timer = setTimeout(resolve, timeoutMs);
      timer.unref?.();
      this.#idleWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  #entry(namespace: string | undefined, name: string): Entry<T> {
    const key = `${namespace ?? ""}/${name}`;
    let entry = this.#entries.get(key);
    if (!entry) {
      entry = {
        key,
        namespace,
        name,
        refetch: true,
        failures: 0,
        active: false,
        dirty: false,
        queued: false,
      };
      this.#entries.set(key, entry);
    }
    return entry;
  }

  #clearTimer(entry: Entry<T>): void {
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = undefined;
    entry.dueAt = undefined;
  }

  #enqueue(entry: Entry<T>, first = false): void {
    if (this.#stopped) return;
    if (entry.queued) {
      if (!first) return;
      this.#ready.splice(this.#ready.indexOf(entry.key), 1);
    }
    entry.queued = true;
    if (first) this.#ready.unshift(entry.key);
    else this.#ready.push(entry.key);
    this.#pump();
  }

  #group(entry: Entry<T>): string | undefined {
    return entry.obj && this.#opts.groupOf ? this.#opts.groupOf(entry.obj) : undefined;
  }

  #pump(): void {
    for (let i = 0; i < this.#ready.length && this.#active < this.#opts.concurrency; ) {
      const key = this.#ready[i]!;
      const entry = this.#entries.get(key);
      if (!entry) {
        this.#ready.splice(i, 1);
        continue;
      }
      const group = this.#group(entry);
      if (
        group !== undefined &&
        (this.#groupActive.get(group) ?? 0) >= this.#opts.groupConcurrency
      ) {
        i++; // this BMC is busy: leave the entry in place, try the next one
        continue;
      }
      this.#ready.splice(i, 1);
      entry.queued = false;
      void this.#run(entry, group);
    }
    this.#notifyIdle();
  }

  async #run(entry: Entry<T>, group: string | undefined): Promise<void> {
    entry.active = true;
    this.#active++;
    if (group !== undefined) this.#groupActive.set(group, (this.#groupActive.get(group) ?? 0) + 1);
    let obj = entry.obj;
    const started = Date.now();
    let ok = true;
    try {
      if (entry.refetch || !obj) {
        obj = await this.#opts.fetch(entry.namespace, entry.name);
        entry.obj = obj;
        entry.refetch = false;
        this.#saw(entry, obj?.metadata?.resourceVersion);
      }
      if (!obj || this.#stopped) return; // gone, or the operator is stopping
      entry.reconciled = this.#opts.fingerprint?.(obj);
      entry.abort = new AbortController();
      const outcome = await this.#opts.reconcile(obj, entry.abort.signal);
      entry.failures = 0;
      if (outcome?.requeueAfterMs !== undefined) {
        const delay = Math.round(
          outcome.requeueAfterMs * (1 - this.#opts.requeueJitter * this.#opts.random()),
        );
        this.#afterRun(entry, () => this.addAfter(entry.namespace, entry.name, delay));
      }
    } catch (err) {
      ok = false;
      entry.reconciled = undefined;
      entry.failures++;
      const delay = this.backoff(entry.failures);
      if (obj) this.#opts.onError?.(obj, err, entry.failures, delay);
      this.#afterRun(entry, () => this.addAfter(entry.namespace, entry.name, delay));
    } finally {
      if (obj) this.#opts.onRun?.(obj, Date.now() - started, ok);
      entry.abort = undefined;
      entry.active = false;
      this.#active--;
      if (group !== undefined) {
        const n = (this.#groupActive.get(group) ?? 1) - 1;
        if (n <= 0) this.#groupActive.delete(group);
        else this.#groupActive.set(group, n);
      }
      if (entry.dirty) {
        entry.dirty = false;
        this.#enqueue(entry);
      } else if (!entry.timer && !entry.queued && entry.failures === 0 && !entry.obj) {
        this.#entries.delete(entry.key);
      }
      this.#pump();
    }
  }

  /** Schedules a requeue unless a newer event already queued the object. */
  #afterRun(entry: Entry<T>, schedule: () => void): void {
    if (entry.dirty) return;
    // addAfter ignores entries that are queued; an active entry is not queued, so this schedules.
    schedule();
  }

  /** The delay before retry number `failures`: the module's one backoff rule (backoff.ts). */
  backoff(failures: number): number {
    const { backoffBaseMs, backoffMaxMs, random } = this.#opts;
    return backoffDelay(failures, { baseMs: backoffBaseMs, maxMs: backoffMaxMs }, random);
  }

  #notifyIdle(): void {
    if (this.#active === 0 && this.#ready.length === 0 && this.#idleWaiters.length) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}
