// Small helpers for tests that talk to the suite's API server.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { K8s, kind } from "kubernetes-fluent-client";
import { inject } from "vitest";

const run = promisify(execFile);

export async function kubectl(
  args: string[],
  input?: string,
): Promise<{ stdout: string; stderr: string; code: number }> {
  const child = execFile(inject("kubectl"), ["--kubeconfig", inject("kubeconfig"), ...args]);
  if (input !== undefined) child.stdin!.end(input);
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", d => (stdout += d));
  child.stderr!.on("data", d => (stderr += d));
  const code = await new Promise<number>(resolve => child.on("close", c => resolve(c ?? 1)));
  return { stdout, stderr, code };
}

export async function createNamespace(prefix: string): Promise<string> {
  const name = `${prefix}-${Math.random().toString(36).slice(2, 8)}`;
  await K8s(kind.Namespace).Apply({ metadata: { name } });
  return name;
}

/** BMC credentials carry the label their owner must set for Beskar7 to use them (docs/api.md). */
const BMC_CREDENTIALS_LABEL = "beskar7.infrastructure.cluster.x-k8s.io/bmc-credentials";

/** A Secret; one holding a password is BMC credentials and gets the bmc-credentials label. */
export async function createSecret(
  namespace: string,
  name: string,
  data: Record<string, string>,
): Promise<void> {
  const labels = "password" in data ? { [BMC_CREDENTIALS_LABEL]: "true" } : undefined;
  await K8s(kind.Secret).Apply(
    { metadata: { name, namespace, ...(labels ? { labels } : {}) }, stringData: data },
    { force: true },
  );
}

/** Polls until check returns a value (not undefined/false), or fails with the last observation. */
export async function eventually<T>(
  check: () => Promise<T | undefined | false>,
  what: string,
  timeoutMs = 60_000,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
      last = value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}; last: ${describe(last)}`,
      );
    }
    await new Promise(r => setTimeout(r, intervalMs));
  }
}

function describe(value: unknown): string {
  if (value instanceof Error) return value.message;
  try {
    return JSON.stringify(value)?.slice(0, 2000) ?? String(value);
  } catch {
    return String(value);
  }
}

/** The fluent client rejects with {status, data}; this returns the API server's message. */
export async function rejection(
  promise: Promise<unknown>,
): Promise<{ status?: number; message: string }> {
  try {
    await promise;
  } catch (err) {
    const e = err as { status?: number; data?: { message?: string } | string; message?: string };
    const data = e.data;
    return {
      status: e.status,
      message: typeof data === "string" ? data : (data?.message ?? e.message ?? String(err)),
    };
  }
  throw new Error("expected the API server to reject the request, but it accepted it");
}

export async function events(
  namespace: string,
  name: string,
): Promise<Array<{ reason?: string; message?: string; type?: string }>> {
  const list = await K8s(kind.CoreEvent).InNamespace(namespace).Get();
  return list.items.filter(e => e.involvedObject?.name === name);
}

export { run };

/** Waits until the object's events include every expected reason (an event is recorded just
 *  after the status it reports), and returns all their reasons. */
export async function eventReasons(
  namespace: string,
  name: string,
  expected: string[],
): Promise<string[]> {
  return eventually(
    async () => {
      const reasons = (await events(namespace, name)).map(e => e.reason ?? "");
      return expected.every(r => reasons.includes(r)) && reasons;
    },
    `events ${expected.join(", ")} on ${namespace}/${name}`,
  );
}
