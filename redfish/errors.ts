// Typed driver errors. The controller maps `code` to host states (unreachable, TLS failure, bad
// credentials, action rejected) and `retryable` to a requeue policy, so every failure leaving the
// driver is one of these. None of them ever holds credentials: messages are built from method,
// path, status and the BMC's own messages, and those pass through `redactSecrets` first.

export type RedfishErrorCode =
  | "Unreachable"
  | "AddressRefused"
  | "TlsFailure"
  | "AuthenticationFailed"
  | "NotFound"
  | "Unsupported"
  | "Rejected"
  | "ServerError"
  | "InvalidResponse"
  | "SystemSelection"
  | "TaskFailed"
  | "VerificationFailed";

/** One entry of a Redfish error's `@Message.ExtendedInfo`. */
export interface ExtendedInfo {
  messageId?: string;
  message?: string;
  resolution?: string;
  severity?: string;
  messageArgs?: string[];
}

export interface RedfishErrorDetails {
  retryable?: boolean;
  status?: number;
  method?: string;
  path?: string;
  extendedInfo?: ExtendedInfo[];
  cause?: unknown;
}

export class RedfishError extends Error {
  readonly code: RedfishErrorCode;
  readonly retryable: boolean;
  readonly status?: number;
  readonly method?: string;
  readonly path?: string;
  readonly extendedInfo: ExtendedInfo[];

  constructor(code: RedfishErrorCode, message: string, details: RedfishErrorDetails = {}) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.retryable = details.retryable ?? false;
    this.status = details.status;
    this.method = details.method;
    this.path = details.path;
    this.extendedInfo = details.extendedInfo ?? [];
    // The cause is kept non-enumerable and reduced to its message: socket errors from got carry
    // request options (headers included) that must never be serialised.
    if (details.cause !== undefined) {
      Object.defineProperty(this, "cause", {
        value: describeCause(details.cause),
        enumerable: false,
        writable: false,
      });
    }
  }

  /** MessageIds the BMC returned, for matching vendor quirks. */
  get messageIds(): string[] {
    return this.extendedInfo.flatMap(info => (info.messageId ? [info.messageId] : []));
  }

  hasMessageId(fragment: string): boolean {
    return this.messageIds.some(id => id.includes(fragment));
  }

  override toString(): string {
    return `${this.name} [${this.code}]: ${this.message}`;
  }

  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      retryable: this.retryable,
      status: this.status,
      method: this.method,
      path: this.path,
      extendedInfo: this.extendedInfo,
    };
  }
}

/** Connection refused, DNS failure, socket reset or timeout: the BMC did not answer. */
export class BmcUnreachableError extends RedfishError {
  constructor(message: string, details: RedfishErrorDetails = {}) {
    super("Unreachable", message, { retryable: true, ...details });
  }
}

/** The BMC's address (or an address its name resolves to) is one the address policy refuses
 *  (address-policy.ts): nothing was sent. Not retryable: the address or the policy must change. */
export class BmcAddressRefusedError extends RedfishError {
  constructor(message: string, details: RedfishErrorDetails = {}) {
    super("AddressRefused", message, { ...details, retryable: false });
  }
}

/** Certificate not trusted, hostname mismatch or handshake failure. Not retryable. */
export class BmcTlsError extends RedfishError {
  constructor(message: string, details: RedfishErrorDetails = {}) {
    super("TlsFailure", message, { ...details, retryable: false });
  }
}

/** 401/403 after a fresh login: the credentials are wrong or lack privilege. */
export class BmcAuthenticationError extends RedfishError {
  constructor(message: string, details: RedfishErrorDetails = {}) {
    super("AuthenticationFailed", message, { ...details, retryable: false });
  }
}

export class ResourceNotFoundError extends RedfishError {
  constructor(message: string, details: RedfishErrorDetails = {}) {
    super("NotFound", message, { ...details, retryable: false });
  }
}

/** The BMC does not offer what was asked (no such action, value not allowed, 405/501). */
export class UnsupportedOperationError extends RedfishError {
  constructor(message: string, details: RedfishErrorDetails = {}) {
    super("Unsupported", message, { ...details, retryable: false });
  }
}

/** A 4xx with the BMC's reason. Retryable only for the transient states the quirks list names. */
export class BmcRejectedError extends RedfishError {
  constructor(message: string, details: RedfishErrorDetails = {}) {
    super("Rejected", message, details);
  }
}

