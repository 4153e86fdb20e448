// The CRDs as generated from the schema sources: structural, described, bounded, wired to the
// constants the controllers use, and labelled for the Cluster API contract.
import { describe, expect, it } from "vitest";

import {
  API_GROUP,
  HostState,
  Kinds,
  MachinePhase,
  OSFamily,
  PowerState,
  ProvisioningMode,
  ProvisioningStep,
} from "../../../capabilities/api/constants";
import { KindSchemas } from "../../../capabilities/api/sources";
import { Crd, crdSchemaProblems, openAPISchemaFor } from "../../../manifests/crd";
import { Beskar7Crds } from "../../../manifests/crds";
import { schemaProblems, type JSONSchemaProps } from "../../../manifests/schema";
import { Testing } from "cdk8s";

type Obj = Record<string, unknown>;

function crdsByKind(): Record<string, Obj> {
  const chart = new Beskar7Crds(Testing.app(), "crds");
  const result: Record<string, Obj> = {};
  for (const crd of chart.crds) {
    const json = crd.apiObject.toJson() as Obj;
    result[((json.spec as Obj).names as Obj).kind as string] = json;
  }
  return result;
}

function at(schema: unknown, path: string): JSONSchemaProps {
  let node = schema as JSONSchemaProps;
  for (const part of path.split(".")) {
    node = (part === "[]" ? node.items : (node.properties as Obj)[part]) as JSONSchemaProps;
    if (!node) throw new Error(`no ${part} in ${path}`);
  }
  return node;
}

function versions(crd: Obj): Obj[] {
  return (crd.spec as Obj).versions as Obj[];
}

function rootSchema(crd: Obj, version = 0): JSONSchemaProps {
  return ((versions(crd)[version]!.schema as Obj).openAPIV3Schema ?? {}) as JSONSchemaProps;
}

function allRules(schema: unknown, path = ""): { path: string; rule: string; message: string }[] {
  const node = schema as JSONSchemaProps;
  const own = ((node["x-kubernetes-validations"] ?? []) as { rule: string; message: string }[]).map(
    r => ({ path, ...r }),
  );
  const children = Object.entries((node.properties ?? {}) as Obj).flatMap(([name, child]) =>
    allRules(child, path ? `${path}.${name}` : name),
  );
  const items = node.items ? allRules(node.items, `${path}[]`) : [];
  return [...own, ...children, ...items];
}

const crds = crdsByKind();

