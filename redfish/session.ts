// Authentication for one BMC: a SessionService session (X-Auth-Token) reused across requests,
// renewed on 401, deleted on close; HTTP Basic where the service has no usable SessionService.
// QUIRKS: All | sessions — Location may be absolute or missing (use the body's @odata.id).
import { BmcAuthenticationError, RedfishError } from "./errors";
import { type RawResponse, type Transport, toRedfishPath } from "./transport";
import type { AuthMode, BmcCredentials, RedfishLogger } from "./types";

/**
 * Credentials wrapper whose password cannot leak through JSON.stringify, util.inspect, string
 * interpolation or object spreading: it lives in a private field.
 */
/** What redaction must hide of a login: the password and the Basic header's token (base64 of
 *  user:password), which reveals it as well. */
export function credentialSecrets(credentials: BmcCredentials): string[] {
  const basic = Buffer.from(`${credentials.username}:${credentials.password}`).toString("base64");
  return [credentials.password, basic];
}

export class SecretCredentials {
  readonly username: string;
  readonly #password: string;

  constructor(credentials: BmcCredentials) {
    this.username = credentials.username;
    this.#password = credentials.password;
  }

  reveal(): string {
    return this.#password;
  }

  basicHeader(): string {
    return `Basic ${credentialSecrets({ username: this.username, password: this.#password })[1]}`;
  }

  toJSON(): Record<string, string> {
    return { username: this.username, password: "***" };
  }

  toString(): string {
    return "[credentials]";
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return "[credentials]";
  }
}

export class SessionAuth {
  private token?: string;
  private sessionPath?: string;
  private useBasic: boolean;
  private loginInFlight?: Promise<void>;

  constructor(
    private readonly transport: Transport,
    private readonly credentials: SecretCredentials,
    private readonly mode: AuthMode,
    private readonly logger?: RedfishLogger,
  ) {
    this.useBasic = mode === "basic";
  }

  get kind(): "session" | "basic" | "none" {
    if (this.token) return "session";
    return this.useBasic ? "basic" : "none";
  }

  /** Secrets that must be scrubbed from anything the driver emits. */
  secrets(): string[] {
    const secrets = credentialSecrets({
      username: this.credentials.username,
      password: this.credentials.reveal(),
    });
    if (this.token) secrets.push(this.token);
    return secrets;
  }

  headers(): Record<string, string> {
    if (this.token) return { "x-auth-token": this.token };
    if (this.useBasic) return { authorization: this.credentials.basicHeader() };
    return {};
  }

  get authenticated(): boolean {
    return this.token !== undefined || this.useBasic;
  }

  /**
   * Logs in once even when several requests ask at the same time. `sessionsPath` comes from the
   * service root (Links.Sessions or SessionService → Sessions); undefined means no SessionService.
   */
  async login(sessionsPath: string | undefined): Promise<void> {
    this.loginInFlight ??= this.doLogin(sessionsPath).finally(() => {
      this.loginInFlight = undefined;
    });
    return this.loginInFlight;
  }

  /** The token requests are currently sent with (to detect a concurrent re-login). */
  get currentToken(): string | undefined {
    return this.token;
  }

  /**
   * Forgets the token (after a 401) so the next login creates a fresh one. With `rejected`, only
   * if that is still the current token: parallel requests failing together log in once.
   */
  invalidate(rejected?: string): void {
    if (rejected !== undefined && rejected !== this.token) return;
    this.token = undefined;
    this.sessionPath = undefined;
  }

  async logout(): Promise<void> {
    const token = this.token;
    const path = this.sessionPath;
    this.invalidate();
    if (!token || !path) return;
    try {
      const response = await this.transport.request({
        method: "DELETE",
        path,
        headers: { "x-auth-token": token },
      });
      if (response.status >= 400) {
        // HPE has been seen answering 405; the session then times out on its own.
        this.logger?.warn("BMC refused session logout", { status: response.status, path });
      }
    } catch (error) {
      this.logger?.warn("session logout failed", {
        error: error instanceof RedfishError ? error.code : "unknown",
      });
    }
  }

  private async doLogin(sessionsPath: string | undefined): Promise<void> {
    if (this.mode === "basic") {
      this.useBasic = true;
      return;
    }
    if (!sessionsPath) {
      if (this.mode === "session") {
        throw new BmcAuthenticationError(
          "the BMC offers no SessionService and session auth was required",
        );
      }
      this.useBasic = true;
      this.logger?.info("no SessionService; using HTTP Basic authentication");
      return;
    }
    this.transport.countLogin();
    const response = await this.transport.request({
      method: "POST",
      path: sessionsPath,
      body: { UserName: this.credentials.username, Password: this.credentials.reveal() },
    });
    if (response.status === 401 || response.status === 403) {
      throw new BmcAuthenticationError(
        `the BMC rejected the credentials (HTTP ${response.status} creating a session)`,
        { status: response.status, method: "POST", path: sessionsPath },
      );
    }
    const token = header(response, "x-auth-token");
    if (response.status >= 200 && response.status < 300 && token) {
      this.token = token;
      this.sessionPath = sessionLocation(response);
      this.useBasic = false;
      return;
    }
    // SessionService present but unusable (404/405/501 or no token): Basic is the DSP0266 fallback.
    if (this.mode === "session") {
      throw new BmcAuthenticationError(
        `session login failed with HTTP ${response.status} and session auth was required`,
        { status: response.status, method: "POST", path: sessionsPath },
      );
    }
    this.logger?.warn("session login unavailable; falling back to HTTP Basic", {
      status: response.status,
    });
    this.useBasic = true;
  }
}

function header(response: RawResponse, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Where to DELETE the session: Location (made relative), else the body's @odata.id. */
export function sessionLocation(response: RawResponse): string | undefined {
  const location = header(response, "location");
  if (location && location.trim().length > 0) return toRedfishPath(location.trim());
  const body = response.body as Record<string, unknown> | undefined;
  const id = body?.["@odata.id"];
  return typeof id === "string" ? toRedfishPath(id) : undefined;
}
