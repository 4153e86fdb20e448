import { describe, expect, it } from "vitest";

import { Annotations, type HostStateName, type PhysicalHost } from "../../../capabilities/api";
import type { EventInput } from "../../../capabilities/lib/events";
import type { FinalizeResult } from "../../../capabilities/lib/runtime";
import { BmcFailure, toBmcFailure } from "../../../capabilities/physical-host/bmc";
import { CredentialsError } from "../../../capabilities/physical-host/credentials";
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
import { BOOT_ISO, CONSUMER, NOW, makeHost, mergePatch } from "./helpers";

const config: FinalizeConfig = { ...defaultHostControllerConfig, deleteAttempts: 5 };
const noJitter = () => 1 - Number.EPSILON;

/** Runs finalizeHost on a host and applies its results as the runtime would. */
function setup(host: PhysicalHost, bmc = new FakeBmc(), connectError?: Error) {
  const connector = bmc.connector();
  const patches: StatusUpdate[] = [];
  const events: EventInput[] = [];
  let connectAttempts = 0;
  const deps: FinalizeDeps = {
    connect: async h => {
      connectAttempts++;
      if (connectError) throw toBmcFailure(connectError);
      return connector.connect(h);
    },
    config,
    now: () => NOW,
    random: noJitter,
  };
  const t = {
    host,
    bmc,
    deps,
    patches,
    events,
    connectAttempts: () => connectAttempts,
    releases: connector.releases,
    /** One run: its result, with status merged into the host and events kept. */
    async run(signal?: AbortSignal): Promise<FinalizeResult> {
      const result = await finalizeHost(structuredClone(t.host), deps, signal);
      if (result.status) {
        patches.push(structuredClone(result.status) as StatusUpdate);
        t.host = {
          ...t.host,
          status: JSON.parse(JSON.stringify(mergePatch(t.host.status ?? {}, result.status))),
        };
      }
      events.push(...(result.events ?? []));
      return result;
    },
  };
  return t;
}

const deleting = (host: PhysicalHost): PhysicalHost => {
  host.metadata!.deletionTimestamp = NOW;
  return host;
};

describe("finalizeHost: entering deletion", () => {
  it("marks the host Deleting in one write, restarts the attempt count, and runs again at once", async () => {
    const t = setup(deleting(makeHost({ status: { state: "Error", errorCount: 9 } })));
    const result = await t.run();
    expect(result).toMatchObject({ requeueAfterMs: 0 });
    expect(result.done).toBeUndefined();
    expect(t.connectAttempts()).toBe(0);
    expect(t.patches).toHaveLength(1);
    expect(t.patches[0]).toMatchObject({ state: "Deleting", errorCount: null });
    expect(t.patches[0]!.conditions?.[0]).toMatchObject({
      type: "Ready",
      status: "False",
      reason: "Deleting",
      message: "deprovisioning before the object is removed",
    });
  });
});

describe("finalizeHost: a claimed host", () => {
  const claimedHost = (state: HostStateName = "Provisioned") =>
    deleting(makeHost({ spec: { consumerRef: CONSUMER }, status: { state } }));

  it("holds the delete, marks the host Deleting and warns once", async () => {
    const t = setup(claimedHost());
    const result = await t.run();
    expect(result.done).toBeUndefined();
    expect(result.requeueAfterMs).toBeUndefined(); // the release is an edit, which runs it again
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
  });

  it("says nothing more once the host is already Deleting", async () => {
    const t = setup(claimedHost("Deleting"));
    expect(await t.run()).toEqual({});
    expect(t.patches).toEqual([]);
    expect(t.events).toEqual([]);
    expect(t.connectAttempts()).toBe(0);
  });

  it("keeps the host's other conditions when marking it Deleting", async () => {
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
    const t = setup(host);
    await t.run();
    expect(t.patches[0]!.conditions?.map(c => c.type)).toEqual(["Ready", "BMCReachable"]);
  });

  it("deprovisions and releases it with the force-delete annotation", async () => {
    expect(FORCE_DELETE_ANNOTATION).toBe("beskar7.infrastructure.cluster.x-k8s.io/force-delete");
    const host = claimedHost();
    host.metadata!.annotations = { [FORCE_DELETE_ANNOTATION]: "true" };
    const t = setup(host, new FakeBmc({ power: "On" }));
    t.bmc.preload(BOOT_ISO);
    await t.bmc.setBootOverride({ target: "Cd" });
    t.bmc.resetCounters();

    await t.run(); // marks Deleting
    const result = await t.run();
    expect(result.done).toBe(true);
    expect(t.bmc.actions()).toEqual(["ejectMedia", "clearBootOverride", "powerOff"]);
    expect(t.bmc.argsOf("powerOff")).toEqual([
      [{ gracefulTimeoutMs: config.gracefulShutdownTimeoutMs }],
    ]);
    expect(t.events.at(-1)).toEqual({
      type: "Normal",
      reason: "Deprovisioned",
      message: "media ejected, boot override cleared, powered off; released",
    });
    expect(t.releases()).toBe(1);
    expect(t.host.status?.conditions?.find(c => c.type === "Deprovisioned")).toMatchObject({
      status: "True",
      reason: "CleanedUp",
    });
  });
});

