// Cluster API's own core manager and kubeadm bootstrap manager, run as local processes against a
// test API server (lab/controlplane/controlplane.ts), installed the way a clusterctl release would
// install them but without a Deployment, Service or cert-manager:
//
//  - the CRDs come from the module (core/config/crd/bases, bootstrap/kubeadm/config/crd/bases) with
//    the labels the release's kustomization adds: cluster.x-k8s.io/provider, and on the kubeadm
//    bootstrap CRDs the contract labels cluster.x-k8s.io/v1beta1 and /v1beta2, without which the
//    core manager cannot resolve the contract of a KubeadmConfig(Template) and refuses it;
//  - every CRD serving several versions converts through its manager's /convert endpoint, as the
//    release's webhook_in_*.yaml patches set it up (by URL here, with this run's CA bundle);
//  - the mutating and validating webhooks of config/webhook/manifests.yaml are registered by URL
//    (https://127.0.0.1:<port>/<path>), renamed so that they cannot collide with a real install.
//    Without the defaulting webhooks a MachineDeployment fails ("unexpected deployment strategy
//    type").
//
// The managers use the kubeconfig they are given (the suite's admin, in system:masters), so no RBAC
// is installed. Their health, readiness and metrics listeners are bound to 127.0.0.1; the webhook
// server has no bind-address flag and listens on the port on all interfaces (it only answers TLS
// with this run's throwaway certificate and serves admission and conversion, nothing else).
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { get } from "node:http";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { parseAllDocuments, stringify } from "yaml";

import { ensureControlPlaneBinaries } from "./binaries";
import { ensureCapiBinaries, type CapiBinaries } from "./capi";
import { freePort } from "./controlplane";
import { servingCertificate } from "./pki";

/** The field manager of everything the harness applies, so that other appliers of the same CRDs
 *  (tests applying the plain bases) neither conflict with nor remove what it adds. */
export const FIELD_MANAGER = "beskar7-capi-harness";
/** Prefix of the webhook configurations it registers. */
export const WEBHOOK_PREFIX = "beskar7-test-capi-";

type Json = Record<string, unknown>;

interface Component {
  name: "manager" | "kubeadm-bootstrap-manager";
  binary: string;
  crdDir: string;
  webhookManifests: string;
  labels: Record<string, string>;
}

export interface CapiManagerOptions {
  kubeconfig: string;
  /** kubectl binary; defaults to the suite's (lab/controlplane/binaries.ts). */
  kubectl?: string;
  /** Working directory for certificates and logs; a temporary one (removed by stop) if unset. */
  dir?: string;
  log?: (line: string) => void;
  /** Extra flags for each manager, e.g. ["--feature-gates=ClusterTopology=true"]. */
  args?: Partial<Record<Component["name"], string[]>>;
  readyTimeoutMs?: number;
  /** How much of each manager's output to keep in memory for error messages (default 64 KiB). */
  logTailBytes?: number;
}

export interface CapiManagerProcess {
  pid: number;
  args: string[];
  logFile: string;
  webhookPort: number;
  healthAddress: string;
  diagnosticsAddress: string;
  /** The last logTailBytes of its output. */
  tail(): string;
}

export interface CapiManagers {
  dir: string;
  binaries: CapiBinaries;
  manager: CapiManagerProcess;
  bootstrap: CapiManagerProcess;
  /** Names of the CRDs installed, and of the webhook configurations registered. */
  crds: string[];
  webhookConfigurations: string[];
  /** Both managers' log tails, for an assertion message. */
  logs(): string;
  /** Removes the webhook registrations and conversion webhooks, then stops the managers. */
  stop(): Promise<void>;
}

