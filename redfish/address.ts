// One spelling per BMC. Everything that compares or keys BMC addresses (the client pool, the
// operator's per-BMC work queue groups, admission's "did the address change") canonicalises them
// here, so https://BMC1, bmc1 and https://bmc1:443/ are one BMC and never two sessions or two
// concurrency budgets.

/**
 * `scheme://host[:port]`: scheme lower case (https when none is given), host lower case (IPv6 in
 * brackets, compressed, an IPv6 zone id kept as `%25zone` with its case), the scheme's default
 * port dropped (443 for https, 80 for http), and no credentials, path, query or fragment (the
 * driver talks to /redfish/v1 on the host whatever path the address carries). Never throws: an
 * address that is not a URL comes back trimmed, with a scheme, without credentials and lower-cased,
 * so it is at least equal to itself in other spellings of case.
 */
export function canonicalBmcAddress(address: string): string {
  const trimmed = address.trim();
  // A bare IPv6 literal (fd00::1, fe80::1%eth0) has no brackets to tell its colons from a port's.
  const bare = /^[0-9a-f]*:[0-9a-f]*:[0-9a-f:.]*(%.+)?$/i.test(trimmed) ? `[${trimmed}]` : trimmed;
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(bare) ? bare : `https://${bare}`;
  // WHATWG URLs reject IPv6 zone ids ([fe80::1%25eth0]); parse without and put it back.
  let zone = "";
  const unzoned = withScheme.replace(/(\[[0-9a-f:.]+)%(?:25)?([^\]]+)\]/i, (_, ip, id) => {
    zone = `%25${decodeURIComponentSafe(id)}`;
    return `${ip}]`;
  });
  let url: URL;
  try {
    url = new URL(unzoned);
  } catch {
    return withScheme.replace(/^([^/]*\/\/)[^@/]*@/, "$1").toLowerCase();
  }
  const host = zone ? `${url.hostname.slice(0, -1)}${zone}]` : url.hostname;
  return `${url.protocol}//${host}${url.port ? `:${url.port}` : ""}`;
}

/** A BMC address and the system on it: two hosts with equal identities are the same server. */
export interface BmcIdentity {
  /** canonicalBmcAddress of the address. */
  address: string;
  /** The ComputerSystem Id as given; undefined means "the only one". */
  systemId?: string;
  /** `address` and `systemId` in one string, for maps and comparisons. */
  key: string;
}

export function bmcIdentity(address: string, systemId?: string): BmcIdentity {
  const canonical = canonicalBmcAddress(address);
  const id = systemId?.trim() || undefined;
  return {
    address: canonical,
    systemId: id,
    key: id === undefined ? canonical : `${canonical}#${encodeURIComponent(id)}`,
  };
}

function decodeURIComponentSafe(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
