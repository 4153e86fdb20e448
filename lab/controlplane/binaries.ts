// Finds or builds the control-plane binaries the test environment runs: etcd, kube-apiserver and
// kubectl at the Kubernetes version Cluster API v1.14 tests against.
//
// Order of preference:
//   1. $KUBEBUILDER_ASSETS, the directory controller-runtime's setup-envtest fills, so a developer
//      who already has envtest binaries pays nothing;
//   2. a cache under the user's cache directory, filled by step 3 on an earlier run;
//   3. a build from Go modules through the Go module proxy with this machine's Go toolchain.
//
// k8s.io/kubernetes is not meant to be consumed as a module: its go.mod requires every staging
// module (k8s.io/api, k8s.io/client-go, ...) at v0.0.0 and replaces them with ./staging paths that
// only exist in its own repository. A small wrapper module that replaces each staging module with
// its published v0.<minor>.<patch> release makes it buildable.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile, open } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

import { alive } from "./process";

const run = promisify(execFile);

/** The Kubernetes release the suite runs; Cluster API v1.14 is tested against 1.36. */
export const KUBERNETES_VERSION = "1.36.3";

export interface ControlPlaneBinaries {
  etcd: string;
  kubeApiserver: string;
  kubectl: string;
  /** Where they came from, for the log line a person reads when a run is slow. */
  source: "KUBEBUILDER_ASSETS" | "cache" | "built";
}

const NAMES = { etcd: "etcd", kubeApiserver: "kube-apiserver", kubectl: "kubectl" } as const;

function inDir(dir: string): Omit<ControlPlaneBinaries, "source"> {
  return {
    etcd: join(dir, NAMES.etcd),
    kubeApiserver: join(dir, NAMES.kubeApiserver),
    kubectl: join(dir, NAMES.kubectl),
  };
}

function complete(bins: Omit<ControlPlaneBinaries, "source">): boolean {
  return existsSync(bins.etcd) && existsSync(bins.kubeApiserver) && existsSync(bins.kubectl);
}

export function cacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(base, "beskar7", `kubernetes-${KUBERNETES_VERSION}`);
}

/**
 * Returns paths to the three binaries, building them once if no source has them. Safe to call
 * from several processes at once: the build holds a lock file and publishes atomically.
 */
export async function ensureControlPlaneBinaries(
  log: (line: string) => void = line => process.stderr.write(`${line}\n`),
): Promise<ControlPlaneBinaries> {
  const assets = process.env.KUBEBUILDER_ASSETS;
  if (assets) {
    const bins = inDir(assets);
    if (!complete(bins)) {
      throw new Error(
        `KUBEBUILDER_ASSETS=${assets} lacks one of etcd, kube-apiserver, kubectl; ` +
          "unset it to build them from Go modules instead",
      );
    }
    return { ...bins, source: "KUBEBUILDER_ASSETS" };
  }

  const dir = cacheDir();
  const cached = inDir(join(dir, "bin"));
  if (complete(cached)) return { ...cached, source: "cache" };

  await mkdir(dir, { recursive: true });
  const release = await lock(join(dir, "build.lock"), log);
  try {
    if (complete(cached)) return { ...cached, source: "cache" };
    const started = Date.now();
    log(
      `Building etcd, kube-apiserver and kubectl ${KUBERNETES_VERSION} from Go modules ` +
        `into ${dir} (first run only; this takes several minutes)`,
    );
    await buildFromGoModules(dir, log);
    log(`Built control-plane binaries in ${Math.round((Date.now() - started) / 1000)} s`);
    return { ...cached, source: "built" };
  } finally {
    await release();
  }
}

