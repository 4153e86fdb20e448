// Admission rules added by the hardening review (issue 13): the BMC address policy on create and on
// an address change, and a host being deleted keeps its spec (only the operator's claim fields and
// metadata such as finalizers and the force-delete annotation still change).
import { describe, expect, it } from "vitest";

import type { PhysicalHost } from "../../../capabilities/api";
import type { AdmissionInput } from "../../../capabilities/lib/admission";
import { validatePhysicalHost } from "../../../capabilities/physical-host/admission";
import { operatorAccessPolicy } from "../../../capabilities/physical-host/credentials";
import { CONSUMER, makeHost } from "./helpers";

const OPERATOR = "system:serviceaccount:pepr-system:pepr-beskar7";
const USER = "kubernetes-admin";
const STRICT = operatorAccessPolicy({
  allowBmcAddresses: [],
  serviceCidrs: ["10.96.0.0/12"],
  admissionSkippedNamespaces: ["kube-system", "pepr-system"],
});

function at(address: string): PhysicalHost {
  const host = makeHost();
  host.spec!.redfishConnection.address = address;
  return host;
}

const check = (
  input: Omit<AdmissionInput<PhysicalHost>, "username"> & { username?: string },
  policy = STRICT,
) => validatePhysicalHost({ username: USER, ...input }, [OPERATOR], policy);

describe("validatePhysicalHost: BMC address policy", () => {
  it.each([
    ["https://169.254.169.254", "link-local"],
    ["https://127.0.0.1:8443", "loopback"],
    ["https://[::1]", "loopback"],
    ["https://localhost", "loopback"],
    ["https://[fe80::1]", "link-local"],
    ["https://0.0.0.0", "unspecified"],
    ["https://kubernetes.default.svc", "service"],
    ["https://10.96.0.1", "service"],
  ])("refuses %s on create, naming the field and the setting", (address, cls) => {
    const found = check({ operation: "CREATE", object: at(address) });
    expect(found).toHaveLength(1);
    expect(found[0]!.field).toBe("spec.redfishConnection.address");
    expect(found[0]!.message).toContain(`BESKAR7_ALLOW_BMC_ADDRESSES=${cls}`);
  });

  it("refuses moving a host to a refused address, not an unchanged one", () => {
    const old = at("https://10.0.0.5");
    expect(check({ operation: "UPDATE", object: at("https://127.0.0.1"), oldObject: old })).toEqual(
      [expect.objectContaining({ field: "spec.redfishConnection.address" })],
    );
    // A host created before the policy (or under a wider one) can still be edited otherwise.
    const legacy = at("https://127.0.0.1");
    const relabelled = structuredClone(legacy);
    relabelled.metadata!.labels = { rack: "r1" };
    expect(check({ operation: "UPDATE", object: relabelled, oldObject: legacy })).toEqual([]);
  });

  it("accepts what the operator allows", () => {
    const loopback = operatorAccessPolicy({
      allowBmcAddresses: ["loopback"],
      serviceCidrs: [],
      admissionSkippedNamespaces: [],
    });
    expect(check({ operation: "CREATE", object: at("https://127.0.0.1:8443") }, loopback)).toEqual(
      [],
    );
    expect(check({ operation: "CREATE", object: at("https://10.0.0.5") })).toEqual([]);
  });
});

describe("validatePhysicalHost: a host being deleted", () => {
  const deleting = (host: PhysicalHost) => {
    const copy = structuredClone(host);
    copy.metadata!.deletionTimestamp = new Date("2025-03-01T00:00:00Z");
    copy.metadata!.finalizers = ["pepr.dev/finalizer"];
    return copy;
  };
  const claimed = deleting(makeHost({ spec: { consumerRef: CONSUMER } }));

  it("refuses stripping the claim by anyone but the operator", () => {
    const stripped = structuredClone(claimed);
    delete stripped.spec!.consumerRef;
    expect(check({ operation: "UPDATE", object: stripped, oldObject: claimed })).toEqual([
      expect.objectContaining({ field: "spec.consumerRef" }),
    ]);
    expect(
      check({ operation: "UPDATE", object: stripped, oldObject: claimed, username: OPERATOR }),
    ).toEqual([]);
  });

  it("refuses pointing it at another BMC or any other spec change, even by the operator", () => {
    const moved = structuredClone(claimed);
    moved.spec!.redfishConnection.address = "https://10.0.0.99";
    const online = structuredClone(claimed);
    online.spec!.online = true;
    for (const object of [moved, online]) {
      for (const username of [USER, OPERATOR]) {
        const found = check({ operation: "UPDATE", object, oldObject: claimed, username });
        expect(found).toHaveLength(1);
        expect(found[0]!.message).toBe("cannot change while the host is being deleted");
      }
    }
    expect(check({ operation: "UPDATE", object: moved, oldObject: claimed })[0]!.field).toBe(
      "spec.redfishConnection",
    );
  });

  it("approves finalizer removal and annotations (force-delete)", () => {
    const done = structuredClone(claimed);
    done.metadata!.finalizers = [];
    done.metadata!.annotations = { "beskar7.infrastructure.cluster.x-k8s.io/force-delete": "" };
    expect(check({ operation: "UPDATE", object: done, oldObject: claimed })).toEqual([]);
  });
});
