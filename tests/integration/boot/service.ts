// The boot service for integration tests: started on a free local port against the suite's API
// server (its Secret and CA ConfigMap go to pepr-system, which must exist, and it watches
// PhysicalHosts, whose CRD must exist), and the environment that points the operator at it. Used
// by the boot end-to-end tests and by the Cluster API provider test, whose RemoteConfig hosts need
// the service for their patched ISO; and the local image server (lab/image-server.ts) for the ISOs
// the service patches.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { inject } from "vitest";

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

/** The local image server (Range support) both suites serve their ISOs from. */
export { imageServer } from "../../../lab/image-server";
