// Which $expand the driver asks for, per what the service root advertises in
// ProtocolFeaturesSupported.ExpandQuery, what enrolling then costs, and how it falls back when a
// service refuses what it advertised. Costs are counted at the stateful test BMC (lab/bmc), which
// implements $expand as DSP0266 describes and enforces the advertised limits.
import { afterEach, describe, expect, it, vi } from "vitest";

import {
  createRedfishClient,
  type HostInventory,
  type RedfishClient,
} from "../../../redfish/index";
import { listMockups } from "../../../lab/bmc/mockup-store";
import { type ExpandFeatures } from "../../../lab/bmc/expand";
import { TestBmc } from "../../../lab/bmc/server";
import { errorBody, startMock } from "./helpers";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  while (cleanups.length > 0) await cleanups.pop()?.();
});

const folder = (keyword: string): string => {
  const found = listMockups().find(name => name.includes(keyword));
  if (!found) throw new Error(`no mockup matching ${keyword}`);
  return found;
};

function clientFor(bmc: { url: string; username: string; password: string }): RedfishClient {
  const client = createRedfishClient({
    address: bmc.url,
    credentials: { username: bmc.username, password: bmc.password },
    tls: { insecure: true },
    retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5 },
  });
  cleanups.push(() => client.close());
  return client;
}

async function enroll(
  keyword: string,
  expandQuery?: ExpandFeatures | false,
): Promise<{ bmc: TestBmc; inventory: HostInventory; client: RedfishClient }> {
  const bmc = await TestBmc.start({
    mockup: folder(keyword),
    tls: false,
    ...(expandQuery === undefined ? {} : { expandQuery }),
  });
  cleanups.push(() => bmc.stop());
  const client = clientFor(bmc);
  const inventory = await client.system().inventory();
  return { bmc, inventory, client };
}

/** "path?query" of every GET the BMC received, in order. */
const gets = (bmc: TestBmc): string[] =>
  bmc.requests.recent
    .filter(r => r.method === "GET")
    .map(r => (r.query ? `${r.path}?${r.query}` : r.path));

const diskIds = (inventory: HostInventory) => inventory.disks.map(d => [d.id, d.sizeBytes]);

