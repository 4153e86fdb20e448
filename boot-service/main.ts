// Entry point of the boot service process (bundled to dist/beskar7-boot-service.js for the
// Deployment, run with tsx in the lab). Reads the configuration from the environment, starts the
// service and stops it gracefully on SIGTERM/SIGINT: no new connections, transfers in progress
// get BESKAR7_BOOT_SHUTDOWN_GRACE to finish, then exit 0. `--help` prints the configuration.
import { CONFIG_HELP, ConfigError, loadConfig } from "./config";
import { jsonLog, runBootService } from "./service";

async function main(): Promise<void> {
  if (process.argv.includes("--help") || process.argv.includes("-h")) {
    process.stdout.write(CONFIG_HELP);
    return;
  }
  const config = loadConfig();
  const service = await runBootService(config);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    jsonLog({ msg: "stopping", signal, graceMs: config.shutdownGraceMs });
    service.stop().then(
      () => process.exit(0),
      err => {
        jsonLog({ msg: "stop failed", error: String(err) });
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

main().catch(err => {
  const message =
    err instanceof ConfigError
      ? err.message
      : err instanceof Error
        ? (err.stack ?? err.message)
        : String(err);
  jsonLog({ msg: "boot service failed to start", error: message });
  process.exit(1);
});
