import { describe, expect, it } from "vitest";

import {
  HostState,
  type HostProvisioning,
  type HostStateName,
  type PhysicalHost,
  type PhysicalHostStatus,
  type ProvisioningStepName,
} from "../../../capabilities/api";
import { BmcFailure, toBmcFailure } from "../../../capabilities/physical-host/bmc";
import { CredentialsError } from "../../../capabilities/physical-host/credentials";
import {
  HostStateTable,
  classify,
  defaultHostControllerConfig,
  failure,
  inventoryStatus,
  provisioningPlan,
  runStep,
  settledState,
  type HostContext,
} from "../../../capabilities/physical-host/states";
import {
  BmcAuthenticationError,
  BmcRejectedError,
  BmcServerError,
  BmcTlsError,
  BmcUnreachableError,
} from "../../../redfish";
import { FakeBmc, sampleInventory } from "./fake-bmc";
import { BOOT_ISO, CONFIG_ISO, CONSUMER, NOW, makeHost } from "./helpers";

const config = defaultHostControllerConfig;
const VM: HostProvisioning = { mode: "VirtualMedia", bootISO: BOOT_ISO };
const VM_CONFIG: HostProvisioning = { ...VM, configMediaURL: CONFIG_ISO };
const PXE: HostProvisioning = { mode: "Network", networkBootTarget: "Pxe" };
const HTTP_BOOT: HostProvisioning = {
  mode: "Network",
  networkBootTarget: "UefiHttp",
  httpBootURI: "http://pxe.example.com/ipxe.efi",
};

const steps = (...names: ProvisioningStepName[]) =>
  names.map((step, i) => ({ step, completedTime: new Date(NOW.getTime() - i).toISOString() }));

function ctx(host: PhysicalHost, bmc = new FakeBmc()): HostContext & { connects: () => number } {
  let connects = 0;
  return {
    host,
    now: NOW,
    config,
    bmc: async () => {
      connects++;
      return bmc;
    },
    connects: () => connects,
  };
}

describe("provisioningPlan", () => {
  it("virtual media: power off, eject, insert the ISO, override, power on", () => {
    expect(provisioningPlan(VM)).toEqual([
      "PowerOff",
      "EjectMedia",
      "InsertBootMedia",
      "SetBootOverride",
      "PowerOn",
    ]);
  });

  it("virtual media with a config image inserts it after the ISO, before the override", () => {
    expect(provisioningPlan(VM_CONFIG)).toEqual([
      "PowerOff",
      "EjectMedia",
      "InsertBootMedia",
      "InsertConfigMedia",
      "SetBootOverride",
      "PowerOn",
    ]);
  });

  it.each([PXE, HTTP_BOOT])("network: no media inserted", request => {
    expect(provisioningPlan(request)).toEqual([
      "PowerOff",
      "EjectMedia",
      "SetBootOverride",
      "PowerOn",
    ]);
  });
});

