// The controller runtime under the PhysicalHost controller, against the real API server, the real
// operator and test BMCs: deletion through the work queue (an operator restart during a delete's
// backoff, a reconcile in flight when the deletion arrives, an API error at the first write of
// deletion, credentials gone with the host), one BMC identity (two spellings of one address are
// one BMC; hosts without systemId on a multi-system BMC touch no system), and the hosts-by-state
// metric after deletions and after a restart.
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { K8s, kind } from "kubernetes-fluent-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { Annotations, PhysicalHost } from "../../../capabilities/api";
import { PEPR_FINALIZER } from "../../../capabilities/lib/runtime";
import { multiSystemMockup } from "../../../lab/bmc/multi-system";
import type { TestBmc, TestBmcOptions } from "../../../lab/bmc/server";
import { generateTls } from "../../../lab/bmc/tls";
import { createNamespace, eventReasons, eventually } from "../support/kube";
import { startTestBmc } from "../support/test-bmc";
import { scrapeMetrics, startOperator, type Operator } from "../support/operator";
import { getHost, hostFor, inState, patchHost, waitForHost, waitGone } from "./support";

/** Delete retries a minute apart: a restart lands in the middle of the backoff. */
const SLOW_DELETE_RETRIES = {
  BESKAR7_ERROR_BACKOFF_BASE_MS: "60000",
  BESKAR7_ERROR_BACKOFF_MAX_MS: "60000",
};

