// Hardening suite, hostile input through the real admission path: a corpus generated with
// fast-check for every Beskar7 kind, sent to the API server (dry run, so nothing is stored) with the
// module's webhooks registered, which the API server calls over TLS as in a cluster. Invalid objects
// are the examples/ objects with one field broken against the CRD's own schema (wrong type, too
// long, outside its enum or bounds); each must be refused with a message naming that field. Valid
// objects (the examples under generated names, labels and annotations) must be accepted. No answer
// may be a webhook error or timeout.
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { CustomObjectsApi, KubeConfig } from "@kubernetes/client-node";
import fc from "fast-check";
import { K8s, kind } from "kubernetes-fluent-client";
import { parseAllDocuments } from "yaml";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";

import { Labels } from "../../../capabilities/api";
import { createNamespace } from "../support/kube";
import { startOperator, type Operator } from "../support/operator";
import { eachLimited, OPERATOR_ENV } from "./support";

const ROOT = resolve(__dirname, "..", "..", "..");
const GROUP = "infrastructure.cluster.x-k8s.io";
const VERSION = "v1beta1";
const INVALID_PER_KIND = 80;
const VALID_PER_KIND = 20;
const SEED = 1313;

interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  enum?: unknown[];
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  additionalProperties?: unknown;
  "x-kubernetes-preserve-unknown-fields"?: boolean;
  "x-kubernetes-int-or-string"?: boolean;
}

/** A field of the schema that one mutation can break, with its path in an object and in messages. */
interface Leaf {
  path: Array<string | number>;
  schema: Schema;
}

type Obj = Record<string, unknown> & { kind: string; metadata: Record<string, unknown> };

function crdSchemas(): Map<string, { plural: string; schema: Schema }> {
  const dir = join(ROOT, "manifests", "generated", "crds");
  const out = new Map<string, { plural: string; schema: Schema }>();
  for (const file of readdirSync(dir).filter(f => f.endsWith(".yaml"))) {
    const crd = parseAllDocuments(readFileSync(join(dir, file), "utf8"))[0]!.toJS() as {
      spec: {
        names: { kind: string; plural: string };
        versions: Array<{ name: string; schema: { openAPIV3Schema: Schema } }>;
      };
    };
    const version = crd.spec.versions.find(v => v.name === VERSION)!;
    out.set(crd.spec.names.kind, {
      plural: crd.spec.names.plural,
      schema: version.schema.openAPIV3Schema,
    });
  }
  return out;
}

function exampleObjects(kinds: Set<string>): Obj[] {
  const dir = join(ROOT, "examples");
  const objects: Obj[] = [];
  for (const file of readdirSync(dir).filter(f => f.endsWith(".yaml"))) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, file), "utf8"))) {
      const obj = doc.toJS() as Obj | null;
      if (obj && kinds.has(obj.kind)) objects.push(obj);
    }
  }
  return objects;
}

/** Every field under spec the schema constrains (array items at index 0). */
function leaves(schema: Schema, path: Array<string | number> = []): Leaf[] {
  const out: Leaf[] = [];
  if (path.length) out.push({ path, schema });
  if (schema["x-kubernetes-preserve-unknown-fields"] || schema["x-kubernetes-int-or-string"])
    return out;
  for (const [name, child] of Object.entries(schema.properties ?? {}))
    out.push(...leaves(child, [...path, name]));
  if (schema.items) out.push(...leaves(schema.items, [...path, 0]));
  return out;
}

/** How the API server names a field in its messages: spec.a.b[0].c */
const fieldName = (path: Array<string | number>) =>
  path.map((p, i) => (typeof p === "number" ? `[${p}]` : i ? `.${p}` : p)).join("");

/** Whether the object has every parent of the leaf (so the mutation breaks only that field). */
function parentOf(
  obj: unknown,
  path: Array<string | number>,
): Record<string | number, unknown> | undefined {
  let at = obj as Record<string | number, unknown> | undefined;
  for (const key of path.slice(0, -1)) {
    const next = at?.[key];
    if (next === null || typeof next !== "object") return undefined;
    at = next as Record<string | number, unknown>;
  }
  return at;
}

