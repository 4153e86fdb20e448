// HTTP to one BMC: got with keep-alive agents, TLS policy, a timeout on every request, a small
// semaphore (BMCs fall over under parallel load) and request statistics. It knows nothing of
// sessions or retries; client.ts layers those on top. Bodies are streamed and counted: a response
// past `maxResponseBytes` is aborted at the limit, and 3xx answers are errors (never followed).
import { AsyncLocalStorage } from "node:async_hooks";
import { createHash } from "node:crypto";
import http from "node:http";
import https from "node:https";
import tls from "node:tls";
import got, { type Method, type Response } from "got";
import { Semaphore } from "../boot/semaphore";
import {
  BmcAddressRefusedError,
  BmcTlsError,
  BmcUnreachableError,
  DeadlineExceededError,
  InvalidResponseError,
  ResponseTooLargeError,
} from "./errors";
import type { BmcTlsOptions, RequestRecord, RequestStats } from "./types";
import { lookupGuard, refusedBmcAddress, type BmcAddressPolicy } from "./address-policy";

export interface TransportOptions {
  baseUrl: string;
  tls: BmcTlsOptions;
  timeoutMs: number;
  maxConcurrentRequests: number;
  /** Largest response body accepted, in bytes. Default DEFAULT_MAX_RESPONSE_BYTES. */
  maxResponseBytes?: number;
  onRequest?: (record: RequestRecord) => void;
  /** Addresses refused before connecting: the base URL's host and every address a name resolves
   *  to (address-policy.ts). Without one, any address is used. */
  addressPolicy?: BmcAddressPolicy;
}

/**
 * Default limit on one response body: 16 MiB. The largest body among the captures in
 * lab/captures/redfish-mockups is Dell's BiosRegistry at 1.1 MiB, and an expanded collection of a
 * large server stays in the low megabytes; a BMC sending more is broken or hostile, and one that
 * sent hundreds of MiB would exhaust the operator's heap for every host it manages.
 */
export const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

/**
 * Default limit on the Members of one collection the driver walks (Systems, Processors,
 * EthernetInterfaces, Storage, Drives, VirtualMedia…): 10 000. Real servers list at most a few
 * hundred; more would mean as many GETs where $expand is not offered.
 */
export const DEFAULT_MAX_COLLECTION_MEMBERS = 10_000;

/** The deadline of the operation running in this async context (epoch ms), if any. */
const deadlines = new AsyncLocalStorage<number>();

/**
 * Runs `fn` with a deadline on all of its BMC time: every request it makes (retries, task and
 * verification polls included) fails with DeadlineExceededError once `deadline` (epoch ms or a
 * Date) has passed, and no request is given a timeout reaching past it. Nested deadlines keep the
 * earlier one. Requests that callers share (the service root, a login in flight) belong to
 * whichever caller started them.
 */
export function withBmcDeadline<T>(deadline: number | Date, fn: () => Promise<T>): Promise<T> {
  const at = typeof deadline === "number" ? deadline : deadline.getTime();
  const outer = deadlines.getStore();
  return deadlines.run(outer === undefined ? at : Math.min(outer, at), fn);
}

