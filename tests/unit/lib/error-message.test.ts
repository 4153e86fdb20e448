// Any thrown value as one readable line (issue 13): the Kubernetes clients reject with plain
// objects, which String() turned into "[object Object]" in a host's status.
import { describe, expect, it } from "vitest";

import { describeError } from "../../../capabilities/lib/error-message";
import { toBmcFailure } from "../../../capabilities/physical-host/failure";
import { classify } from "../../../capabilities/physical-host/states";

const FORBIDDEN = {
  status: 403,
  statusText: "Forbidden",
  data: {
    kind: "Status",
    message: 'secrets "server-21-bmc" is forbidden: User "system:serviceaccount:x" cannot get',
  },
};

describe("describeError", () => {
  it("renders a Kubernetes API error with its status and message", () => {
    expect(describeError(FORBIDDEN)).toBe(
      'Kubernetes API error 403 Forbidden: secrets "server-21-bmc" is forbidden: User "system:serviceaccount:x" cannot get',
    );
    expect(describeError({ status: 500, statusText: "", data: "etcd timeout" })).toBe(
      "Kubernetes API error 500: etcd timeout",
    );
  });

  it("renders Errors, strings and anything else without [object Object]", () => {
    expect(describeError(new Error("boom"))).toBe("boom");
    expect(describeError("plain")).toBe("plain");
    expect(describeError(undefined)).toBe("unknown error");
    expect(describeError({ message: "shaped like an error" })).toBe("shaped like an error");
    expect(describeError({ a: 1 })).toBe('{"a":1}');
    expect(describeError({})).toBe("unknown error (object)");
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(describeError(circular)).toBe("unknown error (object)");
    expect(describeError({ huge: "x".repeat(1000) }).length).toBe(200);
  });

  it("is what a host's failure records for a failed Kubernetes read", () => {
    expect(toBmcFailure(FORBIDDEN).message).toContain("403 Forbidden");
    expect(classify(FORBIDDEN).message).toContain("403 Forbidden");
    for (const message of [toBmcFailure(FORBIDDEN).message, classify(FORBIDDEN).message]) {
      expect(message).not.toContain("[object Object]");
    }
  });
});