describe("finalizeHost: a free host", () => {
  it("cleans up only what needs it and lets the finalizer go", async () => {
    const t = setup(
      deleting(makeHost({ status: { state: "Deleting" } })),
      new FakeBmc({ power: "Off" }),
    );
    expect((await t.run()).done).toBe(true);
    expect(t.bmc.actions()).toEqual([]);
    // Three reads: the media, the override, and the power state (powerOff finding it off).
    expect(t.bmc.calls.virtualMedia + t.bmc.calls.bootOverride + t.bmc.calls.powerOff).toBe(3);
    expect(t.releases()).toBe(1);
  });

  it("lets a detached host go without touching the BMC", async () => {
    const t = setup(
      deleting(
        makeHost({ annotations: { [Annotations.detached]: "" }, status: { state: "Deleting" } }),
      ),
    );
    expect((await t.run()).done).toBe(true);
    expect(t.connectAttempts()).toBe(0);
    expect(t.events).toEqual([
      { type: "Normal", reason: "Released", message: "detached: deleted without touching the BMC" },
    ]);
  });

  it("still waits for a claim on a detached host (the claim check comes first)", async () => {
    const t = setup(
      deleting(
        makeHost({
          spec: { consumerRef: CONSUMER },
          annotations: { [Annotations.detached]: "" },
          status: { state: "Available" },
        }),
      ),
    );
    expect((await t.run()).done).toBeUndefined();
    expect((await t.run()).done).toBeUndefined();
    expect(t.events.map(e => e.reason)).toEqual(["DeletionBlocked"]);
    expect(t.connectAttempts()).toBe(0);
  });

  it("stops before its next BMC action once aborted", async () => {
    const t = setup(
      deleting(makeHost({ status: { state: "Deleting" } })),
      new FakeBmc({ power: "On" }),
    );
    const abort = new AbortController();
    abort.abort(new Error("stopping"));
    await expect(t.run(abort.signal)).rejects.toThrow("stopping");
    expect(t.bmc.actions()).toEqual([]);
    expect(t.releases()).toBe(1);
  });
});

describe("finalizeHost: credentials gone with the host", () => {
  it("releases the host at once with an event and condition saying no cleanup was possible", async () => {
    const gone = new CredentialsError(
      "SecretNotFound",
      "Secret lab/server-21-bmc named by spec.redfishConnection.credentialsSecretRef does not exist",
    );
    const t = setup(deleting(makeHost({ status: { state: "Deleting" } })), new FakeBmc(), gone);
    const result = await t.run();
    expect(result.done).toBe(true);
    expect(t.connectAttempts()).toBe(1);
    expect(t.events).toHaveLength(1);
    expect(t.events[0]).toMatchObject({ type: "Warning", reason: "FinalizedWithoutCleanup" });
    expect(t.events[0]!.message).toContain("no BMC cleanup was possible");
    expect(t.events[0]!.message).toContain("server-21-bmc");
    expect(t.host.status?.conditions?.find(c => c.type === "Deprovisioned")).toMatchObject({
      status: "False",
      reason: "CleanupImpossible",
    });
  });
});

