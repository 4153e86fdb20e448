// Admission as plain functions: each kind's rules take an AdmissionInput and return the problems
// found, each naming the field and saying what is accepted. The capability files adapt Pepr's
// requests to this shape, so the rules are tested without Pepr or an API server.
//
// The CRD schemas (OpenAPI + CEL) already reject what needs no context; these rules cover what
// needs logic: parsing URLs properly, who is asking, and the object's status.

import { displayURL } from "./display-url";

export type Operation = "CREATE" | "UPDATE" | "DELETE" | "CONNECT";

export interface AdmissionInput<T> {
  operation: Operation;
  object: T;
  oldObject?: T;
  /** The authenticated user making the request. */
  username?: string;
  dryRun?: boolean;
}

/** Cluster API's topology controller checks templates with dry-run server-side applies that
 *  carry this annotation; the contract says immutability checks must let those through. */
export const TOPOLOGY_DRY_RUN_ANNOTATION = "topology.cluster.x-k8s.io/dry-run";

export function isTopologyDryRun(
  input: AdmissionInput<{ metadata?: { annotations?: Record<string, string> } }>,
): boolean {
  return (
    !!input.dryRun && TOPOLOGY_DRY_RUN_ANNOTATION in (input.object?.metadata?.annotations ?? {})
  );
}

/** A denial names the field; the message says what is wrong and what is accepted. */
export interface Problem {
  field: string;
  message: string;
}

export function problem(field: string, message: string): Problem {
  return { field, message };
}

/** The message the API server shows: every problem, each prefixed with its field. */
export function denialMessage(problems: Problem[]): string {
  return problems.map(p => `${p.field}: ${p.message}`).join("; ");
}

/** Objects being deleted are always approved: removing a finalizer is an UPDATE. */
export function isBeingDeleted(
  input: AdmissionInput<{ metadata?: { deletionTimestamp?: unknown } }>,
): boolean {
  return input.operation === "DELETE" || !!input.object?.metadata?.deletionTimestamp;
}

export interface URLRules {
  schemes: string[];
  /** Reject a path beyond "/" (a BMC address is a base URL). */
  basePathOnly?: boolean;
}

/**
 * Checks that value is an absolute URL with one of the allowed schemes and a host, and carries no
 * credentials (they belong in Secrets, and URLs end up in logs and status).
 */
export function checkURL(field: string, value: string | undefined, rules: URLRules): Problem[] {
  if (value === undefined || value === "") return [];
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return [
      problem(
        field,
        `"${displayURL(value)}" is not an absolute URL; expected e.g. ${rules.schemes[0]}://host:port`,
      ),
    ];
  }
  const scheme = url.protocol.replace(/:$/, "");
  const found: Problem[] = [];
  if (!rules.schemes.includes(scheme)) {
    found.push(
      problem(field, `scheme "${scheme}" is not accepted; use ${rules.schemes.join(" or ")}`),
    );
  }
  if (!url.hostname) found.push(problem(field, "has no host"));
  if (url.username || url.password) {
    found.push(problem(field, "must not embed credentials (user:password@); put them in a Secret"));
  }
  if (rules.basePathOnly && url.pathname !== "/" && url.pathname !== "") {
    found.push(
      problem(
        field,
        `must be the BMC's base URL without a path (got path "${url.pathname}"); Beskar7 adds /redfish/v1 itself`,
      ),
    );
  }
  if (rules.basePathOnly && (url.search || url.hash)) {
    found.push(problem(field, "must not have a query or fragment"));
  }
  return found;
}

/** Fields whose value changed between two objects, by dotted path. */
export function changed(paths: string[], oldObj: unknown, newObj: unknown): string[] {
  return paths.filter(
    path => JSON.stringify(at(oldObj, path)) !== JSON.stringify(at(newObj, path)),
  );
}

function at(obj: unknown, path: string): unknown {
  let value: unknown = obj;
  for (const part of path.split(".")) {
    if (value === null || typeof value !== "object") return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/**
 * Templates are immutable: Cluster API rolls machines by pointing at a new template, and editing
 * one in place would leave existing objects out of step with it. Topology dry-runs pass.
 */
export function templateImmutable(
  input: AdmissionInput<{ metadata?: { annotations?: Record<string, string> }; spec?: unknown }>,
  instead: string,
): Problem[] {
  const old = input.oldObject;
  if (input.operation !== "UPDATE" || !old || isTopologyDryRun(input)) return [];
  if (!changed(["spec.template"], old, input.object).length) return [];
  return [problem("spec.template", `is immutable; ${instead}`)];
}
