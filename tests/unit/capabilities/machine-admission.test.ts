import { describe, expect, it } from "vitest";

import type {
  Beskar7Machine,
  Beskar7MachineSpec,
  Beskar7MachineTemplate,
} from "../../../capabilities/api";
import { TOPOLOGY_DRY_RUN_ANNOTATION } from "../../../capabilities/lib/admission";
import {
  checkMachineSpec,
  effectiveProvisioningMode,
  machineDefaults,
  validateBeskar7Machine,
  validateBeskar7MachineTemplate,
} from "../../../capabilities/machine/admission";

const ISO = "https://images.example.com/kairos.iso";
const CONFIG = "https://config.example.com/worker.yaml";
const INSPECT = "http://pxe.example.com/inspect.ipxe";
const TARGET = "http://pxe.example.com/os.raw";

type Spec = Partial<Beskar7MachineSpec>;

const fields = (found: { field: string }[]) => found.map(p => p.field);

describe("effectiveProvisioningMode", () => {
  it.each<[string, Spec, string]>([
    ["an explicit mode wins", { provisioningMode: "PXE", configURL: CONFIG }, "PXE"],
    ["an inspection image means iPXE", { inspectionImageURL: INSPECT, configURL: CONFIG }, "iPXE"],
    ["a config URL means RemoteConfig", { imageURL: ISO, configURL: CONFIG }, "RemoteConfig"],
    ["an ISO alone is PreBakedISO", { imageURL: ISO }, "PreBakedISO"],
    ["nothing at all is PreBakedISO", {}, "PreBakedISO"],
  ])("%s", (_why, spec, mode) => {
    expect(effectiveProvisioningMode(spec)).toBe(mode);
  });
});

