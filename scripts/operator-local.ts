// `npm run operator:local`: runs the Beskar7 Pepr module in the foreground against $KUBECONFIG
// (or the test control plane's .testenv/kubeconfig), admission webhooks included.
//
// It builds the module with `pepr build`, registers what the module needs (the pepr-system
// namespace, Pepr's store CRD, Beskar7's CRDs), starts the built module in Pepr's dev mode (the
// admission server and the watchers in one process) with a per-run TLS certificate and API path,
// and only once the server answers registers the webhook configurations that `pepr build`
// generated, pointed at https://127.0.0.1:<port>. On SIGINT/SIGTERM, or when the module dies, it
// removes the webhook registrations so the API server never calls a webhook that is gone.
import { spawn, type ChildProcess, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseAllDocuments } from "yaml";

import type * as KFC from "kubernetes-fluent-client";

import { freePort } from "../lab/controlplane/controlplane";
import { servingCertificate } from "../lab/controlplane/pki";
import { PEPR_STORE_CRD } from "./lib/pepr-store";

const ROOT = resolve(__dirname, "..");
// A plain parser on purpose: client-node's loadAllYaml builds typed models that rename
// x-kubernetes-* and default fields, which the API server then rejects.
const loadAllYaml = (text: string): unknown[] => parseAllDocuments(text).map(d => d.toJS());
const log = (line: string) => process.stderr.write(`[operator:local] ${line}\n`);

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  webhooks?: Array<{
    clientConfig: { url?: string; service?: { path?: string }; caBundle?: string };
  }>;
}

function kubeconfigPath(): string {
  if (process.env.KUBECONFIG) return process.env.KUBECONFIG;
  const local = join(ROOT, ".testenv", "kubeconfig");
  if (existsSync(local)) return local;
  throw new Error(
    "KUBECONFIG is not set and there is no .testenv/kubeconfig (npm run testenv:start)",
  );
}

