// The boot service process, assembled: the Kubernetes adapter (hosts.ts, secret.ts) behind the
// HTTP core of boot/server, one HTTPS (or, opted in, plain HTTP) listener for hosts and BMCs, and
// a second listener for /metrics, /healthz and /readyz, so probes and scrapes never share a port
// (or a certificate) with boot traffic. Ready means: the Secret is loaded, the CA published and
// the host index synced; until then boot requests are answered 503.
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";

import { Metrics, createBootHandler, defineBootMetrics, type BootHandler } from "../boot/server";
import { servingNames } from "./ca";
import type { BootServiceConfig } from "./config";
import { KubeHostDirectory } from "./hosts";
import { KubeClient } from "./kube";
import { ensureServiceSecret, publishCA } from "./secret";

export interface RunningBootService {
  /** The boot endpoints' local address (the port actually bound). */
  address: AddressInfo;
  metricsAddress: AddressInfo;
  /** The CA certificate (PEM) hosts must trust. */
  caCert: string;
  /** Stops accepting, lets transfers finish for up to `graceMs`, then closes everything. */
  stop(graceMs?: number): Promise<void>;
}

export type Log = (entry: Record<string, unknown>) => void;

export const jsonLog: Log = entry =>
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`);

export async function runBootService(
  config: BootServiceConfig,
  options: { kube?: KubeClient; log?: Log } = {},
): Promise<RunningBootService> {
  const log = options.log ?? jsonLog;
  // KUBECONFIG when set, the in-cluster configuration in a Pod, ~/.kube/config otherwise.
  const kube = options.kube ?? KubeClient.fromEnvironment();
  const directory = new KubeHostDirectory(kube, log);
  const metrics = new Metrics();
  defineBootMetrics(metrics);
  metrics.define("beskar7_boot_hosts", "gauge", "PhysicalHosts indexed by system UUID", () => [
    { labels: {}, value: directory.counts().hosts },
  ]);
  metrics.define(
    "beskar7_boot_duplicate_uuids",
    "gauge",
    "system UUIDs carried by more than one host (all refused)",
    () => [{ labels: {}, value: directory.counts().duplicateUUIDs }],
  );
  metrics.define(
    "beskar7_boot_ready",
    "gauge",
    "1 once the Secret is loaded and the host index synced",
    () => [{ labels: {}, value: ready ? 1 : 0 }],
  );
  metrics.define(
    "beskar7_boot_process_memory_bytes",
    "gauge",
    "process memory by kind (rss, heapTotal, heapUsed, external, arrayBuffers)",
    () =>
      Object.entries(process.memoryUsage()).map(([kind, value]) => ({
        labels: { kind },
        value,
      })),
  );
  let ready = false;
  let stopping = false;

  const metricsServer = createHttpServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/metrics") return plain(res, 200, metrics.render(), "text/plain; version=0.0.4");
    if (path === "/healthz") return plain(res, 200, "ok\n");
    if (path === "/readyz")
      return ready && !stopping ? plain(res, 200, "ready\n") : plain(res, 503, "not ready\n");
    plain(res, 404, "not found\n");
  });
  const metricsAddress = await listen(metricsServer, config.metricsListen);

  const names = servingNames(config.url, config.extraSANs);
  const secret = await ensureServiceSecret(kube, config.namespace, names, log);
  await publishCA(kube, config.namespace, secret.ca.caCert);
  await directory.start();

  const handler: BootHandler = createBootHandler({
    directory,
    tokenKey: secret.tokenKey,
    tokenTTLms: config.tokenTTLms,
    baseURL: config.url,
    metrics,
    log,
  });
  const serve = (req: IncomingMessage, res: ServerResponse) => {
    if (!ready) return plain(res, 503, "the boot service is starting\n");
    handler(req, res);
  };
  const server: Server = config.plainHttp
    ? createHttpServer(serve)
    : createHttpsServer({ cert: secret.serving.cert, key: secret.serving.key }, serve);
  // BMCs keep connections open between Range requests; a long idle limit saves them handshakes.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 70_000;
  const address = await listen(server, config.listen);
  ready = true;
  log({
    msg: "listening",
    url: config.url,
    address: `${address.address}:${address.port}`,
    metrics: `${metricsAddress.address}:${metricsAddress.port}`,
    tls: !config.plainHttp,
    namespace: config.namespace,
  });

  return {
    address,
    metricsAddress,
    caCert: secret.ca.caCert,
    async stop(graceMs = config.shutdownGraceMs) {
      if (stopping) return;
      stopping = true;
      const deadline = Date.now() + graceMs;
      const closed = new Promise<void>(resolve => server.close(() => resolve()));
      while (handler.inflight() > 0 && Date.now() < deadline) {
        server.closeIdleConnections();
        await new Promise(r => setTimeout(r, 100));
      }
      const unfinished = handler.inflight();
      server.closeAllConnections();
      await closed;
      await directory.stop();
      kube.close();
      handler.isos.close();
      metricsServer.closeAllConnections();
      await new Promise<void>(resolve => metricsServer.close(() => resolve()));
      log({ msg: "stopped", unfinishedTransfers: unfinished });
    },
  };
}

function listen(server: Server, at: { host: string; port: number }): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(at.port, at.host, () => {
      server.off("error", reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

function plain(
  res: ServerResponse,
  status: number,
  body: string,
  type = "text/plain; charset=utf-8",
): void {
  res.writeHead(status, {
    "Content-Type": type,
    "Content-Length": String(Buffer.byteLength(body)),
  });
  res.end(body);
}
