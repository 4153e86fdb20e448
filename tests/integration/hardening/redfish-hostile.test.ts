// Hardening suite, hostile Redfish services: PhysicalHosts pointed at a small hostile HTTP server
// that answers with 500 MB bodies (declared, and chunked without a length; streamed from one
// reused buffer, never allocated), an endless chunked body, 1 MB of nested arrays, invalid JSON,
// redirects, and the real service's documents with fields replaced by generated values of the
// wrong type (fast-check). Each such host must end in a clean error of its own (or, for a harmless
// mutation, enroll), the operator's process must live through it, and a healthy host provisioned
// beside them must take no longer than without them, beyond the BMC timeout.
import http from "node:http";
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { K8s, kind } from "kubernetes-fluent-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { Labels, PhysicalHost } from "../../../capabilities/api";
import { MockupStore, normalisePath } from "../../../lab/bmc/mockup-store";
import { claimHost, releaseHost } from "../physical-host/support";
import { createNamespace, eventually } from "../support/kube";
import { FAST_ENV, startOperator, type Operator } from "../support/operator";
import {
  canarySummary,
  CANARY_PASSWORD,
  FLEET_MOCKUP,
  type Fleet,
  listHosts,
  OPERATOR_ENV,
  registerFleet,
  searchCanary,
  startFleet,
  USERNAME,
  waitHosts,
  withOperatorLog,
} from "./support";

const FIVE_HUNDRED_MB = 500 * 1000 * 1000;
const FUZZED_HOSTS = 6;
type Mode =
  | "huge-declared"
  | "huge-chunked"
  | "endless"
  | "deep"
  | "garbage"
  | "redirect"
  | "wrong-types";

interface Hostile {
  server: http.Server;
  url: string;
  bytesSent: number;
  /** The most one response carried before the client stopped reading. */
  largestBody: number;
  requests: number;
}

/** One reused chunk: the big bodies are written from it, with backpressure, until the client goes. */
const CHUNK = Buffer.alloc(64 * 1024, "a");

async function stream(res: http.ServerResponse, total: number, host: Hostile): Promise<void> {
  res.write('{"Name":"');
  for (let sent = 0; sent < total && !res.destroyed; sent += CHUNK.length) {
    host.bytesSent += CHUNK.length;
    host.largestBody = Math.max(host.largestBody, sent + CHUNK.length);
    if (!res.write(CHUNK))
      await new Promise<void>(resolve => {
        res.once("drain", resolve);
        res.once("close", resolve);
      });
  }
  res.end('"}');
}

/** The real service's document for `path` with 1-3 properties given generated wrong-type values. */
function mutated(path: string, seed: number): unknown {
  const store = MockupStore.for(FLEET_MOCKUP);
  const body = structuredClone(store.json(normalisePath(path)) ?? { Members: [] }) as Record<
    string,
    unknown
  >;
  const keys = Object.keys(body);
  const values = fc.sample(fc.anything({ maxDepth: 3 }), { numRuns: 3, seed: seed + path.length });
  for (let i = 0; i < values.length && keys.length; i++) {
    const key = keys[(seed * 7 + i * 13 + path.length) % keys.length]!;
    body[key] = values[i];
  }
  return body;
}