describe("PhysicalHost on the controller runtime", () => {
  let operator: Operator;
  let ns: string;
  const bmcs: TestBmc[] = [];

  async function bmc(mockup: string, opts: Partial<TestBmcOptions> = {}): Promise<TestBmc> {
    const b = await startTestBmc({ mockup, ...opts });
    bmcs.push(b);
    return b;
  }

  const deleteHost = (name: string) => K8s(PhysicalHost).InNamespace(ns).Delete(name);

  beforeAll(async () => {
    operator = await startOperator();
    ns = await createNamespace("runtime");
  });

  afterAll(async () => {
    await operator?.stop();
    await Promise.all(bmcs.map(b => b.stop()));
  });

  it("counts hosts by state as they are, after deletions and after a restart", async () => {
    for (const name of ["count-1", "count-2", "count-3"]) {
      await hostFor(await bmc("dmtf_public-rackmount1"), ns, name);
      await waitForHost(ns, name, inState("Available"), "Available");
    }
    await metricsMatchHosts(operator);
    await deleteHost("count-3");
    await waitGone(ns, "count-3");
    const afterDelete = await metricsMatchHosts(operator);
    expect(afterDelete.Deleting ?? 0).toBe(0); // never negative, never left behind

    await operator.stop();
    operator = await startOperator();
    const afterRestart = await metricsMatchHosts(operator);
    expect(afterRestart.Available).toBeGreaterThanOrEqual(2);
  });

  it("a restart during a delete's backoff: the new operator finalizes the host with nobody touching it", async () => {
    const b = await bmc("nvidia-libredfish_dell_poweredge-r750_idrac9-6.00.30", {
      powerState: "On",
    });
    await hostFor(b, ns, "restart-delete");
    await waitForHost(ns, "restart-delete", inState("Available"), "Available");

    await operator.stop();
    operator = await startOperator(SLOW_DELETE_RETRIES);
    await b.down();
    await deleteHost("restart-delete");
    await eventReasons(ns, "restart-delete", ["DeprovisionFailed"]);
    // The next attempt is 30 to 60 s away. The operator stops and the BMC comes back meanwhile.
    await operator.stop();
    await b.up();
    const host = await getHost(ns, "restart-delete");
    expect(host.metadata?.finalizers).toContain(PEPR_FINALIZER);
    expect(host.status?.errorCount).toBe(1);

    operator = await startOperator();
    await waitGone(ns, "restart-delete", 30_000);
    expect(b.powerState()).toBe("Off");
  });

  it("a reconcile in flight when the host is deleted runs no BMC action after the deletion is seen", async () => {
    const b = await bmc("dmtf_public-rackmount1", { powerState: "On" });
    await hostFor(b, ns, "inflight");
    await waitForHost(ns, "inflight", inState("Available"), "Available");
    b.latencyMs = 1500;
    const before = b.requests.total;
    // The reboot reads the power state (1.5 s at this BMC), then resets the server...
    await patchHost(ns, "inflight", [
      { op: "add", path: "/metadata/annotations", value: { [Annotations.reboot]: "hard" } },
    ]);
    await eventually(async () => b.requests.total > before, "the reboot's first BMC request");
    // ...but the deletion arrives while that read is in flight.
    await deleteHost("inflight");
    await waitGone(ns, "inflight", 60_000);
    expect(b.actionsOf("reset").filter(a => a.resetType === "ForceRestart")).toEqual([]);
    expect(b.powerState()).toBe("Off"); // finalize ran its own cleanup
  });

  it("an API error at the first write of deletion leaves the finalizer; the cleanup is done on the next try", async () => {
    const b = await bmc("nvidia-libredfish_lenovo_thinksystem-sr670-v2_xcc-2.83", {
      powerState: "On",
    });
    await hostFor(b, ns, "api-error");
    await waitForHost(ns, "api-error", inState("Available"), "Available");
    const webhook = await statusWriteBlocker(ns);
    try {
      await deleteHost("api-error");
      await eventually(async () => webhook.denied >= 2, "status writes of the deletion refused");
      const held = await getHost(ns, "api-error");
      expect(held.metadata?.finalizers).toContain(PEPR_FINALIZER);
      expect(b.powerState()).toBe("On"); // nothing done before the first write landed
      webhook.allow();
      await waitGone(ns, "api-error", 30_000);
      expect(b.powerState()).toBe("Off");
    } finally {
      await webhook.close();
    }
  });

  it("credentials gone with the host: finalized at once, saying no BMC cleanup was possible", async () => {
    const b = await bmc("dmtf_public-rackmount1", { powerState: "On" });
    await hostFor(b, ns, "no-secret");
    await waitForHost(ns, "no-secret", inState("Available"), "Available");
    await K8s(kind.Secret).InNamespace(ns).Delete("no-secret-bmc");
    const started = Date.now();
    await deleteHost("no-secret");
    await waitGone(ns, "no-secret", 30_000);
    // No retries spaced by backoff first (3 attempts would take seconds even with FAST_ENV).
    expect(Date.now() - started).toBeLessThan(15_000);
    const reasons = await eventReasons(ns, "no-secret", ["FinalizedWithoutCleanup"]);
    expect(reasons).not.toContain("DeprovisionFailed");
  });

  it("https://127.0.0.1:N and HTTPS://127.0.0.1:N/ are one BMC: one session, one reconcile at a time", async () => {
    const b = await bmc(multiSystemMockup("dmtf_public-rackmount1", ["Blade1", "Blade2"]), {
      latencyMs: 300,
    });
    const spellings = [b.url, `${b.url.replace("https://", "HTTPS://")}/`];
    await Promise.all(
      ["Blade1", "Blade2"].map((systemId, i) =>
        hostFor(b, ns, `blade-${i + 1}`, {
          redfishConnection: {
            address: spellings[i]!,
            systemId,
            credentialsSecretRef: `blade-${i + 1}-bmc`,
          },
        }),
      ),
    );
    for (const name of ["blade-1", "blade-2"]) {
      await waitForHost(ns, name, inState("Available"), "Available", 90_000);
    }
    expect((await getHost(ns, "blade-1")).status?.hardwareDetails).toBeDefined();
    expect(b.activeSessions).toBe(1);
    expect(b.maxConcurrentSystems).toBe(1);
  });

  it("two hosts without systemId on a multi-system BMC: SystemSelection on both, no system touched", async () => {
    const b = await bmc(multiSystemMockup("dmtf_public-rackmount1", ["Blade1", "Blade2"]));
    await hostFor(b, ns, "chassis-a");
    await hostFor(b, ns, "chassis-b");
    for (const name of ["chassis-a", "chassis-b"]) {
      const host = await waitForHost(ns, name, inState("Error"), "Error");
      expect(host.status?.errorReason).toBe("SystemSelection");
      expect(host.status?.errorMessage).toContain("Blade1");
      expect(host.status?.errorMessage).toContain("Blade2");
    }
    expect(b.requests.count({ path: /\/Systems\/Blade/ })).toBe(0);
    expect(b.actions.filter(a => a.kind !== "session-create")).toEqual([]);
  });
});

