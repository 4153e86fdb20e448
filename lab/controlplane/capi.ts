// Builds Cluster API's own programs at the version the suite targets, from the Go module proxy:
// the core manager (sigs.k8s.io/cluster-api/core, the "manager" of a CAPI release), clusterctl
// (sigs.k8s.io/cluster-api/cmd/clusterctl) and the kubeadm bootstrap provider's manager
// (sigs.k8s.io/cluster-api/bootstrap/kubeadm). Built once into the user cache directory and reused;
// the module and build caches are Go's defaults, the same ones lab/controlplane/binaries.ts fills.
//
// sigs.k8s.io/cluster-api's go.mod replaces sigs.k8s.io/cluster-api/api with ./api, which a
// consumer cannot use, so a wrapper module requires both modules at the release and copies the
// release's own requirement list: the build then resolves every dependency at the version the
// release was tested with (left to itself, `go mod tidy` picks an old google.golang.org/genproto
// through the flatcar config transpiler and the build fails on an ambiguous import).
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

import { lock } from "./binaries";
import { CAPI_MODULE, CAPI_VERSION } from "./capi-crds";

const run = promisify(execFile);

/** The main packages, by the file name each is installed under (the names of a CAPI release). */
export const CAPI_PROGRAMS = {
  manager: `${CAPI_MODULE}/core`,
  clusterctl: `${CAPI_MODULE}/cmd/clusterctl`,
  "kubeadm-bootstrap-manager": `${CAPI_MODULE}/bootstrap/kubeadm`,
} as const;

export interface CapiBinaries {
  manager: string;
  clusterctl: string;
  kubeadmBootstrapManager: string;
  /** The downloaded sigs.k8s.io/cluster-api module (CRDs, webhook manifests). */
  moduleDir: string;
  source: "cache" | "built";
}

export function capiCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(base, "beskar7", `cluster-api-${CAPI_VERSION}`);
}

function inDir(
  dir: string,
): Pick<CapiBinaries, "manager" | "clusterctl" | "kubeadmBootstrapManager"> {
  return {
    manager: join(dir, "manager"),
    clusterctl: join(dir, "clusterctl"),
    kubeadmBootstrapManager: join(dir, "kubeadm-bootstrap-manager"),
  };
}

function complete(bins: ReturnType<typeof inDir>): boolean {
  return Object.values(bins).every(path => existsSync(path));
}

const goEnv = () => ({
  ...process.env,
  GOFLAGS: "-mod=mod",
  CGO_ENABLED: "0",
  GOTOOLCHAIN: "local",
});

/** go mod download of the release; returns its directory and go.mod path. */
async function downloadModule(cwd: string): Promise<{ dir: string; goMod: string }> {
  const { stdout } = await run(
    "go",
    ["mod", "download", "-json", `${CAPI_MODULE}@${CAPI_VERSION}`],
    {
      cwd,
      env: { ...goEnv(), GO111MODULE: "on" },
      maxBuffer: 16 << 20,
      timeout: 600_000,
    },
  );
  const info = JSON.parse(stdout) as { Dir?: string; GoMod?: string; Error?: string };
  if (!info.Dir || !info.GoMod) {
    throw new Error(`go mod download ${CAPI_MODULE}@${CAPI_VERSION}: ${info.Error ?? stdout}`);
  }
  return { dir: info.Dir, goMod: info.GoMod };
}

/**
 * Returns the paths of the manager, clusterctl and kubeadm-bootstrap-manager binaries of Cluster
 * API CAPI_VERSION, building them on first use. Safe to call from several processes at once.
 */
