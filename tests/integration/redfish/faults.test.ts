// Fault handling through the driver's public API against injected test-BMC faults: latency, a
// 503 that is retried, dropped connections, a hung request, an expired session, a BMC that is
// down and a wrong password. Each test checks both the driver's outcome (typed errors) and the
// BMC's record of what actually happened (nothing done twice).
import { afterEach, describe, expect, it } from "vitest";

import {
  BmcAuthenticationError,
  BmcTlsError,
  BmcUnreachableError,
  createRedfishClient,
  isRedfishError,
} from "../../../redfish/index";
import { messages } from "../../../lab/bmc/errors";
import { listMockups } from "../../../lab/bmc/mockup-store";
import { TestBmc } from "../../../lab/bmc/server";
import { fastClient, measured, type Rig, startRig } from "./harness";

const folder = (keyword: string): string => {
  const found = listMockups().find(name => name.includes(keyword));
  if (!found) throw new Error(`no mockup matching ${keyword}`);
  return found;
};

const rigs: Rig[] = [];
afterEach(async () => {
  await Promise.all(rigs.splice(0).map(r => r.close()));
});

async function rig(
  keyword: string,
  ...args: Parameters<typeof startRig> extends [unknown, ...infer R] ? R : never
): Promise<Rig> {
  const r = await startRig({ mockup: folder(keyword), powerState: "Off" }, ...args);
  rigs.push(r);
  return r;
}

