// Redfish error bodies in the shapes real BMCs send. Shapes follow lab/captures/redfish-samples:
// DMTF/generic (openstack-sushy/error.json), Dell iDRAC (openstack-sushy-oem-idrac/error_*.json:
// MessageArgs@odata.count etc.), AMI ActionParameterMissing (openstack-sushy/
// transfer_proto_required_error.json) and HPE iLO's terse `iLO.0.10.ExtendedInfo` wrapper whose
// messages carry only MessageId/MessageArgs (as quoted in ironcore-dev/metal-operator#997).
import type { Json, JsonObject } from "./mockup-store";
import type { VendorProfile } from "./profile";

export interface Message {
  /** Base-registry key (e.g. "PropertyUnknown") or a full id (e.g. "iLO.2.37.UnableTo…"). */
  id: string;
  args?: string[];
  message: string;
  resolution?: string;
  severity?: "OK" | "Warning" | "Critical";
  related?: string[];
}

function messageId(profile: VendorProfile, id: string): string {
  return id.includes(".") ? id : `${profile.baseRegistry}.${id}`;
}

/** Builds the `{"error": …}` body for one or more messages in the vendor's shape. */
export function errorBody(profile: VendorProfile, messages: Message[]): JsonObject {
  const first = messages[0];
  if (profile.vendor === "hpe") {
    return {
      error: {
        code: "iLO.0.10.ExtendedInfo",
        message: "See @Message.ExtendedInfo for more information.",
        "@Message.ExtendedInfo": messages.map(m => {
          const entry: JsonObject = { MessageId: hpeMessageId(profile, m.id) };
          if (m.args && m.args.length > 0) entry.MessageArgs = m.args;
          return entry;
        }),
      },
    };
  }
  const extended = messages.map(m => {
    const entry: JsonObject = {
      "@odata.type": "#Message.v1_1_1.Message",
      MessageId: messageId(profile, m.id),
      Message: m.message,
      MessageArgs: m.args ?? [],
      RelatedProperties: m.related ?? [],
      Severity: m.severity ?? "Warning",
      Resolution: m.resolution ?? "Correct the request and resubmit it.",
    };
    if (profile.vendor === "dell") {
      delete entry["@odata.type"];
      entry["MessageArgs@odata.count"] = (m.args ?? []).length;
      entry["RelatedProperties@odata.count"] = (m.related ?? []).length;
    }
    return entry;
  });
  const general = `${profile.baseRegistry}.GeneralError`;
  // AMI (and the DMTF spec's single-message form) put the message's own id in `code`; iDRAC does
  // so only for its own IDRAC.* messages and says GeneralError for Base ones.
  const single =
    messages.length === 1 && first && (profile.vendor !== "dell" || first.id.startsWith("IDRAC"))
      ? first
      : undefined;
  return {
    error: {
      code: single ? messageId(profile, single.id) : general,
      message: single
        ? single.message
        : "A general error has occurred. See ExtendedInfo for more information.",
      "@Message.ExtendedInfo": extended as Json[],
    },
  };
}

function hpeMessageId(profile: VendorProfile, id: string): string {
  if (id.includes(".")) return id;
  // iLO reports its own registry for state errors and the Base registry for schema errors.
  const iloOwn = new Set(["UnableToModifyDuringSystemPOST", "InvalidOperationForSystemState"]);
  return iloOwn.has(id) ? `iLO.2.15.${id}` : `${profile.baseRegistry}.${id}`;
}

/** HPE answers successful actions and PATCHes with 200 and a Success message. */
export function hpeSuccessBody(profile: VendorProfile): JsonObject {
  return {
    error: {
      code: "iLO.0.10.ExtendedInfo",
      message: "See @Message.ExtendedInfo for more information.",
      "@Message.ExtendedInfo": [{ MessageId: `${profile.baseRegistry}.Success` }],
    },
  };
}

