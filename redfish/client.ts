// One RedfishClient per BMC. Layers authentication, retries, error mapping, ETag handling, task
// monitors and link caches over the transport. Operations on a ComputerSystem are in system.ts.
import type { RedfishClient, RedfishResponse, RedfishSystem, RequestOptions } from "./api";
import {
  BmcAuthenticationError,
  BmcRejectedError,
  BmcServerError,
  DeadlineExceededError,
  InvalidResponseError,
  RedfishError,
  ResourceNotFoundError,
  SystemSelectionError,
  TaskFailedError,
  UnsupportedOperationError,
  parseExtendedInfo,
  redactSecrets,
  type ExtendedInfo,
  type RedfishErrorDetails,
} from "./errors";
import { SecretCredentials, SessionAuth } from "./session";
import { RedfishSystemImpl } from "./system";
import {
  DEFAULT_MAX_COLLECTION_MEMBERS,
  type RawResponse,
  Transport,
  bmcDeadline,
  toRedfishPath,
} from "./transport";
import { type WriteContext, detectVendor, isTransientWriteError } from "./vendors";
import type { BmcVendor, RedfishClientOptions, RequestStats, TaskResult } from "./types";
import { type ODataLink, hasContent, linkPath, memberPaths } from "./resources/common";
import type { ServiceRoot } from "./resources/schema";

export interface InternalRequestOptions extends RequestOptions {
  /** Which transient-error rules apply to a retried write. */
  context?: WriteContext;
  /** Extra secrets (e.g. image-server passwords) to scrub from errors of this request. */
  secrets?: string[];
  /** Send the request without authentication (service root only). */
  anonymous?: boolean;
}

export interface ResolvedClientOptions {
  timeoutMs: number;
  retryAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  taskPollIntervalMs: number;
  taskTimeoutMs: number;
  gracefulShutdownTimeoutMs: number;
  verifyPollIntervalMs: number;
  verifyTimeoutMs: number;
  maxCollectionMembers: number;
}

const RUNNING_TASK_STATES = new Set([
  "New",
  "Starting",
  "Running",
  "Pending",
  "Suspended",
  "Stopping",
  "Cancelling",
  "Service",
]);
const FAILED_TASK_STATES = new Set(["Exception", "Killed", "Cancelled", "Interrupted"]);
/** Statuses with which a service says it will not expand (after advertising it). */
const EXPAND_REFUSED = [400, 404, 405, 501];
/** How long a system body that came with the Systems collection stands in for a GET of it. */
const LISTED_SYSTEM_TTL_MS = 10_000;
/** How long a system read ahead (readSystemAhead) stands in for a GET of it, from its start. */
const READ_AHEAD_TTL_MS = 3_000;

/** The `$expand` form the driver uses, from ProtocolFeaturesSupported.ExpandQuery. */
export interface ExpandSupport {
  /** `.` (hyperlinks outside Links) where offered, else `*`. */
  option: "." | "*";
  /** Deepest `$levels` to ask for: MaxLevels for `.`; 1 for `*` (deeper would inline Links). */
  maxLevels: number;
}

export function createRedfishClient(options: RedfishClientOptions): RedfishClient {
  return new RedfishClientImpl(options);
}

export class RedfishClientImpl implements RedfishClient {
  readonly baseUrl: string;
  readonly settings: ResolvedClientOptions;
  readonly logger: RedfishClientOptions["logger"];
  private readonly transport: Transport;
  private readonly auth: SessionAuth;
  private readonly defaultSystemId?: string;
  private rootPromise?: Promise<ServiceRoot>;
  private systemsPromise?: Promise<string[]>;
  private vendorValue?: BmcVendor;
  private readonly etags = new Map<string, string>();
  private readonly systems = new Map<string, RedfishSystemImpl>();
  /** Set after a service advertised $expand but answered it with an error. */
  private expandBroken = false;
  /** Set to 1 after a service refused a `$levels` it advertised but took `$levels=1`. */
  private expandLevelsCap = Number.POSITIVE_INFINITY;
  /** System bodies that came with an expanded Systems collection: each stands in for one GET
   *  of that system (the first inventory's) until the system is read again or anything is written. */
  private readonly listedSystems = new Map<string, { body: Record<string, unknown>; at: number }>();
  /** System reads started ahead of the call that needs them (readSystemAhead): each stands in
   *  for one GET of that system while fresh, unless anything is written meanwhile. */
  private readonly readAhead = new Map<
    string,
    { body: Promise<Record<string, unknown> | undefined>; at: number }
  >();
  private closed = false;

