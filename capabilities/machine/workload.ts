// The workload cluster's Nodes, reached through the <cluster>-kubeconfig Secret Cluster API
// writes. Where the kubelet left Node.spec.providerID empty, the machine controller sets it on
// the Node whose SMBIOS system UUID (status.nodeInfo.systemUUID) is the host's Redfish UUID, so
// users need no kubelet flag. One client per cluster, rebuilt when the Secret changes; the
// kubeconfig's contents never leave this file (no log, event or condition carries them).
import { KubeConfig } from "@kubernetes/client-node";

import { KubeClient, paths } from "../lib/kube";

interface Secret {
  metadata?: { resourceVersion?: string };
  data?: Record<string, string>;
}

interface Node {
  metadata?: { name?: string };
  spec?: { providerID?: string };
  status?: { nodeInfo?: { systemUUID?: string } };
}

export type NodeLink = "set" | "present" | "no-node" | "no-kubeconfig";

export class WorkloadClusters {
  readonly #management: KubeClient;
  readonly #clients = new Map<string, { version: string; client: KubeClient }>();

  constructor(management: KubeClient) {
    this.#management = management;
  }

  async linkNode(
    namespace: string,
    clusterName: string,
    systemUUID: string,
    providerID: string,
  ): Promise<NodeLink> {
    const client = await this.#client(namespace, clusterName);
    if (!client) return "no-kubeconfig";
    const nodes = await client.get<{ items?: Node[] }>("/api/v1/nodes");
    const wanted = systemUUID.toLowerCase();
    const node = nodes.items?.find(n => n.status?.nodeInfo?.systemUUID?.toLowerCase() === wanted);
    if (!node?.metadata?.name) return "no-node";
    if (node.spec?.providerID) return "present";
    await client.mergePatch(`/api/v1/nodes/${encodeURIComponent(node.metadata.name)}`, {
      spec: { providerID },
    });
    return "set";
  }

  async #client(namespace: string, clusterName: string): Promise<KubeClient | undefined> {
    const name = `${clusterName}-kubeconfig`;
    let secret: Secret;
    try {
      secret = await this.#management.get<Secret>(
        paths.object("", "v1", "secrets", namespace, name),
      );
    } catch (err) {
      if ((err as { status?: number }).status === 404) return undefined;
      throw err;
    }
    const raw = secret.data?.value;
    if (!raw) return undefined;
    const key = `${namespace}/${clusterName}`;
    const version = secret.metadata?.resourceVersion ?? "";
    const cached = this.#clients.get(key);
    if (cached?.version === version) return cached.client;
    await cached?.client.close();
    const kc = new KubeConfig();
    kc.loadFromString(Buffer.from(raw, "base64").toString("utf8"));
    const client = new KubeClient(kc);
    this.#clients.set(key, { version, client });
    return client;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.#clients.values()].map(c => c.client.close()));
    this.#clients.clear();
  }
}
