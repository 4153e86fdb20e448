// Provisioning actions a claim asks for, executed by the real operator against test BMCs and
// sushy-tools: virtual-media and network boots, release, and an operator crash in the middle of a
// provisioning sequence that must resume without repeating a done step or skipping a pending one.
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { startSushy, type SushyEmulator } from "../../../lab/bmc/sushy";
import type { TestBmc, TestBmcOptions } from "../../../lab/bmc/server";
import { createNamespace, createSecret, eventReasons, eventually } from "../support/kube";
import { startTestBmc } from "../support/test-bmc";
import { startOperator, type Operator } from "../support/operator";
import { claimHost, hostFor, inState, releaseHost, waitForHost } from "./support";

describe("PhysicalHost provisioning", () => {
  let operator: Operator;
  let ns: string;
  const bmcs: TestBmc[] = [];
  let sushy: SushyEmulator | undefined;

  async function bmc(mockup: string, opts: Partial<TestBmcOptions> = {}) {
    const b = await startTestBmc({ mockup, ...opts });
    bmcs.push(b);
    return b;
  }

  beforeAll(async () => {
    operator = await startOperator();
    ns = await createNamespace("provisioning");
  });

  afterAll(async () => {
    await operator?.stop();
    await Promise.all(bmcs.map(b => b.stop()));
    await sushy?.stop();
  });

  it("boots an ISO plus a config medium over virtual media, then deprovisions on release", async () => {
    const b = await bmc("nvidia-libredfish_dell_poweredge-r750_idrac9-6.00.30", {
      powerState: "On",
    });
    await hostFor(b, ns, "vmedia");
    await waitForHost(ns, "vmedia", inState("Available"), "Available");
    const iso = "http://127.0.0.1:8080/kairos.iso";
    const config = "http://127.0.0.1:8080/config.img";
    await claimHost(ns, "vmedia", {
      mode: "VirtualMedia",
      bootISO: iso,
      configMediaURL: config,
      bootMode: "UEFI",
    });

    const host = await waitForHost(ns, "vmedia", inState("Provisioned"), "Provisioned");
    expect(host.status?.provisioning?.completedSteps?.map(s => s.step)).toEqual([
      "PowerOff",
      "EjectMedia",
      "InsertBootMedia",
      "InsertConfigMedia",
      "SetBootOverride",
      "PowerOn",
    ]);
    expect(
      b
        .insertedMedia()
        .map(s => s.image)
        .sort(),
    ).toEqual([config, iso].sort());
    expect(b.powerState()).toBe("On");
    expect(b.lastBoot?.media).toBe(iso);
    expect(
      b
        .actionsOf("insert")
        .map(a => a.image)
        .sort(),
    ).toEqual([config, iso].sort());
    expect(b.actionsOf("reset").map(a => a.resetType)).toEqual(["ForceOff", "On"]);

    await releaseHost(ns, "vmedia");
    const free = await waitForHost(ns, "vmedia", inState("Available"), "Available after release");
    expect(free.status?.provisioning).toBeUndefined();
    expect(b.insertedMedia()).toEqual([]);
    expect(b.powerState()).toBe("Off");
    expect(b.bootOverride().BootSourceOverrideEnabled).toBe("Disabled");
    await eventReasons(ns, "vmedia", [
      "Claimed",
      "ProvisioningStarted",
      "Provisioned",
      "Released",
      "Deprovisioned",
    ]);
  });

  it("a network boot waits for the boot service, with a condition and no BMC action, when it is not configured", async () => {
    // The network boot itself (UEFI HTTP boot of the URI, the iPXE script, the report) runs with
    // the boot service in tests/integration/boot/end-to-end.test.ts.
    const b = await bmc("nvidia-libredfish_nvidia_bluefield3-dpu-bmc_openbmc", {
      powerState: "Off",
    });
    await hostFor(b, ns, "httpboot");
    await waitForHost(ns, "httpboot", inState("Available"), "Available");
    await claimHost(ns, "httpboot", {
      mode: "Network",
      networkBootTarget: "UefiHttp",
      httpBootURI: "http://127.0.0.1:8080/ipxe.efi",
      bootMode: "UEFI",
    });
    const host = await waitForHost(
      ns,
      "httpboot",
      h => h.status?.conditions?.some(c => c.reason === "BootServiceNotConfigured") ?? false,
      "BootServiceNotConfigured",
    );
    expect(host.status?.state).toBe("Claimed");
    expect(host.status?.conditions?.find(c => c.type === "BootDelivered")?.message).toContain(
      "BESKAR7_BOOT_URL",
    );
    expect(b.actionsOf("reset")).toEqual([]);
    expect(b.actionsOf("boot")).toEqual([]);
  });

  it("resumes a provisioning sequence after an operator crash, doing each BMC action once", async () => {
    // Latency stretches each step to seconds, so the crash lands mid-sequence.
    const b = await bmc("nvidia-libredfish_supermicro_sys-821ge-tnhr-x13_bmc-11.01", {
      powerState: "On",
      latencyMs: 250,
    });
    await hostFor(b, ns, "crash");
    await waitForHost(ns, "crash", inState("Available"), "Available", 90_000);
    const iso = "http://127.0.0.1:8080/talos.iso";
    await claimHost(ns, "crash", { mode: "VirtualMedia", bootISO: iso });
    const midway = await waitForHost(
      ns,
      "crash",
      h => (h.status?.provisioning?.completedSteps?.length ?? 0) >= 2,
      "two steps done",
      90_000,
    );
    await operator.kill();
    const doneAtCrash = midway.status!.provisioning!.completedSteps!.length;
    expect(doneAtCrash).toBeLessThan(5);

    operator = await startOperator();
    const host = await waitForHost(
      ns,
      "crash",
      inState("Provisioned"),
      "Provisioned after restart",
      90_000,
    );
    const steps = host.status?.provisioning?.completedSteps?.map(s => s.step);
    expect(steps).toEqual([
      "PowerOff",
      "EjectMedia",
      "InsertBootMedia",
      "SetBootOverride",
      "PowerOn",
    ]);
    expect(b.actionsOf("insert").filter(a => a.image === iso)).toHaveLength(1);
    expect(b.actionsOf("reset").map(a => a.resetType)).toEqual(["ForceOff", "On"]);
    // Supermicro boots virtual media as UsbCd (REDFISH-QUIRKS.md, Supermicro boot override).
    expect(b.lastBoot?.media).toBe(iso);
  });

  it("enrolls a host served by sushy-tools, a Redfish implementation nobody here wrote", async () => {
    sushy = await startSushy({ tls: true });
    await createSecret(ns, "sushy-bmc", { username: sushy.username, password: sushy.password });
    await createSecret(ns, "sushy-ca", { "ca.crt": sushy.caPem! });
    const { K8s } = await import("kubernetes-fluent-client");
    const { PhysicalHost } = await import("../../../capabilities/api");
    await K8s(PhysicalHost).Apply({
      metadata: { name: "sushy", namespace: ns },
      spec: {
        redfishConnection: {
          address: sushy.url.replace(/\/redfish\/v1\/?$/, ""),
          credentialsSecretRef: "sushy-bmc",
          caBundleSecretRef: "sushy-ca",
        },
      },
    });
    const host = await waitForHost(ns, "sushy", inState("Available"), "Available", 90_000);
    const mac = sushy.systems[0]!.nics[0]!.mac.toLowerCase();
    expect(host.status?.hardwareDetails?.nics?.map(n => n.macAddress)).toContain(mac);
    expect(host.status?.observedPowerState).toBe(sushy.systems[0]!.powerState);
    await eventually(
      async () => !operator.output().includes(sushy!.password),
      "no password in logs",
    );
  });
});