describe("settledState", () => {
  const withProgress = (
    spec: Partial<NonNullable<PhysicalHost["spec"]>>,
    provisioning?: PhysicalHostStatus["provisioning"],
  ) => makeHost({ spec, status: { state: HostState.Error, provisioning } });

  it("is Available for a free host with no progress", () => {
    expect(settledState(makeHost())).toBe(HostState.Available);
    expect(settledState(withProgress({}, { completedSteps: [] }))).toBe(HostState.Available);
  });

  it("is Deprovisioning for a free host with leftover progress", () => {
    expect(settledState(withProgress({}, { completedSteps: steps("PowerOff") }))).toBe(
      HostState.Deprovisioning,
    );
    expect(settledState(withProgress({}, { currentStep: "PowerOff" }))).toBe(
      HostState.Deprovisioning,
    );
  });

  it("is Claimed for a claimed host without a request or with an unfinished plan", () => {
    expect(settledState(withProgress({ consumerRef: CONSUMER }))).toBe(HostState.Claimed);
    expect(
      settledState(
        withProgress(
          { consumerRef: CONSUMER, provisioning: VM },
          { consumerUID: CONSUMER.uid, completedSteps: steps("PowerOff", "EjectMedia") },
        ),
      ),
    ).toBe(HostState.Claimed);
  });

  it("is Provisioned when the whole plan is done for this consumer", () => {
    const done = steps("PowerOff", "EjectMedia", "InsertBootMedia", "SetBootOverride", "PowerOn");
    expect(
      settledState(
        withProgress(
          { consumerRef: CONSUMER, provisioning: VM },
          { consumerUID: CONSUMER.uid, completedSteps: done },
        ),
      ),
    ).toBe(HostState.Provisioned);
    // a plan with a config image needs InsertConfigMedia too
    expect(
      settledState(
        withProgress(
          { consumerRef: CONSUMER, provisioning: VM_CONFIG },
          { consumerUID: CONSUMER.uid, completedSteps: done },
        ),
      ),
    ).toBe(HostState.Claimed);
  });

  it("does not count another consumer's completed plan", () => {
    const done = steps("PowerOff", "EjectMedia", "SetBootOverride", "PowerOn");
    expect(
      settledState(
        withProgress(
          { consumerRef: CONSUMER, provisioning: PXE },
          { consumerUID: "someone-else", completedSteps: done },
        ),
      ),
    ).toBe(HostState.Claimed);
  });
});

