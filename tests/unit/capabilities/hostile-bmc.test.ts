// What a BMC reports goes into PhysicalHost status only within the schema's limits: a hostile
// inventory (over-long and control-character strings, fractional, negative and absurd numbers,
// thousands of disks and NICs) and a 10 000-character error message still make a status the API
// server accepts. The schema itself is the yardstick (TypeBox's checker over the CRD's source).
import { FormatRegistry, TypeRegistry } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { afterEach, describe, expect, it } from "vitest";

import { Labels, type PhysicalHost } from "../../../capabilities/api";
import { operatorAccessPolicy } from "../../../capabilities/physical-host/credentials";
import { Condition } from "../../../capabilities/api/sources/common";
import {
  HardwareDetailsSchema,
  PhysicalHostStatusSchema,
} from "../../../capabilities/api/sources/physicalhost";
import {
  BmcFailure,
  INVENTORY_LIMITS,
  poolConnector,
  toHostInventory,
} from "../../../capabilities/physical-host/bmc";
import {
  defaultHostControllerConfig,
  failure,
  inventoryStatus,
} from "../../../capabilities/physical-host/states";
import { BmcServerError, type HostInventory as RedfishInventory } from "../../../redfish";
import { startMock } from "../redfish/helpers";
import { sampleRedfishInventory } from "./fake-bmc";
import { NOW, makeHost } from "./helpers";

// The schema's StringEnum is Type.Unsafe({type: "string", enum}); date-times are RFC 3339.
TypeRegistry.Set<{ enum?: string[] }>(
  "Unsafe",
  (schema, value) => typeof value === "string" && (!schema.enum || schema.enum.includes(value)),
);
FormatRegistry.Set("date-time", value => !Number.isNaN(Date.parse(value)));

/** The mock BMCs listen on 127.0.0.1, which the default policy refuses. */
const LOOPBACK_ALLOWED = operatorAccessPolicy({
  allowBmcAddresses: ["loopback"],
  serviceCidrs: [],
  admissionSkippedNamespaces: ["kube-system", "pepr-system"],
});

const long = (n: number, unit = "x") => unit.repeat(n);

function hostileInventory(): RedfishInventory {
  const base = sampleRedfishInventory();
  return {
    ...base,
    manufacturer: `Evil\u0000Corp\u001b[31m ${long(300)}`,
    model: long(300, "é"),
    serialNumber: `\t\n${long(1000, "😀")}`,
    uuid: long(100, "f"),
    biosVersion: "\u0007\u0008",
    bmcFirmwareVersion: long(257),
    hostName: long(400),
    health: "Exploding" as RedfishInventory["health"],
    processors: {
      count: 1.5,
      cores: -8,
      threads: Number.POSITIVE_INFINITY,
      items: [{ id: "CPU1", model: long(600) }],
    },
    memory: { totalGiB: -1 },
    disks: Array.from({ length: 500 }, (_, i) => ({
      id: `Disk.${i}`,
      name: i === 0 ? long(1000) : undefined,
      sizeBytes: i === 0 ? 1e300 : i === 1 ? -5 : 12.7,
    })),
    nics: Array.from({ length: 300 }, (_, i) => ({
      id: i === 0 ? `\u0000${long(300)}` : `NIC.${i}`,
      macAddress: "aa:bb:cc:dd:ee:ff",
      speedMbps: i === 0 ? 0.5 : -100,
      ipAddresses: Array.from({ length: 50 }, (_, j) => (j === 0 ? long(300) : `10.0.${i}.${j}`)),
    })),
  };
}