export async function startCapi(opts: CapiManagerOptions): Promise<CapiManagers> {
  const log = opts.log ?? (line => process.stderr.write(`[capi] ${line}\n`));
  const binaries = await ensureCapiBinaries(log);
  const kubectlBin = opts.kubectl ?? (await ensureControlPlaneBinaries(log)).kubectl;
  const ownDir = !opts.dir;
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), "beskar7-capi-")));
  await mkdir(join(dir, "certs"), { recursive: true });
  const kubectl = (args: string[], input?: string) =>
    runKubectl(kubectlBin, ["--kubeconfig", opts.kubeconfig, ...args], input);

  const components: Component[] = [
    {
      name: "manager",
      binary: binaries.manager,
      crdDir: join(binaries.moduleDir, "core/config/crd/bases"),
      webhookManifests: join(binaries.moduleDir, "core/config/webhook/manifests.yaml"),
      labels: { "cluster.x-k8s.io/provider": "cluster-api" },
    },
    {
      name: "kubeadm-bootstrap-manager",
      binary: binaries.kubeadmBootstrapManager,
      crdDir: join(binaries.moduleDir, "bootstrap/kubeadm/config/crd/bases"),
      webhookManifests: join(binaries.moduleDir, "bootstrap/kubeadm/config/webhook/manifests.yaml"),
      labels: {
        "cluster.x-k8s.io/provider": "bootstrap-kubeadm",
        "cluster.x-k8s.io/v1beta1": "v1beta1",
        "cluster.x-k8s.io/v1beta2": "v1beta2",
      },
    },
  ];

  const cert = servingCertificate(["127.0.0.1", "localhost"], "capi-webhook");
  await writeFile(join(dir, "certs", "tls.crt"), cert.certPem);
  await writeFile(join(dir, "certs", "tls.key"), cert.keyPem, { mode: 0o600 });
  const caBundle = Buffer.from(cert.caPem).toString("base64");
  const ports = await distinctPorts(components.length * 3);

  const children: ChildProcess[] = [];
  const crdNames: string[] = [];
  const convertedCrds: string[] = [];
  const webhookConfigurations: string[] = [];
  const processes: CapiManagerProcess[] = [];

  const cleanup = async (): Promise<void> => {
    if (webhookConfigurations.length > 0) {
      for (const name of webhookConfigurations) {
        const kind = name.includes("validating")
          ? "validatingwebhookconfiguration"
          : "mutatingwebhookconfiguration";
        await kubectl(["delete", kind, name, "--ignore-not-found", "--wait=false"]);
      }
    }
    for (const crd of convertedCrds) {
      // Back to the default, so that a later reader of the CRD is not sent to a dead endpoint.
      await kubectl([
        "patch",
        "crd",
        crd,
        "--type=merge",
        "-p",
        '{"spec":{"conversion":{"strategy":"None","webhook":null}}}',
      ]);
    }
    await Promise.all(children.map(child => terminate(child)));
    if (ownDir) await rm(dir, { recursive: true, force: true });
  };

  try {
    // CRDs, labelled and with conversion by URL.
    const crdDocs: Json[] = [];
    for (const [i, component] of components.entries()) {
      const webhookPort = ports[i * 3]!;
      const files = (await readdir(component.crdDir)).filter(f => f.endsWith(".yaml")).sort();
      for (const file of files) {
        const crd = (await readYamlDocs(join(component.crdDir, file)))[0]!;
        const metadata = crd.metadata as { name: string; labels?: Record<string, string> };
        metadata.labels = { ...metadata.labels, ...component.labels };
        const spec = crd.spec as { versions: Array<{ served: boolean }>; conversion?: Json };
        if (spec.versions.filter(v => v.served).length > 1) {
          spec.conversion = {
            strategy: "Webhook",
            webhook: {
              conversionReviewVersions: ["v1"],
              clientConfig: { url: `https://127.0.0.1:${webhookPort}/convert`, caBundle },
            },
          };
          convertedCrds.push(metadata.name);
        }
        crdNames.push(metadata.name);
        crdDocs.push(crd);
      }
    }
    await applyDocs(kubectl, crdDocs);
    await mustKubectl(kubectl, [
      "wait",
      "--for=condition=Established",
      "--timeout=120s",
      ...crdNames.map(n => `crd/${n}`),
    ]);
    log(
      `installed ${crdNames.length} Cluster API CRDs (${convertedCrds.length} convert by webhook)`,
    );

    // The managers.
    for (const [i, component] of components.entries()) {
      const [webhookPort, healthPort, diagnosticsPort] = ports.slice(i * 3, i * 3 + 3) as [
        number,
        number,
        number,
      ];
      const args = [
        `--kubeconfig=${opts.kubeconfig}`,
        "--leader-elect=false",
        `--webhook-port=${webhookPort}`,
        `--webhook-cert-dir=${join(dir, "certs")}`,
        `--health-addr=127.0.0.1:${healthPort}`,
        `--diagnostics-address=127.0.0.1:${diagnosticsPort}`,
        "--insecure-diagnostics=true",
        ...(opts.args?.[component.name] ?? []),
      ];
      const logFile = join(dir, `${component.name}.log`);
      const { child, tail } = launch(component.binary, args, logFile, opts.logTailBytes ?? 65536);
      children.push(child);
      processes.push({
        pid: child.pid!,
        args,
        logFile,
        webhookPort,
        healthAddress: `127.0.0.1:${healthPort}`,
        diagnosticsAddress: `127.0.0.1:${diagnosticsPort}`,
        tail,
      });
    }
    const deadline = Date.now() + (opts.readyTimeoutMs ?? 120_000);
    await Promise.all(
      processes.map((p, i) => waitReady(p, children[i]!, components[i]!.name, deadline)),
    );
    log(
      `manager (pid ${processes[0]!.pid}) and kubeadm-bootstrap-manager (pid ${processes[1]!.pid}) ready`,
    );

    // Their admission webhooks, by URL.
    const configs: Json[] = [];
    for (const [i, component] of components.entries()) {
      const prefix = `${WEBHOOK_PREFIX}${component.name === "manager" ? "core" : "kubeadm-bootstrap"}-`;
      for (const doc of await readYamlDocs(component.webhookManifests)) {
        const metadata = doc.metadata as { name: string };
        metadata.name = `${prefix}${metadata.name}`;
        for (const webhook of doc.webhooks as Array<{ clientConfig: Json }>) {
          const service = webhook.clientConfig.service as { path: string };
          webhook.clientConfig = {
            url: `https://127.0.0.1:${processes[i]!.webhookPort}${service.path}`,
            caBundle,
          };
        }
        webhookConfigurations.push(metadata.name);
        configs.push(doc);
      }
    }
    await applyDocs(kubectl, configs);
    await waitForDefaulting(kubectl, deadline);
    log(`registered ${webhookConfigurations.join(", ")}`);
  } catch (err) {
    const tails = processes
      .map(p => `--- ${basename(p.logFile)} (last output) ---\n${p.tail()}`)
      .join("\n");
    await cleanup().catch(() => undefined);
    const message = err instanceof Error ? err.message : String(err);
    throw new Error(`starting Cluster API managers failed: ${message}\n${tails}`, { cause: err });
  }

  return {
    dir,
    binaries,
    manager: processes[0]!,
    bootstrap: processes[1]!,
    crds: crdNames,
    webhookConfigurations,
    logs: () => processes.map(p => `--- ${basename(p.logFile)} ---\n${p.tail()}`).join("\n"),
    stop: cleanup,
  };
}