describe("$expand: the query follows the advertised features", () => {
  it("MaxLevels 2 (Lenovo XCC): Storage two levels deep, controllers and drives in one GET", async () => {
    const { bmc, inventory } = await enroll("lenovo");
    expect(gets(bmc)).toEqual([
      "/redfish/v1",
      "/redfish/v1/Systems?$expand=.($levels=1)",
      "/redfish/v1/Managers/1",
      "/redfish/v1/Systems/1/Processors?$expand=.($levels=1)",
      "/redfish/v1/Systems/1/EthernetInterfaces?$expand=.($levels=1)",
      "/redfish/v1/Systems/1/Storage?$expand=.($levels=2)",
    ]);
    expect(bmc.requests.total).toBe(7);
    expect(inventory.disks).toHaveLength(4);
  });

  it("MaxLevels above 2: still two levels (nothing under a drive is needed)", async () => {
    const { bmc } = await enroll("lenovo", {
      NoLinks: true,
      ExpandAll: true,
      Links: true,
      Levels: true,
      MaxLevels: 6,
    });
    expect(gets(bmc)).toContain("/redfish/v1/Systems/1/Storage?$expand=.($levels=2)");
    expect(bmc.requests.total).toBe(7);
  });

  it("MaxLevels 1 (HPE iLO 5): one level, then per controller the cheaper of its drive or itself expanded", async () => {
    const { bmc, inventory } = await enroll("hpe");
    const requested = gets(bmc);
    expect(requested).toContain("/redfish/v1/Systems/1/Storage?$expand=.($levels=1)");
    // DE081000 lists two drives: one expanded GET of the controller.
    expect(requested).toContain("/redfish/v1/Systems/1/Storage/DE081000?$expand=.($levels=1)");
    expect(requested.filter(r => r.includes("/Storage/DE081000/Drives/"))).toEqual([]);
    // The 16 NVMe subsystems list one drive each: a plain GET of that drive.
    const driveGets = requested.filter(r => /\/Storage\/DA[0-9A-F]+\/Drives\//.test(r));
    expect(driveGets).toHaveLength(16);
    expect(driveGets.every(r => !r.includes("?"))).toBe(true);
    expect(requested.filter(r => /\/Storage\/DA[0-9A-F]+\?/.test(r))).toEqual([]);
    expect(requested.every(r => !r.includes("$levels=2"))).toBe(true);
    expect(bmc.requests.total).toBe(24);
    expect(inventory.disks).toHaveLength(18);
  });

  it("MaxLevels 1 (Dell iDRAC9): one expanded GET for the controller with three drives", async () => {
    const { bmc, inventory } = await enroll("dell");
    expect(gets(bmc).slice(-2)).toEqual([
      "/redfish/v1/Systems/System.Embedded.1/Storage?$expand=.($levels=1)",
      "/redfish/v1/Systems/System.Embedded.1/Storage/CPU.1?$expand=.($levels=1)",
    ]);
    expect(bmc.requests.total).toBe(7);
    expect(inventory.disks).toHaveLength(3);
  });

  it("only `*` offered: `*` with one level, never deeper (it would inline every Links target)", async () => {
    const { bmc, inventory } = await enroll("lenovo", {
      ExpandAll: true,
      NoLinks: false,
      Levels: true,
      MaxLevels: 6,
    });
    const queries = bmc.requests.recent.flatMap(r => (r.query ? [r.query] : []));
    expect(new Set(queries)).toEqual(new Set(["$expand=*($levels=1)"]));
    expect(inventory.disks).toHaveLength(4);
  });

  it("no $levels offered, or no ExpandQuery at all: no $expand, the same inventory", async () => {
    const expanded = await enroll("supermicro");
    for (const features of [{ NoLinks: true, ExpandAll: true, Levels: false }, false] as const) {
      const walked = await enroll("supermicro", features);
      expect(walked.bmc.requests.recent.filter(r => r.query)).toEqual([]);
      expect(diskIds(walked.inventory)).toEqual(diskIds(expanded.inventory));
      expect(walked.inventory).toEqual(expanded.inventory);
      // root, login, Systems, system, manager, Processors + 2, EthernetInterfaces + 12,
      // Storage + 1 controller + 8 drives, the reset action's ActionInfo
      expect(walked.bmc.requests.total).toBe(5 + 3 + 13 + 10 + 1);
    }
    expect(expanded.bmc.requests.total).toBe(7 + 1);
  });
});

describe("$expand: the system body that comes with the Systems collection", () => {
  const systemPath = "/redfish/v1/Systems/System.Embedded.1";

  it("serves the first inventory only; later ones read the system", async () => {
    const { bmc, client } = await enroll("dell");
    expect(bmc.requests.count({ method: "GET", path: systemPath })).toBe(0);
    await client.system().inventory();
    expect(bmc.requests.count({ method: "GET", path: systemPath })).toBe(1);
  });

  it("is dropped by any write, so state read after it is current", async () => {
    const bmc = await TestBmc.start({ mockup: folder("dell"), tls: false, powerState: "Off" });
    cleanups.push(() => bmc.stop());
    const client = clientFor(bmc);
    expect(await client.systemIds()).toEqual(["System.Embedded.1"]);
    await client.post(`${systemPath}/Actions/ComputerSystem.Reset`, { ResetType: "On" });
    const inventory = await client.system().inventory();
    expect(inventory.powerState).toBe("On");
    expect(bmc.requests.count({ method: "GET", path: systemPath })).toBe(1);
  });

  it("is dropped by a newer read of the system", async () => {
    const bmc = await TestBmc.start({ mockup: folder("dell"), tls: false, powerState: "Off" });
    cleanups.push(() => bmc.stop());
    const client = clientFor(bmc);
    expect(await client.system().powerState()).toBe("Off");
    bmc.setPowerState("On");
    expect((await client.system().inventory()).powerState).toBe("On");
    expect(bmc.requests.count({ method: "GET", path: systemPath })).toBe(2);
  });

  it("goes stale after a few seconds", async () => {
    const bmc = await TestBmc.start({ mockup: folder("dell"), tls: false, powerState: "Off" });
    cleanups.push(() => bmc.stop());
    const client = clientFor(bmc);
    await client.systemIds();
    bmc.setPowerState("On");
    const now = Date.now();
    vi.spyOn(Date, "now").mockReturnValue(now + 11_000);
    expect((await client.system().inventory()).powerState).toBe("On");
    expect(bmc.requests.count({ method: "GET", path: systemPath })).toBe(1);
  });
});

describe("$expand: services that refuse what they advertise", () => {
  const LENOVO = "nvidia-libredfish_lenovo_thinksystem-sr670-v2_xcc-2.83";

  it("a refused $levels=2 is asked once more with one level, and never again", async () => {
    const bmc = await startMock({ mockup: LENOVO, expand: true });
    bmc.overrides.push(request =>
      request.query.includes("$levels=2")
        ? { status: 400, body: errorBody("Base.1.8.QueryParameterOutOfRange", "out of range") }
        : undefined,
    );
    const client = clientFor(bmc);
    const first = await client.system().inventory();
    expect(first.disks).toHaveLength(4);
    expect(first.warnings).toEqual([]);
    const storage = bmc.requests.filter(r => r.path.endsWith("/Systems/1/Storage"));
    expect(storage.map(r => decodeURIComponent(r.query))).toEqual([
      "$expand=.($levels=2)",
      "$expand=.($levels=1)",
    ]);
    await client.system().inventory();
    expect(bmc.requests.filter(r => r.query.includes("$levels=2"))).toHaveLength(1);
    // One level still works and is still used.
    expect(bmc.requests.filter(r => r.query.includes("$levels=1")).length).toBeGreaterThan(4);
  });

  it("a service refusing $expand altogether gets the plain walk, with the same disks", async () => {
    const reference = await startMock({ mockup: LENOVO });
    const bmc = await startMock({ mockup: LENOVO, expand: true });
    bmc.overrides.push(request =>
      request.query.includes("$expand")
        ? { status: 501, body: errorBody("Base.1.8.QueryNotSupported", "no") }
        : undefined,
    );
    const [plain, refused] = await Promise.all(
      [reference, bmc].map(server => clientFor(server).system().inventory()),
    );
    expect(diskIds(refused as HostInventory)).toEqual(diskIds(plain as HostInventory));
    expect(refused).toEqual(plain);
    // Only the first $expand is tried; everything after it is walked.
    expect(bmc.requests.filter(r => r.query.includes("$expand"))).toHaveLength(1);
  });

  it("a missing collection is not blamed on $expand", async () => {
    const bmc = await startMock({ mockup: LENOVO, expand: true });
    bmc.overrides.push(request =>
      request.path.endsWith("/Systems/1/Processors")
        ? { status: 404, body: errorBody("Base.1.8.ResourceMissingAtURI", "gone") }
        : undefined,
    );
    const client = clientFor(bmc);
    const inventory = await client.system().inventory();
    expect(inventory.warnings.some(w => w.includes("Processors"))).toBe(true);
    // The next inventory still expands everything that exists.
    bmc.requests.length = 0;
    await client.system().inventory();
    for (const collection of ["EthernetInterfaces", "Storage"]) {
      const reads = bmc.requests.filter(r => r.path.endsWith(`/Systems/1/${collection}`));
      expect(reads.map(r => decodeURIComponent(r.query))).toEqual([
        collection === "Storage" ? "$expand=.($levels=2)" : "$expand=.($levels=1)",
      ]);
    }
  });
});
