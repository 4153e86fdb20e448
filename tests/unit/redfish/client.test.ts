import fs from "node:fs";
import path from "node:path";
import { inspect } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import {
  BmcAuthenticationError,
  BmcRejectedError,
  BmcServerError,
  BmcTlsError,
  BmcUnreachableError,
  InvalidResponseError,
  RedfishClientPool,
  type RedfishError,
  ResourceNotFoundError,
  SystemSelectionError,
  TaskFailedError,
  UnsupportedOperationError,
  clientKey,
  createRedfishClient,
  type RedfishClient,
  type RedfishClientOptions,
} from "../../../redfish/index";
import { TestBmc } from "../../../lab/bmc/server";
import { generateTls } from "../../../lab/bmc/tls";
import { type MockBmc, SAMPLES, errorBody, selfSignedCert, startMock } from "./helpers";

const DMTF = "dmtf_public-rackmount1";
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

async function setup(
  bmcOptions: ConstructorParameters<typeof MockBmc>[0] = {},
  clientOptions: Partial<RedfishClientOptions> = {},
): Promise<{ bmc: MockBmc; client: RedfishClient }> {
  const bmc = await startMock({ mockup: DMTF, ...bmcOptions });
  const client = createRedfishClient({
    address: bmc.url,
    credentials: { username: bmc.username, password: bmc.password },
    tls: { insecure: true },
    retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 },
    taskPollIntervalMs: 5,
    ...clientOptions,
  });
  cleanups.push(async () => {
    await client.close();
    await bmc.stop();
  });
  return { bmc, client };
}

describe("sessions", () => {
  it.each(["relative", "absolute", "none"] as const)(
    "logs in once, reuses the token and logs out with a %s Location",
    async form => {
      const { bmc, client } = await setup({ sessionLocation: form });
      await client.get("/redfish/v1/Systems");
      await client.get("/redfish/v1/Managers");
      expect(client.stats().logins).toBe(1);
      expect(bmc.sessions.size).toBe(1);
      await client.close();
      expect(bmc.sessions.size).toBe(0);
      const deletes = bmc.log().filter(line => line.startsWith("DELETE"));
      expect(deletes).toEqual(["DELETE /redfish/v1/SessionService/Sessions/1"]);
    },
  );

  it("logs in again when the BMC drops the session (401)", async () => {
    const { bmc, client } = await setup();
    await client.get("/redfish/v1/Systems");
    bmc.sessions.clear();
    const response = await client.get("/redfish/v1/Managers");
    expect(response.status).toBe(200);
    expect(client.stats().logins).toBe(2);
  });

  it("logs in only once when parallel requests all hit an expired session", async () => {
    const { bmc, client } = await setup();
    await client.get("/redfish/v1/Systems");
    bmc.sessions.clear();
    await Promise.all([1, 2, 3, 4].map(() => client.get("/redfish/v1/Managers")));
    expect(client.stats().logins).toBe(2);
    expect(bmc.sessions.size).toBe(1);
  });

  it("falls back to Basic auth without a usable SessionService", async () => {
    const { bmc, client } = await setup({ sessionsDisabled: true });
    await client.get("/redfish/v1/Systems");
    const last = bmc.requests.at(-1);
    expect(last?.headers.authorization).toMatch(/^Basic /);
    expect(last?.headers["x-auth-token"]).toBeUndefined();
  });

  it("reports bad credentials as AuthenticationFailed, not retryable", async () => {
    const { client } = await setup({}, { credentials: { username: "admin", password: "wrong" } });
    const error = await client.get("/redfish/v1/Systems").catch(e => e);
    expect(error).toBeInstanceOf(BmcAuthenticationError);
    expect(error.code).toBe("AuthenticationFailed");
    expect(error.retryable).toBe(false);
  });
});

