// kubectl against the suite's API server (tests/env/global-setup.ts sets KUBECONFIG and
// BESKAR7_KUBECTL). Tests go through the real CLI so they exercise exactly what users run.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readdir } from "node:fs/promises";
import { join, resolve } from "node:path";

export const ROOT = resolve(__dirname, "../../..");
export const GENERATED = join(ROOT, "manifests/generated");

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

function kubectlPath(): string {
  const path = process.env.BESKAR7_KUBECTL;
  if (!path) throw new Error("BESKAR7_KUBECTL is not set: run through the integration project");
  return path;
}

export function kubectl(args: string[], input?: string): Promise<KubectlResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(kubectlPath(), args, { env: process.env, stdio: "pipe" });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", code => resolvePromise({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(input ?? "");
  });
}

/** kubectl that must succeed; the error carries kubectl's output. */
export async function mustKubectl(args: string[], input?: string): Promise<string> {
  const result = await kubectl(args, input);
  if (result.code !== 0) {
    throw new Error(`kubectl ${args.join(" ")} failed (${result.code}):\n${result.stderr}`);
  }
  return result.stdout;
}

/** Server-side apply of YAML text (`-f -`), optionally into a namespace. */
export function applyYaml(yaml: string, namespace?: string): Promise<KubectlResult> {
  const args = ["apply", "--server-side", "--field-manager=beskar7-tests", "-f", "-"];
  if (namespace) args.push("-n", namespace);
  return kubectl(args, yaml);
}

/** A new namespace per test file (namespaces are never finalized in the test control plane). */
export async function freshNamespace(prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString("hex")}`;
  await mustKubectl(["create", "namespace", name]);
  return name;
}

export async function generatedCrdFiles(): Promise<string[]> {
  const dir = join(GENERATED, "crds");
  return (await readdir(dir)).filter(name => name.endsWith(".yaml")).map(name => join(dir, name));
}

/**
 * Applies the committed CRDs with server-side apply and waits until they are served. The files
 * share one API server: a file that installed the release with clusterctl (field manager
 * "clusterctl") must not make a later file's apply fail on a conflict, hence --force-conflicts.
 */
export async function installBeskar7Crds(): Promise<void> {
  const files = await generatedCrdFiles();
  await mustKubectl([
    "apply",
    "--server-side",
    "--force-conflicts",
    ...files.flatMap(file => ["-f", file]),
  ]);
  await mustKubectl([
    "wait",
    "--for=condition=Established",
    "--timeout=60s",
    ...files.flatMap(file => ["-f", file]),
  ]);
}

/** Retries fn until it stops throwing (discovery and OpenAPI publishing lag CRD creation). */
export async function eventually<T>(fn: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise(r => setTimeout(r, 500));
    }
  }
}
