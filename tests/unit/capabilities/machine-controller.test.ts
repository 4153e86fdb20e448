// The Beskar7Machine reconciler against an in-memory port: claiming (selector, requirements, zone,
// namespace, races), waiting with reasons, the provisioning request and its bootstrap seam,
// mirroring the host, providerID and Node linking, pause, host loss, and release on delete.
import { describe, expect, it } from "vitest";

import type {
  Beskar7Machine,
  CapiCluster,
  CapiMachine,
  ConsumerRef,
  HostProvisioning,
  PhysicalHost,
} from "../../../capabilities/api";
import type { RunResult } from "../../../capabilities/lib/runtime";
import { chooseHosts } from "../../../capabilities/machine/claim";
import {
  finalizeMachine,
  PAUSED_BY_MACHINE,
  reconcileMachine,
  type MachineConfig,
  type MachinePort,
} from "../../../capabilities/machine/controller";
import { mergePatch } from "./helpers";

const NOW = new Date("2026-01-01T00:00:00Z");
const config: MachineConfig = {
  zoneLabel: "topology.kubernetes.io/zone",
  waitingRecheckMs: 60_000,
  nodeCheckMs: 10_000,
  hostLostAfterMs: 30 * 60_000,
};

function host(
  name: string,
  init: Partial<PhysicalHost> & { cores?: number; labels?: Record<string, string> } = {},
): PhysicalHost {
  return {
    apiVersion: "infrastructure.cluster.x-k8s.io/v1beta1",
    kind: "PhysicalHost",
    metadata: {
      name,
      namespace: "lab",
      uid: `uid-${name}`,
      resourceVersion: "1",
      labels: init.labels,
    },
    spec: {
      redfishConnection: { address: "https://bmc", credentialsSecretRef: "s" },
      ...init.spec,
    },
    status: {
      state: "Available",
      hardwareDetails: {
        systemUUID: `UUID-${name}`,
        cpu: { cores: init.cores ?? 32 },
        memoryGiB: 256,
        disks: [{ name: "d0", sizeBytes: 960 * 2 ** 30 }],
      },
      addresses: [{ type: "InternalIP", address: "10.0.0.5" }],
      ...init.status,
    },
  } as PhysicalHost;
}

function machine(name = "m-1", spec: Beskar7Machine["spec"] = {}): Beskar7Machine {
  return {
    apiVersion: "infrastructure.cluster.x-k8s.io/v1beta1",
    kind: "Beskar7Machine",
    metadata: {
      name,
      namespace: "lab",
      uid: `uid-${name}`,
      generation: 1,
      labels: { "cluster.x-k8s.io/cluster-name": "demo" },
      ownerReferences: [
        {
          apiVersion: "cluster.x-k8s.io/v1beta2",
          kind: "Machine",
          name: `capi-${name}`,
          uid: `u-${name}`,
        },
      ],
    },
    spec: { imageURL: "https://images/os.iso", provisioningMode: "PreBakedISO", ...spec },
  } as Beskar7Machine;
}

/** An API server stand-in holding hosts, Machines, a Cluster and Secrets. */
class World implements MachinePort {
  hosts_ = new Map<string, PhysicalHost>();
  owners = new Map<string, CapiMachine>();
  clusterObj: CapiCluster = {
    metadata: { name: "demo", namespace: "lab" },
    spec: {},
    status: { initialization: { infrastructureProvisioned: true } },
  } as CapiCluster;
  secrets = new Set<string>(["lab/bootstrap-m-1"]);
  /** Hosts whose next claim loses the race. */
  stolen = new Set<string>();
  claims: string[] = [];
  providerIDs = new Map<string, string>();
  nodes = new Map<string, string | undefined>(); // systemUUID -> providerID
  kubeconfig = true;

