// The PhysicalHost controller on the shared runtime: its reconcile and finalize functions, its
// per-BMC grouping and limits, its metrics, and the port to the BMC they use (one client pool,
// its sessions logged out on shutdown, credentials Secrets read through a cache the Secret watch
// invalidates). Also which hosts a credentials Secret change concerns.
// Everything with side effects is created on first use: capability files run during `pepr build`.
import { Log } from "pepr";

import {
  API_GROUP,
  API_VERSION,
  Annotations,
  BootServiceCA,
  BootServiceSecret,
  freeToClaim,
  Kinds,
  Labels,
  Plurals,
  type PhysicalHost,
} from "../api";
import { config } from "../lib/config";
import { paths } from "../lib/kube";
import { add, Metrics } from "../lib/metrics";
import { publish } from "../lib/object-events";
import { Controller, onShutdown, orUndefinedIfGone, sharedServices } from "../lib/runtime";
import { bmcGroupKey, poolConnector, type BmcConnector } from "./bmc";
import { secretBootAccess, type BootServiceAccess } from "./boot-session";
import { reconcileFingerprint, reconcileHost } from "./controller";
import { operatorAccessPolicy, type SecretData } from "./credentials";
import { finalizeHost } from "./finalize";
import { SecretCache } from "./secret-cache";
import { SecretIndex } from "./secret-index";
import { MetadataWatch, type ObjectMetadata } from "../lib/metadata-watch";

interface Connector {
  connect: BmcConnector;
  readAhead: (host: PhysicalHost) => Promise<void>;
  closeAll: () => Promise<void>;
}
let connector: Connector | undefined;
let secretCache: SecretCache | undefined;

/** The BMC connector: Secrets read through the shared API client, one Redfish client pool. */
function bmcConnector(): Connector {
  if (connector) return connector;
  const { kube } = sharedServices();
  const log = Log.child({ controller: "physicalhost" });
  const secretPath = (namespace: string, name: string) =>
    paths.object("", "v1", "secrets", namespace, name);
  secretCache = new SecretCache((namespace, name) =>
    orUndefinedIfGone(kube.get<SecretData>(secretPath(namespace, name))),
  );
  const cache = secretCache;
  const { connect, readAhead, pool } = poolConnector({
    readSecret: (namespace, name) => cache.read(namespace, name),
    access: operatorAccessPolicy(config),
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
  connector = { connect, readAhead, closeAll: () => pool.closeAll() };
  return connector;
}

let bootAccess: BootServiceAccess | undefined;

/** The boot service: its URL from the environment, its key from its Secret (read when needed). */
function bootService(): BootServiceAccess {
  if (bootAccess) return bootAccess;
  const { kube } = sharedServices();
  const path = paths.object("", "v1", "secrets", config.namespace, BootServiceSecret.name);
  const caPath = paths.object("", "v1", "configmaps", config.namespace, BootServiceCA.name);
  bootAccess = secretBootAccess(
    config.bootServiceURL,
    config.namespace,
    () => orUndefinedIfGone(kube.get<{ data?: Record<string, string> }>(path)),
    async () =>
      (await orUndefinedIfGone(kube.get<{ data?: Record<string, string> }>(caPath)))?.data?.[
        BootServiceCA.key
      ],
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
  credentialsWatch();
  hostController.enqueue(host);
  publish(Kinds.PhysicalHost, host);
}

/**
 * A machine is claiming this host (its write is under way): read its system ahead of the run the
 * claim starts, from the copy this controller holds (the machine controller's is slim). Only for
 * a host that is free and may talk to its BMC: not paused, not detached, not being deleted.
 */
export function hostClaiming(host: PhysicalHost): void {
  const held = hostController.held(host.metadata?.namespace, host.metadata?.name ?? "");
  const annotations = held?.metadata?.annotations ?? {};
  if (
    !held?.spec?.redfishConnection ||
    !freeToClaim(held) ||
    held.metadata?.deletionTimestamp ||
    Annotations.paused in annotations ||
    Annotations.detached in annotations
  ) {
    return;
  }
  void bmcConnector().readAhead(held);
}

/** A host is gone from the API server. */
export function hostGone(host: PhysicalHost): void {
  secrets.untrack(host.metadata?.namespace, host.metadata?.name ?? "");
  hostController.deleted(host);
  publish(Kinds.PhysicalHost, host, true);
}

/**
 * A labelled credentials Secret was created, changed or deleted: re-reconcile the hosts it
 * concerns (secret-index.ts), so a fixed or newly labelled Secret takes effect without waiting
 * for the host's backoff. An unlabelled Secret is not seen; its host retries on its backoff.
 */
export function credentialsChanged(secret: ObjectMetadata, deleted: boolean): void {
  secretCache?.changed(secret.namespace, secret.name, secret.resourceVersion, deleted);
  for (const name of secrets.changed(secret, deleted)) {
    hostController.requeue(secret.namespace, name, 0);
  }
}

let secretWatch: MetadataWatch | undefined;

/**
 * The watch of labelled Secrets' metadata (lib/metadata-watch.ts), not a Pepr binding: Pepr
 * caches watched objects whole and logs them at debug level. Started with the first host event,
 * so only where hosts are reconciled (the watcher pod; never during `pepr build`).
 */
function credentialsWatch(): void {
  if (secretWatch) return;
  const log = Log.child({ controller: "physicalhost", watch: "secrets" });
  secretWatch = new MetadataWatch({
    kube: sharedServices().kube,
    path: "/api/v1/secrets",
    labelSelector: Labels.bmcCredentials,
    keep: meta => secrets.used(meta),
    onChange: credentialsChanged,
    onError: message => log.warn(message),
  });
  secretWatch.start();
  onShutdown("credentials watch", () => secretWatch!.stop(), 0);
}