export async function ensureCapiBinaries(
  log: (line: string) => void = line => process.stderr.write(`${line}\n`),
): Promise<CapiBinaries> {
  const dir = capiCacheDir();
  await mkdir(dir, { recursive: true });
  const cached = inDir(join(dir, "bin"));
  if (complete(cached)) {
    return { ...cached, moduleDir: (await downloadModule(dir)).dir, source: "cache" };
  }

  const release = await lock(join(dir, "build.lock"), log);
  try {
    const module = await downloadModule(dir);
    if (complete(cached)) return { ...cached, moduleDir: module.dir, source: "cache" };
    const started = Date.now();
    log(
      `Building Cluster API ${CAPI_VERSION} (${Object.keys(CAPI_PROGRAMS).join(", ")}) from Go ` +
        `modules into ${dir} (first run only; a cold build takes many minutes)`,
    );
    await build(dir, module.goMod, log);
    log(`Built Cluster API binaries in ${Math.round((Date.now() - started) / 1000)} s`);
    return { ...cached, moduleDir: module.dir, source: "built" };
  } finally {
    await release();
  }
}

async function build(dir: string, upstreamGoMod: string, log: (line: string) => void) {
  const work = join(dir, "module");
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  const env = goEnv();

  const goMod = [
    "module beskar7.local/capi",
    "",
    "go 1.26",
    "",
    "require (",
    `\t${CAPI_MODULE} ${CAPI_VERSION}`,
    `\t${CAPI_MODULE}/api ${CAPI_VERSION}`,
    ")",
    "",
    "require (",
    ...upstreamRequirements(await readFile(upstreamGoMod, "utf8")).map(r => `\t${r}`),
    ")",
    "",
    "tool (",
    ...Object.values(CAPI_PROGRAMS).map(pkg => `\t${pkg}`),
    ")",
    "",
  ].join("\n");
  await writeFile(join(work, "go.mod"), goMod);

  log("  resolving modules (go mod tidy)");
  await run("go", ["mod", "tidy"], { cwd: work, env, maxBuffer: 64 << 20 });
  const out = join(dir, "bin.partial");
  await rm(out, { recursive: true, force: true });
  await mkdir(out, { recursive: true });
  log(`  compiling (go build ${Object.values(CAPI_PROGRAMS).join(" ")})`);
  const progress = setInterval(() => log("  still compiling ..."), 120_000);
  try {
    await run(
      "go",
      [
        "build",
        "-trimpath",
        `-ldflags=-s -w ${versionFlags()}`,
        "-o",
        `${out}/`,
        ...Object.values(CAPI_PROGRAMS),
      ],
      { cwd: work, env, maxBuffer: 64 << 20 },
    );
  } finally {
    clearInterval(progress);
  }
  // go build names each binary after its package's last element: core, clusterctl, kubeadm.
  await rename(join(out, "core"), join(out, "manager"));
  await rename(join(out, "kubeadm"), join(out, "kubeadm-bootstrap-manager"));
  await rm(join(dir, "bin"), { recursive: true, force: true });
  await rename(out, join(dir, "bin"));
}

/** The `require` lines of a go.mod (both forms), without comments, except the module's own API. */
export function upstreamRequirements(goMod: string): string[] {
  const found: string[] = [];
  let inBlock = false;
  for (const raw of goMod.split("\n")) {
    const line = raw.replace(/\/\/.*$/, "").trim();
    if (line === "require (") inBlock = true;
    else if (inBlock && line === ")") inBlock = false;
    else if (inBlock && line) found.push(line);
    else if (line.startsWith("require ") && !line.endsWith("(")) found.push(line.slice(8).trim());
  }
  return found.filter(r => !r.startsWith(`${CAPI_MODULE}/api `));
}

/** What a release build stamps (hack/scripts/release/version.sh), so that `clusterctl version`
 *  and the managers' startup log report the release instead of an empty version. */
function versionFlags(): string {
  const [major, minor] = CAPI_VERSION.replace(/^v/, "").split(".");
  const pkg = `${CAPI_MODULE}/version`;
  return [
    `-X ${pkg}.gitVersion=${CAPI_VERSION}`,
    `-X ${pkg}.gitMajor=${major}`,
    `-X ${pkg}.gitMinor=${minor}`,
    `-X ${pkg}.gitTreeState=clean`,
  ].join(" ");
}
