// Which BMC addresses the operator may send credentials to. A PhysicalHost's creator chooses the
// address, and the operator sends the BMC password there: without a policy anyone who may create
// hosts can point one at the cloud metadata service (169.254.169.254), the cluster's API server
// (kubernetes.default.svc), a Service, or the operator's own pod (loopback) and have credentials
// they cannot read delivered to it. Addresses of the classes below are refused unless the operator
// is configured to allow them. One policy, used three ways: admission checks the spec, the
// controller checks before any request, and the driver checks every address a name resolves to
// when it connects (lookupGuard), so a DNS name cannot lead around the other two.
import { BlockList, isIP } from "node:net";
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from "node:dns";

/** The kinds of address refused by default. */
export type AddressClass = "loopback" | "link-local" | "unspecified" | "service";

export const ADDRESS_CLASSES: readonly AddressClass[] = [
  "loopback",
  "link-local",
  "unspecified",
  "service",
];

export interface BmcAddressPolicy {
  /** Classes allowed despite being refused by default. */
  allowedClasses: ReadonlySet<AddressClass>;
  /** CIDRs allowed whatever their class (e.g. a BMC network that overlaps a refused range). */
  allowedCidrs: BlockList;
  /** The cluster's Service network(s): refused as class "service". */
  serviceCidrs: BlockList;
  /** The policy as configured, for messages ("allowed: loopback"). */
  description: string;
}

/** A refused address: its class and a sentence saying why, naming the address. */
export interface AddressRefusal {
  addressClass: AddressClass;
  /** The address or name refused. */
  address: string;
  /** "127.0.0.1 is a loopback address". */
  reason: string;
}

const FIXED_RANGES: Array<[AddressClass, string, number, "ipv4" | "ipv6"]> = [
  ["loopback", "127.0.0.0", 8, "ipv4"],
  ["loopback", "::1", 128, "ipv6"],
  ["link-local", "169.254.0.0", 16, "ipv4"],
  ["link-local", "fe80::", 10, "ipv6"],
  ["unspecified", "0.0.0.0", 8, "ipv4"],
  ["unspecified", "::", 128, "ipv6"],
];

const RANGES = new Map<AddressClass, BlockList>();
for (const [cls, net, prefix, type] of FIXED_RANGES) {
  let list = RANGES.get(cls);
  if (!list) RANGES.set(cls, (list = new BlockList()));
  list.addSubnet(net, prefix, type);
}

/**
 * The policy from its two settings: `allow` lists classes and/or CIDRs ("loopback,link-local" or
 * "10.96.0.0/12,loopback"), `serviceCidrs` the cluster's Service network(s). Throws naming the
 * entry that is neither; the caller says which setting it came from.
 */
export function bmcAddressPolicy(
  allow: readonly string[] = [],
  serviceCidrs: readonly string[] = [],
): BmcAddressPolicy {
  const allowedClasses = new Set<AddressClass>();
  const allowedCidrs = new BlockList();
  for (const entry of allow) {
    if ((ADDRESS_CLASSES as readonly string[]).includes(entry)) {
      allowedClasses.add(entry as AddressClass);
    } else {
      addCidr(allowedCidrs, entry, `one of ${ADDRESS_CLASSES.join(", ")} or a CIDR`);
    }
  }
  const services = new BlockList();
  for (const cidr of serviceCidrs) addCidr(services, cidr, "a CIDR");
  return {
    allowedClasses,
    allowedCidrs,
    serviceCidrs: services,
    description: allow.length ? allow.join(",") : "none",
  };
}

function addCidr(list: BlockList, entry: string, expected: string): void {
  const match = /^([^/]+)\/(\d{1,3})$/.exec(entry.trim());
  const type = match ? isIP(match[1]!) : 0;
  const prefix = match ? Number(match[2]) : -1;
  if (!match || !type || prefix > (type === 4 ? 32 : 128)) {
    throw new Error(`"${entry}" is not ${expected}`);
  }
  list.addSubnet(match[1]!, prefix, type === 4 ? "ipv4" : "ipv6");
}

/** Names that reach the cluster's own Services, whatever the Service network is. */
function isServiceName(host: string): boolean {
  return (
    host === "kubernetes" ||
    host.startsWith("kubernetes.default") ||
    host.endsWith(".svc") ||
    /\.svc\.cluster\.local$/.test(host)
  );
}