describe("checkMachineSpec", () => {
  it("requires a spec", () => {
    expect(checkMachineSpec(undefined, "spec")).toEqual([
      { field: "spec", message: "is required" },
    ]);
  });

  it.each<[string, Spec]>([
    ["PreBakedISO", { imageURL: ISO }],
    ["RemoteConfig", { imageURL: ISO, configURL: CONFIG, osFamily: "kairos" }],
    [
      "explicit RemoteConfig",
      { provisioningMode: "RemoteConfig", imageURL: ISO, configURL: CONFIG },
    ],
    ["PXE", { provisioningMode: "PXE", inspectionImageURL: INSPECT, targetImageURL: TARGET }],
    ["inferred iPXE", { inspectionImageURL: INSPECT, targetImageURL: TARGET }],
  ])("accepts a complete %s spec", (_mode, spec) => {
    expect(checkMachineSpec(spec, "spec")).toEqual([]);
  });

  it("accepts RemoteConfig without configURL: the OS then reads the bootstrap data", () => {
    expect(
      checkMachineSpec(
        { provisioningMode: "RemoteConfig", imageURL: ISO, osFamily: "talos" },
        "spec",
      ),
    ).toEqual([]);
  });

  it("accepts extra kernel arguments the renderer accepts, and refuses the others by name", () => {
    const spec = (extraKernelArgs: string[], osFamily?: "talos") =>
      checkMachineSpec(
        { provisioningMode: "RemoteConfig", imageURL: ISO, osFamily, extraKernelArgs },
        "spec",
      );
    expect(spec(["console=ttyS0,115200n8", "nomodeset"], "talos")).toEqual([]);
    expect(spec(["a b"], "talos")).toEqual([
      { field: "spec.extraKernelArgs", message: expect.stringContaining('"a b"') },
    ]);
    // talos.config is Beskar7's own argument for talos.
    expect(spec(["talos.config=https://elsewhere.example/x"], "talos")).toEqual([
      { field: "spec.extraKernelArgs", message: expect.stringContaining("talos.config") },
    ]);
    // (osFamily itself is the CRD's rule for RemoteConfig.)
    expect(fields(spec(["console=ttyS0"]))).toEqual(["spec.extraKernelArgs"]);
  });

  it.each(["PreBakedISO", "RemoteConfig"] as const)("requires imageURL for %s", mode => {
    const spec: Spec = { provisioningMode: mode, configURL: CONFIG };
    const found = checkMachineSpec(spec, "spec");
    expect(found).toEqual([
      {
        field: "spec.imageURL",
        message: expect.stringContaining(`is required for provisioningMode ${mode}`),
      },
    ]);
  });

  it("requires imageURL of an empty spec (inferred PreBakedISO)", () => {
    expect(fields(checkMachineSpec({}, "spec"))).toEqual(["spec.imageURL"]);
  });

  it.each(["PXE", "iPXE"] as const)(
    "requires inspectionImageURL and targetImageURL for %s",
    mode => {
      expect(checkMachineSpec({ provisioningMode: mode }, "spec")).toEqual([
        {
          field: "spec.inspectionImageURL",
          message: `is required for provisioningMode ${mode}`,
        },
        { field: "spec.targetImageURL", message: `is required for provisioningMode ${mode}` },
      ]);
      expect(
        fields(checkMachineSpec({ provisioningMode: mode, inspectionImageURL: INSPECT }, "spec")),
      ).toEqual(["spec.targetImageURL"]);
    },
  );

  it("does not ask network modes for an ISO", () => {
    const spec: Spec = { provisioningMode: "PXE", inspectionImageURL: INSPECT };
    expect(fields(checkMachineSpec(spec, "spec"))).not.toContain("spec.imageURL");
  });

  it.each([
    ["minCPUCores", 0],
    ["minMemoryGB", -4],
    ["minDiskGB", 1.5],
  ])("rejects hardwareRequirements.%s = %d", (field, value) => {
    const spec = { imageURL: ISO, hardwareRequirements: { [field]: value } } as Spec;
    expect(checkMachineSpec(spec, "spec")).toEqual([
      {
        field: `spec.hardwareRequirements.${field}`,
        message: `must be a whole number of at least 1 (got ${value})`,
      },
    ]);
  });

  it("accepts requirements of 1 and more, and reports each bad one", () => {
    const ok: Spec = {
      imageURL: ISO,
      hardwareRequirements: { minCPUCores: 1, minMemoryGB: 64, minDiskGB: 500 },
    };
    expect(checkMachineSpec(ok, "spec")).toEqual([]);
    const bad: Spec = {
      imageURL: ISO,
      hardwareRequirements: { minCPUCores: 0, minMemoryGB: 0.5, minDiskGB: 10 },
    };
    expect(fields(checkMachineSpec(bad, "spec"))).toEqual([
      "spec.hardwareRequirements.minCPUCores",
      "spec.hardwareRequirements.minMemoryGB",
    ]);
  });

  it.each([
    ["imageURL", { imageURL: "ftp://images.example.com/a.iso" }],
    ["configURL", { imageURL: ISO, configURL: "s3://bucket/config.yaml" }],
    [
      "inspectionImageURL",
      { provisioningMode: "PXE", inspectionImageURL: "tftp://pxe/i", targetImageURL: TARGET },
    ],
    [
      "targetImageURL",
      { provisioningMode: "PXE", inspectionImageURL: INSPECT, targetImageURL: "nfs://x/os" },
    ],
    [
      "targetInitrdURL",
      {
        provisioningMode: "iPXE",
        inspectionImageURL: INSPECT,
        targetImageURL: TARGET,
        targetInitrdURL: "tftp://pxe/initrd",
      },
    ],
    ["configurationURL", { imageURL: ISO, configurationURL: "ftp://config.example.com/c" }],
  ])("rejects a non-http(s) %s, naming the field", (field, spec) => {
    const found = checkMachineSpec(spec as Spec, "spec");
    expect(found).toHaveLength(1);
    expect(found[0]!.field).toBe(`spec.${field}`);
    expect(found[0]!.message).toContain("use http or https");
  });

  it("rejects credentials in an image URL without echoing them", () => {
    const found = checkMachineSpec({ imageURL: "https://u:hunter2@images.example.com/a" }, "spec");
    expect(found).toEqual([
      { field: "spec.imageURL", message: expect.stringContaining("must not embed credentials") },
    ]);
    expect(JSON.stringify(found)).not.toContain("hunter2");
  });

  it("allows paths and queries on image URLs", () => {
    expect(checkMachineSpec({ imageURL: `${ISO}?sig=abc#x` }, "spec")).toEqual([]);
  });

  it("prefixes fields with the given path", () => {
    expect(fields(checkMachineSpec({ provisioningMode: "iPXE" }, "spec.template.spec"))).toEqual([
      "spec.template.spec.inspectionImageURL",
      "spec.template.spec.targetImageURL",
    ]);
  });
});

