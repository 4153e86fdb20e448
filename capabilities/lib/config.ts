// Runtime configuration, read once from the environment into a frozen object. Pepr passes the
// "env" block of package.json to the deployed pods; operator:local sets the same variables.
import pkg from "../../package.json";

function integer(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name}=${raw} is not an integer between ${min} and ${max}`);
  }
  return value;
}

function list(name: string, fallback: string[]): string[] {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  return raw
    .split(",")
    .map(s => s.trim())
    .filter(Boolean);
}

/** Namespaces Pepr's admission webhooks never see: its own two and the module's alwaysIgnore. */
const PEPR_SKIPPED_NAMESPACES = ["kube-system", "pepr-system"];

function admissionSkippedNamespaces(): string[] {
  const pepr = pkg.pepr as {
    alwaysIgnore?: { namespaces?: string[] };
    admission?: { alwaysIgnore?: { namespaces?: string[] } };
  };
  return [
    ...new Set([
      ...PEPR_SKIPPED_NAMESPACES,
      ...(pepr.alwaysIgnore?.namespaces ?? []),
      ...(pepr.admission?.alwaysIgnore?.namespaces ?? []),
    ]),
  ];
}

export interface Config {
  /** Reconciles running at once, across all hosts. */
  maxConcurrentReconciles: number;
  /** Reconciles running at once against one BMC address. */
  maxReconcilesPerBMC: number;
  /** Redfish requests in flight per BMC. */
  maxRequestsPerBMC: number;
  /** Timeout of one Redfish request. */
  bmcRequestTimeoutMs: number;
  /** An idle host's power state is re-read this often. */
  powerCheckIntervalMs: number;
  /** The inventory is re-read this often (and on the refresh-inventory annotation). */
  inventoryIntervalMs: number;
  /** Wait before checking that a power change landed. */
  powerSettleMs: number;
  /** Backoff of failed reconciles: first delay and cap. */
  errorBackoffBaseMs: number;
  errorBackoffMaxMs: number;
  /** Graceful shutdown before a forced power off. */
  gracefulShutdownTimeoutMs: number;
  /**
   * A host whose OS should signal (configuration fetched, inspection report) and has not this
   * long after power-on gets a BootSignalTimeout condition.
   */
  bootSignalTimeoutMs: number;
  /** The boot service's external base URL (BESKAR7_BOOT_URL); unset: not configured. */
  bootServiceURL?: string;
  /** The operator's namespace, where the boot service's Secret is (BESKAR7_NAMESPACE). */
  namespace: string;
  /** Deprovisioning attempts on delete before the finalizer is removed anyway. */
  deleteAttempts: number;
  /** Port of the admission webhook server (Pepr's Service targets 3000 in a cluster). */
  webhookPort: number;
  /**
   * Users allowed to write a PhysicalHost's consumerRef: the operator's own service account.
   * operator:local adds the identity of its kubeconfig.
   */
  operatorUsernames: string[];
  /** PhysicalHost label matched against a Machine's failure domain. */
  zoneLabel: string;
  /**
   * A claimed host whose BMC has been unreachable (or that has been in Error) this long is lost
   * for good: its machine fails terminally, so a MachineHealthCheck can remediate it.
   */
  hostLostAfterMs: number;
  /** A machine waiting for a host looks again this often even without a host event. */
  machineWaitingRecheckMs: number;
  /** A provisioned machine looks for its workload-cluster Node this often until it is linked. */
  nodeCheckIntervalMs: number;
  /**
   * BMC addresses are refused when link-local, loopback, unspecified or in the cluster's Service
   * network unless this lists their class or a CIDR holding them (BESKAR7_ALLOW_BMC_ADDRESSES,
   * e.g. "loopback" or "loopback,10.96.0.0/12"). physical-host/credentials.ts makes the policy
   * (redfish/address-policy.ts) that admission and the controller apply.
   */
  allowBmcAddresses: string[];
  /** The cluster's Service network CIDRs (BESKAR7_SERVICE_CIDRS), refused as BMC addresses. */
  serviceCidrs: string[];
  /**
   * Namespaces whose objects Pepr's admission webhooks never see: hosts there were never
   * validated, so the controller does not act on them.
   */
  admissionSkippedNamespaces: string[];
}

/** Defaults of the timing settings, for code that runs without the environment (tests). */
export const TIMING_DEFAULTS = Object.freeze({
  powerCheckIntervalMs: 5 * 60_000,
  inventoryIntervalMs: 24 * 3_600_000,
  powerSettleMs: 10_000,
  errorBackoffBaseMs: 5_000,
  errorBackoffMaxMs: 5 * 60_000,
  gracefulShutdownTimeoutMs: 120_000,
  bootSignalTimeoutMs: 30 * 60_000,
});

const T = TIMING_DEFAULTS;

/** BESKAR7_BOOT_URL: an http(s) URL without credentials, query or fragment, or unset. */
function bootServiceURL(): string | undefined {
  const raw = process.env.BESKAR7_BOOT_URL?.trim();
  if (!raw) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`BESKAR7_BOOT_URL=${raw} is not a URL`);
  }
  if (
    (url.protocol !== "https:" && url.protocol !== "http:") ||
    url.username ||
    url.password ||
    url.search ||
    url.hash
  ) {
    throw new Error(
      `BESKAR7_BOOT_URL=${raw} must be an http(s) base URL without credentials, query or fragment`,
    );
  }
  return raw.replace(/\/+$/, "");
}

export const config: Readonly<Config> = Object.freeze({
  maxConcurrentReconciles: integer("BESKAR7_MAX_CONCURRENT_RECONCILES", 64, 1, 10_000),
  maxReconcilesPerBMC: integer("BESKAR7_MAX_RECONCILES_PER_BMC", 1, 1, 100),
  maxRequestsPerBMC: integer("BESKAR7_MAX_REQUESTS_PER_BMC", 4, 1, 64),
  bmcRequestTimeoutMs: integer("BESKAR7_BMC_TIMEOUT_MS", 30_000, 100, 600_000),
  powerCheckIntervalMs: integer(
    "BESKAR7_POWER_CHECK_INTERVAL_MS",
    T.powerCheckIntervalMs,
    1000,
    86_400_000,
  ),
  inventoryIntervalMs: integer(
    "BESKAR7_INVENTORY_INTERVAL_MS",
    T.inventoryIntervalMs,
    60_000,
    30 * 86_400_000,
  ),
  powerSettleMs: integer("BESKAR7_POWER_SETTLE_MS", T.powerSettleMs, 100, 600_000),
  errorBackoffBaseMs: integer("BESKAR7_ERROR_BACKOFF_BASE_MS", T.errorBackoffBaseMs, 10, 3_600_000),
  errorBackoffMaxMs: integer("BESKAR7_ERROR_BACKOFF_MAX_MS", T.errorBackoffMaxMs, 10, 86_400_000),
  gracefulShutdownTimeoutMs: integer(
    "BESKAR7_GRACEFUL_SHUTDOWN_TIMEOUT_MS",
    T.gracefulShutdownTimeoutMs,
    0,
    3_600_000,
  ),
  deleteAttempts: integer("BESKAR7_DELETE_ATTEMPTS", 5, 1, 100),
  bootSignalTimeoutMs: integer(
    "BESKAR7_BOOT_SIGNAL_TIMEOUT_MS",
    T.bootSignalTimeoutMs,
    1000,
    7 * 86_400_000,
  ),
  bootServiceURL: bootServiceURL(),
  namespace: process.env.BESKAR7_NAMESPACE?.trim() || "pepr-system",
  webhookPort: integer("BESKAR7_WEBHOOK_PORT", 3000, 1, 65535),
  // Pepr runs both the admission and the watcher Deployment as this service account.
  operatorUsernames: list("BESKAR7_OPERATOR_USERNAMES", [
    "system:serviceaccount:pepr-system:pepr-beskar7",
  ]),
  zoneLabel: process.env.BESKAR7_ZONE_LABEL?.trim() || "topology.kubernetes.io/zone",
  hostLostAfterMs: integer("BESKAR7_HOST_LOST_AFTER_MS", 30 * 60_000, 1000, 7 * 86_400_000),
  machineWaitingRecheckMs: integer("BESKAR7_MACHINE_RECHECK_MS", 60_000, 100, 86_400_000),
  nodeCheckIntervalMs: integer("BESKAR7_NODE_CHECK_INTERVAL_MS", 10_000, 100, 86_400_000),
  allowBmcAddresses: list("BESKAR7_ALLOW_BMC_ADDRESSES", []),
  serviceCidrs: list("BESKAR7_SERVICE_CIDRS", []),
  admissionSkippedNamespaces: admissionSkippedNamespaces(),
});
