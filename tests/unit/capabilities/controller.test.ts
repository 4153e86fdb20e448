import { afterEach, describe, expect, it, vi } from "vitest";

import {
  Annotations,
  type HostProvisioning,
  type PhysicalHost,
  type PhysicalHostStatus,
} from "../../../capabilities/api";
import {
  reconcileFingerprint,
  reconcileHost,
} from "../../../capabilities/physical-host/controller";
import { CredentialsError } from "../../../capabilities/physical-host/credentials";
import { defaultHostControllerConfig } from "../../../capabilities/physical-host/states";
import { BmcAuthenticationError, BmcRejectedError, BmcUnreachableError } from "../../../redfish";
import { FakeBmc } from "./fake-bmc";
import { BOOT_ISO, CONFIG_ISO, CONSUMER, HostHarness, NOW, condition, makeHost } from "./helpers";

const config = defaultHostControllerConfig;
const VM_CONFIG: HostProvisioning = {
  mode: "VirtualMedia",
  bootISO: BOOT_ISO,
  configMediaURL: CONFIG_ISO,
};

const cond = (h: HostHarness, type: string) => condition(h.host.status, type);

/** A harness whose host has been enrolled (state Available, inventory fresh). */
async function enrolled(
  init: { power?: "On" | "Off"; spec?: Partial<NonNullable<PhysicalHost["spec"]>> } = {},
) {
  const h = new HostHarness(makeHost({ spec: init.spec }), new FakeBmc({ power: init.power }));
  await h.reconcile();
  h.clearRecords();
  return h;
}

/**
 * A claimed host with a request whose Provisioning began but whose first step has not run, as an
 * operator restarted right after recording the start finds it (a claim seen by a running
 * operator goes on to the first BMC action in the same reconcile: see "runs from the claim").
 */
