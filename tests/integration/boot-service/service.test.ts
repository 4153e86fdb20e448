// The boot service process against the suite's real API server: it creates its Secret (token key,
// CA, serving certificate) and publishes the CA in a ConfigMap at first start, and a second start
// reuses both; it serves over TLS that verifies with the published CA (and only with it); /readyz
// says ready; a host found by its system UUID in a real PhysicalHost gets its bootstrap data from
// the Secret its provisioning names, and the fetch lands in status.boot.configFetchedTime; on
// SIGTERM it stops accepting connections, lets a transfer in progress finish, and exits 0.
import { randomBytes } from "node:crypto";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { inject } from "vitest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { startBootService, type StartedBootService } from "../../../boot-service/start";
import { BootPaths, bootToken } from "../../../boot/session";
import { freePort } from "../../../lab/controlplane/controlplane";
import { buildIso } from "../../unit/boot/patched-iso-fixtures";
import { startOrigin } from "../../unit/boot-service/support";
import { installBeskar7Crds } from "../api/kubectl";
import { createNamespace, eventually, kubectl } from "../support/kube";

const UUID = `4c4c4544-00b7-1000-8000-${randomBytes(6).toString("hex")}`;

async function must(args: string[], input?: string): Promise<string> {
  const result = await kubectl(args, input);
  if (result.code !== 0) throw new Error(`kubectl ${args.join(" ")}: ${result.stderr}`);
  return result.stdout;
}

async function secretData(namespace: string, name: string): Promise<Record<string, Buffer>> {
  const secret = JSON.parse(await must(["get", "secret", "-n", namespace, name, "-o", "json"])) as {
    data: Record<string, string>;
  };
  return Object.fromEntries(
    Object.entries(secret.data).map(([k, v]) => [k, Buffer.from(v, "base64")]),
  );
}