describe("runStep", () => {
  it("PowerOff forces a running host off, and does nothing to one that is off", async () => {
    const bmc = new FakeBmc({ power: "On" });
    expect(await runStep("PowerOff", VM, bmc)).toEqual({ note: "powered off", power: "Off" });
    expect(bmc.argsOf("powerOff")).toEqual([[{ force: true }]]);
    expect(await runStep("PowerOff", VM, bmc)).toEqual({ power: "Off" });
    // The second call reads the power state and sends nothing.
    expect(bmc.actions()).toEqual(["powerOff"]);
    expect(bmc.calls.powerState).toBe(0);
  });

  it("EjectMedia ejects only when something is inserted, naming what", async () => {
    const bmc = new FakeBmc();
    expect(await runStep("EjectMedia", VM, bmc)).toEqual({});
    expect(bmc.calls.ejectMedia).toBe(0);
    bmc.preload("https://old.example.com/old.iso");
    expect(await runStep("EjectMedia", VM, bmc)).toEqual({
      note: "ejected https://old.example.com/old.iso",
    });
    expect(bmc.calls.ejectMedia).toBe(1);
    expect(bmc.slots.every(s => !s.inserted)).toBe(true);
  });

  it("InsertBootMedia inserts the ISO as a cd once", async () => {
    const bmc = new FakeBmc();
    expect(await runStep("InsertBootMedia", VM, bmc)).toEqual({
      note: `inserted ${BOOT_ISO} into CD1`,
    });
    expect(bmc.argsOf("insertMedia")).toEqual([[{ image: BOOT_ISO, kind: "cd" }]]);
    // Replayed: the driver finds the image inserted and sends nothing.
    expect(await runStep("InsertBootMedia", VM, bmc)).toEqual({});
    expect(bmc.actions()).toEqual(["insertMedia"]);
  });

  it("InsertBootMedia replaces a different image", async () => {
    const bmc = new FakeBmc();
    bmc.preload("https://old.example.com/old.iso");
    await runStep("InsertBootMedia", VM, bmc);
    expect(bmc.calls.insertMedia).toBe(1);
    expect(bmc.slots[0]!.image).toBe(BOOT_ISO);
  });

  it("InsertConfigMedia inserts the config image as usb once", async () => {
    const bmc = new FakeBmc();
    expect(await runStep("InsertConfigMedia", VM_CONFIG, bmc)).toEqual({
      note: `inserted ${CONFIG_ISO} into USB1`,
    });
    expect(bmc.argsOf("insertMedia")).toEqual([[{ image: CONFIG_ISO, kind: "usb" }]]);
    expect(await runStep("InsertConfigMedia", VM_CONFIG, bmc)).toEqual({});
    expect(bmc.actions()).toEqual(["insertMedia"]);
  });

  it("SetBootOverride boots once from Cd for virtual media", async () => {
    const bmc = new FakeBmc();
    const outcome = await runStep("SetBootOverride", { ...VM, bootMode: "Legacy" }, bmc);
    expect(bmc.argsOf("setBootOverride")).toEqual([
      [{ target: "Cd", persistent: false, mode: "Legacy", httpBootUri: undefined }],
    ]);
    expect(outcome).toEqual({ note: "one-time boot from Cd (Legacy)" });
  });

  it("SetBootOverride boots once from Pxe, or UefiHttp with the boot URI", async () => {
    const bmc = new FakeBmc();
    await runStep("SetBootOverride", PXE, bmc);
    await runStep("SetBootOverride", HTTP_BOOT, bmc);
    await runStep("SetBootOverride", { ...PXE, httpBootURI: "http://ignored/x.efi" }, bmc);
    expect(bmc.argsOf("setBootOverride")).toEqual([
      [{ target: "Pxe", persistent: false, mode: undefined, httpBootUri: undefined }],
      [
        {
          target: "UefiHttp",
          persistent: false,
          mode: undefined,
          httpBootUri: "http://pxe.example.com/ipxe.efi",
        },
      ],
      [{ target: "Pxe", persistent: false, mode: undefined, httpBootUri: undefined }],
    ]);
  });

  it("SetBootOverride defaults a network request without a target to Pxe", async () => {
    const bmc = new FakeBmc();
    await runStep("SetBootOverride", { mode: "Network" }, bmc);
    expect(bmc.argsOf("setBootOverride")[0]).toEqual([
      expect.objectContaining({ target: "Pxe", persistent: false }),
    ]);
  });

  it("PowerOn powers on a host that is off, and leaves one that is on", async () => {
    const bmc = new FakeBmc();
    expect(await runStep("PowerOn", VM, bmc)).toEqual({ note: "powered on", power: "On" });
    expect(await runStep("PowerOn", VM, bmc)).toEqual({ power: "On" });
    expect(bmc.actions()).toEqual(["powerOn"]);
    expect(bmc.calls.powerState).toBe(0);
  });

  it.each(["AwaitInspection", "AwaitBoot"] as const)("refuses %s", async step => {
    await expect(runStep(step, VM, new FakeBmc())).rejects.toThrow(
      `provisioning step ${step} is not run by the PhysicalHost controller`,
    );
  });

  it("passes BMC failures through", async () => {
    const bmc = new FakeBmc().fail(new BmcRejectedError("no media slot"), "insertMedia");
    await expect(runStep("InsertBootMedia", VM, bmc)).rejects.toMatchObject({
      name: "BmcFailure",
      reason: "ActionRejected",
      message: "no media slot",
    });
  });
});

describe("classify", () => {
  it.each<[string, unknown, string, boolean]>([
    [
      "a BmcFailure",
      new BmcFailure("TLSFailure", "self-signed certificate", false),
      "TLSFailure",
      false,
    ],
    ["a transient one", new BmcFailure("BMCUnreachable", "down", true), "BMCUnreachable", true],
    ["a secret", new CredentialsError("SecretNotFound", "no Secret"), "SecretNotFound", false],
    ["bad secret", new CredentialsError("SecretInvalid", "no password"), "SecretInvalid", false],
    // The port translates the driver's errors; one that slips past it is a BMCError to retry.
    ["an untranslated driver error", new BmcTlsError("bad cert"), "BMCError", true],
    ["plain Error", new Error("boom"), "BMCError", true],
    ["a string", "weird", "BMCError", true],
  ])("%s", (_what, err, reason, transient) => {
    const result = classify(err);
    expect(result.reason).toBe(reason);
    expect(result.transient).toBe(transient);
    expect(result.message).toBe(err instanceof Error ? err.message : String(err));
  });
});

