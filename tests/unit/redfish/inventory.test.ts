import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRedfishClient, type RedfishClient } from "../../../redfish/index";
import { type MockBmc, startMock } from "./helpers";

interface Expectation {
  mockup: string;
  vendor: string;
  manufacturer: string;
  model: string;
  serial: string;
  uuid?: string;
  biosVersion?: string;
  bmcFirmware?: string;
  cpus: number;
  cores?: number;
  threads?: number;
  memoryGiB: number;
  macs: string[];
  drives?: number;
}

// Values read from each capture's JSON (see redfish-mockups/*/README.md).
const cases: Expectation[] = [
  {
    mockup: "nvidia-libredfish_dell_poweredge-r750_idrac9-6.00.30",
    vendor: "Dell",
    manufacturer: "Dell Inc.",
    model: "PowerEdge R750",
    serial: "CNIVC0014M0388",
    uuid: "4c4c4544-0035-3410-8050-c6c04f314733",
    biosVersion: "1.8.2",
    bmcFirmware: "6.00.30.00",
    cpus: 2,
    cores: 36,
    threads: 72,
    memoryGiB: 512,
    macs: [
      "70:b5:e8:f0:52:dc",
      "e4:3d:1a:13:27:f1",
      "e4:3d:1a:13:27:f0",
      "70:b5:e8:f0:52:dd",
      "b8:3f:d2:90:97:c4",
    ],
    drives: 3,
  },
  {
    mockup: "nvidia-libredfish_hpe_proliant-dl385-gen10plus-v2_ilo5-2.72",
    vendor: "HPE",
    manufacturer: "HPE",
    model: "ProLiant DL385 Gen10 Plus v2",
    serial: "MXQ302099S",
    biosVersion: "A42 v2.60 (08/11/2022)",
    bmcFirmware: "iLO 5 v2.72",
    cpus: 2,
    memoryGiB: 1024,
    macs: ["50:7c:6f:11:f2:a6", "88:e9:a4:87:42:c8", "b8:3f:d2:d7:f7:4a"],
    drives: 18,
  },
  {
    mockup: "nvidia-libredfish_lenovo_thinksystem-sr670-v2_xcc-2.83",
    vendor: "Lenovo",
    manufacturer: "Lenovo",
    model: "ThinkSystem SR670 V2",
    serial: "J105958B",
    bmcFirmware: "TGBT42S 2.83 2023-07-05",
    cpus: 2,
    threads: 128,
    memoryGiB: 1024,
    macs: ["0a:8f:c3:a5:8a:71", "00:62:0b:4c:28:4e"],
    drives: 4,
  },
  {
    mockup: "nvidia-libredfish_supermicro_sys-821ge-tnhr-x13_bmc-11.01",
    vendor: "Supermicro",
    manufacturer: "Supermicro",
    model: "SYS-821GE-TNHR",
    serial: "S889914X3710910",
    bmcFirmware: "11.01.01",
    cpus: 2,
    memoryGiB: 2048,
    macs: ["94:6d:ae:91:fb:22", "be:3a:f2:b6:05:9f"],
    drives: 8,
  },
  {
    mockup: "nvidia-libredfish_nvidia_bluefield3-dpu-bmc_openbmc",
    vendor: "OpenBMC",
    manufacturer: "https://www.mellanox.com",
    model: "BlueField-3 SmartNIC Main Card",
    serial: "MT2423600ANG",
    cpus: 0,
    memoryGiB: 0,
    macs: ["5c:25:73:08:f3:62", "5c:25:73:08:f3:63", "5c:25:73:08:f3:76"],
  },
  {
    mockup: "dmtf_public-rackmount1",
    vendor: "Generic",
    manufacturer: "Contoso",
    model: "3500",
    serial: "437XR1138R2",
    uuid: "38947555-7742-3448-3784-823347823834",
    bmcFirmware: "1.45.455b66-rev4",
    cpus: 2,
    cores: 8,
    threads: 16,
    memoryGiB: 96,
    macs: ["12:44:6a:3b:04:11", "aa:bb:cc:dd:ee:00"],
  },
];

