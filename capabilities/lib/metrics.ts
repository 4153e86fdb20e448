// Prometheus metrics through Pepr's collector, served on the module's /metrics endpoint. Pepr's
// collector offers labelled gauges only, so monotonic counts are gauges that only ever increase
// (named *_total, as Prometheus counters would be).
import { metricsCollector } from "pepr";

const registered = new Set<string>();

function gauge(name: string, help: string, labels: string[]): void {
  if (registered.has(name)) return;
  registered.add(name);
  metricsCollector.addGauge(name, help, labels);
}

export const Metrics = {
  hostsByState: "beskar7_physicalhosts",
  stateTransitions: "beskar7_physicalhost_state_transitions_total",
  bmcRequests: "beskar7_bmc_requests_total",
  bmcErrors: "beskar7_bmc_errors_total",
  bmcLatencyMs: "beskar7_bmc_request_duration_ms_total",
  reconciles: "beskar7_reconciles_total",
  reconcileMs: "beskar7_reconcile_duration_ms_total",
  queueDepth: "beskar7_workqueue_depth",
} as const;

export function registerMetrics(): void {
  gauge(Metrics.hostsByState, "PhysicalHosts by state", ["state"]);
  gauge(Metrics.stateTransitions, "PhysicalHost state transitions", ["from", "to"]);
  gauge(Metrics.bmcRequests, "Redfish requests sent, by operation", ["operation"]);
  gauge(Metrics.bmcErrors, "Failed BMC operations, by operation and error code", [
    "operation",
    "code",
  ]);
  gauge(Metrics.bmcLatencyMs, "Summed Redfish request latency in ms, by operation", ["operation"]);
  gauge(Metrics.reconciles, "Reconciles run, by controller and result", ["controller", "result"]);
  gauge(Metrics.reconcileMs, "Summed reconcile duration in ms, by controller", ["controller"]);
  gauge(Metrics.queueDepth, "Work queue entries, by controller and kind (ready, active, delayed)", [
    "controller",
    "kind",
  ]);
}

export function add(name: string, labels: Record<string, string>, value = 1): void {
  metricsCollector.incGauge(name, labels, value);
}

const lastSet = new Map<string, number>();

/** Sets a gauge to a value (Pepr's collector only increments, so this adds the difference). */
export function set(name: string, labels: Record<string, string>, value: number): void {
  const key = `${name}${JSON.stringify(labels)}`;
  const delta = value - (lastSet.get(key) ?? 0);
  lastSet.set(key, value);
  if (delta !== 0) metricsCollector.incGauge(name, labels, delta);
}
