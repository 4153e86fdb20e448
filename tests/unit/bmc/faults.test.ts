import { describe, expect, it } from "vitest";

import { request } from "../../../lab/bmc/http";
import { MockupStore } from "../../../lab/bmc/mockup-store";
import { TestBmc } from "../../../lab/bmc/server";
import { call, messageIds, mockup, startBmc } from "./helpers";

describe("test BMC: injected faults", () => {
  it("adds latency to every request", async () => {
    const bmc = await startBmc("dmtf", { latencyMs: 60 });
    const started = performance.now();
    await call(bmc, "GET", "/redfish/v1/Systems");
    expect(performance.now() - started).toBeGreaterThanOrEqual(55);
    bmc.latencyMs = 0;
    const fast = performance.now();
    await call(bmc, "GET", "/redfish/v1/Systems");
    expect(performance.now() - fast).toBeLessThan(55);
  });

  it("answers the next matching requests with 503 and Retry-After, then recovers", async () => {
    const bmc = await startBmc("dell");
    bmc.inject({
      kind: "status",
      status: 503,
      count: 2,
      match: { method: "GET", path: /Systems/ },
      retryAfterSeconds: 1,
    });
    const other = await call(bmc, "GET", "/redfish/v1/Managers");
    expect(other.status).toBe(200);
    const first = await call(bmc, "GET", "/redfish/v1/Systems");
    expect(first.status).toBe(503);
    expect(first.headers["retry-after"]).toBe("1");
    expect(messageIds(first.json)).toEqual(["Base.1.12.ServiceTemporarilyUnavailable"]);
    expect((await call(bmc, "GET", "/redfish/v1/Systems")).status).toBe(503);
    expect((await call(bmc, "GET", "/redfish/v1/Systems")).status).toBe(200);
    // Failed attempts count as requests: retries show up in the cost.
    expect(bmc.requests.count({ path: "/redfish/v1/Systems" })).toBe(3);
  });

  it("drops the connection without an answer", async () => {
    const bmc = await startBmc("dmtf");
    bmc.inject({ kind: "drop" });
    await expect(call(bmc, "GET", "/redfish/v1/Systems")).rejects.toThrow(
      /socket hang up|ECONNRESET/,
    );
    expect((await call(bmc, "GET", "/redfish/v1/Systems")).status).toBe(200);
  });

  it("hangs a request until the client gives up", async () => {
    const bmc = await startBmc("dmtf");
    bmc.inject({ kind: "hang", match: { path: "/redfish/v1/Systems" } });
    await expect(call(bmc, "GET", "/redfish/v1/Systems", { timeoutMs: 200 })).rejects.toThrow(
      /timeout/,
    );
    expect((await call(bmc, "GET", "/redfish/v1/Systems")).status).toBe(200);
  });

  it("goes down (connection refused) and comes back on the same port with its state", async () => {
    const bmc = await startBmc("dell", { powerState: "Off" });
    await call(bmc, "POST", "/redfish/v1/Systems/System.Embedded.1/Actions/ComputerSystem.Reset", {
      body: { ResetType: "On" },
    });
    const port = bmc.port;
    await bmc.down();
    expect(bmc.isUp).toBe(false);
    await expect(call(bmc, "GET", "/redfish/v1")).rejects.toThrow(/ECONNREFUSED/);
    await bmc.up();
    expect(bmc.port).toBe(port);
    expect((await call(bmc, "GET", "/redfish/v1/Systems/System.Embedded.1")).json?.PowerState).toBe(
      "On",
    );
  });

  it("cuts hanging requests when it goes down", async () => {
    const bmc = await startBmc("dmtf");
    bmc.inject({ kind: "hang" });
    const pending = call(bmc, "GET", "/redfish/v1/Systems", { timeoutMs: 5000 });
    await new Promise(r => setTimeout(r, 50));
    await bmc.down();
    await expect(pending).rejects.toThrow(/socket hang up|ECONNRESET/);
  });

  it("starts a firmware update task: Location header normally, TaskMonitor in the body on HPE", async () => {
    const dell = await startBmc("dell");
    const res = await call(
      dell,
      "POST",
      "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate",
      {
        body: { ImageURI: "http://127.0.0.1/fw.bin" },
      },
    );
    expect(res.status).toBe(202);
    const monitor = String(res.headers.location);
    expect((await call(dell, "GET", monitor)).status).toBe(202);
    expect((await call(dell, "GET", monitor)).status).toBe(202);
    const done = await call(dell, "GET", monitor);
    expect(done.status).toBe(200);
    expect(done.json?.TaskState).toBe("Completed");
    const hpe = await startBmc("hpe");
    const hres = await call(
      hpe,
      "POST",
      "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate",
      {
        body: { ImageURI: "http://127.0.0.1/fw.bin" },
      },
    );
    expect(hres.status).toBe(202);
    expect(hres.headers.location).toBeUndefined();
    expect(hres.json?.TaskMonitor).toMatch(/^\/redfish\/v1\/TaskService\/TaskMonitors\//);
  });
});

describe("test BMC: many instances in one process", () => {
  it("runs 200 BMCs on one shared capture, each with its own state", async () => {
    const name = mockup("supermicro");
    const before = process.memoryUsage().heapUsed;
    const bmcs = await Promise.all(
      Array.from({ length: 200 }, () =>
        TestBmc.start({ mockup: name, tls: "shared", latencyMs: 5 }),
      ),
    );
    try {
      expect(new Set(bmcs.map(b => b.port)).size).toBe(200);
      expect(new Set(bmcs.map(b => b.store)).size).toBe(1);
      expect(bmcs[0]?.store).toBe(MockupStore.for(name));
      const first = bmcs[0] as TestBmc;
      await call(first, "POST", "/redfish/v1/Systems/1/Actions/ComputerSystem.Reset", {
        body: { ResetType: "ForceOff" },
      });
      const states = await Promise.all(
        bmcs.map(b => call(b, "GET", "/redfish/v1/Systems/1").then(r => r.json?.PowerState)),
      );
      expect(states[0]).toBe("Off");
      expect(states.slice(1).every(s => s === "On")).toBe(true);
      // Per-instance cost stays small: state is copy-on-write over the shared capture.
      const perInstance = (process.memoryUsage().heapUsed - before) / bmcs.length;
      expect(perInstance).toBeLessThan(512 * 1024);
    } finally {
      await Promise.all(bmcs.map(b => b.stop()));
    }
    const fresh = await request(bmcs[1]?.url ?? "", "/redfish/v1").catch((e: Error) => e.message);
    expect(String(fresh)).toMatch(/ECONNREFUSED/);
  });
});