/** The ways a value can break a field's schema, with the value itself. */
function breakers(schema: Schema): Array<fc.Arbitrary<unknown>> {
  const list: Array<fc.Arbitrary<unknown>> = [];
  const wrongTypes: Record<string, Array<fc.Arbitrary<unknown>>> = {
    string: [fc.integer(), fc.boolean(), fc.constant({ x: 1 }), fc.constant([1])],
    integer: [
      fc.string({ minLength: 1, maxLength: 10 }).map(s => `x${s}`),
      fc.constant(1.5),
      fc.boolean(),
    ],
    number: [fc.string({ minLength: 1, maxLength: 10 }).map(s => `x${s}`), fc.boolean()],
    boolean: [fc.string({ minLength: 1, maxLength: 10 }).map(s => `x${s}`), fc.integer()],
    object: [fc.string({ maxLength: 10 }), fc.integer(), fc.constant([1, 2])],
    array: [fc.string({ maxLength: 10 }), fc.constant({ x: 1 })],
  };
  if (schema.type && wrongTypes[schema.type]) list.push(...wrongTypes[schema.type]!);
  if (schema.type === "string" && schema.maxLength !== undefined && schema.maxLength < 100_000)
    list.push(fc.integer({ min: 1, max: 200 }).map(extra => "a".repeat(schema.maxLength! + extra)));
  if (schema.enum)
    list.push(
      fc
        .stringMatching(/^[A-Za-z]{1,12}$/)
        .map(s => `Not${s}`)
        .filter(s => !schema.enum!.includes(s)),
    );
  if (schema.type === "integer" && schema.minimum !== undefined)
    list.push(fc.integer({ min: 1, max: 1000 }).map(d => schema.minimum! - d));
  if (schema.type === "integer" && schema.maximum !== undefined)
    list.push(fc.integer({ min: 1, max: 1000 }).map(d => schema.maximum! + d));
  return list;
}

const dnsLabel = fc.stringMatching(/^[a-z][a-z0-9-]{0,20}[a-z0-9]$/);

interface Outcome {
  accepted: boolean;
  status?: number;
  message: string;
}