describe("driver under injected faults", () => {
  it("pays the injected latency per request without extra requests", async () => {
    const fast = await rig("dell");
    const baseline = await measured(fast.bmc, () => fast.system.inventory());
    const slow = await rig("dell");
    slow.bmc.latencyMs = 50;
    const delayed = await measured(slow.bmc, () => slow.system.inventory());
    expect(delayed.requests).toBe(baseline.requests);
    // Requests may overlap (the driver runs a few in parallel), but never faster than one
    // round of latency per sequential step; and no slower than fully serial plus slack.
    expect(delayed.ms).toBeGreaterThanOrEqual(50 * 3);
    expect(delayed.ms).toBeLessThan(50 * delayed.requests + 2000);
  });

  it("retries a GET answered 503 and succeeds", async () => {
    const r = await rig("hpe");
    await r.system.powerState();
    const systemPath = r.bmc.systems[0] ?? "";
    r.bmc.inject({
      kind: "status",
      status: 503,
      match: { method: "GET", path: systemPath },
      retryAfterSeconds: 0,
    });
    const before = r.bmc.requests.count({ method: "GET", path: systemPath });
    expect(await r.system.powerState()).toBe("Off");
    expect(r.bmc.requests.count({ method: "GET", path: systemPath }) - before).toBe(2);
    expect(r.client.stats().retries).toBeGreaterThanOrEqual(1);
  });

  it("retries a reset answered 503 and performs it exactly once", async () => {
    const r = await rig("dell");
    await r.system.powerState();
    r.bmc.inject({
      kind: "status",
      status: 503,
      match: { method: "POST", path: /ComputerSystem\.Reset$/ },
    });
    await r.system.powerOn();
    expect(r.bmc.powerState()).toBe("On");
    expect(r.bmc.requests.count({ method: "POST", path: /ComputerSystem\.Reset$/ })).toBe(2);
    expect(r.bmc.actionsOf("reset")).toHaveLength(1);
  });

  it("recovers from a dropped connection on a read", async () => {
    const r = await rig("lenovo");
    // Enrollment's system body comes with the expanded Systems collection; the manager is a GET.
    r.bmc.inject({ kind: "drop", match: { method: "GET", path: /\/Managers\/1$/ } });
    const inv = await r.system.inventory();
    expect(inv.serialNumber).toBeTruthy();
    expect(inv.bmcFirmwareVersion).toBeTruthy();
    expect(inv.warnings).toEqual([]);
    expect(
      r.bmc.requests.count({ method: "GET", path: "/redfish/v1/Managers/1" }),
    ).toBeGreaterThanOrEqual(2);
  });

  it("never performs an action twice when the connection drops before it is answered", async () => {
    const r = await rig("supermicro");
    await r.system.powerState();
    r.bmc.inject({ kind: "drop", match: { method: "POST", path: /ComputerSystem\.Reset$/ } });
    const outcome = await r.system.powerOn().then(
      () => "done",
      (err: unknown) => err,
    );
    // The dropped request never reached the handler: either the driver retried it (one reset)
    // or it reported the BMC unreachable (no reset) — never two resets.
    if (outcome === "done") {
      expect(r.bmc.actionsOf("reset")).toHaveLength(1);
      expect(r.bmc.powerState()).toBe("On");
    } else {
      expect(outcome).toBeInstanceOf(BmcUnreachableError);
      expect(r.bmc.actionsOf("reset")).toHaveLength(0);
    }
  });

  it("times out a hung request and retries it", async () => {
    const r = await rig("dmtf", { timeoutMs: 300 });
    await r.system.powerState();
    r.bmc.inject({ kind: "hang", match: { method: "GET", path: /\/Systems\/437XR1138R2$/ } });
    const started = performance.now();
    expect(await r.system.powerState()).toBe("Off");
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    expect(
      r.bmc.requests.count({ method: "GET", path: "/redfish/v1/Systems/437XR1138R2" }),
    ).toBeGreaterThanOrEqual(3);
  });

  it("gives up on a BMC that hangs every request with a typed unreachable error", async () => {
    const r = await rig("dmtf", {
      timeoutMs: 200,
      retry: { attempts: 1, baseDelayMs: 10, maxDelayMs: 20 },
    });
    await r.system.powerState();
    r.bmc.inject({ kind: "hang", count: 100 });
    const err = await r.system.powerState().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BmcUnreachableError);
    expect((err as BmcUnreachableError).retryable).toBe(true);
  });

  it("retries a boot override HPE refuses during POST, until the window passes", async () => {
    const r = await startRig(
      { mockup: folder("hpe"), powerState: "Off", profile: { postWindowMs: 400 } },
      { retry: { attempts: 5, baseDelayMs: 100, maxDelayMs: 400 } },
    );
    rigs.push(r);
    await r.system.powerOn();
    const systemPath = r.bmc.systems[0] ?? "";
    const before = r.bmc.requests.count({ method: "PATCH", path: systemPath });
    await r.system.setBootOverride({ target: "Pxe", mode: "UEFI" });
    expect(r.bmc.bootOverride()).toMatchObject({
      BootSourceOverrideTarget: "Pxe",
      BootSourceOverrideEnabled: "Once",
    });
    // At least one PATCH was refused with UnableToModifyDuringSystemPOST and retried.
    expect(
      r.bmc.requests.count({ method: "PATCH", path: systemPath }) - before,
    ).toBeGreaterThanOrEqual(2);
    expect(r.bmc.actionsOf("boot")).toHaveLength(1);
  });

  it("retries an insert answered 500 SYS518 (iDRAC not ready) and mounts once", async () => {
    const r = await rig("dell");
    await r.system.virtualMedia();
    r.bmc.inject({
      kind: "status",
      status: 500,
      match: { method: "POST", path: /InsertMedia$/ },
      body: r.bmc.errorBody(messages.dellNotReady()),
    });
    const image = "http://127.0.0.1:9/installer.iso";
    await r.system.insertMedia({ image, kind: "cd" });
    expect(r.bmc.requests.count({ method: "POST", path: /InsertMedia$/ })).toBe(2);
    expect(r.bmc.actionsOf("insert")).toHaveLength(1);
    expect(r.bmc.insertedMedia().map(s => s.image)).toEqual([image]);
  });

  it("logs in again when the session expires, and keeps working", async () => {
    const r = await rig("hpe");
    await r.system.inventory();
    expect(r.bmc.actionsOf("session-create")).toHaveLength(1);
    r.bmc.expireSessions();
    expect(await r.system.powerState()).toBe("Off");
    expect(r.bmc.actionsOf("session-create")).toHaveLength(2);
    await r.system.powerOn();
    expect(r.bmc.actionsOf("reset")).toHaveLength(1);
  });

  it("handles a session Location given as an absolute URL, or missing", async () => {
    for (const sessionLocation of ["absolute", "none"] as const) {
      const bmc = await TestBmc.start({
        mockup: folder("dell"),
        tls: false,
        profile: { sessionLocation },
      });
      const client = createRedfishClient({
        address: bmc.url,
        credentials: { username: bmc.username, password: bmc.password },
        ...fastClient,
      });
      try {
        await client.system().powerState();
        expect(bmc.activeSessions).toBe(1);
        await client.close();
        expect(bmc.activeSessions).toBe(0);
      } finally {
        await bmc.stop();
      }
    }
  });

  it("reports a BMC that is down as unreachable", async () => {
    const r = await rig("dell", { retry: { attempts: 1, baseDelayMs: 10, maxDelayMs: 20 } });
    await r.system.powerState();
    await r.bmc.down();
    const err = await r.system.powerState().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BmcUnreachableError);
    expect(isRedfishError(err) && err.code).toBe("Unreachable");
    await r.bmc.up();
    expect(await r.system.powerState()).toBe("Off");
  });

  it("reports a wrong password as an authentication error that does not contain it", async () => {
    const bmc = await TestBmc.start({ mockup: folder("lenovo") });
    const password = "Wr0ng-Passw0rd-Do-Not-Leak";
    const client = createRedfishClient({
      address: bmc.url,
      credentials: { username: bmc.username, password },
      tls: { caBundle: bmc.caPem },
      ...fastClient,
    });
    try {
      const err = await client
        .system()
        .inventory()
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BmcAuthenticationError);
      const rendered = [
        String(err),
        (err as Error).message,
        JSON.stringify(err),
        (err as Error).stack ?? "",
      ];
      for (const text of rendered) expect(text).not.toContain(password);
      expect(bmc.actionsOf("session-create")).toHaveLength(0);
    } finally {
      await client.close();
      await bmc.stop();
    }
  });

  it("refuses a BMC whose certificate is not in the CA bundle", async () => {
    const bmc = await TestBmc.start({ mockup: folder("dmtf") });
    const other = await TestBmc.start({ mockup: folder("dmtf") });
    const client = createRedfishClient({
      address: bmc.url,
      credentials: { username: bmc.username, password: bmc.password },
      tls: { caBundle: other.caPem },
      ...fastClient,
    });
    try {
      await expect(client.system().powerState()).rejects.toBeInstanceOf(BmcTlsError);
      expect(bmc.actionsOf("session-create")).toHaveLength(0);
    } finally {
      await client.close();
      await bmc.stop();
      await other.stop();
    }
  });
});