describe("CRDs", () => {
  it("exist for the five kinds, namespaced, in the cluster-api category, with short names", () => {
    expect(Object.keys(crds).sort()).toEqual(Object.values(Kinds).sort());
    const shortNames = Object.fromEntries(
      Object.entries(crds).map(([kind, crd]) => [
        kind,
        ((crd.spec as Obj).names as Obj).shortNames,
      ]),
    );
    expect(shortNames).toEqual({
      PhysicalHost: ["phost", "ph"],
      Beskar7Machine: ["b7m"],
      Beskar7MachineTemplate: ["b7mt"],
      Beskar7Cluster: ["b7c"],
      Beskar7ClusterTemplate: ["b7ct"],
    });
    for (const crd of Object.values(crds)) {
      expect((crd.spec as Obj).scope).toBe("Namespaced");
      expect((crd.spec as Obj).group).toBe(API_GROUP);
      expect(((crd.spec as Obj).names as Obj).categories).toEqual(["cluster-api"]);
    }
  });

  it("carry the CAPI contract labels mapping v1beta1 and v1beta2 to our storage version", () => {
    for (const crd of Object.values(crds)) {
      expect((crd.metadata as Obj).labels).toMatchObject({
        "cluster.x-k8s.io/v1beta1": "v1beta1",
        "cluster.x-k8s.io/v1beta2": "v1beta1",
      });
    }
  });

  it("label only PhysicalHost for clusterctl move (the other kinds move through their owners)", () => {
    const moved = Object.entries(crds)
      .filter(
        ([, crd]) => "clusterctl.cluster.x-k8s.io/move" in ((crd.metadata as Obj).labels as Obj),
      )
      .map(([kind]) => kind);
    expect(moved).toEqual([Kinds.PhysicalHost]);
    expect(
      ((crds[Kinds.PhysicalHost]!.metadata as Obj).labels as Obj)[
        "clusterctl.cluster.x-k8s.io/move"
      ],
    ).toBe("");
  });

  it("store v1beta1 and serve v1alpha1 with the identical schema (conversion None)", () => {
    for (const crd of Object.values(crds)) {
      const [stored, legacy] = versions(crd);
      expect(stored).toMatchObject({ name: "v1beta1", served: true, storage: true });
      expect(legacy).toMatchObject({
        name: "v1alpha1",
        served: true,
        storage: false,
        deprecated: true,
      });
      expect(legacy!.schema).toEqual(stored!.schema);
      expect(((crd.spec as Obj).conversion as Obj).strategy).toBe("None");
    }
  });

  it("have a status subresource exactly on the reconciled kinds", () => {
    const withStatus = Object.entries(crds)
      .filter(([, crd]) => versions(crd)[0]!.subresources)
      .map(([kind]) => kind)
      .sort();
    expect(withStatus).toEqual(["Beskar7Cluster", "Beskar7Machine", "PhysicalHost"]);
  });

  it("are structural, fully described and bounded for CEL", () => {
    for (const [kind, crd] of Object.entries(crds)) {
      const problems = crdSchemaProblems(rootSchema(crd));
      expect(problems, kind).toEqual([]);
    }
  });

  it("use the runtime constants as enums", () => {
    const host = rootSchema(crds.PhysicalHost!);
    expect(at(host, "status.state").enum).toEqual(Object.values(HostState));
    expect(at(host, "status.observedPowerState").enum).toEqual(Object.values(PowerState));
    expect(at(host, "status.provisioning.currentStep").enum).toEqual(
      Object.values(ProvisioningStep),
    );
    const machine = rootSchema(crds.Beskar7Machine!);
    expect(at(machine, "spec.provisioningMode").enum).toEqual(Object.values(ProvisioningMode));
    expect(at(machine, "spec.osFamily").enum).toEqual(Object.values(OSFamily));
    expect(at(machine, "status.phase").enum).toEqual(Object.values(MachinePhase));
    const template = rootSchema(crds.Beskar7MachineTemplate!);
    expect(at(template, "spec.template.spec.provisioningMode").enum).toEqual(
      Object.values(ProvisioningMode),
    );
  });

  it("describe every host state in the state field", () => {
    const description = at(rootSchema(crds.PhysicalHost!), "status.state").description as string;
    for (const state of Object.values(HostState)) expect(description).toContain(`${state}:`);
  });

  it("follow the CAPI v1beta2 status shape for machines and clusters", () => {
    const machine = rootSchema(crds.Beskar7Machine!);
    expect(at(machine, "status.initialization.provisioned").type).toBe("boolean");
    expect(at(machine, "status.conditions")["x-kubernetes-list-map-keys"]).toEqual(["type"]);
    expect(at(machine, "status.addresses.[].type").enum).toEqual([
      "Hostname",
      "ExternalIP",
      "InternalIP",
      "ExternalDNS",
      "InternalDNS",
    ]);
    for (const field of ["ready", "failureReason", "failureMessage", "failureDomain", "phase"]) {
      expect(at(machine, `status.${field}`).description).toBeTruthy();
    }
    const cluster = rootSchema(crds.Beskar7Cluster!);
    expect(at(cluster, "status.failureDomains").type).toBe("array");
    expect(at(cluster, "status.failureDomains.[].controlPlane").type).toBe("boolean");
    expect(at(cluster, "spec.controlPlaneEndpoint.port")).toMatchObject({
      minimum: 1,
      maximum: 65535,
      default: 6443,
    });
  });

  it("give every CEL rule a message naming the field it checks", () => {
    const rules = Object.values(crds).flatMap(crd => allRules(rootSchema(crd)));
    expect(rules.length).toBeGreaterThan(20);
    for (const { path, message } of rules) {
      if (path.includes("matchExpressions")) continue; // item-level rule, named by its key
      const root = path.split(".")[0];
      expect(message, `${path}: ${message}`).toMatch(new RegExp(`\\b${root}\\.`));
    }
  });

  it("show power, state and consumer by default and the BMC details only with -o wide", () => {
    const columns = versions(crds.PhysicalHost!)[0]!.additionalPrinterColumns as Obj[];
    const byName = Object.fromEntries(columns.map(c => [c.name, c.priority ?? 0]));
    expect(byName).toEqual({
      State: 0,
      Power: 0,
      Consumer: 0,
      Address: 1,
      Manufacturer: 1,
      Model: 1,
      Error: 1,
      Age: 0,
    });
  });

  it("refuse to generate from a schema the API server would reject", () => {
    const broken = {
      ...KindSchemas.Beskar7ClusterTemplate,
      spec: { ...KindSchemas.Beskar7ClusterTemplate.spec, description: "" },
    };
    expect(() => openAPISchemaFor(broken)).toThrow(/spec: missing description/);
    expect(
      () => new Crd(Testing.chart(), "x", { schema: broken, shortNames: [], printerColumns: [] }),
    ).toThrow();
  });
});

describe("schemaProblems", () => {
  it("reports non-structural and unbounded nodes with their path", () => {
    const problems = schemaProblems({
      type: "object",
      description: "root",
      properties: {
        union: { type: "string", description: "u", anyOf: [{}], maxLength: 1 },
        free: { type: "string", description: "unbounded" },
        list: { type: "array", description: "l", items: { type: "string", maxLength: 3 } },
        bare: { type: "integer" },
        closed: { type: "object", description: "c", additionalProperties: false },
        map: { type: "object", description: "m", additionalProperties: { type: "string" } },
      },
    });
    expect(problems).toEqual([
      'union: "anyOf" is not allowed in a structural CRD schema',
      "free: string without maxLength (unbounded CEL cost)",
      "list: list without maxItems (unbounded CEL cost)",
      "bare: missing description",
      "closed: additionalProperties: false is not structural",
      "map: map without maxProperties",
      "map.*: string without maxLength (unbounded CEL cost)",
    ]);
  });
});
