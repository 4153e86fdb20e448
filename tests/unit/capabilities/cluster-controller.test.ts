// The Beskar7Cluster reconciler against an in-memory port: owner, pause, endpoint honoured or
// taken once from the first provisioned control-plane machine, failure domains from spec or from
// the hosts' zone labels, and the v1beta2/v1beta1 readiness fields.
import { describe, expect, it } from "vitest";

import type { APIEndpoint, Beskar7Cluster, CapiCluster } from "../../../capabilities/api";
import { reconcileCluster, type ClusterPort } from "../../../capabilities/cluster/controller";

const NOW = new Date("2026-01-01T00:00:00Z");
const config = { endpointCheckMs: 5_000, zoneRefreshMs: 60_000 };

function b7c(spec: Beskar7Cluster["spec"] = {}, owned = true): Beskar7Cluster {
  return {
    metadata: {
      name: "demo",
      namespace: "lab",
      generation: 1,
      ownerReferences: owned
        ? [{ apiVersion: "cluster.x-k8s.io/v1beta2", kind: "Cluster", name: "demo", uid: "u" }]
        : [],
    },
    spec,
  } as Beskar7Cluster;
}

function port(init: { paused?: boolean; zones?: string[]; cpAddress?: string } = {}) {
  const written: APIEndpoint[] = [];
  const p: ClusterPort = {
    ownerCluster: async c =>
      c.metadata?.ownerReferences?.length
        ? ({
            metadata: { name: "demo", namespace: "lab" },
            spec: { paused: init.paused },
          } as CapiCluster)
        : undefined,
    hostZones: async () => init.zones ?? [],
    controlPlaneAddress: async () => init.cpAddress,
    setEndpoint: async (_c, e) => {
      written.push(e);
    },
  };
  return { p, written };
}

const cond = (status: Record<string, unknown> | undefined, type: string) =>
  (status?.conditions as Array<{ type: string; status: string; reason: string }>).find(
    c => c.type === type,
  );

describe("Beskar7Cluster", () => {
  it("waits for its owner Cluster", async () => {
    const r = await reconcileCluster(b7c({}, false), port().p, config, NOW);
    expect(cond(r.status, "Ready")).toMatchObject({
      status: "False",
      reason: "WaitingForOwnerCluster",
    });
    expect(r.status?.initialization).toBeUndefined();
  });

  it("does nothing but say so while paused", async () => {
    const { p, written } = port({ paused: true, cpAddress: "10.0.0.9" });
    const r = await reconcileCluster(b7c(), p, config, NOW);
    expect(cond(r.status, "Paused")?.status).toBe("True");
    expect(written).toEqual([]);
    expect(r.status?.initialization).toBeUndefined();
  });

  it("honours a given endpoint and declared failure domains", async () => {
    const { p, written } = port({ zones: ["rack-z"] });
    const r = await reconcileCluster(
      b7c({
        controlPlaneEndpoint: { host: "10.0.0.100", port: 6443 },
        failureDomains: [{ name: "rack-a" }],
      }),
      p,
      config,
      NOW,
    );
    expect(written).toEqual([]);
    expect(r.status).toMatchObject({
      initialization: { provisioned: true },
      ready: true,
      failureDomains: [{ name: "rack-a" }],
    });
    expect(cond(r.status, "Ready")?.status).toBe("True");
    expect(r.requeueAfterMs).toBeUndefined();
  });

  it("takes an empty endpoint once from the first provisioned control-plane machine", async () => {
    const waitingPort = port({ zones: ["rack-b", "rack-a"] });
    const waiting = await reconcileCluster(b7c(), waitingPort.p, config, NOW);
    expect(cond(waiting.status, "ControlPlaneEndpointReady")).toMatchObject({
      status: "False",
      reason: "EndpointMissing",
    });
    expect(waiting.status?.initialization).toEqual({ provisioned: true });
    expect(waiting.status?.failureDomains).toEqual([
      { name: "rack-a", controlPlane: true },
      { name: "rack-b", controlPlane: true },
    ]);
    expect(waiting.requeueAfterMs).toBe(config.endpointCheckMs);

    const { p, written } = port({ cpAddress: "10.0.0.21" });
    const r = await reconcileCluster(b7c(), p, config, NOW);
    expect(written).toEqual([{ host: "10.0.0.21", port: 6443 }]);
    expect(cond(r.status, "ControlPlaneEndpointReady")).toMatchObject({
      status: "True",
      reason: "EndpointSet",
    });
    expect(r.events?.map(e => e.reason)).toEqual(["EndpointSet"]);
  });
});