  constructor(options: RedfishClientOptions) {
    this.transport = new Transport({
      baseUrl: options.address,
      tls: options.tls ?? {},
      timeoutMs: options.timeoutMs ?? 30_000,
      maxConcurrentRequests: options.maxConcurrentRequests ?? 4,
      maxResponseBytes: options.maxResponseBytes,
      onRequest: options.onRequest,
      addressPolicy: options.addressPolicy,
    });
    this.baseUrl = this.transport.baseUrl;
    this.auth = new SessionAuth(
      this.transport,
      new SecretCredentials(options.credentials),
      options.auth ?? "auto",
      options.logger,
    );
    this.defaultSystemId = options.systemId;
    this.logger = options.logger;
    this.settings = {
      timeoutMs: options.timeoutMs ?? 30_000,
      retryAttempts: options.retry?.attempts ?? 3,
      baseDelayMs: options.retry?.baseDelayMs ?? 500,
      maxDelayMs: options.retry?.maxDelayMs ?? 8_000,
      taskPollIntervalMs: options.taskPollIntervalMs ?? 2_000,
      taskTimeoutMs: options.taskTimeoutMs ?? 10 * 60_000,
      gracefulShutdownTimeoutMs: options.gracefulShutdownTimeoutMs ?? 120_000,
      verifyPollIntervalMs: options.verifyPollIntervalMs ?? 2_000,
      verifyTimeoutMs: options.verifyTimeoutMs ?? 60_000,
      maxCollectionMembers: options.maxCollectionMembers ?? DEFAULT_MAX_COLLECTION_MEMBERS,
    };
  }

  // ---- raw HTTP -----------------------------------------------------------------------------

  async get<T = Record<string, unknown>>(
    path: string,
    options: InternalRequestOptions = {},
  ): Promise<RedfishResponse<T>> {
    const response = await this.send("GET", path, undefined, options);
    return response as RedfishResponse<T>;
  }

  async post<T = unknown>(
    path: string,
    body: unknown,
    options: InternalRequestOptions = {},
  ): Promise<RedfishResponse<T>> {
    return (await this.send("POST", path, body, options)) as RedfishResponse<T>;
  }

  async delete<T = unknown>(
    path: string,
    options: InternalRequestOptions = {},
  ): Promise<RedfishResponse<T>> {
    return (await this.send("DELETE", path, undefined, options)) as RedfishResponse<T>;
  }

  /**
   * PATCH with If-Match handling. QUIRKS: All | ETag / If-Match and Lenovo | ETag: use the ETag
   * header else @odata.etag; a weak tag that fails is retried strong, then without If-Match; 428
   * means a tag is required (fetch one); 412 means it is stale (re-GET and retry once).
   */
  async patch<T = unknown>(
    path: string,
    body: unknown,
    options: InternalRequestOptions = {},
  ): Promise<RedfishResponse<T>> {
    const known = options.ifMatch ?? this.etags.get(toRedfishPath(path));
    try {
      return (await this.send("PATCH", path, body, {
        ...options,
        ifMatch: known,
      })) as RedfishResponse<T>;
    } catch (error) {
      if (!(error instanceof RedfishError)) throw error;
      // 428 says a tag is required; some BMCs say so with 412 when none was sent.
      const needsTag = error.status === 428 || (error.status === 412 && known === undefined);
      const staleTag = error.status === 412 && known !== undefined;
      const weakFailed = known !== undefined && isWeak(known) && error.status === 400;
      if (!needsTag && !staleTag && !weakFailed) throw error;
      const fresh = needsTag || staleTag ? await this.fetchEtag(path) : known;
      const candidates = etagCandidates(fresh, known, needsTag);
      let last: unknown = error;
      for (const candidate of candidates) {
        try {
          return (await this.send("PATCH", path, body, {
            ...options,
            ifMatch: candidate ?? "",
          })) as RedfishResponse<T>;
        } catch (retryError) {
          last = retryError;
          if (!(retryError instanceof RedfishError)) throw retryError;
          if (![400, 412, 428].includes(retryError.status ?? 0)) throw retryError;
        }
      }
      throw last;
    }
  }