async function provisioningStarted(request: HostProvisioning, power: "On" | "Off" = "Off") {
  const h = await enrolled({ power });
  h.editSpec(spec => {
    spec.consumerRef = CONSUMER;
    spec.provisioning = request;
  });
  h.host = {
    ...h.host,
    status: {
      ...h.host.status,
      state: "Provisioning",
      provisioning: {
        consumerUID: CONSUMER.uid,
        currentStep: "PowerOff",
        startedTime: NOW.toISOString(),
        completedSteps: [],
        attempts: 0,
      },
    },
  };
  h.clearRecords();
  return h;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("reconcileFingerprint", () => {
  it("ignores status, and follows generation, annotations and labels in any key order", () => {
    const host = makeHost();
    host.metadata!.generation = 3;
    host.metadata!.annotations = { a: "1", b: "2" };
    const base = reconcileFingerprint(host);
    const statusOnly = { ...host, status: { ...host.status, state: "Available" as const } };
    expect(reconcileFingerprint(statusOnly)).toBe(base);
    const reordered = { ...host, metadata: { ...host.metadata, annotations: { b: "2", a: "1" } } };
    expect(reconcileFingerprint(reordered)).toBe(base);
    for (const metadata of [
      { ...host.metadata, generation: 4 },
      { ...host.metadata, annotations: { a: "1", b: "2", reboot: "hard" } },
      { ...host.metadata, labels: { x: "y" } },
    ]) {
      expect(reconcileFingerprint({ ...host, metadata })).not.toBe(base);
    }
  });
});

describe("reconcileHost: enrollment", () => {
  it("enrolls a new host into Available with hardware details and healthy conditions", async () => {
    const h = new HostHarness();
    const outcome = await h.reconcile();

    expect(outcome).toEqual({ requeueAfterMs: config.powerCheckIntervalMs });
    const status = h.host.status!;
    expect(status.state).toBe("Available");
    expect(status.ready).toBe(true);
    expect(status.observedGeneration).toBe(1);
    expect(status.observedPowerState).toBe("Off");
    expect(status.lastInventoryTime).toBe(NOW.toISOString());
    expect(status.hardwareDetails).toMatchObject({
      manufacturer: "Contoso",
      serialNumber: "SN-0001",
      cpu: { cores: 32 },
      memoryGiB: 256,
    });
    expect(status.addresses).toEqual([
      { type: "Hostname", address: "node-21" },
      { type: "InternalIP", address: "10.0.0.21" },
    ]);
    expect(status.conditions?.map(c => [c.type, c.status, c.reason])).toEqual([
      ["Ready", "True", "Ready"],
      ["BMCReachable", "True", "Connected"],
      ["CredentialsValid", "True", "CredentialsValid"],
      ["Inspected", "True", "InventoryCollected"],
      ["Paused", "False", "NotPaused"],
    ]);
    for (const c of status.conditions!) {
      expect(c.lastTransitionTime).toBe(NOW.toISOString());
      expect(c.observedGeneration).toBe(1);
    }
    expect(h.patches).toHaveLength(1);
    // no StateChanged for the first state; the Enrolled event only
    expect(h.eventReasons()).toEqual(["Enrolled"]);
    expect(h.transitions).toEqual([[undefined, "Available"]]);
    expect(h.connector.connects()).toBe(1);
    expect(h.connector.releases()).toBe(1);
    expect(h.bmc.actions()).toEqual([]);
  });

  it("moves an enrolled host to Claimed when consumerRef appears, without a BMC call", async () => {
    const h = await enrolled();
    h.editSpec(spec => (spec.consumerRef = CONSUMER));
    const outcome = await h.reconcile();
    expect(h.host.status?.state).toBe("Claimed");
    expect(outcome).toEqual({ requeueAfterMs: 0 });
    expect(h.connectAttempts).toBe(1); // the enrollment's only
    expect(h.eventReasons()).toEqual(["StateChanged", "Claimed"]);
    expect(h.events[0]!.message).toBe("Available -> Claimed");
    expect(h.transitions).toEqual([["Available", "Claimed"]]);
    expect(h.host.status?.ready).toBe(true);
  });

  it("says a Claimed host waits for its provisioning request", async () => {
    const h = await enrolled();
    h.editSpec(spec => (spec.consumerRef = CONSUMER));
    await h.reconcile();
    await h.reconcile();
    expect(h.host.status?.state).toBe("Claimed");
    expect(cond(h, "Provisioned")).toMatchObject({
      status: "False",
      reason: "WaitingForProvisioningRequest",
    });
  });

  it("a Claimed host without a request stays Claimed and Ready", async () => {
    const h = await enrolled();
    h.editSpec(spec => (spec.consumerRef = CONSUMER));
    await h.reconcile();
    const outcome = await h.reconcile();
    expect(h.host.status?.state).toBe("Claimed");
    expect(outcome).toEqual({});
    expect(cond(h, "Ready")?.status).toBe("True");
    expect(h.bmc.actions()).toEqual([]);
  });

  it("stamps observedGeneration from the object's generation", async () => {
    const h = new HostHarness(makeHost({ generation: 7 }));
    await h.reconcile();
    expect(h.host.status?.observedGeneration).toBe(7);
    expect(h.host.status?.conditions?.every(c => c.observedGeneration === 7)).toBe(true);
  });
});

describe("reconcileHost: provisioning", () => {
  it("runs from the claim to the first BMC action in one reconcile, with fresh progress", async () => {
    const h = await enrolled({ power: "Off" });
    h.editSpec(spec => {
      spec.consumerRef = CONSUMER;
      spec.provisioning = VM_CONFIG;
    });
    const outcome = await h.reconcile();
    // Already off and nothing inserted: those steps need no action, so the run goes on to the
    // first one that acts, and stops there (one BMC action per run, recorded before the next).
    expect(h.bmc.actions()).toEqual(["insertMedia"]);
    expect(outcome).toEqual({ requeueAfterMs: 0 });
    expect(h.transitions).toEqual([["Available", "Provisioning"]]);
    expect(h.eventReasons()).toEqual([
      "StateChanged",
      "Claimed",
      "ProvisioningStarted",
      "InsertBootMedia",
    ]);
    expect(h.host.status?.state).toBe("Provisioning");
    expect(h.host.status?.provisioning).toEqual({
      consumerUID: CONSUMER.uid,
      currentStep: "InsertConfigMedia",
      startedTime: NOW.toISOString(),
      completedSteps: ["PowerOff", "EjectMedia", "InsertBootMedia"].map(step => ({
        step,
        completedTime: NOW.toISOString(),
      })),
      attempts: 0,
    });
    expect(cond(h, "Ready")).toMatchObject({ status: "False", reason: "NotReady" });
    expect(cond(h, "Ready")?.message).toMatch(/^Provisioning: the boot request/);
    expect(h.host.status?.ready).toBe(false);
  });

  it("runs the virtual media plan one step per reconcile, in order, then Provisioned", async () => {
    const h = await provisioningStarted(VM_CONFIG, "On");
    h.bmc.preload("https://old.example.com/stale.iso");

    const expected: Array<[string, string[]]> = [
      ["PowerOff", ["powerOff"]],
      ["EjectMedia", ["ejectMedia"]],
      ["InsertBootMedia", ["insertMedia"]],
      ["InsertConfigMedia", ["insertMedia"]],
      ["SetBootOverride", ["setBootOverride"]],
      ["PowerOn", ["powerOn"]],
    ];
    const done: string[] = [];
    for (const [index, [step, actions]] of expected.entries()) {
      const before = h.bmc.actions().length;
      const outcome = await h.reconcile();
      done.push(step);
      expect(outcome).toEqual({ requeueAfterMs: 0 });
      expect(h.bmc.actions().slice(before)).toEqual(actions);
      expect(h.host.status?.state).toBe("Provisioning");
      // currentStep names the step in progress: the next one, until the plan is done.
      expect(h.host.status?.provisioning?.currentStep).toBe(expected[index + 1]?.[0]);
      expect(h.host.status?.provisioning?.completedSteps?.map(s => s.step)).toEqual(done);
      expect(cond(h, "Provisioned")).toMatchObject({
        status: "False",
        reason: "ProvisioningInProgress",
        message: expect.stringContaining(`step ${step} done`),
      });
    }
    expect(h.bmc.argsOf("powerOff")).toEqual([[{ force: true }]]);
    expect(h.bmc.argsOf("insertMedia")).toEqual([
      [{ image: BOOT_ISO, kind: "cd" }],
      [{ image: CONFIG_ISO, kind: "usb" }],
    ]);
    expect(h.bmc.argsOf("setBootOverride")).toEqual([
      [{ target: "Cd", persistent: false, mode: undefined, httpBootUri: undefined }],
    ]);
    expect(h.host.status?.observedPowerState).toBe("On");

    h.bmc.resetCounters();
    h.events.length = 0;
    const outcome = await h.reconcile();
    expect(h.host.status?.state).toBe("Provisioned");
    expect(outcome).toEqual({ requeueAfterMs: config.powerCheckIntervalMs });
    expect(h.bmc.log).toEqual([]);
    expect(cond(h, "Provisioned")).toMatchObject({
      status: "True",
      reason: "ProvisioningSucceeded",
      message: `virtual media ${BOOT_ISO} + ${CONFIG_ISO}`,
    });
    expect(cond(h, "Ready")).toMatchObject({ status: "True", message: "Provisioned" });
    expect(h.host.status?.ready).toBe(true);
    expect(h.eventReasons()).toEqual(["StateChanged", "Provisioned"]);
  });

  it("keeps the BMC's sockets for a run that follows at once, not for a host that settles", async () => {
    const h = await provisioningStarted(VM_CONFIG, "On");
    expect(await h.reconcile()).toEqual({ requeueAfterMs: 0 }); // PowerOff; the next step follows
    expect(h.connector.soon().at(-1)).toBe(true);

    const settled = await enrolled();
    const releases = settled.connector.releases();
    const check = await settled.reconcile(); // Available: the next power check is minutes away
    expect(check.requeueAfterMs).toBe(config.powerCheckIntervalMs);
    expect(settled.connector.releases()).toBe(releases + 1);
    expect(settled.connector.soon().at(-1)).toBe(false);
  });

  it("records an event for each step that changed something, and none for a no-op", async () => {
    const h = await provisioningStarted({ mode: "VirtualMedia", bootISO: BOOT_ISO }, "Off");
    await h.reconcile(); // PowerOff: already off; EjectMedia: nothing inserted; InsertBootMedia
    expect(h.bmc.actions()).toEqual(["insertMedia"]);
    expect(h.events).toEqual([
      { type: "Normal", reason: "InsertBootMedia", message: `inserted ${BOOT_ISO} into CD1` },
    ]);
    expect(h.host.status?.provisioning?.completedSteps?.map(s => s.step)).toEqual([
      "PowerOff",
      "EjectMedia",
      "InsertBootMedia",
    ]);
  });

  it.each<[string, HostProvisioning, object]>([
    [
      "Pxe",
      { mode: "Network", networkBootTarget: "Pxe" },
      { target: "Pxe", persistent: false, mode: undefined, httpBootUri: undefined },
    ],
    [
      "UefiHttp",
      {
        mode: "Network",
        networkBootTarget: "UefiHttp",
        bootMode: "UEFI",
        httpBootURI: "http://pxe.example.com/ipxe.efi",
      },
      {
        target: "UefiHttp",
        persistent: false,
        mode: "UEFI",
        httpBootUri: "http://pxe.example.com/ipxe.efi",
      },
    ],
  ])("runs the network plan with %s", async (_target, request, override) => {
    const h = await provisioningStarted(request, "On");
    h.bmc.preload("https://old.example.com/stale.iso");
    const steps: string[][] = [];
    for (let i = 0; i < 4; i++) {
      const before = h.bmc.actions().length;
      await h.reconcile();
      steps.push(h.bmc.actions().slice(before));
    }
    expect(steps).toEqual([["powerOff"], ["ejectMedia"], ["setBootOverride"], ["powerOn"]]);
    expect(h.bmc.argsOf("setBootOverride")).toEqual([[override]]);
    expect(h.bmc.override.enabled).toBe("Once");
    expect(h.host.status?.provisioning?.completedSteps?.map(s => s.step)).toEqual([
      "PowerOff",
      "EjectMedia",
      "SetBootOverride",
      "PowerOn",
    ]);
    await h.reconcile();
    expect(h.host.status?.state).toBe("Provisioned");
    expect(h.bmc.calls.insertMedia).toBe(0);
  });

  it("does not repeat a BMC action when a step is replayed after a lost status patch", async () => {
    const h = await provisioningStarted(VM_CONFIG, "On");
    // Every run's patch is lost once: the operator restarts and sees the host as it was before.
    // The replay may get further than the lost run (its actions are found done and skipped), but
    // never repeats one.
    for (let runs = 0; h.host.status?.state !== "Provisioned"; runs++) {
      expect(runs).toBeLessThan(20);
      const stale = structuredClone(h.host);
      await h.reconcile(); // the action and its patch...
      h.host = stale; // ...but the patch is lost
      await h.reconcile();
      const steps = h.host.status?.provisioning?.completedSteps?.map(s => s.step) ?? [];
      expect(new Set(steps).size).toBe(steps.length);
    }
    // A replayed power step reads the power state and sends nothing.
    expect(h.bmc.actions()).toEqual([
      "powerOff",
      "insertMedia", // boot ISO once, config image once
      "insertMedia",
      "setBootOverride",
      "powerOn",
    ]);
    expect(h.bmc.slots.map(s => s.image)).toEqual([BOOT_ISO, CONFIG_ISO]);
    expect(h.host.status?.provisioning?.completedSteps?.map(s => s.step)).toEqual([
      "PowerOff",
      "EjectMedia",
      "InsertBootMedia",
      "InsertConfigMedia",
      "SetBootOverride",
      "PowerOn",
    ]);
  });

  it("keeps Provisioning on a transient failure of a step, and retries the same step", async () => {
    const h = await provisioningStarted(VM_CONFIG, "On");
    await h.reconcile(); // PowerOff
    h.bmc.fail(new BmcUnreachableError("connect ETIMEDOUT"), "insertMedia");
    const outcome = await h.reconcile(); // EjectMedia (nothing inserted), then InsertBootMedia fails
    expect(h.host.status?.state).toBe("Provisioning");
    expect(h.host.status?.errorReason).toBe("BMCUnreachable");
    // The failed run records nothing: EjectMedia, a no-op, simply runs again.
    expect(h.host.status?.provisioning?.completedSteps?.map(s => s.step)).toEqual(["PowerOff"]);
    expect(outcome.requeueAfterMs).toBeGreaterThanOrEqual(2_500);
    expect(outcome.requeueAfterMs).toBeLessThanOrEqual(5_000);
    h.bmc.heal();
    await h.reconcile();
    expect(h.host.status?.provisioning?.completedSteps?.map(s => s.step)).toContain(
      "InsertBootMedia",
    );
    expect(h.host.status?.errorReason).toBeUndefined();
    expect(h.host.status?.errorCount).toBeUndefined();
  });

  it("moves Provisioning to Error when the BMC refuses a step", async () => {
    const h = await provisioningStarted(VM_CONFIG);
    h.bmc.fail(new BmcRejectedError("400 PowerState not allowed"), "powerOff");
    await h.reconcile();
    expect(h.host.status?.state).toBe("Error");
    expect(h.host.status?.errorReason).toBe("ActionRejected");
    expect(cond(h, "BMCReachable")?.status).toBe("True");
  });
});

describe("reconcileHost: release and deprovisioning", () => {
  async function provisioned() {
    const h = await provisioningStarted(VM_CONFIG);
    await h.reconcileUntil("Provisioned");
    h.clearRecords();
    return h;
  }

  it("deprovisions a released host: eject, clear the override, power off, then Available", async () => {
    const h = await provisioned();
    h.editSpec(spec => {
      delete spec.consumerRef;
      delete spec.provisioning;
    });

    const first = await h.reconcile();
    expect(h.host.status?.state).toBe("Deprovisioning");
    expect(first).toEqual({ requeueAfterMs: 0 });
    expect(h.bmc.log).toEqual([]);
    expect(h.eventReasons()).toEqual(["StateChanged", "Released"]);

    h.clearRecords();
    const second = await h.reconcile();
    expect(h.bmc.actions()).toEqual(["ejectMedia", "clearBootOverride", "powerOff"]);
    expect(h.bmc.argsOf("powerOff")).toEqual([
      [{ gracefulTimeoutMs: config.gracefulShutdownTimeoutMs }],
    ]);
    expect(h.host.status?.state).toBe("Available");
    expect(h.host.status?.provisioning).toBeUndefined();
    expect(h.host.status?.observedPowerState).toBe("Off");
    expect(cond(h, "Provisioned")).toMatchObject({ status: "False", reason: "NotReady" });
    expect(second).toEqual({ requeueAfterMs: config.powerCheckIntervalMs });
    expect(h.events).toContainEqual({
      type: "Normal",
      reason: "Deprovisioned",
      message: "ejected virtual media, cleared the boot override, powered off",
    });
    expect(h.bmc.slots.every(s => !s.inserted)).toBe(true);
    expect(h.bmc.override.enabled).toBe("Disabled");
  });

  it("deprovisioning with nothing to clean up makes no BMC action", async () => {
    const h = await provisioned();
    h.editSpec(spec => {
      delete spec.consumerRef;
      delete spec.provisioning;
    });
    await h.reconcile();
    await h.bmc.ejectMedia();
    await h.bmc.clearBootOverride();
    await h.bmc.powerOff();
    h.clearRecords();
    await h.reconcile();
    expect(h.bmc.actions()).toEqual([]);
    expect(h.host.status?.state).toBe("Available");
    expect(h.events).toContainEqual({
      type: "Normal",
      reason: "Deprovisioned",
      message: "nothing to clean up",
    });
  });

  it("goes from Claimed straight back to Available when nothing was done yet", async () => {
    const h = await enrolled();
    h.editSpec(spec => (spec.consumerRef = CONSUMER));
    await h.reconcile();
    h.editSpec(spec => delete spec.consumerRef);
    await h.reconcile();
    expect(h.host.status?.state).toBe("Available");
    expect(h.bmc.actions()).toEqual([]);
  });
});

describe("reconcileHost: failures", () => {
  it("keeps a Provisioned host Provisioned when its BMC is unreachable", async () => {
    const h = await provisioningStarted({ mode: "Network", networkBootTarget: "Pxe" });
    await h.reconcileUntil("Provisioned");
    h.clearRecords();
    h.bmc.fail(new BmcUnreachableError("connect ECONNREFUSED 10.0.0.21:443"));
    const outcome = await h.reconcile();
    const status = h.host.status!;
    expect(status.state).toBe("Provisioned");
    expect(status.errorReason).toBe("BMCUnreachable");
    expect(status.errorCount).toBe(1);
    expect(cond(h, "BMCReachable")).toMatchObject({
      status: "False",
      reason: "ConnectionFailed",
      message: "connect ECONNREFUSED 10.0.0.21:443",
    });
    expect(cond(h, "Ready")).toMatchObject({ status: "False", reason: "ConnectionFailed" });
    expect(status.ready).toBe(false);
    expect(cond(h, "Provisioned")?.status).toBe("True");
    expect(outcome.requeueAfterMs).toBeGreaterThan(0);
    expect(h.eventReasons()).toEqual(["BMCUnreachable"]);
    expect(h.connector.releases()).toBe(h.connector.connects());
  });

  it("moves an Available host to Error on an authentication failure", async () => {
    const h = await enrolled();
    h.bmc.fail(new BmcAuthenticationError("401 Unauthorized"));
    await h.reconcile();
    const status = h.host.status!;
    expect(status.state).toBe("Error");
    expect(status.errorReason).toBe("AuthenticationFailed");
    expect(status.errorMessage).toBe("401 Unauthorized");
    expect(cond(h, "CredentialsValid")).toMatchObject({
      status: "False",
      reason: "AuthenticationFailed",
    });
    expect(cond(h, "BMCReachable")).toMatchObject({
      status: "False",
      reason: "AuthenticationFailed",
    });
    expect(status.ready).toBe(false);
    expect(h.events).toEqual([
      { type: "Normal", reason: "StateChanged", message: "Available -> Error" },
      {
        type: "Warning",
        reason: "AuthenticationFailed",
        message: "Available -> Error: 401 Unauthorized",
      },
    ]);
  });

  it("moves a new host whose Secret is missing to Error with SecretNotFound", async () => {
    const h = new HostHarness();
    h.connectError = new CredentialsError("SecretNotFound", "Secret lab/server-21-bmc is gone");
    await h.reconcile();
    expect(h.host.status?.state).toBe("Error");
    expect(h.host.status?.errorReason).toBe("SecretNotFound");
    expect(cond(h, "BMCReachable")?.status).toBe("Unknown");
    expect(cond(h, "CredentialsValid")).toMatchObject({
      status: "False",
      reason: "SecretNotFound",
    });
    expect(h.transitions).toEqual([[undefined, "Error"]]);
  });

  it("recovers from Error to the settled state when the BMC works again", async () => {
    const h = await enrolled();
    h.bmc.fail(new BmcAuthenticationError("401 Unauthorized"));
    await h.reconcile();
    await h.reconcile();
    expect(h.host.status?.errorCount).toBe(2);
    h.clearRecords();
    h.bmc.heal();
    const outcome = await h.reconcile();
    const status = h.host.status!;
    expect(status.state).toBe("Available");
    expect(status.errorReason).toBeUndefined();
    expect(status.errorMessage).toBeUndefined();
    expect(status.errorCount).toBeUndefined();
    expect(status.ready).toBe(true);
    expect(cond(h, "CredentialsValid")?.status).toBe("True");
    expect(h.events).toEqual([
      { type: "Normal", reason: "StateChanged", message: "Error -> Available" },
      { type: "Normal", reason: "Recovered", message: "recovered from AuthenticationFailed" },
    ]);
    expect(outcome).toEqual({ requeueAfterMs: config.powerCheckIntervalMs });
  });

  it("recovers a claimed host from Error into Claimed", async () => {
    const h = await enrolled();
    h.editSpec(spec => (spec.consumerRef = CONSUMER));
    h.bmc.fail(new BmcAuthenticationError("401"));
    await h.reconcile(); // Available -> Claimed needs no BMC call
    await h.reconcile(); // Claimed: maintenance fails terminally -> Error
    expect(h.host.status?.state).toBe("Error");
    h.bmc.heal();
    await h.reconcile();
    expect(h.host.status?.state).toBe("Claimed");
  });

  it("backs off exponentially with errorCount, capped at the maximum", async () => {
    vi.spyOn(Math, "random").mockReturnValue(1); // no jitter
    const h = await enrolled();
    h.bmc.fail(new BmcUnreachableError("down"));
    const delays: number[] = [];
    for (let i = 0; i < 9; i++) delays.push((await h.reconcile()).requeueAfterMs!);
    expect(delays).toEqual([
      5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000, 300_000,
    ]);
    expect(h.host.status?.errorCount).toBe(9);
    // the same failure again is reported once, not on every retry
    expect(h.events.filter(e => e.type === "Warning")).toHaveLength(1);
  });
});

describe("reconcileHost: paused and detached", () => {
  it("makes no BMC call at all for a paused host and reports Paused", async () => {
    const h = new HostHarness(makeHost({ annotations: { [Annotations.paused]: "" } }));
    const outcome = await h.reconcile();
    expect(outcome).toEqual({});
    expect(h.connectAttempts).toBe(0);
    expect(h.host.status?.state).toBe("Enrolling");
    expect(cond(h, "Paused")).toMatchObject({
      status: "True",
      reason: "Paused",
      message: "Cluster API paused annotation present",
    });
    expect(cond(h, "Ready")).toMatchObject({ status: "Unknown", reason: "Paused" });
    expect(h.host.status?.ready).toBe(false);
  });

  it("keeps a paused host's state and resumes where it was", async () => {
    const h = await enrolled();
    h.setAnnotations({ [Annotations.paused]: "true" });
    h.editSpec(spec => (spec.consumerRef = CONSUMER));
    await h.reconcile();
    await h.reconcile();
    expect(h.host.status?.state).toBe("Available");
    expect(h.connectAttempts).toBe(1); // enrollment only
    h.host.metadata!.annotations = {};
    await h.reconcile();
    expect(h.host.status?.state).toBe("Claimed");
    expect(cond(h, "Paused")?.status).toBe("False");
    expect(cond(h, "Ready")?.status).toBe("True");
  });

  it("keeps the error of a paused host in Error", async () => {
    const h = new HostHarness(
      makeHost({
        annotations: { [Annotations.paused]: "" },
        status: {
          state: "Error",
          errorReason: "AuthenticationFailed",
          errorMessage: "401",
          errorCount: 2,
        },
      }),
    );
    await h.reconcile();
    expect(h.host.status).toMatchObject({
      state: "Error",
      errorReason: "AuthenticationFailed",
      errorCount: 2,
    });
  });

  it("keeps a detached host's state with condition Detached and no BMC calls, and re-enrolls it when attached", async () => {
    const h = await enrolled();
    h.setAnnotations({ [Annotations.detached]: "" });
    const outcome = await h.reconcile();
    expect(outcome).toEqual({});
    expect(h.host.status?.state).toBe("Available");
    expect(h.connectAttempts).toBe(1);
    expect(cond(h, "Detached")).toMatchObject({
      status: "True",
      reason: "Detached",
      message: "detached annotation present: no BMC calls",
    });
    expect(cond(h, "Ready")).toMatchObject({ status: "Unknown", reason: "Detached" });
    expect(h.events).toEqual([]);

    h.host.metadata!.annotations = {};
    h.clearRecords();
    await h.reconcile();
    expect(h.connectAttempts).toBe(2);
    expect(h.bmc.calls.inventory).toBe(1);
    expect(h.host.status?.state).toBe("Available");
    expect(cond(h, "Detached")?.status).toBe("False");
    expect(cond(h, "Ready")?.status).toBe("True");
    expect(h.eventReasons()).toEqual(["Enrolled"]);
  });

  it("releases a host found Inspecting without a claim, with no BMC call", async () => {
    const h = new HostHarness(
      makeHost({ status: { state: "Inspecting", lastInventoryTime: NOW.toISOString() } }),
    );
    await h.reconcile();
    expect(h.connectAttempts).toBe(0);
    expect(h.host.status?.state).toBe("Available");
  });

  it("prefers detached over paused", async () => {
    const h = new HostHarness(
      makeHost({ annotations: { [Annotations.paused]: "", [Annotations.detached]: "" } }),
    );
    await h.reconcile();
    expect(cond(h, "Detached")?.status).toBe("True");
    expect(cond(h, "Ready")?.reason).toBe("Detached");
    expect(h.connectAttempts).toBe(0);
  });
});

describe("reconcileHost: power and annotations", () => {
  it("powers on a host that spec.online wants on, then reports it in sync", async () => {
    const h = await enrolled({ power: "Off", spec: { online: true } });
    // enrollment itself does not enforce power; the first idle reconcile does
    const outcome = await h.reconcile();
    expect(h.bmc.actions()).toEqual(["powerOn"]);
    expect(outcome).toEqual({ requeueAfterMs: config.powerSettleMs });
    expect(h.host.status?.observedPowerState).toBe("PoweringOn");
    expect(cond(h, "PowerStateSynced")).toMatchObject({
      status: "False",
      reason: "PowerStateMismatch",
      message: "spec.online=true, observed PoweringOn",
    });
    expect(h.events).toContainEqual({
      type: "Normal",
      reason: "PoweredOn",
      message: "spec.online is true; the host was Off",
    });

    h.clearRecords();
    const next = await h.reconcile();
    expect(h.bmc.actions()).toEqual([]);
    expect(next).toEqual({ requeueAfterMs: config.powerCheckIntervalMs });
    expect(h.host.status?.observedPowerState).toBe("On");
    expect(cond(h, "PowerStateSynced")).toMatchObject({
      status: "True",
      reason: "PowerStateMatches",
    });
  });

  it("powers off gracefully a host that spec.online wants off", async () => {
    const h = await enrolled({ power: "On", spec: { online: false } });
    await h.reconcile();
    expect(h.bmc.actions()).toEqual(["powerOff"]);
    expect(h.bmc.argsOf("powerOff")).toEqual([
      [{ gracefulTimeoutMs: config.gracefulShutdownTimeoutMs }],
    ]);
    expect(h.events.map(e => e.reason)).toContain("PoweredOff");
  });

  it("leaves power alone when spec.online is not set", async () => {
    const h = await enrolled({ power: "On" });
    await h.reconcile();
    expect(h.bmc.actions()).toEqual([]);
    expect(cond(h, "PowerStateSynced")).toBeUndefined();
  });

  it("does not fight a power change in progress", async () => {
    const h = await enrolled({ spec: { online: true } });
    h.bmc.power = "PoweringOff";
    await h.reconcile();
    expect(h.bmc.actions()).toEqual([]);
    expect(h.host.status?.observedPowerState).toBe("PoweringOff");
    expect(cond(h, "PowerStateSynced")).toBeUndefined();
  });

  it.each<[string, "On" | "Off", string, unknown[]]>([
    ["hard", "On", "restart", [{ force: true }]],
    ["soft", "On", "restart", [{ force: false }]],
    ["", "On", "restart", [{ force: false }]],
    ["hard", "Off", "powerOn", []],
  ])(
    "reboots on the reboot annotation (%j, host %s) once, after taking it off and recording it",
    async (value, power, action, args) => {
      const h = await enrolled({ power });
      h.setAnnotations({ [Annotations.reboot]: value });
      // First run: the annotation comes off and the request is recorded; no reset yet.
      expect(await h.reconcile()).toEqual({ requeueAfterMs: 0 });
      expect(h.bmc.actions()).toEqual([]);
      expect(h.removedAnnotations).toEqual([[Annotations.reboot]]);
      expect(cond(h, "Rebooting")).toMatchObject({ status: "True", reason: "RebootRequested" });
      const outcome = await h.reconcile();
      expect(cond(h, "Rebooting")).toMatchObject({ status: "False", reason: "Rebooted" });
      expect(h.bmc.actions()).toEqual([action]);
      expect(h.bmc.argsOf(action as "restart")).toEqual([args]);
      expect(h.removedAnnotations).toEqual([[Annotations.reboot]]);
      expect(h.host.metadata?.annotations?.[Annotations.reboot]).toBeUndefined();
      expect(outcome).toEqual({ requeueAfterMs: config.powerSettleMs });
      expect(h.host.status?.observedPowerState).toBe("PoweringOn");
      expect(h.events).toContainEqual({
        type: "Normal",
        reason: "Rebooted",
        message: value === "hard" ? "hard reset (ForceRestart)" : "graceful restart",
      });
      // the annotation is gone: the next reconcile does not reboot again
      h.bmc.resetCounters();
      await h.reconcile();
      expect(h.bmc.actions()).toEqual([]);
    },
  );

  it("reboots a Provisioned host too", async () => {
    const h = await provisioningStarted({ mode: "Network", networkBootTarget: "Pxe" });
    await h.reconcileUntil("Provisioned");
    h.clearRecords();
    h.setAnnotations({ [Annotations.reboot]: "hard" });
    await h.reconcile();
    await h.reconcile();
    expect(h.bmc.argsOf("restart")).toEqual([[{ force: true }]]);
    expect(h.host.status?.state).toBe("Provisioned");
  });

  it("re-reads the inventory on the refresh-inventory annotation and asks for its removal", async () => {
    const h = await enrolled();
    h.bmc.inventoryData.serialNumber = "SN-NEW";
    await h.reconcile();
    expect(h.bmc.calls.inventory).toBe(0); // fresh enough: not re-read unasked
    expect(h.host.status?.hardwareDetails?.serialNumber).toBe("SN-0001");

    h.setAnnotations({ [Annotations.refreshInventory]: "" });
    await h.reconcile();
    expect(h.bmc.calls.inventory).toBe(1);
    expect(h.host.status?.hardwareDetails?.serialNumber).toBe("SN-NEW");
    expect(h.removedAnnotations).toEqual([[Annotations.refreshInventory]]);
    expect(h.events).toContainEqual({
      type: "Normal",
      reason: "InventoryRefreshed",
      message: "Contoso R3500 (serial SN-NEW, 32 cores, 255.8 GiB)",
    });
  });

  it("re-reads the inventory unasked once inventoryIntervalMs has passed", async () => {
    const h = await enrolled();
    h.now = new Date(NOW.getTime() + config.inventoryIntervalMs);
    await h.reconcile();
    expect(h.bmc.calls.inventory).toBe(1);
    expect(h.host.status?.lastInventoryTime).toBe(h.now.toISOString());
    expect(h.removedAnnotations).toEqual([]);
    expect(h.eventReasons()).toEqual([]);
  });
});

describe("reconcileHost: status patches", () => {
  it("does not patch status when nothing changed", async () => {
    const h = await enrolled();
    await h.reconcile();
    expect(h.patches).toEqual([]);
    expect(h.events).toEqual([]);
    expect(h.bmc.calls.powerState).toBe(1);
  });

  it("compares canonical JSON: key order from the API server is not a change", async () => {
    const h = await enrolled();
    const reversed = (value: unknown): unknown =>
      Array.isArray(value)
        ? value.map(reversed)
        : value && typeof value === "object"
          ? Object.fromEntries(
              Object.entries(value)
                .reverse()
                .map(([k, v]) => [k, reversed(v)]),
            )
          : value;
    h.host = { ...h.host, status: reversed(h.host.status) as PhysicalHostStatus };
    await h.reconcile();
    expect(h.patches).toEqual([]);
  });

  it("patches when something changed, keeping lastTransitionTime of unchanged conditions", async () => {
    const h = await enrolled();
    const before = structuredClone(h.host.status!);
    h.bmc.power = "On";
    h.now = new Date(NOW.getTime() + 60_000);
    await h.reconcile();
    expect(h.patches).toHaveLength(1);
    expect(h.patches[0]!.observedPowerState).toBe("On");
    expect(h.host.status?.conditions).toEqual(before.conditions);
  });

  it("updates lastTransitionTime only for conditions whose status flips", async () => {
    const h = await enrolled();
    const later = new Date(NOW.getTime() + 60_000);
    h.now = later;
    h.bmc.fail(new BmcUnreachableError("down"));
    await h.reconcile();
    expect(cond(h, "BMCReachable")?.lastTransitionTime).toBe(later.toISOString());
    expect(cond(h, "Ready")?.lastTransitionTime).toBe(later.toISOString());
    expect(cond(h, "Inspected")?.lastTransitionTime).toBe(NOW.toISOString());
    expect(cond(h, "Paused")?.lastTransitionTime).toBe(NOW.toISOString());
  });

  it("reconciles the object it is given and leaves it unmodified", async () => {
    const host = makeHost();
    const copy = structuredClone(host);
    const h = new HostHarness();
    h.apply(await reconcileHost(host, h.deps()));
    expect(host).toEqual(copy);
    expect(h.host.status?.state).toBe("Available");
  });
});

describe("reconcileHost: moving with clusterctl", () => {
  const claimedHost = async () => {
    const h = await enrolled();
    h.editSpec(spec => {
      spec.consumerRef = CONSUMER;
    });
    await h.reconcile(); // Available -> Claimed
    return h;
  };

  it("keeps block-move on a claimed host until it is paused, then saves its status and lifts the block", async () => {
    const h = await claimedHost();
    expect(h.host.metadata?.annotations?.[Annotations.blockMove]).toBe("");
    expect(h.host.metadata?.annotations?.[Annotations.savedStatus]).toBeUndefined();
    h.setAnnotations({ [Annotations.paused]: "beskar7-machine" });
    h.bmc.resetCounters();
    await h.reconcile();
    expect(h.bmc.actions()).toEqual([]);
    expect(h.host.metadata?.annotations?.[Annotations.blockMove]).toBeUndefined();
    const saved = JSON.parse(h.host.metadata!.annotations![Annotations.savedStatus]!);
    expect(saved).toMatchObject({
      state: "Claimed",
      hardwareDetails: h.host.status?.hardwareDetails,
    });
  });

  it("restores a moved host's status from the annotation before anything else, without the BMC", async () => {
    const source = await claimedHost();
    source.setAnnotations({ [Annotations.paused]: "beskar7-machine" });
    await source.reconcile();
    // clusterctl copies spec and metadata, not status.
    const moved = new HostHarness(
      makeHost({ spec: { consumerRef: CONSUMER }, annotations: source.host.metadata!.annotations }),
    );
    await moved.reconcile();
    expect(moved.connectAttempts).toBe(0);
    expect(moved.host.status?.state).toBe("Claimed");
    expect(moved.host.status?.hardwareDetails).toEqual(source.host.status?.hardwareDetails);
    expect(moved.host.metadata?.annotations?.[Annotations.savedStatus]).toBeUndefined();
    expect(moved.eventReasons()).toEqual(["StatusRestored"]);
  });

  it("ignores a saved status that is not one", async () => {
    for (const raw of ["not json", "[]", '{"state":"Sleeping"}']) {
      const h = new HostHarness(makeHost({ annotations: { [Annotations.savedStatus]: raw } }));
      await h.reconcile();
      expect(h.host.status?.state).toBe("Available"); // enrolled as a new host
    }
  });
});
