// The HostDirectory over Kubernetes: PhysicalHosts listed and then watched (relisting when the
// watch's version is too old or the stream fails) and indexed by their system UUID (lowercase), bootstrap data read from the Secret a host's provisioning names, and
// signals written to status.boot through the status subresource.
//
// Bootstrap data is read through a brief cache (bootstrap-cache.ts) keyed by the host's session
// and the Secret: a BMC's many Range reads of a config volume are one GET, and a new session
// (a new claim, maybe with a re-created Secret) always reads afresh.
//
// The index keeps a small view per host, not the objects themselves.
// Two hosts reporting the same UUID are both refused (and counted): serving either could hand
// one machine's bootstrap data to another.
//
// A request refused for a session or state the index lacks waits for that one host to change
// (refresh): the host controller writes a session and at once reads what the service serves for
// it, and the watch brings the write later under load. Whichever comes first answers it: the
// watch's event that lets the request through (an older write it brings first does not), or a
// re-read of the host. Re-reads are bounded per host and in all (a few in flight, more waiting
// their turn, the rest answered at once), since anyone can send such requests, and one whose host
// the watch brought while it waited for its turn is not sent. A watch event older than the view
// indexed (a re-read ran ahead of the watch) is not indexed: it would put an older view back.
//
// Signals are JSON patches that first test status.boot.session: a fetch or report that arrives
// as the host is released (session removed) or re-provisioned (new session) changes nothing.
import { API_GROUP, API_VERSION, Plurals } from "../capabilities/api/constants";
import { olderVersion } from "../boot/resource-version";
import { Semaphore } from "../boot/semaphore";
import { canonicalUUID } from "../boot/session";
import {
  BootDataUnavailable,
  type BootSignal,
  type Delivery,
  type HostDirectory,
  type HostLookup,
  type HostView,
} from "../boot/server";
import { BootstrapCache } from "./bootstrap-cache";
import { KubeError, type KubeClient } from "./kube";

const PLURAL = Plurals.PhysicalHost;
const HOSTS_PATH = `/apis/${API_GROUP}/${API_VERSION}/${PLURAL}`;
const RETRY_MS = 2000;
/** A host is re-read at most this often for refused requests (the operator probes every 250 ms). */
const REFRESH_INTERVAL_MS = 200;
/** Re-reads in flight at once, over all hosts, and waiting for one of those slots. */
const REFRESH_MAX_IN_FLIGHT = 8;
const REFRESH_MAX_WAITING = 128;

/** The fields of a PhysicalHost this service reads. */
interface PhysicalHostObject {
  metadata?: { name?: string; namespace?: string; uid?: string; resourceVersion?: string };
  spec?: { provisioning?: HostView["provisioning"] };
  status?: {
    state?: string;
    hardwareDetails?: { systemUUID?: string };
    boot?: {
      session?: string;
      issuedTime?: string;
      delivery?: Delivery;
      configFetchedTime?: string;
      reportedTime?: string;
    };
  };
}

export class KubeHostDirectory implements HostDirectory {
  readonly #views = new Map<string, HostView>();
  readonly #byUUID = new Map<string, Set<string>>();
  /** metadata.resourceVersion of each indexed host, to tell whether a re-read changed it. */
  readonly #versions = new Map<string, string>();
  readonly #refreshes = new Map<string, { at: number; done: Promise<boolean> }>();
  /** Called when a host's indexed version moves (refreshes waiting on it), by host key. */
  readonly #changeWaiters = new Map<string, Set<() => void>>();
  readonly #refreshSlots = new Semaphore(REFRESH_MAX_IN_FLIGHT);
  readonly #stop = new AbortController();
  #synced = false;
  #running?: Promise<void>;

  constructor(
    private readonly kube: KubeClient,
    private readonly log: (entry: Record<string, unknown>) => void,
    private readonly bootstrapCache = new BootstrapCache(),
  ) {}