describe("credential redaction", () => {
  it("keeps the password out of errors, their JSON, toString, inspect and logs", async () => {
    const logged: string[] = [];
    const logger = {
      debug: (m: string, f?: object) => logged.push(m + JSON.stringify(f ?? {})),
      info: (m: string, f?: object) => logged.push(m + JSON.stringify(f ?? {})),
      warn: (m: string, f?: object) => logged.push(m + JSON.stringify(f ?? {})),
    };
    const { bmc, client } = await setup({}, { logger });
    // A BMC that echoes the request (and so the password) back in its error message.
    bmc.overrides.push(request =>
      request.path.endsWith("/Systems")
        ? {
            status: 400,
            body: errorBody("Base.1.8.GeneralError", `bad request from user with ${bmc.password}`, {
              MessageArgs: [bmc.password],
              Resolution: `retry without ${encodeURIComponent(bmc.password)}`,
            }),
          }
        : undefined,
    );
    const error = (await client.get("/redfish/v1/Systems").catch(e => e)) as RedfishError;
    expect(error).toBeInstanceOf(BmcRejectedError);
    const renderings = [
      error.message,
      String(error),
      JSON.stringify(error),
      inspect(error, { depth: 10, showHidden: true }),
      String(error.stack),
      ...logged,
    ];
    expect(renderings.join("\n")).toContain("***");
    for (const text of renderings) {
      expect(text).not.toContain(bmc.password);
      expect(text).not.toContain(encodeURIComponent(bmc.password));
    }
    expect(JSON.stringify(error.extendedInfo)).not.toContain(bmc.password);
  });

  it("never exposes the password through the client or pool objects", async () => {
    const { bmc, client } = await setup();
    await client.get("/redfish/v1/Systems");
    expect(inspect(client, { depth: 10, showHidden: true })).not.toContain(bmc.password);
    expect(JSON.stringify(client.stats())).not.toContain(bmc.password);
    const key = clientKey({
      address: bmc.url,
      credentials: { username: bmc.username, password: bmc.password },
    });
    expect(key).not.toContain(bmc.password);
  });
});

describe("TLS", () => {
  it("rejects a self-signed certificate by default", async () => {
    const { client } = await setup({}, { tls: {} });
    const error = await client.get("/redfish/v1/Systems").catch(e => e);
    expect(error).toBeInstanceOf(BmcTlsError);
    expect(error.code).toBe("TlsFailure");
    expect(error.retryable).toBe(false);
  });

  it("trusts a custom CA bundle", async () => {
    const { client } = await setup({}, { tls: { caBundle: selfSignedCert().cert } });
    const response = await client.get("/redfish/v1/Systems");
    expect(response.status).toBe(200);
  });

  it("keeps each client's trust its own although TLS contexts are shared per CA bundle", async () => {
    const { bmc, client: trusting } = await setup({}, { tls: { caBundle: selfSignedCert().cert } });
    expect((await trusting.get("/redfish/v1/Systems")).status).toBe(200);
    const clientWith = (tls: RedfishClientOptions["tls"]) => {
      const client = createRedfishClient({
        address: bmc.url,
        credentials: { username: bmc.username, password: bmc.password },
        tls,
        retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
      });
      cleanups.push(() => client.close());
      return client;
    };
    // Another CA, then the system roots: both must still refuse this BMC's certificate.
    const otherCa = generateTls("another-ca").certPem;
    for (const tls of [{ caBundle: otherCa }, {}]) {
      const error = await clientWith(tls)
        .get("/redfish/v1/Systems")
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(BmcTlsError);
    }
    // The same CA bundle again (a shared context), and insecure, still connect.
    for (const tls of [{ caBundle: selfSignedCert().cert }, { insecure: true }]) {
      expect((await clientWith(tls).get("/redfish/v1/Systems")).status).toBe(200);
    }
  });
});

