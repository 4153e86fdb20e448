// Keeps the admission webhook's API path out of the module's log.
//
// Pepr authorises admission calls by a secret path segment (the API path: its webhook URLs are
// https://<service>/mutate/<path> and /validate/<path>, and a call to any other path is refused),
// so the path is a credential, held in a Secret Pepr mounts at /app/api-path. Pepr 1.1.4 logs it
// at start-up (node_modules/pepr/dist/lib.js, Controller.startServer: "Using API path: <path>"),
// at info, the level the module runs at. Pepr takes no option against it, so the line is caught
// on its way through the logger Pepr exports, which is the one its controller writes with.

const PREFIX = "Using API path:";

export interface InfoLogger {
  info(...args: unknown[]): unknown;
}

/**
 * Makes `log` write Pepr's API path line without the path (the message may follow an object of
 * fields, as pino takes it); every other line is unchanged.
 */
export function hideWebhookPath(log: InfoLogger): void {
  const info = log.info.bind(log);
  log.info = (...args: unknown[]) =>
    info(
      ...args.map(arg =>
        typeof arg === "string" && arg.startsWith(PREFIX) ? `${PREFIX} <redacted>` : arg,
      ),
    );
}