describe("finalizeHost: a dead BMC", () => {
  // errorCount counts delete attempts once the host is Deleting.
  const withErrors = (errorCount?: number) =>
    deleting(makeHost({ status: { state: "Deleting", ...(errorCount ? { errorCount } : {}) } }));

  it("holds the delete and asks for a retry with a growing, capped delay, counted in status", async () => {
    const delays: number[] = [];
    for (const errorCount of [0, 1, 2, 3]) {
      const t = setup(
        withErrors(errorCount),
        new FakeBmc(),
        new BmcUnreachableError("EHOSTUNREACH"),
      );
      const result = await t.run();
      expect(result.done).toBeUndefined();
      expect(t.host.status?.errorCount).toBe(errorCount + 1);
      delays.push(result.requeueAfterMs!);
      expect(t.events).toEqual([
        {
          type: "Warning",
          reason: "DeprovisionFailed",
          message: `attempt ${errorCount + 1} of 5 failed (BMCUnreachable: EHOSTUNREACH); retrying in ${Math.round(delays.at(-1)! / 1000)} s`,
        },
      ]);
    }
    expect(delays).toEqual([5_000, 10_000, 20_000, 40_000]);

    const capped = setup(withErrors(20), new FakeBmc(), new BmcUnreachableError("down"));
    capped.deps.config = { ...config, deleteAttempts: 50 };
    expect((await capped.run()).requeueAfterMs).toBe(config.errorBackoffMaxMs);
  });

  it("gives up with one FinalizedWithoutCleanup warning on the last attempt", async () => {
    const t = setup(
      withErrors(config.deleteAttempts - 1),
      new FakeBmc(),
      new BmcUnreachableError("EHOSTUNREACH"),
    );
    expect((await t.run()).done).toBe(true);
    expect(t.events).toHaveLength(1);
    expect(t.events[0]).toMatchObject({ type: "Warning", reason: "FinalizedWithoutCleanup" });
    expect(t.events[0]!.message).toContain("gave up after 5 attempts");
    expect(t.events[0]!.message).toContain("BMCUnreachable: EHOSTUNREACH");
  });

  it("also gives up past the last attempt", async () => {
    const t = setup(
      withErrors(config.deleteAttempts + 3),
      new FakeBmc(),
      new BmcUnreachableError("down"),
    );
    expect((await t.run()).done).toBe(true);
    expect(t.events.map(e => e.reason)).toEqual(["FinalizedWithoutCleanup"]);
  });

  it("counts attempts across runs from status alone (a restart loses nothing)", async () => {
    const t = setup(withErrors(), new FakeBmc(), new BmcUnreachableError("down"));
    for (let i = 0; i < config.deleteAttempts - 1; i++)
      expect((await t.run()).done).toBeUndefined();
    expect(t.host.status?.errorCount).toBe(config.deleteAttempts - 1);
    // A new process sees only the object: the count goes on from status.
    const restarted = setup(t.host, new FakeBmc(), new BmcUnreachableError("down"));
    expect((await restarted.run()).done).toBe(true);
  });

  it("releases the connection when a BMC action fails, and retries", async () => {
    const bmc = new FakeBmc({ power: "On" });
    bmc.fail(new BmcTlsError("certificate has expired"), "powerOff");
    const t = setup(withErrors(), bmc);
    const result = await t.run();
    expect(result.done).toBeUndefined();
    expect(t.releases()).toBe(1);
    expect(result.requeueAfterMs).toBe(config.errorBackoffBaseMs);
    expect(t.events[0]!.message).toContain("TLSFailure: certificate has expired");
  });
});

describe("finalizeHost: a host the operator may not act on", () => {
  it.each([
    ["AddressRefused", "spec.redfishConnection.address: 169.254.169.254 is a link-local address"],
    ["NamespaceIgnored", "namespace kube-system is skipped by the admission webhooks"],
  ] as const)("releases a %s host at once, without retrying", async (reason, message) => {
    const refused = new BmcFailure(reason, message, false);
    const t = setup(deleting(makeHost({ status: { state: "Deleting" } })), new FakeBmc(), refused);
    const result = await t.run();
    expect(result.done).toBe(true);
    expect(t.connectAttempts()).toBe(1);
    expect(t.bmc.actions()).toEqual([]);
    expect(t.events[0]).toMatchObject({ type: "Warning", reason: "FinalizedWithoutCleanup" });
    expect(t.events[0]!.message).toContain(message);
  });
});
