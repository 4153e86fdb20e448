// Adapts Pepr's admission requests to the plain AdmissionInput the rules take.
import type { PeprValidateRequest } from "pepr";
import type { KubernetesObject } from "kubernetes-fluent-client";

import { denialMessage, type AdmissionInput, type Operation, type Problem } from "./admission";

export function admissionInput<T extends KubernetesObject>(
  req: PeprValidateRequest<T>,
): AdmissionInput<T> {
  return {
    operation: req.Request.operation as Operation,
    object: req.Raw,
    oldObject: req.OldResource as T | undefined,
    username: req.Request.userInfo?.username,
    dryRun: req.Request.dryRun,
  };
}

/** Approves when the rules find nothing, else denies with every problem, each naming its field. */
export function admit<T extends KubernetesObject>(
  req: PeprValidateRequest<T>,
  rules: (input: AdmissionInput<T>) => Problem[],
) {
  const problems = rules(admissionInput(req));
  return problems.length ? req.Deny(denialMessage(problems), 422) : req.Approve();
}
