// Token rules of the boot server, over HTTP: every way a request can lack the right to a host's
// data (no token, a wrong one, another host's, another purpose's, a token replayed after the host
// was released or re-provisioned, an expired session, an unknown or duplicated UUID) gets the
// same 404 answer, byte for byte, and is counted by reason; the right token is served. Nothing
// logged carries a token or bootstrap bytes.
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { BootPaths, bootToken } from "../../../boot/session";
import { sessionOf } from "../../../boot/server";
import {
  MemoryDirectory,
  get,
  provisioningHost,
  startBootServer,
  type TestServer,
} from "./support";

describe("boot server access rules", () => {
  const directory = new MemoryDirectory();
  let server: TestServer;
  const secretData = Buffer.from(
    `#cloud-config\nhostname: a\n# ${randomBytes(8).toString("hex")}\n`,
  );

  beforeAll(async () => {
    server = await startBootServer(directory);
  });
  afterAll(() => server.close());

  const token = (
    host: ReturnType<typeof provisioningHost>,
    purpose: "media" | "bootstrap" | "report",
  ) => bootToken(server.key, purpose, sessionOf(host));
  const configURL = (uuid: string, t: string) => `${server.base}${BootPaths.config(uuid, t)}`;

  it("serves the right token and refuses every other one with the same 404, counted by reason", async () => {
    const a = provisioningHost();
    const b = provisioningHost();
    directory.put(a);
    directory.put(b);
    directory.data.set(a.key, secretData);

    const good = await get(configURL(a.systemUUID, token(a, "bootstrap")));
    expect(good.status).toBe(200);
    expect(good.body.equals(secretData)).toBe(true);

    const unknown = await get(
      configURL("4c4c4544-dead-beef-8000-000000000000", token(a, "bootstrap")),
    );
    expect(unknown.status).toBe(404);
    const refusals: Array<[string, string, string]> = [
      ["missing", `${server.base}/v1/config/${a.systemUUID}/`, "no-route"],
      ["missing (no segment)", `${server.base}/v1/config/${a.systemUUID}`, "no-route"],
      ["wrong", configURL(a.systemUUID, randomBytes(32).toString("base64url")), "bad-token"],
      ["another host's", configURL(a.systemUUID, token(b, "bootstrap")), "bad-token"],
      ["wrong purpose (media)", configURL(a.systemUUID, token(a, "media")), "bad-token"],
      ["wrong purpose (report)", configURL(a.systemUUID, token(a, "report")), "bad-token"],
      ["not a UUID", configURL("not-a-uuid", token(a, "bootstrap")), "unknown-host"],
      ["outside /v1", `${server.base}/v1/../etc/${token(a, "bootstrap")}`, "no-route"],
      [
        "upper-case junk",
        configURL(a.systemUUID.toUpperCase() + "x", token(a, "bootstrap")),
        "unknown-host",
      ],
    ];
    const before = (reason: string) =>
      server.metrics.get("beskar7_boot_refusals_total", { reason });
    const counts = new Map<string, number>();
    for (const [, , reason] of refusals)
      counts.set(reason, (counts.get(reason) ?? before(reason)) + 1);
    for (const [what, url] of refusals) {
      const answer = await get(url);
      expect({ what, status: answer.status, body: answer.body.toString() }).toEqual({
        what,
        status: 404,
        body: unknown.body.toString(),
      });
      expect(answer.headers["content-type"]).toBe(unknown.headers["content-type"]);
    }
    for (const [reason, count] of counts) expect(before(reason), reason).toBe(count);
  });

  it("refuses a token replayed after release or re-provisioning, and after expiry", async () => {
    const host = provisioningHost();
    directory.put(host);
    directory.data.set(host.key, secretData);
    const old = token(host, "bootstrap");
    expect((await get(configURL(host.systemUUID, old))).status).toBe(200);
    const notFound = (
      await get(`${server.base}/v1/ipxe/00000000-0000-0000-0000-000000000000`)
    ).body.toString();

    // Released: the controller removed status.boot and the host went back to Available.
    const released = { ...host, state: "Available", boot: undefined };
    directory.put(released);
    const r1 = await get(configURL(host.systemUUID, old));
    expect([r1.status, r1.body.toString()]).toEqual([404, notFound]);

    // Still Provisioning but the session is gone (eject/release in progress).
    directory.put({ ...host, boot: undefined });
    expect((await get(configURL(host.systemUUID, old))).status).toBe(404);

    // Claimed again: a new session, so the old token no longer verifies.
    const again = { ...host, boot: { ...host.boot!, session: "cd".repeat(16) } };
    directory.put(again);
    expect((await get(configURL(host.systemUUID, old))).status).toBe(404);
    expect((await get(configURL(host.systemUUID, token(again, "bootstrap")))).status).toBe(200);

    // Expired: issued longer ago than the TTL (24 h here).
    const expiredBefore = server.metrics.get("beskar7_boot_refusals_total", { reason: "expired" });
    const stale = {
      ...again,
      boot: { ...again.boot!, issuedTime: new Date(Date.now() - 25 * 3600_000).toISOString() },
    };
    directory.put(stale);
    const r2 = await get(configURL(host.systemUUID, token(stale, "bootstrap")));
    expect([r2.status, r2.body.toString()]).toEqual([404, notFound]);
    expect(server.metrics.get("beskar7_boot_refusals_total", { reason: "expired" })).toBe(
      expiredBefore + 1,
    );
    expect(
      server.metrics.get("beskar7_boot_refusals_total", { reason: "not-provisioning" }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      server.metrics.get("beskar7_boot_refusals_total", { reason: "no-session" }),
    ).toBeGreaterThanOrEqual(1);
  });

  it("refuses both hosts that carry one UUID", async () => {
    const a = provisioningHost();
    const twin = { ...provisioningHost(), systemUUID: a.systemUUID };
    directory.put(a);
    directory.put(twin);
    directory.data.set(a.key, secretData);
    directory.data.set(twin.key, secretData);
    const before = server.metrics.get("beskar7_boot_refusals_total", { reason: "duplicate-uuid" });
    expect((await get(configURL(a.systemUUID, token(a, "bootstrap")))).status).toBe(404);
    expect((await get(configURL(a.systemUUID, token(twin, "bootstrap")))).status).toBe(404);
    expect(server.metrics.get("beskar7_boot_refusals_total", { reason: "duplicate-uuid" })).toBe(
      before + 2,
    );
  });

  it("refuses media and config volumes of a host whose delivery is another one", async () => {
    const host = provisioningHost({
      boot: { ...provisioningHost().boot!, delivery: "PreBakedISO" },
    });
    directory.put(host);
    const media = token(host, "media");
    expect((await get(`${server.base}${BootPaths.bootIso(host.systemUUID, media)}`)).status).toBe(
      404,
    );
    expect((await get(`${server.base}${BootPaths.configIso(host.systemUUID, media)}`)).status).toBe(
      404,
    );
    expect(server.metrics.get("beskar7_boot_refusals_total", { reason: "wrong-delivery" })).toBe(2);
  });

  it("re-reads a host whose view lacks the session a token is for, once, before refusing", async () => {
    const written = provisioningHost();
    // The directory still shows the host as it was before its session was written.
    const stale: typeof written = { ...written, state: "Claimed" };
    delete stale.boot;
    directory.put(stale);
    directory.data.set(written.key, secretData);
    const refreshed: string[] = [];
    directory.refresh = async uuid => {
      refreshed.push(uuid);
      directory.put(written);
      return true;
    };
    try {
      const good = await get(configURL(written.systemUUID, token(written, "bootstrap")));
      expect(good.status).toBe(200);
      expect(good.body.equals(secretData)).toBe(true);
      expect(refreshed).toEqual([written.systemUUID]);
      // A view that is current needs no re-read; a wrong token is still refused after one.
      await get(configURL(written.systemUUID, token(written, "bootstrap")));
      expect(refreshed).toHaveLength(1);
      const before = server.metrics.get("beskar7_boot_refusals_total", { reason: "bad-token" });
      const wrong = await get(configURL(written.systemUUID, randomBytes(32).toString("base64url")));
      expect(wrong.status).toBe(404);
      expect(refreshed).toHaveLength(2);
      expect(server.metrics.get("beskar7_boot_refusals_total", { reason: "bad-token" })).toBe(
        before + 1,
      );
    } finally {
      delete directory.refresh;
    }
  });

  it("never logs a token or bootstrap bytes, and shows paths with <token>", async () => {
    const logged = JSON.stringify(server.logs);
    for (const host of directory.hosts.values()) {
      if (!host.boot) continue;
      for (const purpose of ["media", "bootstrap", "report"] as const) {
        expect(logged).not.toContain(token(host, purpose));
      }
    }
    expect(logged).not.toContain(secretData.toString().trim().split("\n")[2]);
    expect(logged).toContain("/v1/config/");
    expect(logged).toContain("<token>");
    // The metrics endpoint says which reasons were seen.
    expect(server.metrics.render()).toMatch(
      /beskar7_boot_refusals_total\{reason="bad-token"\} \d+/,
    );
  });
});
