// The HostDirectory over Kubernetes: PhysicalHosts watched with one informer and indexed by their
// system UUID (lowercase), bootstrap data read from the Secret a host's provisioning names, and
// signals written to status.boot through the status subresource.
//
// The index keeps a small view per host, not the objects themselves beyond the informer's cache.
// Two hosts reporting the same UUID are both refused (and counted): serving either could hand
// one machine's bootstrap data to another.
//
// Signals are JSON patches that first test status.boot.session: a fetch or report that arrives
// as the host is released (session removed) or re-provisioned (new session) changes nothing.
import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  makeInformer,
  setHeaderOptions,
  type KubeConfig,
  type KubernetesObject,
} from "@kubernetes/client-node";

import { API_GROUP, API_VERSION, Plurals } from "../capabilities/api/constants";
import { canonicalUUID } from "../boot/session";
import {
  BootDataUnavailable,
  type BootSignal,
  type Delivery,
  type HostDirectory,
  type HostLookup,
  type HostView,
} from "../boot/server";

const PLURAL = Plurals.PhysicalHost;

/** The fields of a PhysicalHost this service reads. */
interface PhysicalHostObject extends KubernetesObject {
  spec?: {
    provisioning?: {
      osFamily?: string;
      bootISO?: string;
      configURL?: string;
      bootstrapDataSecretRef?: string;
      targetImageURL?: string;
      extraKernelArgs?: string[];
    };
  };
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
  readonly #core: CoreV1Api;
  readonly #custom: CustomObjectsApi;
  readonly #informer;
  #stopped = false;
  #synced = false;

  constructor(
    kubeconfig: KubeConfig,
    private readonly log: (entry: Record<string, unknown>) => void,
  ) {
    this.#core = kubeconfig.makeApiClient(CoreV1Api);
    this.#custom = kubeconfig.makeApiClient(CustomObjectsApi);
    this.#informer = makeInformer<PhysicalHostObject>(
      kubeconfig,
      `/apis/${API_GROUP}/${API_VERSION}/${PLURAL}`,
      () =>
        this.#custom.listClusterCustomObject({
          group: API_GROUP,
          version: API_VERSION,
          plural: PLURAL,
        }),
    );
    this.#informer.on("add", host => this.#put(host));
    this.#informer.on("update", host => this.#put(host));
    this.#informer.on("delete", host => this.#remove(keyOf(host)));
    this.#informer.on("error", err => {
      if (this.#stopped) return;
      this.log({
        msg: "PhysicalHost watch failed; restarting in 3 s",
        error: String((err as Error)?.message ?? err),
      });
      setTimeout(() => void this.#start().catch(() => undefined), 3000).unref();
    });
  }

  /** Resolves once the first list is indexed. */
  async start(): Promise<void> {
    await this.#start();
    this.#synced = true;
  }

  get synced(): boolean {
    return this.#synced;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#informer.stop();
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

  async bootstrapData(host: HostView): Promise<Buffer> {
    const name = host.provisioning?.bootstrapDataSecretRef;
    if (!name)
      throw new BootDataUnavailable(
        `host ${host.key} has no bootstrap data (no spec.provisioning.bootstrapDataSecretRef)`,
      );
    const namespace = host.key.split("/")[0]!;
    try {
      const secret = await this.#core.readNamespacedSecret({ name, namespace });
      const value = secret.data?.value;
      if (value === undefined)
        throw new BootDataUnavailable(`Secret ${namespace}/${name} has no key "value"`);
      return Buffer.from(value, "base64");
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) {
        throw new BootDataUnavailable(`bootstrap data Secret ${namespace}/${name} does not exist`);
      }
      throw err;
    }
  }

  async recordSignal(host: HostView, signal: BootSignal): Promise<void> {
    const [namespace, name] = host.key.split("/") as [string, string];
    const body = [
      { op: "test", path: "/status/boot/session", value: host.boot?.session },
      ...Object.entries(signal).map(([field, value]) => ({
        op: "add",
        path: `/status/boot/${field}`,
        value,
      })),
    ];
    await this.#custom.patchNamespacedCustomObjectStatus(
      { group: API_GROUP, version: API_VERSION, plural: PLURAL, namespace, name, body },
      setHeaderOptions("Content-Type", PatchStrategy.JsonPatch),
    );
  }

  async #start(): Promise<void> {
    if (this.#stopped) return;
    await this.#informer.start();
  }

  #put(host: PhysicalHostObject): void {
    const key = keyOf(host);
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
    let keys = this.#byUUID.get(systemUUID);
    if (!keys) this.#byUUID.set(systemUUID, (keys = new Set()));
    keys.add(key);
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
    const keys = this.#byUUID.get(old.systemUUID);
    keys?.delete(key);
    if (keys?.size === 0) this.#byUUID.delete(old.systemUUID);
  }
}

function keyOf(host: KubernetesObject): string {
  return `${host.metadata?.namespace ?? ""}/${host.metadata?.name ?? ""}`;
}
