// The boot service's configuration, from the environment (the Deployment sets it; `main.ts
// --help` lists it). Everything is checked at start, each bad value refused with its name, so a
// misconfigured service never starts half-working.
import { isIP } from "node:net";

export interface BootServiceConfig {
  /** BESKAR7_BOOT_URL: the base URL BMCs and booting hosts reach the service at. */
  url: string;
  /** BESKAR7_BOOT_LISTEN: where the boot endpoints listen. */
  listen: { host: string; port: number };
  /** BESKAR7_BOOT_METRICS_LISTEN: /metrics, /healthz, /readyz. */
  metricsListen: { host: string; port: number };
  /** BESKAR7_BOOT_PLAIN_HTTP=true: serve plain HTTP (isolated provisioning networks only). */
  plainHttp: boolean;
  /** BESKAR7_NAMESPACE: where the service's Secret and CA ConfigMap live. */
  namespace: string;
  /** BESKAR7_BOOT_SANS: further DNS names / IPs for the serving certificate. */
  extraSANs: string[];
  /** BESKAR7_BOOT_TOKEN_TTL: how long a session's tokens are valid after issue. */
  tokenTTLms: number;
  /** BESKAR7_BOOT_SHUTDOWN_GRACE: how long SIGTERM waits for transfers in progress. */
  shutdownGraceMs: number;
}

export const CONFIG_HELP = `Beskar7 boot service. Configuration (environment):
  BESKAR7_BOOT_URL              base URL BMCs and hosts reach the service at (required), e.g. https://10.0.0.5:30843
  BESKAR7_BOOT_LISTEN           address:port of the boot endpoints (default 0.0.0.0:8443)
  BESKAR7_BOOT_METRICS_LISTEN   address:port of /metrics, /healthz, /readyz (default 0.0.0.0:9090)
  BESKAR7_BOOT_PLAIN_HTTP       "true" serves plain HTTP (only on an isolated provisioning network)
  BESKAR7_BOOT_SANS             comma-separated extra DNS names/IPs for the serving certificate
  BESKAR7_BOOT_TOKEN_TTL        token lifetime after a session is issued (default 24h; e.g. 90m, 3600s)
  BESKAR7_BOOT_SHUTDOWN_GRACE   how long SIGTERM lets transfers finish (default 30s)
  BESKAR7_NAMESPACE             namespace of the service's Secret and CA ConfigMap (default pepr-system)
  KUBECONFIG                    kubeconfig to use; in a Pod the in-cluster configuration is used
`;

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/** "24h", "90m", "3600s", "500ms" → milliseconds. */
export function parseDuration(name: string, value: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(value.trim());
  if (!match)
    throw new ConfigError(
      `${name}=${JSON.stringify(value)}: expected a duration such as 24h, 90m, 30s or 500ms`,
    );
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] as "ms" | "s" | "m" | "h"];
  const ms = Number(match[1]) * unit;
  if (ms <= 0) throw new ConfigError(`${name}=${value}: must be more than zero`);
  return ms;
}

export function parseListen(name: string, value: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(value.trim());
  const port = Number(match?.[3]);
  if (!match || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(
      `${name}=${JSON.stringify(value)}: expected address:port, e.g. 0.0.0.0:8443`,
    );
  }
  return { host: match[1] ?? (match[2] || "0.0.0.0"), port };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): BootServiceConfig {
  const rawURL = env.BESKAR7_BOOT_URL;
  if (!rawURL)
    throw new ConfigError(
      "BESKAR7_BOOT_URL is required: the base URL BMCs and hosts reach the boot service at",
    );
  let url: URL;
  try {
    url = new URL(rawURL);
  } catch {
    throw new ConfigError(`BESKAR7_BOOT_URL=${JSON.stringify(rawURL)} is not a URL`);
  }
  const plainFlag = (env.BESKAR7_BOOT_PLAIN_HTTP ?? "false").trim().toLowerCase();
  if (!["true", "false", ""].includes(plainFlag)) {
    throw new ConfigError(
      `BESKAR7_BOOT_PLAIN_HTTP=${JSON.stringify(env.BESKAR7_BOOT_PLAIN_HTTP)}: expected true or false`,
    );
  }
  const plainHttp = plainFlag === "true";
  const expected = plainHttp ? "http:" : "https:";
  if (url.protocol !== expected) {
    throw new ConfigError(
      `BESKAR7_BOOT_URL must be ${expected}// ${plainHttp ? "with BESKAR7_BOOT_PLAIN_HTTP=true" : "(plain HTTP needs BESKAR7_BOOT_PLAIN_HTTP=true)"}`,
    );
  }
  if (url.username || url.password || url.search || url.hash) {
    throw new ConfigError("BESKAR7_BOOT_URL must carry no credentials, query or fragment");
  }
  const extraSANs = (env.BESKAR7_BOOT_SANS ?? "")
    .split(",")
    .map(s => s.trim())
    .filter(Boolean);
  for (const san of extraSANs) {
    if (!isIP(san) && !/^[A-Za-z0-9*]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(san)) {
      throw new ConfigError(
        `BESKAR7_BOOT_SANS: ${JSON.stringify(san)} is neither a DNS name nor an IP address`,
      );
    }
  }
  const namespace = env.BESKAR7_NAMESPACE || "pepr-system";
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(namespace)) {
    throw new ConfigError(`BESKAR7_NAMESPACE=${JSON.stringify(namespace)} is not a namespace name`);
  }
  return {
    url: url.href.replace(/\/+$/, ""),
    listen: parseListen("BESKAR7_BOOT_LISTEN", env.BESKAR7_BOOT_LISTEN || "0.0.0.0:8443"),
    metricsListen: parseListen(
      "BESKAR7_BOOT_METRICS_LISTEN",
      env.BESKAR7_BOOT_METRICS_LISTEN || "0.0.0.0:9090",
    ),
    plainHttp,
    namespace,
    extraSANs,
    tokenTTLms: parseDuration("BESKAR7_BOOT_TOKEN_TTL", env.BESKAR7_BOOT_TOKEN_TTL || "24h"),
    shutdownGraceMs: parseDuration(
      "BESKAR7_BOOT_SHUTDOWN_GRACE",
      env.BESKAR7_BOOT_SHUTDOWN_GRACE || "30s",
    ),
  };
}
