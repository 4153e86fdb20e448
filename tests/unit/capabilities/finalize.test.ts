import { describe, expect, it } from "vitest";

import { Annotations, type HostStateName, type PhysicalHost } from "../../../capabilities/api";
import type { EventInput } from "../../../capabilities/lib/events";
import { toBmcFailure } from "../../../capabilities/physical-host/bmc";
import {
  FORCE_DELETE_ANNOTATION,
  finalizeHost,
  type FinalizeConfig,
  type FinalizeDeps,
} from "../../../capabilities/physical-host/finalize";
import {
  defaultHostControllerConfig,
  type StatusUpdate,
} from "../../../capabilities/physical-host/states";
import { BmcTlsError, BmcUnreachableError } from "../../../redfish";
import { FakeBmc } from "./fake-bmc";
import { BOOT_ISO, CONSUMER, NOW, makeHost } from "./helpers";

const config: FinalizeConfig = { ...defaultHostControllerConfig, deleteAttempts: 5 };

function setup(bmc = new FakeBmc(), connectError?: Error) {
  const connector = bmc.connector();
  const patches: StatusUpdate[] = [];
  const events: EventInput[] = [];
  const retries: Array<{ delayMs: number; attempt: number }> = [];
  let connectAttempts = 0;
  const deps: FinalizeDeps = {
    connect: async host => {
      connectAttempts++;
      if (connectError) throw toBmcFailure(connectError);
      return connector.connect(host);
    },
    patchStatus: async (_host, status) => {
      patches.push(structuredClone(status));
    },
    record: async (_obj, event) => {
      events.push(event);
    },
    config,
    retryAfter: (_host, delayMs, attempt) => {
      retries.push({ delayMs, attempt });
    },
    now: () => NOW,
  };
  return {
    bmc,
    deps,
    patches,
    events,
    retries,
    connectAttempts: () => connectAttempts,
    releases: connector.releases,
  };
}

const deleting = (host: PhysicalHost): PhysicalHost => {
  host.metadata!.deletionTimestamp = NOW;
  return host;
};

describe("finalizeHost: a claimed host", () => {
  const claimedHost = (state: HostStateName = "Provisioned") =>
    deleting(makeHost({ spec: { consumerRef: CONSUMER }, status: { state } }));

  it("holds the delete, marks the host Deleting and warns once", async () => {
    const t = setup();
    expect(await finalizeHost(claimedHost(), t.deps)).toBe(false);
    expect(t.connectAttempts()).toBe(0);
    expect(t.patches).toEqual([
      {
        state: "Deleting",
        errorCount: null,
        conditions: [
          {
            type: "Ready",
            status: "False",
            reason: "Deleting",
            message: "deletion waits until Beskar7Machine worker-0 releases the host",
            observedGeneration: 1,
            lastTransitionTime: NOW.toISOString(),
          },
        ],
      },
    ]);
    expect(t.events).toEqual([
      {
        type: "Warning",
        reason: "DeletionBlocked",
        message: `claimed by Beskar7Machine worker-0: delete that first, or annotate ${FORCE_DELETE_ANNOTATION}=true`,
      },
    ]);
    expect(t.retries).toEqual([]);
  });

  it("says nothing more once the host is already Deleting", async () => {
    const t = setup();
    expect(await finalizeHost(claimedHost("Deleting"), t.deps)).toBe(false);
    expect(t.patches).toEqual([]);
    expect(t.events).toEqual([]);
    expect(t.connectAttempts()).toBe(0);
  });

  it("keeps the host's other conditions when marking it Deleting", async () => {
    const t = setup();
    const host = claimedHost();
    host.status!.conditions = [
      {
        type: "BMCReachable",
        status: "True",
        reason: "Connected",
        message: "",
        lastTransitionTime: "2025-01-01T00:00:00.000Z",
      },
    ];
    await finalizeHost(host, t.deps);
    expect(t.patches[0]!.conditions?.map(c => c.type)).toEqual(["Ready", "BMCReachable"]);
  });

  it("deprovisions and releases it with the force-delete annotation", async () => {
    expect(FORCE_DELETE_ANNOTATION).toBe("beskar7.infrastructure.cluster.x-k8s.io/force-delete");
    const t = setup(new FakeBmc({ power: "On" }));
    t.bmc.preload(BOOT_ISO);
    await t.bmc.setBootOverride({ target: "Cd" });
    t.bmc.resetCounters();
    const host = claimedHost();
    host.metadata!.annotations = { [FORCE_DELETE_ANNOTATION]: "true" };

    expect(await finalizeHost(host, t.deps)).toBe(true);
    expect(t.bmc.actions()).toEqual(["ejectMedia", "clearBootOverride", "powerOff"]);
    expect(t.bmc.argsOf("powerOff")).toEqual([
      [{ gracefulTimeoutMs: config.gracefulShutdownTimeoutMs }],
    ]);
    expect(t.events).toEqual([
      {
        type: "Normal",
        reason: "Deprovisioned",
        message: "media ejected, boot override cleared, powered off; released",
      },
    ]);
    expect(t.releases()).toBe(1);
    // Entering deletion marks the host Deleting and restarts the attempt count.
    expect(t.patches).toHaveLength(1);
    expect(t.patches[0]).toMatchObject({ state: "Deleting", errorCount: null });
    expect(t.patches[0]!.conditions?.[0]?.message).toBe(
      "deprovisioning before the object is removed",
    );
  });
});

