// Keeps the admission webhook server's idle connections open longer than the API server keeps them.
//
// kube-apiserver calls webhooks over HTTP/1.1 (k8s.io/apiserver pkg/util/webhook/client.go) with
// client-go's transport, which keeps an idle connection for Go's default 90 s
// (apimachinery pkg/util/net/http.go, SetOldTransportDefaults) and sends the next call on it.
// Pepr 1.1.4's webhook server is Node's HTTPS server with Node's defaults
// (node_modules/pepr/dist/lib.js, Controller.startServer: `https.createServer(options, app)`), which
// closes an idle connection after 5 s. A call sent just as Node closes the connection fails with
// "connection reset by peer" or EOF, and Go does not retry a POST, so the user's request fails
// with a 500 "failed calling webhook". When the server waits longer than the client, the client
// is always the side that closes an idle connection, and the race cannot happen.
//
// Pepr takes no server options and does not expose the server, so the server is caught as Pepr
// creates it: https.createServer is wrapped only for the synchronous call that starts Pepr.
import https from "node:https";

/**
 * Idle time after which the webhook server closes a keep-alive connection: longer than the API
 * server's 90 s, with room for the client's idle timer starting a little after the server's.
 * headersTimeout stays Node's: since Node 18 it does not run while a connection is idle.
 */
export const WEBHOOK_KEEP_ALIVE_TIMEOUT_MS = 120_000;

/**
 * Runs `start` (Pepr's module.start), which must create exactly one HTTPS server (the webhook
 * server), and gives that server the keep-alive timeout above. Returns the server.
 */
export function startWithWebhookKeepAlive(start: () => void): https.Server {
  // A default import is Node's own exports object, the one Pepr's require("https") calls through.
  const httpsExports = https as { createServer: (...args: unknown[]) => https.Server };
  const createServer = httpsExports.createServer;
  const created: https.Server[] = [];
  httpsExports.createServer = (...args: unknown[]) => {
    const server = createServer.apply(https, args);
    created.push(server);
    return server;
  };
  try {
    start();
  } finally {
    httpsExports.createServer = createServer;
  }
  const [server] = created;
  if (!server || created.length > 1) {
    throw new Error(
      `starting Pepr created ${created.length} HTTPS servers through https.createServer, ` +
        "expected exactly one (its webhook server): cannot set the webhook keep-alive timeout",
    );
  }
  server.keepAliveTimeout = WEBHOOK_KEEP_ALIVE_TIMEOUT_MS;
  return server;
}