export const messages = {
  resourceNotFound: (uri: string): Message => ({
    id: "ResourceMissingAtURI",
    args: [uri],
    message: `The resource at the URI ${uri} was not found.`,
    resolution: "Place a valid resource at the URI or correct the URI and resubmit the request.",
    severity: "Critical",
  }),
  methodNotAllowed: (method: string, uri: string): Message => ({
    id: "OperationNotAllowed",
    args: [method, uri],
    message: `The ${method} operation is not allowed on ${uri}.`,
    severity: "Critical",
  }),
  noValidSession: (): Message => ({
    id: "NoValidSession",
    message: "There is no valid session established with the implementation.",
    resolution: "Establish a session before attempting any operations.",
    severity: "Critical",
  }),
  insufficientPrivilege: (): Message => ({
    id: "InsufficientPrivilege",
    message:
      "There are insufficient privileges for the account or credentials associated with the current session to perform the requested operation.",
    severity: "Critical",
  }),
  malformedJson: (): Message => ({
    id: "MalformedJSON",
    message:
      "The request body submitted was malformed JSON and could not be parsed by the receiving service.",
    severity: "Critical",
  }),
  unsupportedMediaType: (): Message => ({
    id: "UnsupportedMediaType",
    message: "The request specified a Content-Type header that is not supported.",
    severity: "Critical",
  }),
  propertyUnknown: (name: string): Message => ({
    id: "PropertyUnknown",
    args: [name],
    message: `The property ${name} is not in the list of valid properties for the resource.`,
    related: [`#/${name}`],
  }),
  propertyNotWritable: (name: string): Message => ({
    id: "PropertyNotWritable",
    args: [name],
    message: `The property ${name} is a read only property and cannot be assigned a value.`,
    related: [`#/${name}`],
  }),
  propertyValueNotInList: (value: string, name: string): Message => ({
    id: "PropertyValueNotInList",
    args: [value, name],
    message: `The value ${value} for the property ${name} is not in the list of acceptable values.`,
    related: [`#/${name}`],
  }),
  propertyValueTypeError: (value: string, name: string): Message => ({
    id: "PropertyValueTypeError",
    args: [value, name],
    message: `The value ${value} for the property ${name} is of a different type than the property can accept.`,
    related: [`#/${name}`],
  }),
  propertyMissing: (name: string): Message => ({
    id: "PropertyMissing",
    args: [name],
    message: `The property ${name} is a required property and must be included in the request.`,
    related: [`#/${name}`],
  }),
  actionParameterMissing: (action: string, name: string): Message => ({
    id: "ActionParameterMissing",
    args: [action, name],
    message: `The action ${action} requires the parameter ${name} to be present in the request body.`,
    resolution:
      "Supply the action with the required parameter in the request body when the request is resubmitted.",
    severity: "Critical",
    related: [`#/${name}`],
  }),
  actionParameterUnknown: (action: string, name: string): Message => ({
    id: "ActionParameterUnknown",
    args: [action, name],
    message: `The action ${action} was submitted with the invalid parameter ${name}.`,
    related: [`#/${name}`],
  }),
  actionParameterNotSupported: (value: string, name: string, action: string): Message => ({
    id: "ActionParameterValueNotInList",
    args: [value, name, action],
    message: `The value ${value} for the parameter ${name} in the action ${action} is not in the list of acceptable values.`,
    related: [`#/${name}`],
  }),
  actionNotSupported: (action: string): Message => ({
    id: "ActionNotSupported",
    args: [action],
    message: `The action ${action} is not supported by the resource.`,
  }),
  resourceInUse: (): Message => ({
    id: "ResourceInUse",
    message:
      "The change to the requested resource failed because the resource is in use or in transition.",
    resolution: "Remove the condition and resubmit the request if the operation failed.",
  }),
  preconditionRequired: (): Message => ({
    id: "PreconditionRequired",
    message: "A precondition header or annotation is required to change the resource.",
    resolution:
      "Try the request again with the If-Match header containing the current ETag of the resource.",
    severity: "Critical",
  }),
  preconditionFailed: (): Message => ({
    id: "PreconditionFailed",
    message: "The ETag supplied did not match the ETag required to change this resource.",
    resolution: "Try the operation again using the appropriate ETag.",
    severity: "Critical",
  }),
  queryNotSupported: (): Message => ({
    id: "QueryNotSupported",
    message: "Querying is not supported by the implementation.",
    resolution: "Remove the query parameters and resubmit the request if the operation failed.",
  }),
  queryParameterValueFormatError: (value: string, parameter: string): Message => ({
    id: "QueryParameterValueFormatError",
    args: [value, parameter],
    message: `The value ${value} for the parameter ${parameter} is of a different format than the parameter can accept.`,
    resolution:
      "Correct the value for the query parameter in the request and resubmit the request if the operation failed.",
  }),
  queryParameterOutOfRange: (value: string, parameter: string, range: string): Message => ({
    id: "QueryParameterOutOfRange",
    args: [value, parameter, range],
    message: `The value ${value} for the query parameter ${parameter} is out of range ${range}.`,
    resolution:
      "Reduce the value for the query parameter to a value that is within range, such as a start or count value that is within bounds of the number of resources in a collection or a page that is within the range of valid pages.",
  }),
  sessionLimitExceeded: (): Message => ({
    id: "SessionLimitExceeded",
    message:
      "The session establishment failed due to the number of simultaneous sessions exceeding the limit of the implementation.",
    severity: "Critical",
  }),
  serviceTemporarilyUnavailable: (seconds: number): Message => ({
    id: "ServiceTemporarilyUnavailable",
    args: [String(seconds)],
    message: `The service is temporarily unavailable. Retry in ${seconds} seconds.`,
    severity: "Critical",
  }),
  duringPost: (property: string): Message => ({
    id: "UnableToModifyDuringSystemPOST",
    args: [property],
    message: `The value for the property ${property} cannot be changed while the system is in POST.`,
  }),
  dellNotReady: (): Message => ({
    id: "IDRAC.2.8.SYS518",
    message:
      "iDRAC is not ready. The configuration values cannot be accessed. Please retry after a few minutes.",
    resolution: "Retry the operation after a few minutes. If the issue persists, reset the iDRAC.",
    severity: "Critical",
  }),
};
