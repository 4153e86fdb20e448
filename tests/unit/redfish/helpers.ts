// A deliberately small HTTPS Redfish server for the driver's unit tests: serves a mockup tree
// read-only, keeps just enough state (sessions, power, boot, media) for the driver's writes, and
// lets each test override any route to inject vendor behaviour. The full stateful test BMC lives
// in lab/bmc/ and is used by the integration tests.
import fs from "node:fs";
import https from "node:https";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import forge from "node-forge";

import { mockupsDir, samplesDir } from "../../../lab/bmc/mockup-store";

/** The captures in lab/captures, which the test BMC serves too. */
export const MOCKUPS = mockupsDir();
export const SAMPLES = samplesDir();

export interface TestCertificate {
  cert: string;
  key: string;
}

let cachedCert: TestCertificate | undefined;

/** A self-signed certificate for 127.0.0.1/localhost (generated once per test file: RSA is slow). */
export function selfSignedCert(): TestCertificate {
  if (cachedCert) return cachedCert;
  const keys = forge.pki.rsa.generateKeyPair(1024);
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = "01";
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 24 * 3600_000);
  const attrs = [{ name: "commonName", value: "localhost" }];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.setExtensions([
    { name: "basicConstraints", cA: true },
    {
      name: "subjectAltName",
      altNames: [
        { type: 2, value: "localhost" },
        { type: 7, ip: "127.0.0.1" },
      ],
    },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  cachedCert = {
    cert: forge.pki.certificateToPem(cert),
    key: forge.pki.privateKeyToPem(keys.privateKey),
  };
  return cachedCert;
}

export interface MockRequest {
  method: string;
  path: string;
  query: string;
  headers: http.IncomingHttpHeaders;
  body: unknown;
}

export interface MockReply {
  status?: number;
  headers?: Record<string, string>;
  body?: unknown;
  /** Destroy the socket instead of answering (simulates a connection reset). */
  reset?: boolean;
  /** Delay before answering. */
  delayMs?: number;
}

/** Return a reply to take over the request, or undefined to fall through to the mockup. */
export type Override = (request: MockRequest, server: MockBmc) => MockReply | undefined;

export interface MockBmcOptions {
  mockup?: string;
  username?: string;
  password?: string;
  /** No SessionService: POST to Sessions answers 404 and only Basic works. */
  sessionsDisabled?: boolean;
  /** Location header form for new sessions. */
  sessionLocation?: "relative" | "absolute" | "none";
  /** Serve plain HTTP instead of HTTPS. */
  plainHttp?: boolean;
  /** ETag header behaviour on GET. */
  etag?: "header" | "weak-header" | "none";
  /** Reject PATCH without If-Match with 428. */
  requireIfMatch?: boolean;
  /** Honour `$expand=.($levels=1)` by inlining collection members and Drives. */
  expand?: boolean;
}

export class MockBmc {
  readonly requests: MockRequest[] = [];
  readonly overrides: Override[] = [];
  readonly sessions = new Map<string, string>();
  /** Resources changed by writes, by normalised path. */
  readonly state = new Map<string, Record<string, unknown>>();
  inFlight = 0;
  peakInFlight = 0;
  url = "";
  private server?: https.Server | http.Server;
  private sessionCounter = 0;
  private etagCounter = 1;
  readonly etags = new Map<string, number>();

  constructor(readonly options: MockBmcOptions = {}) {}

  get username(): string {
    return this.options.username ?? "admin";
  }

  get password(): string {
    return this.options.password ?? "s3cr3t-Pa55!";
  }

  async start(): Promise<this> {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      this.handle(req, res);
    };
    this.server = this.options.plainHttp
      ? http.createServer(handler)
      : https.createServer(selfSignedCert(), handler);
    await new Promise<void>(resolve => this.server?.listen(0, "127.0.0.1", () => resolve()));
    const port = (this.server.address() as AddressInfo).port;
    this.url = `${this.options.plainHttp ? "http" : "https"}://127.0.0.1:${port}`;
    return this;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>(resolve => server.close(() => resolve()));
  }

  /** Requests other than the service root, as "METHOD /path". */
  log(): string[] {
    return this.requests.map(request => `${request.method} ${request.path}`);
  }

  /** Current JSON of a resource (mockup file overlaid with written state). */
  resource(resourcePath: string): Record<string, unknown> | undefined {
    const key = normalise(resourcePath);
    const changed = this.state.get(key);
    if (changed) return changed;
    const file = this.fileFor(key);
    if (!file) return undefined;
    return JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>;
  }

  setResource(resourcePath: string, body: Record<string, unknown>): void {
    const key = normalise(resourcePath);
    this.state.set(key, body);
    this.etags.set(key, (this.etags.get(key) ?? 0) + 1);
  }

  etagOf(resourcePath: string): string {
    const key = normalise(resourcePath);
    return `"${this.etags.get(key) ?? 0}-${this.etagCounter}"`;
  }

  private fileFor(key: string): string | undefined {
    if (!this.options.mockup) return undefined;
    const direct = path.join(MOCKUPS, this.options.mockup, key, "index.json");
    if (fs.existsSync(direct)) return direct;
    return undefined;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on("data", chunk => chunks.push(chunk as Buffer));
    req.on("end", () => {
      const [rawPath = "/", query = ""] = (req.url ?? "/").split("?");
      const text = Buffer.concat(chunks).toString("utf8");
      let body: unknown;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        body = text;
      }
      const request: MockRequest = {
        method: req.method ?? "GET",
        path: rawPath,
        query,
        headers: req.headers,
        body,
      };
      this.requests.push(request);
      this.inFlight += 1;
      this.peakInFlight = Math.max(this.peakInFlight, this.inFlight);
      const reply = this.route(request);
      const send = (): void => {
        this.inFlight -= 1;
        if (reply.reset) {
          req.socket.destroy();
          return;
        }
        const headers: Record<string, string> = { ...reply.headers };
        let payload = "";
        if (reply.body !== undefined) {
          payload = typeof reply.body === "string" ? reply.body : JSON.stringify(reply.body);
          headers["content-type"] ??= "application/json";
        }
        res.writeHead(reply.status ?? 200, headers);
        res.end(payload);
      };
      if (reply.delayMs) setTimeout(send, reply.delayMs);
      else send();
    });
  }

  private route(request: MockRequest): MockReply {
    for (const override of this.overrides) {
      const reply = override(request, this);
      if (reply) return reply;
    }
    const key = normalise(request.path);
    if (key === "redfish/v1" && request.method === "GET") return this.get(key);
    if (request.method === "POST" && key.endsWith("SessionService/Sessions")) {
      return this.login(request);
    }
    if (!this.authorised(request)) {
      return { status: 401, body: errorBody("Base.1.8.NoValidSession", "No valid session") };
    }
    if (request.method === "DELETE" && key.includes("SessionService/Sessions/")) {
      const id = key.split("/").pop() ?? "";
      this.sessions.delete(id);
      return { status: 204 };
    }
    if (request.method === "GET") {
      const reply = this.get(key);
      if (this.options.expand && request.query.includes("$expand") && reply.status === 200) {
        reply.body = this.expand(reply.body as Record<string, unknown>);
      }
      return reply;
    }
    if (request.method === "PATCH") return this.patch(key, request);
    if (request.method === "POST") return this.post(key, request);
    return { status: 405, body: errorBody("Base.1.8.OperationNotAllowed", "not allowed") };
  }

  private authorised(request: MockRequest): boolean {
    const token = request.headers["x-auth-token"];
    if (typeof token === "string" && [...this.sessions.values()].includes(token)) return true;
    const basic = request.headers.authorization;
    const expected = `Basic ${Buffer.from(`${this.username}:${this.password}`).toString("base64")}`;
    return basic === expected;
  }

  private login(request: MockRequest): MockReply {
    if (this.options.sessionsDisabled) {
      return { status: 404, body: errorBody("Base.1.8.ResourceMissingAtURI", "no sessions") };
    }
    const body = request.body as { UserName?: string; Password?: string } | undefined;
    if (body?.UserName !== this.username || body.Password !== this.password) {
      return {
        status: 401,
        body: errorBody("Base.1.8.InvalidCredentials", "invalid credentials"),
      };
    }
    this.sessionCounter += 1;
    const id = String(this.sessionCounter);
    const token = `token-${id}-${Math.random().toString(36).slice(2)}`;
    this.sessions.set(id, token);
    const sessionPath = `/redfish/v1/SessionService/Sessions/${id}`;
    const headers: Record<string, string> = { "x-auth-token": token };
    const form = this.options.sessionLocation ?? "relative";
    if (form === "relative") headers.location = sessionPath;
    if (form === "absolute") headers.location = `${this.url}${sessionPath}`;
    return {
      status: 201,
      headers,
      body: { "@odata.id": sessionPath, Id: id, UserName: this.username },
    };
  }

  private get(key: string): MockReply {
    const body = this.resource(key);
    if (!body) return { status: 404, body: errorBody("Base.1.8.ResourceMissingAtURI", key) };
    const headers: Record<string, string> = {};
    const mode = this.options.etag ?? "header";
    if (mode !== "none") {
      const tag = this.etagOf(key);
      headers.etag = mode === "weak-header" ? `W/${tag}` : tag;
    }
    return { status: 200, headers, body };
  }

  /** One level of expansion of Members and Drives (what `.($levels=1)` means for them). */
  private expand(body: Record<string, unknown>): Record<string, unknown> {
    const out = { ...body };
    for (const property of ["Members", "Drives"]) {
      const links = out[property];
      if (!Array.isArray(links)) continue;
      out[property] = links.map(link => {
        const id = (link as { "@odata.id"?: string })["@odata.id"];
        return (id && this.resource(id)) ?? link;
      });
    }
    return out;
  }

  private patch(key: string, request: MockRequest): MockReply {
    const current = this.resource(key);
    if (!current) return { status: 404, body: errorBody("Base.1.8.ResourceMissingAtURI", key) };
    const ifMatch = request.headers["if-match"];
    if (this.options.requireIfMatch && !ifMatch) {
      return { status: 428, body: errorBody("Base.1.8.PreconditionRequired", "If-Match required") };
    }
    if (ifMatch && ifMatch !== "*" && ifMatch.replace(/^W\//, "") !== this.etagOf(key)) {
      return { status: 412, body: errorBody("Base.1.8.PreconditionFailed", "ETag mismatch") };
    }
    this.setResource(key, deepMerge(current, request.body as Record<string, unknown>));
    return { status: 204 };
  }

  private post(key: string, request: MockRequest): MockReply {
    const body = (request.body ?? {}) as Record<string, unknown>;
    if (key.endsWith("Actions/ComputerSystem.Reset")) {
      const systemKey = key.replace(/\/Actions\/ComputerSystem\.Reset$/, "");
      const system = this.resource(systemKey) ?? {};
      const type = String(body.ResetType);
      const power = [
        "On",
        "ForceOn",
        "PushPowerButton",
        "ForceRestart",
        "GracefulRestart",
        "PowerCycle",
      ];
      const state = power.includes(type) ? "On" : "Off";
      this.setResource(systemKey, { ...system, PowerState: state });
      return { status: 204 };
    }
    if (key.endsWith("Actions/VirtualMedia.InsertMedia")) {
      const slotKey = key.replace(/\/Actions\/VirtualMedia\.InsertMedia$/, "");
      const slot = this.resource(slotKey) ?? {};
      this.setResource(slotKey, {
        ...slot,
        Image: body.Image,
        Inserted: true,
        ConnectedVia: "URI",
      });
      return { status: 204 };
    }
    if (key.endsWith("Actions/VirtualMedia.EjectMedia")) {
      const slotKey = key.replace(/\/Actions\/VirtualMedia\.EjectMedia$/, "");
      const slot = this.resource(slotKey) ?? {};
      this.setResource(slotKey, {
        ...slot,
        Image: null,
        Inserted: false,
        ConnectedVia: "NotConnected",
      });
      return { status: 204 };
    }
    return { status: 405, body: errorBody("Base.1.8.ActionNotSupported", `no action at ${key}`) };
  }
}

export function normalise(resourcePath: string): string {
  const index = resourcePath.indexOf("/redfish/v1");
  const tail = index >= 0 ? resourcePath.slice(index) : resourcePath;
  return tail.replace(/^\/+|\/+$/g, "");
}

export function errorBody(messageId: string, message: string, extra: Record<string, unknown> = {}) {
  return {
    error: {
      code: messageId,
      message,
      "@Message.ExtendedInfo": [{ MessageId: messageId, Message: message, ...extra }],
    },
  };
}

function deepMerge(
  target: Record<string, unknown>,
  patch: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...target };
  for (const [key, value] of Object.entries(patch)) {
    const existing = out[key];
    if (
      value &&
      typeof value === "object" &&
      !Array.isArray(value) &&
      existing &&
      typeof existing === "object" &&
      !Array.isArray(existing)
    ) {
      out[key] = deepMerge(existing as Record<string, unknown>, value as Record<string, unknown>);
    } else {
      out[key] = value;
    }
  }
  return out;
}

export async function startMock(options: MockBmcOptions): Promise<MockBmc> {
  return new MockBmc(options).start();
}
