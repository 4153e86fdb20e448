// docs/api.md is hand-written; this keeps it from falling behind the API: every enum value,
// condition, annotation, label and finalizer, and every spec field, must be mentioned.
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";

import * as constants from "../../../capabilities/api/constants";
import { KindSchemas } from "../../../capabilities/api/sources";

const DOC = resolve(__dirname, "../../../docs/api.md");

function fieldNames(schema: unknown, depth: number): string[] {
  const properties = (schema as { properties?: Record<string, unknown> }).properties ?? {};
  return Object.entries(properties).flatMap(([name, child]) => [
    name,
    ...(depth > 0 ? fieldNames(child, depth - 1) : []),
  ]);
}

describe("docs/api.md", () => {
  it.each([
    "HostState",
    "PowerState",
    "ProvisioningMode",
    "OSFamily",
    "BootMode",
    "HostBootMethod",
    "NetworkBootTarget",
    "ProvisioningStep",
    "MachinePhase",
    "HostErrorReason",
    "MachineFailureReason",
    "ConditionType",
    "ConditionReason",
    "Annotations",
    "Labels",
    "Finalizers",
  ] as const)("mentions every value of %s", async name => {
    const doc = await readFile(DOC, "utf8");
    for (const value of Object.values(constants[name])) {
      expect(doc, `${name}: ${value}`).toContain(`\`${value}\``);
    }
  });

  it("mentions every spec field of every kind", async () => {
    const doc = await readFile(DOC, "utf8");
    for (const { kind, spec } of Object.values(KindSchemas)) {
      const fields = kind.endsWith("Template")
        ? ["template", "metadata", "spec"]
        : fieldNames(spec, 1);
      for (const field of fields) expect(doc, `${kind}: ${field}`).toContain(field);
    }
  });
});