  add(...hosts: PhysicalHost[]): this {
    for (const h of hosts) this.hosts_.set(h.metadata!.name!, h);
    return this;
  }
  owner(name: string, dataSecretName?: string, failureDomain?: string): this {
    this.owners.set(`capi-${name}`, {
      metadata: { name: `capi-${name}`, namespace: "lab" },
      spec: { clusterName: "demo", bootstrap: { dataSecretName }, failureDomain },
    } as CapiMachine);
    return this;
  }
  async ownerMachine(m: Beskar7Machine) {
    const ref = m.metadata?.ownerReferences?.find(r => r.kind === "Machine");
    return ref ? this.owners.get(ref.name) : undefined;
  }
  async cluster() {
    return this.clusterObj;
  }
  async hosts(ns: string) {
    return [...this.hosts_.values()]
      .filter(h => h.metadata?.namespace === ns)
      .map(h => structuredClone(h));
  }
  async host(_ns: string, name: string) {
    const h = this.hosts_.get(name);
    return h && structuredClone(h);
  }
  /** Bootstrap Secrets asked about, in order. */
  secretChecks: string[] = [];
  async secretExists(ns: string, name: string) {
    this.secretChecks.push(`${ns}/${name}`);
    return this.secrets.has(`${ns}/${name}`);
  }
  async claim(h: PhysicalHost, consumer: ConsumerRef, request?: HostProvisioning) {
    const name = h.metadata!.name!;
    const stored = this.hosts_.get(name)!;
    if (
      this.stolen.delete(name) ||
      stored.metadata?.resourceVersion !== h.metadata?.resourceVersion ||
      stored.spec?.consumerRef
    ) {
      return false;
    }
    this.claims.push(`${consumer.name}->${name}`);
    this.update(name, {
      spec: { consumerRef: consumer, ...(request ? { provisioning: request } : {}) },
    });
    return true;
  }
  async request(h: PhysicalHost, provisioning: HostProvisioning) {
    this.update(h.metadata!.name!, { spec: { provisioning } });
  }
  async release(h: PhysicalHost, uid: string) {
    const stored = this.hosts_.get(h.metadata!.name!)!;
    if (stored.spec?.consumerRef?.uid !== uid) return;
    this.update(h.metadata!.name!, { spec: { consumerRef: null, provisioning: null } });
  }
  async pauseHost(h: PhysicalHost, paused: boolean) {
    this.update(h.metadata!.name!, {
      metadata: { annotations: { "cluster.x-k8s.io/paused": paused ? PAUSED_BY_MACHINE : null } },
    });
  }
  async setProviderID(m: Beskar7Machine, id: string) {
    this.providerIDs.set(m.metadata!.name!, id);
  }
  async linkNode(_ns: string, _cluster: string, uuid: string, providerID: string) {
    if (!this.kubeconfig) return "no-kubeconfig" as const;
    if (!this.nodes.has(uuid)) return "no-node" as const;
    if (this.nodes.get(uuid)) return "present" as const;
    this.nodes.set(uuid, providerID);
    return "set" as const;
  }
  update(name: string, patch: object): void {
    const h = this.hosts_.get(name)!;
    const next = mergePatch(h, patch) as PhysicalHost;
    next.metadata!.resourceVersion = String(Number(h.metadata?.resourceVersion ?? 0) + 1);
    this.hosts_.set(name, next);
  }
  /** The host controller's part: the host reaches a state for its consumer. */
  hostState(name: string, state: string, extra: object = {}): void {
    const consumerUID = this.hosts_.get(name)!.spec?.consumerRef?.uid;
    this.update(name, { status: { state, provisioning: { consumerUID }, ...extra } });
  }
}

/** Runs reconciles like the runtime does, applying each status to the machine. */
async function run(world: World, m: Beskar7Machine, times = 1): Promise<RunResult> {
  let result: RunResult = {};
  for (let i = 0; i < times; i++) {
    result = await reconcileMachine(structuredClone(m), world, config, NOW);
    m.status = mergePatch(m.status ?? {}, result.status ?? {}) as Beskar7Machine["status"];
  }
  return result;
}

const cond = (m: Beskar7Machine, type: string) => m.status?.conditions?.find(c => c.type === type);

