import { afterEach, describe, expect, it } from "vitest";

import { Labels, type PhysicalHost } from "../../../capabilities/api";
import { operatorAccessPolicy } from "../../../capabilities/physical-host/credentials";
import {
  BmcFailure,
  bmcGroupKey,
  poolConnector,
  toBmcFailure,
  toHostInventory,
  toPowerState,
} from "../../../capabilities/physical-host/bmc";
import { CredentialsError } from "../../../capabilities/physical-host/credentials";
import {
  BmcAuthenticationError,
  BmcRejectedError,
  BmcServerError,
  BmcTlsError,
  BmcUnreachableError,
  InvalidResponseError,
  ResourceNotFoundError,
  SystemSelectionError,
  TaskFailedError,
  UnsupportedOperationError,
  VerificationError,
} from "../../../redfish";
import { startMock, type MockBmc } from "../redfish/helpers";
import { sampleRedfishInventory } from "./fake-bmc";

/** The mock BMCs listen on 127.0.0.1, which the default policy refuses. */
const LOOPBACK_ALLOWED = operatorAccessPolicy({
  allowBmcAddresses: ["loopback"],
  serviceCidrs: [],
  admissionSkippedNamespaces: ["kube-system", "pepr-system"],
});

const DMTF = "dmtf_public-rackmount1";
const DMTF_SYSTEM = "437XR1138R2";
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

function host(name: string, address: string, systemId?: string): PhysicalHost {
  return {
    apiVersion: "infrastructure.cluster.x-k8s.io/v1beta1",
    kind: "PhysicalHost",
    metadata: { name, namespace: "lab" },
    spec: {
      redfishConnection: {
        address,
        credentialsSecretRef: "chassis-bmc",
        insecureSkipVerify: true,
        ...(systemId ? { systemId } : {}),
      },
    },
  } as PhysicalHost;
}

describe("toBmcFailure", () => {
  it.each<[string, unknown, string, boolean]>([
    ["unreachable", new BmcUnreachableError("connect ECONNREFUSED"), "BMCUnreachable", true],
    ["TLS", new BmcTlsError("self-signed certificate"), "TLSFailure", false],
    ["auth", new BmcAuthenticationError("401 Unauthorized"), "AuthenticationFailed", false],
    ["system", new SystemSelectionError("which system?", ["1", "2"]), "SystemSelection", false],
    ["rejected", new BmcRejectedError("400 bad"), "ActionRejected", false],
    [
      "rejected, retryable",
      new BmcRejectedError("409 busy", { retryable: true }),
      "ActionRejected",
      true,
    ],
    ["unsupported", new UnsupportedOperationError("no"), "ActionRejected", false],
    ["not found", new ResourceNotFoundError("404"), "ActionRejected", false],
    ["task failed", new TaskFailedError("Exception"), "ActionRejected", false],
    ["server error", new BmcServerError("500"), "BMCError", true],
    ["invalid response", new InvalidResponseError("not JSON"), "BMCError", false],
    ["verification", new VerificationError("did not stick"), "BMCError", true],
    ["plain Error", new Error("boom"), "BMCError", true],
    ["a string", "weird", "BMCError", true],
    ["a secret", new CredentialsError("SecretNotFound", "no Secret"), "SecretNotFound", false],
  ])("%s", (_what, err, reason, transient) => {
    const failure = toBmcFailure(err);
    expect(failure).toBeInstanceOf(BmcFailure);
    expect(failure.reason).toBe(reason);
    expect(failure.transient).toBe(transient);
    expect(failure.message).toBe(err instanceof Error ? err.message : String(err));
  });

  it("passes a BmcFailure (a CredentialsError too) through unchanged", () => {
    const err = new CredentialsError("SecretInvalid", "no password");
    expect(toBmcFailure(err)).toBe(err);
    expect(err.name).toBe("CredentialsError");
  });
});

describe("toHostInventory", () => {
  it("puts the driver's inventory in the API's terms", () => {
    const inventory = toHostInventory({ ...sampleRedfishInventory(), powerState: "On" });
    expect(inventory.powerState).toBe("On");
    expect(inventory.processors).toEqual({
      count: 2,
      cores: 32,
      threads: 64,
      model: "Xeon Gold 6338",
    });
    expect(inventory.memory.totalGiB).toBe(255.8);
    expect(inventory.disks).toEqual([
      { name: "Boot SSD", sizeBytes: 480_000_000_000, mediaType: "SSD" },
      { name: "Disk.1", sizeBytes: 3_840_000_000_000, mediaType: "NVMe" },
      { name: "Disk.2", sizeBytes: undefined, mediaType: "HDD" },
      { name: "Disk.3", sizeBytes: undefined, mediaType: "Unknown" },
    ]);
    expect(inventory.nics).toEqual([
      {
        name: "NIC.1",
        macAddress: "aa:bb:cc:dd:ee:01",
        linkStatus: "Up",
        speedMbps: 25_000,
        ipAddresses: ["10.0.0.21", "10.0.0.21"],
      },
      {
        name: "NIC.2",
        macAddress: undefined,
        linkStatus: "Down",
        speedMbps: undefined,
        ipAddresses: [],
      },
    ]);
  });

  it("maps unknown link states and power states to Unknown", () => {
    const driver = sampleRedfishInventory();
    driver.nics = [{ id: "NIC.1", linkStatus: "Weird" }];
    driver.powerState = "Paused";
    const inventory = toHostInventory(driver);
    expect(inventory.nics[0]!.linkStatus).toBe("Unknown");
    expect(inventory.powerState).toBe("Unknown");
    expect(toPowerState("PoweringOff")).toBe("PoweringOff");
  });
});

