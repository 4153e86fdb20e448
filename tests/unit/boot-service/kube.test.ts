// The boot service's own Kubernetes client against a fake API server: kubeconfig credentials (a
// token, a token file re-read each request, exec plugins refused with what to use), JSON errors
// as KubeError with the status, JSON patches with their content type, and a watch stream split
// into events across chunk boundaries, bookmarks skipped, a 410 ERROR event raised.
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { KubeClient, KubeError, type WatchEvent } from "../../../boot-service/kube";

interface Seen {
  method: string;
  url: string;
  auth?: string;
  type?: string;
  body: string;
}

describe("boot service Kubernetes client", () => {
  const seen: Seen[] = [];
  let server: Server;
  let base: string;
  const dir = mkdtempSync(join(tmpdir(), "beskar7-kube-"));
  let watchChunks: string[] = [];

  beforeAll(async () => {
    server = createServer((req: IncomingMessage, res) => {
      let body = "";
      req.on("data", c => (body += c));
      req.on("end", () => {
        seen.push({
          method: req.method!,
          url: req.url!,
          auth: req.headers.authorization,
          type: req.headers["content-type"],
          body,
        });
        if (req.url!.includes("watch=true")) {
          res.writeHead(200, { "Content-Type": "application/json" });
          let i = 0;
          const next = () => {
            if (i >= watchChunks.length) return res.end();
            res.write(watchChunks[i++]);
            setTimeout(next, 5);
          };
          return next();
        }
        if (req.url!.endsWith("/missing")) {
          res.writeHead(404, { "Content-Type": "application/json" });
          return res.end(
            JSON.stringify({ kind: "Status", message: 'secrets "missing" not found', code: 404 }),
          );
        }
        res.writeHead(200, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ ok: true, method: req.method }));
      });
    });
    await new Promise<void>(r => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise(r => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  const kubeconfig = (user: Record<string, unknown>) => {
    const path = join(dir, `config-${seen.length}-${Math.random().toString(36).slice(2)}`);
    writeFileSync(
      path,
      [
        "apiVersion: v1",
        "kind: Config",
        "current-context: test",
        "contexts:",
        "- name: test",
        "  context: { cluster: c, user: u }",
        "clusters:",
        "- name: c",
        `  cluster: { server: "${base}" }`,
        "users:",
        "- name: u",
        `  user: ${JSON.stringify(user)}`,
      ].join("\n"),
    );
    return path;
  };

  it("sends the kubeconfig's token, re-reads a token file, and refuses exec plugins", async () => {
    const client = KubeClient.fromEnvironment({ KUBECONFIG: kubeconfig({ token: "abc" }) });
    expect(await client.request("GET", "/api/v1/namespaces/x/secrets/a")).toEqual({
      ok: true,
      method: "GET",
    });
    expect(seen.at(-1)!.auth).toBe("Bearer abc");
    client.close();

    writeFileSync(join(dir, "token"), "first\n");
    const fromFile = KubeClient.fromEnvironment({
      KUBECONFIG: kubeconfig({ tokenFile: join(dir, "token") }),
    });
    await fromFile.request("GET", "/x");
    expect(seen.at(-1)!.auth).toBe("Bearer first");
    writeFileSync(join(dir, "token"), "rotated\n");
    await fromFile.request("GET", "/x");
    expect(seen.at(-1)!.auth).toBe("Bearer rotated");
    fromFile.close();

    expect(() =>
      KubeClient.fromEnvironment({ KUBECONFIG: kubeconfig({ exec: { command: "aws" } }) }),
    ).toThrow(
      /exec and auth-provider credentials are not supported.*use a token or a client certificate/,
    );
  });

  it("reports API errors with their status and sends patches with their content type", async () => {
    const client = KubeClient.fromEnvironment({ KUBECONFIG: kubeconfig({ token: "t" }) });
    const error = await client.request("GET", "/api/v1/namespaces/x/secrets/missing").catch(e => e);
    expect(error).toBeInstanceOf(KubeError);
    expect(error).toMatchObject({
      status: 404,
      message: expect.stringContaining('secrets "missing" not found'),
    });
    const patch = [{ op: "test", path: "/status/boot/session", value: "s" }];
    await client.request(
      "PATCH",
      "/apis/g/v1/namespaces/n/things/a/status",
      patch,
      "application/json-patch+json",
    );
    expect(seen.at(-1)).toMatchObject({
      method: "PATCH",
      type: "application/json-patch+json",
      body: JSON.stringify(patch),
    });
    client.close();
  });

  it("splits a watch stream into events across chunks, skips bookmarks and raises a 410", async () => {
    const client = KubeClient.fromEnvironment({ KUBECONFIG: kubeconfig({ token: "t" }) });
    const object = (name: string, rv: string) => ({ metadata: { name, resourceVersion: rv } });
    const lines = [
      { type: "ADDED", object: object("a", "11") },
      { type: "BOOKMARK", object: object("", "12") },
      { type: "MODIFIED", object: object("a", "13") },
      { type: "DELETED", object: object("a", "14") },
    ]
      .map(e => JSON.stringify(e))
      .join("\n");
    // Cut mid-line, so an event spans two chunks.
    watchChunks = [lines.slice(0, 30), lines.slice(30, 95), `${lines.slice(95)}\n`];
    type Thing = { metadata?: { name?: string; resourceVersion?: string } };
    const events: Array<WatchEvent<Thing>> = [];
    const last = await client.watch<Thing>(
      "/apis/g/v1/things",
      "10",
      e => events.push(e),
      new AbortController().signal,
    );
    expect(events.map(e => `${e.type} ${e.object.metadata?.name}`)).toEqual([
      "ADDED a",
      "MODIFIED a",
      "DELETED a",
    ]);
    expect(last).toBe("14");
    expect(seen.at(-1)!.url).toMatch(
      /\/apis\/g\/v1\/things\?watch=true&allowWatchBookmarks=true&timeoutSeconds=\d+&resourceVersion=10$/,
    );

    watchChunks = [
      `${JSON.stringify({ type: "ERROR", object: { kind: "Status", code: 410, message: "too old resource version" } })}\n`,
    ];
    const gone = await client
      .watch("/apis/g/v1/things", "1", () => undefined, new AbortController().signal)
      .catch(e => e);
    expect(gone).toMatchObject({
      status: 410,
      message: expect.stringContaining("too old resource version"),
    });
    client.close();
  });
});
