// Turns a TypeBox schema into the plain OpenAPI v3 object a CRD embeds, and checks the rules the
// API server (structural schemas) and CEL (bounded cost) impose, so mistakes fail at generation
// time with a path instead of at `kubectl apply` with a wall of text.
import type { TSchema } from "@sinclair/typebox";

export type JSONSchemaProps = Record<string, unknown>;

/** Deep copy without TypeBox's symbol-keyed metadata (JSON drops symbols). */
export function toOpenAPI(schema: TSchema): JSONSchemaProps {
  return JSON.parse(JSON.stringify(schema)) as JSONSchemaProps;
}

const FORBIDDEN = ["anyOf", "oneOf", "allOf", "not", "const", "patternProperties", "$ref", "$id"];

/**
 * Problems that would make a CRD schema non-structural or CEL-unbounded, each with its path.
 * Every node needs a description (kubectl explain prints them), every string a maxLength
 * unless it has a format or enum, every list a maxItems.
 */
export function schemaProblems(schema: JSONSchemaProps, path = ""): string[] {
  const problems: string[] = [];
  const at = path || "<root>";
  for (const key of FORBIDDEN) {
    if (key in schema) problems.push(`${at}: "${key}" is not allowed in a structural CRD schema`);
  }
  const type = schema.type;
  if (typeof type !== "string") problems.push(`${at}: missing type`);
  if (typeof schema.description !== "string" || schema.description.length === 0) {
    problems.push(`${at}: missing description`);
  }
  if (
    type === "string" &&
    !("maxLength" in schema) &&
    !("enum" in schema) &&
    !("format" in schema)
  ) {
    problems.push(`${at}: string without maxLength (unbounded CEL cost)`);
  }
  if (type === "array") {
    if (!("maxItems" in schema)) problems.push(`${at}: list without maxItems (unbounded CEL cost)`);
    const items = schema.items as JSONSchemaProps | undefined;
    if (!items) problems.push(`${at}: list without items`);
    else problems.push(...itemProblems(items, `${path}[]`));
  }
  if (type === "object") {
    const properties = (schema.properties ?? {}) as Record<string, JSONSchemaProps>;
    for (const [name, child] of Object.entries(properties)) {
      problems.push(...schemaProblems(child, path ? `${path}.${name}` : name));
    }
    const additional = schema.additionalProperties;
    if (additional === false) problems.push(`${at}: additionalProperties: false is not structural`);
    if (typeof additional === "object" && additional !== null) {
      if (Object.keys(properties).length > 0) {
        problems.push(`${at}: properties and additionalProperties are mutually exclusive`);
      }
      if (!("maxProperties" in schema)) problems.push(`${at}: map without maxProperties`);
      problems.push(...itemProblems(additional as JSONSchemaProps, `${path}.*`));
    }
  }
  return problems;
}

/** List items and map values: descriptions optional (kubectl explain shows the parent's). */
function itemProblems(schema: JSONSchemaProps, path: string): string[] {
  const withDescription = { description: "(item)", ...schema };
  return schemaProblems(withDescription, path);
}
