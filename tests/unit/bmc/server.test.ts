import { describe, expect, it } from "vitest";

import { request } from "../../../lab/bmc/http";
import { TestBmc } from "../../../lab/bmc/server";
import { call, messageIds, mockup, startBmc } from "./helpers";

describe("test BMC: serving a capture", () => {
  it("serves the service root without credentials and everything else only with them", async () => {
    const bmc = await startBmc("dell");
    const root = await request(bmc.url, "/redfish/v1/");
    expect(root.status).toBe(200);
    expect(root.json?.RedfishVersion).toBe("1.13.1");
    const anonymous = await request(bmc.url, "/redfish/v1/Systems");
    expect(anonymous.status).toBe(401);
    expect(messageIds(anonymous.json)).toEqual(["Base.1.12.NoValidSession"]);
    const wrong = await request(bmc.url, "/redfish/v1/Systems", {
      auth: { username: bmc.username, password: "nope" },
    });
    expect(wrong.status).toBe(401);
    const ok = await call(bmc, "GET", "/redfish/v1/Systems/");
    expect(ok.status).toBe(200);
    expect(ok.json?.["Members@odata.count"]).toBe(1);
  });

  it("answers unknown URIs with a Redfish 404 body in the vendor's shape", async () => {
    const dell = await startBmc("dell");
    const res = await call(dell, "GET", "/redfish/v1/Systems/Nope");
    expect(res.status).toBe(404);
    expect(res.json).toMatchObject({
      error: {
        code: "Base.1.12.GeneralError",
        "@Message.ExtendedInfo": [{ "MessageArgs@odata.count": 1 }],
      },
    });
    const hpe = await startBmc("hpe");
    const hpeRes = await call(hpe, "GET", "/redfish/v1/Systems/Nope");
    expect(hpeRes.json).toEqual({
      error: {
        code: "iLO.0.10.ExtendedInfo",
        message: "See @Message.ExtendedInfo for more information.",
        "@Message.ExtendedInfo": [
          { MessageId: "Base.1.4.ResourceMissingAtURI", MessageArgs: ["/redfish/v1/Systems/Nope"] },
        ],
      },
    });
  });

  it("sends ETag headers: the captured @odata.etag first, weak on HPE, strong elsewhere", async () => {
    const hpe = await startBmc("hpe");
    const sys = await call(hpe, "GET", "/redfish/v1/Systems/1");
    expect(sys.headers.etag).toBe(sys.json?.["@odata.etag"]);
    expect(sys.headers.etag).toMatch(/^W\/"/);
    const dell = await startBmc("dell");
    const dellSys = await call(dell, "GET", "/redfish/v1/Systems/System.Embedded.1");
    expect(dellSys.headers.etag).toMatch(/^"[0-9a-f]+"$/);
  });

  it("answers HEAD without a body and advertises PATCH in Allow only where it is accepted", async () => {
    const lenovo = await startBmc("lenovo");
    const head = await call(lenovo, "HEAD", "/redfish/v1/Systems/1/VirtualMedia/EXT1");
    expect(head.status).toBe(200);
    expect(head.text).toBe("");
    expect(head.headers.allow).toContain("PATCH");
    const dell = await startBmc("dell");
    const slot = await call(dell, "GET", "/redfish/v1/Systems/System.Embedded.1/VirtualMedia/1");
    expect(slot.headers.allow).not.toContain("PATCH");
  });

  it("serves HTTPS with a per-instance certificate that works as the client's CA bundle", async () => {
    const bmc = await TestBmc.start({ mockup: mockup("dmtf") });
    try {
      expect(bmc.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      expect(bmc.caPem).toContain("BEGIN CERTIFICATE");
      const ok = await request(bmc.url, "/redfish/v1", { ca: bmc.caPem });
      expect(ok.status).toBe(200);
      await expect(request(bmc.url, "/redfish/v1")).rejects.toThrow(/self[- ]signed|certificate/i);
      const other = await TestBmc.start({ mockup: mockup("dmtf"), port: 0 });
      try {
        expect(other.caPem).not.toBe(bmc.caPem);
      } finally {
        await other.stop();
      }
    } finally {
      await bmc.stop();
    }
  });

  it("expands collection members one level on $expand", async () => {
    const bmc = await startBmc("dell");
    const plain = await call(bmc, "GET", "/redfish/v1/Systems/System.Embedded.1/Processors");
    const expanded = await call(
      bmc,
      "GET",
      "/redfish/v1/Systems/System.Embedded.1/Processors?$expand=.($levels=1)",
    );
    const plainMembers = plain.json?.Members as Record<string, unknown>[];
    const members = expanded.json?.Members as Record<string, unknown>[];
    expect(members).toHaveLength(plainMembers.length);
    expect(Object.keys(plainMembers[0] ?? {})).toEqual(["@odata.id"]);
    expect(members[0]?.["@odata.id"]).toBe(plainMembers[0]?.["@odata.id"]);
    expect(members[0]).toHaveProperty("Id");
  });

  it("counts requests by method and path", async () => {
    const bmc = await startBmc("dmtf");
    await call(bmc, "GET", "/redfish/v1/Systems");
    await call(bmc, "GET", "/redfish/v1/Systems/");
    await call(bmc, "GET", "/redfish/v1/Managers");
    expect(bmc.requests.total).toBe(3);
    expect(bmc.requests.count({ method: "GET", path: "/redfish/v1/Systems" })).toBe(2);
    expect(bmc.requests.count({ path: /Managers/ })).toBe(1);
    expect(bmc.requests.snapshot()).toEqual({
      "GET /redfish/v1/Systems": 2,
      "GET /redfish/v1/Managers": 1,
    });
    bmc.requests.reset();
    expect(bmc.requests.total).toBe(0);
  });
});

describe("test BMC: sessions", () => {
  it("creates a session with X-Auth-Token and a relative Location, and deletes it", async () => {
    const bmc = await startBmc("lenovo");
    const created = await request(bmc.url, "/redfish/v1/SessionService/Sessions", {
      method: "POST",
      body: { UserName: bmc.username, Password: bmc.password },
    });
    expect(created.status).toBe(201);
    const token = String(created.headers["x-auth-token"]);
    const location = String(created.headers.location);
    expect(location).toMatch(/^\/redfish\/v1\/SessionService\/Sessions\/\w+$/);
    expect(created.json?.["@odata.id"]).toBe(location);
    expect(bmc.activeSessions).toBe(1);
    const listed = await request(bmc.url, "/redfish/v1/SessionService/Sessions", {
      auth: { token },
    });
    expect(listed.json?.Members).toEqual([{ "@odata.id": location }]);
    const del = await request(bmc.url, location, { method: "DELETE", auth: { token } });
    expect(del.status).toBe(204);
    expect(bmc.activeSessions).toBe(0);
    const after = await request(bmc.url, "/redfish/v1/Systems", { auth: { token } });
    expect(after.status).toBe(401);
    expect(bmc.actionsOf("session-create")).toHaveLength(1);
    expect(bmc.actionsOf("session-delete")).toHaveLength(1);
  });

  it("can give an absolute Location or none at all", async () => {
    const absolute = await startBmc("dmtf", { profile: { sessionLocation: "absolute" } });
    const a = await request(absolute.url, "/redfish/v1/SessionService/Sessions", {
      method: "POST",
      body: { UserName: absolute.username, Password: absolute.password },
    });
    expect(a.headers.location).toBe(`${absolute.url}${String(a.json?.["@odata.id"])}`);
    const none = await startBmc("dmtf", { profile: { sessionLocation: "none" } });
    const n = await request(none.url, "/redfish/v1/SessionService/Sessions", {
      method: "POST",
      body: { UserName: none.username, Password: none.password },
    });
    expect(n.status).toBe(201);
    expect(n.headers.location).toBeUndefined();
    expect(n.json?.["@odata.id"]).toMatch(/Sessions\/\w+$/);
  });

  it("refuses a wrong password without echoing it", async () => {
    const bmc = await startBmc("dell");
    const res = await request(bmc.url, "/redfish/v1/SessionService/Sessions", {
      method: "POST",
      body: { UserName: bmc.username, Password: "hunter2-wrong" },
    });
    expect(res.status).toBe(401);
    expect(res.text).not.toContain("hunter2-wrong");
    expect(bmc.activeSessions).toBe(0);
  });

  it("invalidates tokens on expiry (forced or idle timeout)", async () => {
    const bmc = await startBmc("dell", { profile: { sessionTimeoutMs: 150 } });
    const login = async () =>
      String(
        (
          await request(bmc.url, "/redfish/v1/SessionService/Sessions", {
            method: "POST",
            body: { UserName: bmc.username, Password: bmc.password },
          })
        ).headers["x-auth-token"],
      );
    const token = await login();
    expect((await request(bmc.url, "/redfish/v1/Systems", { auth: { token } })).status).toBe(200);
    bmc.expireSessions();
    expect((await request(bmc.url, "/redfish/v1/Systems", { auth: { token } })).status).toBe(401);
    const idle = await login();
    await new Promise(r => setTimeout(r, 250));
    expect((await request(bmc.url, "/redfish/v1/Systems", { auth: { token: idle } })).status).toBe(
      401,
    );
  });

  it("runs out of sessions when they leak", async () => {
    const bmc = await startBmc("dmtf", { profile: { maxSessions: 2 } });
    const post = () =>
      request(bmc.url, "/redfish/v1/SessionService/Sessions", {
        method: "POST",
        body: { UserName: bmc.username, Password: bmc.password },
      });
    expect((await post()).status).toBe(201);
    expect((await post()).status).toBe(201);
    const third = await post();
    expect(third.status).toBe(503);
    expect(messageIds(third.json)).toEqual(["Base.1.5.SessionLimitExceeded"]);
  });
});