async function buildFromGoModules(dir: string, log: (line: string) => void): Promise<void> {
  const work = join(dir, "module");
  await rm(work, { recursive: true, force: true });
  await mkdir(join(work, "cmd", "etcd"), { recursive: true });
  const env = { ...process.env, GOFLAGS: "-mod=mod", CGO_ENABLED: "0", GOTOOLCHAIN: "local" };

  // Read the kubernetes module's own go.mod to learn which staging modules it replaces.
  const { stdout } = await run(
    "go",
    ["mod", "download", "-json", `k8s.io/kubernetes@v${KUBERNETES_VERSION}`],
    { cwd: work, env, maxBuffer: 16 << 20 },
  );
  const download = JSON.parse(stdout) as { GoMod?: string; Error?: string };
  if (!download.GoMod) throw new Error(`go mod download k8s.io/kubernetes: ${download.Error}`);
  const staging = stagingModules(await readFile(download.GoMod, "utf8"));
  if (staging.length === 0) throw new Error("found no staging modules in k8s.io/kubernetes go.mod");

  const stagingVersion = `v0.${KUBERNETES_VERSION.split(".").slice(1).join(".")}`;
  const goMod = [
    "module beskar7.local/testenv",
    "",
    "go 1.26",
    "",
    `require k8s.io/kubernetes v${KUBERNETES_VERSION}`,
    "",
    ...staging.map(m => `replace ${m} => ${m} ${stagingVersion}`),
    "",
  ].join("\n");
  await writeFile(join(work, "go.mod"), goMod);
  // etcd's server module has a main package only in etcd's root module, which pins its own
  // dependencies; a two-line main over etcdmain builds etcd against the versions Kubernetes uses.
  await writeFile(
    join(work, "cmd", "etcd", "main.go"),
    'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n',
  );
  await writeFile(
    join(work, "tools.go"),
    '//go:build tools\n\npackage tools\n\nimport (\n\t_ "k8s.io/kubernetes/cmd/kube-apiserver"\n\t_ "k8s.io/kubernetes/cmd/kubectl"\n)\n',
  );

  log("  resolving modules (go mod tidy)");
  await run("go", ["mod", "tidy"], { cwd: work, env, maxBuffer: 64 << 20 });
  const out = join(dir, "bin.partial");
  await rm(out, { recursive: true, force: true });
  await mkdir(out, { recursive: true });
  log("  compiling (go build)");
  await run(
    "go",
    [
      "build",
      "-trimpath",
      `-ldflags=-s -w ${versionFlags()}`,
      "-o",
      `${out}/`,
      "k8s.io/kubernetes/cmd/kube-apiserver",
      "k8s.io/kubernetes/cmd/kubectl",
      "./cmd/etcd",
    ],
    { cwd: work, env, maxBuffer: 64 << 20 },
  );
  await rm(join(dir, "bin"), { recursive: true, force: true });
  await rename(out, join(dir, "bin"));
}

/** Stamps the release into the binaries, as Kubernetes' own build does, so that `kubectl version`
 *  and the API server's /version report 1.36.x instead of v0.0.0-master. */
function versionFlags(): string {
  const [major, minor] = KUBERNETES_VERSION.split(".");
  const stamp = (pkg: string) =>
    [
      `-X ${pkg}.gitVersion=v${KUBERNETES_VERSION}`,
      `-X ${pkg}.gitMajor=${major}`,
      `-X ${pkg}.gitMinor=${minor}`,
      `-X ${pkg}.gitTreeState=clean`,
    ].join(" ");
  return `${stamp("k8s.io/component-base/version")} ${stamp("k8s.io/client-go/pkg/version")}`;
}

/** The module paths k8s.io/kubernetes replaces with ./staging directories. */
export function stagingModules(goMod: string): string[] {
  const found = new Set<string>();
  for (const match of goMod.matchAll(
    /^\s*(?:replace\s+)?(k8s\.io\/[\w.-]+)\s+=>\s+\.\/staging\//gm,
  )) {
    if (match[1]) found.add(match[1]);
  }
  return [...found].sort();
}

/** An exclusive lock on a file; a stale lock from a dead process is taken over. */
export async function lock(
  path: string,
  log: (line: string) => void,
): Promise<() => Promise<void>> {
  let waitedLogged = false;
  for (;;) {
    try {
      const handle = await open(path, "wx");
      await handle.writeFile(String(process.pid));
      await handle.close();
      return () => rm(path, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const holder = Number((await readFile(path, "utf8").catch(() => "")).trim());
      if (!holder || !alive(holder)) {
        await rm(path, { force: true });
        continue;
      }
      if (!waitedLogged) {
        log(`  waiting for process ${holder}, which is building the binaries`);
        waitedLogged = true;
      }
      await new Promise(resolve => setTimeout(resolve, 2000));
    }
  }
}
