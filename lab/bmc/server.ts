// A stateful test BMC: serves a captured Redfish tree over HTTPS (or HTTP), keeps in memory what
// actions change (power, boot override, virtual media, BIOS settings, sessions), reproduces the
// vendor behaviours of REDFISH-QUIRKS.md chosen by a VendorProfile, and lets tests inject faults
// and count requests. Captures are shared read-only between instances (MockupStore); an instance
// only holds copies of the resources it has changed, so hundreds fit in one process.
import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import https from "node:https";
import type { Socket } from "node:net";

import { errorBody, hpeSuccessBody, type Message, messages } from "./errors";
import {
  expandBody,
  type ExpandFeatures,
  expandFeaturesOf,
  type ExpandRequest,
  parseExpand,
} from "./expand";
import {
  dig,
  isObject,
  type Json,
  type JsonObject,
  MockupStore,
  normalisePath,
  stringArray,
} from "./mockup-store";
import { MediaFetcher, type MediaFetchOptions } from "./media-fetch";
import { deriveProfile, type ProfileOverrides, type VendorProfile } from "./profile";
import { generateTls, sharedTls, type TlsMaterial } from "./tls";
import { type SlotInfo, type SystemInfo, type Topology, topologyOf } from "./topology";

export interface TestBmcOptions {
  /** Mockup folder name under lab/captures/redfish-mockups, or a path to one. */
  mockup: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Serve HTTPS with a per-instance certificate (default), a process-wide one, given material, or plain HTTP (false). */
  tls?: boolean | "shared" | TlsMaterial;
  username?: string;
  password?: string;
  profile?: ProfileOverrides;
  /** Delay added before every response, in ms. */
  latencyMs?: number;
  /** Power state of every system at start (default: as captured). */
  powerState?: "On" | "Off";
  /**
   * The SMBIOS UUID and serial number every system reports (default: as captured), so several
   * BMCs over one capture look like different servers (e.g. to match workload Nodes by UUID).
   */
  identity?: { uuid?: string; serialNumber?: string };
  /**
   * What the service root advertises as ProtocolFeaturesSupported.ExpandQuery, and so which
   * `$expand` requests are honoured (default: as captured). `false` removes it: `$expand` → 501.
   */
  expandQuery?: ExpandFeatures | false;
  /**
   * Fetch every inserted image over HTTP(S) as a real BMC does (media-fetch.ts): Range requests
   * for the first 64 KiB and a few more, recorded in `mediaFetcher`. Off by default.
   */
  fetchInsertedMedia?: MediaFetchOptions;
  /**
   * A real machine behind the BMC (lab/vm's QEMU backend): power and boot actions drive it, the
   * Redfish state stays this BMC's. Without it the systems are simulated only.
   */
  machine?: MachineBackend;
  /** Every virtual media slot starts empty (a capture's "inserted" images exist nowhere). */
  emptyMedia?: boolean;
}

/** What a power or boot action does to a real machine behind the test BMC. */
export interface MachineBackend {
  /** The system powers on or restarts: it boots from what is inserted, as the override says. */
  boot(event: MachineBootEvent): void;
  /** The system powers off (ForceOff, GracefulShutdown, the power button). */
  powerOff(system: string): void;
}

export interface MachineBootEvent {
  system: string;
  /** The SMBIOS UUID the system reports. */
  uuid: string | undefined;
  /** This boot: the override target in force and the medium it names. */
  record: BootRecord;
  /** Every inserted medium, with its slot's media types. */
  media: Array<{ slot: string; image: string; mediaTypes: string[] }>;
  /** The machine turned itself off: the BMC reports PowerState Off from now on. */
  poweredOff(): void;
}

export interface RequestMatch {
  method?: string;
  /** Exact normalised path or a pattern tested against it. */
  path?: string | RegExp;
}

export type Fault =
  | {
      kind: "status";
      status: number;
      count?: number;
      match?: RequestMatch;
      retryAfterSeconds?: number;
      /** Error body to send instead of ServiceTemporarilyUnavailable (see errorBody()). */
      body?: JsonObject;
    }
  | { kind: "drop"; count?: number; match?: RequestMatch }
  | { kind: "hang"; count?: number; match?: RequestMatch };

export type BmcAction = { at: number } & (
  | { kind: "reset"; system: string; resetType: string }
  | { kind: "manager-reset"; manager: string; resetType: string }
  | {
      kind: "insert";
      slot: string;
      image: string;
      via: "action" | "patch" | "oem";
      params: JsonObject;
    }
  | { kind: "eject"; slot: string; via: "action" | "patch" | "oem" }
  | { kind: "boot"; system: string; patch: JsonObject; via: "system" | "settings" }
  | { kind: "bios"; uri: string; attributes: JsonObject }
  | { kind: "session-create"; id: string }
  | { kind: "session-delete"; id: string }
  | { kind: "update"; image: string }
);

type ActionKindName = BmcAction["kind"];
/** An action as recorded, before its timestamp (Omit distributed over the union). */
type ActionInput = BmcAction extends infer A
  ? A extends BmcAction
    ? Omit<A, "at">
    : never
  : never;
export type ActionOf<K extends ActionKindName> = Extract<BmcAction, { kind: K }>;

export interface BootRecord {
  system: string;
  at: number;
  /** Override target in force at boot, or undefined when the override was Disabled. */
  target?: string;
  mode?: string;
  /** The image the machine booted from, when it booted virtual media or an HTTP URI. */
  media?: string;
}

export interface SlotState {
  uri: string;
  inserted: boolean;
  image: string | null;
  writeProtected: boolean | null;
  transferProtocolType: string | null;
}

interface RequestLogEntry {
  method: string;
  path: string;
  /** The query string as sent (e.g. `$expand=.($levels=1)`), when there was one. */
  query?: string;
  status: number;
}

/** Request counts for asserting what an operation cost. */
export class RequestCounter {
  total = 0;
  private readonly byKey = new Map<string, number>();
  /** The most recent requests (bounded, for failure messages). */
  readonly recent: RequestLogEntry[] = [];

  record(method: string, path: string): void {
    this.total++;
    const key = `${method} ${path}`;
    this.byKey.set(key, (this.byKey.get(key) ?? 0) + 1);
  }

  logStatus(entry: RequestLogEntry): void {
    this.recent.push(entry);
    if (this.recent.length > 200) this.recent.shift();
  }

  /** Requests matching a method and/or path (exact or pattern). */
  count(match: RequestMatch = {}): number {
    let n = 0;
    for (const [key, value] of this.byKey) {
      const space = key.indexOf(" ");
      if (matches(match, key.slice(0, space), key.slice(space + 1))) n += value;
    }
    return n;
  }

  /** "METHOD /path" → count. */
  snapshot(): Record<string, number> {
    return Object.fromEntries(this.byKey);
  }

  reset(): void {
    this.total = 0;
    this.byKey.clear();
    this.recent.length = 0;
  }
}

function matches(match: RequestMatch | undefined, method: string, path: string): boolean {
  if (!match) return true;
  if (match.method && match.method.toUpperCase() !== method) return false;
  if (match.path instanceof RegExp) return match.path.test(path);
  if (typeof match.path === "string") return normalisePath(match.path) === path;
  return true;
}

