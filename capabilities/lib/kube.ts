// A small Kubernetes API client for the operator's frequent calls (status patches, reads of the
// object and its Secrets, events). kubernetes-fluent-client 3.11 loads the kubeconfig and opens
// a new connection pool on every call, which at a thousand hosts means a thousand idle TLS
// connections and a kubeconfig parse per request (docs/benchmarks/physicalhost.md). This client
// loads the configuration once, re-reads its credentials once a minute (rotated tokens), and
// keeps one pool of keep-alive connections. Pepr's watches still go through the fluent client.
import { KubeConfig } from "@kubernetes/client-node";
import { createHash } from "node:crypto";
import { Agent, request, type RequestOptions } from "node:https";
import { createSecureContext } from "node:tls";

/** Rejections look like the fluent client's, so callers handle both alike. */
export interface KubeError {
  status: number;
  statusText: string;
  data: unknown;
}

export type JsonPatch = Array<{ op: "add" | "remove" | "replace"; path: string; value?: unknown }>;

/** Connections to the API server by default: as many as reconciles may run at once
 *  (BESKAR7_MAX_CONCURRENT_RECONCILES' default), so a full set of runs never waits for one. */
export const DEFAULT_MAX_SOCKETS = 64;

/** How long credentials from the kubeconfig are reused before it is consulted again: a rotated
 *  service-account token (kubelet refreshes the file well before expiry) is picked up within. */
const AUTH_REFRESH_MS = 60_000;

interface Connection {
  agent: Agent;
  headers: Record<string, string>;
  rejectUnauthorized: boolean;
  servername?: string;
  /** The TLS material the agent's context was built from, to notice a change. */
  tlsKey: string;
}

export class KubeClient {
  readonly #kc: KubeConfig;
  readonly #server: URL;
  readonly #now: () => number;
  readonly #maxSockets: number;
  #connection?: Promise<Connection>;
  #loadedAt = 0;

  /** `maxSockets`: connections kept to the API server, each carrying one request at a time. */
  constructor(
    kc: KubeConfig = loadDefault(),
    now: () => number = Date.now,
    { maxSockets = DEFAULT_MAX_SOCKETS }: { maxSockets?: number } = {},
  ) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error("the kubeconfig has no current cluster");
    this.#kc = kc;
    this.#server = new URL(cluster.server);
    this.#now = now;
    this.#maxSockets = maxSockets;
  }

  get<T>(path: string, accept = "application/json"): Promise<T> {
    return this.#send<T>("GET", path, undefined, undefined, accept);
  }

  /**
   * A watch: GETs `path` and hands each line of the streamed answer to `onLine` until the server
   * ends the response (resolves) or it fails (rejects). `signal` ends it early. The socket is
   * dropped after `idleMs` without data (watches with bookmarks hear from the server each minute).
   */
  async stream(
    path: string,
    accept: string,
    onLine: (line: string) => void,
    signal: AbortSignal,
    idleMs = 180_000,
  ): Promise<void> {
    const connection = await this.#connect();
    return new Promise<void>((resolve, reject) => {
      const req = request(
        {
          ...this.#requestOptions(connection, "GET", path, accept),
          timeout: idleMs,
          signal,
        },
        res => {
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) {
            res.resume();
            reject({ status, statusText: res.statusMessage ?? "", data: "" } satisfies KubeError);
            return;
          }
          let pending = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => {
            pending += chunk;
            let newline: number;
            while ((newline = pending.indexOf("\n")) >= 0) {
              const line = pending.slice(0, newline).trim();
              pending = pending.slice(newline + 1);
              if (line) onLine(line);
            }
          });
          res.on("end", () => resolve());
          res.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new Error(`GET ${path}: no data for ${idleMs} ms`)));
      req.on("error", reject);
      req.end();
    });
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

  /** Closes idle connections (the operator is stopping). */
  async close(): Promise<void> {
    const connection = await this.#connection?.catch(() => undefined);
    connection?.agent.destroy();
    this.#connection = undefined;
  }

  /**
   * Credentials and TLS settings from the kubeconfig, reused for AUTH_REFRESH_MS. Reading them
   * per request decoded the CA, certificate and key every time and made Node build a pool key
   * from the whole PEM text; the TLS context is now built once and only rebuilt if they change.
   */
  #connect(): Promise<Connection> {
    if (!this.#connection || this.#now() - this.#loadedAt >= AUTH_REFRESH_MS) {
      this.#loadedAt = this.#now();
      const previous = this.#connection;
      this.#connection = this.#load(previous).catch(error => {
        this.#connection = undefined;
        throw error;
      });
    }
    return this.#connection;
  }

  async #load(previous: Promise<Connection> | undefined): Promise<Connection> {
    const options: RequestOptions = {};
    await this.#kc.applyToHTTPSOptions(options);
    const tls = { ca: options.ca, cert: options.cert, key: options.key };
    const tlsKey = createHash("sha256").update(JSON.stringify(tls)).digest("hex");
    const before = await previous?.catch(() => undefined);
    // Changed TLS material gets a new pool; the old one's idle sockets are left to time out, so
    // requests in flight on them finish.
    const agent =
      before && before.tlsKey === tlsKey
        ? before.agent
        : new Agent({
            keepAlive: true,
            maxSockets: this.#maxSockets,
            secureContext: createSecureContext(tls),
          });
    return {
      agent,
      headers: { ...(options.headers as Record<string, string> | undefined) },
      rejectUnauthorized: options.rejectUnauthorized !== false,
      servername: options.servername,
      tlsKey,
    };
  }

  #requestOptions(
    connection: Connection,
    method: string,
    path: string,
    accept: string,
  ): RequestOptions & { headers: Record<string, string | number> } {
    return {
      agent: connection.agent,
      rejectUnauthorized: connection.rejectUnauthorized,
      servername: connection.servername,
      method,
      protocol: this.#server.protocol,
      hostname: this.#server.hostname.replace(/^\[|\]$/g, ""),
      port: this.#server.port || 443,
      path: `${this.#server.pathname.replace(/\/$/, "")}${path}`,
      headers: { ...connection.headers, Accept: accept },
    };
  }

  async #send<T>(
    method: string,
    path: string,
    body?: unknown,
    contentType?: string,
    accept = "application/json",
  ): Promise<T> {
    const connection = await this.#connect();
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise<T>((resolve, reject) => {
      const options = this.#requestOptions(connection, method, path, accept);
      const req = request(
        {
          ...options,
          headers: {
            ...options.headers,
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