describe("errors, retries and limits", () => {
  it("classifies unreachable BMCs and retries GETs", async () => {
    const client = createRedfishClient({
      address: "127.0.0.1:1",
      credentials: { username: "a", password: "b" },
      retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 2 },
    });
    const error = await client.get("/redfish/v1/Systems").catch(e => e);
    expect(error).toBeInstanceOf(BmcUnreachableError);
    expect(error.retryable).toBe(true);
    expect(client.stats().retries).toBe(2);
    await client.close();
  });

  it("times out a request that hangs", async () => {
    const { bmc, client } = await setup({}, { timeoutMs: 100, retry: { attempts: 0 } });
    bmc.overrides.push(request =>
      request.path.endsWith("/Managers") ? { delayMs: 1000, body: {} } : undefined,
    );
    const error = await client.get("/redfish/v1/Managers").catch(e => e);
    expect(error).toBeInstanceOf(BmcUnreachableError);
    expect(error.message).toMatch(/timed out/);
  });

  it("retries GET on 503 and connection resets, then succeeds", async () => {
    const { bmc, client } = await setup();
    let failures = 0;
    bmc.overrides.push(request => {
      if (!request.path.endsWith("/Managers") || failures >= 2) return undefined;
      failures += 1;
      return failures === 1 ? { status: 503 } : { reset: true };
    });
    const response = await client.get("/redfish/v1/Managers");
    expect(response.status).toBe(200);
    expect(client.stats().retries).toBe(2);
  });

  it("does not retry a rejected POST, but retries Dell SYS518", async () => {
    const { bmc, client } = await setup();
    let calls = 0;
    bmc.overrides.push(request => {
      if (!request.path.endsWith("ComputerSystem.Reset")) return undefined;
      calls += 1;
      if (calls === 1)
        return { status: 400, body: errorBody("IDRAC.2.8.SYS518", "iDRAC not ready") };
      if (calls === 2) return { status: 204 };
      return { status: 400, body: errorBody("Base.1.8.PropertyValueNotInList", "bad value") };
    });
    await client.post("/redfish/v1/Systems/x/Actions/ComputerSystem.Reset", { ResetType: "On" });
    expect(calls).toBe(2);
    const error = await client
      .post("/redfish/v1/Systems/x/Actions/ComputerSystem.Reset", { ResetType: "X" })
      .catch(e => e);
    expect(error).toBeInstanceOf(BmcRejectedError);
    expect(error.retryable).toBe(false);
    expect(error.extendedInfo[0].messageId).toBe("Base.1.8.PropertyValueNotInList");
    expect(calls).toBe(3);
  });

  it("maps 404, 405, 500 and non-JSON to distinct errors", async () => {
    const { bmc, client } = await setup({}, { retry: { attempts: 0 } });
    bmc.overrides.push(request => {
      if (request.path.endsWith("/five"))
        return { status: 500, body: errorBody("X.Internal", "boom") };
      if (request.path.endsWith("/html")) return { status: 200, body: "<html>hi</html>" };
      return undefined;
    });
    await expect(client.get("/redfish/v1/Nope")).rejects.toBeInstanceOf(ResourceNotFoundError);
    await expect(client.delete("/redfish/v1/Systems")).rejects.toBeInstanceOf(
      UnsupportedOperationError,
    );
    const server = await client.get("/redfish/v1/five").catch(e => e);
    expect(server).toBeInstanceOf(BmcServerError);
    expect(server.retryable).toBe(true);
    await expect(client.get("/redfish/v1/html")).rejects.toBeInstanceOf(InvalidResponseError);
  });

  it("keeps at most maxConcurrentRequests in flight", async () => {
    const { bmc, client } = await setup({}, { maxConcurrentRequests: 2 });
    await client.get("/redfish/v1/Systems");
    bmc.peakInFlight = 0;
    bmc.overrides.push(request =>
      request.path.includes("/Chassis") ? { delayMs: 20, body: { ok: true } } : undefined,
    );
    await Promise.all(Array.from({ length: 8 }, (_, i) => client.get(`/redfish/v1/Chassis/${i}`)));
    expect(bmc.peakInFlight).toBe(2);
  });
});

