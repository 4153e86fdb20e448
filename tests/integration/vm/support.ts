// Helpers for the VM tests: a small HTTP server on 127.0.0.1 standing in for the places a
// machine reads from (the installer ISO and volumes, served with Range requests as a BMC reads
// them; configuration files) and posts to (reports, callbacks), with a log of what was asked. The
// VMs reach it through their guest forward (http://10.0.2.100/...); the BMC reads it directly.
// Also the boot service started for the VMs (startVmBootService), and with the operator using it
// (startVmProvisioning), as the tests that boot through the service run both.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { K8s, kind } from "kubernetes-fluent-client";
import { inject } from "vitest";

import { type RandomAccessSource, sendBody, serveRange } from "../../../boot/patched-iso";
import { SERVICE_SECRET } from "../../../boot-service/secret";
import { startBootService, type StartedBootService } from "../../../boot-service/start";
import { freePort } from "../../../lab/controlplane/controlplane";
import { guestUrl } from "../../../lab/vm/bmc";
import type { GuestForward, QemuMachine } from "../../../lab/vm/qemu";
import { installBeskar7Crds } from "../api/kubectl";
import { BOOT_NAMESPACE } from "../boot/service";
import { kubectl } from "../support/kube";
import { startOperator } from "../support/operator";

export interface ServedRequest {
  method: string;
  path: string;
  status: number;
  /** Bytes of the request body (POSTs). */
  body?: Buffer;
}

export class TestFileServer {
  readonly requests: ServedRequest[] = [];
  private readonly blobs = new Map<string, RandomAccessSource>();

  private constructor(
    private readonly server: http.Server,
    readonly port: number,
  ) {}

  static async start(): Promise<TestFileServer> {
    let self: TestFileServer | undefined;
    const server = http.createServer((req, res) => {
      self!.handle(req, res).catch(err => {
        if (!res.headersSent) res.writeHead(500);
        res.end(String(err));
      });
    });
    await new Promise<void>(resolve => server.listen(0, "127.0.0.1", resolve));
    self = new TestFileServer(server, (server.address() as AddressInfo).port);
    return self;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Serves `source` at `path` (GET and HEAD, with Range); returns its URL on 127.0.0.1. */
  serve(path: string, source: RandomAccessSource | Buffer): string {
    const blob = Buffer.isBuffer(source)
      ? { size: source.length, read: async (o: number, l: number) => source.subarray(o, o + l) }
      : source;
    this.blobs.set(path, blob);
    return `${this.url}${path}`;
  }

  requestsFor(path: string, method?: string): ServedRequest[] {
    return this.requests.filter(
      r => r.path === path && (method === undefined || r.method === method),
    );
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>(resolve => this.server.close(() => resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = new URL(req.url ?? "/", this.url).pathname;
    const method = req.method ?? "GET";
    if (method === "POST") {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      this.requests.push({ method, path, status: 204, body: Buffer.concat(chunks) });
      res.writeHead(204).end();
      return;
    }
    const blob = this.blobs.get(path);
    if (!blob || (method !== "GET" && method !== "HEAD")) {
      this.requests.push({ method, path, status: 404 });
      res.writeHead(404).end();
      return;
    }
    const response = serveRange({
      size: blob.size,
      read: (offset, length) => blob.read(offset, length),
      range: req.headers.range,
      method,
      contentType: "application/octet-stream",
    });
    this.requests.push({ method, path, status: response.status });
    res.writeHead(response.status, response.headers);
    await sendBody(response.body, res);
    res.end();
  }
}

/** Per-VM limit in the tests: a TCG boot takes 15-40 s here, several at once share two cores. */
export const VM_BOOT_TIMEOUT_MS = 240_000;

/**
 * Waits until the VM has powered itself off; the error carries the console's last lines. A kernel
 * panic fails at once rather than at the time limit.
 */
export async function waitForPowerOff(machine: QemuMachine): Promise<void> {
  const line = await machine.console.waitFor(
    /^BESKAR7-POWEROFF$|Kernel panic - not syncing/,
    VM_BOOT_TIMEOUT_MS,
  );
  if (line !== "BESKAR7-POWEROFF") {
    throw new Error(`the VM's kernel panicked; last lines:\n${machine.console.tail(40)}`);
  }
  await machine.whenStopped();
}

/** Seconds from the machine's last power-on to its power-off (or now). */
export function bootSeconds(machine: QemuMachine): number {
  const run = machine.lastRun;
  if (!run) return Number.NaN;
  return ((run.endedAt ?? Date.now()) - run.startedAt) / 1000;
}

/**
 * The boot service as the VMs reach it: plain HTTP (busybox wget does no TLS) on 127.0.0.1, with
 * two base URLs for two networks. The operator's BESKAR7_BOOT_URL (`hostURL`) is what BMCs reach:
 * it names the media URLs the operator hands to a BMC and probes, and QEMU's curl driver, which
 * reads them, runs on the host. The service's own BESKAR7_BOOT_URL (`guestURL`, the forward at
 * http://10.0.2.100) is what booting hosts reach: it renders the configuration and report URLs
 * into the patched ISO and iPXE scripts from it. Both lead to the same listener.
 */
export interface VmBootService {
  service: StartedBootService;
  hostURL: string;
  guestURL: string;
  /** The forward each VM needs to reach the service at guestURL. */
  forward: GuestForward;
  /** What startOperator needs to use it and the VMs' BMCs (on 127.0.0.1). */
  operatorEnv: Record<string, string>;
  /** The token key the service and the operator share (read from the service's Secret). */
  tokenKey(): Promise<Buffer>;
}

export async function startVmBootService(): Promise<VmBootService> {
  // The service watches PhysicalHosts from the start: their CRD must exist.
  await installBeskar7Crds();
  await kubectl(
    ["apply", "--server-side", "-f", "-"],
    JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: BOOT_NAMESPACE } }),
  );
  const port = await freePort();
  const hostURL = `http://127.0.0.1:${port}`;
  const forward: GuestForward = { guestPort: 80, hostPort: port };
  const guestURL = guestUrl(hostURL, [forward]);
  const service = await startBootService({
    kubeconfig: inject("kubeconfig"),
    url: guestURL,
    listen: `127.0.0.1:${port}`,
    plainHttp: true,
    namespace: BOOT_NAMESPACE,
  });
  return {
    service,
    hostURL,
    guestURL,
    forward,
    operatorEnv: {
      BESKAR7_BOOT_URL: hostURL,
      BESKAR7_NAMESPACE: BOOT_NAMESPACE,
      BESKAR7_ALLOW_BMC_ADDRESSES: "loopback",
    },
    async tokenKey() {
      const secret = await K8s(kind.Secret).InNamespace(BOOT_NAMESPACE).Get(SERVICE_SECRET);
      return Buffer.from(secret.data?.["token-key"] ?? "", "base64");
    },
  };
}

/** The boot service for VMs and the operator set to use it; `stop` stops both, operator first. */
export interface VmProvisioning {
  boot: VmBootService;
  stop(): Promise<void>;
}

export async function startVmProvisioning(): Promise<VmProvisioning> {
  const boot = await startVmBootService();
  const operator = await startOperator(boot.operatorEnv).catch(async (err: unknown) => {
    await boot.service.stop();
    throw err;
  });
  return {
    boot,
    async stop() {
      await operator.stop();
      await boot.service.stop();
    },
  };
}