function machine(spec: Spec, status?: Beskar7Machine["status"]): Beskar7Machine {
  return {
    metadata: { name: "worker-0", namespace: "lab" },
    spec: spec as Beskar7MachineSpec,
    ...(status ? { status } : {}),
  };
}

describe("validateBeskar7Machine", () => {
  const spec: Spec = {
    imageURL: ISO,
    configURL: CONFIG,
    osFamily: "kairos",
    hardwareRequirements: { minCPUCores: 8 },
  };

  it("checks the spec on create", () => {
    expect(validateBeskar7Machine({ operation: "CREATE", object: machine(spec) })).toEqual([]);
    expect(
      fields(
        validateBeskar7Machine({ operation: "CREATE", object: machine({ configURL: CONFIG }) }),
      ),
    ).toEqual(["spec.imageURL"]);
  });

  it("lets an unclaimed machine change anything", () => {
    const old = machine(spec, { phase: "WaitingForHost" });
    const next = machine({ ...spec, imageURL: `${ISO}.v2`, hardwareRequirements: {} });
    expect(validateBeskar7Machine({ operation: "UPDATE", object: next, oldObject: old })).toEqual(
      [],
    );
  });

  it("fixes the spec once a host is claimed, naming each changed field and the host", () => {
    const old = machine(spec, { hostRef: { name: "server-21" } });
    const next = machine({
      ...spec,
      imageURL: `${ISO}.v2`,
      hardwareRequirements: { minCPUCores: 16 },
      bootMode: "Legacy",
    });
    const found = validateBeskar7Machine({ operation: "UPDATE", object: next, oldObject: old });
    expect(fields(found)).toEqual(["spec.imageURL", "spec.hardwareRequirements", "spec.bootMode"]);
    for (const p of found) {
      expect(p.message).toBe(
        "cannot change once host server-21 is claimed for it; create a new machine instead",
      );
    }
  });

  it.each<[string, Beskar7Machine["status"]]>([
    ["initialization.provisioned", { initialization: { provisioned: true } }],
    ["ready (v1beta1)", { ready: true }],
  ])("fixes the spec once provisioned (%s)", (_why, status) => {
    const old = machine(spec, status);
    const next = machine({ ...spec, failureDomain: "rack-2", osFamily: "talos" });
    const found = validateBeskar7Machine({ operation: "UPDATE", object: next, oldObject: old });
    expect(found).toEqual([
      {
        field: "spec.osFamily",
        message: expect.stringContaining("cannot change once the machine is provisioned"),
      },
      {
        field: "spec.failureDomain",
        message: expect.stringContaining("cannot change once the machine is provisioned"),
      },
    ]);
  });

  it("lets the controller set providerID on a claimed machine (not a fixed field)", () => {
    const old = machine(spec, { hostRef: { name: "server-21" } });
    const next = machine({ ...spec, providerID: "beskar7://lab/server-21" });
    expect(validateBeskar7Machine({ operation: "UPDATE", object: next, oldObject: old })).toEqual(
      [],
    );
  });

  it("approves a machine being deleted, even an invalid one", () => {
    const broken = machine({ provisioningMode: "PXE" }, { hostRef: { name: "server-21" } });
    const deleting = structuredClone(broken);
    deleting.metadata!.deletionTimestamp = new Date("2025-03-01T00:00:00Z");
    deleting.spec!.imageURL = "ftp://x";
    expect(
      validateBeskar7Machine({ operation: "UPDATE", object: deleting, oldObject: broken }),
    ).toEqual([]);
    expect(validateBeskar7Machine({ operation: "DELETE", object: broken })).toEqual([]);
  });
});

function template(spec: Spec & { providerID?: string }, annotations?: Record<string, string>) {
  const t: Beskar7MachineTemplate = {
    metadata: { name: "workers-v1", namespace: "lab", ...(annotations ? { annotations } : {}) },
    spec: { template: { spec: spec as Beskar7MachineSpec } },
  };
  return t;
}