function httpsGet(
  url: string,
  ca: string | undefined,
  onBody?: (res: IncomingMessage) => void,
): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca, agent: false }, res => {
      onBody?.(res);
      const parts: Buffer[] = [];
      res.on("data", (c: Buffer) => parts.push(c));
      res.on("end", () => resolve({ status: res.statusCode!, body: Buffer.concat(parts) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    httpRequest(url, res => {
      let body = "";
      res.on("data", c => (body += c));
      res.on("end", () => resolve({ status: res.statusCode!, body }));
    })
      .on("error", reject)
      .end();
  });
}

describe("boot service process", () => {
  let serviceNamespace: string;
  let hostNamespace: string;
  let port: number;
  let service: StartedBootService | undefined;
  let origin: Awaited<ReturnType<typeof startOrigin>>;
  const logs: string[] = [];
  const bootstrap = Buffer.from(`#cloud-config\n# ${randomBytes(12).toString("hex")}\n`);

  const start = async () =>
    startBootService({
      kubeconfig: inject("kubeconfig"),
      namespace: serviceNamespace,
      url: `https://127.0.0.1:${port}`,
      env: { BESKAR7_BOOT_SHUTDOWN_GRACE: "20s" },
      caFile: `${inject("runDir")}/boot-ca-${serviceNamespace}.crt`,
      onLog: line => logs.push(line),
    });

  beforeAll(async () => {
    await installBeskar7Crds();
    serviceNamespace = await createNamespace("boot-svc");
    hostNamespace = await createNamespace("boot-hosts");
    port = await freePort();
    // A stock ISO with a large file, so one response takes a while to read.
    origin = await startOrigin({
      "/stock.iso": buildIso({
        "boot/grub/grub.cfg": 'menuentry "x" {\n  linux /vmlinuz quiet\n}\n',
        "big.bin": randomBytes(24 * 1024 * 1024),
      }),
    });
  }, 120_000);
  afterAll(async () => {
    await service?.stop();
    await origin?.close();
  });

  it("creates its Secret and CA ConfigMap, serves TLS verifiable with that CA, and says ready", async () => {
    service = await start();
    const data = await secretData(serviceNamespace, "beskar7-boot-service");
    expect(Object.keys(data).sort()).toEqual([
      "ca.crt",
      "ca.key",
      "tls.crt",
      "tls.key",
      "token-key",
    ]);
    expect(data["token-key"]!.length).toBe(32);
    const published = JSON.parse(
      await must(["get", "configmap", "-n", serviceNamespace, "beskar7-boot-ca", "-o", "json"]),
    ) as { data: Record<string, string> };
    expect(published.data["ca.crt"]).toBe(data["ca.crt"]!.toString());
    expect(service.caCert).toBe(data["ca.crt"]!.toString());

    const ready = await httpGet(`${service.metricsURL}/readyz`);
    expect(ready).toEqual({ status: 200, body: "ready\n" });
    const unknown = await httpsGet(
      `${service.url}/v1/ipxe/00000000-0000-0000-0000-000000000000`,
      service.caCert,
    );
    expect(unknown.status).toBe(404);
    await expect(httpsGet(`${service.url}/v1/ipxe/x`, undefined)).rejects.toThrow(
      /self[- ]signed|unable to verify|certificate/i,
    );
    expect(await httpGet(`${service.metricsURL}/metrics`)).toMatchObject({
      status: 200,
      body: expect.stringMatching(/beskar7_boot_refusals_total\{reason="unknown-host"\} 1/),
    });
  });

  it("serves a PhysicalHost's bootstrap data and records configFetchedTime in its status", async () => {
    await must([
      "create",
      "secret",
      "generic",
      "-n",
      hostNamespace,
      "bootstrap-1",
      `--from-literal=value=${bootstrap.toString()}`,
    ]);
    const host = {
      apiVersion: "infrastructure.cluster.x-k8s.io/v1beta1",
      kind: "PhysicalHost",
      metadata: { name: "host-1", namespace: hostNamespace },
      spec: {
        redfishConnection: { address: "https://192.0.2.1", credentialsSecretRef: "bmc" },
        consumerRef: {
          apiVersion: "infrastructure.cluster.x-k8s.io/v1beta1",
          kind: "Beskar7Machine",
          name: "m",
          namespace: hostNamespace,
        },
        provisioning: {
          mode: "VirtualMedia",
          bootISO: origin.url("/stock.iso"),
          osFamily: "kairos",
          bootstrapDataSecretRef: "bootstrap-1",
        },
      },
    };
    await must(["apply", "--server-side", "-f", "-"], JSON.stringify(host));
    const session = randomBytes(16).toString("hex");
    const status = {
      status: {
        state: "Provisioning",
        hardwareDetails: { systemUUID: UUID.toUpperCase() },
        boot: {
          session,
          issuedTime: new Date().toISOString(),
          delivery: "PatchedISO",
          reason: "test",
        },
      },
    };
    await must([
      "patch",
      "physicalhost",
      "-n",
      hostNamespace,
      "host-1",
      "--subresource=status",
      "--type=merge",
      "-p",
      JSON.stringify(status),
    ]);
    const uid = (
      await must([
        "get",
        "physicalhost",
        "-n",
        hostNamespace,
        "host-1",
        "-o",
        "jsonpath={.metadata.uid}",
      ])
    ).trim();
    const key = (await secretData(serviceNamespace, "beskar7-boot-service"))["token-key"]!;
    const tokens = (purpose: "bootstrap" | "media") =>
      bootToken(key, purpose, { hostUID: uid, systemUUID: UUID, session });

    const fetched = await eventually(async () => {
      const answer = await httpsGet(
        `${service!.url}${BootPaths.config(UUID, tokens("bootstrap"))}`,
        service!.caCert,
      );
      return answer.status === 200 && answer;
    }, "the bootstrap data (the service indexes the host from its watch)");
    expect(fetched.body.equals(bootstrap)).toBe(true);
    const recorded = await eventually(async () => {
      const out = await must([
        "get",
        "physicalhost",
        "-n",
        hostNamespace,
        "host-1",
        "-o",
        "jsonpath={.status.boot.configFetchedTime}",
      ]);
      return out.trim() !== "" && out.trim();
    }, "status.boot.configFetchedTime");
    expect(Math.abs(Date.parse(recorded) - Date.now())).toBeLessThan(60_000);
    // The patched ISO of the same host, from the origin, through the service.
    const iso = await httpsGet(
      `${service!.url}${BootPaths.bootIso(UUID, tokens("media"))}`,
      service!.caCert,
    );
    expect(iso.status).toBe(200);
    expect(iso.body.includes(Buffer.from(`config_url=${service!.url}/v1/config/${UUID}/`))).toBe(
      true,
    );
    expect(logs.join("\n")).not.toContain(tokens("bootstrap"));
    expect(logs.join("\n")).not.toContain(bootstrap.toString().trim().split("\n")[1]);
  }, 90_000);

  it("reuses its Secret and CA on a second start, and finishes a transfer on SIGTERM", async () => {
    const before = await secretData(serviceNamespace, "beskar7-boot-service");
    expect(await service!.stop()).toBe(0);
    service = await start();
    const after = await secretData(serviceNamespace, "beskar7-boot-service");
    expect(after["token-key"]!.equals(before["token-key"]!)).toBe(true);
    expect(after["ca.crt"]!.equals(before["ca.crt"]!)).toBe(true);
    expect(after["tls.crt"]!.equals(before["tls.crt"]!)).toBe(true);

    const uid = (
      await must([
        "get",
        "physicalhost",
        "-n",
        hostNamespace,
        "host-1",
        "-o",
        "jsonpath={.metadata.uid}",
      ])
    ).trim();
    const session = (
      await must([
        "get",
        "physicalhost",
        "-n",
        hostNamespace,
        "host-1",
        "-o",
        "jsonpath={.status.boot.session}",
      ])
    ).trim();
    const media = bootToken(after["token-key"]!, "media", {
      hostUID: uid,
      systemUUID: UUID,
      session,
    });
    const url = `${service.url}${BootPaths.bootIso(UUID, media)}`;
    // A slow reader: paused right after the headers, SIGTERM sent, then read to the end.
    let size = 0;
    const transfer = httpsGet(url, service.caCert, res => {
      size = Number(res.headers["content-length"]);
      res.pause();
      void (async () => {
        const exited = service!.stop();
        await new Promise(r => setTimeout(r, 1500));
        // No new connections once stopping.
        await expect(httpsGet(`${service!.url}/v1/ipxe/x`, service!.caCert)).rejects.toThrow(
          /ECONNREFUSED|socket hang up|ECONNRESET/,
        );
        res.resume();
        stopped = exited;
      })();
    });
    let stopped: Promise<number | null> | undefined;
    const answer = await transfer;
    expect(answer.status).toBe(200);
    expect(answer.body.length).toBe(size);
    expect(size).toBeGreaterThan(24 * 1024 * 1024);
    await eventually(async () => stopped !== undefined, "the stop to begin");
    expect(await stopped).toBe(0);
    expect(
      logs.some(l => l.includes('"msg":"stopped"') && l.includes('"unfinishedTransfers":0')),
    ).toBe(true);
    service = undefined;
  }, 120_000);
});