describe("Beskar7Machine: claiming", () => {
  it("waits for its owner Machine, then for the Cluster's infrastructure", async () => {
    const world = new World().add(host("h1"));
    const m = machine();
    await run(world, m);
    expect(cond(m, "Ready")).toMatchObject({ status: "False", reason: "WaitingForOwnerMachine" });
    world.owner("m-1");
    world.clusterObj.status = {};
    await run(world, m);
    expect(cond(m, "Ready")).toMatchObject({ reason: "WaitingForClusterInfrastructure" });
    expect(world.claims).toEqual([]);
  });

  it("claims an Available host that matches, with a resourceVersion-conditioned write", async () => {
    const world = new World().owner("m-1").add(host("h1"));
    const m = machine();
    const result = await run(world, m);
    expect(world.claims).toEqual(["m-1->h1"]);
    expect(m.status?.hostRef).toEqual({ name: "h1", uid: "uid-h1" });
    expect(cond(m, "HostClaimed")).toMatchObject({ status: "True" });
    expect(result.events?.map(e => e.reason)).toEqual(["HostClaimed"]);
  });

  it("never claims a host of another namespace, one below requirements, outside its zone, or not free", async () => {
    const other = host("elsewhere");
    other.metadata!.namespace = "other";
    const world = new World().owner("m-1", undefined, "rack-a").add(
      other,
      host("small", { cores: 4, labels: { "topology.kubernetes.io/zone": "rack-a" } }),
      host("far", { labels: { "topology.kubernetes.io/zone": "rack-b" } }),
      host("busy", {
        status: { state: "Provisioned" },
        labels: { "topology.kubernetes.io/zone": "rack-a" },
      }),
      host("taken", {
        spec: {
          consumerRef: { apiVersion: "x", kind: "Beskar7Machine", name: "other", uid: "u" },
        } as never,
        labels: { "topology.kubernetes.io/zone": "rack-a" },
      }),
      host("unlabelled", { labels: { "topology.kubernetes.io/zone": "rack-a" } }),
    );
    const m = machine("m-1", {
      imageURL: "https://images/os.iso",
      hardwareRequirements: { minCPUCores: 16 },
      hostSelector: { matchLabels: { role: "worker" } },
    });
    const result = await run(world, m);
    expect(world.claims).toEqual([]);
    expect(m.status?.phase).toBe("WaitingForHost");
    expect(cond(m, "HostClaimed")).toMatchObject({
      status: "False",
      reason: "NoMatchingHost",
      message:
        "no Available host matches: 5 hosts considered in the machine's namespace: 1 not Available, 1 claimed by another machine, 3 not matching hostSelector",
    });
    expect(result.requeueAfterMs).toBe(config.waitingRecheckMs);

    // With the selector satisfied but for one host, requirements and zone decide.
    for (const h of world.hosts_.values()) {
      if (h.metadata!.name !== "unlabelled")
        h.metadata!.labels = { ...h.metadata!.labels, role: "worker" };
    }
    await run(world, m);
    expect(cond(m, "HostClaimed")?.message).toBe(
      "no Available host matches: 5 hosts considered in the machine's namespace: 1 not Available, 1 claimed by another machine, 1 not matching hostSelector, 1 below hardwareRequirements, 1 in another failure domain",
    );
    world.hosts_.get("unlabelled")!.metadata!.labels!.role = "worker";
    await run(world, m);
    expect(world.claims).toEqual(["m-1->unlabelled"]);
  });

  it("tries its next candidate when another machine wins a host, and never wins a host twice", async () => {
    const world = new World().owner("m-1").owner("m-2").add(host("h1"), host("h2"), host("h3"));
    const order = chooseHosts(
      machine("m-1"),
      [...world.hosts_.values()],
      undefined,
      config.zoneLabel,
    ).candidates.map(h => h.metadata!.name!);
    world.stolen.add(order[0]!);
    const m1 = machine("m-1");
    await run(world, m1);
    expect(m1.status?.hostRef?.name).toBe(order[1]);
    const m2 = machine("m-2");
    await run(world, m2);
    expect(m2.status?.hostRef?.name).not.toBe(order[1]);
    const claimed = world.claims.map(c => c.split("->")[1]);
    expect(new Set(claimed).size).toBe(claimed.length);
  });

  it("orders candidates differently for different machines, so racers spread out", () => {
    const hosts = Array.from({ length: 20 }, (_, i) => host(`h${i}`));
    const firsts = new Set(
      Array.from(
        { length: 10 },
        (_, i) =>
          chooseHosts(machine(`m-${i}`), hosts, undefined, config.zoneLabel).candidates[0]!
            .metadata!.name,
      ),
    );
    expect(firsts.size).toBeGreaterThan(3);
  });
});