describe.each(cases)("inventory of $mockup", expected => {
  let bmc: MockBmc;
  let client: RedfishClient;

  beforeAll(async () => {
    bmc = await startMock({ mockup: expected.mockup });
    client = createRedfishClient({
      address: bmc.url,
      credentials: { username: bmc.username, password: bmc.password },
      tls: { insecure: true },
    });
  });

  afterAll(async () => {
    await client.close();
    await bmc.stop();
  });

  it("reads identity, firmware, CPU, memory, NICs and disks as captured", async () => {
    const inventory = await client.system().inventory();
    expect(inventory.vendor).toBe(expected.vendor);
    expect(inventory.manufacturer).toBe(expected.manufacturer);
    expect(inventory.model).toBe(expected.model);
    expect(inventory.serialNumber).toBe(expected.serial);
    if (expected.uuid) expect(inventory.uuid).toBe(expected.uuid);
    if (expected.biosVersion) expect(inventory.biosVersion).toBe(expected.biosVersion);
    if (expected.bmcFirmware) expect(inventory.bmcFirmwareVersion).toBe(expected.bmcFirmware);
    expect(inventory.processors.count).toBe(expected.cpus);
    if (expected.cores !== undefined) expect(inventory.processors.cores).toBe(expected.cores);
    if (expected.threads !== undefined) expect(inventory.processors.threads).toBe(expected.threads);
    expect(inventory.memory.totalGiB).toBe(expected.memoryGiB);
    const macs = inventory.nics.map(nic => nic.macAddress);
    for (const mac of expected.macs) expect(macs).toContain(mac);
    if (expected.drives !== undefined) {
      expect(inventory.disks).toHaveLength(expected.drives);
      expect(inventory.disks.every(disk => (disk.sizeBytes ?? 0) > 0)).toBe(true);
    }
  });

  it("costs one login, and reuses the session for a second inventory", async () => {
    client.resetStats();
    await client.system().inventory();
    const stats = client.stats();
    expect(stats.logins).toBe(0);
    expect(stats.byMethod.POST ?? 0).toBe(0);
    expect(bmc.sessions.size).toBe(1);
  });
});

describe("enrollment request cost", () => {
  it("stays small on a summary-rich system (DMTF rackmount)", async () => {
    const bmc = await startMock({ mockup: "dmtf_public-rackmount1" });
    const client = createRedfishClient({
      address: bmc.url,
      credentials: { username: bmc.username, password: bmc.password },
      tls: { insecure: true },
    });
    try {
      const inventory = await client.system().inventory();
      expect(inventory.serialNumber).toBe("437XR1138R2");
      const stats = client.stats();
      // root + login + Systems + system + manager + NIC collection + members + storage...
      expect(stats.logins).toBe(1);
      expect(stats.total).toBeLessThanOrEqual(16);
    } finally {
      await client.close();
      await bmc.stop();
    }
  });
});

describe("$expand", () => {
  it("uses $expand where advertised and honoured, cutting requests", async () => {
    const mockup = "nvidia-libredfish_lenovo_thinksystem-sr670-v2_xcc-2.83";
    const plain = await startMock({ mockup });
    const expanding = await startMock({ mockup, expand: true });
    const clients = [plain, expanding].map(bmc =>
      createRedfishClient({
        address: bmc.url,
        credentials: { username: bmc.username, password: bmc.password },
        tls: { insecure: true },
      }),
    );
    try {
      const [a, b] = await Promise.all(clients.map(client => client.system().inventory()));
      expect(b).toEqual(a);
      const [costPlain, costExpanded] = clients.map(client => client.stats().total);
      expect(costExpanded).toBeLessThan(costPlain ?? 0);
      // Lenovo enrollment: root, login, Systems (with the system), manager, 3 expanded
      // collections, one expanded GET per controller (this mock ignores $levels).
      expect(costExpanded).toBeLessThanOrEqual(10);
      expect(expanding.requests.some(r => r.query.includes("$expand"))).toBe(true);
    } finally {
      await Promise.all(clients.map(client => client.close()));
      await plain.stop();
      await expanding.stop();
    }
  });

  it("stops asking for $expand after the service rejects it", async () => {
    const bmc = await startMock({ mockup: "dmtf_public-rackmount1" });
    bmc.overrides.push(request =>
      request.query.includes("$expand")
        ? { status: 400, body: { error: { code: "X" } } }
        : undefined,
    );
    const client = createRedfishClient({
      address: bmc.url,
      credentials: { username: bmc.username, password: bmc.password },
      tls: { insecure: true },
    });
    try {
      const first = await client.system().inventory();
      expect(first.nics.length).toBeGreaterThan(0);
      const expandRequests = bmc.requests.filter(r => r.query.includes("$expand")).length;
      await client.system().inventory();
      expect(bmc.requests.filter(r => r.query.includes("$expand")).length).toBe(expandRequests);
      expect(expandRequests).toBeGreaterThan(0);
    } finally {
      await client.close();
      await bmc.stop();
    }
  });
});

describe("identity fallback", () => {
  it("takes serial and manufacturer from the chassis when the system lacks them", async () => {
    const bmc = await startMock({ mockup: "dmtf_public-rackmount1" });
    const systemPath = "/redfish/v1/Systems/437XR1138R2";
    const system = { ...bmc.resource(systemPath) };
    delete system.SerialNumber;
    delete system.Manufacturer;
    bmc.setResource(systemPath, system);
    const chassis = bmc.resource("/redfish/v1/Chassis/1U") ?? {};
    const client = createRedfishClient({
      address: bmc.url,
      credentials: { username: bmc.username, password: bmc.password },
      tls: { insecure: true },
    });
    try {
      const inventory = await client.system().inventory();
      expect(inventory.serialNumber).toBe(chassis.SerialNumber);
      expect(inventory.manufacturer).toBe(chassis.Manufacturer);
      expect(inventory.serialNumber).toBeTruthy();
    } finally {
      await client.close();
      await bmc.stop();
    }
  });
});