/** A 5xx. Usually transient on BMCs, so retryable unless told otherwise. */
export class BmcServerError extends RedfishError {
  constructor(message: string, details: RedfishErrorDetails = {}) {
    super("ServerError", message, { retryable: true, ...details });
  }
}

/** The BMC answered with something that is not the Redfish it promised. */
export class InvalidResponseError extends RedfishError {
  constructor(message: string, details: RedfishErrorDetails = {}) {
    super("InvalidResponse", message, { ...details, retryable: false });
  }
}

/**
 * A response body larger than the client's `maxResponseBytes` (declared in Content-Length or
 * counted while streaming): the request is aborted at the limit, nothing past it is buffered.
 * Not retryable: the BMC would send the same body again.
 */
export class ResponseTooLargeError extends InvalidResponseError {
  readonly limitBytes: number;
  constructor(message: string, limitBytes: number, details: RedfishErrorDetails = {}) {
    super(message, details);
    this.limitBytes = limitBytes;
  }
}

/**
 * The caller's deadline (`withBmcDeadline`) passed before or during a request. Retryable (a
 * later attempt gets a fresh deadline) but never retried inside the operation it ended; the
 * code is Unreachable, as for a request timeout.
 */
export class DeadlineExceededError extends BmcUnreachableError {}

/** systemId missing on a multi-system BMC, or naming a system that does not exist. */
export class SystemSelectionError extends RedfishError {
  readonly availableIds: string[];
  constructor(message: string, availableIds: string[]) {
    super("SystemSelection", message, { retryable: false });
    this.availableIds = availableIds;
  }
  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), availableIds: this.availableIds };
  }
}

/** A task monitor ended in Exception/Killed/Cancelled, or never finished in time. */
export class TaskFailedError extends RedfishError {
  constructor(message: string, details: RedfishErrorDetails = {}) {
    super("TaskFailed", message, details);
  }
}

/** The BMC accepted a change but reading it back shows it did not take effect. */
export class VerificationError extends RedfishError {
  constructor(message: string, details: RedfishErrorDetails = {}) {
    super("VerificationFailed", message, { retryable: true, ...details });
  }
}

export function isRedfishError(value: unknown): value is RedfishError {
  return value instanceof RedfishError;
}

function describeCause(cause: unknown): string {
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return typeof code === "string" ? `${code}: ${cause.message}` : cause.message;
  }
  return String(cause);
}

/**
 * Replaces every occurrence of each secret, URL-encoded or base64-encoded too, with "***". Give
 * the Basic token (base64 of user:password) as a secret of its own: its base64 is not the
 * password's.
 */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  const forms = new Set<string>();
  for (const secret of secrets) {
    if (secret.length === 0) continue;
    forms.add(secret).add(encodeURIComponent(secret));
    forms.add(Buffer.from(secret, "utf8").toString("base64"));
  }
  // Longest first: the Basic token contains the password's own base64 when the user name is a
  // multiple of three bytes long, and must go whole.
  let out = text;
  for (const form of [...forms].sort((x, y) => y.length - x.length))
    out = out.split(form).join("***");
  return out;
}

/** Parses a Redfish error body's `@Message.ExtendedInfo` (top-level or under `error`). */
export function parseExtendedInfo(body: unknown): ExtendedInfo[] {
  if (typeof body !== "object" || body === null) return [];
  const record = body as Record<string, unknown>;
  const error = record.error as Record<string, unknown> | undefined;
  const lists: unknown[] = [];
  if (error && typeof error === "object") {
    lists.push(error["@Message.ExtendedInfo"]);
    if (typeof error.code === "string" || typeof error.message === "string") {
      lists.push([{ MessageId: error.code, Message: error.message }]);
    }
  }
  lists.push(record["@Message.ExtendedInfo"]);
  const infos: ExtendedInfo[] = [];
  for (const list of lists) {
    if (!Array.isArray(list)) continue;
    for (const raw of list) {
      if (typeof raw !== "object" || raw === null) continue;
      const entry = raw as Record<string, unknown>;
      const info: ExtendedInfo = {};
      if (typeof entry.MessageId === "string") info.messageId = entry.MessageId;
      if (typeof entry.Message === "string") info.message = entry.Message;
      if (typeof entry.Resolution === "string") info.resolution = entry.Resolution;
      if (typeof entry.Severity === "string") info.severity = entry.Severity;
      if (Array.isArray(entry.MessageArgs)) info.messageArgs = entry.MessageArgs.map(String);
      if (info.messageId || info.message) infos.push(info);
    }
  }
  return infos;
}