/** The deadline in force for the calling async context (epoch ms), or undefined. */
export function bmcDeadline(): number | undefined {
  return deadlines.getStore();
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
    // Names are judged on what they resolve to, at connect time: the address that is used.
    const guard = options.addressPolicy ? { lookup: lookupGuard(options.addressPolicy) } : {};
    this.httpsAgent = new https.Agent({
      keepAlive: true,
      maxSockets,
      // Verification (rejectUnauthorized) stays per request; only the CA store is shared.
      secureContext: secureContextFor(options.tls.caBundle),
      ...guard,
    });
    this.httpAgent = new http.Agent({ keepAlive: true, maxSockets, ...guard });
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
    const deadline = deadlines.getStore();
    this.checkDeadline(request, deadline);
    this.checkAddress(request);
    const release = await this.semaphore.acquire();
    const started = performance.now();
    let status: number | undefined;
    let timeoutMs = this.options.timeoutMs;
    try {
      this.checkDeadline(request, deadline);
      if (deadline !== undefined)
        timeoutMs = Math.max(1, Math.min(timeoutMs, deadline - Date.now()));
      const headers: Record<string, string> = {
        accept: "application/json",
        "odata-version": "4.0",
        // Compression makes some BMCs hand out weak ETags (and HPE rejects identity only on
        // registries, which the driver never reads).
        "accept-encoding": "identity",
        ...request.headers,
      };
      const method = request.method.toUpperCase();
      let body: string | undefined;
      if (request.body !== undefined) {
        body = JSON.stringify(request.body);
        headers["content-type"] = "application/json";
      } else if (method !== "GET" && method !== "HEAD") {
        // got's stream ends a request only once it has a body; an empty one sends Content-Length 0.
        body = "";
      }
      const response = await this.receive(request, {
        method: method as Method,
        headers,
        body,
        timeoutMs,
      });
      status = response.status;
      return {
        status,
        headers: response.headers,
        body: parseBody(response.text, request, status),
      };
    } catch (error) {
      if (
        deadline !== undefined &&
        Date.now() >= deadline &&
        !(error instanceof ResponseTooLargeError)
      ) {
        throw this.deadlineError(request, deadline);
      }
      throw this.mapNetworkError(error, request);
    } finally {
      release();
      this.record(request, status, performance.now() - started);
    }
  }

  /**
   * One HTTP exchange, the body streamed and counted. A Content-Length above the limit fails at
   * once; a body that grows past it is aborted at the chunk that crosses it (its socket is
   * destroyed, not returned to the pool). A 3xx fails without reading its body: the driver never
   * follows a redirect, so credentials are only ever sent to the configured BMC address.
   */
  private receive(
    request: RawRequest,
    options: { method: Method; headers: Record<string, string>; body?: string; timeoutMs: number },
  ): Promise<{ status: number; headers: RawResponse["headers"]; text: string }> {
    const limit = this.options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    return new Promise((resolve, reject) => {
      const stream = got.stream(this.url(request.path), {
        method: options.method,
        headers: options.headers,
        body: options.body,
        throwHttpErrors: false,
        retry: { limit: 0 },
        followRedirect: false,
        decompress: false,
        timeout: { request: options.timeoutMs },
        agent: { http: this.httpAgent, https: this.httpsAgent },
        https: { rejectUnauthorized: !this.options.tls.insecure },
      });
      const chunks: Buffer[] = [];
      let received = 0;
      let response: Response | undefined;
      let settled = false;
      const fail = (error: unknown) => {
        if (settled) return;
        settled = true;
        chunks.length = 0;
        stream.destroy();
        reject(error);
      };
      stream.on("error", fail);
      stream.on("response", (answer: Response) => {
        response = answer;
        const declared = Number(answer.headers["content-length"]);
        if (Number.isFinite(declared) && declared > limit) {
          fail(this.tooLarge(request, answer.statusCode, limit, `declares ${declared} bytes`));
        } else if (answer.statusCode >= 300 && answer.statusCode < 400) {
          fail(this.redirectError(request, answer));
        }
      });
      stream.on("data", (chunk: Buffer) => {
        if (settled) return;
        received += chunk.length;
        if (received > limit) {
          fail(this.tooLarge(request, response?.statusCode, limit, `exceeded ${limit} bytes`));
        } else {
          chunks.push(chunk);
        }
      });
      stream.on("end", () => {
        if (settled) return;
        settled = true;
        if (!response) {
          reject(new InvalidResponseError(`${describe(request)} ended without a response`));
          return;
        }
        resolve({
          status: response.statusCode,
          headers: response.headers as RawResponse["headers"],
          text: Buffer.concat(chunks).toString("utf8"),
        });
      });
    });
  }

  private tooLarge(
    request: RawRequest,
    status: number | undefined,
    limit: number,
    what: string,
  ): ResponseTooLargeError {
    return new ResponseTooLargeError(
      `${describe(request)} on ${this.baseUrl}: the response body ${what}, more than the limit of ${limit} bytes (maxResponseBytes); request aborted`,
      limit,
      { status, method: request.method.toUpperCase(), path: toRedfishPath(request.path) },
    );
  }

  private redirectError(request: RawRequest, response: Response): InvalidResponseError {
    const location = response.headers.location;
    const target = location ? safeLocation(location, this.baseUrl) : "nowhere (no Location)";
    return new InvalidResponseError(
      `${describe(request)} on ${this.baseUrl} answered HTTP ${response.statusCode} redirecting to ${target}; redirects are not followed (credentials go only to the configured BMC address): configure the address the BMC redirects to`,
      {
        status: response.statusCode,
        method: request.method.toUpperCase(),
        path: toRedfishPath(request.path),
      },
    );
  }

  private checkDeadline(request: RawRequest, deadline: number | undefined): void {
    if (deadline !== undefined && Date.now() >= deadline)
      throw this.deadlineError(request, deadline);
  }

  private deadlineError(request: RawRequest, deadline: number): DeadlineExceededError {
    return new DeadlineExceededError(
      `${describe(request)} on ${this.baseUrl}: the operation's deadline (${new Date(deadline).toISOString()}) passed`,
      { method: request.method.toUpperCase(), path: toRedfishPath(request.path) },
    );
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

  /** An IP literal or a Service name the policy refuses fails before anything is sent. */
  private checkAddress(request: RawRequest): void {
    const refusal = this.options.addressPolicy
      ? refusedBmcAddress(this.baseUrl, this.options.addressPolicy)
      : undefined;
    if (refusal) {
      throw new BmcAddressRefusedError(`${this.baseUrl}: ${refusal.reason}`, {
        method: request.method.toUpperCase(),
        path: toRedfishPath(request.path),
      });
    }
  }

  private mapNetworkError(error: unknown, request: RawRequest): Error {
    if (error instanceof InvalidResponseError) return error;
    const code = errorCode(error);
    const method = request.method.toUpperCase();
    const path = toRedfishPath(request.path);
    if (code === "EBMCADDRESSREFUSED") {
      const reason = error instanceof Error ? error.message : String(error);
      return new BmcAddressRefusedError(`${this.baseUrl}: ${reason}`, { method, path });
    }
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

function describe(request: RawRequest): string {
  return `${request.method.toUpperCase()} ${toRedfishPath(request.path)}`;
}

/** A redirect target for an error message: no user:password@, no query, bounded length. */
function safeLocation(location: string, base: string): string {
  try {
    const url = new URL(location, base);
    return `${url.protocol}//${url.host}${url.pathname}`.slice(0, 256);
  } catch {
    return JSON.stringify(location.slice(0, 256));
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
