// HTTP to one BMC: got with keep-alive agents, TLS policy, a timeout on every request, a small
// semaphore (BMCs fall over under parallel load) and request statistics. It knows nothing of
// sessions or retries; client.ts layers those on top.
import { createHash } from "node:crypto";
import http from "node:http";
import https from "node:https";
import tls from "node:tls";
import got, { type Method } from "got";
import { BmcTlsError, BmcUnreachableError, InvalidResponseError } from "./errors";
import type { BmcTlsOptions, RequestRecord, RequestStats } from "./types";

export interface TransportOptions {
  baseUrl: string;
  tls: BmcTlsOptions;
  timeoutMs: number;
  maxConcurrentRequests: number;
  onRequest?: (record: RequestRecord) => void;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON, or undefined for an empty body. */
  body: unknown;
}

export interface RawRequest {
  method: string;
  /** Path starting with / (query allowed) or an absolute URL on the same BMC. */
  path: string;
  headers?: Record<string, string>;
  body?: unknown;
}

/** Recent requests kept per BMC for diagnostics; small, since an operator holds one per BMC for
 *  as long as it runs. */
const RECENT_LIMIT = 32;

/**
 * One TLS context per distinct CA bundle, shared by every BMC that trusts it. Without this, Node
 * builds a new OpenSSL context (CA store included) for every connection — on OpenSSL 3 that costs
 * tens of kilobytes and measurable CPU each, which at a thousand BMCs is most of the operator's
 * native memory. Contexts hold only public certificates.
 */
const secureContexts = new Map<string, tls.SecureContext>();
const MAX_SECURE_CONTEXTS = 64;

function secureContextFor(caBundle: string | undefined): tls.SecureContext {
  const key = caBundle ? createHash("sha256").update(caBundle).digest("hex") : "system";
  let context = secureContexts.get(key);
  if (!context) {
    context = tls.createSecureContext(caBundle ? { ca: caBundle } : {});
    // Bounded: rotated CA bundles must not accumulate. Agents keep the contexts they hold.
    if (secureContexts.size >= MAX_SECURE_CONTEXTS) {
      secureContexts.delete(secureContexts.keys().next().value!);
    }
    secureContexts.set(key, context);
  }
  return context;
}

/** Counting semaphore; FIFO so a burst of reconciles cannot starve an earlier caller. */
class Semaphore {
  private available: number;
  private readonly waiters: (() => void)[] = [];
  private peak = 0;

  constructor(private readonly capacity: number) {
    this.available = capacity;
  }

  get inFlight(): number {
    return this.capacity - this.available;
  }

  /** Highest number of holders seen at once (for tests). */
  get peakInFlight(): number {
    return this.peak;
  }

  async acquire(): Promise<() => void> {
    if (this.available > 0) {
      this.available -= 1;
    } else {
      await new Promise<void>(resolve => this.waiters.push(resolve));
    }
    this.peak = Math.max(this.peak, this.inFlight);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      // Hand the permit straight to the next waiter instead of returning it to the pool.
      if (next) next();
      else this.available += 1;
    };
  }
}

function emptyStats(): RequestStats {
  return {
    total: 0,
    byMethod: {},
    byStatus: {},
    totalLatencyMs: 0,
    maxLatencyMs: 0,
    retries: 0,
    logins: 0,
    recent: [],
  };
}

/** Accepts `host`, `host:port`, `https://host[:port][/anything]`; returns `scheme://host:port`. */
function normaliseBaseUrl(address: string): string {
  const trimmed = address.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed) ? trimmed : `https://${trimmed}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    // Echo the address without any user:password@ part someone may have put in it.
    throw new InvalidResponseError(`invalid BMC address "${trimmed.replace(/^.*@/, "")}"`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new InvalidResponseError(`unsupported BMC address scheme "${url.protocol}"`);
  }
  return `${url.protocol}//${url.host}`;
}

/** Reduces an absolute URL or path to `/redfish/v1/…` (some BMCs return absolute Locations). */
export function toRedfishPath(location: string): string {
  const index = location.indexOf("/redfish/v1");
  if (index >= 0) return location.slice(index);
  if (location.startsWith("/")) return location;
  try {
    const url = new URL(location);
    return `${url.pathname}${url.search}`;
  } catch {
    return `/${location}`;
  }
}

const TLS_ERROR_CODES = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
  "CERT_SIGNATURE_FAILURE",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "EPROTO",
  "ERR_SSL_WRONG_VERSION_NUMBER",
]);

export class Transport {
  readonly baseUrl: string;
  private readonly options: TransportOptions;
  private readonly httpsAgent: https.Agent;
  private readonly httpAgent: http.Agent;
  readonly semaphore: Semaphore;
  private statistics: RequestStats = emptyStats();

  constructor(options: TransportOptions) {
    this.options = options;
    this.baseUrl = normaliseBaseUrl(options.baseUrl);
    const maxSockets = Math.max(1, options.maxConcurrentRequests);
    this.httpsAgent = new https.Agent({
      keepAlive: true,
      maxSockets,
      // Verification (rejectUnauthorized) stays per request; only the CA store is shared.
      secureContext: secureContextFor(options.tls.caBundle),
    });
    this.httpAgent = new http.Agent({ keepAlive: true, maxSockets });
    this.semaphore = new Semaphore(maxSockets);
  }