async function startHostile(mode: Mode, seed = 0): Promise<Hostile> {
  const host: Hostile = {
    server: undefined as never,
    url: "",
    bytesSent: 0,
    largestBody: 0,
    requests: 0,
  };
  host.server = http.createServer((req, res) => {
    host.requests++;
    req.resume();
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      const text = JSON.stringify(body);
      host.bytesSent += text.length;
      res.writeHead(status, { "Content-Type": "application/json", ...headers }).end(text);
    };
    // Logins succeed, so the driver goes on to read (and parse) what it is sent.
    if (req.method === "POST" && req.url?.includes("/Sessions")) {
      return json(
        201,
        { "@odata.id": "/redfish/v1/SessionService/Sessions/1", Id: "1" },
        { "X-Auth-Token": "hostile", Location: "/redfish/v1/SessionService/Sessions/1" },
      );
    }
    if (req.method === "DELETE") return json(204, {});
    switch (mode) {
      case "huge-declared":
        res.writeHead(200, {
          "Content-Type": "application/json",
          "Content-Length": String(FIVE_HUNDRED_MB + 11),
        });
        return void stream(res, FIVE_HUNDRED_MB, host);
      case "huge-chunked":
        res.writeHead(200, { "Content-Type": "application/json" });
        return void stream(res, FIVE_HUNDRED_MB, host);
      case "endless": {
        res.writeHead(200, { "Content-Type": "application/json" });
        res.write('{"Name":"');
        const drip = setInterval(() => {
          if (res.destroyed) return clearInterval(drip);
          host.bytesSent += 1024;
          res.write(CHUNK.subarray(0, 1024));
        }, 20);
        res.on("close", () => clearInterval(drip));
        return;
      }
      case "deep": {
        const depth = 500_000;
        host.bytesSent += 2 * depth;
        res.writeHead(200, { "Content-Type": "application/json" });
        return void res.end("[".repeat(depth) + "]".repeat(depth));
      }
      case "garbage":
        res.writeHead(200, { "Content-Type": "application/json" });
        return void res.end('{"@odata.id": "/redfish/v1", "Systems": {"@odata.id": \u0000<html>');
      case "redirect":
        res.writeHead(302, { Location: "http://169.254.169.254/latest/meta-data/" });
        return void res.end();
      case "wrong-types":
        return json(200, mutated(req.url ?? "/redfish/v1", seed));
    }
  });
  // A client giving up mid-body must not end the test process.
  host.server.on("clientError", () => undefined);
  await new Promise<void>(resolve => host.server.listen(0, "127.0.0.1", resolve));
  const address = host.server.address() as { port: number };
  host.url = `http://127.0.0.1:${address.port}`;
  return host;
}

function moduleRssPeakMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

