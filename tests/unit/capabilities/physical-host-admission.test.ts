import { describe, expect, it } from "vitest";

import { HostState, type PhysicalHost } from "../../../capabilities/api";
import type { AdmissionInput, Operation } from "../../../capabilities/lib/admission";
import { validatePhysicalHost } from "../../../capabilities/physical-host/admission";
import { CONSUMER, makeHost } from "./helpers";

const OPERATOR = "system:serviceaccount:pepr-system:pepr-beskar7";
const OPERATORS = [OPERATOR];
const USER = "kubernetes-admin";

function input(
  object: PhysicalHost,
  init: { operation?: Operation; oldObject?: PhysicalHost; username?: string } = {},
): AdmissionInput<PhysicalHost> {
  return {
    operation: init.operation ?? (init.oldObject ? "UPDATE" : "CREATE"),
    object,
    oldObject: init.oldObject,
    username: init.username ?? USER,
  };
}

const validate = (
  object: PhysicalHost,
  init?: { operation?: Operation; oldObject?: PhysicalHost; username?: string },
) => validatePhysicalHost(input(object, init), OPERATORS);

function withConnection(
  connection: Partial<NonNullable<PhysicalHost["spec"]>["redfishConnection"]>,
): PhysicalHost {
  const host = makeHost();
  host.spec!.redfishConnection = { ...host.spec!.redfishConnection, ...connection };
  return host;
}

const PROVISIONING = { mode: "VirtualMedia" as const, bootISO: "https://img.example.com/a.iso" };

describe("validatePhysicalHost: connection", () => {
  it("accepts a well-formed host", () => {
    expect(validate(makeHost())).toEqual([]);
    expect(validate(withConnection({ address: "https://[fd00::1]:8443" }))).toEqual([]);
  });

  it("requires spec.redfishConnection", () => {
    const host = makeHost();
    delete (host.spec as Partial<NonNullable<PhysicalHost["spec"]>>).redfishConnection;
    expect(validate(host)).toEqual([
      { field: "spec.redfishConnection", message: expect.stringContaining("is required") },
    ]);
  });

  it.each([
    ["not a URL", "bmc-01", "is not an absolute URL"],
    ["a path", "https://10.0.0.5/redfish/v1", 'got path "/redfish/v1"'],
    ["a query", "https://10.0.0.5/?x=1", "query or fragment"],
    ["another scheme", "ftp://10.0.0.5", 'scheme "ftp"'],
  ])("rejects an address with %s", (_what, address, text) => {
    const found = validate(withConnection({ address }));
    expect(found).toEqual([
      { field: "spec.redfishConnection.address", message: expect.stringContaining(text) },
    ]);
  });

  it("rejects credentials in the address without echoing them", () => {
    const found = validate(withConnection({ address: "https://root:calvin@10.0.0.5" }));
    expect(found).toEqual([
      {
        field: "spec.redfishConnection.address",
        message: expect.stringContaining("must not embed credentials"),
      },
    ]);
    expect(JSON.stringify(found)).not.toContain("calvin");
  });

  it("rejects http:// without allowInsecureHTTP and accepts it with", () => {
    const found = validate(withConnection({ address: "http://10.0.0.5:8000" }));
    expect(found).toEqual([
      {
        field: "spec.redfishConnection.address",
        message: expect.stringMatching(/scheme "http" is not accepted; use https$/),
      },
    ]);
    expect(
      validate(withConnection({ address: "http://10.0.0.5:8000", allowInsecureHTTP: false })),
    ).toHaveLength(1);
    expect(
      validate(withConnection({ address: "http://10.0.0.5:8000", allowInsecureHTTP: true })),
    ).toEqual([]);
  });

  it.each(["", "   "])("rejects an empty credentialsSecretRef (%j)", ref => {
    expect(validate(withConnection({ credentialsSecretRef: ref }))).toEqual([
      {
        field: "spec.redfishConnection.credentialsSecretRef",
        message: expect.stringContaining("username and password"),
      },
    ]);
  });

  it("rejects a missing credentialsSecretRef", () => {
    const host = makeHost();
    delete (host.spec!.redfishConnection as { credentialsSecretRef?: string }).credentialsSecretRef;
    expect(validate(host).map(p => p.field)).toEqual([
      "spec.redfishConnection.credentialsSecretRef",
    ]);
  });

  it("rejects insecureSkipVerify together with caBundleSecretRef", () => {
    expect(
      validate(withConnection({ insecureSkipVerify: true, caBundleSecretRef: "bmc-ca" })),
    ).toEqual([
      {
        field: "spec.redfishConnection.insecureSkipVerify",
        message: expect.stringContaining("caBundleSecretRef"),
      },
    ]);
    expect(validate(withConnection({ insecureSkipVerify: true }))).toEqual([]);
    expect(validate(withConnection({ caBundleSecretRef: "bmc-ca" }))).toEqual([]);
    expect(
      validate(withConnection({ insecureSkipVerify: false, caBundleSecretRef: "bmc-ca" })),
    ).toEqual([]);
  });

  it("reports every connection problem at once", () => {
    const found = validate(
      withConnection({
        address: "http://10.0.0.5/redfish",
        credentialsSecretRef: "",
        insecureSkipVerify: true,
        caBundleSecretRef: "ca",
      }),
    );
    expect(found.map(p => p.field)).toEqual([
      "spec.redfishConnection.address",
      "spec.redfishConnection.address",
      "spec.redfishConnection.credentialsSecretRef",
      "spec.redfishConnection.insecureSkipVerify",
    ]);
  });
});