describe("a generated corpus through the real admission path", () => {
  let operator: Operator;
  let ns: string;
  let api: CustomObjectsApi;

  beforeAll(async () => {
    operator = await startOperator(OPERATOR_ENV);
    ns = await createNamespace("hardening-corpus");
    const kc = new KubeConfig();
    kc.loadFromFile(inject("kubeconfig"));
    api = kc.makeApiClient(CustomObjectsApi);
    // The Secrets the examples name, labelled as their owners would.
    for (const name of ["server-01-bmc", "server-02-bmc", "blade-bmc", "bmc", "bmc-ca"]) {
      await K8s(kind.Secret).Apply(
        {
          metadata: { name, namespace: ns, labels: { [Labels.bmcCredentials]: "true" } },
          stringData: { username: "u", password: "p", "ca.crt": "x" },
        },
        { force: true },
      );
    }
  });
  afterAll(async () => {
    await operator?.stop();
  });

  async function submit(plural: string, obj: Obj): Promise<Outcome> {
    try {
      await api.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: ns,
        plural,
        body: { ...obj, metadata: { ...obj.metadata, namespace: ns } },
        dryRun: "All",
      });
      return { accepted: true, message: "" };
    } catch (err) {
      const e = err as { code?: number; body?: string | { message?: string }; message?: string };
      let message = e.message ?? String(err);
      const body = typeof e.body === "string" ? safeJson(e.body) : e.body;
      if (body?.message) message = body.message;
      return { accepted: false, status: e.code, message };
    }
  }

  it("refuses every invalid object naming the field, accepts the valid ones, with no webhook error", async () => {
    const schemas = crdSchemas();
    const examples = exampleObjects(new Set(schemas.keys()));
    const invalid: Array<{ kind: string; plural: string; field: string; obj: Obj }> = [];
    const valid: Array<{ kind: string; plural: string; obj: Obj }> = [];
    let n = 0;
    for (const [kindName, { plural, schema }] of schemas) {
      const bases = examples.filter(e => e.kind === kindName);
      expect(bases.length, `an example of ${kindName}`).toBeGreaterThan(0);
      const fields = leaves(schema.properties!.spec!, ["spec"]).filter(l =>
        bases.some(b => parentOf(b, l.path)),
      );
      const candidates = fields.flatMap(leaf => breakers(leaf.schema).map(arb => ({ leaf, arb })));
      const mutation = fc
        .record({
          base: fc.integer({ min: 0, max: bases.length - 1 }),
          which: fc.integer({ min: 0, max: candidates.length - 1 }),
          seed: fc.integer(),
        })
        .filter(({ base, which }) => !!parentOf(bases[base], candidates[which]!.leaf.path));
      for (const m of fc.sample(mutation, { numRuns: INVALID_PER_KIND, seed: SEED + n++ })) {
        const { leaf, arb } = candidates[m.which]!;
        const obj = structuredClone(bases[m.base]!);
        obj.metadata = { name: `bad-${invalid.length}` };
        const value = fc.sample(arb, { numRuns: 1, seed: m.seed })[0];
        parentOf(obj, leaf.path)![leaf.path[leaf.path.length - 1]!] = value;
        invalid.push({ kind: kindName, plural, field: fieldName(leaf.path), obj });
      }
      const validMeta = fc.record({
        name: dnsLabel,
        labels: fc.dictionary(dnsLabel, dnsLabel, { maxKeys: 4 }),
        annotations: fc.dictionary(dnsLabel, fc.string({ maxLength: 200 }), { maxKeys: 3 }),
        base: fc.integer({ min: 0, max: bases.length - 1 }),
      });
      for (const v of fc.sample(validMeta, { numRuns: VALID_PER_KIND, seed: SEED + n++ })) {
        const obj = structuredClone(bases[v.base]!);
        obj.metadata = {
          name: `ok-${valid.length}-${v.name}`.slice(0, 63).replace(/-+$/, ""),
          labels: { ...(obj.metadata.labels as object), ...v.labels },
          annotations: v.annotations,
        };
        valid.push({ kind: kindName, plural, obj });
      }
    }

    // Rules only the module's webhook knows (the schema accepts these addresses): they prove the
    // API server calls the webhook for this corpus, dry run included.
    const hostBase = examples.find(e => e.kind === "PhysicalHost")!;
    const webhookOnly = fc.oneof(
      fc.tuple(dnsLabel, dnsLabel).map(([u, h]) => `https://${u}:secret@${h}.example.com`),
      fc.tuple(dnsLabel, dnsLabel).map(([h, p]) => `https://${h}.example.com/${p}`),
    );
    for (const address of fc.sample(webhookOnly, { numRuns: 20, seed: SEED + n++ })) {
      const obj = structuredClone(hostBase);
      obj.metadata = { name: `bad-${invalid.length}` };
      (obj.spec as { redfishConnection: { address: string } }).redfishConnection.address = address;
      invalid.push({
        kind: "PhysicalHost",
        plural: schemas.get("PhysicalHost")!.plural,
        field: "spec.redfishConnection.address",
        obj,
      });
    }
    const webhookTrouble =
      /failed calling webhook|context deadline exceeded|Internal error|timeout|EOF/i;
    const results: Array<{ field?: string; kind: string; outcome: Outcome; valid: boolean }> = [];
    await eachLimited(
      [
        ...invalid.map(i => ({ ...i, valid: false })),
        ...valid.map(v => ({ ...v, field: undefined, valid: true })),
      ],
      8,
      async item => {
        results.push({
          field: item.field,
          kind: item.kind,
          valid: item.valid,
          outcome: await submit(item.plural, item.obj),
        });
      },
    );
    const refused = results.filter(r => !r.valid && !r.outcome.accepted);
    const refusedNaming = refused.filter(r => r.outcome.message.includes(r.field!));
    const wronglyAccepted = results.filter(r => !r.valid && r.outcome.accepted);
    const notNaming = refused.filter(r => !r.outcome.message.includes(r.field!));
    const webhookErrors = results.filter(r => webhookTrouble.test(r.outcome.message));
    const byWebhook = refused.filter(r =>
      r.outcome.message.includes('admission webhook "pepr-beskar7.pepr.dev" denied'),
    );
    const validAccepted = results.filter(r => r.valid && r.outcome.accepted);
    const validRefused = results.filter(r => r.valid && !r.outcome.accepted);
    const byKind = [...schemas.keys()]
      .map(
        k =>
          `${k} ${results.filter(r => r.kind === k && !r.valid).length}/${results.filter(r => r.kind === k && r.valid).length}`,
      )
      .join(", ");
    console.log(
      `admission corpus: ${invalid.length} invalid and ${valid.length} valid objects (${byKind}); ` +
        `${refusedNaming.length}/${invalid.length} invalid refused naming the field ` +
        `(${((100 * refusedNaming.length) / invalid.length).toFixed(1)}%), ${wronglyAccepted.length} accepted, ` +
        `${notNaming.length} refused without naming it; ${byWebhook.length} refused by the module's webhook (rules the schema cannot express); ` +
        `${validAccepted.length}/${valid.length} valid accepted; ` +
        `${webhookErrors.length} webhook errors or timeouts`,
    );
    const show = (list: typeof results) =>
      list.slice(0, 5).map(r => `${r.kind} ${r.field ?? ""}: ${r.outcome.message.slice(0, 300)}`);
    expect(show(wronglyAccepted)).toEqual([]);
    expect(show(notNaming)).toEqual([]);
    expect(show(webhookErrors)).toEqual([]);
    expect(show(validRefused)).toEqual([]);
    expect(byWebhook.length).toBeGreaterThanOrEqual(20);
    expect(operator.output()).not.toMatch(/TypeError|ReferenceError|Unhandled/);
  }, 300_000);
});

function safeJson(text: string): { message?: string } | undefined {
  try {
    return JSON.parse(text) as { message?: string };
  } catch {
    return undefined;
  }
}
