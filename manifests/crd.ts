// One construct per CRD, built from the kind's schema in capabilities/api/sources. v1beta1 is
// the storage version; v1alpha1 is served with the identical schema (conversion None) so the
// original project's manifests keep applying, with a deprecation warning.
import { ApiObject } from "cdk8s";
import { Construct } from "constructs";

import { API_GROUP, API_VERSION, LEGACY_API_VERSION, Plurals } from "../capabilities/api/constants";
import type { KindSchema } from "../capabilities/api/sources";
import { schemaProblems, toOpenAPI, type JSONSchemaProps } from "./schema";

export interface PrinterColumn {
  name: string;
  type: "string" | "integer" | "number" | "boolean" | "date";
  jsonPath: string;
  description: string;
  /** 1: shown only with -o wide. */
  priority?: 0 | 1;
}

export interface CrdProps {
  schema: KindSchema;
  shortNames: string[];
  printerColumns: PrinterColumn[];
  /** Labels of this CRD beyond CRD_LABELS. */
  labels?: Record<string, string>;
}

/** Labels every Beskar7 CRD carries: clusterctl provider and the CAPI contract → version map. */
export const CRD_LABELS = {
  "cluster.x-k8s.io/provider": "infrastructure-beskar7",
  "cluster.x-k8s.io/v1beta1": API_VERSION,
  "cluster.x-k8s.io/v1beta2": API_VERSION,
} as const;

const AGE: PrinterColumn = {
  name: "Age",
  type: "date",
  jsonPath: ".metadata.creationTimestamp",
  description: "time since creation",
};

/** schemaProblems minus the standard envelope (apiVersion/kind/metadata), which the API server bounds. */
export function crdSchemaProblems(root: JSONSchemaProps): string[] {
  return schemaProblems(root).filter(p => !/^(apiVersion|kind|metadata):/.test(p));
}

export function openAPISchemaFor(schema: KindSchema): JSONSchemaProps {
  const properties: Record<string, JSONSchemaProps> = {
    apiVersion: {
      type: "string",
      description:
        "APIVersion defines the versioned schema of this representation of an object. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources",
    },
    kind: {
      type: "string",
      description:
        "Kind is a string value representing the REST resource this object represents. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
    },
    // The API server allows nothing but the type here (it owns ObjectMeta validation).
    metadata: { type: "object" },
    spec: toOpenAPI(schema.spec),
  };
  if (schema.status) properties.status = toOpenAPI(schema.status);
  const root: JSONSchemaProps = {
    type: "object",
    description: schema.description,
    properties,
    // An infrastructure cluster may start empty (endpoint and domains filled in later).
    ...(schema.kind === "Beskar7Cluster" ? {} : { required: ["spec"] }),
  };
  const problems = crdSchemaProblems(root);
  if (problems.length > 0) {
    throw new Error(`schema of ${schema.kind} is not a valid CRD schema:\n${problems.join("\n")}`);
  }
  return root;
}

export class Crd extends Construct {
  readonly apiObject: ApiObject;

  constructor(scope: Construct, id: string, props: CrdProps) {
    super(scope, id);
    const { kind } = props.schema;
    const plural = Plurals[kind];
    const openAPIV3Schema = openAPISchemaFor(props.schema);
    const version = (name: string, storage: boolean) => ({
      name,
      served: true,
      storage,
      ...(storage
        ? {}
        : {
            deprecated: true,
            deprecationWarning: `${API_GROUP}/${name} ${kind} is deprecated; use ${API_GROUP}/${API_VERSION}`,
          }),
      schema: { openAPIV3Schema },
      ...(props.schema.status ? { subresources: { status: {} } } : {}),
      additionalPrinterColumns: [...props.printerColumns, AGE],
    });
    this.apiObject = new ApiObject(this, "crd", {
      apiVersion: "apiextensions.k8s.io/v1",
      kind: "CustomResourceDefinition",
      metadata: { name: `${plural}.${API_GROUP}`, labels: { ...CRD_LABELS, ...props.labels } },
      spec: {
        group: API_GROUP,
        names: {
          kind,
          listKind: `${kind}List`,
          plural,
          singular: kind.toLowerCase(),
          shortNames: props.shortNames,
          categories: ["cluster-api"],
        },
        scope: "Namespaced",
        // Same schema in both versions, so the API server only rewrites apiVersion.
        conversion: { strategy: "None" },
        versions: [version(API_VERSION, true), version(LEGACY_API_VERSION, false)],
      },
    });
  }
}
