// The boot service for integration tests: started on a free local port against the suite's API
// server (its Secret and CA ConfigMap go to pepr-system, which must exist, and it watches
// PhysicalHosts, whose CRD must exist), and the environment that points the operator at it. Used
// by the boot end-to-end tests and by the Cluster API provider test, whose RemoteConfig hosts need
// the service for their patched ISO; and a local image server for the ISOs the service patches.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { inject } from "vitest";

import { sendBody, serveRange } from "../../../boot/patched-iso";
import { startBootService, type StartedBootService } from "../../../boot-service/start";
import { installBeskar7Crds } from "../api/kubectl";
import { kubectl } from "../support/kube";

export const BOOT_NAMESPACE = "pepr-system";

async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>(resolve => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise(resolve => server.close(resolve));
  return port;
}

export interface TestBootService {
  service: StartedBootService;
  /** The service's base URL (BESKAR7_BOOT_URL). */
  url: string;
  /** What startOperator needs to use it. */
  operatorEnv: Record<string, string>;
}

export async function startTestBootService(): Promise<TestBootService> {
  // The service watches PhysicalHosts from the start: their CRD must exist.
  await installBeskar7Crds();
  await kubectl(
    ["apply", "--server-side", "-f", "-"],
    JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: BOOT_NAMESPACE } }),
  );
  const url = `https://127.0.0.1:${await freePort()}`;
  const service = await startBootService({
    kubeconfig: inject("kubeconfig"),
    url,
    namespace: BOOT_NAMESPACE,
  });
  return {
    service,
    url,
    operatorEnv: { BESKAR7_BOOT_URL: url, BESKAR7_NAMESPACE: BOOT_NAMESPACE },
  };
}

/** A local image server with Range support: what a site's HTTP server for ISOs is. */
export async function imageServer(
  files: Record<string, Buffer>,
): Promise<{ url: string; close(): void }> {
  const server = http.createServer((req, res) => {
    const body = files[req.url ?? ""];
    if (!body) {
      res.writeHead(404).end("not found\n");
      return;
    }
    const response = serveRange({
      size: body.length,
      read: async (offset, length) => body.subarray(offset, offset + length),
      range: req.headers.range,
      etag: `"${body.length}"`,
      method: req.method,
      contentType: "application/octet-stream",
    });
    res.writeHead(response.status, response.headers);
    void sendBody(response.body, res);
  });
  await new Promise<void>(resolve => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => server.close() };
}
