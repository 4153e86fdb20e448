// A small Kubernetes API client for the operator's frequent calls (status patches, reads of the
// object and its Secrets, events). kubernetes-fluent-client 3.11 loads the kubeconfig and opens
// a new connection pool on every call, which at a thousand hosts means a thousand idle TLS
// connections and a kubeconfig parse per request (docs/benchmarks/physicalhost.md). This client
// loads the configuration once and keeps one pool of keep-alive connections. Pepr's watches
// still go through the fluent client.
import { KubeConfig } from "@kubernetes/client-node";
import { Agent, request, type RequestOptions } from "node:https";

/** Rejections look like the fluent client's, so callers handle both alike. */
export interface KubeError {
  status: number;
  statusText: string;
  data: unknown;
}

export type JsonPatch = Array<{ op: "add" | "remove" | "replace"; path: string; value?: unknown }>;

export class KubeClient {
  readonly #kc: KubeConfig;
  readonly #server: URL;
  readonly #agent: Agent;

  constructor(kc: KubeConfig = loadDefault()) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error("the kubeconfig has no current cluster");
    this.#kc = kc;
    this.#server = new URL(cluster.server);
    this.#agent = new Agent({ keepAlive: true, maxSockets: 16 });
  }

  get<T>(path: string): Promise<T> {
    return this.#send<T>("GET", path);
  }

  create<T>(path: string, body: unknown): Promise<T> {
    return this.#send<T>("POST", path, body, "application/json");
  }

  mergePatch<T>(path: string, body: unknown): Promise<T> {
    return this.#send<T>("PATCH", path, body, "application/merge-patch+json");
  }

  jsonPatch<T>(path: string, ops: JsonPatch): Promise<T> {
    return this.#send<T>("PATCH", path, ops, "application/json-patch+json");
  }

  async #send<T>(method: string, path: string, body?: unknown, contentType?: string): Promise<T> {
    // Applied per request: in a cluster the service-account token file is re-read as it rotates.
    const base: RequestOptions = {};
    await this.#kc.applyToHTTPSOptions(base);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise<T>((resolve, reject) => {
      const req = request(
        {
          ...base,
          agent: this.#agent,
          method,
          protocol: this.#server.protocol,
          hostname: this.#server.hostname.replace(/^\[|\]$/g, ""),
          port: this.#server.port || 443,
          path: `${this.#server.pathname.replace(/\/$/, "")}${path}`,
          headers: {
            ...(base.headers as Record<string, string> | undefined),
            Accept: "application/json",
            ...(payload === undefined
              ? {}
              : { "Content-Type": contentType!, "Content-Length": Buffer.byteLength(payload) }),
          },
          timeout: 30_000,
        },
        res => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            let data: unknown = text;
            try {
              data = text ? JSON.parse(text) : undefined;
            } catch {
              // not JSON: keep the text
            }
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) resolve(data as T);
            else reject({ status, statusText: res.statusMessage ?? "", data } satisfies KubeError);
          });
          res.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new Error(`${method} ${path}: timed out`)));
      req.on("error", reject);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }
}

function loadDefault(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  return kc;
}

/** Path helpers for namespaced objects. */
export const paths = {
  object: (group: string, version: string, plural: string, namespace: string, name: string) =>
    `${group ? `/apis/${group}/${version}` : `/api/${version}`}/namespaces/${encodeURIComponent(namespace)}/${plural}/${encodeURIComponent(name)}`,
  collection: (group: string, version: string, plural: string, namespace: string) =>
    `${group ? `/apis/${group}/${version}` : `/api/${version}`}/namespaces/${encodeURIComponent(namespace)}/${plural}`,
};

/** A JSON-pointer segment for a key such as a label or annotation name (RFC 6901). */
export const pointerSegment = (key: string) => key.replace(/~/g, "~0").replace(/\//g, "~1");
