// Admission rules for PhysicalHost that need logic beyond the CRD's OpenAPI and CEL rules.
import { HostStates, type HostStateName, type PhysicalHost } from "../api";
import {
  changed,
  checkURL,
  isBeingDeleted,
  problem,
  type AdmissionInput,
  type Problem,
} from "../lib/admission";
import { canonicalBmcAddress, refusalMessage, refusedBmcAddress } from "../../redfish";
import { ALLOW_ADDRESSES_SETTING, type AccessPolicy } from "./credentials";

/** Connection fields that must not change while a machine has the host: the claim is on a
 *  specific server, and pointing the object at another BMC would swap the server underneath. */
const CONNECTION_FIELDS_FIXED_WHILE_CLAIMED = [
  "spec.redfishConnection.address",
  "spec.redfishConnection.systemId",
];

/** The connection fields that point the host at another server. Addresses compare canonically:
 *  https://BMC1 and https://bmc1:443 are the same BMC, so respelling one is not a move. */
function movedConnection(old: PhysicalHost, host: PhysicalHost): string[] {
  const address = (h: PhysicalHost) =>
    canonicalBmcAddress(h.spec?.redfishConnection?.address ?? "");
  return changed(CONNECTION_FIELDS_FIXED_WHILE_CLAIMED, old, host).filter(
    field => field !== "spec.redfishConnection.address" || address(old) !== address(host),
  );
}

/** Spec fields only the operator writes (a Beskar7Machine's claim and its request). */
const CONSUMER_FIELDS = ["consumerRef", "provisioning"];

/**
 * A host being deleted: the deletion is approved (and so are finalizer, label and annotation
 * changes: the runtime removes its finalizer, a person may add force-delete), but its spec does
 * not change any more, except the claim fields by the operator (the consumer rule below). Without
 * this anyone could strip a claim or point the host at another BMC between the deletion request
 * and the end of the finalizer's cleanup, which then acts on the new server.
 */
function specFrozenWhileDeleting(old: PhysicalHost, host: PhysicalHost): Problem[] {
  const rest = (h: PhysicalHost) =>
    Object.fromEntries(
      Object.entries(h.spec ?? {}).filter(([key]) => !CONSUMER_FIELDS.includes(key)),
    );
  const before = rest(old);
  const after = rest(host);
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  return changed(
    keys.map(key => `spec.${key}`),
    { spec: before },
    { spec: after },
  ).map(field => problem(field, "cannot change while the host is being deleted"));
}

/** The BMC address, on creation or when it points somewhere new, against the address policy. */
function addressAllowed(
  input: AdmissionInput<PhysicalHost>,
  policy: AccessPolicy | undefined,
): Problem[] {
  const address = input.object.spec?.redfishConnection?.address;
  if (!policy || !address) return [];
  const old = input.oldObject?.spec?.redfishConnection?.address;
  if (old !== undefined && canonicalBmcAddress(old) === canonicalBmcAddress(address)) return [];
  const refusal = refusedBmcAddress(address, policy.addressPolicy);
  return refusal
    ? [problem("spec.redfishConnection.address", refusalMessage(refusal, ALLOW_ADDRESSES_SETTING))]
    : [];
}

/** The claim fields change only by the operator's hand. */
function consumerWrittenByOperator(
  input: AdmissionInput<PhysicalHost>,
  operatorUsernames: readonly string[],
): Problem[] {
  const host = input.object;
  const old = input.oldObject;
  const consumerChanged =
    JSON.stringify(old?.spec?.consumerRef ?? null) !==
      JSON.stringify(host.spec?.consumerRef ?? null) ||
    JSON.stringify(old?.spec?.provisioning ?? null) !==
      JSON.stringify(host.spec?.provisioning ?? null);
  if (!consumerChanged || operatorUsernames.includes(input.username ?? "")) return [];
  return [
    problem(
      host.spec?.consumerRef || old?.spec?.consumerRef ? "spec.consumerRef" : "spec.provisioning",
      "is written only by the Beskar7 operator when a Beskar7Machine claims or releases the host; create or delete a Beskar7Machine instead",
    ),
  ];
}

export function validatePhysicalHost(
  input: AdmissionInput<PhysicalHost>,
  operatorUsernames: readonly string[],
  access?: AccessPolicy,
): Problem[] {
  if (input.operation === "DELETE") return [];
  // Being deleted: only the deletion's own rules, so a host valid under older rules can still
  // have its finalizer removed.
  if (isBeingDeleted(input)) {
    return input.oldObject
      ? [
          ...specFrozenWhileDeleting(input.oldObject, input.object),
          ...consumerWrittenByOperator(input, operatorUsernames),
        ]
      : [];
  }
  const found: Problem[] = [];
  const host = input.object;
  const connection = host.spec?.redfishConnection;

  if (!connection) {
    found.push(problem("spec.redfishConnection", "is required: the BMC's address and credentials"));
  } else {
    const schemes = connection.allowInsecureHTTP ? ["https", "http"] : ["https"];
    found.push(
      ...checkURL("spec.redfishConnection.address", connection.address, {
        schemes,
        basePathOnly: true,
      }),
      ...addressAllowed(input, access),
    );
    if (!connection.credentialsSecretRef?.trim()) {
      found.push(
        problem(
          "spec.redfishConnection.credentialsSecretRef",
          "must name a Secret in the host's namespace with keys username and password",
        ),
      );
    }
    if (connection.insecureSkipVerify && connection.caBundleSecretRef) {
      found.push(
        problem(
          "spec.redfishConnection.insecureSkipVerify",
          "cannot be true together with caBundleSecretRef: either verify against the CA bundle or skip verification",
        ),
      );
    }
  }

  found.push(...consumerWrittenByOperator(input, operatorUsernames));
  const old = input.oldObject;

  if (input.operation === "UPDATE" && old) {
    // Busy states (the state table) work for a consumer: the connection is fixed in them too.
    const state = old.status?.state as HostStateName | undefined;
    const claimed = !!old.spec?.consumerRef || (!!state && !!HostStates[state]?.busy);
    if (claimed) {
      for (const field of movedConnection(old, host)) {
        found.push(
          problem(
            field,
            `cannot change while the host is claimed (state ${old.status?.state ?? "Claimed"}); release it from its machine first`,
          ),
        );
      }
    }
  }
  return found;
}