describe("validatePhysicalHost: claims are written by the operator only", () => {
  const free = makeHost({ status: { state: HostState.Available } });
  const claimed = makeHost({
    spec: { consumerRef: CONSUMER },
    status: { state: HostState.Claimed },
  });
  const requested = makeHost({
    spec: { consumerRef: CONSUMER, provisioning: PROVISIONING },
    status: { state: HostState.Claimed },
  });

  it("denies a user setting consumerRef, naming the field", () => {
    const found = validate(claimed, { oldObject: free });
    expect(found).toEqual([
      {
        field: "spec.consumerRef",
        message: expect.stringContaining("written only by the Beskar7 operator"),
      },
    ]);
    expect(found[0]!.message).toContain("create or delete a Beskar7Machine instead");
  });

  it("allows the operator to set and clear consumerRef and provisioning", () => {
    expect(validate(claimed, { oldObject: free, username: OPERATOR })).toEqual([]);
    expect(validate(requested, { oldObject: claimed, username: OPERATOR })).toEqual([]);
    expect(validate(free, { oldObject: requested, username: OPERATOR })).toEqual([]);
  });

  it("denies a user releasing the host (removing consumerRef)", () => {
    expect(validate(free, { oldObject: claimed }).map(p => p.field)).toEqual(["spec.consumerRef"]);
  });

  it("denies a user writing provisioning on a claimed host, under consumerRef's field", () => {
    expect(validate(requested, { oldObject: claimed }).map(p => p.field)).toEqual([
      "spec.consumerRef",
    ]);
  });

  it("names spec.provisioning when only provisioning changes on an unclaimed host", () => {
    const withRequest = makeHost({ spec: { provisioning: PROVISIONING } });
    expect(validate(withRequest, { oldObject: makeHost() })).toEqual([
      { field: "spec.provisioning", message: expect.stringContaining("only by the Beskar7") },
    ]);
  });

  it("denies a user creating a host that is already claimed", () => {
    expect(validate(claimed).map(p => p.field)).toEqual(["spec.consumerRef"]);
    expect(validate(claimed, { username: OPERATOR })).toEqual([]);
  });

  it("denies an anonymous request and does not treat an empty username as the operator", () => {
    const found = validatePhysicalHost(
      { operation: "UPDATE", object: claimed, oldObject: free },
      OPERATORS,
    );
    expect(found.map(p => p.field)).toEqual(["spec.consumerRef"]);
  });

  it("lets a user edit other fields of a claimed host (consumerRef unchanged)", () => {
    const edited = structuredClone(claimed);
    edited.spec!.online = true;
    expect(validate(edited, { oldObject: claimed })).toEqual([]);
  });
});

