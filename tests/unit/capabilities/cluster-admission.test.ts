import { describe, expect, it } from "vitest";

import type {
  APIEndpoint,
  Beskar7Cluster,
  Beskar7ClusterTemplate,
} from "../../../capabilities/api";
import {
  checkEndpoint,
  endpointDefaults,
  validateBeskar7Cluster,
  validateBeskar7ClusterTemplate,
} from "../../../capabilities/cluster/admission";
import { TOPOLOGY_DRY_RUN_ANNOTATION } from "../../../capabilities/lib/admission";

const P = "spec.controlPlaneEndpoint";

describe("checkEndpoint", () => {
  it("has nothing to check without an endpoint", () => {
    expect(checkEndpoint(undefined, P)).toEqual([]);
    expect(checkEndpoint({}, P)).toEqual([]);
  });

  it.each([
    "api.example.com",
    "k8s-api",
    "API.Example.COM",
    "a.b.c.d.e",
    "10.0.0.10",
    "255.255.255.255",
    "0.0.0.0",
    "fd00::10",
    "2001:db8::1",
    "::1",
    "::ffff:10.0.0.1",
  ])("accepts the host %s", host => {
    expect(checkEndpoint({ host, port: 6443 }, P)).toEqual([]);
  });

  it.each([
    "api_server.example.com",
    "-api.example.com",
    "api-.example.com",
    "api..example.com",
    "has space",
    "https://api.example.com",
    "api.example.com:6443",
    "[fd00::10]",
    "fd00:::10",
    `${"a".repeat(64)}.example.com`,
  ])("rejects the host %j, naming spec.controlPlaneEndpoint.host", host => {
    expect(checkEndpoint({ host }, P)).toEqual([
      {
        field: `${P}.host`,
        message: `"${host}" is not a DNS name, IPv4 or IPv6 address`,
      },
    ]);
  });

  it("rejects a name longer than 253 characters", () => {
    const host = Array.from({ length: 5 }, () => "a".repeat(60)).join(".");
    expect(host.length).toBeGreaterThan(253);
    expect(checkEndpoint({ host }, P).map(p => p.field)).toEqual([`${P}.host`]);
  });

  it.each([0, 65536, -1, 6443.5, Number.NaN])("rejects port %d", port => {
    expect(checkEndpoint({ host: "api.example.com", port }, P)).toEqual([
      { field: `${P}.port`, message: `must be between 1 and 65535 (got ${port})` },
    ]);
  });

  it.each([1, 443, 6443, 65535])("accepts port %d", port => {
    expect(checkEndpoint({ host: "api.example.com", port }, P)).toEqual([]);
  });

  it("does not take strings the URL parser would half-read for IPv6 addresses", () => {
    for (const host of ["x@example.com/#", "::1]:80/x?["]) {
      expect(checkEndpoint({ host, port: 6443 }, "spec.controlPlaneEndpoint")).toEqual([
        expect.objectContaining({ field: "spec.controlPlaneEndpoint.host" }),
      ]);
    }
    expect(checkEndpoint({ host: "fd00::10", port: 6443 }, "spec.controlPlaneEndpoint")).toEqual(
      [],
    );
  });

  it("requires a host when a port is given", () => {
    expect(checkEndpoint({ port: 6443 }, P)).toEqual([
      { field: `${P}.host`, message: "is required when a port is given" },
    ]);
    expect(checkEndpoint({ host: "", port: 0 }, P)).toEqual([
      { field: `${P}.host`, message: "is required when a port is given" },
      { field: `${P}.port`, message: "must be between 1 and 65535 (got 0)" },
    ]);
  });

  it("prefixes the given path", () => {
    expect(checkEndpoint({ port: 1 }, "spec.template.spec.controlPlaneEndpoint")[0]!.field).toBe(
      "spec.template.spec.controlPlaneEndpoint.host",
    );
  });
});

function cluster(endpoint?: Partial<APIEndpoint>): Beskar7Cluster {
  return {
    metadata: { name: "lab", namespace: "lab" },
    spec: endpoint ? { controlPlaneEndpoint: endpoint as APIEndpoint } : {},
  };
}