describe("failure", () => {
  const inState = (state: HostStateName, status: PhysicalHostStatus = {}) =>
    makeHost({ status: { ...status, state } });
  const noJitter = () => 1;

  it.each<[HostStateName, unknown, HostStateName]>([
    ["Enrolling", toBmcFailure(new BmcUnreachableError("down")), "Error"],
    ["Available", toBmcFailure(new BmcUnreachableError("down")), "Error"],
    ["Claimed", toBmcFailure(new BmcUnreachableError("down")), "Claimed"],
    ["Claimed", toBmcFailure(new BmcAuthenticationError("401")), "Error"],
    ["Provisioning", toBmcFailure(new BmcServerError("500")), "Provisioning"],
    ["Provisioning", toBmcFailure(new BmcRejectedError("400")), "Error"],
    ["Deprovisioning", toBmcFailure(new BmcTlsError("bad cert")), "Error"],
    ["Provisioned", toBmcFailure(new BmcAuthenticationError("401")), "Provisioned"],
    ["Provisioned", toBmcFailure(new BmcUnreachableError("down")), "Provisioned"],
    ["Error", toBmcFailure(new BmcUnreachableError("down")), "Error"],
    ["Deleting", toBmcFailure(new BmcTlsError("bad cert")), "Deleting"],
  ])("in %s, %s leads to %s", (state, err, next) => {
    expect(failure(inState(state), err, config, noJitter).state).toBe(next);
  });

  it("treats a host without a state as Enrolling", () => {
    const t = failure(makeHost(), toBmcFailure(new BmcUnreachableError("down")), config, noJitter);
    expect(t.state).toBe("Error");
    expect(t.events).toEqual([
      { type: "Warning", reason: "BMCUnreachable", message: "Enrolling -> Error: down" },
    ]);
  });

  it("records reason, message and a growing errorCount", () => {
    const t1 = failure(
      inState("Available"),
      toBmcFailure(new BmcUnreachableError("down")),
      config,
      noJitter,
    );
    expect(t1.status).toEqual({
      errorReason: "BMCUnreachable",
      errorMessage: "down",
      errorCount: 1,
    });
    const t2 = failure(
      inState("Error", { errorCount: 4 }),
      toBmcFailure(new BmcUnreachableError("down")),
      config,
      noJitter,
    );
    expect(t2.status?.errorCount).toBe(5);
  });

  it("backs off exponentially from the base, capped at the maximum", () => {
    const delays = [0, 1, 2, 3, 4, 5, 6, 7, 8, 30, 100].map(
      count =>
        failure(
          inState("Error", { errorCount: count }),
          toBmcFailure(new BmcUnreachableError("down")),
          config,
          noJitter,
        ).requeueAfterMs,
    );
    expect(delays).toEqual([
      5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000, 300_000, 300_000,
    ]);
  });

  it("jitters the delay between half and all of it", () => {
    const err = toBmcFailure(new BmcUnreachableError("down"));
    const host = inState("Error", { errorCount: 2 });
    expect(failure(host, err, config, () => 0).requeueAfterMs).toBe(10_000);
    expect(failure(host, err, config, () => 0.5).requeueAfterMs).toBe(15_000);
    expect(failure(host, err, config, () => 0.999999).requeueAfterMs).toBe(20_000);
  });

  it("reports the BMC unreachable and leaves credentials alone for a connection failure", () => {
    const t = failure(
      inState("Available"),
      toBmcFailure(new BmcUnreachableError("timeout")),
      config,
      noJitter,
    );
    expect(t.conditions).toEqual([
      { type: "BMCReachable", status: "False", reason: "ConnectionFailed", message: "timeout" },
    ]);
  });

  it("marks credentials invalid on an authentication failure", () => {
    const t = failure(
      inState("Available"),
      toBmcFailure(new BmcAuthenticationError("401")),
      config,
      noJitter,
    );
    expect(t.conditions).toEqual([
      { type: "BMCReachable", status: "False", reason: "AuthenticationFailed", message: "401" },
      { type: "CredentialsValid", status: "False", reason: "AuthenticationFailed", message: "401" },
    ]);
  });

  it.each(["SecretNotFound", "SecretInvalid"] as const)(
    "reports reachability Unknown and credentials invalid for %s",
    reason => {
      const t = failure(
        inState("Enrolling"),
        new CredentialsError(reason, "about the Secret"),
        config,
        noJitter,
      );
      expect(t.state).toBe("Error");
      expect(t.conditions).toEqual([
        { type: "BMCReachable", status: "Unknown", reason, message: "about the Secret" },
        { type: "CredentialsValid", status: "False", reason, message: "about the Secret" },
      ]);
    },
  );

  it("keeps BMCReachable True when the BMC answered but refused", () => {
    const t = failure(
      inState("Claimed"),
      toBmcFailure(new BmcRejectedError("400")),
      config,
      noJitter,
    );
    expect(t.conditions).toEqual([
      { type: "BMCReachable", status: "True", reason: "Connected", message: "400" },
    ]);
  });

  it("emits the warning only when the reason or message is new", () => {
    const err = toBmcFailure(new BmcUnreachableError("down"));
    const again = inState("Error", {
      errorReason: "BMCUnreachable",
      errorMessage: "down",
      errorCount: 1,
    });
    expect(failure(again, err, config, noJitter).events).toEqual([]);
    expect(
      failure(again, toBmcFailure(new BmcUnreachableError("still down")), config, noJitter).events,
    ).toEqual([{ type: "Warning", reason: "BMCUnreachable", message: "still down" }]);
    // a kept state says so without a transition
    expect(failure(inState("Provisioned"), err, config, noJitter).events).toEqual([
      { type: "Warning", reason: "BMCUnreachable", message: "down" },
    ]);
  });

  it("has one record per state, and a handler wherever a reconcile can run", () => {
    expect(Object.keys(HostStateTable).sort()).toEqual(Object.values(HostState).sort());
    const without = Object.entries(HostStateTable)
      .filter(([, record]) => !record.handler)
      .map(([state]) => state);
    // Deleting is finalize.ts's; Inspecting runs the provisioning plan (its AwaitInspection step).
    expect(without.sort()).toEqual(["Deleting"]);
    const facts = (key: "claimable" | "busy" | "ready") =>
      Object.entries(HostStateTable)
        .filter(([, record]) => record[key])
        .map(([state]) => state)
        .sort();
    expect(facts("claimable")).toEqual(["Available"]);
    expect(facts("ready")).toEqual(["Available", "Claimed", "Provisioned"]);
    expect(facts("busy")).toEqual(
      ["Claimed", "Inspecting", "Provisioning", "Provisioned", "Deprovisioning"].sort(),
    );
    for (const record of Object.values(HostStateTable)) expect(record.description).not.toBe("");
  });
});

