// The operator's keep-alive API client against the suite's real API server: it reads, creates
// and patches; it keeps its connections (a burst of calls opens at most its pool's sockets); it
// consults the kubeconfig again only after the refresh interval; errors carry the API's status.
import { KubeConfig } from "@kubernetes/client-node";
import { Agent } from "node:https";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";

import { DEFAULT_MAX_SOCKETS, KubeClient, paths } from "../../../capabilities/lib/kube";

const namespace = `kube-client-${Date.now().toString(36)}`;
let kc: KubeConfig;
let now = 0;
let loads = 0;
let client: KubeClient;

beforeAll(async () => {
  kc = new KubeConfig();
  kc.loadFromFile(inject("kubeconfig"));
  const apply = kc.applyToHTTPSOptions.bind(kc);
  kc.applyToHTTPSOptions = async options => {
    loads++;
    return apply(options);
  };
  client = new KubeClient(kc, () => now);
  await client.create(`/api/v1/namespaces`, { metadata: { name: namespace } });
});

afterAll(async () => {
  await client?.close();
});

describe("KubeClient", () => {
  it("creates, reads and patches objects, and reports API errors with their status", async () => {
    const path = paths.object("", "v1", "configmaps", namespace, "one");
    await client.create(paths.collection("", "v1", "configmaps", namespace), {
      metadata: { name: "one" },
      data: { a: "1" },
    });
    await client.mergePatch(path, { data: { b: "2" } });
    await client.jsonPatch(path, [{ op: "add", path: "/metadata/labels", value: { x: "y" } }]);
    const read = await client.get<{ data: Record<string, string>; metadata: { labels: object } }>(
      path,
    );
    expect(read.data).toEqual({ a: "1", b: "2" });
    expect(read.metadata.labels).toEqual({ x: "y" });

    const missing = await client
      .get(paths.object("", "v1", "configmaps", namespace, "absent"))
      .catch((e: unknown) => e);
    expect(missing).toMatchObject({ status: 404, statusText: "Not Found" });
  });

  it("reuses its TLS connections and reads the kubeconfig once per refresh interval", async () => {
    const created: unknown[] = [];
    const original = Agent.prototype.createConnection;
    Agent.prototype.createConnection = function (this: Agent, ...args: unknown[]) {
      created.push(args[0]);
      return (original as (...a: unknown[]) => unknown).apply(this, args);
    } as typeof original;
    try {
      now += 120_000; // past any earlier load: the next call reads the kubeconfig once
      const before = loads;
      const path = `/api/v1/namespaces/${namespace}`;
      for (let round = 0; round < 5; round++) {
        await Promise.all(Array.from({ length: DEFAULT_MAX_SOCKETS + 20 }, () => client.get(path)));
      }
      expect(loads - before).toBe(1);
      // Five rounds of more requests at a time than the pool has keep-alive sockets.
      expect(created.length).toBeLessThanOrEqual(DEFAULT_MAX_SOCKETS);

      now += 59_000; // within the interval: no new read
      await client.get(path);
      expect(loads - before).toBe(1);
      now += 2_000; // past it: read again, same TLS material, so the same connections
      await client.get(path);
      expect(loads - before).toBe(2);
      expect(created.length).toBeLessThanOrEqual(DEFAULT_MAX_SOCKETS);
    } finally {
      Agent.prototype.createConnection = original;
    }
  });
});
