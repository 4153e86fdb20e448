// The foundation's round trip: the built Pepr module, run by `npm run operator:local`'s script
// against the suite's kube-apiserver, (1) is called by the API server's own admission over TLS
// and denies a bad object, (2) sees an object created through the API server in its
// Watch/Reconcile binding and writes status back, and (3) removes its webhooks on exit.
import { K8s, kind } from "kubernetes-fluent-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { PhysicalHost } from "../../../capabilities/api";
import type { TestBmc } from "../../../lab/bmc/server";
import { createNamespace, createSecret, eventually, rejection } from "../support/kube";
import { scrapeMetrics, startOperator, type Operator } from "../support/operator";
import { startTestBmc } from "../support/test-bmc";

describe("operator:local against the real API server", () => {
  let operator: Operator;
  let bmc: TestBmc;
  let ns: string;

  beforeAll(async () => {
    bmc = await startTestBmc({ mockup: "dmtf_public-rackmount1" });
    operator = await startOperator();
    ns = await createNamespace("roundtrip");
    await createSecret(ns, "bmc", { username: bmc.username, password: bmc.password });
    await createSecret(ns, "bmc-ca", { "ca.crt": bmc.caPem! });
  });

  afterAll(async () => {
    await operator?.stop();
    await bmc?.stop();
  });

  it("registers its webhooks with the API server, pointed at a loopback TLS URL", async () => {
    for (const k of [kind.MutatingWebhookConfiguration, kind.ValidatingWebhookConfiguration]) {
      const config = await K8s(k).Get("pepr-beskar7");
      const url = config.webhooks?.[0]?.clientConfig.url ?? "";
      expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/(mutate|validate)\/[0-9a-f]{64}$/);
      expect(config.webhooks?.[0]?.clientConfig.caBundle).toBeTruthy();
    }
  });

  it("denies a bad object through the API server's admission call, naming the field", async () => {
    const denied = await rejection(
      K8s(PhysicalHost).Apply({
        metadata: { name: "bad", namespace: ns },
        spec: {
          redfishConnection: {
            address: "https://root:calvin@10.0.0.5/redfish/v1",
            credentialsSecretRef: "bmc",
          },
        },
      }),
    );
    expect(denied.message).toContain(
      'admission webhook "pepr-beskar7.pepr.dev" denied the request',
    );
    expect(denied.message).toContain("spec.redfishConnection.address: must not embed credentials");
    expect(denied.message).toContain("without a path");
    await expect(K8s(PhysicalHost).InNamespace(ns).Get("bad")).rejects.toMatchObject({
      status: 404,
    });
  });

  it("reconciles an object created through the API server and writes its status", async () => {
    await K8s(PhysicalHost).Apply({
      metadata: { name: "rack-1", namespace: ns },
      spec: {
        redfishConnection: {
          address: bmc.url.replace(/\/redfish\/v1\/?$/, ""),
          credentialsSecretRef: "bmc",
          caBundleSecretRef: "bmc-ca",
        },
      },
    });
    const host = await eventually(async () => {
      const h = await K8s(PhysicalHost).InNamespace(ns).Get("rack-1");
      return h.status?.state === "Available" && h;
    }, "rack-1 to become Available");
    expect(host.status?.hardwareDetails?.manufacturer).toBe("Contoso");
    expect(host.metadata?.finalizers).toContain("pepr.dev/finalizer");
    expect(operator.output()).not.toContain(bmc.password);
  });

  it("serves Prometheus metrics on the module's port", async () => {
    const scrape = () => scrapeMetrics(operator);
    // A reconcile is counted just after its status patch lands, so poll briefly.
    const body = await eventually(async () => {
      const text = await scrape();
      return (
        /pepr_beskar7_reconciles_total\{controller="physicalhost",result="success"\} [1-9]/.test(
          text,
        ) && text
      );
    }, "the reconcile counter");
    // Hosts by state count every host the API server has (other test files' included), as
    // they are: the gauge equals a listing.
    await eventually(async () => {
      const listed = (await K8s(PhysicalHost).Get()).items.filter(
        h => h.status?.state === "Available",
      ).length;
      const gauge = /pepr_beskar7_physicalhosts\{state="Available"\} (\d+)/.exec(await scrape());
      return listed > 0 && Number(gauge?.[1]) === listed;
    }, "the Available gauge to equal the Available hosts");
    expect(body).toMatch(/pepr_beskar7_bmc_requests_total\{operation="GET Systems"\} [1-9]/);
    expect(body).toContain("pepr_beskar7_bmc_request_duration_ms_total");
  });

  it("removes its webhook registrations when stopped", async () => {
    expect(await operator.stop()).toBe(0);
    for (const k of [kind.MutatingWebhookConfiguration, kind.ValidatingWebhookConfiguration]) {
      await expect(K8s(k).Get("pepr-beskar7")).rejects.toMatchObject({ status: 404 });
    }
  });
});