interface Session {
  id: string;
  token: string;
  uri: string;
  user: string;
  lastUsed: number;
}

interface Task {
  uri: string;
  pollsLeft: number;
  body: JsonObject;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: JsonObject | undefined,
    readonly headers: Record<string, string> = {},
  ) {
    super(`HTTP ${status}`);
  }
}

const readOnlyBootKeys = new Set(["BootOptions", "Certificates", "AliasBootOrder"]);
const vmPatchKeys = new Set([
  "Image",
  "Inserted",
  "WriteProtected",
  "TransferProtocolType",
  "TransferMethod",
  "UserName",
  "Password",
]);
const insertParams = [...vmPatchKeys, "MediaType"];
const transferProtocols = ["CIFS", "FTP", "SFTP", "HTTP", "HTTPS", "NFS", "SCP", "TFTP", "OEM"];

const sleep = (ms: number) => new Promise<void>(resolve => setTimeout(resolve, ms));

export class TestBmc {
  readonly store: MockupStore;
  readonly profile: VendorProfile;
  readonly username: string;
  readonly password: string;
  readonly requests = new RequestCounter();
  /**
   * The most systems that had requests in flight at one moment: two hosts behind one BMC whose
   * work a client serialises (one reconcile per BMC) never make this more than 1.
   */
  maxConcurrentSystems = 0;
  readonly #inFlightBySystem = new Map<string, number>();
  readonly actions: BmcAction[] = [];
  /** The most sessions open at one moment, and logins refused at maxSessions (load tests). */
  peakSessions = 0;
  refusedLogins = 0;
  readonly boots: BootRecord[] = [];
  /** Delay added before every response (ms); change at any time. */
  latencyMs: number;
  /** PEM of the serving certificate (its own CA); undefined for plain HTTP. */
  readonly caPem: string | undefined;

  private readonly topology: Topology;
  private readonly tlsMaterial: TlsMaterial | undefined;
  private server: http.Server | undefined;
  private connectionCount = 0;
  private portNumber: number;
  private readonly sockets = new Set<Socket>();
  private faults: (Fault & { remaining: number })[] = [];
  private readonly nonce = randomBytes(4).toString("hex");

  // Copy-on-write state: only resources this instance changed are held here.
  private readonly overlay = new Map<string, JsonObject>();
  private readonly versions = new Map<string, number>();
  private readonly sessions = new Map<string, Session>();
  private readonly postUntil = new Map<string, number>();
  private readonly ejectShadow = new Map<string, { until: number; shown: JsonObject }>();
  private readonly pendingSystem = new Map<string, JsonObject>();
  private readonly pendingBios = new Map<string, JsonObject>();
  private readonly tasks = new Map<string, Task>();
  private sessionCounter = 0;
  /** The service root as served when `expandQuery` changes what the capture advertises. */
  private readonly rootText: string | undefined;
  /** Set with the fetchInsertedMedia option: the images this BMC fetched on insert. */
  readonly mediaFetcher: MediaFetcher | undefined;
  private readonly machine: MachineBackend | undefined;

  private constructor(options: TestBmcOptions) {
    this.store = MockupStore.for(options.mockup);
    this.profile = deriveProfile(this.store, options.profile);
    this.topology = topologyOf(this.store);
    this.username = options.username ?? "admin";
    this.password = options.password ?? "test-bmc-password";
    this.latencyMs = options.latencyMs ?? 0;
    this.portNumber = options.port ?? 0;
    this.mediaFetcher = options.fetchInsertedMedia
      ? new MediaFetcher(options.fetchInsertedMedia)
      : undefined;
    this.machine = options.machine;
    const tls = options.tls ?? true;
    this.tlsMaterial =
      tls === false
        ? undefined
        : tls === true
          ? generateTls()
          : tls === "shared"
            ? sharedTls()
            : tls;
    this.caPem = this.tlsMaterial?.certPem;
    if (options.expandQuery !== undefined) {
      const root = structuredClone(this.store.json("/redfish/v1") ?? {});
      const features = isObject(root.ProtocolFeaturesSupported)
        ? root.ProtocolFeaturesSupported
        : (root.ProtocolFeaturesSupported = {});
      if (options.expandQuery === false) delete features.ExpandQuery;
      else features.ExpandQuery = { ...options.expandQuery };
      this.rootText = JSON.stringify(root);
    }
    if (options.powerState) {
      for (const system of this.topology.systems.keys())
        this.writePower(system, options.powerState);
    }
    if (options.emptyMedia) {
      for (const slot of this.topology.slots.values()) {
        if (this.current(slot.uri)?.Inserted === true) this.emptySlot(slot);
      }
    }
    if (options.identity) {
      for (const system of this.topology.systems.keys()) {
        const body = this.mutable(system);
        if (options.identity.uuid) body.UUID = options.identity.uuid;
        if (options.identity.serialNumber) body.SerialNumber = options.identity.serialNumber;
      }
    }
  }

  static async start(options: TestBmcOptions): Promise<TestBmc> {
    const bmc = new TestBmc(options);
    await bmc.up();
    return bmc;
  }

  get port(): number {
    return this.portNumber;
  }

  get url(): string {
    return `${this.tlsMaterial ? "https" : "http"}://127.0.0.1:${this.portNumber}`;
  }

  get isUp(): boolean {
    return this.server !== undefined;
  }

