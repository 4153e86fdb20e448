// Helpers for PhysicalHost tests: hosts pointed at test BMCs, and waiting for their states.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { K8s } from "kubernetes-fluent-client";

import { PhysicalHost, type PhysicalHostSpec } from "../../../capabilities/api";
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

/** JSON-pointer escaping for annotation keys with slashes. */
export const pointer = (key: string) => key.replace(/~/g, "~0").replace(/\//g, "~1");