describe("inventoryStatus", () => {
  it("copies the port's inventory into hardwareDetails, addresses and power", () => {
    const inventory = { ...sampleInventory(), powerState: "On" as const };
    expect(inventoryStatus(inventory, NOW)).toEqual({
      hardwareDetails: {
        manufacturer: "Contoso",
        model: "R3500",
        serialNumber: "SN-0001",
        systemUUID: "4c4c4544-0033-3510-8052-b4c04f4e4a32",
        biosVersion: "2.19.1",
        bmcFirmwareVersion: "7.10.30",
        health: "OK",
        cpu: { count: 2, cores: 32, threads: 64, model: "Xeon Gold 6338" },
        memoryGiB: 256,
        disks: [
          { name: "Boot SSD", sizeBytes: 480_000_000_000, mediaType: "SSD" },
          { name: "Disk.1", sizeBytes: 3_840_000_000_000, mediaType: "NVMe" },
          { name: "Disk.2", mediaType: "HDD" },
          { name: "Disk.3", mediaType: "Unknown" },
        ],
        nics: [
          {
            name: "NIC.1",
            macAddress: "aa:bb:cc:dd:ee:01",
            linkStatus: "Up",
            speedMbps: 25_000,
          },
          { name: "NIC.2", linkStatus: "Down" },
        ],
      },
      addresses: [
        { type: "Hostname", address: "node-21" },
        { type: "InternalIP", address: "10.0.0.21" },
      ],
      observedPowerState: "On",
      lastInventoryTime: NOW.toISOString(),
    });
  });

  it("clears addresses when none are known", () => {
    const inventory = sampleInventory();
    delete inventory.hostName;
    inventory.nics = [{ name: "NIC.1", linkStatus: "Unknown", ipAddresses: [] }];
    inventory.powerState = "Unknown";
    const status = inventoryStatus(inventory, NOW);
    expect(status.addresses).toBeNull();
    expect(status.observedPowerState).toBe("Unknown");
    expect(status.hardwareDetails?.nics).toEqual([{ name: "NIC.1", linkStatus: "Unknown" }]);
  });

  it("keeps at most 64 disks and 64 nics, and no undefined fields", () => {
    const inventory = sampleInventory();
    inventory.disks = Array.from({ length: 70 }, (_, i) => ({
      name: `d${i}`,
      mediaType: "Unknown" as const,
    }));
    inventory.nics = Array.from({ length: 70 }, (_, i) => ({
      name: `n${i}`,
      linkStatus: "Unknown" as const,
      ipAddresses: [],
    }));
    const details = inventoryStatus(inventory, NOW).hardwareDetails!;
    expect(details.disks).toHaveLength(64);
    expect(details.nics).toHaveLength(64);
    expect(JSON.stringify(details)).toBe(JSON.stringify(JSON.parse(JSON.stringify(details))));
    expect(Object.keys(details.disks![0]!)).toEqual(["name", "mediaType"]);
  });
});

