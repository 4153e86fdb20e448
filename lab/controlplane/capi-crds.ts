// Cluster API CRDs for integration tests, taken from the sigs.k8s.io/cluster-api Go module as
// published on the Go module proxy (the same bytes a clusterctl release is built from). The module
// cache lives under the user cache dir so repeated runs work offline and nothing lands in the repo.
import { execFile } from "node:child_process";
import { readdir } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export const CAPI_MODULE = "sigs.k8s.io/cluster-api";
export const CAPI_VERSION = "v1.14.2";

/** CRD directories inside the module (core moved under core/ in v1.11). */
const CRD_DIRS = {
  core: "core/config/crd/bases",
  kubeadmControlPlane: "controlplane/kubeadm/config/crd/bases",
  kubeadmBootstrap: "bootstrap/kubeadm/config/crd/bases",
} as const;

export type CapiCrdGroup = keyof typeof CRD_DIRS;
export type CapiCrdPaths = Record<CapiCrdGroup, string[]>;

function userCacheDir(): string {
  return process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache");
}

/**
 * Downloads (or reuses) sigs.k8s.io/cluster-api@version through `go mod download` and returns the
 * CRD manifest paths, grouped. Throws with go's own output when the toolchain or proxy fails.
 */
export async function capiCrdPaths(version: string = CAPI_VERSION): Promise<CapiCrdPaths> {
  const env = {
    ...process.env,
    GOMODCACHE: join(userCacheDir(), "beskar7", "go-mod"),
    // Read-write module cache so the cache dir can be removed with plain rm -rf.
    GOFLAGS: "-modcacherw",
    // Outside any module: no go.mod is consulted or written.
    GO111MODULE: "on",
  };
  let stdout: string;
  try {
    ({ stdout } = await run("go", ["mod", "download", "-json", `${CAPI_MODULE}@${version}`], {
      env,
      cwd: userCacheDir(),
      maxBuffer: 16 * 1024 * 1024,
      timeout: 600_000,
    }));
  } catch (error) {
    const detail = (error as { stdout?: string; stderr?: string }).stdout ?? "";
    throw new Error(`go mod download ${CAPI_MODULE}@${version} failed: ${detail}`, {
      cause: error,
    });
  }
  const info = JSON.parse(stdout) as { Dir?: string; Error?: string };
  if (!info.Dir) {
    throw new Error(`go mod download gave no module directory: ${info.Error ?? stdout}`);
  }
  const moduleDir = info.Dir;

  const entries = await Promise.all(
    Object.entries(CRD_DIRS).map(async ([group, dir]) => {
      const full = join(moduleDir, dir);
      const files = (await readdir(full)).filter(name => name.endsWith(".yaml")).sort();
      if (files.length === 0) throw new Error(`no CRDs in ${full}`);
      return [group, files.map(name => join(full, name))] as const;
    }),
  );
  return Object.fromEntries(entries) as CapiCrdPaths;
}
