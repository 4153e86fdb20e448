// Vitest global setup for the integration project: one real etcd + kube-apiserver for the whole
// run, torn down afterwards. Test files reach it through process.env.KUBECONFIG (inherited by the
// test workers, which start after this runs) or inject("kubeconfig").
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type {} from "vitest";
import type { TestProject } from "vitest/node";

import { execFile } from "node:child_process";
import { promisify } from "node:util";

import { capiCrdPaths } from "../../lab/controlplane/capi-crds";
import { searchRunForCanary } from "./canary-check";
import { startControlPlane } from "../../lab/controlplane/controlplane";

declare module "vitest" {
  export interface ProvidedContext {
    kubeconfig: string;
    kubectl: string;
    apiServerURL: string;
    /** A directory for this run; tests/integration/support keeps the built module's marker here. */
    runDir: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  const dir = await mkdtemp(join(tmpdir(), "beskar7-testenv-"));
  const plane = await startControlPlane(join(dir, "controlplane"));
  process.stderr.write(
    `[testenv] kube-apiserver ${plane.apiServerURL} ready in ${Date.now() - started} ms ` +
      `(binaries: ${plane.binaries.source}, ${plane.binaries.kubeApiserver})\n`,
  );
  // Beskar7 is a Cluster API provider: its machine and cluster controllers watch Cluster API's
  // Machines and Clusters, so their CRDs are there from the start, as in any real installation.
  const capi = await capiCrdPaths();
  await promisify(execFile)(plane.binaries.kubectl, [
    "--kubeconfig",
    plane.kubeconfig,
    "apply",
    "--server-side",
    "--force-conflicts",
    ...[...capi.core, ...capi.kubeadmBootstrap].flatMap(file => ["-f", file]),
  ]);
  process.env.KUBECONFIG = plane.kubeconfig;
  process.env.BESKAR7_KUBECTL = plane.binaries.kubectl;
  project.provide("kubeconfig", plane.kubeconfig);
  project.provide("kubectl", plane.binaries.kubectl);
  project.provide("apiServerURL", plane.apiServerURL);
  project.provide("runDir", dir);
  return async () => {
    // The canary search runs while the API server is still up; its verdict comes after cleanup.
    const hits = await searchRunForCanary(plane.binaries.kubectl, plane.kubeconfig, dir).catch(
      (err: Error) => [`the canary search itself failed: ${err.message}`],
    );
    await plane.stop();
    await rm(dir, { recursive: true, force: true });
    if (hits.length > 0) {
      const list = hits.map(h => `  - ${h}`).join("\n");
      process.stderr.write(`[testenv] CANARY FOUND (${hits.length}):\n${list}\n`);
      // Vitest only logs a teardown's error ("error during close") and exits 0: the exit code is ours.
      process.exitCode = 1;
      throw new Error(`the integration run leaked its canary secret (${hits.length}):\n${list}`);
    }
  };
}
