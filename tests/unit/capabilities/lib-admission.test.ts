import { describe, expect, it } from "vitest";

import {
  TOPOLOGY_DRY_RUN_ANNOTATION,
  changed,
  checkURL,
  denialMessage,
  isBeingDeleted,
  isTopologyDryRun,
  problem,
} from "../../../capabilities/lib/admission";
import { displayURL, displayURLs } from "../../../capabilities/lib/display-url";

const F = "spec.address";
const https = { schemes: ["https"] };
const both = { schemes: ["https", "http"] };
const base = { schemes: ["https"], basePathOnly: true };

describe("checkURL", () => {
  it("accepts nothing to check: undefined and empty values", () => {
    expect(checkURL(F, undefined, https)).toEqual([]);
    expect(checkURL(F, "", https)).toEqual([]);
  });

  it.each([
    "https://10.0.0.5",
    "https://bmc.example.com",
    "https://bmc.example.com:8443/",
    "https://[fd00::1]:8443",
    "https://[fd00::1]",
    "https://[2001:db8::5]:443/",
  ])("accepts the https base URL %s", value => {
    expect(checkURL(F, value, base)).toEqual([]);
  });

  it("accepts http only when the rules list it", () => {
    expect(checkURL(F, "http://10.0.0.5:8000", both)).toEqual([]);
    const found = checkURL(F, "http://10.0.0.5:8000", https);
    expect(found).toHaveLength(1);
    expect(found[0]!.field).toBe(F);
    expect(found[0]!.message).toContain('scheme "http" is not accepted');
    expect(found[0]!.message).toContain("use https");
  });

  it("names every accepted scheme in the message", () => {
    const found = checkURL(F, "ftp://files.example.com/a.iso", both);
    expect(found).toEqual([{ field: F, message: expect.stringContaining("use https or http") }]);
  });

  it.each(["not a url", "10.0.0.5", "https://", "https://10.0.0.5:99999", "//10.0.0.5/"])(
    "rejects %j as not absolute, with an example of the first scheme",
    value => {
      const found = checkURL(F, value, https);
      expect(found).toHaveLength(1);
      expect(found[0]!.field).toBe(F);
      expect(found[0]!.message).toContain("is not an absolute URL");
      expect(found[0]!.message).toContain("https://host:port");
    },
  );

  it("rejects a URL without a host", () => {
    const found = checkURL(F, "file:///etc/passwd", { schemes: ["file"] });
    expect(found).toEqual([{ field: F, message: "has no host" }]);
  });

  it("rejects credentials in the URL without echoing them", () => {
    const found = checkURL(F, "https://admin:Sup3rS3cret@10.0.0.5", https);
    expect(found).toHaveLength(1);
    expect(found[0]!.field).toBe(F);
    expect(found[0]!.message).toContain("must not embed credentials");
    expect(JSON.stringify(found)).not.toContain("Sup3rS3cret");
    expect(JSON.stringify(found)).not.toContain("admin");
  });

  it("rejects a username alone too", () => {
    const found = checkURL(F, "https://root@10.0.0.5", https);
    expect(found.map(p => p.message)).toEqual([expect.stringContaining("must not embed")]);
  });

  it("does not echo credentials of a URL that fails to parse", () => {
    const found = checkURL(F, "https://admin:Sup3rS3cret@10.0.0.5:99999", https);
    expect(found).toHaveLength(1);
    expect(found[0]!.message).toContain("is not an absolute URL");
    expect(found[0]!.message).toContain("…@10.0.0.5:99999");
    expect(found[0]!.message).not.toContain("Sup3rS3cret");
    expect(found[0]!.message).not.toContain("admin");
  });

  it("rejects a path when only a base URL is accepted, and says Beskar7 adds /redfish/v1", () => {
    const found = checkURL(F, "https://10.0.0.5/redfish/v1", base);
    expect(found).toHaveLength(1);
    expect(found[0]!.field).toBe(F);
    expect(found[0]!.message).toContain('got path "/redfish/v1"');
    expect(found[0]!.message).toContain("adds /redfish/v1 itself");
    // without basePathOnly, a path is fine (image URLs)
    expect(checkURL(F, "https://10.0.0.5/redfish/v1", https)).toEqual([]);
  });

  it.each(["https://10.0.0.5/?a=1", "https://10.0.0.5#frag", "https://10.0.0.5:8443?x"])(
    "rejects a query or fragment on a base URL: %s",
    value => {
      expect(checkURL(F, value, base)).toEqual([
        { field: F, message: "must not have a query or fragment" },
      ]);
    },
  );

  it("allows a query on a URL that is not a base URL", () => {
    expect(checkURL(F, "https://images.example.com/a.iso?token=1", https)).toEqual([]);
  });

  it("reports several problems of one URL at once, all on the same field", () => {
    const found = checkURL(F, "ftp://u:p@10.0.0.5/x?y", base);
    expect(found.map(p => p.field)).toEqual([F, F, F, F]);
    expect(found.map(p => p.message)).toEqual([
      expect.stringContaining('scheme "ftp"'),
      expect.stringContaining("must not embed credentials"),
      expect.stringContaining('got path "/x"'),
      "must not have a query or fragment",
    ]);
  });
});

