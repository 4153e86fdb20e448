// Shared setup for the driver integration tests: a test BMC over HTTPS (trusted through its own
// certificate as the CA bundle) and a driver client tuned for fast polling, plus a helper that
// measures how many HTTP requests an operation cost at the BMC.
import {
  createRedfishClient,
  type RedfishClient,
  type RedfishClientOptions,
  type RedfishSystem,
} from "../../../redfish/index";
import type { TestBmc, TestBmcOptions } from "../../../lab/bmc/server";
import { startTestBmc } from "../support/test-bmc";

export interface Rig {
  bmc: TestBmc;
  client: RedfishClient;
  system: RedfishSystem;
  close(): Promise<void>;
}

/** Client options that keep polling fast against an emulator that answers instantly. */
export const fastClient: Partial<RedfishClientOptions> = {
  timeoutMs: 3000,
  retry: { attempts: 3, baseDelayMs: 20, maxDelayMs: 200 },
  verifyPollIntervalMs: 50,
  verifyTimeoutMs: 5000,
  taskPollIntervalMs: 50,
  gracefulShutdownTimeoutMs: 2000,
};

export async function startRig(
  bmcOptions: TestBmcOptions,
  clientOptions: Partial<RedfishClientOptions> = {},
): Promise<Rig> {
  const bmc = await startTestBmc(bmcOptions);
  const client = createRedfishClient({
    address: bmc.url,
    credentials: { username: bmc.username, password: bmc.password },
    tls: bmc.caPem ? { caBundle: bmc.caPem } : undefined,
    ...fastClient,
    ...clientOptions,
  });
  return {
    bmc,
    client,
    system: client.system(),
    close: async () => {
      await client.close();
      await bmc.stop();
    },
  };
}

/** Runs an operation and returns its result with the number of requests the BMC received. */
export async function measured<T>(
  bmc: TestBmc,
  operation: () => Promise<T>,
): Promise<{ result: T; requests: number; ms: number }> {
  const before = bmc.requests.total;
  const started = performance.now();
  const result = await operation();
  return { result, requests: bmc.requests.total - before, ms: performance.now() - started };
}
