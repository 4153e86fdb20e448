// Starts the boot service as a child process from the lab (`npm start`) and from tests: the same
// entry point (main.ts) and environment the Deployment uses, run with tsx from the source tree.
// Resolves once the service logs "listening" (Secret loaded, CA published, hosts synced), with
// the CA written to a file next to the kubeconfig so curl, a test BMC or a person can trust it.
import { spawn, type ChildProcess } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";

import { KubeClient } from "./kube";
import { CA_CONFIGMAP } from "./secret";

export interface StartBootServiceOptions {
  kubeconfig: string;
  /** Namespace of the service's Secret and CA ConfigMap (default pepr-system). */
  namespace?: string;
  /** BESKAR7_BOOT_URL. */
  url: string;
  /** BESKAR7_BOOT_LISTEN (default 127.0.0.1 and the URL's port). */
  listen?: string;
  /** BESKAR7_BOOT_METRICS_LISTEN (default 127.0.0.1:0: any free port). */
  metricsListen?: string;
  plainHttp?: boolean;
  /** Further environment (BESKAR7_BOOT_TOKEN_TTL, BESKAR7_BOOT_SHUTDOWN_GRACE, ...). */
  env?: Record<string, string>;
  /** Where to write ca.crt (default: the kubeconfig's directory). */
  caFile?: string;
  /** Each log line of the service (JSON). */
  onLog?: (line: string) => void;
}

export interface StartedBootService {
  url: string;
  caFile: string;
  caCert: string;
  metricsURL: string;
  child: ChildProcess;
  /** SIGTERM, then waits for the exit; resolves with the exit code. */
  stop(): Promise<number | null>;
}

const ROOT = resolve(__dirname, "..");

export async function startBootService(
  options: StartBootServiceOptions,
): Promise<StartedBootService> {
  const url = new URL(options.url);
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  const child = spawn(
    join(ROOT, "node_modules", ".bin", "tsx"),
    [join(ROOT, "boot-service", "main.ts")],
    {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        KUBECONFIG: options.kubeconfig,
        BESKAR7_BOOT_URL: options.url,
        BESKAR7_BOOT_LISTEN: options.listen ?? `127.0.0.1:${port}`,
        BESKAR7_BOOT_METRICS_LISTEN: options.metricsListen ?? "127.0.0.1:0",
        BESKAR7_BOOT_PLAIN_HTTP: options.plainHttp ? "true" : "false",
        BESKAR7_NAMESPACE: options.namespace ?? "pepr-system",
        // As the Deployment: fewer glibc arenas, a lower streaming peak (docs/boot-service.md).
        MALLOC_ARENA_MAX: "2",
        ...options.env,
      },
    },
  );
  const exited = new Promise<number | null>(r => child.once("exit", code => r(code)));
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()).slice(-4000));
  const listening = await new Promise<Record<string, string>>((ok, fail) => {
    let buffered = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        options.onLog?.(line);
        try {
          const entry = JSON.parse(line) as Record<string, string>;
          if (entry.msg === "listening") ok(entry);
          if (entry.msg === "boot service failed to start")
            fail(new Error(`boot service: ${entry.error}`));
        } catch {
          // not a log entry
        }
      }
    });
    void exited.then(code =>
      fail(new Error(`the boot service exited (${code}) before listening: ${stderr.trim()}`)),
    );
  });
  const kube = KubeClient.fromEnvironment({ KUBECONFIG: options.kubeconfig });
  const caMap = await kube.request<{ data?: Record<string, string> }>(
    "GET",
    `/api/v1/namespaces/${options.namespace ?? "pepr-system"}/configmaps/${CA_CONFIGMAP}`,
  );
  kube.close();
  const caCert = caMap.data?.["ca.crt"] ?? "";
  const caFile = options.caFile ?? join(resolve(options.kubeconfig, ".."), "beskar7-boot-ca.crt");
  await writeFile(caFile, caCert);
  return {
    url: options.url,
    caFile,
    caCert,
    metricsURL: `http://${listening.metrics}`,
    child,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      return exited;
    },
  };
}
