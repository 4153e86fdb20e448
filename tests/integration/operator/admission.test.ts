// Admission for every kind, through the API server with the module's webhooks registered: every
// bad input the API issue lists is rejected with a message naming the field (by the CRD's own
// validation where it needs no logic, by the webhook where it does), defaults that need logic are
// written, and the rules that need the request's user or the object's status are enforced.
import { K8s } from "kubernetes-fluent-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import {
  Beskar7Cluster,
  Beskar7Machine,
  Beskar7MachineTemplate,
  PhysicalHost,
} from "../../../capabilities/api";
import { createNamespace, kubectl, rejection } from "../support/kube";
import { startOperator, type Operator } from "../support/operator";

const WEBHOOK = 'admission webhook "pepr-beskar7.pepr.dev" denied the request';
const GV = "infrastructure.cluster.x-k8s.io/v1beta1";

describe("admission through the API server", () => {
  let operator: Operator;
  let ns: string;

  beforeAll(async () => {
    operator = await startOperator();
    ns = await createNamespace("admission");
  });
  afterAll(async () => {
    await operator?.stop();
  });

  const host = (name: string, redfishConnection: Record<string, unknown>) => ({
    apiVersion: GV,
    kind: "PhysicalHost",
    metadata: { name, namespace: ns },
    spec: { redfishConnection: { credentialsSecretRef: "bmc", ...redfishConnection } },
  });
  const machine = (name: string, spec: Record<string, unknown>) => ({
    apiVersion: GV,
    kind: "Beskar7Machine",
    metadata: { name, namespace: ns },
    spec,
  });

  const bad: Array<[string, () => Promise<unknown>, string[]]> = [
    [
      "a BMC address with embedded credentials",
      () =>
        K8s(PhysicalHost).Apply(
          host("h1", { address: "https://root:calvin@127.0.0.1:9" }) as never,
        ),
      [WEBHOOK, "spec.redfishConnection.address", "must not embed credentials"],
    ],
    [
      "a BMC address with a path",
      () =>
        K8s(PhysicalHost).Apply(host("h2", { address: "https://127.0.0.1:9/redfish/v1" }) as never),
      [WEBHOOK, "spec.redfishConnection.address", "without a path"],
    ],
    [
      "a BMC address that is not a URL",
      () => K8s(PhysicalHost).Apply(host("h3", { address: "127.0.0.1:9" }) as never),
      ["spec.redfishConnection.address"],
    ],
    [
      "an http BMC address without the opt-in",
      () => K8s(PhysicalHost).Apply(host("h4", { address: "http://127.0.0.1:9" }) as never),
      ["spec.redfishConnection.address", "allowInsecureHTTP"],
    ],
    [
      "an empty credentials reference",
      () =>
        K8s(PhysicalHost).Apply(
          host("h5", { address: "https://127.0.0.1:9", credentialsSecretRef: "" }) as never,
        ),
      ["spec.redfishConnection.credentialsSecretRef"],
    ],
    [
      "insecureSkipVerify with a CA bundle",
      () =>
        K8s(PhysicalHost).Apply(
          host("h6", {
            address: "https://127.0.0.1:9",
            insecureSkipVerify: true,
            caBundleSecretRef: "ca",
          }) as never,
        ),
      ["insecureSkipVerify"],
    ],
    [
      // configURL is optional (the OS then reads the bootstrap data); osFamily is not.
      "RemoteConfig without osFamily",
      () =>
        K8s(Beskar7Machine).Apply(
          machine("m1", {
            provisioningMode: "RemoteConfig",
            configURL: "https://cfg.example/k.yaml",
            imageURL: "https://img.example/k.iso",
          }) as never,
        ),
      ["osFamily"],
    ],
    [
      "PXE without its image URLs",
      () => K8s(Beskar7Machine).Apply(machine("m2", { provisioningMode: "PXE" }) as never),
      ["inspectionImageURL", "targetImageURL"],
    ],
    [
      "hardware requirements below 1",
      () =>
        K8s(Beskar7Machine).Apply(
          machine("m3", {
            imageURL: "https://img.example/a.iso",
            hardwareRequirements: { minCPUCores: 0 },
          }) as never,
        ),
      ["minCPUCores"],
    ],
    [
      "an image URL with another scheme",
      () =>
        K8s(Beskar7Machine).Apply(machine("m4", { imageURL: "ftp://img.example/a.iso" }) as never),
      ["imageURL"],
    ],
    [
      "a providerID in a template",
      () =>
        K8s(Beskar7MachineTemplate).Apply({
          apiVersion: GV,
          kind: "Beskar7MachineTemplate",
          metadata: { name: "t1", namespace: ns },
          spec: {
            template: {
              spec: { imageURL: "https://img.example/a.iso", providerID: "beskar7://x" },
            },
          },
        } as never),
      ["providerID"],
    ],
    [
      "an endpoint port outside 1-65535",
      () =>
        K8s(Beskar7Cluster).Apply({
          apiVersion: GV,
          kind: "Beskar7Cluster",
          metadata: { name: "c1", namespace: ns },
          spec: { controlPlaneEndpoint: { host: "10.0.0.10", port: 70000 } },
        } as never),
      ["port"],
    ],
    [
      "an endpoint host that is no DNS name or IP",
      () =>
        K8s(Beskar7Cluster).Apply({
          apiVersion: GV,
          kind: "Beskar7Cluster",
          metadata: { name: "c2", namespace: ns },
          spec: { controlPlaneEndpoint: { host: "not a host!", port: 6443 } },
        } as never),
      ["controlPlaneEndpoint.host"],
    ],
  ];

  it.each(bad)("rejects %s, naming the field", async (_what, create, expected) => {
    const { message } = await rejection(create());
    for (const part of expected) expect(message).toContain(part);
  });

  it("infers the provisioning mode and the endpoint port", async () => {
    const created = await K8s(Beskar7Machine).Apply(
      machine("inferred", {
        osFamily: "kairos",
        imageURL: "https://img.example/k.iso",
        configURL: "https://cfg.example/k.yaml",
      }) as never,
    );
    expect(created.spec?.provisioningMode).toBe("RemoteConfig");
    const cluster = await K8s(Beskar7Cluster).Apply({
      apiVersion: GV,
      kind: "Beskar7Cluster",
      metadata: { name: "endpoint", namespace: ns },
      spec: { controlPlaneEndpoint: { host: "10.0.0.10" } },
    } as never);
    expect(cluster.spec?.controlPlaneEndpoint?.port).toBe(6443);
  });

  it("lets only the operator write a host's consumerRef", async () => {
    await K8s(PhysicalHost).Apply(host("claimable", { address: "https://127.0.0.1:9" }) as never);
    const patch = JSON.stringify({
      spec: { consumerRef: { apiVersion: GV, kind: "Beskar7Machine", name: "mine" } },
    });
    const asUser = await kubectl([
      "-n",
      ns,
      "patch",
      "physicalhost",
      "claimable",
      "--type=merge",
      "-p",
      patch,
      "--as=alice",
      "--as-group=system:masters",
    ]);
    expect(asUser.code).not.toBe(0);
    expect(asUser.stderr).toContain(WEBHOOK);
    expect(asUser.stderr).toContain("spec.consumerRef: is written only by the Beskar7 operator");
    // The operator's identity (here the suite's admin, as operator:local registers it) may.
    const asOperator = await kubectl([
      "-n",
      ns,
      "patch",
      "physicalhost",
      "claimable",
      "--type=merge",
      "-p",
      patch,
    ]);
    expect(asOperator.stderr).toBe("");
    expect(asOperator.code).toBe(0);
  });

  it("fixes a claimed host's BMC address", async () => {
    const { message } = await rejection(
      K8s(PhysicalHost, { namespace: ns, name: "claimable" }).Patch([
        { op: "replace", path: "/spec/redfishConnection/address", value: "https://127.0.0.2:9" },
      ]),
    );
    expect(message).toContain(WEBHOOK);
    expect(message).toContain(
      "spec.redfishConnection.address: cannot change while the host is claimed",
    );
  });

  it("fixes a machine's spec once it holds a host, but still takes its providerID", async () => {
    await K8s(Beskar7Machine).Apply(
      machine("holder", { imageURL: "https://img.example/a.iso" }) as never,
    );
    await K8s(Beskar7Machine).PatchStatus({
      metadata: { name: "holder", namespace: ns },
      status: { hostRef: { name: "claimable" } },
    } as never);
    const { message } = await rejection(
      K8s(Beskar7Machine, { namespace: ns, name: "holder" }).Patch([
        { op: "replace", path: "/spec/imageURL", value: "https://img.example/b.iso" },
      ]),
    );
    expect(message).toContain(WEBHOOK);
    expect(message).toContain("spec.imageURL: cannot change once host claimable is claimed for it");
    const withId = await K8s(Beskar7Machine, { namespace: ns, name: "holder" }).Patch([
      { op: "add", path: "/spec/providerID", value: "beskar7://admission/claimable" },
    ]);
    expect(withId.spec?.providerID).toBe("beskar7://admission/claimable");
  });

  it("keeps templates immutable", async () => {
    await K8s(Beskar7MachineTemplate).Apply({
      apiVersion: GV,
      kind: "Beskar7MachineTemplate",
      metadata: { name: "fixed", namespace: ns },
      spec: { template: { spec: { imageURL: "https://img.example/a.iso" } } },
    } as never);
    const { message } = await rejection(
      K8s(Beskar7MachineTemplate, { namespace: ns, name: "fixed" }).Patch([
        { op: "replace", path: "/spec/template/spec/imageURL", value: "https://img.example/b.iso" },
      ]),
    );
    expect(message).toContain(WEBHOOK);
    expect(message).toContain("spec.template: is immutable");
  });

  it("approves objects being deleted, so finalizers can be removed", async () => {
    await K8s(PhysicalHost).Apply({
      ...host("leaving", { address: "https://127.0.0.1:9" }),
      metadata: { name: "leaving", namespace: ns, finalizers: ["example.com/hold"] },
    } as never);
    await K8s(PhysicalHost).InNamespace(ns).Delete("leaving");
    // Removing the last finalizer is an update of an object being deleted: never denied.
    await K8s(PhysicalHost, { namespace: ns, name: "leaving" }).Patch([
      { op: "replace", path: "/metadata/finalizers", value: [] },
    ]);
    await expect(K8s(PhysicalHost).InNamespace(ns).Get("leaving")).rejects.toMatchObject({
      status: 404,
    });
  });
});
