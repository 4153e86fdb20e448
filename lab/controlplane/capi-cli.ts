// `npm run capi:start`: Cluster API v1.14's core manager and kubeadm bootstrap manager in the
// foreground against $KUBECONFIG (or the .testenv/kubeconfig of `npm run testenv:start`), with
// their CRDs and webhooks installed (lab/controlplane/capi-manager.ts). Ctrl-C stops them and
// removes the webhook registrations. Their logs go to the directory printed at start.
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";

import { startCapi } from "./capi-manager";

const log = (line: string) => process.stderr.write(`[capi] ${line}\n`);

async function main(): Promise<void> {
  const testenv = resolve(process.env.BESKAR7_TESTENV_DIR ?? ".testenv");
  const kubeconfig = process.env.KUBECONFIG || join(testenv, "kubeconfig");
  if (!existsSync(kubeconfig)) {
    throw new Error(`no kubeconfig at ${kubeconfig}: run npm run testenv:start or set KUBECONFIG`);
  }
  const dir = join(testenv, "capi");
  await mkdir(dir, { recursive: true });
  const capi = await startCapi({ kubeconfig, dir, log });
  log(`logs: ${capi.manager.logFile}, ${capi.bootstrap.logFile}; Ctrl-C stops both`);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    log("stopping");
    capi.stop().then(
      () => process.exit(0),
      err => {
        log(`stop: ${err instanceof Error ? err.message : String(err)}`);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

main().catch(err => {
  log(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