async function main(): Promise<void> {
  process.env.KUBECONFIG = kubeconfigPath();
  const pkg = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as {
    pepr: { uuid: string; env?: Record<string, string> };
  };
  const name = `pepr-${pkg.pepr.uuid}`;

  if (process.env.BESKAR7_SKIP_BUILD !== "1") {
    log("building the module (pepr build)");
    execFileSync(join(ROOT, "node_modules", ".bin", "pepr"), ["build"], {
      cwd: ROOT,
      stdio: ["ignore", "ignore", "inherit"],
    });
  }
  const modulePath = join(ROOT, "dist", `${name}.js`);
  const generated = join(ROOT, "dist", `${name}-module.yaml`);
  const moduleYAML = existsSync(generated)
    ? generated
    : join(ROOT, "dist", `pepr-module-${pkg.pepr.uuid}.yaml`);
  if (!existsSync(modulePath) || !existsSync(moduleYAML)) {
    throw new Error(`pepr build did not produce ${modulePath} and ${moduleYAML}`);
  }

  // Imported after KUBECONFIG is settled: the fluent client reads it when first used.
  const { K8s, kind } = await import("kubernetes-fluent-client");
  const { KubeConfig, AuthenticationV1Api } = await import("@kubernetes/client-node");

  const docs = loadAllYaml(await readFile(moduleYAML, "utf8")) as Manifest[];
  const pick = (k: string) => docs.filter(d => d?.kind === k);

  const kc = new KubeConfig();
  kc.loadFromDefault();
  const review = await kc
    .makeApiClient(AuthenticationV1Api)
    .createSelfSubjectReview({
      body: { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" },
    })
    .catch(() => undefined);
  const identity = review?.status?.userInfo?.username;
  log(`API server ${kc.getCurrentCluster()?.server} as ${identity ?? "an unknown user"}`);

  for (const ns of pick("Namespace")) await K8s(kind.Namespace).Apply(ns as never, { force: true });
  await K8s(kind.CustomResourceDefinition).Apply(PEPR_STORE_CRD as never, { force: true });
  const crdDir = join(ROOT, "manifests", "generated", "crds");
  if (existsSync(crdDir)) {
    for (const file of readdirSync(crdDir)
      .filter(f => f.endsWith(".yaml"))
      .sort()) {
      for (const crd of loadAllYaml(await readFile(join(crdDir, file), "utf8")) as Manifest[]) {
        if (crd?.kind === "CustomResourceDefinition") {
          await K8s(kind.CustomResourceDefinition).Apply(crd as never, { force: true });
        }
      }
    }
  }
  await waitForCRDs(K8s, kind);

  const port = process.env.BESKAR7_WEBHOOK_PORT
    ? Number(process.env.BESKAR7_WEBHOOK_PORT)
    : await freePort();
  const tls = servingCertificate(["127.0.0.1", "localhost"]);
  const apiPath = randomBytes(32).toString("hex");
  const secrets = await mkdtemp(join(tmpdir(), "beskar7-operator-"));
  await writeFile(join(secrets, "tls.crt"), tls.certPem, { mode: 0o600 });
  await writeFile(join(secrets, "tls.key"), tls.keyPem, { mode: 0o600 });

  const operators = [
    process.env.BESKAR7_OPERATOR_USERNAMES,
    identity,
    `system:serviceaccount:pepr-system:${name}`,
  ].filter(Boolean);
  const child: ChildProcess = spawn(process.execPath, [modulePath], {
    cwd: ROOT,
    stdio: "inherit",
    env: {
      ...process.env,
      ...(pkg.pepr.env ?? {}),
      PEPR_MODE: "dev",
      PEPR_API_PATH: apiPath,
      PEPR_PRETTY_LOGS: process.env.PEPR_PRETTY_LOGS ?? "false",
      LOG_LEVEL: process.env.LOG_LEVEL ?? "info",
      SSL_KEY_PATH: join(secrets, "tls.key"),
      SSL_CERT_PATH: join(secrets, "tls.crt"),
      BESKAR7_WEBHOOK_PORT: String(port),
      BESKAR7_OPERATOR_USERNAMES: operators.join(","),
      // The lab's and the tests' simulated BMCs listen on 127.0.0.1, which production refuses.
      BESKAR7_ALLOW_BMC_ADDRESSES: process.env.BESKAR7_ALLOW_BMC_ADDRESSES ?? "loopback",
    },
  });

  const registered: Manifest[] = [];
  let stopping = false;
  const stop = async (code: number): Promise<never> => {
    if (!stopping) {
      stopping = true;
      for (const webhook of registered) {
        const k =
          webhook.kind === "MutatingWebhookConfiguration"
            ? kind.MutatingWebhookConfiguration
            : kind.ValidatingWebhookConfiguration;
        await K8s(k)
          .Delete(webhook.metadata.name)
          .catch(err => log(`could not remove ${webhook.kind}: ${err}`));
      }
      if (registered.length) log("removed the webhook registrations");
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise(r => child.once("exit", r));
        child.kill("SIGTERM");
        const force = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(force);
      }
      await rm(secrets, { recursive: true, force: true });
    }
    process.exit(code);
  };
  process.on("SIGINT", () => void stop(0));
  process.on("SIGTERM", () => void stop(0));
  child.on("exit", (code, signal) => {
    if (!stopping) {
      log(`the module exited (${signal ?? code}); cleaning up`);
      void stop(code || 1);
    }
  });

  await waitForHealthz(port, tls.caPem, 60_000);

  const webhooks = [
    ...pick("MutatingWebhookConfiguration"),
    ...pick("ValidatingWebhookConfiguration"),
  ];
  for (const webhook of webhooks) {
    for (const hook of webhook.webhooks ?? []) {
      const path = hook.clientConfig.service?.path ?? "";
      hook.clientConfig = {
        url: `https://127.0.0.1:${port}${path.replace(/[^/]+$/, apiPath)}`,
        caBundle: Buffer.from(tls.caPem).toString("base64"),
      };
    }
    const k =
      webhook.kind === "MutatingWebhookConfiguration"
        ? kind.MutatingWebhookConfiguration
        : kind.ValidatingWebhookConfiguration;
    await K8s(k).Apply(webhook as never, { force: true });
    registered.push(webhook);
  }
  log(
    `ready: webhooks at https://127.0.0.1:${port} (${webhooks.map(w => w.kind).join(", ") || "none"}); module pid ${child.pid}; Ctrl-C to stop`,
  );
}

async function waitForCRDs(K8s: typeof KFC.K8s, kind: typeof KFC.kind): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const list = await K8s(kind.CustomResourceDefinition).Get();
    const pending = list.items.filter(
      crd => !crd.status?.conditions?.some(c => c.type === "Established" && c.status === "True"),
    );
    if (pending.length === 0) return;
    if (Date.now() > deadline) {
      throw new Error(`CRDs not established: ${pending.map(c => c.metadata?.name).join(", ")}`);
    }
    await new Promise(r => setTimeout(r, 200));
  }
}

async function waitForHealthz(port: number, ca: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>(done => {
      const req = request({ host: "127.0.0.1", port, path: "/healthz", ca, timeout: 2000 }, res => {
        res.resume();
        done(res.statusCode === 200);
      });
      req.on("error", () => done(false));
      req.on("timeout", () => req.destroy());
      req.end();
    });
    if (ok) return;
    await new Promise(r => setTimeout(r, 250));
  }
  throw new Error(`the module's webhook server did not become healthy on port ${port}`);
}

/** The fluent client rejects with plain objects ({status, statusText, data}); say what they hold. */
function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (err && typeof err === "object") {
    const { status, statusText, data } = err as {
      status?: number;
      statusText?: string;
      data?: unknown;
    };
    const detail =
      typeof data === "object" && data && "message" in data
        ? (data as { message: string }).message
        : data;
    return `${status ?? ""} ${statusText ?? ""}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`;
  }
  return String(err);
}

main().catch(err => {
  log(describe(err));
  process.exit(1);
});