describe("hostile Redfish services", () => {
  let ns: string;
  let operator: Operator;
  let fleet: Fleet;
  const hostiles = new Map<string, Hostile>();

  beforeAll(async () => {
    ns = await createNamespace("hardening-hostile");
    fleet = await startFleet(1, 1, {}, "healthy");
    operator = await startOperator(OPERATOR_ENV);
    await registerFleet(ns, fleet);
    await withOperatorLog(operator, () =>
      waitHosts(ns, 1, h => h.status?.state === "Available", "the healthy host Available"),
    );
  });

  afterAll(async () => {
    await operator?.stop();
    await fleet?.stop();
    for (const h of hostiles.values()) h.server.closeAllConnections();
    await Promise.all([...hostiles.values()].map(h => new Promise(r => h.server.close(r))));
  });

  /** Claims the healthy host, waits for Provisioned, releases it; returns the time to Provisioned. */
  async function provisionHealthy(round: number): Promise<number> {
    const name = fleet.hosts[0]!.name;
    const started = Date.now();
    await claimHost(
      ns,
      name,
      { mode: "VirtualMedia", bootISO: "http://images.hardening.invalid/h.iso" },
      `m-${round}`,
    );
    await waitHosts(
      ns,
      1 + hostiles.size,
      h => h.metadata?.name !== name || h.status?.state === "Provisioned",
      "healthy host Provisioned",
    );
    const ms = Date.now() - started;
    await releaseHost(ns, name);
    await waitHosts(
      ns,
      1 + hostiles.size,
      h => h.metadata?.name !== name || h.status?.state === "Available",
      "healthy host Available again",
    );
    return ms;
  }

  it("ends each hostile host in a clean error of its own, with no crash and no delay for others", async () => {
    const pid = Number(/module pid (\d+)/.exec(operator.output())?.[1]);
    const baseline = await provisionHealthy(1);

    const modes: Array<[string, Mode, number]> = [
      ["huge-declared", "huge-declared", 0],
      ["huge-chunked", "huge-chunked", 0],
      ["endless", "endless", 0],
      ["deep", "deep", 0],
      ["garbage", "garbage", 0],
      ["redirect", "redirect", 0],
      ...Array.from(
        { length: FUZZED_HOSTS },
        (_, i) => [`wrong-types-${i + 1}`, "wrong-types", i + 1] as [string, Mode, number],
      ),
    ];
    for (const [name, mode, seed] of modes) {
      const hostile = await startHostile(mode, seed);
      hostiles.set(name, hostile);
      await K8s(kind.Secret).Apply(
        {
          metadata: {
            name: `${name}-bmc`,
            namespace: ns,
            labels: { [Labels.bmcCredentials]: "true" },
          },
          stringData: { username: USERNAME, password: CANARY_PASSWORD },
        },
        { force: true },
      );
      await K8s(PhysicalHost).Apply({
        metadata: { name, namespace: ns },
        spec: {
          redfishConnection: {
            address: hostile.url,
            credentialsSecretRef: `${name}-bmc`,
            allowInsecureHTTP: true,
          },
        },
      });
    }
    // The healthy host is provisioned again while the hostile ones enroll (and retry).
    const beside = await provisionHealthy(2);

    const settled = await withOperatorLog(operator, () =>
      eventually(
        async () => {
          const hosts = (await listHosts(ns)).filter(h => hostiles.has(h.metadata?.name ?? ""));
          return (
            hosts.length === hostiles.size &&
            hosts.every(h =>
              h.metadata!.name!.startsWith("wrong-types")
                ? h.status?.state === "Error" || h.status?.state === "Available"
                : h.status?.state === "Error",
            ) &&
            hosts
          );
        },
        "every hostile host in Error (or, for a harmless mutation, Available)",
        90_000,
        500,
      ),
    );
    const unclean = settled.filter(
      h =>
        h.status?.state === "Error" &&
        (!h.status.errorReason || !h.status.errorMessage || h.status.errorMessage.length > 4096),
    );
    const alive = operator.child.exitCode === null && operator.child.signalCode === null;
    const sameProcess = (() => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    })();
    const peak = moduleRssPeakMiB(pid);
    const errors = settled.filter(h => h.status?.state === "Error").length;
    const served = [...hostiles.entries()]
      .filter(([name]) => !name.startsWith("wrong-types"))
      .map(
        ([name, h]) =>
          `${name} ${(h.bytesSent / 1e6).toFixed(1)} MB in ${h.requests} requests ` +
          `(largest ${(h.largestBody / 1e6).toFixed(1)} MB)`,
      )
      .join(", ");
    const reasons = [...new Set(settled.map(h => h.status?.errorReason ?? h.status?.state))];
    console.log(
      `hostile redfish: ${hostiles.size} hostile hosts (${FUZZED_HOSTS} fuzzed), ${errors} in a clean Error ` +
        `(${reasons.join(", ")}), ${settled.length - errors} enrolled despite a harmless mutation, ` +
        `${unclean.length} unclean; served: ${served}; module alive: ${alive && sameProcess}, ` +
        `peak RSS ${peak.toFixed(0)} MiB; healthy host provisioned in ${baseline} ms alone, ${beside} ms beside them`,
    );
    expect(unclean.map(h => h.metadata?.name)).toEqual([]);
    expect(alive && sameProcess).toBe(true);
    expect(operator.output()).not.toMatch(/heap out of memory|FATAL ERROR|module exited/);
    // Beside them, the healthy host may lose CPU (two cores stream and parse the hostile bodies,
    // a slowdown that scales with its own time: up to 3x was seen on a loaded machine) but never
    // waits on a hostile host, which would add whole BMC timeouts: at most three times its time
    // alone plus twice the BMC timeout.
    expect(beside).toBeLessThanOrEqual(3 * baseline + 2 * Number(FAST_ENV.BESKAR7_BMC_TIMEOUT_MS));
    // Streamed bodies were cut at the driver's limit, far below what was offered.
    for (const name of ["huge-declared", "huge-chunked"])
      expect(hostiles.get(name)!.largestBody).toBeLessThan(64 * 1024 * 1024);
  }, 300_000);

  it("leaks no canary password", async () => {
    const report = await searchCanary([ns], operator);
    console.log(`hostile redfish ${canarySummary(report)}`);
    expect(report.hits).toEqual([]);
  });
});