describe("Beskar7Machine: provisioning", () => {
  it("waits for bootstrap data, names a missing Secret, then writes the request with the Secret's name only", async () => {
    const world = new World().owner("m-1").add(host("h1"));
    const m = machine("m-1", {
      provisioningMode: "RemoteConfig",
      imageURL: "https://images/kairos.iso",
      osFamily: "kairos",
      configURL: "https://cfg/kairos.yaml",
    });
    await run(world, m, 2);
    expect(cond(m, "HostProvisioned")).toMatchObject({ reason: "WaitingForBootstrapData" });
    world.owner("m-1", "bootstrap-missing");
    await run(world, m);
    expect(cond(m, "HostProvisioned")).toMatchObject({
      reason: "BootstrapDataMissing",
      message:
        "bootstrap data Secret lab/bootstrap-missing named by Machine capi-m-1 does not exist",
    });
    world.owner("m-1", "bootstrap-m-1");
    await run(world, m);
    expect(world.hosts_.get("h1")!.spec?.provisioning).toEqual({
      mode: "VirtualMedia",
      bootMode: "UEFI",
      bootISO: "https://images/kairos.iso",
      osFamily: "kairos",
      configURL: "https://cfg/kairos.yaml",
      bootstrapDataSecretRef: "bootstrap-m-1",
    });
    expect(m.status?.phase).toBe("Provisioning");
  });

  it("asks whether the bootstrap Secret exists only until the host holds the request", async () => {
    const world = new World().owner("m-1", "bootstrap-m-1").add(host("h1"));
    const m = machine();
    await run(world, m, 2);
    expect(world.hosts_.get("h1")!.spec?.provisioning?.bootstrapDataSecretRef).toBe(
      "bootstrap-m-1",
    );
    const asked = world.secretChecks.length;
    expect(asked).toBeGreaterThan(0);
    world.secrets.clear(); // the host side reads it from here on; the machine no longer asks
    await run(world, m, 3);
    expect(world.secretChecks).toHaveLength(asked);
    expect(cond(m, "HostProvisioned")).not.toMatchObject({ reason: "BootstrapDataMissing" });
  });

  it("shows what holds the host's boot (BootDelivered=False) with its reason", async () => {
    const world = new World().owner("m-1", "bootstrap-m-1").add(host("h1"));
    const m = machine();
    await run(world, m, 2);
    const bootDelivered = (reason: string, message: string) => ({
      conditions: [
        {
          type: "BootDelivered",
          status: "False" as const,
          reason,
          message,
          lastTransitionTime: "2025-03-01T12:00:00Z",
        },
      ],
    });
    world.hostState(
      "h1",
      "Claimed",
      bootDelivered("BootServiceNotConfigured", "set BESKAR7_BOOT_URL"),
    );
    await run(world, m);
    expect(cond(m, "HostProvisioned")).toMatchObject({
      reason: "BootServiceNotConfigured",
      message: "PhysicalHost h1 is Claimed: set BESKAR7_BOOT_URL",
    });
    // Bootstrap data that cannot be delivered is said, but does not block.
    world.hostState("h1", "Provisioning", {
      provisioning: { currentStep: "PowerOn" },
      ...bootDelivered("BootstrapDataNotDelivered", "one slot"),
    });
    await run(world, m);
    expect(cond(m, "HostProvisioned")).toMatchObject({
      reason: "ProvisioningInProgress",
      message: "PhysicalHost h1 is Provisioning: one slot",
    });
  });

  it("mirrors the host, then sets providerID, addresses and initialization.provisioned, and links the Node", async () => {
    const world = new World().owner("m-1", "bootstrap-m-1").add(host("h1"));
    const m = machine();
    await run(world, m, 2);
    world.hostState("h1", "Provisioning", { provisioning: { currentStep: "InsertBootMedia" } });
    await run(world, m);
    expect(cond(m, "HostProvisioned")?.message).toBe("PhysicalHost h1 is Provisioning");
    // The host's BMC steps are its own detail: the next one changes nothing of the machine.
    const written = structuredClone(m.status);
    world.hostState("h1", "Provisioning", { provisioning: { currentStep: "SetBootOverride" } });
    await run(world, m);
    expect(m.status).toEqual(written);
    // A step the host waits in (the OS's signal) is named.
    world.hostState("h1", "Provisioning", { provisioning: { currentStep: "AwaitBoot" } });
    await run(world, m);
    expect(cond(m, "HostProvisioned")?.message).toBe(
      "PhysicalHost h1 is Provisioning (step AwaitBoot)",
    );
    expect(m.status?.initialization).toBeUndefined();

    world.nodes.set("UUID-h1", undefined);
    world.hostState("h1", "Provisioned");
    const result = await run(world, m);
    expect(world.providerIDs.get("m-1")).toBe("beskar7://lab/h1");
    expect(m.status).toMatchObject({
      phase: "Provisioned",
      initialization: { provisioned: true },
      ready: true,
      addresses: [{ type: "InternalIP", address: "10.0.0.5" }],
    });
    expect(cond(m, "Ready")?.status).toBe("True");
    expect(world.nodes.get("UUID-h1")).toBe("beskar7://lab/h1");
    expect(result.requeueAfterMs).toBeUndefined();
  });

  it("keeps looking for the Node while it does not exist", async () => {
    const world = new World().owner("m-1", "bootstrap-m-1").add(host("h1"));
    const m = machine();
    await run(world, m, 2);
    world.hostState("h1", "Provisioned");
    expect((await run(world, m)).requeueAfterMs).toBe(config.nodeCheckMs);
  });
});

