// Builders and a small harness for the PhysicalHost controller tests: the harness plays the
// runtime's and the API server's part (writing the status a run returns as a merge patch when it
// changes something, removing annotations, keeping events, counting state transitions) around
// reconcileHost, so a test can drive a host through several reconciles and look at the result.
import type { Condition, PhysicalHost, PhysicalHostStatus } from "../../../capabilities/api";
import type { EventInput } from "../../../capabilities/lib/events";
import { changes, type RunResult } from "../../../capabilities/lib/runtime";
import { toBmcFailure } from "../../../capabilities/physical-host/bmc";
import {
  reconcileHost,
  type HostControllerDeps,
} from "../../../capabilities/physical-host/controller";
import {
  defaultHostControllerConfig,
  type HostControllerConfig,
  type StatusUpdate,
} from "../../../capabilities/physical-host/states";
import { FakeBmc } from "./fake-bmc";

export const NOW = new Date("2025-03-01T12:00:00.000Z");
export const ADDRESS = "https://10.0.0.21";
export const CONSUMER = {
  apiVersion: "infrastructure.cluster.x-k8s.io/v1beta1",
  kind: "Beskar7Machine",
  name: "worker-0",
  namespace: "lab",
  uid: "uid-worker-0",
};
export const BOOT_ISO = "https://images.example.com/kairos.iso";
export const CONFIG_ISO = "https://images.example.com/config.img";

const clone = <T>(value: T): T => structuredClone(value);

export function makeHost(
  init: {
    spec?: Partial<NonNullable<PhysicalHost["spec"]>>;
    status?: PhysicalHostStatus;
    annotations?: Record<string, string>;
    generation?: number;
  } = {},
): PhysicalHost {
  return {
    apiVersion: "infrastructure.cluster.x-k8s.io/v1beta1",
    kind: "PhysicalHost",
    metadata: {
      name: "server-21",
      namespace: "lab",
      uid: "uid-server-21",
      generation: init.generation ?? 1,
      ...(init.annotations ? { annotations: init.annotations } : {}),
    },
    spec: {
      redfishConnection: { address: ADDRESS, credentialsSecretRef: "server-21-bmc" },
      ...init.spec,
    },
    ...(init.status ? { status: init.status } : {}),
  };
}

/** RFC 7386 JSON merge patch, as the API server applies a status patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return clone(patch);
  const out: Record<string, unknown> =
    target !== null && typeof target === "object" && !Array.isArray(target)
      ? { ...(target as Record<string, unknown>) }
      : {};
  for (const [key, value] of Object.entries(patch as Record<string, unknown>)) {
    if (value === undefined) continue; // not representable in JSON: never sent
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key], value);
  }
  return out;
}

export function condition(
  status: PhysicalHostStatus | undefined,
  type: string,
): Condition | undefined {
  return status?.conditions?.find(c => c.type === type);
}

/** Drives reconcileHost against one FakeBmc, applying what it writes to `host`. */
export class HostHarness {
  host: PhysicalHost;
  readonly bmc: FakeBmc;
  readonly patches: StatusUpdate[] = [];
  readonly removedAnnotations: string[][] = [];
  readonly events: EventInput[] = [];
  readonly transitions: Array<[string | undefined, string]> = [];
  readonly connector: ReturnType<FakeBmc["connector"]>;
  config: HostControllerConfig = { ...defaultHostControllerConfig };
  now = NOW;
  /** When set, connect() throws it (e.g. a CredentialsError from reading the Secret). */
  connectError: Error | undefined;
  connectAttempts = 0;

  constructor(host: PhysicalHost = makeHost(), bmc: FakeBmc = new FakeBmc()) {
    this.host = host;
    this.bmc = bmc;
    this.connector = bmc.connector();
  }

  deps(): HostControllerDeps {
    return {
      connect: async host => {
        this.connectAttempts++;
        if (this.connectError) throw toBmcFailure(this.connectError);
        return this.connector.connect(host);
      },
      config: this.config,
      now: () => this.now,
    };
  }

  /** Applies a run's result as the runtime does: status, annotations, events, transitions. */
  apply(result: RunResult): void {
    const before = this.host.status?.state;
    if (
      result.status &&
      changes((this.host.status ?? {}) as Record<string, unknown>, result.status)
    ) {
      this.patches.push(clone(result.status as StatusUpdate));
      this.host = {
        ...this.host,
        status: JSON.parse(
          JSON.stringify(mergePatch(this.host.status ?? {}, result.status)),
        ) as PhysicalHostStatus,
      };
    }
    if (result.annotations && Object.keys(result.annotations).length) {
      const removed = Object.keys(result.annotations).filter(k => result.annotations![k] === null);
      if (removed.length) this.removedAnnotations.push(removed);
      const annotations = mergePatch(this.host.metadata?.annotations ?? {}, result.annotations);
      this.host = {
        ...this.host,
        metadata: { ...this.host.metadata, annotations: annotations as Record<string, string> },
      };
    }
    this.events.push(...(result.events ?? []));
    const after = this.host.status?.state;
    if (after && after !== before) this.transitions.push([before, after]);
  }

  /** One reconcile of (a copy of) the current host; what it writes lands on this.host. */
  async reconcile(signal?: AbortSignal): Promise<{ requeueAfterMs?: number }> {
    const result = await reconcileHost(clone(this.host), this.deps(), signal);
    this.apply(result);
    return result.requeueAfterMs === undefined ? {} : { requeueAfterMs: result.requeueAfterMs };
  }

  /** Reconciles until the host reaches `state` (or gives up after `max` rounds). */
  async reconcileUntil(state: string, max = 20): Promise<number> {
    for (let i = 1; i <= max; i++) {
      await this.reconcile();
      if (this.host.status?.state === state) return i;
    }
    throw new Error(`host did not reach ${state}; it is ${this.host.status?.state}`);
  }

  /** Changes the spec (as a user or the machine controller would). */
  editSpec(change: (spec: NonNullable<PhysicalHost["spec"]>) => void): void {
    const host = clone(this.host);
    change(host.spec!);
    this.host = host;
  }

  setAnnotations(annotations: Record<string, string>): void {
    this.host = {
      ...this.host,
      metadata: {
        ...this.host.metadata,
        annotations: { ...this.host.metadata?.annotations, ...annotations },
      },
    };
  }

  eventReasons(): string[] {
    return this.events.map(e => e.reason);
  }

  clearRecords(): void {
    this.patches.length = 0;
    this.events.length = 0;
    this.removedAnnotations.length = 0;
    this.transitions.length = 0;
    this.bmc.resetCounters();
  }
}