  /** Current ETag of a resource (GET; header first, then @odata.etag). */
  async fetchEtag(path: string): Promise<string | undefined> {
    const response = await this.get(path);
    return response.etag;
  }

  /** The ETag last seen for a path (from any GET), used as If-Match on the next PATCH. */
  cachedEtag(path: string): string | undefined {
    return this.etags.get(toRedfishPath(path));
  }

  async waitForTask(monitor: string): Promise<TaskResult> {
    const path = toRedfishPath(monitor);
    const deadline = Date.now() + this.settings.taskTimeoutMs;
    for (;;) {
      const response = await this.send("GET", path, undefined, { waitForTask: false });
      const body = asRecord(response.body);
      const taskState = typeof body?.TaskState === "string" ? body.TaskState : undefined;
      const running = response.status === 202 || (taskState && RUNNING_TASK_STATES.has(taskState));
      if (!running) {
        const result = taskResult(body);
        const failed =
          (taskState && FAILED_TASK_STATES.has(taskState)) || result.taskStatus === "Critical";
        if (failed) {
          throw new TaskFailedError(
            `task ${path} ended ${taskState ?? result.taskStatus}${describeMessages(result.messages)}`,
            { path, method: "GET", status: response.status },
          );
        }
        return result;
      }
      if (Date.now() + this.settings.taskPollIntervalMs > deadline) {
        throw new TaskFailedError(
          `task ${path} still running after ${this.settings.taskTimeoutMs} ms`,
          {
            path,
            retryable: true,
          },
        );
      }
      await sleep(this.settings.taskPollIntervalMs);
    }
  }

  // ---- navigation ---------------------------------------------------------------------------

  /** The service root, fetched once per client. Readable without authentication per DSP0266. */
  async root(): Promise<ServiceRoot> {
    this.rootPromise ??= this.fetchRoot().catch(error => {
      this.rootPromise = undefined;
      throw error;
    });
    return this.rootPromise;
  }

  async vendor(): Promise<BmcVendor> {
    if (this.vendorValue) return this.vendorValue;
    this.vendorValue = detectVendor(await this.root());
    return this.vendorValue;
  }

  /** Refines a Generic vendor guess once a system's Manufacturer is known. */
  noteManufacturer(manufacturer: string | undefined): void {
    if (!manufacturer || (this.vendorValue && this.vendorValue !== "Generic")) return;
    if (!this.rootPromise) return;
    void this.rootPromise.then(root => {
      if (!this.vendorValue || this.vendorValue === "Generic") {
        this.vendorValue = detectVendor(root, manufacturer);
      }
    });
  }

  /** Paths of every ComputerSystem (the Systems collection, fetched once per client). */
  async systemPaths(): Promise<string[]> {
    this.systemsPromise ??= (async () => {
      const root = await this.root();
      const systemsPath = linkPath(root.Systems as ODataLink | undefined);
      if (!systemsPath) {
        throw new UnsupportedOperationError("the service root links no Systems collection");
      }
      // Expanded where offered: the system bodies come with the list (one GET fewer to enroll).
      const collection = await this.collection(systemsPath);
      const now = Date.now();
      for (const member of this.members(collection, systemsPath)) {
        const path = linkPath(member as ODataLink);
        if (path && hasContent(member)) this.listedSystems.set(path, { body: member, at: now });
      }
      return memberPaths(collection);
    })().catch(error => {
      this.systemsPromise = undefined;
      throw error;
    });
    return this.systemsPromise;
  }

