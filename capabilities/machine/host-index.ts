// What the machine controller keeps of the PhysicalHosts it watches: a slim copy of each (the
// fields claiming and mirroring read, about a kilobyte), by namespace, so choosing a host needs no
// LIST of every host per machine; and which machines wait for a host, so a host that becomes
// claimable wakes exactly those. A stale copy costs at most a lost claim race: claims are
// conditioned on the host's resourceVersion.
import { freeToClaim, type PhysicalHost } from "../api";

export class HostIndex {
  readonly #byNamespace = new Map<string, Map<string, PhysicalHost>>();

  /** Records the host's newest copy; answers whether it is claimable now. */
  put(host: PhysicalHost): boolean {
    const namespace = host.metadata?.namespace ?? "";
    let hosts = this.#byNamespace.get(namespace);
    if (!hosts) this.#byNamespace.set(namespace, (hosts = new Map()));
    hosts.set(host.metadata?.name ?? "", slim(host));
    return freeToClaim(host);
  }

  remove(host: PhysicalHost): void {
    this.#byNamespace.get(host.metadata?.namespace ?? "")?.delete(host.metadata?.name ?? "");
  }

  list(namespace: string): PhysicalHost[] {
    return [...(this.#byNamespace.get(namespace)?.values() ?? [])];
  }

  get size(): number {
    let n = 0;
    for (const hosts of this.#byNamespace.values()) n += hosts.size;
    return n;
  }
}

/** The fields the machine controller reads; the rest (managedFields, inventory details) is dropped. */
function slim(host: PhysicalHost): PhysicalHost {
  const m = host.metadata ?? {};
  const hw = host.status?.hardwareDetails;
  return {
    apiVersion: host.apiVersion,
    kind: host.kind,
    metadata: {
      name: m.name,
      namespace: m.namespace,
      uid: m.uid,
      resourceVersion: m.resourceVersion,
      labels: m.labels,
      annotations: m.annotations,
      deletionTimestamp: m.deletionTimestamp,
    },
    spec: {
      redfishConnection: undefined as never,
      consumerRef: host.spec?.consumerRef,
      provisioning: host.spec?.provisioning,
    },
    status: {
      state: host.status?.state,
      hardwareDetails: hw
        ? {
            systemUUID: hw.systemUUID,
            cpu: { cores: hw.cpu?.cores },
            memoryGiB: hw.memoryGiB,
            disks: hw.disks?.map(d => ({ name: d.name, sizeBytes: d.sizeBytes })),
            bootCapabilities: hw.bootCapabilities,
          }
        : undefined,
    },
  } as PhysicalHost;
}
