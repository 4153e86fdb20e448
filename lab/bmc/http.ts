// A minimal Redfish HTTP client for tests of the test BMC and of sushy-tools: node:http(s) with an
// explicit CA, Basic or token auth, JSON in and out. Deliberately independent of the driver, so
// the test infrastructure can be checked on its own.
import http from "node:http";
import https from "node:https";

export interface RawRequest {
  method?: string;
  /** Basic credentials, or a session token sent as X-Auth-Token. */
  auth?: { username: string; password: string } | { token: string };
  /** JSON-serialised unless a string; `undefined` sends no body at all. */
  body?: unknown;
  headers?: Record<string, string>;
  ca?: string;
  timeoutMs?: number;
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** Parsed body; undefined when empty or not JSON. */
  json: Record<string, unknown> | undefined;
}

export function request(
  baseUrl: string,
  path: string,
  options: RawRequest = {},
): Promise<RawResponse> {
  const url = new URL(path, baseUrl);
  const headers: Record<string, string> = { Accept: "application/json", ...options.headers };
  if (options.auth && "token" in options.auth) headers["X-Auth-Token"] = options.auth.token;
  else if (options.auth) {
    const raw = `${options.auth.username}:${options.auth.password}`;
    headers.Authorization = `Basic ${Buffer.from(raw).toString("base64")}`;
  }
  let payload: string | undefined;
  if (options.body !== undefined) {
    payload = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
    headers["Content-Type"] ??= "application/json";
    headers["Content-Length"] = String(Buffer.byteLength(payload));
  }
  const transport = url.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const req = transport.request(
      url,
      {
        method: options.method ?? "GET",
        headers,
        ca: options.ca,
        agent: false,
        timeout: options.timeoutMs ?? 10_000,
      },
      res => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("error", reject);
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json: Record<string, unknown> | undefined;
          try {
            json = text ? (JSON.parse(text) as Record<string, unknown>) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    req.on("timeout", () =>
      req.destroy(new Error(`timeout after ${options.timeoutMs ?? 10_000} ms`)),
    );
    req.on("error", reject);
    req.end(payload);
  });
}