describe("displayURL", () => {
  it("hides userinfo, query and fragment and keeps scheme, host and path", () => {
    expect(displayURL("https://admin:pw@10.0.0.5:8443/x")).toBe("https://…@10.0.0.5:8443/x");
    expect(
      displayURL(
        "https://bucket.s3.amazonaws.com/images/kairos.iso?X-Amz-Credential=AKIA%2F&X-Amz-Signature=abc123#frag",
      ),
    ).toBe("https://bucket.s3.amazonaws.com/images/kairos.iso?…#…");
    expect(displayURL("https://10.0.0.5")).toBe("https://10.0.0.5/");
  });

  it("hides too much rather than too little in what is not a URL", () => {
    // A password may hold "@" or "/".
    expect(displayURL("https://admin:p@ss@10.0.0.5:99999")).toBe("https://…@10.0.0.5:99999");
    expect(displayURL("https://admin:pa/ss@10.0.0.5:99999")).toBe("https://…@10.0.0.5:99999");
    expect(displayURL("not a url?sig=secret")).toBe("not a url?…");
  });

  it("rewrites every URL in a text", () => {
    expect(
      displayURLs(
        "virtual media https://img.example.com/a.iso?sig=s3cr3t + http://u:p@cfg.example.com/c.img",
      ),
    ).toBe("virtual media https://img.example.com/a.iso?… + http://…@cfg.example.com/c.img");
  });
});

describe("problem and denialMessage", () => {
  it("prefixes each problem with its field and joins them", () => {
    expect(problem("a.b", "is wrong")).toEqual({ field: "a.b", message: "is wrong" });
    expect(denialMessage([problem("a", "x"), problem("b.c", "y")])).toBe("a: x; b.c: y");
    expect(denialMessage([])).toBe("");
  });
});

describe("changed", () => {
  const old = { spec: { a: 1, nested: { b: [1, 2], c: "x" } }, status: { s: 1 } };

  it("lists the dotted paths whose value differs", () => {
    const next = { spec: { a: 2, nested: { b: [1, 2], c: "y" } }, status: { s: 1 } };
    expect(changed(["spec.a", "spec.nested.b", "spec.nested.c", "status.s"], old, next)).toEqual([
      "spec.a",
      "spec.nested.c",
    ]);
  });

  it("compares objects and arrays by value", () => {
    const next = structuredClone(old);
    expect(changed(["spec", "spec.nested", "spec.nested.b"], old, next)).toEqual([]);
    next.spec.nested.b.push(3);
    expect(changed(["spec", "spec.nested", "spec.nested.b"], old, next)).toEqual([
      "spec",
      "spec.nested",
      "spec.nested.b",
    ]);
  });

  it("treats a field being added or removed as a change, and missing on both sides as none", () => {
    expect(changed(["spec.z"], old, { spec: { ...old.spec, z: 0 } })).toEqual(["spec.z"]);
    expect(changed(["spec.a"], old, { spec: {} })).toEqual(["spec.a"]);
    expect(changed(["spec.q.r", "nope.x"], old, old)).toEqual([]);
  });

  it("walks through non-objects and missing objects without throwing", () => {
    expect(changed(["spec.a.deeper"], { spec: { a: 1 } }, { spec: { a: 2 } })).toEqual([]);
    expect(changed(["spec.a"], undefined, { spec: { a: 1 } })).toEqual(["spec.a"]);
    expect(changed(["spec.a"], null, null)).toEqual([]);
  });
});

describe("isBeingDeleted", () => {
  it("is true for DELETE and for any object with a deletionTimestamp", () => {
    expect(isBeingDeleted({ operation: "DELETE", object: {} })).toBe(true);
    expect(
      isBeingDeleted({
        operation: "UPDATE",
        object: { metadata: { deletionTimestamp: "2025-01-01T00:00:00Z" } },
      }),
    ).toBe(true);
  });

  it("is false otherwise", () => {
    expect(isBeingDeleted({ operation: "UPDATE", object: { metadata: {} } })).toBe(false);
    expect(isBeingDeleted({ operation: "CREATE", object: {} })).toBe(false);
  });
});

describe("isTopologyDryRun", () => {
  const annotated = { metadata: { annotations: { [TOPOLOGY_DRY_RUN_ANNOTATION]: "" } } };

  it("needs both dryRun and the topology annotation", () => {
    expect(TOPOLOGY_DRY_RUN_ANNOTATION).toBe("topology.cluster.x-k8s.io/dry-run");
    expect(isTopologyDryRun({ operation: "UPDATE", object: annotated, dryRun: true })).toBe(true);
    expect(isTopologyDryRun({ operation: "UPDATE", object: annotated, dryRun: false })).toBe(false);
    expect(isTopologyDryRun({ operation: "UPDATE", object: annotated })).toBe(false);
    expect(isTopologyDryRun({ operation: "UPDATE", object: {}, dryRun: true })).toBe(false);
    expect(
      isTopologyDryRun({
        operation: "UPDATE",
        object: { metadata: { annotations: { other: "x" } } },
        dryRun: true,
      }),
    ).toBe(false);
  });
});