describe("validatePhysicalHost: connection fixed while claimed", () => {
  const moved = (host: PhysicalHost, change: { address?: string; systemId?: string }) => {
    const next = structuredClone(host);
    next.spec!.redfishConnection = { ...next.spec!.redfishConnection, ...change };
    return next;
  };

  it("denies changing address or systemId of a host with a consumerRef", () => {
    const claimed = makeHost({ spec: { consumerRef: CONSUMER } });
    const found = validate(moved(claimed, { address: "https://10.0.0.99", systemId: "2" }), {
      oldObject: claimed,
    });
    expect(found).toEqual([
      {
        field: "spec.redfishConnection.address",
        message: expect.stringContaining("cannot change while the host is claimed (state Claimed)"),
      },
      {
        field: "spec.redfishConnection.systemId",
        message: expect.stringContaining("release it from its machine first"),
      },
    ]);
  });

  it.each([
    HostState.Claimed,
    HostState.Inspecting,
    HostState.Provisioning,
    HostState.Provisioned,
    HostState.Deprovisioning,
  ])("denies a new address while the host is busy in %s without a consumerRef", state => {
    const busy = makeHost({ status: { state } });
    const found = validate(moved(busy, { address: "https://10.0.0.99" }), { oldObject: busy });
    expect(found).toEqual([
      {
        field: "spec.redfishConnection.address",
        message: expect.stringContaining(`(state ${state})`),
      },
    ]);
  });

  it.each([HostState.Available, HostState.Enrolling, HostState.Error, HostState.Deleting])(
    "allows a new address and systemId on a free host in %s",
    state => {
      const free = makeHost({ status: { state } });
      expect(
        validate(moved(free, { address: "https://10.0.0.99", systemId: "2" }), { oldObject: free }),
      ).toEqual([]);
    },
  );

  it.each([
    ["https://BMC1", "https://bmc1:443"],
    ["https://bmc1:443/", "HTTPS://Bmc1"],
    ["https://[FD00::1]", "https://[fd00:0::1]:443"],
  ])("allows respelling the address of a claimed host: %s -> %s is one BMC", (from, to) => {
    const claimed = moved(makeHost({ spec: { consumerRef: CONSUMER } }), { address: from });
    expect(validate(moved(claimed, { address: to }), { oldObject: claimed })).toEqual([]);
    expect(validate(moved(claimed, { address: "https://bmc2" }), { oldObject: claimed })).toEqual([
      expect.objectContaining({ field: "spec.redfishConnection.address" }),
    ]);
  });

  it("allows other connection edits of a claimed host, e.g. the Secret", () => {
    const claimed = makeHost({ spec: { consumerRef: CONSUMER }, status: { state: "Provisioned" } });
    const next = structuredClone(claimed);
    next.spec!.redfishConnection.credentialsSecretRef = "rotated-secret";
    expect(validate(next, { oldObject: claimed })).toEqual([]);
  });
});

describe("validatePhysicalHost: deletion", () => {
  const broken = withConnection({ address: "ftp://x/y", credentialsSecretRef: "" });

  it("approves DELETE whatever the object holds", () => {
    expect(validate(broken, { operation: "DELETE" })).toEqual([]);
  });

  it("approves finalizer removal from an object being deleted, even one invalid by today's rules", () => {
    const old = structuredClone(broken);
    old.metadata!.deletionTimestamp = new Date("2025-03-01T00:00:00Z");
    old.metadata!.finalizers = ["pepr.dev/finalizer"];
    const updated = structuredClone(old);
    updated.metadata!.finalizers = [];
    expect(validate(updated, { oldObject: old })).toEqual([]);
  });
});
