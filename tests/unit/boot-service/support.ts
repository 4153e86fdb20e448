// Test support for the boot server: an in-memory HostDirectory (hosts by UUID, bootstrap data by
// host, every recorded signal kept), the boot handler on a loopback port, a stock-ISO origin that
// serves a Buffer with HTTP Range (or 404s), and a raw GET that returns status, headers and bytes.
import { createServer, request, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";

import {
  BootDataUnavailable,
  Metrics,
  createBootHandler,
  defineBootMetrics,
  type BootHandler,
  type BootSignal,
  type HostDirectory,
  type HostLookup,
  type HostView,
} from "../../../boot/server";
import { bufferSource, sendBody, serveRange } from "../../../boot/patched-iso";
import { newTokenKey } from "../../../boot/session";

export class MemoryDirectory implements HostDirectory {
  readonly hosts = new Map<string, HostView>();
  /** Set by a test that plays a lagging view. */
  refresh?: (uuid: string) => Promise<boolean>;
  readonly data = new Map<string, Buffer>();
  readonly signals: Array<{ host: string; signal: BootSignal }> = [];

  put(host: HostView): void {
    this.hosts.set(host.key, host);
  }

  lookup(uuid: string): HostLookup {
    const matches = [...this.hosts.values()].filter(h => h.systemUUID === uuid);
    if (matches.length === 0) return { missing: true };
    if (matches.length > 1) return { duplicate: matches.length };
    return { found: matches[0]! };
  }

  async bootstrapData(host: HostView): Promise<Buffer> {
    const data = this.data.get(host.key);
    if (!data) throw new BootDataUnavailable(`host ${host.key} has no bootstrap data`);
    return data;
  }

  async recordSignal(host: HostView, signal: BootSignal): Promise<void> {
    this.signals.push({ host: host.key, signal });
  }
}

export interface TestServer {
  base: string;
  handler: BootHandler;
  metrics: Metrics;
  logs: Array<Record<string, unknown>>;
  key: Buffer;
  close(): Promise<void>;
}

export async function startBootServer(
  directory: HostDirectory,
  options: { tokenTTLms?: number; now?: () => number; pathPrefix?: string } = {},
): Promise<TestServer> {
  const key = newTokenKey();
  const metrics = new Metrics();
  defineBootMetrics(metrics);
  const logs: Array<Record<string, unknown>> = [];
  let handler: BootHandler | undefined;
  const server = createServer((req, res) => handler!(req, res));
  const port = await listen(server);
  const base = `http://127.0.0.1:${port}${options.pathPrefix ?? ""}`;
  handler = createBootHandler({
    directory,
    tokenKey: key,
    tokenTTLms: options.tokenTTLms ?? 24 * 3600_000,
    now: options.now,
    baseURL: base,
    metrics,
    log: entry => logs.push(entry),
  });
  return {
    base,
    handler,
    metrics,
    logs,
    key,
    async close() {
      handler!.isos.close();
      server.closeAllConnections();
      await new Promise(r => server.close(r));
    },
  };
}

/**
 * An origin for stock ISOs: path -> bytes, served with Range to user:secret; other paths 404.
 * Its URLs carry the credentials and a signed-looking query, which must never be shown.
 */
export async function startOrigin(
  files: Record<string, Buffer>,
  redirects: Record<string, string> = {},
): Promise<{ url: (path: string) => string; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(`${req.url} ${req.headers.range ?? ""}`);
    // The URL's credentials must arrive as Basic authentication.
    if (req.headers.authorization !== `Basic ${Buffer.from("user:secret").toString("base64")}`) {
      res.writeHead(401).end("credentials missing");
      return;
    }
    const path = (req.url ?? "").split("?")[0]!;
    if (redirects[path]) {
      res.writeHead(302, { Location: redirects[path] }).end();
      return;
    }
    const bytes = files[path];
    if (!bytes) {
      res.writeHead(404).end("no such image");
      return;
    }
    const response = serveRange({
      size: bytes.length,
      read: (o, l) => bufferSource(bytes).read(o, l),
      range: req.headers.range,
      method: req.method,
    });
    res.writeHead(response.status, response.headers);
    sendBody(response.body, res).catch(() => undefined);
  });
  const port = await listen(server);
  return {
    url: path => `http://user:secret@127.0.0.1:${port}${path}?sig=s3cr3t`,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise(r => server.close(r));
    },
  };
}

export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export function get(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: Buffer | string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? "GET", headers: options.headers }, res => {
      const parts: Buffer[] = [];
      res.on("data", (c: Buffer) => parts.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts) }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(options.body);
  });
}

function listen(server: Server): Promise<number> {
  return new Promise(resolve =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)),
  );
}

let counter = 0;
/** A host being provisioned, with a fresh UUID and session. */
export function provisioningHost(overrides: Partial<HostView> = {}): HostView {
  counter++;
  const hex = counter.toString(16).padStart(12, "0");
  return {
    key: `default/host-${counter}`,
    uid: `uid-${counter}-${Math.random().toString(36).slice(2)}`,
    systemUUID: `4c4c4544-0000-1000-8000-${hex}`,
    state: "Provisioning",
    boot: {
      session: `${"ab".repeat(8)}${hex}`,
      issuedTime: new Date().toISOString(),
      delivery: "PatchedISO",
    },
    provisioning: { osFamily: "kairos", bootstrapDataSecretRef: "bootstrap" },
    ...overrides,
  };
}