describe("vendor error bodies from redfish-samples", () => {
  const samples = [
    ["openstack-sushy/transfer_proto_required_error.json", "Base.1.5.ActionParameterMissing"],
    ["openstack-sushy/credentials_required_error.json", "Base.1.12.ActionParameterMissing"],
    ["openstack-sushy/error.json", "Base.1.0.PropertyValueNotInList"],
    ["openstack-sushy-oem-idrac/error_running_job.json", undefined],
  ] as const;

  it.each(samples)("parses %s into ExtendedInfo", async (file, firstId) => {
    const body = JSON.parse(fs.readFileSync(path.join(SAMPLES, file), "utf8"));
    const { bmc, client } = await setup();
    bmc.overrides.push(request =>
      request.path.endsWith("/Systems") ? { status: 400, body } : undefined,
    );
    const error = (await client.get("/redfish/v1/Systems").catch(e => e)) as RedfishError;
    expect(error).toBeInstanceOf(BmcRejectedError);
    expect(error.extendedInfo.length).toBeGreaterThan(0);
    const expected = body.error["@Message.ExtendedInfo"]?.[0];
    if (firstId) expect(error.extendedInfo[0]?.messageId).toBe(firstId);
    else expect(error.extendedInfo[0]?.messageId).toBe(expected?.MessageId ?? body.error.code);
    expect(error.message).toContain(error.extendedInfo[0]?.message ?? "");
  });
});

