// The built module's webhook server keeps an idle keep-alive connection open longer than Node's
// default 5 s: the API server reuses idle webhook connections for up to 90 s, and a call sent on
// one the server was closing failed with a 500 "failed calling webhook ... connection reset by
// peer" (capabilities/lib/webhook-keep-alive.ts). One TLS connection speaks HTTP/1.1 the way Go's
// client does (no client-side idle timeout) and sends a second request after 7 s of idle.
import { once } from "node:events";
import { connect, type TLSSocket } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { WEBHOOK_KEEP_ALIVE_TIMEOUT_MS } from "../../../capabilities/lib/webhook-keep-alive";
import { startOperator, webhookPort, type Operator } from "../support/operator";

/** Longer than Node's default keepAliveTimeout (5 s), which closed the connection. */
const IDLE_MS = 7_000;

interface Response {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** Sends one GET on the socket and reads its response (Content-Length framed, as Pepr's are);
 *  rejects if the server has closed the connection, or closes it before answering. */
function get(socket: TLSSocket, path: string): Promise<Response> {
  return new Promise((resolve, reject) => {
    if (socket.destroyed || socket.readableEnded || !socket.writable) {
      reject(new Error(`the server had closed the connection before ${path} was sent`));
      return;
    }
    let raw = "";
    const done = (err?: Error, response?: Response) => {
      socket.off("data", onData);
      socket.off("close", onClose);
      socket.off("error", onError);
      if (err) reject(err);
      else resolve(response!);
    };
    const onData = (chunk: Buffer) => {
      raw += chunk.toString("latin1");
      const end = raw.indexOf("\r\n\r\n");
      if (end < 0) return;
      const [statusLine, ...lines] = raw.slice(0, end).split("\r\n");
      const headers = Object.fromEntries(
        lines.map(l => [
          l.slice(0, l.indexOf(":")).toLowerCase(),
          l.slice(l.indexOf(":") + 1).trim(),
        ]),
      );
      const length = Number(headers["content-length"]);
      const body = raw.slice(end + 4);
      if (body.length < length) return;
      done(undefined, { status: Number(statusLine!.split(" ")[1]), headers, body });
    };
    const onClose = () =>
      done(new Error(`the server closed the connection before answering ${path}`));
    const onError = (err: Error) =>
      done(new Error(`the connection failed before answering ${path}: ${err.message}`));
    socket.on("data", onData);
    socket.once("close", onClose);
    socket.once("error", onError);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`, err => err && onError(err));
  });
}

/** One TLS connection to the module's webhook server (its own per-run certificate, on loopback). */
async function connectToWebhookServer(operator: Operator): Promise<TLSSocket> {
  const socket = connect({
    host: "127.0.0.1",
    port: webhookPort(operator),
    rejectUnauthorized: false,
    ALPNProtocols: ["http/1.1"],
  });
  await once(socket, "secureConnect");
  return socket;
}

describe("the webhook server's keep-alive", () => {
  let operator: Operator;

  beforeAll(async () => {
    operator = await startOperator();
  });

  afterAll(async () => {
    await operator?.stop();
  });

  it(`answers a second request on one connection after ${IDLE_MS / 1000} s of idle`, async () => {
    const socket = await connectToWebhookServer(operator);
    try {
      const first = await get(socket, "/healthz");
      expect(first.status).toBe(200);
      await new Promise(resolve => setTimeout(resolve, IDLE_MS));
      const second = await get(socket, "/healthz");
      expect(second.status).toBe(200);
      expect(second.body).toBe("OK");
    } finally {
      socket.destroy();
    }
  });

  it("announces an idle timeout longer than the API server's 90 s", async () => {
    const socket = await connectToWebhookServer(operator);
    try {
      const response = await get(socket, "/healthz");
      // Node sends its keepAliveTimeout, in seconds, on every keep-alive response.
      expect(response.headers["keep-alive"]).toBe(
        `timeout=${WEBHOOK_KEEP_ALIVE_TIMEOUT_MS / 1000}`,
      );
      expect(WEBHOOK_KEEP_ALIVE_TIMEOUT_MS).toBeGreaterThan(90_000);
    } finally {
      socket.destroy();
    }
  });
});