/** Scrapes the operator's metrics until the by-state gauge equals a listing of every host. */
async function metricsMatchHosts(operator: Operator): Promise<Record<string, number>> {
  let last = "";
  return eventually<Record<string, number>>(
    async () => {
      const hosts = await K8s(PhysicalHost).Get();
      const listed: Record<string, number> = {};
      for (const h of hosts.items) {
        const state = h.status?.state;
        if (state) listed[state] = (listed[state] ?? 0) + 1;
      }
      const scraped = byState(await scrapeMetrics(operator));
      last = JSON.stringify({ listed, scraped });
      return JSON.stringify(sortKeys(listed)) === JSON.stringify(sortKeys(scraped)) && scraped;
    },
    "the hosts-by-state gauge to match the hosts",
    30_000,
  ).catch((err: Error) => {
    throw new Error(`${err.message}: ${last}`);
  });
}

function byState(metrics: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of metrics.matchAll(
    /^pepr_beskar7_physicalhosts\{state="([^"]+)"\} (-?[\d.]+)$/gm,
  )) {
    const n = Number(m[2]);
    if (n !== 0) out[m[1]!] = n;
  }
  return out;
}

const sortKeys = (o: Record<string, number>) =>
  Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));

/**
 * A validating webhook, registered with the API server, that refuses every status write of a
 * PhysicalHost being deleted in one namespace until allow() is called: an API error at the first
 * write of deletion, made by the real API server.
 */
async function statusWriteBlocker(namespace: string): Promise<{
  denied: number;
  allow(): void;
  close(): Promise<void>;
}> {
  const tls = generateTls("beskar7-test-webhook");
  let allowed = false;
  const state = { denied: 0 };
  const server: Server = createServer({ key: tls.keyPem, cert: tls.certPem }, (req, res) => {
    let body = "";
    req.on("data", d => (body += d));
    req.on("end", () => {
      const review = JSON.parse(body) as {
        request: { uid: string; object?: { metadata?: { deletionTimestamp?: string } } };
      };
      const deny = !allowed && !!review.request.object?.metadata?.deletionTimestamp;
      if (deny) state.denied++;
      res.setHeader("Content-Type", "application/json");
      res.end(
        JSON.stringify({
          apiVersion: "admission.k8s.io/v1",
          kind: "AdmissionReview",
          response: {
            uid: review.request.uid,
            allowed: !deny,
            ...(deny ? { status: { code: 500, message: "injected: status write refused" } } : {}),
          },
        }),
      );
    });
  });
  await new Promise<void>(r => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  const name = `beskar7-test-block-${namespace}`;
  await K8s(kind.ValidatingWebhookConfiguration).Apply({
    metadata: { name },
    webhooks: [
      {
        name: "block.test.beskar7.dev",
        admissionReviewVersions: ["v1"],
        sideEffects: "None",
        failurePolicy: "Fail",
        timeoutSeconds: 5,
        clientConfig: {
          url: `https://127.0.0.1:${port}/`,
          caBundle: Buffer.from(tls.certPem).toString("base64"),
        },
        namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": namespace } },
        rules: [
          {
            apiGroups: ["infrastructure.cluster.x-k8s.io"],
            apiVersions: ["*"],
            operations: ["UPDATE"],
            resources: ["physicalhosts/status"],
          },
        ],
      },
    ],
  });
  // The API server picks up a new webhook configuration within a moment.
  await new Promise(r => setTimeout(r, 1500));
  return {
    get denied() {
      return state.denied;
    },
    allow: () => {
      allowed = true;
    },
    close: async () => {
      await K8s(kind.ValidatingWebhookConfiguration)
        .Delete(name)
        .catch(() => undefined);
      await new Promise<void>(r => server.close(() => r()));
    },
  };
}