  /**
   * The body of a system as the (expanded) Systems collection showed it, once, and only while
   * nothing has been written or read of it since and it is fresh; otherwise undefined (GET it).
   */
  takeListedSystem(path: string): Record<string, unknown> | undefined {
    const entry = this.listedSystems.get(path);
    this.listedSystems.delete(path);
    if (!entry || Date.now() - entry.at > LISTED_SYSTEM_TTL_MS) return undefined;
    return entry.body;
  }

  /**
   * Starts a GET of a system that a caller will want in a moment (a host about to be claimed,
   * whose first run reads its power state): the request, and the connection it opens, overlap
   * the wait for the claim. `takeSystemAhead` hands the body (or the GET under way) to that
   * caller once. Resolves when the read is done; never rejects (the caller then reads itself).
   */
  readSystemAhead(path: string): Promise<void> {
    const current = this.readAhead.get(path);
    if (current && Date.now() - current.at <= READ_AHEAD_TTL_MS) {
      return current.body.then(() => undefined);
    }
    const entry = {
      at: Date.now(),
      body: this.get<Record<string, unknown>>(path).then(
        response => response.body,
        () => undefined,
      ),
    };
    this.readAhead.set(path, entry);
    return entry.body.then(body => {
      if (!body && this.readAhead.get(path) === entry) this.readAhead.delete(path);
    });
  }

  /** The system read ahead, once, if started within READ_AHEAD_TTL_MS with no write since. */
  async takeSystemAhead(path: string): Promise<Record<string, unknown> | undefined> {
    const entry = this.readAhead.get(path);
    this.readAhead.delete(path);
    if (!entry || Date.now() - entry.at > READ_AHEAD_TTL_MS) return undefined;
    return entry.body;
  }

  async systemIds(): Promise<string[]> {
    return (await this.systemPaths()).map(lastSegment);
  }

  /** Picks a system by Id (or the only one). Errors list the available Ids. */
  async resolveSystemPath(systemId: string | undefined): Promise<string> {
    const paths = await this.systemPaths();
    const ids = paths.map(lastSegment);
    const wanted = systemId ?? this.defaultSystemId;
    if (wanted === undefined) {
      const only = paths[0];
      if (paths.length === 1 && only) return only;
      throw new SystemSelectionError(
        paths.length === 0
          ? "the BMC lists no ComputerSystems"
          : `the BMC manages ${paths.length} systems; choose one with systemId (available: ${ids.join(", ")})`,
        ids,
      );
    }
    const index = ids.findIndex(id => id === wanted);
    const caseless = ids.findIndex(id => id.toLowerCase() === wanted.toLowerCase());
    const match = paths[index >= 0 ? index : caseless];
    if (!match) {
      throw new SystemSelectionError(
        `system "${wanted}" not found on the BMC (available: ${ids.join(", ") || "none"})`,
        ids,
      );
    }
    return match;
  }

  system(systemId?: string): RedfishSystem {
    const key = systemId ?? this.defaultSystemId ?? "";
    let handle = this.systems.get(key);
    if (!handle) {
      handle = new RedfishSystemImpl(this, systemId ?? this.defaultSystemId);
      this.systems.set(key, handle);
    }
    return handle;
  }

