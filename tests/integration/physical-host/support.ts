// Helpers for PhysicalHost tests: hosts pointed at test BMCs, and waiting for their states.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { K8s } from "kubernetes-fluent-client";

import {
  API_GROUP,
  API_VERSION,
  type HostProvisioning,
  Kinds,
  PhysicalHost,
  type PhysicalHostSpec,
} from "../../../capabilities/api";
import { mockupsDir } from "../../../lab/bmc/mockup-store";
import type { TestBmc } from "../../../lab/bmc/server";
import { createSecret, eventually } from "../support/kube";

export async function hostFor(
  bmc: TestBmc,
  namespace: string,
  name: string,
  spec: Partial<PhysicalHostSpec> = {},
): Promise<void> {
  await createSecret(namespace, `${name}-bmc`, { username: bmc.username, password: bmc.password });
  await createSecret(namespace, `${name}-ca`, { "ca.crt": bmc.caPem! });
  await K8s(PhysicalHost).Apply(
    {
      metadata: { name, namespace },
      spec: {
        ...spec,
        redfishConnection: {
          address: bmc.url,
          credentialsSecretRef: `${name}-bmc`,
          caBundleSecretRef: `${name}-ca`,
          ...spec.redfishConnection,
        },
      },
    },
    { force: true },
  );
}

export async function getHost(namespace: string, name: string): Promise<PhysicalHost> {
  return K8s(PhysicalHost).InNamespace(namespace).Get(name);
}

export async function waitForHost(
  namespace: string,
  name: string,
  predicate: (host: PhysicalHost) => boolean,
  what: string,
  timeoutMs = 60_000,
): Promise<PhysicalHost> {
  return eventually(
    async () => {
      const host = await getHost(namespace, name);
      return predicate(host) && host;
    },
    `${namespace}/${name}: ${what}`,
    timeoutMs,
  );
}

export const inState = (state: string) => (host: PhysicalHost) => host.status?.state === state;

export async function waitGone(namespace: string, name: string, timeoutMs = 60_000): Promise<void> {
  await eventually(
    async () => {
      try {
        await getHost(namespace, name);
        return false;
      } catch (err) {
        return (err as { status?: number }).status === 404;
      }
    },
    `${namespace}/${name} to be deleted`,
    timeoutMs,
  );
}

/** The ComputerSystem as a mockup captured it (single-system mockups). */
export function capturedSystem(mockup: string): Record<string, unknown> {
  const root = join(mockupsDir(), mockup, "redfish", "v1", "Systems");
  const collection = JSON.parse(readFileSync(join(root, "index.json"), "utf8")) as {
    Members: Array<{ "@odata.id": string }>;
  };
  const id = collection.Members[0]!["@odata.id"].split("/").pop()!;
  return JSON.parse(readFileSync(join(root, id, "index.json"), "utf8")) as Record<string, unknown>;
}

export async function patchHost(namespace: string, name: string, patch: object[]): Promise<void> {
  await K8s(PhysicalHost, { namespace, name }).Patch(patch as never);
}

/** The consumerRef a Beskar7Machine named `machine` writes when it claims a host. */
export const consumerRef = (machine: string) => ({
  apiVersion: `${API_GROUP}/${API_VERSION}`,
  kind: Kinds.Beskar7Machine,
  name: machine,
  uid: `uid-${machine}`,
});

/**
 * Claims a host as the machine controller does, consumerRef and provisioning in one patch, for
 * the Beskar7Machine `machine` (default m-<host>); no such object needs to exist.
 */
export async function claimHost(
  namespace: string,
  name: string,
  provisioning: HostProvisioning,
  machine = `m-${name}`,
): Promise<void> {
  await patchHost(namespace, name, [
    { op: "add", path: "/spec/consumerRef", value: consumerRef(machine) },
    { op: "add", path: "/spec/provisioning", value: provisioning },
  ]);
}

/** Releases a claimed host as the machine controller does: both fields removed in one patch. */
export async function releaseHost(namespace: string, name: string): Promise<void> {
  await patchHost(namespace, name, [
    { op: "remove", path: "/spec/provisioning" },
    { op: "remove", path: "/spec/consumerRef" },
  ]);
}

/** JSON-pointer escaping for annotation keys with slashes. */
export const pointer = (key: string) => key.replace(/~/g, "~0").replace(/\//g, "~1");