  /** Starts (or restarts, on the same port) accepting connections. */
  async up(): Promise<void> {
    if (this.server) return;
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
      this.handle(req, res).catch(err => {
        if (!res.headersSent) {
          res.statusCode = 500;
          res.end(String(err));
        }
      });
    };
    const server = this.tlsMaterial
      ? https.createServer(
          { key: this.tlsMaterial.keyPem, cert: this.tlsMaterial.certPem },
          handler,
        )
      : http.createServer(handler);
    server.on("connection", socket => {
      this.connectionCount++;
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
    // A client that gives up mid-TLS-handshake must not crash the process.
    server.on("tlsClientError", () => undefined);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.portNumber, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    const address = server.address();
    if (address && typeof address === "object") this.portNumber = address.port;
    this.server = server;
  }

  /** Stops accepting connections and cuts open ones (the BMC "goes away"); state is kept. */
  async down(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>(resolve => server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    await closed;
  }

  async stop(): Promise<void> {
    await this.down();
  }

  // ---------------------------------------------------------------- faults

  /** Adds a fault for the next `count` (default 1) matching requests. */
  inject(fault: Fault): void {
    this.faults.push({ ...fault, remaining: fault.count ?? 1 });
  }

  clearFaults(): void {
    this.faults = [];
  }

  /** Invalidates every session token: the next request with one gets 401. */
  expireSessions(): void {
    this.sessions.clear();
  }

  // ---------------------------------------------------------------- state for assertions

  get systems(): string[] {
    return [...this.topology.systems.keys()];
  }

  private system(uri?: string): SystemInfo {
    const info = uri
      ? this.topology.systems.get(normalisePath(uri))
      : this.topology.systems.values().next().value;
    if (!info) throw new Error(`no system ${uri ?? ""} in ${this.store.name}`);
    return info;
  }

  powerState(system?: string): string | undefined {
    const state = dig(this.current(this.system(system).uri), "PowerState");
    return typeof state === "string" ? state : undefined;
  }

  /** Sets the power state directly (test setup), without recording an action. */
  setPowerState(state: "On" | "Off", system?: string): void {
    this.writePower(this.system(system).uri, state);
  }

  bootOverride(system?: string): JsonObject {
    const boot = dig(this.current(this.system(system).uri), "Boot");
    return isObject(boot) ? boot : {};
  }

  /** Actual slot states (what the BMC has mounted, whatever a lagging GET still shows). */
  virtualMedia(system?: string): SlotState[] {
    const slots = system ? this.system(system).slots : [...this.topology.slots.keys()];
    return slots.map(uri => {
      const body = this.current(uri) ?? {};
      const image = dig(body, "Image");
      const ejectedButShown = this.profile.supermicroLegacyVirtualMedia && !dig(body, "Inserted");
      return {
        uri,
        inserted: dig(body, "Inserted") === true,
        image: typeof image === "string" && image !== "" && !ejectedButShown ? image : null,
        writeProtected:
          typeof dig(body, "WriteProtected") === "boolean"
            ? (dig(body, "WriteProtected") as boolean)
            : null,
        transferProtocolType:
          typeof dig(body, "TransferProtocolType") === "string"
            ? (dig(body, "TransferProtocolType") as string)
            : null,
      };
    });
  }

  insertedMedia(system?: string): SlotState[] {
    return this.virtualMedia(system).filter(s => s.inserted);
  }

  /** BIOS attributes staged in the settings object and not yet applied by a reboot. */
  biosPending(system?: string): JsonObject {
    const info = this.system(system);
    return { ...(info.biosSettingsUri ? (this.pendingBios.get(info.biosSettingsUri) ?? {}) : {}) };
  }

  biosAttributes(system?: string): JsonObject {
    const info = this.system(system);
    const attrs = info.biosUri ? dig(this.current(info.biosUri), "Attributes") : undefined;
    return isObject(attrs) ? attrs : {};
  }

  /** TCP connections clients hold open to this BMC now. */
  get openConnections(): number {
    return this.sockets.size;
  }

  /** TCP connections accepted since the start (each a TLS handshake over HTTPS). */
  get connectionsAccepted(): number {
    return this.connectionCount;
  }

  get activeSessions(): number {
    return this.sessions.size;
  }

  get lastBoot(): BootRecord | undefined {
    return this.boots[this.boots.length - 1];
  }

  actionsOf<K extends ActionKindName>(kind: K): ActionOf<K>[] {
    return this.actions.filter((a): a is ActionOf<K> => a.kind === kind);
  }

  /** The ETag the BMC currently issues for a resource. */
  etag(uri: string): string {
    return this.etagOf(normalisePath(uri));
  }

  // ---------------------------------------------------------------- resource state

  private current(key: string): JsonObject | undefined {
    return this.overlay.get(key) ?? this.store.json(key);
  }

  private mutable(key: string): JsonObject {
    let body = this.overlay.get(key);
    if (!body) {
      const base = this.store.json(key);
      if (!base) throw new HttpError(404, this.error([messages.resourceNotFound(key)]));
      body = structuredClone(base);
      this.overlay.set(key, body);
    }
    return body;
  }

  private bump(key: string): void {
    this.versions.set(key, (this.versions.get(key) ?? 0) + 1);
    const body = this.overlay.get(key);
    if (body && "@odata.etag" in body) body["@odata.etag"] = this.etagOf(key);
  }

  private etagOf(key: string): string {
    const version = this.versions.get(key) ?? 0;
    const captured = dig(this.store.json(key), "@odata.etag");
    if (version === 0 && typeof captured === "string") return captured;
    const hash = createHash("sha1")
      .update(`${this.store.dir}|${key}|${version}|${version === 0 ? "" : this.nonce}`)
      .digest("hex");
    return this.profile.etag === "weak"
      ? `W/"${hash.slice(0, 8).toUpperCase()}"`
      : `"${hash.slice(0, 22)}"`;
  }

  private writePower(system: string, state: string): void {
    const body = this.mutable(system);
    if (body.PowerState !== state) {
      body.PowerState = state;
      this.bump(system);
    }
    for (const chassis of this.system(system).chassis) {
      const c = this.current(chassis);
      if (c && "PowerState" in c && c.PowerState !== state) {
        this.mutable(chassis).PowerState = state;
        this.bump(chassis);
      }
    }
  }

  private record(action: ActionInput): void {
    this.actions.push({ ...action, at: Date.now() } as BmcAction);
  }

  /** An error body in this BMC's vendor shape, e.g. for a status fault. */
  errorBody(...list: Message[]): JsonObject {
    return this.error(list);
  }

  private error(list: Message[]): JsonObject {
    return errorBody(this.profile, list);
  }

  private fail(status: number, ...list: Message[]): never {
    throw new HttpError(status, this.error(list));
  }

  // ---------------------------------------------------------------- request handling

  /** Counts the request against its system (a path below /Systems/<id>) until it is answered. */
  #trackSystem(path: string, res: http.ServerResponse): void {
    const system = /^\/redfish\/v1\/Systems\/([^/]+)/.exec(path)?.[1];
    if (!system) return;
    this.#inFlightBySystem.set(system, (this.#inFlightBySystem.get(system) ?? 0) + 1);
    this.maxConcurrentSystems = Math.max(this.maxConcurrentSystems, this.#inFlightBySystem.size);
    res.once("close", () => {
      const n = (this.#inFlightBySystem.get(system) ?? 1) - 1;
      if (n <= 0) this.#inFlightBySystem.delete(system);
      else this.#inFlightBySystem.set(system, n);
    });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = (req.method ?? "GET").toUpperCase();
    const path = normalisePath(req.url ?? "/");
    const query = queryOf(req.url ?? "");
    // A request counts once, whatever its query expands.
    this.requests.record(method, path);
    this.#trackSystem(path, res);
    res.on("finish", () =>
      this.requests.logStatus({
        method,
        path,
        status: res.statusCode,
        ...(query ? { query } : {}),
      }),
    );

    const fault = this.faults.find(f => f.remaining > 0 && matches(f.match, method, path));
    if (fault) {
      fault.remaining--;
      this.faults = this.faults.filter(f => f.remaining > 0);
      if (fault.kind === "drop") {
        req.socket.destroy();
        return;
      }
      if (fault.kind === "hang") return; // never answered; down()/stop() cut the socket
      if (this.latencyMs > 0) await sleep(this.latencyMs);
      const headers: Record<string, string> = {};
      if (fault.retryAfterSeconds !== undefined)
        headers["Retry-After"] = String(fault.retryAfterSeconds);
      const seconds = fault.retryAfterSeconds ?? 1;
      const body = fault.body ?? this.error([messages.serviceTemporarilyUnavailable(seconds)]);
      this.send(res, fault.status, body, headers);
      return;
    }

    const raw = await readBody(req);
    if (this.latencyMs > 0) await sleep(this.latencyMs);
    if (!this.server) {
      // Went down while this request waited.
      req.socket.destroy();
      return;
    }
    try {
      await this.route(method, path, req, raw, res);
    } catch (err) {
      if (err instanceof HttpError) {
        this.send(res, err.status, err.body, err.headers);
      } else {
        this.send(
          res,
          500,
          this.error([{ id: "InternalError", message: String(err), severity: "Critical" }]),
        );
      }
    }
  }

  private send(
    res: http.ServerResponse,
    status: number,
    body?: JsonObject | string,
    headers: Record<string, string> = {},
  ): void {
    if (res.headersSent || res.destroyed) return;
    res.statusCode = status;
    res.setHeader("OData-Version", "4.0");
    res.setHeader("Cache-Control", "no-cache");
    for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
    if (body === undefined || status === 204) {
      res.end();
      return;
    }
    const text = typeof body === "string" ? body : JSON.stringify(body);
    res.setHeader("Content-Type", "application/json; charset=utf-8");
    res.setHeader("Content-Length", Buffer.byteLength(text));
    res.end(res.req.method === "HEAD" ? undefined : text);
  }

  private async route(
    method: string,
    path: string,
    req: http.IncomingMessage,
    raw: Buffer,
    res: http.ServerResponse,
  ): Promise<void> {
    const expand = expandParameter(req.url ?? "");
    // The service root, the version document and OData documents are readable without auth
    // (expanding the root inlines protected resources, so that needs auth like they do).
    if (method === "GET" || method === "HEAD") {
      if (path === "/redfish") return this.send(res, 200, { v1: "/redfish/v1/" });
      if (
        expand === undefined &&
        (path === "/redfish/v1" || path === "/redfish/v1/odata" || path === "/redfish/v1/$metadata")
      ) {
        return this.sendResource(res, path);
      }
    }
    if (method === "POST" && path === this.topology.sessionsUri) {
      return this.createSession(req, raw, res);
    }
    this.authenticate(req);

    switch (method) {
      case "GET":
      case "HEAD":
        return this.sendResource(res, path, expand === undefined ? undefined : this.expand(expand));
      case "PATCH":
        return this.patch(path, req, raw, res);
      case "POST":
        return this.post(path, req, raw, res);
      case "DELETE":
        return this.delete(path, res);
      default:
        this.fail(405, messages.methodNotAllowed(method, path));
    }
  }

  private authenticate(req: http.IncomingMessage): void {
    const token = req.headers["x-auth-token"];
    if (typeof token === "string" && token !== "") {
      const session = this.sessions.get(token);
      if (session && Date.now() - session.lastUsed <= this.profile.sessionTimeoutMs) {
        session.lastUsed = Date.now();
        return;
      }
      if (session) this.sessions.delete(token);
      this.unauthorized();
    }
    const auth = req.headers.authorization;
    if (auth?.startsWith("Basic ")) {
      const decoded = Buffer.from(auth.slice(6), "base64").toString("utf8");
      const colon = decoded.indexOf(":");
      if (decoded.slice(0, colon) === this.username && decoded.slice(colon + 1) === this.password)
        return;
    }
    this.unauthorized();
  }

  private unauthorized(): never {
    throw new HttpError(401, this.error([messages.noValidSession()]), {
      "WWW-Authenticate": 'Basic realm="Redfish"',
    });
  }

  private parseJson(req: http.IncomingMessage, raw: Buffer): JsonObject {
    if (raw.length === 0) return {};
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw.toString("utf8"));
    } catch {
      this.fail(400, messages.malformedJson());
    }
    if (!isObject(parsed as Json)) this.fail(400, messages.malformedJson());
    void req;
    return parsed as JsonObject;
  }

  // ---------------------------------------------------------------- GET

  /** The `$expand` request, validated against what the served root advertises. */
  private expand(value: string): ExpandRequest {
    const root = this.render("/redfish/v1");
    const parsed = parseExpand(
      value,
      expandFeaturesOf(root ? (JSON.parse(root.text) as JsonObject) : undefined),
    );
    if (!parsed.ok) this.fail(parsed.status, parsed.message);
    return parsed.request;
  }

  private sendResource(res: http.ServerResponse, path: string, expand?: ExpandRequest): void {
    const task = this.tasks.get(path);
    if (task) {
      // A task monitor answers 202 until the task is done, then the finished Task.
      if (task.pollsLeft > 0) {
        task.pollsLeft--;
        return this.send(res, 202, task.body, { Location: task.uri });
      }
      task.body.TaskState = "Completed";
      task.body.PercentComplete = 100;
      return this.send(res, 200, task.body);
    }
    const rendered = this.render(path);
    if (!rendered) this.fail(404, messages.resourceNotFound(path));
    const headers: Record<string, string> = { ETag: rendered.etag };
    const allow = this.allowFor(path);
    if (allow) headers.Allow = allow;
    const body = expand
      ? JSON.stringify(
          expandBody(JSON.parse(rendered.text) as JsonObject, expand, path, target => {
            const linked = this.render(target);
            return linked ? (JSON.parse(linked.text) as JsonObject) : undefined;
          }),
        )
      : rendered.text;
    this.send(res, 200, body, headers);
  }

  private render(key: string): { text: string; etag: string } | undefined {
    if (key === "/redfish/v1" && this.rootText)
      return { text: this.rootText, etag: this.etagOf(key) };
    if (key === this.topology.sessionsUri) return this.renderSessions();
    if (key.startsWith(this.topology.sessionsUri + "/")) {
      const session = [...this.sessions.values()].find(s => s.uri === key);
      if (!session) return undefined;
      return { text: JSON.stringify(this.sessionBody(session)), etag: this.etagOf(key) };
    }
    const overlay = this.overlay.get(key);
    const base = this.store.get(key);
    if (!overlay && !base) return undefined;
    let body: JsonObject = overlay ?? (base as { json: JsonObject }).json;
    let changed = overlay !== undefined;

    const slot = this.topology.slots.get(key);
    if (slot) {
      const shadow = this.ejectShadow.get(key);
      if (shadow && Date.now() < shadow.until) {
        body = shadow.shown;
        changed = true;
      } else if (
        this.profile.ejectActionOnlyWhenInserted &&
        slot.syntheticEject &&
        body.Inserted === true
      ) {
        body = structuredClone(body);
        const actions = isObject(body.Actions) ? body.Actions : (body.Actions = {});
        actions["#VirtualMedia.EjectMedia"] = { target: slot.ejectTarget ?? "" };
        changed = true;
      }
      if (this.profile.amiVirtualMedia) {
        // AMI MegaRAC: no MediaTypes, "virtual <Id>" names, Image "None" for an empty slot.
        body = structuredClone(body);
        delete body.MediaTypes;
        if (typeof body.Id === "string") body.Name = `virtual ${body.Id}`;
        if (body.Inserted !== true || typeof body.Image !== "string" || body.Image === "") {
          body.Image = "None";
        }
        changed = true;
      }
    }
    const pendingSys = this.pendingSystem.get(key);
    if (pendingSys) {
      body = structuredClone(body);
      body.Boot = { ...(isObject(body.Boot) ? body.Boot : {}), ...pendingSys };
      changed = true;
    }
    const pendingBios = this.pendingBios.get(key);
    if (pendingBios) {
      body = structuredClone(body);
      body.Attributes = { ...(isObject(body.Attributes) ? body.Attributes : {}), ...pendingBios };
      changed = true;
    }
    const etag = this.etagOf(key);
    if (!changed && base) return { text: base.text, etag };
    return { text: JSON.stringify(body), etag };
  }

  private allowFor(key: string): string | undefined {
    if (key === this.topology.sessionsUri) return "GET, HEAD, POST";
    if (key.startsWith(this.topology.sessionsUri + "/")) return "GET, HEAD, DELETE";
    if (this.topology.systems.has(key) || this.topology.systemSettings.has(key))
      return "GET, HEAD, PATCH";
    if (this.topology.biosSettings.has(key)) return "GET, HEAD, PATCH";
    const slot = this.topology.slots.get(key);
    if (slot) return slot.insertTarget ? "GET, HEAD" : "GET, HEAD, PATCH";
    return "GET, HEAD";
  }

  // ---------------------------------------------------------------- sessions

  private renderSessions(): { text: string; etag: string } {
    const key = this.topology.sessionsUri;
    const base = this.store.json(key) ?? {
      "@odata.id": key,
      "@odata.type": "#SessionCollection.SessionCollection",
      Name: "Session Collection",
    };
    const body: JsonObject = {
      ...base,
      Members: [...this.sessions.values()].map(s => ({ "@odata.id": s.uri })),
      "Members@odata.count": this.sessions.size,
    };
    return { text: JSON.stringify(body), etag: this.etagOf(key) };
  }

  private sessionBody(session: Session): JsonObject {
    return {
      "@odata.id": session.uri,
      "@odata.type": "#Session.v1_3_0.Session",
      Id: session.id,
      Name: "User Session",
      UserName: session.user,
    };
  }

  private createSession(req: http.IncomingMessage, raw: Buffer, res: http.ServerResponse): void {
    const body = this.parseJson(req, raw);
    const user = body.UserName;
    const password = body.Password;
    if (typeof user !== "string") this.fail(400, messages.propertyMissing("UserName"));
    if (typeof password !== "string") this.fail(400, messages.propertyMissing("Password"));
    if (user !== this.username || password !== this.password) {
      throw new HttpError(401, this.error([messages.noValidSession()]));
    }
    const now = Date.now();
    for (const [token, s] of this.sessions) {
      if (now - s.lastUsed > this.profile.sessionTimeoutMs) this.sessions.delete(token);
    }
    if (this.sessions.size >= this.profile.maxSessions) {
      this.refusedLogins++;
      this.fail(503, messages.sessionLimitExceeded());
    }
    const id = `${this.nonce}${(++this.sessionCounter).toString(16).padStart(8, "0")}`;
    const session: Session = {
      id,
      token: randomBytes(16).toString("hex"),
      uri: `${this.topology.sessionsUri}/${id}`,
      user,
      lastUsed: now,
    };
    this.sessions.set(session.token, session);
    this.peakSessions = Math.max(this.peakSessions, this.sessions.size);
    this.record({ kind: "session-create", id });
    const headers: Record<string, string> = { "X-Auth-Token": session.token };
    if (this.profile.sessionLocation === "relative") headers.Location = session.uri;
    if (this.profile.sessionLocation === "absolute") headers.Location = `${this.url}${session.uri}`;
    this.send(res, 201, this.sessionBody(session), headers);
  }

  private delete(path: string, res: http.ServerResponse): void {
    if (path.startsWith(this.topology.sessionsUri + "/")) {
      const entry = [...this.sessions.entries()].find(([, s]) => s.uri === path);
      if (!entry) this.fail(404, messages.resourceNotFound(path));
      this.sessions.delete(entry[0]);
      this.record({ kind: "session-delete", id: entry[1].id });
      return this.actionDone(res);
    }
    if (!this.render(path)) this.fail(404, messages.resourceNotFound(path));
    this.fail(405, messages.methodNotAllowed("DELETE", path));
  }

  private actionDone(res: http.ServerResponse): void {
    if (this.profile.actionSuccessBody) this.send(res, 200, hpeSuccessBody(this.profile));
    else this.send(res, 204);
  }

  // ---------------------------------------------------------------- PATCH

  private patch(
    path: string,
    req: http.IncomingMessage,
    raw: Buffer,
    res: http.ServerResponse,
  ): void {
    if (!this.render(path)) this.fail(404, messages.resourceNotFound(path));
    const system = this.topology.systems.get(path);
    const settingsOf = this.topology.systemSettings.get(path);
    const slot = this.topology.slots.get(path);
    const bios = this.topology.biosSettings.get(path);
    if (!system && !settingsOf && !bios && !(slot && !slot.insertTarget)) {
      throw new HttpError(405, this.error([messages.methodNotAllowed("PATCH", path)]), {
        Allow: this.allowFor(path) ?? "GET, HEAD",
      });
    }
    this.checkPreconditions(path, req);
    const body = this.parseJson(req, raw);
    if (system) this.patchSystem(system, body);
    else if (settingsOf) this.patchSystemSettings(path, settingsOf, body);
    else if (bios) this.patchBios(path, bios.bios, body);
    else if (slot) this.patchSlot(slot, body);
    this.actionDone(res);
  }

  private checkPreconditions(key: string, req: http.IncomingMessage): void {
    const ifMatch = req.headers["if-match"];
    if (ifMatch === undefined) {
      if (this.profile.requireIfMatch) this.fail(428, messages.preconditionRequired());
      return;
    }
    if (ifMatch.trim() === "*") return;
    const opaque = (tag: string) =>
      tag
        .trim()
        .replace(/^W\//, "")
        .replace(/^"+|"+$/g, "");
    const current = opaque(this.etagOf(key));
    const offered = ifMatch.split(",").map(opaque);
    if (!offered.includes(current)) this.fail(412, messages.preconditionFailed());
  }

  private validateBoot(
    boot: Json | undefined,
    reference: JsonObject,
    fallback: JsonObject,
    system: SystemInfo,
  ): JsonObject {
    if (!isObject(boot))
      this.fail(400, messages.propertyValueTypeError(JSON.stringify(boot), "Boot"));
    const until = this.postUntil.get(system.uri);
    if (until !== undefined && Date.now() < until) {
      const property = Object.keys(boot)[0] ?? "Boot";
      this.fail(400, messages.duringPost(property));
    }
    const allowable = (name: string, standard: string[]) =>
      stringArray(reference[`${name}@Redfish.AllowableValues`]) ??
      stringArray(fallback[`${name}@Redfish.AllowableValues`]) ??
      standard;
    const errors: Message[] = [];
    for (const [name, value] of Object.entries(boot)) {
      if (readOnlyBootKeys.has(name) || name.includes("@")) {
        errors.push(messages.propertyNotWritable(`Boot/${name}`));
        continue;
      }
      if (!(name in reference) && !(name in fallback)) {
        errors.push(messages.propertyUnknown(`Boot/${name}`));
        continue;
      }
      const enumerated: Record<string, string[]> = {
        BootSourceOverrideTarget: allowable("BootSourceOverrideTarget", []),
        BootSourceOverrideEnabled: allowable("BootSourceOverrideEnabled", [
          "Disabled",
          "Once",
          "Continuous",
        ]),
        BootSourceOverrideMode: allowable("BootSourceOverrideMode", ["Legacy", "UEFI"]),
      };
      const allowed = enumerated[name];
      if (allowed) {
        if (typeof value !== "string")
          errors.push(messages.propertyValueTypeError(JSON.stringify(value), name));
        else if (allowed.length > 0 && !allowed.includes(value))
          errors.push(messages.propertyValueNotInList(value, name));
        continue;
      }
      if (name === "UefiTargetBootSourceOverride") {
        const list = allowable(name, []);
        if (value !== null && typeof value !== "string")
          errors.push(messages.propertyValueTypeError(JSON.stringify(value), name));
        else if (
          typeof value === "string" &&
          list.length > 0 &&
          !list.includes(value) &&
          value !== "None"
        ) {
          errors.push(messages.propertyValueNotInList(value, name));
        }
        continue;
      }
      if (name === "HttpBootUri") {
        if (value !== null && typeof value !== "string")
          errors.push(messages.propertyValueTypeError(JSON.stringify(value), name));
        continue;
      }
      if (name === "BootOrder") {
        if (!Array.isArray(value) || value.some(v => typeof v !== "string")) {
          errors.push(messages.propertyValueTypeError(JSON.stringify(value), name));
        }
        continue;
      }
      const existing = reference[name] ?? fallback[name];
      if (
        existing !== null &&
        existing !== undefined &&
        value !== null &&
        typeof existing !== typeof value
      ) {
        errors.push(messages.propertyValueTypeError(JSON.stringify(value), name));
      }
    }
    if (this.profile.requireFullBootObject) {
      for (const name of [
        "BootSourceOverrideMode",
        "BootSourceOverrideEnabled",
        "BootSourceOverrideTarget",
      ]) {
        if (!(name in boot)) errors.push(messages.propertyMissing(`Boot/${name}`));
      }
    }
    if (
      this.profile.requireOverrideEnabledInBootPatch &&
      "BootSourceOverrideTarget" in boot &&
      !("BootSourceOverrideEnabled" in boot)
    ) {
      errors.push(messages.propertyMissing("Boot/BootSourceOverrideEnabled"));
    }
    if (this.profile.rejectOverrideEnabledWithTargetNone && "BootSourceOverrideEnabled" in boot) {
      const resulting =
        "BootSourceOverrideTarget" in boot
          ? boot.BootSourceOverrideTarget
          : reference.BootSourceOverrideTarget;
      if (resulting === "None") {
        errors.push(
          messages.propertyValueNotInList(
            String(boot.BootSourceOverrideEnabled),
            "BootSourceOverrideEnabled",
          ),
        );
      }
    }
    if (errors.length > 0) this.fail(400, ...errors);
    return boot;
  }

  private patchSystem(system: SystemInfo, body: JsonObject): void {
    const current = this.current(system.uri) ?? {};
    const writable = new Set(["Boot", "AssetTag", "IndicatorLED", "LocationIndicatorActive"]);
    const errors: Message[] = [];
    for (const name of Object.keys(body)) {
      if (!(name in current)) errors.push(messages.propertyUnknown(name));
      else if (!writable.has(name)) errors.push(messages.propertyNotWritable(name));
    }
    if (errors.length > 0) this.fail(400, ...errors);
    const currentBoot = isObject(current.Boot) ? current.Boot : {};
    const boot = "Boot" in body ? this.validateBoot(body.Boot, currentBoot, {}, system) : undefined;
    const target = this.mutable(system.uri);
    for (const [name, value] of Object.entries(body)) {
      if (name !== "Boot") target[name] = value;
    }
    if (boot) {
      target.Boot = { ...(isObject(target.Boot) ? target.Boot : {}), ...boot };
      this.record({ kind: "boot", system: system.uri, patch: boot, via: "system" });
    }
    this.bump(system.uri);
  }

  private patchSystemSettings(path: string, systemUri: string, body: JsonObject): void {
    const system = this.system(systemUri);
    const errors: Message[] = [];
    for (const name of Object.keys(body))
      if (name !== "Boot") errors.push(messages.propertyNotWritable(name));
    if (errors.length > 0) this.fail(400, ...errors);
    const settingsBoot = dig(this.store.json(path), "Boot");
    const systemBoot = dig(this.current(systemUri), "Boot");
    // A settings object takes only the properties it exposes (Lenovo's Pending: BootOrder alone;
    // REDFISH-QUIRKS.md "All / HTTP boot"); AllowableValues may still come from the system.
    const exposed = isObject(settingsBoot) ? settingsBoot : {};
    const unexposed = isObject(body.Boot)
      ? Object.keys(body.Boot).filter(k => !(k in exposed))
      : [];
    if (unexposed.length > 0)
      this.fail(400, ...unexposed.map(k => messages.propertyUnknown(`Boot/${k}`)));
    const boot = this.validateBoot(
      body.Boot,
      isObject(settingsBoot) ? settingsBoot : {},
      isObject(systemBoot) ? systemBoot : {},
      system,
    );
    this.pendingSystem.set(path, { ...(this.pendingSystem.get(path) ?? {}), ...boot });
    this.bump(path);
    this.record({ kind: "boot", system: systemUri, patch: boot, via: "settings" });
  }

  private patchBios(path: string, biosUri: string, body: JsonObject): void {
    const system = [...this.topology.systems.values()].find(s => s.biosUri === biosUri);
    const attributes = body.Attributes;
    const errors: Message[] = [];
    for (const name of Object.keys(body)) {
      if (name !== "Attributes" && name !== "@Redfish.SettingsApplyTime")
        errors.push(messages.propertyUnknown(name));
    }
    if (!isObject(attributes)) {
      errors.push(messages.propertyMissing("Attributes"));
      this.fail(400, ...errors);
    }
    const applyTime = dig(body, "@Redfish.SettingsApplyTime", "ApplyTime");
    if (
      applyTime !== undefined &&
      system?.biosApplyTimes &&
      !system.biosApplyTimes.includes(String(applyTime))
    ) {
      errors.push(messages.propertyValueNotInList(String(applyTime), "ApplyTime"));
    }
    const known = dig(this.current(biosUri), "Attributes");
    for (const [name, value] of Object.entries(attributes)) {
      const existing = isObject(known) ? known[name] : undefined;
      if (existing === undefined) errors.push(messages.propertyUnknown(`Attributes/${name}`));
      else if (existing !== null && value !== null && typeof existing !== typeof value) {
        errors.push(messages.propertyValueTypeError(JSON.stringify(value), `Attributes/${name}`));
      }
    }
    if (errors.length > 0) this.fail(400, ...errors);
    this.pendingBios.set(path, { ...(this.pendingBios.get(path) ?? {}), ...attributes });
    this.bump(path);
    this.record({ kind: "bios", uri: path, attributes });
  }

  private patchSlot(slot: SlotInfo, body: JsonObject): void {
    const errors: Message[] = [];
    const current = this.current(slot.uri) ?? {};
    for (const name of Object.keys(body)) {
      if (!vmPatchKeys.has(name) || !(name in current)) errors.push(messages.propertyUnknown(name));
    }
    if (errors.length > 0) this.fail(400, ...errors);
    const image = body.Image;
    if (typeof image === "string" && image !== "" && body.Inserted !== false) {
      this.insert(slot, body, "patch");
    } else if (image === null || image === "" || body.Inserted === false) {
      this.eject(slot, "patch");
    } else {
      const target = this.mutable(slot.uri);
      for (const [name, value] of Object.entries(body)) target[name] = value;
      this.bump(slot.uri);
    }
  }

  // ---------------------------------------------------------------- POST (actions)

  private post(
    path: string,
    req: http.IncomingMessage,
    raw: Buffer,
    res: http.ServerResponse,
  ): void {
    const action = this.topology.actions.get(path);
    if (!action) {
      if (this.render(path)) this.fail(405, messages.methodNotAllowed("POST", path));
      this.fail(404, messages.resourceNotFound(path));
    }
    const actionName = path.slice(path.lastIndexOf("/") + 1);
    switch (action.kind) {
      case "system-reset": {
        const body = this.parseJson(req, raw);
        const system = this.system(action.owner);
        const resetType = body.ResetType;
        if (resetType === undefined)
          this.fail(400, messages.actionParameterMissing(actionName, "ResetType"));
        if (typeof resetType !== "string" || !system.resetTypes.includes(resetType)) {
          this.fail(
            400,
            messages.actionParameterNotSupported(String(resetType), "ResetType", actionName),
          );
        }
        this.reset(system, resetType);
        return this.actionDone(res);
      }
      case "manager-reset": {
        const body = this.parseJson(req, raw);
        const manager = this.topology.managers.get(action.owner);
        const resetType = body.ResetType ?? manager?.resetTypes[0];
        if (typeof resetType !== "string" || !manager?.resetTypes.includes(resetType)) {
          this.fail(
            400,
            messages.actionParameterNotSupported(String(resetType), "ResetType", actionName),
          );
        }
        this.record({ kind: "manager-reset", manager: action.owner, resetType });
        return this.actionDone(res);
      }
      case "insert":
      case "oem-insert": {
        const slot = this.topology.slots.get(action.owner);
        if (!slot) this.fail(404, messages.resourceNotFound(path));
        const body = this.parseJson(req, raw);
        this.validateInsert(slot, actionName, body, action.kind === "oem-insert");
        this.insert(slot, body, action.kind === "oem-insert" ? "oem" : "action");
        return this.actionDone(res);
      }
      case "eject":
      case "oem-eject": {
        const slot = this.topology.slots.get(action.owner);
        if (!slot) this.fail(404, messages.resourceNotFound(path));
        if (slot.syntheticEject && action.kind === "eject") {
          // The capture did not advertise EjectMedia: only Supermicro-style "present while
          // inserted" makes it exist.
          if (
            !this.profile.ejectActionOnlyWhenInserted ||
            this.current(slot.uri)?.Inserted !== true
          ) {
            this.fail(404, messages.resourceNotFound(path));
          }
        }
        if (this.profile.ejectNeedsJsonBody) {
          const type = req.headers["content-type"] ?? "";
          if (raw.length === 0 && !type.includes("json"))
            this.fail(415, messages.unsupportedMediaType());
          if (raw.length === 0) this.fail(400, messages.malformedJson());
        }
        this.parseJson(req, raw);
        this.eject(slot, action.kind === "oem-eject" ? "oem" : "action");
        return this.actionDone(res);
      }
      case "simple-update":
        return this.simpleUpdate(req, raw, res);
    }
  }

  private validateInsert(slot: SlotInfo, actionName: string, body: JsonObject, oem: boolean): void {
    const errors: Message[] = [];
    const infoParams = slot.insertActionInfo
      ? dig(this.store.json(slot.insertActionInfo), "Parameters")
      : undefined;
    const declared = Array.isArray(infoParams)
      ? infoParams.map(p => dig(p, "Name")).filter((n): n is string => typeof n === "string")
      : oem
        ? ["Image", "BootOnNextServerReset"]
        : insertParams;
    for (const name of Object.keys(body)) {
      if (!declared.includes(name)) errors.push(messages.actionParameterUnknown(actionName, name));
    }
    if (this.profile.supermicroLegacyVirtualMedia) {
      for (const name of ["Inserted", "WriteProtected"]) {
        if (name in body) errors.push(messages.propertyUnknown(name));
      }
    }
    if (errors.length > 0) this.fail(400, ...errors);
    if (typeof body.Image !== "string" || body.Image === "") {
      this.fail(400, messages.actionParameterMissing(slot.insertTarget ?? actionName, "Image"));
    }
    if (this.profile.requireTransferProtocolType && !("TransferProtocolType" in body)) {
      // AMI answers with the action's full URI, as in the captured sushy sample.
      this.fail(
        400,
        messages.actionParameterMissing(slot.insertTarget ?? actionName, "TransferProtocolType"),
      );
    }
    const protocol = body.TransferProtocolType;
    if (
      protocol !== undefined &&
      (typeof protocol !== "string" || !transferProtocols.includes(protocol))
    ) {
      this.fail(
        400,
        messages.actionParameterNotSupported(String(protocol), "TransferProtocolType", actionName),
      );
    }
    if (this.current(slot.uri)?.Inserted === true) this.fail(409, messages.resourceInUse());
    const shadow = this.ejectShadow.get(slot.uri);
    if (shadow && Date.now() < shadow.until) this.fail(500, messages.dellNotReady());
  }

  private insert(slot: SlotInfo, params: JsonObject, via: "action" | "patch" | "oem"): void {
    const image = String(params.Image);
    let url: URL;
    try {
      url = new URL(image);
    } catch {
      this.fail(400, messages.propertyValueTypeError(image, "Image"));
    }
    if (!/^(https?|nfs|cifs|smb|ftp|sftp|tftp|scp):$/.test(url.protocol)) {
      this.fail(400, messages.propertyValueNotInList(image, "Image"));
    }
    if (this.profile.onlyExtSlotsTakeUrls && !/\/EXT\d+$/.test(slot.uri)) {
      this.fail(400, messages.propertyValueNotInList(image, "Image"));
    }
    const body = this.mutable(slot.uri);
    body.Image = image;
    body.ImageName = url.pathname.split("/").pop() ?? image;
    body.Inserted = params.Inserted === undefined ? true : params.Inserted;
    body.WriteProtected = params.WriteProtected === undefined ? true : params.WriteProtected;
    body.ConnectedVia = "URI";
    if (typeof params.TransferProtocolType === "string")
      body.TransferProtocolType = params.TransferProtocolType;
    if (typeof params.TransferMethod === "string") body.TransferMethod = params.TransferMethod;
    if (typeof params.UserName === "string") body.UserName = params.UserName;
    if (via === "oem" && params.BootOnNextServerReset !== undefined) {
      const hpe = dig(body, "Oem", "Hpe");
      if (isObject(hpe)) hpe.BootOnNextServerReset = params.BootOnNextServerReset;
    }
    this.ejectShadow.delete(slot.uri);
    this.bump(slot.uri);
    const { Password: _omit, ...logged } = params;
    this.record({ kind: "insert", slot: slot.uri, image, via, params: logged });
    this.mediaFetcher?.inserted(slot.uri, image);
  }

  private eject(slot: SlotInfo, via: "action" | "patch" | "oem"): void {
    const before = this.current(slot.uri);
    if (this.profile.ejectSettleMs > 0 && before?.Inserted === true) {
      this.ejectShadow.set(slot.uri, {
        until: Date.now() + this.profile.ejectSettleMs,
        shown: structuredClone(before),
      });
    }
    this.emptySlot(slot);
    this.record({ kind: "eject", slot: slot.uri, via });
  }

  /** A slot's state after an eject. */
  private emptySlot(slot: SlotInfo): void {
    const body = this.mutable(slot.uri);
    const captured = this.store.json(slot.uri);
    const empty = captured && captured.Inserted !== true && captured.Image === "" ? "" : null;
    if (!this.profile.supermicroLegacyVirtualMedia) {
      body.Image = empty;
      if ("ImageName" in body) body.ImageName = empty;
    }
    body.Inserted = false;
    body.ConnectedVia = "NotConnected";
    this.bump(slot.uri);
  }

  private reset(system: SystemInfo, resetType: string): void {
    this.record({ kind: "reset", system: system.uri, resetType });
    const before = this.powerState(system.uri);
    let after = before;
    switch (resetType) {
      case "On":
      case "ForceOn":
        after = "On";
        break;
      case "ForceOff":
      case "GracefulShutdown":
        after = "Off";
        break;
      case "PushPowerButton":
        after = before === "On" ? "Off" : "On";
        break;
      case "ForceRestart":
      case "GracefulRestart":
      case "PowerCycle":
        after = "On";
        break;
      default:
        break; // Nmi: no power change
    }
    if (after !== before) this.writePower(system.uri, after ?? "Off");
    if (after === "Off" && before !== "Off") this.machine?.powerOff(system.uri);
    const restarted = ["ForceRestart", "GracefulRestart", "PowerCycle"].includes(resetType);
    if ((after === "On" && before !== "On") || (restarted && after === "On")) this.boot(system);
  }

  /** The machine boots: staged settings apply, the override is used (and Once consumed). */
  private boot(system: SystemInfo): void {
    if (system.settingsUri) {
      const pending = this.pendingSystem.get(system.settingsUri);
      if (pending) {
        const body = this.mutable(system.uri);
        body.Boot = { ...(isObject(body.Boot) ? body.Boot : {}), ...pending };
        this.pendingSystem.delete(system.settingsUri);
        this.bump(system.settingsUri);
      }
    }
    if (system.biosUri && system.biosSettingsUri) {
      const pending = this.pendingBios.get(system.biosSettingsUri);
      if (pending) {
        const bios = this.mutable(system.biosUri);
        bios.Attributes = { ...(isObject(bios.Attributes) ? bios.Attributes : {}), ...pending };
        this.pendingBios.delete(system.biosSettingsUri);
        this.bump(system.biosUri);
        this.bump(system.biosSettingsUri);
      }
    }
    const sys = this.mutable(system.uri);
    const boot = isObject(sys.Boot) ? sys.Boot : {};
    const enabled = boot.BootSourceOverrideEnabled;
    const record: BootRecord = { system: system.uri, at: Date.now() };
    if (enabled === "Once" || enabled === "Continuous") {
      const target = String(boot.BootSourceOverrideTarget);
      record.target = target;
      record.mode =
        typeof boot.BootSourceOverrideMode === "string" ? boot.BootSourceOverrideMode : undefined;
      const inserted = this.insertedMedia(system.uri);
      const withType = (types: string[]) =>
        inserted.find(s => this.topology.slots.get(s.uri)?.mediaTypes.some(t => types.includes(t)))
          ?.image ?? undefined;
      if (target === this.profile.virtualCdBootTarget) record.media = withType(["CD", "DVD"]);
      else if (target === "Usb") record.media = withType(["USBStick"]);
      else if (
        target === "UefiHttp" &&
        typeof boot.HttpBootUri === "string" &&
        boot.HttpBootUri !== ""
      ) {
        record.media = boot.HttpBootUri;
      }
      if (enabled === "Once") boot.BootSourceOverrideEnabled = "Disabled";
      sys.Boot = boot;
      this.bump(system.uri);
    }
    this.boots.push(record);
    this.machine?.boot({
      system: system.uri,
      uuid: typeof sys.UUID === "string" ? sys.UUID : undefined,
      record,
      media: this.insertedMedia(system.uri).flatMap(slot =>
        slot.image
          ? [
              {
                slot: slot.uri,
                image: slot.image,
                mediaTypes: this.topology.slots.get(slot.uri)?.mediaTypes ?? [],
              },
            ]
          : [],
      ),
      poweredOff: () => this.writePower(system.uri, "Off"),
    });
    if (this.profile.postWindowMs > 0)
      this.postUntil.set(system.uri, Date.now() + this.profile.postWindowMs);
  }

  private simpleUpdate(req: http.IncomingMessage, raw: Buffer, res: http.ServerResponse): void {
    const body = this.parseJson(req, raw);
    if (typeof body.ImageURI !== "string")
      this.fail(400, messages.actionParameterMissing("SimpleUpdate", "ImageURI"));
    const id = String(this.tasks.size + 1);
    const monitor = `/redfish/v1/TaskService/TaskMonitors/${id}`;
    const task: Task = {
      uri: monitor,
      pollsLeft: 2,
      body: {
        "@odata.id": `/redfish/v1/TaskService/Tasks/${id}`,
        "@odata.type": "#Task.v1_4_3.Task",
        Id: id,
        Name: "SimpleUpdate",
        TaskMonitor: monitor,
        TaskState: "Running",
        PercentComplete: 0,
      },
    };
    this.tasks.set(monitor, task);
    this.record({ kind: "update", image: body.ImageURI });
    const headers: Record<string, string> = {};
    if (!this.profile.taskMonitorInBody) headers.Location = monitor;
    this.send(res, 202, task.body, headers);
  }
}

function queryOf(url: string): string | undefined {
  const index = url.indexOf("?");
  return index >= 0 && index < url.length - 1 ? url.slice(index + 1) : undefined;
}

/** The `$expand` value of a request URL, if it has one. */
function expandParameter(url: string): string | undefined {
  const query = queryOf(url);
  return query === undefined ? undefined : (new URLSearchParams(query).get("$expand") ?? undefined);
}

async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > 4 * 1024 * 1024) break;
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}
