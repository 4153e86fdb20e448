// PhysicalHost capability: wires Pepr bindings to plain functions. Pepr's Reconcile feeds a work
// queue (requeues, backoff, per-BMC limits), Finalize runs the delete flow, Validate the
// admission rules, and a watch on labelled credential Secrets re-reconciles the hosts using them.
//
// Top-level code here also runs when `pepr build` loads the module, so everything with side
// effects (clients, queues, metrics) is created lazily on first use.
import { Capability, Log, a } from "pepr";

import { API_GROUP, API_VERSION, Labels, PhysicalHost, Plurals, type HostStateName } from "../api";
import { config } from "../lib/config";
import { apiServerEventRecorder } from "../lib/events";
import { KubeClient, paths, pointerSegment } from "../lib/kube";
import { add, Metrics, registerMetrics, set } from "../lib/metrics";
import { admit } from "../lib/pepr-admission";
import { WorkQueue } from "../lib/workqueue";
import { validatePhysicalHost } from "./admission";
import { poolConnector } from "./bmc";
import { reconcileHost, reconcileFingerprint, type HostControllerDeps } from "./controller";
import type { SecretData } from "./credentials";
import { finalizeHost, type FinalizeDeps } from "./finalize";
import { SecretIndex } from "./secret-index";
import type { StatusUpdate } from "./states";

export const PhysicalHostCapability = new Capability({
  name: "beskar7-physical-host",
  description: "PhysicalHost: enrollment, inventory, power and provisioning actions over Redfish",
});

const { When } = PhysicalHostCapability;

interface Runtime {
  queue: WorkQueue<PhysicalHost>;
  secrets: SecretIndex;
  finalize: FinalizeDeps;
}

let runtime: Runtime | undefined;

function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  const e = err as { status?: number; statusText?: string; data?: { message?: string } };
  return (
    `${e?.status ?? ""} ${e?.statusText ?? ""} ${e?.data?.message ?? ""}`.trim() || String(err)
  );
}

function start(): Runtime {
  registerMetrics();
  const log = Log.child({ controller: "physicalhost" });
  const kube = new KubeClient();
  const record = apiServerEventRecorder(kube, (msg, err) =>
    log.warn({ err: describeError(err) }, msg),
  );
  const hostPath = (namespace: string | undefined, name: string) =>
    paths.object(API_GROUP, API_VERSION, Plurals.PhysicalHost, namespace ?? "default", name);
  const secretPath = (namespace: string, name: string) =>
    paths.object("", "v1", "secrets", namespace, name);
  const { connect } = poolConnector({
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

  const patchStatus = async (host: PhysicalHost, status: StatusUpdate) => {
    await kube.mergePatch(`${hostPath(host.metadata!.namespace, host.metadata!.name!)}/status`, {
      status,
    });
  };
  const deps: HostControllerDeps = {
    connect,
    patchStatus,
    removeAnnotations: async (host, keys) => {
      await kube.jsonPatch(
        hostPath(host.metadata!.namespace, host.metadata!.name!),
        keys.map(key => ({
          op: "remove",
          path: `/metadata/annotations/${pointerSegment(key)}`,
        })),
      );
    },
    record,
    config,
    onTransition: (from, to) => {
      if (from) add(Metrics.hostsByState, { state: from }, -1);
      add(Metrics.hostsByState, { state: to });
      add(Metrics.stateTransitions, { from: from ?? "", to });
    },
  };

  const queue = new WorkQueue<PhysicalHost>({
    name: "physicalhost",
    concurrency: config.maxConcurrentReconciles,
    groupConcurrency: config.maxReconcilesPerBMC,
    groupOf: host => host.spec?.redfishConnection?.address,
    backoffBaseMs: config.errorBackoffBaseMs,
    backoffMaxMs: config.errorBackoffMaxMs,
    fetch: (namespace, name) =>
      orUndefinedIfGone(kube.get<PhysicalHost>(hostPath(namespace, name))),
    reconcile: host => reconcileHost(host, deps),
    fingerprint: reconcileFingerprint,
    // Hosts registered together would otherwise have their power checks in one burst forever.
    requeueJitter: 0.1,
    onError: (host, err, failures, retryInMs) =>
      log.warn(
        {
          host: host.metadata?.name,
          namespace: host.metadata?.namespace,
          failures,
          retryInMs,
          err: describeError(err),
        },
        "reconcile failed",
      ),
    onRun: (host, ms, ok) => {
      add(Metrics.reconciles, { controller: "physicalhost", result: ok ? "success" : "error" });
      add(Metrics.reconcileMs, { controller: "physicalhost" }, ms);
      log.debug({ host: host.metadata?.name, ms, ok }, "reconciled");
    },
  });

  setInterval(() => {
    const stats = queue.stats();
    for (const k of ["ready", "active", "delayed"] as const) {
      set(Metrics.queueDepth, { controller: "physicalhost", kind: k }, stats[k]);
    }
  }, 5000).unref();

  const retries = new Set<string>();
  const finalize: FinalizeDeps = {
    connect,
    patchStatus,
    record,
    config,
    retryPending: key => retries.has(key),
    attempts: new Map(),
    running: new Set(),
    retryAfter: (host, delayMs, attempt) => {
      const key = host.metadata?.uid ?? `${host.metadata?.namespace}/${host.metadata?.name}`;
      retries.add(key);
      // Touching status is an update, and Pepr calls Finalize again on every update.
      setTimeout(() => {
        retries.delete(key);
        patchStatus(host, { errorCount: attempt }).catch(err =>
          log.warn(
            { host: host.metadata?.name, err: describeError(err) },
            "could not schedule a delete retry",
          ),
        );
      }, delayMs).unref();
    },
  };
  return { queue, finalize, secrets: new SecretIndex() };
}

/** A read that answers undefined for an object that does not exist. */
async function orUndefinedIfGone<T>(read: Promise<T>): Promise<T | undefined> {
  try {
    return await read;
  } catch (err) {
    if ((err as { status?: number }).status === 404) return undefined;
    throw err;
  }
}

const rt = (): Runtime => (runtime ??= start());

When(PhysicalHost)
  .IsCreatedOrUpdated()
  .Validate(req => admit(req, input => validatePhysicalHost(input, config.operatorUsernames)));

When(PhysicalHost)
  .IsCreatedOrUpdated()
  .Reconcile(async host => {
    rt().secrets.track(host);
    rt().queue.add(host);
  })
  .Finalize(host => finalizeHost(host, rt().finalize));

When(PhysicalHost)
  .IsDeleted()
  .Watch(host => {
    rt().queue.forget(host.metadata?.namespace, host.metadata?.name ?? "");
    rt().secrets.untrack(host.metadata?.namespace, host.metadata?.name ?? "");
    if (host.status?.state)
      add(Metrics.hostsByState, { state: host.status.state as HostStateName }, -1);
  });

// Credentials: a change to (or the deletion of) a labelled Secret re-reconciles the hosts that
// use it, so a fixed password takes effect without a restart. A Secret created after its host
// failed with SecretNotFound carries no label yet; that host retries on its error backoff.
function onSecret(deleted: boolean) {
  return (secret: a.Secret) => {
    const namespace = secret.metadata?.namespace;
    for (const name of rt().secrets.changed(secret, deleted))
      rt().queue.addAfter(namespace, name, 0);
  };
}

When(a.Secret).IsCreatedOrUpdated().WithLabel(Labels.bmcCredentials).Watch(onSecret(false));
When(a.Secret).IsDeleted().WithLabel(Labels.bmcCredentials).Watch(onSecret(true));