describe("the port's translation bounds what a BMC reports", () => {
  it("keeps the limits table equal to the status schema", () => {
    const p = HardwareDetailsSchema.properties;
    for (const key of [
      "manufacturer",
      "model",
      "serialNumber",
      "biosVersion",
      "bmcFirmwareVersion",
    ] as const) {
      expect(p[key].maxLength, key).toBe(INVENTORY_LIMITS.text);
    }
    expect(p.systemUUID.maxLength).toBe(INVENTORY_LIMITS.uuid);
    expect(p.cpu.properties.model.maxLength).toBe(INVENTORY_LIMITS.text);
    expect(p.disks.maxItems).toBe(INVENTORY_LIMITS.disks);
    expect(p.disks.items.properties.name.maxLength).toBe(INVENTORY_LIMITS.text);
    expect(p.nics.maxItems).toBe(INVENTORY_LIMITS.nics);
    expect(p.nics.items.properties.name.maxLength).toBe(INVENTORY_LIMITS.text);
    const address = PhysicalHostStatusSchema.properties.addresses.items.properties.address;
    expect(address.maxLength).toBe(INVENTORY_LIMITS.address);
  });

  it("turns a hostile inventory into a status the schema accepts", () => {
    const inventory = toHostInventory(hostileInventory());
    const status = inventoryStatus(inventory, NOW);
    const errors = [...Value.Errors(HardwareDetailsSchema, status.hardwareDetails)].map(
      e => `${e.path}: ${e.message}`,
    );
    expect(errors).toEqual([]);
    for (const address of status.addresses ?? []) {
      expect(address.address.length).toBeLessThanOrEqual(256);
      expect(address.address.length).toBeGreaterThan(0);
    }
    expect((status.addresses ?? []).length).toBeLessThanOrEqual(32);

    const hw = status.hardwareDetails!;
    expect(hw.manufacturer!.startsWith("EvilCorp[31m ")).toBe(true); // control characters gone
    expect(hw.serialNumber).toBe(long(128, "😀")); // 256 UTF-16 units, no pair split
    expect(hw.biosVersion).toBeUndefined(); // nothing left once cleaned
    expect(hw.health).toBe("Unknown");
    expect(hw.cpu).toEqual({ count: 2, model: long(256) }); // 1.5 rounded; -8 and ∞ dropped
    expect(hw.memoryGiB).toBeUndefined();
    expect(hw.disks![0]).toEqual({ name: long(256), mediaType: "Unknown" });
    expect(hw.disks![2]!.sizeBytes).toBe(13);
    expect(hw.nics![0]!.name).toBe(long(256));
    expect(hw.nics![0]!.speedMbps).toBe(1);
    expect(hw.nics![1]!.speedMbps).toBeUndefined();
  });
});

describe("error messages are bounded in the controller", () => {
  it("cuts a 10 000-character BMC error to errorMessage's, the condition's and the event's limits", () => {
    const message = `GET /redfish/v1/Systems/1 failed with HTTP 500: \u0000${long(10_000)}`;
    const t = failure(
      makeHost({ status: { state: "Available" } }),
      new BmcFailure("BMCError", message, true),
      defaultHostControllerConfig,
      () => 0,
    );
    const status = { ...t.status, state: t.state };
    const errors = [...Value.Errors(PhysicalHostStatusSchema, status)].map(
      e => `${e.path}: ${e.message}`,
    );
    expect(errors).toEqual([]);
    expect(t.status!.errorMessage).toHaveLength(4096);
    expect(t.status!.errorMessage!.endsWith("…")).toBe(true);
    expect(t.status!.errorMessage).not.toContain("\u0000");
    for (const condition of t.conditions ?? []) {
      expect(condition.message!.length).toBeLessThanOrEqual(
        Condition.properties.message.maxLength!,
      );
    }
    for (const event of t.events ?? []) expect(event.message.length).toBeLessThanOrEqual(1024);
    // An error that is not a BmcFailure is bounded too.
    const other = failure(
      makeHost({ status: { state: "Available" } }),
      new BmcServerError(long(10_000)),
      defaultHostControllerConfig,
      () => 0,
    );
    expect(other.status!.errorMessage!.length).toBeLessThanOrEqual(4096);
  });
});

describe("each reconcile's BMC time is bounded", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanups.length > 0) await cleanups.pop()?.();
  });

  it("fails a connection's calls once its deadline has passed, as a transient BMCUnreachable", async () => {
    const bmc = await startMock({ mockup: "dmtf_public-rackmount1" });
    const b64 = (s: string) => Buffer.from(s).toString("base64");
    const connector = poolConnector({
      readSecret: async () => ({
        metadata: { name: "bmc", labels: { [Labels.bmcCredentials]: "true" } },
        data: { username: b64(bmc.username), password: b64(bmc.password) },
      }),
      access: LOOPBACK_ALLOWED,
      operationDeadlineMs: 2_000,
    });
    cleanups.push(async () => {
      await connector.pool.closeAll();
      await bmc.stop();
    });
    const host = {
      apiVersion: "infrastructure.cluster.x-k8s.io/v1beta1",
      kind: "PhysicalHost",
      metadata: { name: "h", namespace: "lab" },
      spec: {
        redfishConnection: {
          address: bmc.url,
          credentialsSecretRef: "bmc",
          insecureSkipVerify: true,
        },
      },
    } as PhysicalHost;
    const connection = await connector.connect(host);
    // Every answer now takes 5 s (and is a 503 the driver would retry): more than the whole
    // 2 s budget of the reconcile.
    bmc.overrides.unshift(() => ({ delayMs: 5_000, status: 503, body: {} }));
    const started = Date.now();
    const err = await connection.bmc.inventory().catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(3_500);
    expect(err).toBeInstanceOf(BmcFailure);
    expect(err).toMatchObject({ reason: "BMCUnreachable", transient: true });
    expect((err as Error).message).toContain("deadline");
    connection.release();
    // The next reconcile has a deadline of its own.
    bmc.overrides.shift();
    const next = await connector.connect(host);
    expect((await next.bmc.inventory()).manufacturer).toBeDefined();
    next.release();
  });
});
