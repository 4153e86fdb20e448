// A real Kubernetes control plane for tests and the lab: etcd and kube-apiserver on loopback
// ports, with a per-run certificate authority, serving certificate, service-account signing key
// and an admin client certificate. Nothing here is faked: the API server runs admission, CEL
// validation, server-side apply and calls webhooks over TLS exactly as in a cluster (there is no
// controller-manager, so namespaces are never finalized and garbage collection does not run).
import { spawn, type ChildProcess } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { closeSync, openSync } from "node:fs";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import forge from "node-forge";

import { ensureControlPlaneBinaries, type ControlPlaneBinaries } from "./binaries";
import { certificate, newKey } from "./pki";

export interface ControlPlane {
  /** Directory holding certificates, etcd data, logs and the kubeconfig. */
  dir: string;
  kubeconfig: string;
  apiServerURL: string;
  binaries: ControlPlaneBinaries;
  pids: { etcd: number; kubeApiserver: number };
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Run etcd and kube-apiserver detached so they outlive this process (npm run testenv:start). */
  detached?: boolean;
  log?: (line: string) => void;
  readyTimeoutMs?: number;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address
          ? resolve(address.port)
          : reject(new Error("no port")),
      );
    });
  });
}

export async function startControlPlane(
  dir: string,
  opts: StartOptions = {},
): Promise<ControlPlane> {
  const log = opts.log ?? (line => process.stderr.write(`${line}\n`));
  const binaries = await ensureControlPlaneBinaries(log);
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, "pki"), { recursive: true });

  await writePKI(join(dir, "pki"));
  const [etcdClient, etcdPeer, apiPort] = await Promise.all([freePort(), freePort(), freePort()]);
  const etcdURL = `http://127.0.0.1:${etcdClient}`;
  const apiServerURL = `https://127.0.0.1:${apiPort}`;

  const children: ChildProcess[] = [];
  const stopAll = async (): Promise<void> => {
    await Promise.all(children.reverse().map(child => terminate(child)));
  };

  try {
    const etcd = launch(
      binaries.etcd,
      [
        "--name=default",
        `--data-dir=${join(dir, "etcd")}`,
        `--listen-client-urls=${etcdURL}`,
        `--advertise-client-urls=${etcdURL}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-cluster=default=http://127.0.0.1:${etcdPeer}`,
        // Test data is thrown away, so durability buys nothing and fsync costs seconds.
        "--unsafe-no-fsync=true",
        "--quota-backend-bytes=2147483648",
      ],
      join(dir, "etcd.log"),
      opts.detached,
    );
    children.push(etcd);
    await waitFor(`${etcdURL}/health`, 30_000, etcd, "etcd", join(dir, "etcd.log"));

    const p = join(dir, "pki");
    const apiserver = launch(
      binaries.kubeApiserver,
      [
        `--etcd-servers=${etcdURL}`,
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        `--secure-port=${apiPort}`,
        `--cert-dir=${p}`,
        `--tls-cert-file=${join(p, "apiserver.crt")}`,
        `--tls-private-key-file=${join(p, "apiserver.key")}`,
        `--client-ca-file=${join(p, "ca.crt")}`,
        `--service-account-key-file=${join(p, "sa.pub")}`,
        `--service-account-signing-key-file=${join(p, "sa.key")}`,
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        "--service-cluster-ip-range=10.0.0.0/24",
        "--authorization-mode=RBAC",
        "--allow-privileged=true",
        "--disable-admission-plugins=ServiceAccount",
        "--profiling=false",
        "--endpoint-reconciler-type=none",
      ],
      join(dir, "kube-apiserver.log"),
      opts.detached,
    );
    children.push(apiserver);

    const kubeconfig = join(dir, "kubeconfig");
    const ca = await readFile(join(p, "ca.crt"));
    const cert = await readFile(join(p, "admin.crt"));
    const key = await readFile(join(p, "admin.key"));
    await writeFile(kubeconfig, kubeconfigYAML(apiServerURL, ca, cert, key), { mode: 0o600 });

    await waitForReady(
      apiServerURL,
      { ca, cert, key },
      opts.readyTimeoutMs ?? 90_000,
      apiserver,
      join(dir, "kube-apiserver.log"),
    );

    return {
      dir,
      kubeconfig,
      apiServerURL,
      binaries,
      pids: { etcd: etcd.pid!, kubeApiserver: apiserver.pid! },
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

function launch(bin: string, args: string[], logFile: string, detached = false): ChildProcess {
  // The log file's descriptor is handed to the child itself, so a detached child keeps logging
  // after this process exits (a pipe would break and kill it with SIGPIPE).
  const fd = openSync(logFile, "a");
  const child = spawn(bin, args, { detached, stdio: ["ignore", fd, fd] });
  closeSync(fd);
  if (detached) child.unref();
  return child;
}

async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>(resolve => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

async function waitFor(
  url: string,
  timeoutMs: number,
  child: ChildProcess,
  what: string,
  logFile: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw await died(what, child, logFile);
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`${what} was not healthy within ${timeoutMs} ms; see ${logFile}`);
}

async function waitForReady(
  url: string,
  tls: { ca: Buffer; cert: Buffer; key: Buffer },
  timeoutMs: number,
  child: ChildProcess,
  logFile: string,
): Promise<void> {
  const { request } = await import("node:https");
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw await died("kube-apiserver", child, logFile);
    const ok = await new Promise<boolean>(resolve => {
      const req = request(
        `${url}/readyz`,
        { ca: tls.ca, cert: tls.cert, key: tls.key, timeout: 2000 },
        res => {
          res.resume();
          resolve(res.statusCode === 200);
        },
      );
      req.on("error", () => resolve(false));
      req.on("timeout", () => req.destroy());
      req.end();
    });
    if (ok) return;
    await sleep(200);
  }
  throw new Error(`kube-apiserver was not ready within ${timeoutMs} ms; see ${logFile}`);
}

async function died(what: string, child: ChildProcess, logFile: string): Promise<Error> {
  const tail = (await readFile(logFile, "utf8").catch(() => "")).split("\n").slice(-15).join("\n");
  return new Error(
    `${what} exited with code ${child.exitCode}; last lines of ${logFile}:\n${tail}`,
  );
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

/** Writes a CA, the API server's serving certificate, an admin client certificate and the
 *  service-account key pair. Keys come from Node's crypto (fast); forge only signs. */
async function writePKI(dir: string): Promise<void> {
  const ca = newKey();
  const caCert = certificate({
    subject: "beskar7-testenv-ca",
    publicKey: ca.publicKey,
    signer: ca.privateKey,
    isCA: true,
  });
  const server = newKey();
  const serverCert = certificate({
    subject: "kube-apiserver",
    publicKey: server.publicKey,
    signer: ca.privateKey,
    issuer: caCert,
    altNames: [
      { type: 2, value: "localhost" },
      { type: 2, value: "kubernetes" },
      { type: 2, value: "kubernetes.default" },
      { type: 2, value: "kubernetes.default.svc" },
      { type: 7, ip: "127.0.0.1" },
      { type: 7, ip: "10.0.0.1" },
    ],
    usage: "server",
  });
  const admin = newKey();
  const adminCert = certificate({
    subject: "beskar7-testenv-admin",
    organization: "system:masters",
    publicKey: admin.publicKey,
    signer: ca.privateKey,
    issuer: caCert,
    usage: "client",
  });
  const sa = generateKeyPairSync("rsa", { modulusLength: 2048 });

  await Promise.all([
    writeFile(join(dir, "ca.crt"), forge.pki.certificateToPem(caCert)),
    writeFile(join(dir, "apiserver.crt"), forge.pki.certificateToPem(serverCert)),
    writeFile(join(dir, "apiserver.key"), server.pem, { mode: 0o600 }),
    writeFile(join(dir, "admin.crt"), forge.pki.certificateToPem(adminCert)),
    writeFile(join(dir, "admin.key"), admin.pem, { mode: 0o600 }),
    writeFile(join(dir, "sa.key"), sa.privateKey.export({ type: "pkcs1", format: "pem" }), {
      mode: 0o600,
    }),
    writeFile(join(dir, "sa.pub"), sa.publicKey.export({ type: "spki", format: "pem" })),
  ]);
}

function kubeconfigYAML(server: string, ca: Buffer, cert: Buffer, key: Buffer): string {
  const b64 = (b: Buffer) => b.toString("base64");
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: beskar7-testenv",
    "  cluster:",
    `    server: ${server}`,
    `    certificate-authority-data: ${b64(ca)}`,
    "users:",
    "- name: admin",
    "  user:",
    `    client-certificate-data: ${b64(cert)}`,
    `    client-key-data: ${b64(key)}`,
    "contexts:",
    "- name: beskar7-testenv",
    "  context:",
    "    cluster: beskar7-testenv",
    "    user: admin",
    "    namespace: default",
    "current-context: beskar7-testenv",
    "",
  ].join("\n");
}
