// Schema building blocks shared by the Beskar7 kinds. Everything here must render to a
// *structural* OpenAPI v3 schema as the API server accepts it for CRDs: no anyOf/const/
// patternProperties (so enums and maps are written with Type.Unsafe), every string and list
// bounded (maxLength/maxItems) so CEL rules stay under the per-expression cost limit.
import { Type, type TSchema, type TUnsafe } from "@sinclair/typebox";

import { MachineAddressType } from "../constants";

/** A string restricted to the given values, as an OpenAPI `enum` (TypeBox unions render anyOf). */
export function StringEnum<const T extends readonly string[]>(
  values: T,
  options: { description: string; default?: T[number] },
): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ type: "string", enum: [...values], ...options });
}

/** A string→string map (labels, annotations, attributes), as `additionalProperties`. */
export function StringMap(
  description: string,
  maxProperties = 64,
): TUnsafe<Record<string, string>> {
  return Type.Unsafe<Record<string, string>>({
    type: "object",
    description,
    maxProperties,
    additionalProperties: { type: "string", maxLength: 4096 },
  });
}

/** Bounded list: maxItems keeps CEL cost estimates finite. */
export function List<T extends TSchema>(
  items: T,
  options: { description: string; maxItems: number; [key: string]: unknown },
) {
  return Type.Array(items, options);
}

/** Further kernel arguments; admission checks each with boot/render.ts's rules. */
export function KernelArgs(description: string) {
  return List(
    Type.String({
      description: "one kernel argument: name or name=value.",
      minLength: 1,
      maxLength: 512,
    }),
    { description, maxItems: 32 },
  );
}

/** A Kubernetes object name (DNS-1123 subdomain). */
export function ObjectName(description: string) {
  return Type.String({
    description,
    minLength: 1,
    maxLength: 253,
    pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
  });
}

/** An http(s) URL a server fetches at boot time (images, configs). */
export function HttpURL(description: string) {
  return Type.String({
    description,
    minLength: 8,
    maxLength: 2048,
    pattern: "^https?://[^\\s]+$",
  });
}

export interface CelRule {
  rule: string;
  message: string;
  /** Set on rules that use oldSelf, so a violation is reported against the right field. */
  fieldPath?: string;
  reason?:
    | "FieldValueInvalid"
    | "FieldValueForbidden"
    | "FieldValueRequired"
    | "FieldValueDuplicate";
}

/** The CRD extension holding CEL rules; spread into a schema's options. */
export function cel(...rules: CelRule[]): { "x-kubernetes-validations": CelRule[] } {
  return { "x-kubernetes-validations": rules };
}

/** metav1.Condition, as Kubernetes itself validates it. */
export const Condition = Type.Object(
  {
    type: Type.String({
      description: "type of condition in CamelCase, e.g. Ready.",
      minLength: 1,
      maxLength: 316,
      pattern:
        "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
    }),
    status: StringEnum(["True", "False", "Unknown"] as const, {
      description: "status of the condition: True, False or Unknown.",
    }),
    observedGeneration: Type.Optional(
      Type.Integer({
        description:
          "the .metadata.generation the condition was set from; older than the current generation means stale.",
        minimum: 0,
        format: "int64",
      }),
    ),
    lastTransitionTime: Type.String({
      description: "last time the condition changed status.",
      format: "date-time",
    }),
    reason: Type.String({
      description:
        "programmatic CamelCase identifier of the reason for the last transition (see docs/api.md for the values Beskar7 sets).",
      minLength: 1,
      maxLength: 1024,
      pattern: "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
    }),
    message: Type.String({
      description: "human-readable details about the last transition; may be empty.",
      maxLength: 32768,
    }),
  },
  { description: "a metav1.Condition: one aspect of the object's current state." },
);

export const Conditions = List(Condition, {
  description:
    "conditions of this object (metav1.Condition); Ready summarises the others. One entry per type.",
  maxItems: 32,
  "x-kubernetes-list-type": "map",
  "x-kubernetes-list-map-keys": ["type"],
});

/** CAPI MachineAddress. */
export const MachineAddress = Type.Object(
  {
    type: StringEnum(Object.values(MachineAddressType), {
      description: "address type: Hostname, ExternalIP, InternalIP, ExternalDNS or InternalDNS.",
    }),
    address: Type.String({
      description: "the address (an IP or a DNS name, according to type).",
      minLength: 1,
      maxLength: 256,
    }),
  },
  { description: "a machine address as Cluster API defines it (MachineAddress)." },
);

export const MachineAddresses = List(MachineAddress, {
  description: "addresses of the machine, as reported by the BMC or the inspection image.",
  maxItems: 32,
});

/** metav1.LabelSelector. */
export const LabelSelector = Type.Object(
  {
    matchLabels: Type.Optional(
      StringMap("labels the selected object must carry, all of them (key → value)."),
    ),
    matchExpressions: Type.Optional(
      List(
        Type.Object(
          {
            key: Type.String({
              description: "label key the requirement applies to.",
              maxLength: 317,
            }),
            operator: StringEnum(["In", "NotIn", "Exists", "DoesNotExist"] as const, {
              description: "relation of the key to values: In, NotIn, Exists or DoesNotExist.",
            }),
            values: Type.Optional(
              List(Type.String({ description: "a label value.", maxLength: 63 }), {
                description:
                  "values for In and NotIn (must be non-empty); must be empty for Exists and DoesNotExist.",
                maxItems: 64,
              }),
            ),
          },
          {
            description: "one label requirement.",
            ...cel({
              rule: "self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0) : (!has(self.values) || size(self.values) == 0)",
              message:
                "matchExpressions[].values must be non-empty for In/NotIn and empty for Exists/DoesNotExist",
            }),
          },
        ),
        { description: "label requirements, all of which must hold.", maxItems: 32 },
      ),
    ),
  },
  {
    description:
      "a label selector (metav1.LabelSelector); matchLabels and matchExpressions are ANDed, and an empty selector matches everything.",
  },
);

/** The `initialization` block of the v1beta2 CAPI contract. */
export function Initialization(what: string) {
  return Type.Object(
    {
      provisioned: Type.Optional(
        Type.Boolean({
          description: `true when ${what} is fully provisioned (Cluster API contract v1beta2).`,
        }),
      ),
    },
    {
      description: `observations of the initialization of ${what}; read by Cluster API (contract v1beta2).`,
      minProperties: 1,
    },
  );
}

export const ObservedGeneration = Type.Integer({
  description: "the .metadata.generation this status was computed from.",
  minimum: 0,
  format: "int64",
});