describe("handlers", () => {
  it("Enrolling reads the inventory and settles a free host in Available", async () => {
    const c = ctx(makeHost());
    const t = await HostStateTable.Enrolling.handler!(c);
    expect(t.state).toBe("Available");
    expect(t.status).toMatchObject({
      errorReason: null,
      errorMessage: null,
      errorCount: null,
      observedPowerState: "Off",
      lastInventoryTime: NOW.toISOString(),
      hardwareDetails: expect.objectContaining({ serialNumber: "SN-0001" }),
    });
    expect(t.conditions?.map(c => [c.type, c.status])).toEqual([
      ["BMCReachable", "True"],
      ["CredentialsValid", "True"],
      ["Inspected", "True"],
    ]);
    expect(t.events).toEqual([
      {
        type: "Normal",
        reason: "Enrolled",
        message:
          "Contoso R3500 (serial SN-0001, 32 cores, 255.8 GiB) enrolled through https://10.0.0.21",
      },
    ]);
    expect(t.requeueAfterMs).toBe(config.powerCheckIntervalMs);
  });

  it("Enrolling a claimed host goes to Claimed at once", async () => {
    const t = await HostStateTable.Enrolling.handler!(
      ctx(makeHost({ spec: { consumerRef: CONSUMER } })),
    );
    expect(t.state).toBe("Claimed");
    expect(t.requeueAfterMs).toBe(0);
  });

  it("Available moves to Claimed without touching the BMC once claimed", async () => {
    const c = ctx(makeHost({ spec: { consumerRef: CONSUMER }, status: { state: "Available" } }));
    const t = await HostStateTable.Available.handler!(c);
    expect(t).toEqual({
      state: "Claimed",
      events: [
        { type: "Normal", reason: "Claimed", message: "claimed by Beskar7Machine lab/worker-0" },
      ],
      requeueAfterMs: 0,
    });
    expect(c.connects()).toBe(0);
  });

  it("Claimed with a request starts fresh progress for this consumer", async () => {
    const host = makeHost({
      spec: { consumerRef: CONSUMER, provisioning: VM },
      status: {
        state: "Claimed",
        provisioning: { consumerUID: "old-consumer", completedSteps: steps("PowerOff") },
      },
    });
    const t = await HostStateTable.Claimed.handler!(ctx(host, new FakeBmc({ power: "Off" })));
    expect(t.state).toBe("Provisioning");
    // The old consumer's progress is dropped; the run goes on to the first step that acts.
    expect(t.status?.provisioning).toEqual({
      consumerUID: CONSUMER.uid,
      currentStep: "SetBootOverride",
      startedTime: NOW.toISOString(),
      completedSteps: ["PowerOff", "EjectMedia", "InsertBootMedia"].map(step => ({
        step,
        completedTime: NOW.toISOString(),
      })),
      attempts: 0,
    });
    expect(t.events?.[0]).toEqual({
      type: "Normal",
      reason: "ProvisioningStarted",
      message: `provisioning for Beskar7Machine lab/worker-0: virtual media ${BOOT_ISO}`,
    });
  });

  it("Claimed keeps progress of the same consumer (resume after a restart)", async () => {
    const host = makeHost({
      spec: { consumerRef: CONSUMER, provisioning: PXE },
      status: {
        state: "Claimed",
        provisioning: { consumerUID: CONSUMER.uid, completedSteps: steps("PowerOff") },
      },
    });
    const t = await HostStateTable.Claimed.handler!(ctx(host, new FakeBmc({ power: "Off" })));
    expect(t.state).toBe("Provisioning");
    // PowerOff stays done; the run resumes with the next step.
    expect(t.status?.provisioning?.consumerUID).toBe(CONSUMER.uid);
    expect(t.status?.provisioning?.completedSteps?.map(s => s.step)).toEqual([
      "PowerOff",
      "EjectMedia",
      "SetBootOverride",
    ]);
    expect(t.events?.[0]?.message).toContain("network boot (Pxe)");
  });

  it("Claimed without a request waits, observing power (no requeue until spec changes)", async () => {
    // NB: the handler also builds a Provisioned=False/WaitingForProvisioningRequest condition,
    // which is currently lost (see the report); only the surviving behaviour is asserted here.
    const host = makeHost({
      spec: { consumerRef: CONSUMER },
      status: { state: "Claimed", lastInventoryTime: NOW.toISOString() },
    });
    const bmc = new FakeBmc({ power: "On" });
    const t = await HostStateTable.Claimed.handler!(ctx(host, bmc));
    expect(t.state).toBe("Claimed");
    expect(t.status).toEqual({ observedPowerState: "On" });
    expect(t.conditions).toContainEqual({
      type: "BMCReachable",
      status: "True",
      reason: "Connected",
    });
    expect(t.requeueAfterMs).toBeUndefined();
    expect(bmc.actions()).toEqual([]);
  });

  it("Claimed without a consumer and without progress is released to Available", async () => {
    const c = ctx(makeHost({ status: { state: "Claimed" } }));
    const t = await HostStateTable.Claimed.handler!(c);
    expect(t.state).toBe("Available");
    // status.boot goes with the progress: releasing ends the boot session.
    expect(t.status).toEqual({ provisioning: null, boot: null });
    expect(c.connects()).toBe(0);
  });

  it("Provisioning finishes when every step is done, clearing currentStep in the update", async () => {
    const done = steps("PowerOff", "EjectMedia", "SetBootOverride", "PowerOn");
    const host = makeHost({
      spec: { consumerRef: CONSUMER, provisioning: HTTP_BOOT },
      status: {
        state: "Provisioning",
        provisioning: { consumerUID: CONSUMER.uid, currentStep: "PowerOn", completedSteps: done },
      },
    });
    const c = ctx(host);
    const t = await HostStateTable.Provisioning.handler!(c);
    expect(t.state).toBe("Provisioned");
    // null, not absent: status is merge-patched and an absent field would stay on the server.
    expect(t.status?.provisioning?.currentStep).toBeNull();
    expect(t.status?.provisioning?.completedSteps).toEqual(done);
    expect(t.conditions).toEqual([
      {
        type: "Provisioned",
        status: "True",
        reason: "ProvisioningSucceeded",
        message: "network boot (UefiHttp http://pxe.example.com/ipxe.efi)",
      },
    ]);
    expect(c.connects()).toBe(0);
  });
});