describe("validateBeskar7Cluster", () => {
  it("checks the endpoint on create", () => {
    expect(
      validateBeskar7Cluster({ operation: "CREATE", object: cluster({ host: "10.0.0.10" }) }),
    ).toEqual([]);
    expect(
      validateBeskar7Cluster({
        operation: "CREATE",
        object: cluster({ host: "10.0.0.10", port: 70000 }),
      }),
    ).toEqual([{ field: `${P}.port`, message: "must be between 1 and 65535 (got 70000)" }]);
  });

  it("lets the endpoint be set later, when it was empty", () => {
    expect(
      validateBeskar7Cluster({
        operation: "UPDATE",
        object: cluster({ host: "api.example.com", port: 6443 }),
        oldObject: cluster(),
      }),
    ).toEqual([]);
  });

  it.each<[string, Partial<APIEndpoint> | undefined]>([
    ["host", { host: "10.0.0.11", port: 6443 }],
    ["port", { host: "10.0.0.10", port: 443 }],
    ["removed", undefined],
  ])("makes the endpoint immutable once set (%s)", (_what, endpoint) => {
    const found = validateBeskar7Cluster({
      operation: "UPDATE",
      object: cluster(endpoint),
      oldObject: cluster({ host: "10.0.0.10", port: 6443 }),
    });
    expect(found).toEqual([
      { field: P, message: expect.stringContaining("is immutable once set") },
    ]);
  });

  it("allows an update that keeps the endpoint", () => {
    const old = cluster({ host: "10.0.0.10", port: 6443 });
    const next = structuredClone(old);
    next.spec!.failureDomains = [{ name: "rack-1", controlPlane: true }];
    expect(validateBeskar7Cluster({ operation: "UPDATE", object: next, oldObject: old })).toEqual(
      [],
    );
  });

  it("approves deletion", () => {
    expect(
      validateBeskar7Cluster({ operation: "DELETE", object: cluster({ host: "bad host" }) }),
    ).toEqual([]);
  });
});

function clusterTemplate(endpoint?: Partial<APIEndpoint>, annotations?: Record<string, string>) {
  const t: Beskar7ClusterTemplate = {
    metadata: { name: "lab", namespace: "lab", ...(annotations ? { annotations } : {}) },
    spec: { template: { spec: endpoint ? { controlPlaneEndpoint: endpoint as APIEndpoint } : {} } },
  };
  return t;
}

describe("validateBeskar7ClusterTemplate", () => {
  it("checks the endpoint under spec.template.spec", () => {
    expect(
      validateBeskar7ClusterTemplate({
        operation: "CREATE",
        object: clusterTemplate({ host: "api.example.com", port: 0 }),
      }),
    ).toEqual([
      {
        field: "spec.template.spec.controlPlaneEndpoint.port",
        message: "must be between 1 and 65535 (got 0)",
      },
    ]);
  });

  it("makes spec.template immutable except for topology dry-runs", () => {
    const old = clusterTemplate({ host: "api.example.com", port: 6443 });
    const next = clusterTemplate({ host: "api2.example.com", port: 6443 });
    expect(
      validateBeskar7ClusterTemplate({ operation: "UPDATE", object: next, oldObject: old }),
    ).toEqual([
      {
        field: "spec.template",
        message: expect.stringContaining("create a new Beskar7ClusterTemplate"),
      },
    ]);
    const dryRun = clusterTemplate(
      { host: "api2.example.com", port: 6443 },
      { [TOPOLOGY_DRY_RUN_ANNOTATION]: "" },
    );
    expect(
      validateBeskar7ClusterTemplate({
        operation: "UPDATE",
        object: dryRun,
        oldObject: old,
        dryRun: true,
      }),
    ).toEqual([]);
  });

  it("allows an update that leaves spec.template alone, and deletion", () => {
    const old = clusterTemplate({ host: "api.example.com" });
    const next = clusterTemplate({ host: "api.example.com" }, { owner: "team-a" });
    expect(
      validateBeskar7ClusterTemplate({ operation: "UPDATE", object: next, oldObject: old }),
    ).toEqual([]);
    expect(
      validateBeskar7ClusterTemplate({ operation: "DELETE", object: clusterTemplate({ port: 0 }) }),
    ).toEqual([]);
  });
});

describe("endpointDefaults", () => {
  it("defaults the port to 6443 when only a host is given", () => {
    expect(endpointDefaults({ host: "api.example.com" })).toEqual({ port: 6443 });
  });

  it("adds nothing when the port is set, there is no host, or no endpoint", () => {
    expect(endpointDefaults({ host: "api.example.com", port: 443 })).toEqual({});
    expect(endpointDefaults({ port: 443 })).toEqual({});
    expect(endpointDefaults({ host: "" })).toEqual({});
    expect(endpointDefaults(undefined)).toEqual({});
  });
});
