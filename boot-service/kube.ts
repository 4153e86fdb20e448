// A small Kubernetes API client for the boot service: JSON requests and a watch stream over
// node:https, with the credentials of a kubeconfig (client certificate or token, CA) or of the
// Pod (service account token, re-read as the kubelet rotates it, and the cluster CA).
//
// Why not @kubernetes/client-node: importing it costs ~75 MiB of RSS (its generated API models load
// as one graph, even for KubeConfig alone; measured on Node 20), over half the service's 128 MiB
// budget for streaming a 1 GiB ISO to 20 BMCs. The service needs six verbs on three kinds, so
// this file does them. Exec credential plugins and auth providers are not supported; such a
// kubeconfig is refused with what to use instead.
import { existsSync, readFileSync } from "node:fs";
import { Agent, request, type RequestOptions } from "node:https";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { homedir } from "node:os";
import { dirname, resolve } from "node:path";
import { parse } from "yaml";

export class KubeError extends Error {
  override readonly name = "KubeError";
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

interface Access {
  server: URL;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  insecure?: boolean;
  token?: () => string | undefined;
}

export interface WatchEvent<T> {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: T;
}

const SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount";

export class KubeClient {
  readonly #access: Access;
  readonly #agent: Agent;

  constructor(access: Access) {
    this.#access = access;
    this.#agent = new Agent({
      keepAlive: true,
      maxSockets: 16,
      ca: access.ca,
      cert: access.cert,
      key: access.key,
      rejectUnauthorized: !access.insecure,
    });
  }

  /** KUBECONFIG (first file), else the Pod's service account, else ~/.kube/config. */
  static fromEnvironment(env: NodeJS.ProcessEnv = process.env): KubeClient {
    const kubeconfig = env.KUBECONFIG?.split(":").find(Boolean);
    if (kubeconfig) return new KubeClient(fromKubeconfig(kubeconfig));
    if (env.KUBERNETES_SERVICE_HOST && existsSync(`${SERVICE_ACCOUNT}/token`)) {
      return new KubeClient(inCluster(env));
    }
    const home = resolve(homedir(), ".kube", "config");
    if (existsSync(home)) return new KubeClient(fromKubeconfig(home));
    throw new Error(
      "no Kubernetes credentials: set KUBECONFIG, or run in a Pod with a service account",
    );
  }

  /** One JSON request; resolves with the parsed body, rejects with KubeError on non-2xx. */
  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    contentType = "application/json",
  ): Promise<T> {
    const response = await this.#send(method, path, body, contentType);
    const text = await readAll(response);
    const status = response.statusCode ?? 0;
    if (status < 200 || status >= 300) {
      let message = text.slice(0, 500);
      try {
        message = (JSON.parse(text) as { message?: string }).message ?? message;
      } catch {
        // not a Status object
      }
      throw new KubeError(`${method} ${path.split("?")[0]}: ${status} ${message}`, status);
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /**
   * Watches `path` from `resourceVersion`, calling `onEvent` per event, until the server ends the
   * watch (resolves with the last resourceVersion seen) or `signal` aborts. An ERROR event (410
   * Gone: the version is too old) rejects with KubeError.
   */
  async watch<T extends { metadata?: { resourceVersion?: string } }>(
    path: string,
    resourceVersion: string,
    onEvent: (event: WatchEvent<T>) => void,
    signal: AbortSignal,
  ): Promise<string> {
    const query = `watch=true&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion=${encodeURIComponent(resourceVersion)}`;
    const response = await this.#send("GET", `${path}?${query}`, undefined, undefined, signal);
    if ((response.statusCode ?? 0) !== 200) {
      const text = await readAll(response);
      throw new KubeError(
        `watch ${path}: ${response.statusCode} ${text.slice(0, 300)}`,
        response.statusCode ?? 0,
      );
    }
    let last = resourceVersion;
    let buffered = "";
    response.setEncoding("utf8");
    try {
      for await (const chunk of response as AsyncIterable<string>) {
        buffered += chunk;
        let newline: number;
        while ((newline = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (!line) continue;
          const event = JSON.parse(line) as WatchEvent<T>;
          if (event.type === "ERROR") {
            const status = event.object as unknown as { code?: number; message?: string };
            throw new KubeError(`watch ${path}: ${status.message ?? "error"}`, status.code ?? 500);
          }
          last = event.object.metadata?.resourceVersion ?? last;
          if (event.type !== "BOOKMARK") onEvent(event);
        }
      }
    } catch (err) {
      if (signal.aborted) return last;
      throw err;
    }
    return last;
  }

  close(): void {
    this.#agent.destroy();
  }

  #send(
    method: string,
    path: string,
    body: unknown,
    contentType?: string,
    signal?: AbortSignal,
  ): Promise<IncomingMessage> {
    const url = new URL(path, this.#access.server);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const token = this.#access.token?.();
    const options: RequestOptions = {
      method,
      agent: url.protocol === "https:" ? this.#agent : undefined,
      signal,
      headers: {
        Accept: "application/json",
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
        ...(payload
          ? { "Content-Type": contentType!, "Content-Length": String(payload.length) }
          : {}),
      },
    };
    return new Promise((ok, fail) => {
      const req = (url.protocol === "https:" ? request : httpRequest)(url, options, ok);
      req.on("error", fail);
      req.end(payload);
    });
  }
}

function readAll(response: IncomingMessage): Promise<string> {
  return new Promise((ok, fail) => {
    const parts: Buffer[] = [];
    response.on("data", (c: Buffer) => parts.push(c));
    response.on("end", () => ok(Buffer.concat(parts).toString("utf8")));
    response.on("error", fail);
  });
}

function inCluster(env: NodeJS.ProcessEnv): Access {
  const host = env.KUBERNETES_SERVICE_HOST!;
  const port = env.KUBERNETES_SERVICE_PORT ?? "443";
  const server = new URL(`https://${host.includes(":") ? `[${host}]` : host}:${port}`);
  let token = "";
  let readAt = 0;
  return {
    server,
    ca: readFileSync(`${SERVICE_ACCOUNT}/ca.crt`),
    // Bound service account tokens rotate; re-read the file once a minute.
    token: () => {
      if (Date.now() - readAt > 60_000) {
        token = readFileSync(`${SERVICE_ACCOUNT}/token`, "utf8").trim();
        readAt = Date.now();
      }
      return token;
    },
  };
}

interface KubeconfigFile {
  "current-context"?: string;
  contexts?: Array<{ name: string; context: { cluster: string; user: string } }>;
  clusters?: Array<{ name: string; cluster: Record<string, unknown> }>;
  users?: Array<{ name: string; user: Record<string, unknown> }>;
}

function fromKubeconfig(path: string): Access {
  const config = parse(readFileSync(path, "utf8")) as KubeconfigFile;
  const where = `kubeconfig ${path}`;
  const contextName = config["current-context"] ?? config.contexts?.[0]?.name;
  const context = config.contexts?.find(c => c.name === contextName)?.context;
  if (!context) throw new Error(`${where}: no current context`);
  const cluster = config.clusters?.find(c => c.name === context.cluster)?.cluster;
  const user = config.users?.find(u => u.name === context.user)?.user ?? {};
  if (!cluster?.server) throw new Error(`${where}: cluster ${context.cluster} has no server`);
  if (user.exec || user["auth-provider"]) {
    throw new Error(
      `${where}: exec and auth-provider credentials are not supported by the boot service; use a token or a client certificate`,
    );
  }
  const base = dirname(path);
  const bytes = (
    dataKey: string,
    fileKey: string,
    from: Record<string, unknown>,
  ): Buffer | undefined => {
    if (typeof from[dataKey] === "string") return Buffer.from(from[dataKey] as string, "base64");
    if (typeof from[fileKey] === "string")
      return readFileSync(resolve(base, from[fileKey] as string));
    return undefined;
  };
  const tokenFile = typeof user.tokenFile === "string" ? resolve(base, user.tokenFile) : undefined;
  return {
    server: new URL(String(cluster.server)),
    ca: bytes("certificate-authority-data", "certificate-authority", cluster),
    insecure: cluster["insecure-skip-tls-verify"] === true,
    cert: bytes("client-certificate-data", "client-certificate", user),
    key: bytes("client-key-data", "client-key", user),
    token:
      typeof user.token === "string"
        ? () => user.token as string
        : tokenFile
          ? () => readFileSync(tokenFile, "utf8").trim()
          : undefined,
  };
}
