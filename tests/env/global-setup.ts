// Vitest global setup for the integration project: one real etcd + kube-apiserver for the whole
// run, torn down afterwards. Test files reach it through process.env.KUBECONFIG (inherited by the
// test workers, which start after this runs) or inject("kubeconfig").
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type {} from "vitest";
import type { TestProject } from "vitest/node";

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
  process.env.KUBECONFIG = plane.kubeconfig;
  process.env.BESKAR7_KUBECTL = plane.binaries.kubectl;
  project.provide("kubeconfig", plane.kubeconfig);
  project.provide("kubectl", plane.binaries.kubectl);
  project.provide("apiServerURL", plane.apiServerURL);
  project.provide("runDir", dir);
  return async () => {
    await plane.stop();
    await rm(dir, { recursive: true, force: true });
  };
}
