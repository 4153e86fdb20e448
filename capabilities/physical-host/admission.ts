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
import { canonicalBmcAddress } from "../../redfish";

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

export function validatePhysicalHost(
  input: AdmissionInput<PhysicalHost>,
  operatorUsernames: readonly string[],
): Problem[] {
  if (isBeingDeleted(input)) return [];
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

  const old = input.oldObject;
  const consumerChanged =
    JSON.stringify(old?.spec?.consumerRef ?? null) !==
      JSON.stringify(host.spec?.consumerRef ?? null) ||
    JSON.stringify(old?.spec?.provisioning ?? null) !==
      JSON.stringify(host.spec?.provisioning ?? null);
  if (consumerChanged && !operatorUsernames.includes(input.username ?? "")) {
    found.push(
      problem(
        host.spec?.consumerRef || old?.spec?.consumerRef ? "spec.consumerRef" : "spec.provisioning",
        "is written only by the Beskar7 operator when a Beskar7Machine claims or releases the host; create or delete a Beskar7Machine instead",
      ),
    );
  }

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
