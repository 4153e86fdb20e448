// Runs the real operator for a test: `npm run operator:local`'s script, as a child process against
// the suite's API server, webhooks included. The module is built once per test run.
import { spawn, type ChildProcess, execFileSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { AdmissionregistrationV1Api, KubeConfig } from "@kubernetes/client-node";
import { expect, inject } from "vitest";

import { findCanary, recordCanaryHits } from "./canary";

const ROOT = resolve(__dirname, "..", "..", "..");

/** Short intervals so behaviour that takes minutes in production shows within a test. */
export const FAST_ENV: Record<string, string> = {
  BESKAR7_POWER_CHECK_INTERVAL_MS: "1500",
  BESKAR7_POWER_SETTLE_MS: "300",
  BESKAR7_ERROR_BACKOFF_BASE_MS: "200",
  BESKAR7_ERROR_BACKOFF_MAX_MS: "2000",
  BESKAR7_BMC_TIMEOUT_MS: "3000",
  BESKAR7_GRACEFUL_SHUTDOWN_TIMEOUT_MS: "1000",
  BESKAR7_DELETE_ATTEMPTS: "3",
};

export interface Operator {
  child: ChildProcess;
  /** Everything the operator and its module printed. */
  output(): string;
  /** SIGINT, as a person's Ctrl-C; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL: a crash, with no chance to clean up. */
  kill(): Promise<void>;
}

export function ensureModuleBuilt(): void {
  const marker = join(inject("runDir"), "module-built");
  if (existsSync(marker)) return;
  execFileSync(join(ROOT, "node_modules", ".bin", "pepr"), ["build"], {
    cwd: ROOT,
    stdio: ["ignore", "ignore", "pipe"],
  });
  writeFileSync(marker, new Date().toISOString());
}

/**
 * What the operator's output must not hold: the canary's secrets, and Pepr's webhook API path (a
 * credential Pepr logs at start-up, which the module hides: capabilities/lib/hide-webhook-path.ts).
 */
function outputHits(label: string, output: string): string[] {
  const hits = findCanary(`${label} output`, output);
  if (/Using API path: (?!<redacted>)/.test(output))
    hits.push(`webhook API path in ${label} output`);
  return hits;
}

/** Runs the operator; `kubeconfig` points it at another API server than the suite's. */
export async function startOperator(
  env: Record<string, string> = {},
  kubeconfig: string = inject("kubeconfig"),
): Promise<Operator> {
  ensureModuleBuilt();
  // Names the operator in canary hits: the test file that started it.
  const label = `operator of ${expect.getState().testPath?.replace(`${ROOT}/`, "") ?? "a test"}`;
  let output = "";
  const child = spawn(join(ROOT, "node_modules", ".bin", "tsx"), ["scripts/operator-local.ts"], {
    cwd: ROOT,
    env: {
      ...process.env,
      ...FAST_ENV,
      ...env,
      BESKAR7_SKIP_BUILD: "1",
      KUBECONFIG: kubeconfig,
    },
    stdio: ["ignore", "pipe", "pipe"],
    // Its own process group, so kill() takes the module's process down with it, like a pod dying.
    detached: true,
  });
  const ready = new Promise<void>((resolvePromise, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("[operator:local] ready:")) resolvePromise();
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.once("exit", code =>
      reject(new Error(`operator exited (${code}) before it was ready:\n${output.slice(-3000)}`)),
    );
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
  await ready.finally(() => clearTimeout(timer));
  const exited = new Promise<number | null>(r => child.once("exit", code => r(code)));
  const group = -child.pid!;
  /** tsx may exit before its children: wait until nothing of the operator's group is left. */
  const groupGone = async (forceAfterMs: number): Promise<void> => {
    const deadline = Date.now() + forceAfterMs;
    for (;;) {
      try {
        process.kill(group, 0);
      } catch {
        return; // no process left in the group
      }
      if (Date.now() > deadline) process.kill(group, "SIGKILL");
      await new Promise(r => setTimeout(r, 100));
    }
  };
  const port = /ready: webhooks at https:\/\/127\.0\.0\.1:(\d+)/.exec(output)?.[1];
  const operator: Operator = {
    child,
    output: () => output,
    stop: async () => {
      await searchMetricsForCanary(operator, label);
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGINT");
      const code = await exited;
      await groupGone(15_000);
      await removeWebhooksOf(kubeconfig, port);
      recordCanaryHits(inject("runDir"), outputHits(label, output));
      return code;
    },
    kill: async () => {
      await searchMetricsForCanary(operator, label);
      if (child.exitCode === null && child.signalCode === null) process.kill(group, "SIGKILL");
      await exited;
      await groupGone(0);
      await removeWebhooksOf(kubeconfig, port);
      recordCanaryHits(inject("runDir"), outputHits(label, output));
    },
  };
  return operator;
}

/**
 * Removes the webhook registrations that still point at a stopped operator's port. The operator
 * removes its own when it stops cleanly; after a kill, a crash, or a stop cut short on a loaded
 * machine they would stay, and every later request for a Beskar7 kind in the suite's shared API
 * server would fail calling a webhook that is gone. A newer operator's registrations (another
 * port) are left alone.
 */
async function removeWebhooksOf(kubeconfig: string, port: string | undefined): Promise<void> {
  if (!port) return;
  const config = new KubeConfig();
  config.loadFromFile(kubeconfig);
  const api = config.makeApiClient(AdmissionregistrationV1Api);
  const ours = (c: { webhooks?: Array<{ clientConfig?: { url?: string } }> }) =>
    c.webhooks?.some(w => w.clientConfig?.url?.startsWith(`https://127.0.0.1:${port}/`));
  const ignoreGone = (err: unknown) => {
    if ((err as { code?: number }).code !== 404) throw err;
  };
  for (const c of (await api.listMutatingWebhookConfiguration()).items.filter(ours)) {
    await api.deleteMutatingWebhookConfiguration({ name: c.metadata!.name! }).catch(ignoreGone);
  }
  for (const c of (await api.listValidatingWebhookConfiguration()).items.filter(ours)) {
    await api.deleteValidatingWebhookConfiguration({ name: c.metadata!.name! }).catch(ignoreGone);
  }
}

/** Records canary hits in the module's metrics while it still runs; a failed read is not a hit
 *  (the module may be gone already: stop() after a crash). */
async function searchMetricsForCanary(operator: Operator, label: string): Promise<void> {
  if (operator.child.exitCode !== null || operator.child.signalCode !== null) return;
  const timeout = new Promise<string>(r => setTimeout(() => r(""), 5_000).unref());
  const metrics = await Promise.race([scrapeMetrics(operator), timeout]).catch(() => "");
  recordCanaryHits(inject("runDir"), findCanary(`${label} metrics`, metrics));
}

/** The port of the operator module's webhook server (Pepr's HTTPS server, on 127.0.0.1). */
export function webhookPort(operator: Operator): number {
  const port = /ready: webhooks at https:\/\/127\.0\.0\.1:(\d+)/.exec(operator.output())?.[1];
  if (!port) throw new Error("the operator printed no webhook port");
  return Number(port);
}

/** The operator module's Prometheus metrics, read from its webhook port. */
export async function scrapeMetrics(operator: Operator): Promise<string> {
  const port = webhookPort(operator);
  const { request } = await import("node:https");
  return new Promise<string>((resolve, reject) => {
    // The module's own per-run certificate; this is a loopback read of its content.
    const req = request(
      { host: "127.0.0.1", port, path: "/metrics", rejectUnauthorized: false },
      res => {
        let text = "";
        res.on("data", d => (text += d));
        res.on("end", () => resolve(text));
      },
    );
    req.on("error", reject);
    req.end();
  });
}