describe("finalizeHost: a free host", () => {
  it("cleans up only what needs it and lets the finalizer go", async () => {
    const t = setup(new FakeBmc({ power: "Off" }));
    expect(await finalizeHost(deleting(makeHost({ status: { state: "Available" } })), t.deps)).toBe(
      true,
    );
    expect(t.bmc.actions()).toEqual([]);
    expect(t.bmc.calls.virtualMedia + t.bmc.calls.bootOverride + t.bmc.calls.powerState).toBe(3);
    expect(t.releases()).toBe(1);
  });

  it("lets a detached host go without touching the BMC", async () => {
    const t = setup();
    const host = deleting(makeHost({ annotations: { [Annotations.detached]: "" } }));
    expect(await finalizeHost(host, t.deps)).toBe(true);
    expect(t.connectAttempts()).toBe(0);
    expect(t.events).toEqual([
      {
        type: "Normal",
        reason: "Released",
        message: "detached: deleted without touching the BMC",
      },
    ]);
  });

  it("still waits for a claim on a detached host (the claim check comes first)", async () => {
    const t = setup();
    const host = deleting(
      makeHost({
        spec: { consumerRef: CONSUMER },
        annotations: { [Annotations.detached]: "" },
        status: { state: "Unmanaged" },
      }),
    );
    expect(await finalizeHost(host, t.deps)).toBe(false);
    expect(t.events.map(e => e.reason)).toEqual(["DeletionBlocked"]);
  });
});