  /**
   * The `$expand` the service advertises in ProtocolFeaturesSupported.ExpandQuery (with `$levels`,
   * so the depth asked for is explicit), or undefined when it advertises none or has refused it.
   */
  async expandSupport(): Promise<ExpandSupport | undefined> {
    if (this.expandBroken) return undefined;
    const root = await this.root();
    const expand = asRecord(asRecord(root.ProtocolFeaturesSupported)?.ExpandQuery);
    if (!expand || expand.Levels !== true) return undefined;
    const option = expand.NoLinks === true ? "." : expand.ExpandAll === true ? "*" : undefined;
    if (!option) return undefined;
    const max = expand.MaxLevels;
    const advertised = typeof max === "number" && Number.isInteger(max) && max >= 1 ? max : 1;
    const maxLevels = option === "." ? Math.min(advertised, this.expandLevelsCap) : 1;
    return { option, maxLevels };
  }

  /** `$expand=<option>($levels=n)` with n at most what the service offers; undefined: no $expand. */
  async expandQuery(levels = 1): Promise<string | undefined> {
    const support = await this.expandSupport();
    if (!support) return undefined;
    return `$expand=${support.option}($levels=${Math.max(1, Math.min(levels, support.maxLevels))})`;
  }

  /**
   * A collection's body, expanded up to `levels` deep where the service offers $expand. A service
   * that refuses an advertised depth is asked once more with one level (and never deeper again);
   * one that refuses $expand altogether gets plain GETs from then on. A collection that is
   * missing is missing with or without $expand: that error is the plain GET's and blames nothing.
   */
  async collection(path: string, levels = 1): Promise<unknown> {
    const query = await this.expandQuery(levels);
    if (!query) return (await this.get(path)).body;
    try {
      return (await this.get(`${path}?${query}`)).body;
    } catch (error) {
      if (!isExpandRefusal(error)) throw error;
    }
    if (!query.endsWith("($levels=1)")) {
      const single = await this.expandQuery(1);
      try {
        const body = (await this.get(`${path}?${single}`)).body;
        this.expandLevelsCap = 1;
        return body;
      } catch (error) {
        if (!isExpandRefusal(error)) throw error;
      }
    }
    const body = (await this.get(path)).body;
    this.expandBroken = true;
    return body;
  }

  /**
   * Bodies of every member of a collection: one request with $expand where it works (`levels`
   * deep: 2 also inlines the members' own hyperlinks), otherwise the collection plus one GET per
   * member. Members that fail are reported, not fatal.
   */
  async collectionMembers(
    collectionPath: string,
    options: { levels?: number } = {},
  ): Promise<{ members: Record<string, unknown>[]; warnings: string[] }> {
    const collectionBody = await this.collection(collectionPath, options.levels ?? 1);
    const warnings: string[] = [];
    const members = await Promise.all(
      this.members(collectionBody, collectionPath).map(async record => {
        if (hasContent(record)) return record;
        const path = linkPath(record as ODataLink);
        if (!path) return undefined;
        try {
          return (await this.get(path)).body as Record<string, unknown>;
        } catch (error) {
          warnings.push(`${path}: ${error instanceof Error ? error.message : String(error)}`);
          return undefined;
        }
      }),
    );
    return { members: members.filter(isDefined), warnings };
  }

  /**
   * The Members of a collection body that are objects, refusing a collection longer than
   * `maxCollectionMembers` (a broken or hostile BMC would otherwise cost one GET per member).
   */
  members(collection: unknown, path: string): Record<string, unknown>[] {
    this.checkMemberCount(memberCount(collection), `collection ${toRedfishPath(path)}`);
    return membersOf(collection);
  }

  /** Throws InvalidResponseError when a list of links to walk is longer than allowed. */
  checkMemberCount(count: number, what: string): void {
    if (count <= this.settings.maxCollectionMembers) return;
    throw new InvalidResponseError(
      `${what} lists ${count} members, more than the limit of ${this.settings.maxCollectionMembers} (maxCollectionMembers)`,
    );
  }

  // ---- statistics and lifecycle ----------------------------------------------------------

  stats(): RequestStats {
    return this.transport.stats();
  }

  resetStats(): void {
    this.transport.resetStats();
  }

  get authKind(): "session" | "basic" | "none" {
    return this.auth.kind;
  }

