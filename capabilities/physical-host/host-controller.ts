// The PhysicalHost controller on the shared runtime: its reconcile and finalize functions, its
// per-BMC grouping and limits, its metrics, and the port to the BMC they use (one client pool,
// its sessions logged out on shutdown). Also which hosts a credentials Secret change concerns.
// Everything with side effects is created on first use: capability files run during `pepr build`.
import { Log, type a } from "pepr";

import {
  API_GROUP,
  API_VERSION,
  BootServiceSecret,
  Kinds,
  Labels,
  Plurals,
  type PhysicalHost,
} from "../api";
import { config } from "../lib/config";
import { paths, pointerSegment } from "../lib/kube";
import { add, Metrics } from "../lib/metrics";
import { publish } from "../lib/object-events";
import { Controller, orUndefinedIfGone, sharedServices } from "../lib/runtime";
import { bmcGroupKey, poolConnector, type BmcConnector } from "./bmc";
import { secretBootAccess, type BootServiceAccess } from "./boot-session";
import { reconcileFingerprint, reconcileHost } from "./controller";
import type { SecretData } from "./credentials";
import { finalizeHost } from "./finalize";
import { SecretIndex } from "./secret-index";

let connector: { connect: BmcConnector; closeAll: () => Promise<void> } | undefined;

/** The BMC connector: Secrets read through the shared API client, one Redfish client pool. */
function bmcConnector(): { connect: BmcConnector; closeAll: () => Promise<void> } {
  if (connector) return connector;
  const { kube } = sharedServices();
  const log = Log.child({ controller: "physicalhost" });
  const secretPath = (namespace: string, name: string) =>
    paths.object("", "v1", "secrets", namespace, name);
  const { connect, pool } = poolConnector({
    readSecret: (namespace, name) =>
      orUndefinedIfGone(kube.get<SecretData>(secretPath(namespace, name))),
    labelSecret: async (namespace, name, labels) => {
      // A JSON patch that adds the one label: server-side apply would take over (and could drop)
      // fields another writer with Pepr's field manager set. Labelled Secrets are the only ones
      // this operator watches.
      const key = pointerSegment(Labels.bmcCredentials);
      await kube.jsonPatch(secretPath(namespace, name), [
        labels
          ? { op: "add", path: `/metadata/labels/${key}`, value: "true" }
          : { op: "add", path: "/metadata/labels", value: { [Labels.bmcCredentials]: "true" } },
      ]);
    },
    logger: {
      debug: (message, fields) => log.debug(fields ?? {}, message),
      info: (message, fields) => log.info(fields ?? {}, message),
      warn: (message, fields) => log.warn(fields ?? {}, message),
    },
    requestTimeoutMs: config.bmcRequestTimeoutMs,
    maxConcurrentRequests: config.maxRequestsPerBMC,
    onRequest: (operation, status, durationMs) => {
      add(Metrics.bmcRequests, { operation });
      add(Metrics.bmcLatencyMs, { operation }, durationMs);
      if (status === undefined || status >= 400) {
        add(Metrics.bmcErrors, {
          operation,
          code: status === undefined ? "NoResponse" : String(status),
        });
      }
    },
  });
  connector = { connect, closeAll: () => pool.closeAll() };
  return connector;
}

let bootAccess: BootServiceAccess | undefined;

/** The boot service: its URL from the environment, its key from its Secret (read when needed). */
function bootService(): BootServiceAccess {
  if (bootAccess) return bootAccess;
  const { kube } = sharedServices();
  const path = paths.object("", "v1", "secrets", config.namespace, BootServiceSecret.name);
  bootAccess = secretBootAccess(config.bootServiceURL, config.namespace, () =>
    orUndefinedIfGone(kube.get<{ data?: Record<string, string> }>(path)),
  );
  return bootAccess;
}

export const hostController = new Controller<PhysicalHost>({
  name: "physicalhost",
  resource: { group: API_GROUP, version: API_VERSION, plural: Plurals.PhysicalHost },
  reconcile: (host, { signal }) =>
    reconcileHost(
      host,
      { connect: bmcConnector().connect, config, bootService: bootService() },
      signal,
    ),
  finalize: (host, { signal }) =>
    finalizeHost(host, { connect: bmcConnector().connect, config }, signal),
  groupOf: bmcGroupKey,
  fingerprint: reconcileFingerprint,
  limits: {
    concurrency: config.maxConcurrentReconciles,
    perGroup: config.maxReconcilesPerBMC,
    backoff: { baseMs: config.errorBackoffBaseMs, maxMs: config.errorBackoffMaxMs },
    // Hosts registered together would otherwise have their power checks in one burst forever.
    requeueJitter: 0.1,
  },
  states: {
    of: host => host.status?.state,
    gauge: Metrics.hostsByState,
    transitions: Metrics.stateTransitions,
  },
  // Log every BMC session out: a BMC allows only a few, and an abandoned one holds a slot until
  // the BMC's own timeout.
  onShutdown: async () => {
    await connector?.closeAll();
  },
});

const secrets = new SecretIndex();

/**
 * A host event: track the Secrets it names, reconcile (or finalize) it, and pass it on to the
 * other controllers that follow hosts (one watch for all: lib/object-events.ts).
 */
export function hostChanged(host: PhysicalHost): void {
  secrets.track(host);
  hostController.enqueue(host);
  publish(Kinds.PhysicalHost, host);
}

/** A host is gone from the API server. */
export function hostGone(host: PhysicalHost): void {
  secrets.untrack(host.metadata?.namespace, host.metadata?.name ?? "");
  hostController.deleted(host);
  publish(Kinds.PhysicalHost, host, true);
}

/**
 * A labelled credentials Secret was created, changed or deleted: re-reconcile the hosts whose
 * credentials really changed, so a fixed password takes effect without a restart. A Secret
 * created after its host failed with SecretNotFound carries no label yet; that host retries on
 * its error backoff.
 */
export function credentialsChanged(secret: a.Secret, deleted: boolean): void {
  const namespace = secret.metadata?.namespace;
  for (const name of secrets.changed(secret, deleted)) hostController.requeue(namespace, name, 0);
}