describe("ETag handling", () => {
  it("fetches an ETag and retries when the BMC answers 428", async () => {
    const { bmc, client } = await setup({ requireIfMatch: true, etag: "header" });
    const before = bmc.etagOf("/redfish/v1/Systems/437XR1138R2");
    await client.patch("/redfish/v1/Systems/437XR1138R2", { AssetTag: "x" });
    const patches = bmc.requests.filter(r => r.method === "PATCH");
    expect(patches).toHaveLength(2);
    expect(patches[0]?.headers["if-match"]).toBeUndefined();
    expect(patches[1]?.headers["if-match"]).toBe(before);
    expect(bmc.resource("/redfish/v1/Systems/437XR1138R2")?.AssetTag).toBe("x");
  });

  it("treats 412 without If-Match like 428", async () => {
    const { bmc, client } = await setup({ etag: "header" });
    bmc.overrides.push(request =>
      request.method === "PATCH" && !request.headers["if-match"]
        ? { status: 412, body: errorBody("Base.1.8.PreconditionFailed", "needs If-Match") }
        : undefined,
    );
    await client.patch("/redfish/v1/Systems/437XR1138R2", { AssetTag: "y" });
    expect(bmc.resource("/redfish/v1/Systems/437XR1138R2")?.AssetTag).toBe("y");
    const statuses = client
      .stats()
      .recent.filter(r => r.method === "PATCH")
      .map(r => r.status);
    expect(statuses).toEqual([412, 204]);
  });

  it("re-GETs and retries once on 412 with a stale ETag", async () => {
    const { bmc, client } = await setup({ etag: "header" });
    await client.get("/redfish/v1/Systems/437XR1138R2");
    // Someone else changes the resource: our cached ETag is now stale.
    bmc.setResource("/redfish/v1/Systems/437XR1138R2", {
      ...bmc.resource("/redfish/v1/Systems/437XR1138R2"),
      AssetTag: "other",
    });
    await client.patch("/redfish/v1/Systems/437XR1138R2", { AssetTag: "mine" });
    const statuses = client
      .stats()
      .recent.filter(r => r.method === "PATCH")
      .map(r => r.status);
    expect(statuses).toEqual([412, 204]);
    expect(bmc.resource("/redfish/v1/Systems/437XR1138R2")?.AssetTag).toBe("mine");
  });

  it("retries a rejected weak ETag as strong, then without If-Match", async () => {
    const { bmc, client } = await setup({ etag: "weak-header" });
    await client.get("/redfish/v1/Systems/437XR1138R2");
    const seen: (string | undefined)[] = [];
    bmc.overrides.push(request => {
      if (request.method !== "PATCH") return undefined;
      const tag = request.headers["if-match"] as string | undefined;
      seen.push(tag);
      return tag === undefined
        ? { status: 204 }
        : { status: 400, body: errorBody("X.Bad", "bad etag") };
    });
    await client.patch("/redfish/v1/Systems/437XR1138R2", { AssetTag: "x" });
    expect(seen).toHaveLength(3);
    expect(seen[0]).toMatch(/^W\//);
    expect(seen[1]).toBe(seen[0]?.slice(2));
    expect(seen[2]).toBeUndefined();
  });
});

describe("task monitors", () => {
  it("follows a 202 Location until the task completes", async () => {
    const { bmc, client } = await setup();
    let polls = 0;
    bmc.overrides.push(request => {
      if (request.method === "POST" && request.path.endsWith("/DoIt")) {
        return {
          status: 202,
          headers: { location: `${bmc.url}/redfish/v1/TaskService/Tasks/7/Monitor` },
        };
      }
      if (request.path.endsWith("/Tasks/7/Monitor")) {
        polls += 1;
        return polls < 3
          ? { status: 202, body: { TaskState: "Running" } }
          : { status: 200, body: { TaskState: "Completed", TaskStatus: "OK", Messages: [] } };
      }
      return undefined;
    });
    await client.post("/redfish/v1/Systems/x/Actions/DoIt", {});
    expect(polls).toBe(3);
  });

  it("uses a TaskMonitor in the body (HPE) and reports failed tasks", async () => {
    const { bmc, client } = await setup();
    bmc.overrides.push(request => {
      if (request.method === "POST" && request.path.endsWith("/DoIt")) {
        return { status: 202, body: { TaskMonitor: "/redfish/v1/TaskService/TaskMonitors/9" } };
      }
      if (request.path.endsWith("/TaskMonitors/9")) {
        return {
          status: 200,
          body: { TaskState: "Exception", Messages: [{ MessageId: "X.Failed", Message: "nope" }] },
        };
      }
      return undefined;
    });
    const error = await client.post("/redfish/v1/Systems/x/Actions/DoIt", {}).catch(e => e);
    expect(error).toBeInstanceOf(TaskFailedError);
    expect(error.message).toContain("X.Failed");
  });

  it("treats 202 without a monitor as an error", async () => {
    const { bmc, client } = await setup();
    bmc.overrides.push(request =>
      request.method === "POST" && request.path.endsWith("/DoIt") ? { status: 202 } : undefined,
    );
    await expect(client.post("/redfish/v1/Systems/x/Actions/DoIt", {})).rejects.toBeInstanceOf(
      InvalidResponseError,
    );
  });
});

describe("system selection and pool", () => {
  it("lists available Ids when the systemId is wrong or ambiguous", async () => {
    const { bmc, client } = await setup();
    const wrong = await client
      .system("nope")
      .resolve()
      .catch(e => e);
    expect(wrong).toBeInstanceOf(SystemSelectionError);
    expect(wrong.availableIds).toEqual(["437XR1138R2"]);
    expect(wrong.message).toContain("437XR1138R2");

    const { bmc: multi, client: multiClient } = await setup();
    multi.overrides.push(request =>
      request.path === "/redfish/v1/Systems"
        ? {
            body: {
              Members: [
                { "@odata.id": "/redfish/v1/Systems/blade1" },
                { "@odata.id": "/redfish/v1/Systems/blade2" },
              ],
            },
          }
        : undefined,
    );
    const ambiguous = await multiClient
      .system()
      .resolve()
      .catch(e => e);
    expect(ambiguous).toBeInstanceOf(SystemSelectionError);
    expect(ambiguous.availableIds).toEqual(["blade1", "blade2"]);
    expect(await multiClient.system("blade2").resolve()).toBe("/redfish/v1/Systems/blade2");
    expect(bmc.url).not.toBe(multi.url);
  });

  it("applies pool defaults under request options and reports every request", async () => {
    const bmc = await startMock({ mockup: DMTF });
    cleanups.push(() => bmc.stop());
    const seen: string[] = [];
    const pool = new RedfishClientPool({
      idleTimeoutMs: 30,
      defaults: { tls: { insecure: true }, onRequest: record => seen.push(record.method) },
    });
    const { client, release } = pool.acquire({
      address: bmc.url,
      credentials: { username: bmc.username, password: bmc.password },
      tls: undefined,
    });
    await client.system().powerState();
    expect(seen).toContain("POST");
    expect(seen.length).toBe(client.stats().total);
    release();
    // Idle past the timeout: the client logs out and leaves the pool.
    await new Promise(resolve => setTimeout(resolve, 120));
    expect(pool.size).toBe(0);
    expect(bmc.sessions.size).toBe(0);
  });

  /** A stateful test BMC and a pool for it, both closed after the test. */
  async function pooledBmc(poolOptions: { closeIdleSockets?: boolean; socketLingerMs: number }) {
    const bmc = await TestBmc.start({ mockup: DMTF });
    const pool = new RedfishClientPool({ ...poolOptions, defaults: { tls: { insecure: true } } });
    cleanups.push(async () => {
      await pool.closeAll();
      await bmc.stop();
    });
    const options = {
      address: bmc.url,
      credentials: { username: bmc.username, password: bmc.password },
    };
    return { bmc, pool, options };
  }

  it.each([true, false])(
    "closes a released client's idle sockets after the linger but keeps its session (closeIdleSockets %s)",
    async closeIdleSockets => {
      const { bmc, pool, options } = await pooledBmc({ closeIdleSockets, socketLingerMs: 50 });
      const held = pool.acquire(options);
      await held.client.system().powerState();
      expect(bmc.openConnections).toBe(1);
      held.release();
      await new Promise(resolve => setTimeout(resolve, 10));
      expect(bmc.openConnections).toBe(1);
      await new Promise(resolve => setTimeout(resolve, 100));
      expect(bmc.openConnections).toBe(closeIdleSockets ? 0 : 1);
      expect(bmc.activeSessions).toBe(1);
      // The next holder reconnects on the same session.
      const again = pool.acquire(options);
      expect(await again.client.system().powerState()).toBe("On");
      expect(held.client.stats().logins).toBe(1);
      again.release();
    },
  );

  it("hands a holder that comes within the linger the released client's open socket, unless told none comes", async () => {
    const { bmc, pool, options } = await pooledBmc({ socketLingerMs: 200 });
    for (let run = 0; run < 3; run++) {
      const held = pool.acquire(options);
      await held.client.system().powerState();
      held.release();
      await new Promise(resolve => setTimeout(resolve, 50));
    }
    expect(bmc.connectionsAccepted).toBe(1);
    await new Promise(resolve => setTimeout(resolve, 300));
    expect(bmc.openConnections).toBe(0);

    // A holder expecting no successor soon closes them at once.
    const last = pool.acquire(options);
    await last.client.system().powerState();
    expect(bmc.openConnections).toBe(1);
    last.release({ lingerSockets: false });
    await new Promise(resolve => setTimeout(resolve, 20));
    expect(bmc.openConnections).toBe(0);
  });

  it("shares one client per BMC and credentials, and closes it when evicted", async () => {
    const bmc = await startMock({ mockup: DMTF });
    cleanups.push(() => bmc.stop());
    const pool = new RedfishClientPool({ defaults: { tls: { insecure: true } } });
    const options = {
      address: bmc.url,
      credentials: { username: bmc.username, password: bmc.password },
      tls: { insecure: true },
    };
    const first = pool.acquire(options);
    const second = pool.acquire({
      ...options,
      address: bmc.url.toUpperCase().replace("HTTPS", "https"),
    });
    expect(second.client).toBe(first.client);
    const other = pool.acquire({ ...options, credentials: { username: "x", password: "y" } });
    expect(other.client).not.toBe(first.client);
    expect(pool.size).toBe(2);
    await first.client.system().powerState();
    first.release();
    second.release();
    expect(bmc.sessions.size).toBe(1);
    await pool.evict(options);
    expect(bmc.sessions.size).toBe(0);
    await pool.closeAll();
    expect(pool.size).toBe(0);
  });
});