describe("bmcGroupKey", () => {
  it("puts every spelling of one BMC in one group", () => {
    expect(bmcGroupKey(host("a", "https://BMC1"))).toBe(bmcGroupKey(host("b", "https://bmc1:443")));
    expect(bmcGroupKey(host("a", "https://bmc1", "Blade1"))).toBe(
      bmcGroupKey(host("b", "bmc1", "Blade2")),
    );
    expect(bmcGroupKey(host("a", "https://bmc1"))).not.toBe(bmcGroupKey(host("b", "https://bmc2")));
  });
});

describe("poolConnector", () => {
  async function chassis(): Promise<{ bmc: MockBmc; connect: ReturnType<typeof poolConnector> }> {
    const bmc = await startMock({ mockup: DMTF });
    // A chassis manager with two blades: the mockup's system and a second one.
    bmc.overrides.push(request =>
      request.method === "GET" && request.path === "/redfish/v1/Systems"
        ? {
            body: {
              "@odata.id": "/redfish/v1/Systems",
              Members: [
                { "@odata.id": `/redfish/v1/Systems/${DMTF_SYSTEM}` },
                { "@odata.id": "/redfish/v1/Systems/Blade2" },
              ],
            },
          }
        : undefined,
    );
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    const connect = poolConnector({
      readSecret: async () => ({
        metadata: { name: "chassis-bmc", labels: { [Labels.bmcCredentials]: "true" } },
        data: { username: b64(bmc.username), password: b64(bmc.password) },
      }),
      access: LOOPBACK_ALLOWED,
    });
    cleanups.push(async () => {
      await connect.pool.closeAll();
      await bmc.stop();
    });
    return { bmc, connect };
  }

  it("never hands a host without systemId another host's blade", async () => {
    const { bmc, connect } = await chassis();
    const first = await connect.connect(host("blade-1", bmc.url, DMTF_SYSTEM));
    expect(await first.bmc.powerState()).toBe("On");
    // Same BMC and credentials (respelled): the shared client, but no default system.
    const second = await connect.connect(
      host("blade-x", bmc.url.toUpperCase().replace("HTTPS", "https")),
    );
    expect(connect.pool.size).toBe(1);
    const err = await second.bmc.powerState().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BmcFailure);
    expect(err).toMatchObject({ reason: "SystemSelection", transient: false });
    expect((err as Error).message).toContain(`available: ${DMTF_SYSTEM}, Blade2`);
    first.release();
    second.release();
  });

  it("translates Secret problems and driver errors into BmcFailure", async () => {
    const connect = poolConnector({
      readSecret: async () => undefined,
      access: LOOPBACK_ALLOWED,
    });
    const err = await connect.connect(host("h", "https://127.0.0.1:9")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CredentialsError);
    expect(err).toMatchObject({ reason: "SecretNotFound", transient: false });
  });

  it("reads a host's system ahead of its run: the run's power-off sends no read of its own, on the connection already open", async () => {
    const { bmc, connect } = await chassis();
    const blade = host("blade-1", bmc.url, DMTF_SYSTEM);
    const system = `/redfish/v1/Systems/${DMTF_SYSTEM}`;
    await connect.readAhead(blade);
    const ahead = bmc.requests.filter(r => r.method === "GET" && r.path === system).length;
    expect(ahead).toBe(1);
    const from = bmc.requests.length;
    const run = await connect.connect(blade);
    expect(await run.bmc.powerOff({ force: true })).toBe(true);
    run.release();
    const during = bmc.requests.slice(from);
    expect(`${during[0]?.method} ${during[0]?.path}`).toBe(
      `POST ${system}/Actions/ComputerSystem.Reset`,
    );
    expect(connect.pool.size).toBe(1);
  });

  it("a read ahead of a system that cannot be chosen (two blades, no systemId) reads no system", async () => {
    const { bmc, connect } = await chassis();
    await expect(connect.readAhead(host("blade-x", bmc.url))).resolves.toBeUndefined();
    // The driver's own read ahead does not reject either: the run finds out, and says so.
    const { client, release } = connect.pool.acquire({
      address: bmc.url,
      credentials: { username: bmc.username, password: bmc.password },
      tls: { insecure: true },
    });
    await expect(client.system().readAhead()).resolves.toBeUndefined();
    release();
    expect(
      bmc.requests.some(r => r.method === "GET" && r.path.startsWith("/redfish/v1/Systems/")),
    ).toBe(false);
  });

  it("a read ahead that cannot be made (no Secret) neither throws nor reaches the BMC", async () => {
    const { bmc } = await chassis();
    const connect = poolConnector({ readSecret: async () => undefined, access: LOOPBACK_ALLOWED });
    const from = bmc.requests.length;
    await expect(connect.readAhead(host("blade-1", bmc.url, DMTF_SYSTEM))).resolves.toBeUndefined();
    expect(bmc.requests.length).toBe(from);
    expect(connect.pool.size).toBe(0);
  });

  it("logs every session out on closeAll", async () => {
    const { bmc, connect } = await chassis();
    const one = await connect.connect(host("blade-1", bmc.url, DMTF_SYSTEM));
    await one.bmc.powerState();
    one.release();
    expect(bmc.sessions.size).toBe(1);
    await connect.pool.closeAll();
    expect(bmc.sessions.size).toBe(0);
    expect(bmc.requests.some(r => r.method === "DELETE" && r.path.includes("Sessions/"))).toBe(
      true,
    );
  });
});