  closeIdleConnections(): void {
    this.transport.closeIdle();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.auth.logout();
    this.transport.close();
  }

  // ---- core request loop ------------------------------------------------------------------

  async send(
    method: string,
    path: string,
    body: unknown,
    options: InternalRequestOptions = {},
  ): Promise<RedfishResponse> {
    if (this.closed) throw new InvalidResponseError("the Redfish client is closed");
    if (!options.anonymous) await this.ensureAuthenticated();
    const isRead = method === "GET" || method === "HEAD";
    // A listed system body is only as good as no newer read of it and no write since; one read
    // ahead, as no write since.
    if (isRead) this.listedSystems.delete(path);
    else {
      this.listedSystems.clear();
      this.readAhead.clear();
    }
    const secrets = [...this.auth.secrets(), ...(options.secrets ?? [])];
    let reauthenticated = false;
    for (let attempt = 0; ; attempt += 1) {
      const headers: Record<string, string> = {
        ...options.headers,
        ...(options.anonymous ? {} : this.auth.headers()),
      };
      if (options.ifMatch) headers["if-match"] = options.ifMatch;
      const tokenUsed = this.auth.currentToken;
      let raw: RawResponse;
      try {
        raw = await this.transport.request({ method, path, headers, body });
      } catch (error) {
        const mapped = error instanceof RedfishError ? scrub(error, secrets) : error;
        if (
          mapped instanceof RedfishError &&
          !(mapped instanceof DeadlineExceededError) &&
          attempt < this.settings.retryAttempts &&
          (isRead ? mapped.retryable : isTransientWriteError(mapped, options.context ?? "other"))
        ) {
          await this.backoff(attempt, method, path, mapped);
          continue;
        }
        throw mapped;
      }
      this.logger?.debug("redfish request", {
        method,
        path: toRedfishPath(path),
        status: raw.status,
      });
      if (raw.status === 401 && !reauthenticated && tokenUsed !== undefined) {
        // The session expired or was dropped by the BMC: log in again once.
        reauthenticated = true;
        this.auth.invalidate(tokenUsed);
        await this.ensureAuthenticated();
        attempt -= 1;
        continue;
      }
      if (raw.status < 400) {
        const response = toResponse(raw);
        if (isRead) this.rememberEtag(path, response);
        else this.etags.delete(toRedfishPath(path));
        if (raw.status === 202 && !isRead && options.waitForTask !== false) {
          const monitor = response.location ?? taskMonitorFromBody(response.body);
          if (!monitor) {
            throw new InvalidResponseError(
              `${method} ${toRedfishPath(path)} returned 202 without a task monitor`,
              { status: 202, method, path: toRedfishPath(path) },
            );
          }
          const task = await this.waitForTask(monitor);
          return { ...response, body: task.body ?? response.body };
        }
        return response;
      }
      const error = errorFromResponse(raw, method, path, secrets, options.context ?? "other");
      const retry = isRead
        ? error.retryable
        : isTransientWriteError(error, options.context ?? "other");
      if (retry && attempt < this.settings.retryAttempts) {
        await this.backoff(attempt, method, path, error);
        continue;
      }
      throw error;
    }
  }

  private async backoff(attempt: number, method: string, path: string, error: RedfishError) {
    this.transport.countRetry();
    const ceiling = Math.min(this.settings.maxDelayMs, this.settings.baseDelayMs * 2 ** attempt);
    // Full jitter: many controllers retrying one BMC must not synchronise.
    const delay = Math.round(Math.random() * ceiling);
    // A retry that would start after the operation's deadline is not worth waiting for.
    const deadline = bmcDeadline();
    if (deadline !== undefined && Date.now() + delay >= deadline) {
      throw new DeadlineExceededError(
        `${method} ${toRedfishPath(path)} on ${this.baseUrl}: the operation's deadline passes before the next retry (${error.message})`,
        { method, path: toRedfishPath(path), status: error.status },
      );
    }
    this.logger?.debug("retrying Redfish request", {
      method,
      path: toRedfishPath(path),
      attempt: attempt + 1,
      delayMs: delay,
      reason: error.code,
      status: error.status,
    });
    await sleep(delay);
  }

