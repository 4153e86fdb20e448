// PhysicalHost lifecycle against the real API server, the real operator (built module, webhooks
// included) and stateful test BMCs serving the captures in lab/captures/redfish-mockups.
import { K8s, kind } from "kubernetes-fluent-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { Annotations, ConditionType } from "../../../capabilities/api";
import { listMockups } from "../../../lab/bmc/mockup-store";
import { TestBmc, type TestBmcOptions } from "../../../lab/bmc/server";
import { createNamespace, createSecret, eventReasons, events, eventually } from "../support/kube";
import { CANARY_PASSWORD } from "../support/canary";
import { startOperator, type Operator } from "../support/operator";
import {
  capturedSystem,
  getHost,
  hostFor,
  inState,
  patchHost,
  pointer,
  waitForHost,
  waitGone,
} from "./support";

// The run's canary: each BMC's password starts with it, so the run-wide search covers them too.
const PASSWORD_MARK = CANARY_PASSWORD;

describe("PhysicalHost lifecycle", () => {
  let operator: Operator;
  let ns: string;
  const bmcs: TestBmc[] = [];

  async function bmc(mockup: string, opts: Partial<TestBmcOptions> = {}) {
    const b = await TestBmc.start({ mockup, password: `${PASSWORD_MARK}-${bmcs.length}`, ...opts });
    bmcs.push(b);
    return b;
  }

  beforeAll(async () => {
    operator = await startOperator();
    ns = await createNamespace("lifecycle");
  });

  afterAll(async () => {
    await operator?.stop();
    await Promise.all(bmcs.map(b => b.stop()));
  });

  it.each(listMockups())("enrolls %s to Available with the capture's inventory", async mockup => {
    const b = await bmc(mockup);
    const name = mockup
      .replace(/[^a-z0-9]+/g, "-")
      .slice(0, 40)
      .replace(/-$/, "");
    await hostFor(b, ns, name);
    const host = await waitForHost(ns, name, inState("Available"), "Available");
    const system = capturedSystem(mockup);
    const hw = host.status?.hardwareDetails;
    expect(hw?.manufacturer).toBe(system.Manufacturer);
    expect(hw?.model).toBe(system.Model);
    if (system.SerialNumber) expect(hw?.serialNumber).toBe(system.SerialNumber);
    expect(host.status?.observedPowerState).toBe(system.PowerState);
    // What the BMC can boot the host with, for the machine controller's claims.
    const caps = hw?.bootCapabilities;
    expect(caps?.bootTargets).toEqual(
      (system.Boot as Record<string, unknown> | undefined)?.[
        "BootSourceOverrideTarget@Redfish.AllowableValues"
      ] ?? [],
    );
    expect(caps?.virtualMedia).toEqual(
      mockup.includes("bluefield") ? [] : expect.arrayContaining(["CD"]),
    );
    expect(host.status?.ready).toBe(true);
    expect(host.status?.conditions?.find(c => c.type === ConditionType.Ready)?.status).toBe("True");
    // Enrollment happens once; at rest a host costs one power-state read per check interval
    // (1.5 s here), not a re-enrollment. docs/benchmarks/physicalhost.md has the exact figures.
    expect(b.requests.total).toBeLessThanOrEqual(80);
    const atRest = b.requests.total;
    await new Promise(r => setTimeout(r, 3200));
    expect(b.requests.total - atRest).toBeLessThanOrEqual(4);
  });

  it("a wrong password gives Error(AuthenticationFailed); fixing the Secret recovers without a restart", async () => {
    const b = await bmc("nvidia-libredfish_lenovo_thinksystem-sr670-v2_xcc-2.83");
    await hostFor(b, ns, "wrong-pw");
    await createSecret(ns, "wrong-pw-bmc", { username: b.username, password: "not-the-password" });
    // The host may have enrolled with the first Secret already; a password change must be noticed.
    const failed = await waitForHost(
      ns,
      "wrong-pw",
      h => h.status?.errorReason === "AuthenticationFailed",
      "AuthenticationFailed",
    );
    expect(failed.status?.state).toBe("Error");
    expect(
      failed.status?.conditions?.find(c => c.type === ConditionType.CredentialsValid)?.status,
    ).toBe("False");
    expect(JSON.stringify(failed.status)).not.toContain("not-the-password");

    await createSecret(ns, "wrong-pw-bmc", { username: b.username, password: b.password });
    const fixed = await waitForHost(
      ns,
      "wrong-pw",
      inState("Available"),
      "Available after the fix",
    );
    expect(fixed.status?.errorReason).toBeUndefined();
    await eventReasons(ns, "wrong-pw", ["AuthenticationFailed", "Recovered"]);
  });

  it("a missing Secret gives Error(SecretNotFound); deleting a Secret in use does too", async () => {
    const b = await bmc("dmtf_public-rackmount1");
    await hostFor(b, ns, "secretless");
    await waitForHost(ns, "secretless", inState("Available"), "Available");
    await K8s(kind.Secret).InNamespace(ns).Delete("secretless-bmc");
    const host = await waitForHost(
      ns,
      "secretless",
      h => h.status?.errorReason === "SecretNotFound",
      "SecretNotFound",
    );
    expect(host.status?.state).toBe("Error");
    expect(host.status?.errorMessage).toContain("secretless-bmc");
    await createSecret(ns, "secretless-bmc", { username: b.username, password: b.password });
    await waitForHost(ns, "secretless", inState("Available"), "Available again");
  });

  it("a BMC that goes down and comes back: Error(BMCUnreachable), then Available again", async () => {
    const b = await bmc("nvidia-libredfish_supermicro_sys-821ge-tnhr-x13_bmc-11.01");
    await hostFor(b, ns, "flaky");
    await waitForHost(ns, "flaky", inState("Available"), "Available");
    await b.down();
    const down = await waitForHost(
      ns,
      "flaky",
      h => h.status?.errorReason === "BMCUnreachable",
      "BMCUnreachable",
    );
    expect(down.status?.conditions?.find(c => c.type === ConditionType.BMCReachable)?.status).toBe(
      "False",
    );
    await b.up();
    await waitForHost(ns, "flaky", inState("Available"), "Available after the BMC came back");
  });

  it("spec.online is enforced, also when the power drifts", async () => {
    const b = await bmc("nvidia-libredfish_hpe_proliant-dl385-gen10plus-v2_ilo5-2.72", {
      powerState: "Off",
    });
    await hostFor(b, ns, "online", { online: true });
    await eventually(async () => b.powerState() === "On", "the BMC to be powered on");
    b.setPowerState("Off"); // someone pressed the button
    await eventually(async () => b.powerState() === "On", "the drift to be corrected", 30_000);
    const host = await waitForHost(
      ns,
      "online",
      h => h.status?.observedPowerState === "On",
      "observed On",
    );
    expect(
      host.status?.conditions?.find(c => c.type === ConditionType.PowerStateSynced)?.status,
    ).toBe("True");
    expect(b.actionsOf("reset").filter(action => action.resetType === "On")).toHaveLength(2);
  });

  it("acts on the reboot annotation once and removes it", async () => {
    const b = await bmc("nvidia-libredfish_dell_poweredge-r750_idrac9-6.00.30", {
      powerState: "On",
    });
    await hostFor(b, ns, "reboot");
    await waitForHost(ns, "reboot", inState("Available"), "Available");
    await patchHost(ns, "reboot", [
      { op: "add", path: `/metadata/annotations`, value: { [Annotations.reboot]: "hard" } },
    ]);
    await waitForHost(
      ns,
      "reboot",
      h => !(Annotations.reboot in (h.metadata?.annotations ?? {})),
      "annotation removed",
    );
    await new Promise(r => setTimeout(r, 3000)); // several more power checks
    expect(b.actionsOf("reset").map(action => action.resetType)).toEqual(["ForceRestart"]);
  });

  it("paused and detached hosts get no BMC requests and keep their state; condition Detached while detached", async () => {
    const b = await bmc("dmtf_public-rackmount1");
    await hostFor(b, ns, "quiet");
    await waitForHost(ns, "quiet", inState("Available"), "Available");

    await patchHost(ns, "quiet", [
      { op: "add", path: "/metadata/annotations", value: { [Annotations.paused]: "" } },
    ]);
    await waitForHost(
      ns,
      "quiet",
      h =>
        h.status?.conditions?.some(c => c.type === ConditionType.Paused && c.status === "True") ??
        false,
      "Paused condition",
    );
    const before = b.requests.total;
    await new Promise(r => setTimeout(r, 4000)); // more than two power-check intervals
    expect(b.requests.total).toBe(before);
    expect((await getHost(ns, "quiet")).status?.state).toBe("Available");

    await patchHost(ns, "quiet", [
      { op: "replace", path: "/metadata/annotations", value: { [Annotations.detached]: "true" } },
    ]);
    await waitForHost(
      ns,
      "quiet",
      h =>
        h.status?.conditions?.some(c => c.type === ConditionType.Detached && c.status === "True") ??
        false,
      "Detached condition",
    );
    expect((await getHost(ns, "quiet")).status?.state).toBe("Available");
    const detached = b.requests.total;
    await new Promise(r => setTimeout(r, 4000));
    expect(b.requests.total).toBe(detached);

    await patchHost(ns, "quiet", [
      { op: "remove", path: `/metadata/annotations/${pointer(Annotations.detached)}` },
    ]);
    // Attached again: re-enrolled (the server may have been changed by hand), still Available.
    const host = await waitForHost(
      ns,
      "quiet",
      h =>
        h.status?.conditions?.some(
          c => c.type === ConditionType.Detached && c.status === "False",
        ) ?? false,
      "Detached=False after the annotation is removed",
    );
    expect(host.status?.state).toBe("Available");
    expect(b.requests.total).toBeGreaterThan(detached);
  });

  it("deleting an unclaimed host deprovisions it, then releases it", async () => {
    const b = await bmc("nvidia-libredfish_lenovo_thinksystem-sr670-v2_xcc-2.83", {
      powerState: "On",
    });
    await hostFor(b, ns, "delete-free");
    await waitForHost(ns, "delete-free", inState("Available"), "Available");
    await K8s(kind.Secret).InNamespace(ns).Get("delete-free-bmc");
    await K8s((await import("../../../capabilities/api")).PhysicalHost)
      .InNamespace(ns)
      .Delete("delete-free");
    await waitGone(ns, "delete-free");
    expect(b.powerState()).toBe("Off");
  });

  it("deleting a claimed host waits for its machine, unless forced", async () => {
    const { PhysicalHost } = await import("../../../capabilities/api");
    const b = await bmc("dmtf_public-rackmount1");
    await hostFor(b, ns, "delete-claimed");
    await waitForHost(ns, "delete-claimed", inState("Available"), "Available");
    await patchHost(ns, "delete-claimed", [
      {
        op: "add",
        path: "/spec/consumerRef",
        value: {
          apiVersion: "infrastructure.cluster.x-k8s.io/v1beta1",
          kind: "Beskar7Machine",
          name: "m-1",
        },
      },
    ]);
    await waitForHost(ns, "delete-claimed", inState("Claimed"), "Claimed");
    await K8s(PhysicalHost).InNamespace(ns).Delete("delete-claimed");
    await waitForHost(ns, "delete-claimed", inState("Deleting"), "Deleting (blocked)");
    await eventually(
      async () => (await events(ns, "delete-claimed")).some(e => e.reason === "DeletionBlocked"),
      "DeletionBlocked event",
    );
    await new Promise(r => setTimeout(r, 1500));
    expect((await getHost(ns, "delete-claimed")).metadata?.deletionTimestamp).toBeTruthy();

    await patchHost(ns, "delete-claimed", [{ op: "remove", path: "/spec/consumerRef" }]);
    await waitGone(ns, "delete-claimed");
  });

  it("deleting a host whose BMC is dead gives up after bounded attempts, with a warning", async () => {
    const { PhysicalHost } = await import("../../../capabilities/api");
    const b = await bmc("nvidia-libredfish_nvidia_bluefield3-dpu-bmc_openbmc");
    await hostFor(b, ns, "delete-dead");
    await waitForHost(ns, "delete-dead", inState("Available"), "Available");
    await b.down();
    await K8s(PhysicalHost).InNamespace(ns).Delete("delete-dead");
    await waitGone(ns, "delete-dead", 90_000);
    const reasons = await eventReasons(ns, "delete-dead", ["FinalizedWithoutCleanup"]);
    expect(reasons.filter(r => r === "DeprovisionFailed").length).toBe(2);
  });

  it("never logs a BMC password", () => {
    expect(operator.output()).not.toContain(PASSWORD_MARK);
  });
});