  stats(): RequestStats {
    return {
      ...this.statistics,
      byMethod: { ...this.statistics.byMethod },
      byStatus: { ...this.statistics.byStatus },
      recent: [...this.statistics.recent],
    };
  }

  resetStats(): void {
    this.statistics = emptyStats();
  }

  countRetry(): void {
    this.statistics.retries += 1;
  }

  countLogin(): void {
    this.statistics.logins += 1;
  }

  url(path: string): string {
    if (/^https?:\/\//i.test(path)) {
      // Absolute URLs from the BMC (Location headers) are re-rooted on our base so a misconfigured
      // BMC cannot send our credentials to another host.
      return `${this.baseUrl}${toRedfishPath(path)}`;
    }
    return `${this.baseUrl}${path.startsWith("/") ? path : `/${path}`}`;
  }

  async request(request: RawRequest): Promise<RawResponse> {
    const release = await this.semaphore.acquire();
    const started = performance.now();
    let status: number | undefined;
    try {
      const headers: Record<string, string> = {
        accept: "application/json",
        "odata-version": "4.0",
        // Compression makes some BMCs hand out weak ETags (and HPE rejects identity only on
        // registries, which the driver never reads).
        "accept-encoding": "identity",
        ...request.headers,
      };
      let body: string | undefined;
      if (request.body !== undefined) {
        body = JSON.stringify(request.body);
        headers["content-type"] = "application/json";
      }
      const response = await got(this.url(request.path), {
        method: request.method.toUpperCase() as Method,
        headers,
        body,
        throwHttpErrors: false,
        retry: { limit: 0 },
        followRedirect: false,
        decompress: false,
        responseType: "text",
        timeout: { request: this.options.timeoutMs },
        agent: { http: this.httpAgent, https: this.httpsAgent },
        https: { rejectUnauthorized: !this.options.tls.insecure },
      });
      status = response.statusCode;
      return {
        status,
        headers: response.headers as Record<string, string | string[] | undefined>,
        body: parseBody(response.body, request, status),
      };
    } catch (error) {
      throw this.mapNetworkError(error, request);
    } finally {
      release();
      this.record(request, status, performance.now() - started);
    }
  }

  /** Destroys idle keep-alive sockets only; requests in flight keep theirs. */
  closeIdle(): void {
    for (const agent of [this.httpsAgent, this.httpAgent]) {
      for (const sockets of Object.values(agent.freeSockets)) {
        for (const socket of sockets ?? []) socket.destroy();
      }
    }
  }

  close(): void {
    this.httpsAgent.destroy();
    this.httpAgent.destroy();
  }

  private record(request: RawRequest, status: number | undefined, durationMs: number): void {
    const method = request.method.toUpperCase();
    const stats = this.statistics;
    stats.total += 1;
    stats.byMethod[method] = (stats.byMethod[method] ?? 0) + 1;
    const statusKey = status === undefined ? "error" : String(status);
    stats.byStatus[statusKey] = (stats.byStatus[statusKey] ?? 0) + 1;
    stats.totalLatencyMs += durationMs;
    stats.maxLatencyMs = Math.max(stats.maxLatencyMs, durationMs);
    const record: RequestRecord = {
      method,
      path: toRedfishPath(request.path),
      status,
      durationMs: Math.round(durationMs * 10) / 10,
    };
    stats.recent.push(record);
    if (stats.recent.length > RECENT_LIMIT) stats.recent.shift();
    try {
      this.options.onRequest?.(record);
    } catch {
      // A metrics sink must never break a BMC operation.
    }
  }

  private mapNetworkError(error: unknown, request: RawRequest): Error {
    if (error instanceof InvalidResponseError) return error;
    const code = errorCode(error);
    const method = request.method.toUpperCase();
    const path = toRedfishPath(request.path);
    const reason = error instanceof Error ? error.message : String(error);
    if (
      code &&
      (TLS_ERROR_CODES.has(code) || code.startsWith("ERR_SSL") || code.startsWith("ERR_TLS"))
    ) {
      return new BmcTlsError(`TLS failure talking to ${this.baseUrl}: ${code}`, {
        method,
        path,
        cause: error,
      });
    }
    const what = code === "ETIMEDOUT" ? "timed out" : `failed (${code ?? "network error"})`;
    return new BmcUnreachableError(`${method} ${path} on ${this.baseUrl} ${what}`, {
      method,
      path,
      cause: code ? `${code}: ${reason}` : reason,
    });
  }
}

function errorCode(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  if (typeof code === "string" && code !== "ERR_GOT_REQUEST_ERROR") return code;
  // got wraps the socket error; the useful code is on its cause.
  const cause = (error as { cause?: unknown }).cause;
  if (cause && cause !== error)
    return errorCode(cause) ?? (typeof code === "string" ? code : undefined);
  return typeof code === "string" ? code : undefined;
}

function parseBody(text: string, request: RawRequest, status: number): unknown {
  if (text.trim().length === 0) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // Error pages from BMC web servers are HTML; keep the status meaningful, drop the page.
    if (status >= 400) return undefined;
    throw new InvalidResponseError(
      `${request.method.toUpperCase()} ${toRedfishPath(request.path)} returned a body that is not JSON`,
      { status, method: request.method.toUpperCase(), path: toRedfishPath(request.path) },
    );
  }
}