  private async ensureAuthenticated(): Promise<void> {
    if (this.auth.authenticated) return;
    const root = await this.root();
    await this.auth.login(sessionsPathOf(root));
  }

  private async fetchRoot(): Promise<ServiceRoot> {
    let response: RedfishResponse;
    try {
      response = await this.send("GET", "/redfish/v1/", undefined, { anonymous: true });
    } catch (error) {
      // A few BMCs protect the root too; Basic gets us far enough to find SessionService.
      if (!(error instanceof BmcAuthenticationError)) throw error;
      await this.auth.login(undefined);
      response = await this.send("GET", "/redfish/v1/", undefined);
    }
    const body = asRecord(response.body);
    if (!body || typeof body.RedfishVersion !== "string") {
      throw new InvalidResponseError(`${this.baseUrl}/redfish/v1/ is not a Redfish service root`);
    }
    return body;
  }

  private rememberEtag(path: string, response: RedfishResponse): void {
    if (path.includes("?")) return;
    if (response.etag) this.etags.set(toRedfishPath(path), response.etag);
  }
}

// ---- helpers --------------------------------------------------------------------------------

function sessionsPathOf(root: Record<string, unknown>): string | undefined {
  const links = asRecord(root.Links);
  const direct = linkPath(links?.Sessions as ODataLink | undefined);
  if (direct) return direct;
  const service = linkPath(root.SessionService as ODataLink | undefined);
  return service ? `${service.replace(/\/$/, "")}/Sessions` : undefined;
}