describe("Beskar7Machine: pause, loss and release", () => {
  it("a paused cluster: no claim, no host write but the pause itself, which is undone on resume", async () => {
    const world = new World().owner("m-1").add(host("h1"), host("h2"));
    const m = machine();
    await run(world, m);
    const claimedHost = m.status!.hostRef!.name;
    world.clusterObj.spec = { paused: true };
    world.owner("m-1", "bootstrap-m-1"); // bootstrap data arrives while paused
    const other = machine("m-2");
    world.owner("m-2", "bootstrap-m-1");
    await run(world, m);
    await run(world, other);
    expect(world.claims).toEqual([`m-1->${claimedHost}`]); // m-2 claimed nothing
    expect(world.hosts_.get(claimedHost)!.spec?.provisioning).toBeUndefined(); // no request
    expect(world.hosts_.get(claimedHost)!.metadata?.annotations?.["cluster.x-k8s.io/paused"]).toBe(
      PAUSED_BY_MACHINE,
    );
    expect(cond(m, "Paused")?.status).toBe("True");
    world.clusterObj.spec = {};
    await run(world, m);
    expect(
      world.hosts_.get(claimedHost)!.metadata?.annotations?.["cluster.x-k8s.io/paused"],
    ).toBeUndefined();
    expect(world.hosts_.get(claimedHost)!.spec?.provisioning).toBeDefined();
  });

  it("a claimed host that is gone, or whose BMC is lost for good, fails the machine terminally", async () => {
    const world = new World().owner("m-1", "bootstrap-m-1").add(host("h1"));
    const m = machine();
    await run(world, m, 2);
    world.hostState("h1", "Provisioned", {
      conditions: [
        {
          type: "BMCReachable",
          status: "False",
          reason: "ConnectionFailed",
          message: "",
          lastTransitionTime: new Date(NOW.getTime() - 31 * 60_000).toISOString(),
        },
      ],
    });
    await run(world, m);
    expect(m.status).toMatchObject({ phase: "Failed", failureReason: "HostLost" });
    expect(cond(m, "Ready")).toMatchObject({ status: "False", reason: "HostLost" });

    world.hosts_.delete("h1");
    await run(world, m);
    expect(m.status?.failureMessage).toContain("no longer exists");
  });

  it("deleting the machine releases its host and waits until the host is deprovisioned", async () => {
    const world = new World().owner("m-1", "bootstrap-m-1").add(host("h1"));
    const m = machine();
    await run(world, m, 2);
    world.hostState("h1", "Provisioned");
    const releasing = await finalizeMachine(m, world, NOW);
    expect(releasing.done).toBeUndefined();
    // The released host no longer names the machine, so its events may never reach it: the
    // machine looks again by itself (a deletion once stuck here in the hardening suite).
    expect(releasing.requeueAfterMs).toBeGreaterThan(0);
    expect(world.hosts_.get("h1")!.spec?.consumerRef).toBeUndefined();
    expect(world.hosts_.get("h1")!.spec?.provisioning).toBeUndefined();
    world.hostState("h1", "Deprovisioning");
    world.update("h1", { status: { provisioning: { consumerUID: "uid-m-1" } } });
    expect((await finalizeMachine(m, world, NOW)).done).toBeUndefined();
    world.update("h1", { status: { state: "Available", provisioning: null } });
    expect((await finalizeMachine(m, world, NOW)).done).toBe(true);
  });

  it("a paused machine being deleted (clusterctl move) keeps its host claimed", async () => {
    const world = new World().owner("m-1", "bootstrap-m-1").add(host("h1"));
    const m = machine();
    await run(world, m, 2);
    world.clusterObj.spec = { paused: true };
    expect((await finalizeMachine(m, world, NOW)).done).toBeUndefined();
    expect(world.hosts_.get("h1")!.spec?.consumerRef?.uid).toBe("uid-m-1");
  });
});

