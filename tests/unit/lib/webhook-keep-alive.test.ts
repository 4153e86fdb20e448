// startWithWebhookKeepAlive: the one HTTPS server Pepr's start creates gets the long keep-alive,
// https.createServer is left as it was whatever start does, and a start that creates no server or
// several is an error rather than a silent loss of the setting. The served behaviour is tested
// against the built module in tests/integration/operator/webhook-keep-alive.test.ts.
import https from "node:https";
import { describe, expect, it } from "vitest";

import {
  startWithWebhookKeepAlive,
  WEBHOOK_KEEP_ALIVE_TIMEOUT_MS,
} from "../../../capabilities/lib/webhook-keep-alive";

const originalCreateServer = https.createServer;

describe("startWithWebhookKeepAlive", () => {
  it("gives the server start creates a keep-alive longer than the API server's 90 s", () => {
    let created: https.Server | undefined;
    const server = startWithWebhookKeepAlive(() => {
      created = https.createServer({}, () => undefined);
    });
    expect(server).toBe(created);
    expect(server.keepAliveTimeout).toBe(WEBHOOK_KEEP_ALIVE_TIMEOUT_MS);
    expect(WEBHOOK_KEEP_ALIVE_TIMEOUT_MS).toBeGreaterThan(90_000);
    // Node's default, for servers created outside the start call.
    expect(https.createServer().keepAliveTimeout).toBe(5_000);
    expect(https.createServer).toBe(originalCreateServer);
  });

  it("refuses a start that creates no HTTPS server, naming what it expected", () => {
    expect(() => startWithWebhookKeepAlive(() => undefined)).toThrow(
      "starting Pepr created 0 HTTPS servers through https.createServer, expected exactly one",
    );
    expect(https.createServer).toBe(originalCreateServer);
  });

  it("refuses a start that creates two HTTPS servers", () => {
    expect(() =>
      startWithWebhookKeepAlive(() => {
        https.createServer();
        https.createServer();
      }),
    ).toThrow("starting Pepr created 2 HTTPS servers");
    expect(https.createServer).toBe(originalCreateServer);
  });

  it("passes on start's own error and restores https.createServer", () => {
    expect(() =>
      startWithWebhookKeepAlive(() => {
        throw new Error("API path not found");
      }),
    ).toThrow("API path not found");
    expect(https.createServer).toBe(originalCreateServer);
  });
});