  /** Starts listing and watching; resolves once the first list is indexed. */
  start(): Promise<void> {
    return new Promise((resolveSynced, rejectSynced) => {
      let first = true;
      this.#running = this.#run(() => {
        if (first) resolveSynced();
        first = false;
      }).catch(rejectSynced);
    });
  }

  get synced(): boolean {
    return this.#synced;
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#running;
  }

  /** List, then watch from the list's version; on any failure, wait and list again. */
  async #run(onSynced: () => void): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      try {
        const list = await this.kube.request<{
          metadata: { resourceVersion: string };
          items: PhysicalHostObject[];
        }>("GET", HOSTS_PATH);
        this.#views.clear();
        this.#byUUID.clear();
        for (const host of list.items) this.#put(host);
        this.#synced = true;
        onSynced();
        let version = list.metadata.resourceVersion;
        while (!signal.aborted) {
          version = await this.kube.watch<PhysicalHostObject>(
            HOSTS_PATH,
            version,
            event => {
              if (event.type === "DELETED") {
                this.#remove(keyOf(event.object));
                this.#refreshes.delete(keyOf(event.object));
              } else this.#put(event.object);
            },
            signal,
          );
        }
      } catch (err) {
        if (signal.aborted) return;
        const gone = err instanceof KubeError && err.status === 410;
        if (!gone) {
          this.log({
            msg: "PhysicalHost list/watch failed; listing again",
            error: String((err as Error).message ?? err),
          });
        }
        await new Promise(r => setTimeout(r, gone ? 0 : RETRY_MS));
      }
    }
  }

  /** Hosts indexed, and UUIDs carried by more than one host (for the metrics). */
  counts(): { hosts: number; duplicateUUIDs: number } {
    let duplicateUUIDs = 0;
    for (const keys of this.#byUUID.values()) if (keys.size > 1) duplicateUUIDs++;
    return { hosts: this.#views.size, duplicateUUIDs };
  }

  lookup(uuid: string): HostLookup {
    const keys = this.#byUUID.get(uuid);
    if (!keys || keys.size === 0) return { missing: true };
    if (keys.size > 1) return { duplicate: keys.size };
    return { found: this.#views.get([...keys][0]!)! };
  }

  refresh(uuid: string, ready?: () => boolean): Promise<boolean> {
    const keys = this.#byUUID.get(uuid);
    if (!keys || keys.size !== 1) return Promise.resolve(false);
    const key = [...keys][0]!;
    const last = this.#refreshes.get(key);
    if (last && Date.now() - last.at < REFRESH_INTERVAL_MS) return last.done;
    const slots = this.#refreshSlots;
    if (slots.inFlight >= REFRESH_MAX_IN_FLIGHT && slots.waiting >= REFRESH_MAX_WAITING) {
      return Promise.resolve(false);
    }
    // Over the bound, a re-read waits for a slot rather than answering 404 at once: the operator
    // would only ask again a moment later, through a whole reconcile.
    const before = this.#versions.get(key);
    let stopWaiting = () => {};
    // The watch may first bring a write older than the one the request needs (the host's
    // status before the session): only a view that lets the request through ends the wait.
    const changed = new Promise<boolean>(resolve => {
      stopWaiting = this.#onChange(key, () => {
        if (!ready || ready()) resolve(true);
      });
    });
    const reread = slots.acquire().then(release => {
      // The watch brought what the request needs while this waited for its turn: no GET.
      if (this.#versions.get(key) !== before && (!ready || ready())) {
        release();
        return true;
      }
      return this.#reread(key).finally(release);
    });
    const done = Promise.race([changed, reread]).finally(stopWaiting);
    this.#refreshes.set(key, { at: Date.now(), done });
    return done;
  }

  /** Calls `wake` once the indexed version of `key` moves; returns how to stop waiting. */
  #onChange(key: string, wake: () => void): () => void {
    let waiters = this.#changeWaiters.get(key);
    if (!waiters) this.#changeWaiters.set(key, (waiters = new Set()));
    waiters.add(wake);
    return () => {
      waiters.delete(wake);
      if (!waiters.size && this.#changeWaiters.get(key) === waiters) {
        this.#changeWaiters.delete(key);
      }
    };
  }

  /** GETs one host and indexes it; whether its resourceVersion moved. Never throws. */
  async #reread(key: string): Promise<boolean> {
    try {
      const host = await this.kube.request<PhysicalHostObject>("GET", hostPath(key));
      if (host.metadata?.resourceVersion === this.#versions.get(key)) return false;
      this.#put(host);
      return true;
    } catch (err) {
      this.log({
        msg: "re-reading a PhysicalHost failed",
        host: key,
        error: String((err as Error).message ?? err),
      });
      return false;
    }
  }

  async bootstrapData(host: HostView): Promise<Buffer> {
    const name = host.provisioning?.bootstrapDataSecretRef;
    if (!name)
      throw new BootDataUnavailable(
        `host ${host.key} has no bootstrap data (no spec.provisioning.bootstrapDataSecretRef)`,
      );
    const namespace = host.key.split("/")[0]!;
    const read = () => this.#readBootstrapSecret(namespace, name);
    const session = host.boot?.session;
    // Without a session there is no burst to share (and no token opens such a host anyway).
    return session ? this.bootstrapCache.get(`${session} ${namespace}/${name}`, read) : read();
  }

  /** The Secret's key "value", read from the API server. */
  async #readBootstrapSecret(namespace: string, name: string): Promise<Buffer> {
    let secret: { data?: Record<string, string> };
    try {
      secret = await this.kube.request(
        "GET",
        `/api/v1/namespaces/${namespace}/secrets/${encodeURIComponent(name)}`,
      );
    } catch (err) {
      if (err instanceof KubeError && err.status === 404) {
        throw new BootDataUnavailable(`bootstrap data Secret ${namespace}/${name} does not exist`);
      }
      throw err;
    }
    const value = secret.data?.value;
    if (value === undefined) {
      throw new BootDataUnavailable(`Secret ${namespace}/${name} has no key "value"`);
    }
    return Buffer.from(value, "base64");
  }

  async recordSignal(host: HostView, signal: BootSignal): Promise<void> {
    const body = [
      { op: "test", path: "/status/boot/session", value: host.boot?.session },
      ...Object.entries(signal).map(([field, value]) => ({
        op: "add",
        path: `/status/boot/${field}`,
        value,
      })),
    ];
    await this.kube.request(
      "PATCH",
      `${hostPath(host.key)}/status`,
      body,
      "application/json-patch+json",
    );
  }

  #put(host: PhysicalHostObject): void {
    const key = keyOf(host);
    const previousVersion = this.#versions.get(key);
    // A watch event older than a re-read already indexed would put an older view back.
    if (olderVersion(host.metadata?.resourceVersion, previousVersion)) return;
    this.#remove(key);
    const rawUUID = host.status?.hardwareDetails?.systemUUID;
    if (!rawUUID || !host.metadata?.uid) return;
    const systemUUID = canonicalUUID(rawUUID);
    const boot = host.status?.boot;
    const view: HostView = {
      key,
      uid: host.metadata.uid,
      systemUUID,
      state: host.status?.state ?? "",
      ...(boot?.session && boot.issuedTime && boot.delivery
        ? {
            boot: {
              session: boot.session,
              issuedTime: boot.issuedTime,
              delivery: boot.delivery,
              ...(boot.configFetchedTime ? { configFetchedTime: boot.configFetchedTime } : {}),
              ...(boot.reportedTime ? { reportedTime: boot.reportedTime } : {}),
            },
          }
        : {}),
      ...(host.spec?.provisioning ? { provisioning: { ...host.spec.provisioning } } : {}),
    };
    this.#views.set(key, view);
    if (host.metadata.resourceVersion) this.#versions.set(key, host.metadata.resourceVersion);
    let keys = this.#byUUID.get(systemUUID);
    if (!keys) this.#byUUID.set(systemUUID, (keys = new Set()));
    keys.add(key);
    // Last, once the view is whole: a waiter may look the host up at once.
    if (host.metadata.resourceVersion !== previousVersion) {
      for (const wake of [...(this.#changeWaiters.get(key) ?? [])]) wake();
    }
    if (keys.size === 2)
      this.log({
        msg: "two hosts carry one system UUID; both are refused",
        uuid: systemUUID,
        hosts: [...keys],
      });
  }

  #remove(key: string): void {
    const old = this.#views.get(key);
    if (!old) return;
    this.#views.delete(key);
    this.#versions.delete(key);
    const keys = this.#byUUID.get(old.systemUUID);
    keys?.delete(key);
    if (keys?.size === 0) this.#byUUID.delete(old.systemUUID);
  }
}

/** The API path of the host a key (namespace/name) names. */
function hostPath(key: string): string {
  const [namespace, name] = key.split("/") as [string, string];
  return `/apis/${API_GROUP}/${API_VERSION}/namespaces/${namespace}/${PLURAL}/${encodeURIComponent(name)}`;
}

function keyOf(host: PhysicalHostObject): string {
  return `${host.metadata?.namespace ?? ""}/${host.metadata?.name ?? ""}`;
}