/** ::ffff:127.0.0.1 is 127.0.0.1: mapped addresses are judged as the IPv4 address they carry. */
function unmapped(ip: string): { ip: string; type: "ipv4" | "ipv6" } {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return { ip: mapped[1]!, type: "ipv4" };
  return { ip, type: isIP(ip) === 6 ? "ipv6" : "ipv4" };
}

/** Why an IP address is refused, or undefined when the policy lets it through. */
export function refusedIp(ip: string, policy: BmcAddressPolicy): AddressRefusal | undefined {
  const bare = ip.replace(/^\[|\]$/g, "").replace(/%.*$/, "");
  if (!isIP(bare)) return undefined;
  const { ip: address, type } = unmapped(bare);
  if (policy.allowedCidrs.check(address, type)) return undefined;
  for (const cls of ADDRESS_CLASSES) {
    const inClass =
      cls === "service"
        ? policy.serviceCidrs.check(address, type)
        : !!RANGES.get(cls)?.check(address, type);
    if (inClass && !policy.allowedClasses.has(cls)) {
      return { addressClass: cls, address, reason: `${address} is ${describeClass(cls)}` };
    }
  }
  return undefined;
}

function describeClass(cls: AddressClass): string {
  return cls === "service" ? "in the cluster's Service network" : `a ${cls} address`;
}

/** The host part of a BMC address (any spelling canonicalBmcAddress accepts), lower case. */
export function bmcHost(address: string): string {
  const trimmed = address.trim();
  const bare = /^[0-9a-f]*:[0-9a-f]*:[0-9a-f:.]*(%.+)?$/i.test(trimmed) ? `[${trimmed}]` : trimmed;
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(bare) ? bare : `https://${bare}`;
  try {
    return new URL(withScheme.replace(/%(25)?[^\]]*\]/, "]")).hostname.toLowerCase();
  } catch {
    return withScheme
      .replace(/^[^/]*\/\/([^@/]*@)?/, "")
      .replace(/[/:?#].*$/, "")
      .toLowerCase();
  }
}

/**
 * Why a BMC address is refused, judged on what it says (an IP literal, localhost, a cluster
 * Service name), or undefined. Names that merely resolve to a refused address are caught when
 * the driver connects (lookupGuard).
 */
export function refusedBmcAddress(
  address: string,
  policy: BmcAddressPolicy,
): AddressRefusal | undefined {
  const host = bmcHost(address).replace(/\.$/, "");
  if (!host) return undefined;
  if (isIP(host.replace(/^\[|\]$/g, ""))) return refusedIp(host, policy);
  if (host === "localhost" || host.endsWith(".localhost")) {
    return policy.allowedClasses.has("loopback")
      ? undefined
      : { addressClass: "loopback", address: host, reason: `${host} is a loopback name` };
  }
  if (isServiceName(host)) {
    return policy.allowedClasses.has("service")
      ? undefined
      : { addressClass: "service", address: host, reason: `${host} names a cluster Service` };
  }
  return undefined;
}

/** A refusal as a sentence that says what would allow it (the setting is the operator's). */
export function refusalMessage(refusal: AddressRefusal, setting: string): string {
  return `${refusal.reason}; BMC addresses of this kind are refused unless the operator allows them (${setting}=${refusal.addressClass}, or a CIDR containing the address)`;
}

/** The error a refused resolved address fails a connection with. */
export class AddressRefusedError extends Error {
  readonly code = "EBMCADDRESSREFUSED";
  constructor(
    readonly host: string,
    readonly refusal: AddressRefusal,
  ) {
    super(`${host} resolves to ${refusal.address}, ${describeClass(refusal.addressClass)}`);
    this.name = "AddressRefusedError";
  }
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/**
 * A `lookup` for http(s) agents: resolves as dns.lookup does, then fails the connection with an
 * AddressRefusedError when any address the name resolves to is refused (one refused answer is
 * enough: a name that points at the metadata service part of the time is not a BMC).
 */
export function lookupGuard(policy: BmcAddressPolicy, resolve: typeof dnsLookup = dnsLookup) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    resolve(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, []);
      for (const { address } of addresses) {
        const refusal = refusedIp(address, policy);
        if (refusal) return callback(new AddressRefusedError(hostname, refusal), []);
      }
      if (options.all) return callback(null, addresses);
      const first = addresses[0];
      if (!first) return callback(Object.assign(new Error(`${hostname}: no address`)), []);
      callback(null, first.address, first.family);
    });
  };
}