describe("finalizeHost: a dead BMC", () => {
  // errorCount counts delete attempts once the host is Deleting.
  const withErrors = (errorCount?: number) =>
    deleting(makeHost({ status: { state: "Deleting", ...(errorCount ? { errorCount } : {}) } }));

  it("holds the delete and asks for a retry with a growing, capped delay", async () => {
    const delays: number[] = [];
    for (const errorCount of [0, 1, 2, 3]) {
      const t = setup(new FakeBmc(), new BmcUnreachableError("connect EHOSTUNREACH"));
      expect(await finalizeHost(withErrors(errorCount), t.deps)).toBe(false);
      expect(t.retries).toHaveLength(1);
      expect(t.retries[0]!.attempt).toBe(errorCount + 1);
      delays.push(t.retries[0]!.delayMs);
      expect(t.events).toEqual([
        {
          type: "Warning",
          reason: "DeprovisionFailed",
          message: `attempt ${errorCount + 1} of 5 failed (BMCUnreachable: connect EHOSTUNREACH); retrying in ${delays.at(-1)! / 1000} s`,
        },
      ]);
    }
    expect(delays).toEqual([5_000, 10_000, 20_000, 40_000]);

    const capped = setup(new FakeBmc(), new BmcUnreachableError("down"));
    const longer = { ...config, deleteAttempts: 50 };
    capped.deps.config = longer;
    await finalizeHost(withErrors(20), capped.deps);
    expect(capped.retries[0]!.delayMs).toBe(config.errorBackoffMaxMs);
  });

  it("gives up with one FinalizedWithoutCleanup warning on the last attempt", async () => {
    const t = setup(new FakeBmc(), new BmcUnreachableError("connect EHOSTUNREACH"));
    expect(await finalizeHost(withErrors(config.deleteAttempts - 1), t.deps)).toBe(true);
    expect(t.retries).toEqual([]);
    expect(t.events).toHaveLength(1);
    expect(t.events[0]).toMatchObject({ type: "Warning", reason: "FinalizedWithoutCleanup" });
    expect(t.events[0]!.message).toContain("gave up after 5 attempts");
    expect(t.events[0]!.message).toContain("BMCUnreachable: connect EHOSTUNREACH");
  });

  it("also gives up past the last attempt", async () => {
    const t = setup(new FakeBmc(), new BmcUnreachableError("down"));
    expect(await finalizeHost(withErrors(config.deleteAttempts + 3), t.deps)).toBe(true);
    expect(t.events.map(e => e.reason)).toEqual(["FinalizedWithoutCleanup"]);
  });

  it("counts from the first attempt when deletion starts, whatever the reconciler counted", async () => {
    const t = setup(new FakeBmc(), new BmcUnreachableError("down"));
    const host = deleting(makeHost({ status: { state: "Error", errorCount: 9 } }));
    expect(await finalizeHost(host, t.deps)).toBe(false);
    expect(t.retries).toEqual([{ delayMs: config.errorBackoffBaseMs, attempt: 1 }]);
  });

  it("keeps counting when a late reconcile overwrote the Deleting state", async () => {
    const t = setup(new FakeBmc(), new BmcUnreachableError("down"));
    t.deps.attempts = new Map();
    await finalizeHost(withErrors(), t.deps);
    // A reconcile in flight when deletion began writes its own status afterwards.
    await finalizeHost(deleting(makeHost({ status: { state: "Error", errorCount: 4 } })), t.deps);
    expect(t.retries.map(r => r.attempt)).toEqual([1, 2]);
  });

  it("holds calls that arrive while another call for the object runs", async () => {
    const t = setup(new FakeBmc(), new BmcUnreachableError("down"));
    t.deps.running = new Set();
    t.deps.attempts = new Map();
    const [first, second] = await Promise.all([
      finalizeHost(withErrors(), t.deps),
      finalizeHost(withErrors(), t.deps),
    ]);
    expect([first, second]).toEqual([false, false]);
    expect(t.connectAttempts()).toBe(1);
    expect(t.events.map(e => e.reason)).toEqual(["DeprovisionFailed"]);
  });

  it("does nothing while a retry is scheduled, however often Pepr calls", async () => {
    const t = setup(new FakeBmc(), new BmcUnreachableError("down"));
    t.deps.retryPending = () => true;
    expect(await finalizeHost(withErrors(1), t.deps)).toBe(false);
    expect(t.connectAttempts()).toBe(0);
    expect(t.events).toEqual([]);
  });

  it("releases the connection when a BMC action fails, and retries", async () => {
    const bmc = new FakeBmc({ power: "On" });
    bmc.fail(new BmcTlsError("certificate has expired"), "powerOff");
    const t = setup(bmc);
    expect(await finalizeHost(withErrors(), t.deps)).toBe(false);
    expect(t.releases()).toBe(1);
    expect(t.retries).toEqual([{ delayMs: config.errorBackoffBaseMs, attempt: 1 }]);
    expect(t.events[0]!.message).toContain("TLSFailure: certificate has expired");
  });
});
