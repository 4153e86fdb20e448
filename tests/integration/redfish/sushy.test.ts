// The same provisioning sequence against sushy-tools, the emulator ironic and Metal3 CI use: an
// independent Redfish implementation, so the driver is not only tested against our own BMC.
// sushy applies power changes 1–11 s after the request, so power assertions poll; InsertMedia
// really downloads the image, so the ISO is served from a local 127.0.0.1 HTTP server.
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import {
  createRedfishClient,
  type RedfishClient,
  type RedfishSystem,
} from "../../../redfish/index";
import { request } from "../../../lab/bmc/http";
import { type SushyEmulator, startSushy } from "../../../lab/bmc/sushy";
import { normaliseMac } from "./capture";

// A small file with an ISO 9660 primary volume descriptor where an ISO has one (sector 16).
const isoBytes = Buffer.alloc(64 * 1024);
isoBytes.write("\u0001CD001\u0001", 16 * 2048, "latin1");

async function poll<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise(r => setTimeout(r, 250));
  }
}

describe("provisioning against sushy-tools", () => {
  let sushy: SushyEmulator;
  let imageServer: Server;
  let imageUrl: string;
  const imageRequests: string[] = [];
  let client: RedfishClient;
  let system: RedfishSystem;
  let systemPath: string;

  const raw = (path: string) =>
    request(sushy.url, path, {
      ca: sushy.caPem,
      auth: { username: sushy.username, password: sushy.password },
    });

  beforeAll(async () => {
    imageServer = createServer((req, res) => {
      imageRequests.push(`${req.method} ${req.url}`);
      res.writeHead(200, {
        "Content-Type": "application/octet-stream",
        "Content-Length": isoBytes.length,
      });
      res.end(req.method === "HEAD" ? undefined : isoBytes);
    });
    await new Promise<void>(resolve => imageServer.listen(0, "127.0.0.1", resolve));
    const address = imageServer.address();
    imageUrl = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}/images/installer.iso`;
    sushy = await startSushy({ tls: true });
    client = createRedfishClient({
      address: sushy.url,
      credentials: { username: sushy.username, password: sushy.password },
      tls: { caBundle: sushy.caPem },
      timeoutMs: 10_000,
      verifyPollIntervalMs: 500,
      // Power lands up to 11 s after the request.
      verifyTimeoutMs: 30_000,
      gracefulShutdownTimeoutMs: 30_000,
    });
    system = client.system();
    systemPath = await system.resolve();
  }, 180_000);

  afterAll(async () => {
    await client?.close();
    await sushy?.stop();
    await new Promise(resolve => imageServer?.close(resolve));
  });

  // sushy links a Memory collection its fake driver answers 404: inventory must still be returned
  // (with a warning), as HostInventory.warnings promises.
  it("reads the inventory of the configured fake system", async () => {
    const inv = await system.inventory();
    const configured = sushy.systems[0];
    expect(inv.manufacturer).toBe("Sushy Emulator");
    expect(inv.uuid).toBe(configured?.uuid);
    expect(inv.nics.map(n => normaliseMac(n.macAddress ?? ""))).toEqual(
      configured?.nics.map(n => n.mac),
    );
    expect(inv.powerState).toBe("Off");
  });

  it("sets a one-time Cd boot override that sushy keeps", async () => {
    await system.setBootOverride({ target: "Cd", mode: "UEFI" });
    const body = (await raw(systemPath)).json as { Boot: Record<string, unknown> };
    // sushy-tools keeps the target but always reports BootSourceOverrideEnabled "Continuous"
    // (hard-coded in its system template): the driver has to accept that read-back.
    expect(body.Boot).toMatchObject({
      BootSourceOverrideTarget: "Cd",
      BootSourceOverrideMode: "UEFI",
    });
  });

  it("inserts the ISO, which sushy downloads from the local server", async () => {
    const result = await system.insertMedia({ image: imageUrl, kind: "cd" });
    expect(result.slot.path).toMatch(/\/Systems\/.+\/VirtualMedia\/Cd$/);
    const slot = (await raw(result.slot.path)).json;
    expect(slot).toMatchObject({ Image: imageUrl, Inserted: true });
    expect(imageRequests.filter(r => r.startsWith("GET /images/installer.iso"))).toHaveLength(1);
  });

  it("powers on (landing up to 11 s later)", async () => {
    await system.powerOn();
    const state = await poll(
      () => raw(systemPath).then(r => r.json?.PowerState),
      s => s === "On",
      30_000,
    );
    expect(state).toBe("On");
  }, 60_000);

  it("ejects the medium", async () => {
    await system.ejectMedia();
    const slots = await system.virtualMedia();
    expect(slots.filter(s => s.inserted)).toEqual([]);
    const cd = (await raw(`${systemPath}/VirtualMedia/Cd`)).json;
    expect(cd?.Inserted).toBe(false);
  });

  it("powers off (landing up to 11 s later)", async () => {
    await system.powerOff({ force: true });
    const state = await poll(
      () => raw(systemPath).then(r => r.json?.PowerState),
      s => s === "Off",
      30_000,
    );
    expect(state).toBe("Off");
  }, 60_000);

  it("is refused with a wrong password (Basic auth from the htpasswd file)", async () => {
    const res = await request(sushy.url, "/redfish/v1/Systems", {
      ca: sushy.caPem,
      auth: { username: sushy.username, password: "not-the-password" },
    });
    expect(res.status).toBe(401);
    // sushy has no SessionService: the driver must have used Basic auth throughout.
    expect((await raw("/redfish/v1/SessionService")).status).toBe(404);
  });
});