describe("validateBeskar7MachineTemplate", () => {
  const spec: Spec = { imageURL: ISO };

  it("checks the template's spec under spec.template.spec", () => {
    expect(validateBeskar7MachineTemplate({ operation: "CREATE", object: template(spec) })).toEqual(
      [],
    );
    expect(
      validateBeskar7MachineTemplate({
        operation: "CREATE",
        object: template({ provisioningMode: "RemoteConfig" }),
      }),
    ).toEqual([
      { field: "spec.template.spec.imageURL", message: expect.stringContaining("is required") },
    ]);
  });

  it("requires spec.template.spec", () => {
    const t: Beskar7MachineTemplate = { metadata: { name: "x" }, spec: undefined };
    expect(validateBeskar7MachineTemplate({ operation: "CREATE", object: t })).toEqual([
      { field: "spec.template.spec", message: "is required" },
    ]);
  });

  it("rejects a providerID in a template", () => {
    const found = validateBeskar7MachineTemplate({
      operation: "CREATE",
      object: template({ ...spec, providerID: "beskar7://lab/server-21" }),
    });
    expect(found).toEqual([
      {
        field: "spec.template.spec.providerID",
        message: expect.stringContaining("must not be set in a template"),
      },
    ]);
  });

  it("makes spec.template immutable", () => {
    const old = template(spec);
    const found = validateBeskar7MachineTemplate({
      operation: "UPDATE",
      object: template({ imageURL: `${ISO}.v2` }),
      oldObject: old,
    });
    expect(found).toEqual([
      {
        field: "spec.template",
        message: expect.stringContaining("create a new Beskar7MachineTemplate"),
      },
    ]);
  });

  it("allows metadata-only updates", () => {
    const old = template(spec);
    const next = template(spec, { note: "x" });
    expect(
      validateBeskar7MachineTemplate({ operation: "UPDATE", object: next, oldObject: old }),
    ).toEqual([]);
  });

  it("lets Cluster API topology dry-runs through the immutability check", () => {
    const old = template(spec);
    const next = template({ imageURL: `${ISO}.v2` }, { [TOPOLOGY_DRY_RUN_ANNOTATION]: "" });
    expect(
      validateBeskar7MachineTemplate({
        operation: "UPDATE",
        object: next,
        oldObject: old,
        dryRun: true,
      }),
    ).toEqual([]);
    // the annotation alone (no dry run) is not enough
    expect(
      fields(validateBeskar7MachineTemplate({ operation: "UPDATE", object: next, oldObject: old })),
    ).toEqual(["spec.template"]);
  });

  it("still checks the spec itself during a topology dry-run", () => {
    const old = template(spec);
    const next = template({ provisioningMode: "PXE" }, { [TOPOLOGY_DRY_RUN_ANNOTATION]: "" });
    expect(
      fields(
        validateBeskar7MachineTemplate({
          operation: "UPDATE",
          object: next,
          oldObject: old,
          dryRun: true,
        }),
      ),
    ).toEqual(["spec.template.spec.inspectionImageURL", "spec.template.spec.targetImageURL"]);
  });

  it("approves deletion", () => {
    const t = template({ providerID: "x" });
    expect(validateBeskar7MachineTemplate({ operation: "DELETE", object: t })).toEqual([]);
  });
});

describe("machineDefaults", () => {
  it.each<[string, Spec | undefined, Spec]>([
    ["no spec", undefined, {}],
    ["an explicit mode", { provisioningMode: "PXE", imageURL: ISO }, {}],
    // Invalid values are left for the schema to refuse, not replaced by a default.
    ["a mode of the wrong type", { provisioningMode: false as never, imageURL: ISO }, {}],
    ["an empty mode", { provisioningMode: "" as never, imageURL: ISO }, {}],
    ["no image at all", { osFamily: "kairos" }, {}],
    ["an ISO", { imageURL: ISO }, { provisioningMode: "PreBakedISO" }],
    [
      "an ISO and config",
      { imageURL: ISO, configURL: CONFIG },
      { provisioningMode: "RemoteConfig" },
    ],
    ["an inspection image", { inspectionImageURL: INSPECT }, { provisioningMode: "iPXE" }],
    ["a config URL alone", { configURL: CONFIG }, { provisioningMode: "RemoteConfig" }],
    [
      "both ISO and inspection image (ambiguous)",
      { imageURL: ISO, inspectionImageURL: INSPECT },
      {},
    ],
  ])("with %s", (_why, spec, defaults) => {
    expect(machineDefaults(spec)).toEqual(defaults);
  });
});
