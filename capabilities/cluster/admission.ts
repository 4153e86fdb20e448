// Admission rules for Beskar7Cluster and Beskar7ClusterTemplate beyond the CRD's own validation.
import {
  DEFAULT_API_SERVER_PORT,
  type APIEndpoint,
  type Beskar7Cluster,
  type Beskar7ClusterTemplate,
} from "../api";
import {
  changed,
  isBeingDeleted,
  problem,
  templateImmutable,
  type AdmissionInput,
  type Problem,
} from "../lib/admission";

const HOSTNAME =
  /^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function isIPv6(host: string): boolean {
  // Only hex digits, colons and dots (for an embedded IPv4): anything else could make the URL
  // parser read part of the string as userinfo or path and accept it.
  if (!host.includes(":") || !/^[0-9A-Fa-f:.]+$/.test(host)) return false;
  try {
    return new URL(`https://[${host}]/`).hostname.length > 2;
  } catch {
    return false;
  }
}

export function checkEndpoint(endpoint: Partial<APIEndpoint> | undefined, path: string): Problem[] {
  if (!endpoint) return [];
  const found: Problem[] = [];
  const { host, port } = endpoint;
  if (
    host !== undefined &&
    host !== "" &&
    !HOSTNAME.test(host) &&
    !IPV4.test(host) &&
    !isIPv6(host)
  ) {
    found.push(problem(`${path}.host`, `"${host}" is not a DNS name, IPv4 or IPv6 address`));
  }
  if ((host === undefined || host === "") && port !== undefined) {
    found.push(problem(`${path}.host`, "is required when a port is given"));
  }
  if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) {
    found.push(problem(`${path}.port`, `must be between 1 and 65535 (got ${port})`));
  }
  return found;
}

export function validateBeskar7Cluster(input: AdmissionInput<Beskar7Cluster>): Problem[] {
  if (isBeingDeleted(input)) return [];
  const found = checkEndpoint(input.object.spec?.controlPlaneEndpoint, "spec.controlPlaneEndpoint");
  const old = input.oldObject;
  if (input.operation === "UPDATE" && old?.spec?.controlPlaneEndpoint?.host) {
    for (const field of changed(["spec.controlPlaneEndpoint"], old, input.object)) {
      found.push(
        problem(field, "is immutable once set: nodes and kubeconfigs already point at it"),
      );
    }
  }
  return found;
}

export function validateBeskar7ClusterTemplate(
  input: AdmissionInput<Beskar7ClusterTemplate>,
): Problem[] {
  if (isBeingDeleted(input)) return [];
  const found = checkEndpoint(
    input.object.spec?.template?.spec?.controlPlaneEndpoint,
    "spec.template.spec.controlPlaneEndpoint",
  );
  found.push(
    ...templateImmutable(
      input,
      "create a new Beskar7ClusterTemplate and point the ClusterClass at it",
    ),
  );
  return found;
}

/** The port defaults to 6443 when only a host is given. */
export function endpointDefaults(endpoint: Partial<APIEndpoint> | undefined): { port?: number } {
  if (endpoint?.host && endpoint.port === undefined) return { port: DEFAULT_API_SERVER_PORT };
  return {};
}