describe("Beskar7Machine: after clusterctl move", () => {
  it("finds its host by kind and name when its UID changed, only with the providerID naming that host", async () => {
    const world = new World().owner("m-1", "bootstrap-m-1").add(host("h1"));
    const m = machine();
    await run(world, m, 2);
    world.hostState("h1", "Provisioned");
    await run(world, m);
    // The move: a new UID, the same name, spec and status copied (providerID included).
    const moved = structuredClone(m);
    moved.metadata!.uid = "uid-after-move";
    moved.spec!.providerID = "beskar7://lab/h1";
    await run(world, moved);
    expect(moved.status?.phase).toBe("Provisioned");
    expect(world.claims).toEqual(["m-1->h1"]);
    // A new machine of the same name, without providerID, is not the old one.
    const stranger = machine();
    stranger.metadata!.uid = "uid-stranger";
    delete stranger.status;
    await run(world, stranger);
    expect(world.claims).toEqual(["m-1->h1"]);
    expect(world.hosts_.get("h1")!.spec?.consumerRef?.uid).toBe("uid-m-1");
  });
});

describe("Beskar7Machine: boot capabilities", () => {
  it("never claims a host whose BMC cannot boot the machine's mode", async () => {
    const noMedia = host("no-media", {
      status: {
        state: "Available",
        hardwareDetails: {
          cpu: { cores: 32 },
          memoryGiB: 256,
          bootCapabilities: { virtualMedia: [], bootTargets: ["Pxe", "Hdd"] },
        },
      },
    });
    const pxeOnly = host("pxe-only", {
      status: {
        state: "Available",
        hardwareDetails: {
          cpu: { cores: 32 },
          memoryGiB: 256,
          bootCapabilities: {
            virtualMedia: ["CD"],
            bootTargets: ["Pxe", "Cd"],
            httpBootURI: false,
          },
        },
      },
    });
    const world = new World()
      .owner("m-iso", "bootstrap-m-1")
      .owner("m-ipxe", "bootstrap-m-1")
      .add(noMedia, pxeOnly);
    const iso = machine("m-iso");
    await run(world, iso);
    expect(world.claims).toEqual(["m-iso->pxe-only"]);
    const ipxe = machine("m-ipxe", {
      provisioningMode: "iPXE",
      inspectionImageURL: "https://boot/ipxe.efi",
      targetImageURL: "https://images/os.img",
    });
    await run(world, ipxe);
    expect(world.claims).toEqual(["m-iso->pxe-only"]);
    expect(cond(ipxe, "HostClaimed")?.message).toContain(
      "1 unable to boot the machine's provisioning mode",
    );
  });
});