function toResponse(raw: RawResponse): RedfishResponse {
  const headerValue = (name: string): string | undefined => {
    const value = raw.headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
  const body = raw.body;
  const bodyEtag = asRecord(body)?.["@odata.etag"];
  const allow = headerValue("allow");
  return {
    status: raw.status,
    body,
    etag:
      normaliseEtag(headerValue("etag")) ?? (typeof bodyEtag === "string" ? bodyEtag : undefined),
    location: headerValue("location"),
    allow: allow ? allow.split(",").map(method => method.trim().toUpperCase()) : undefined,
    headers: raw.headers,
  };
}

/** Some BMCs double-quote the ETag header (`""abc""`); If-Match must echo a single quoting. */
function normaliseEtag(etag: string | undefined): string | undefined {
  if (!etag) return undefined;
  const trimmed = etag.trim();
  return trimmed.replace(/^(W\/)?""(.*)""$/, '$1"$2"');
}

function isWeak(etag: string): boolean {
  return etag.startsWith("W/");
}

/** Order of If-Match values to try after a failure; undefined means "send none". */
function etagCandidates(
  fresh: string | undefined,
  previous: string | undefined,
  required: boolean,
): (string | undefined)[] {
  const candidates: (string | undefined)[] = [];
  const base = fresh ?? previous;
  if (base) {
    if (base !== previous || required) candidates.push(base);
    if (isWeak(base)) candidates.push(base.slice(2));
  }
  // Without a tag is a last resort, pointless where the BMC said a tag is required.
  if (!required) candidates.push(undefined);
  return candidates;
}

function taskMonitorFromBody(body: unknown): string | undefined {
  const record = asRecord(body);
  const monitor = record?.TaskMonitor;
  if (typeof monitor === "string") return monitor;
  const link = linkPath(monitor as ODataLink | undefined);
  return link;
}

function taskResult(body: Record<string, unknown> | undefined): TaskResult {
  const messages = Array.isArray(body?.Messages) ? body.Messages : [];
  return {
    taskState: typeof body?.TaskState === "string" ? body.TaskState : undefined,
    taskStatus: typeof body?.TaskStatus === "string" ? body.TaskStatus : undefined,
    messages: messages.map(message => {
      const entry = asRecord(message) ?? {};
      return {
        messageId: typeof entry.MessageId === "string" ? entry.MessageId : undefined,
        message: typeof entry.Message === "string" ? entry.Message : undefined,
      };
    }),
    body,
  };
}

function describeMessages(messages: { messageId?: string; message?: string }[]): string {
  const first = messages.find(message => message.message || message.messageId);
  return first ? `: ${first.message ?? ""} [${first.messageId ?? "no MessageId"}]` : "";
}

const UNSUPPORTED_IDS = ["ActionNotSupported", "UnsupportedOperation", "OperationNotAllowed"];

/** Maps a non-2xx response to the error taxonomy, with the BMC's messages attached. */
function errorFromResponse(
  raw: RawResponse,
  method: string,
  path: string,
  secrets: string[],
  context: WriteContext,
): RedfishError {
  const status = raw.status;
  const cleanPath = toRedfishPath(path);
  const extendedInfo = parseExtendedInfo(raw.body).map(info => scrubInfo(info, secrets));
  const summary = summarise(extendedInfo);
  const details: RedfishErrorDetails = { status, method, path: cleanPath, extendedInfo };
  const message = redactSecrets(
    `${method} ${cleanPath} failed with HTTP ${status}${summary}`,
    secrets,
  );
  if (status === 401 || status === 403) {
    return new BmcAuthenticationError(
      `${method} ${cleanPath}: the BMC refused the credentials (HTTP ${status})${summary}`,
      details,
    );
  }
  if (status === 404) return new ResourceNotFoundError(message, details);
  if (status === 405 || status === 501) return new UnsupportedOperationError(message, details);
  const unsupported = extendedInfo.some(info =>
    UNSUPPORTED_IDS.some(id => info.messageId?.includes(id)),
  );
  if (status < 500 && unsupported) return new UnsupportedOperationError(message, details);
  const probe =
    status >= 500 ? new BmcServerError(message, details) : new BmcRejectedError(message, details);
  // 4xx are final unless a quirk names them transient; 5xx are assumed transient.
  if (status < 500 && isTransientWriteError(probe, context)) {
    return new BmcRejectedError(message, { ...details, retryable: true });
  }
  return probe;
}

function summarise(infos: ExtendedInfo[]): string {
  const first = infos[0];
  if (!first) return "";
  const id = first.messageId ? ` [${first.messageId}]` : "";
  return `: ${first.message ?? "no message"}${id}`;
}

function scrubInfo(info: ExtendedInfo, secrets: string[]): ExtendedInfo {
  return {
    ...info,
    message: info.message === undefined ? undefined : redactSecrets(info.message, secrets),
    resolution: info.resolution === undefined ? undefined : redactSecrets(info.resolution, secrets),
    messageArgs: info.messageArgs?.map(arg => redactSecrets(arg, secrets)),
  };
}

function scrub(error: RedfishError, secrets: string[]): RedfishError {
  const clean = redactSecrets(error.message, secrets);
  if (clean === error.message) return error;
  Object.defineProperty(error, "message", { value: clean });
  return error;
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function isExpandRefusal(error: unknown): boolean {
  return error instanceof RedfishError && EXPAND_REFUSED.includes(error.status ?? 0);
}

function memberCount(collection: unknown): number {
  const members = asRecord(collection)?.Members;
  return Array.isArray(members) ? members.length : 0;
}

/** The Members of a collection body that are objects (links or expanded resources). */
function membersOf(collection: unknown): Record<string, unknown>[] {
  const members = asRecord(collection)?.Members;
  return Array.isArray(members) ? members.map(asRecord).filter(isDefined) : [];
}

function isDefined<T>(value: T | undefined): value is T {
  return value !== undefined;
}

function lastSegment(path: string): string {
  const parts = path.split("/").filter(part => part.length > 0);
  return decodeURIComponent(parts[parts.length - 1] ?? path);
}

export function sleep(ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms));
}