async function readYamlDocs(file: string): Promise<Json[]> {
  return parseAllDocuments(await readFile(file, "utf8"))
    .map(doc => doc.toJS() as Json | null)
    .filter((doc): doc is Json => !!doc);
}

async function distinctPorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

function launch(
  bin: string,
  args: string[],
  logFile: string,
  tailBytes: number,
): { child: ChildProcess; tail: () => string } {
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
  const file = createWriteStream(logFile, { flags: "a" });
  let tail = "";
  const keep = (chunk: Buffer) => {
    file.write(chunk);
    tail += chunk.toString();
    if (tail.length > tailBytes * 2) tail = tail.slice(-tailBytes);
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  child.on("close", () => file.end());
  return { child, tail: () => tail.slice(-tailBytes) };
}

async function waitReady(
  p: CapiManagerProcess,
  child: ChildProcess,
  name: string,
  deadline: number,
): Promise<void> {
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}) before it was ready`);
    }
    if ((await httpStatus(`http://${p.healthAddress}/readyz`)) === 200) return;
    if (Date.now() > deadline) throw new Error(`${name} was not ready at ${p.healthAddress}`);
    await new Promise(r => setTimeout(r, 250));
  }
}

function httpStatus(url: string): Promise<number> {
  return new Promise(resolve => {
    const req = get(url, { timeout: 2000 }, res => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", () => resolve(0));
    req.on("timeout", () => req.destroy());
  });
}

/** Until the API server calls the new webhooks: a server-side dry run of a MachineDeployment comes
 *  back with the labels CAPI's defaulting webhook adds. */
async function waitForDefaulting(kubectl: Kubectl, deadline: number): Promise<void> {
  const probe = {
    apiVersion: "cluster.x-k8s.io/v1beta2",
    kind: "MachineDeployment",
    metadata: { name: "beskar7-webhook-probe", namespace: "default" },
    spec: {
      clusterName: "probe",
      template: {
        spec: {
          clusterName: "probe",
          bootstrap: { dataSecretName: "probe" },
          infrastructureRef: {
            apiGroup: "infrastructure.cluster.x-k8s.io",
            kind: "Probe",
            name: "probe",
          },
        },
      },
    },
  };
  let last = "";
  for (;;) {
    const result = await kubectl(
      ["create", "--dry-run=server", "-o", "json", "-f", "-"],
      JSON.stringify(probe),
    );
    if (result.code === 0) {
      const created = JSON.parse(result.stdout) as {
        spec?: { selector?: { matchLabels?: Record<string, string> } };
      };
      if (created.spec?.selector?.matchLabels?.["cluster.x-k8s.io/cluster-name"]) return;
      last = "not defaulted yet";
    } else {
      last = result.stderr;
    }
    if (Date.now() > deadline) {
      throw new Error(`CAPI's defaulting webhook did not answer for a MachineDeployment: ${last}`);
    }
    await new Promise(r => setTimeout(r, 250));
  }
}

type Kubectl = (args: string[], input?: string) => Promise<KubectlResult>;

interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

function runKubectl(bin: string, args: string[], input?: string): Promise<KubectlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: "pipe" });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("close", code => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(input ?? "");
  });
}

/** Server-side apply of documents under this harness's field manager, taking over conflicts. */
async function applyDocs(kubectl: Kubectl, docs: unknown[]): Promise<void> {
  await mustKubectl(
    kubectl,
    ["apply", "--server-side", "--force-conflicts", `--field-manager=${FIELD_MANAGER}`, "-f", "-"],
    docs.map(d => stringify(d)).join("---\n"),
  );
}

async function mustKubectl(kubectl: Kubectl, args: string[], input?: string): Promise<string> {
  const result = await kubectl(args, input);
  if (result.code !== 0) {
    throw new Error(`kubectl ${args.join(" ")} failed (${result.code}):\n${result.stderr}`);
  }
  return result.stdout;
}

/** SIGTERM, then SIGKILL after 10 s. */
async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>(resolve => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}
