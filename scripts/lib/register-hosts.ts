// Registers one PhysicalHost (with its credentials Secret) per simulated BMC, as a person would
// with kubectl. Used by `npm start` and the PhysicalHost benchmark.
import { K8s, kind } from "kubernetes-fluent-client";

import { Labels, PhysicalHost } from "../../capabilities/api";
import type { TestBmc } from "../../lab/bmc/server";

export function hostName(bmc: TestBmc, index: number): string {
  return `${bmc.profile.vendor.toLowerCase()}-${String(index + 1).padStart(4, "0")}`;
}

export async function registerHosts(
  namespace: string,
  bmcs: TestBmc[],
  concurrency = 16,
  nameOf: (bmc: TestBmc, index: number) => string = hostName,
): Promise<string[]> {
  await K8s(kind.Namespace).Apply({ metadata: { name: namespace } });
  const caSecrets = new Map<string, string>();
  const names: string[] = [];
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < bmcs.length; i = next++) {
      const bmc = bmcs[i]!;
      const name = nameOf(bmc, i);
      names[i] = name;
      let ca = caSecrets.get(bmc.caPem ?? "");
      if (bmc.caPem && !ca) {
        ca = `bmc-ca-${caSecrets.size + 1}`;
        caSecrets.set(bmc.caPem, ca);
        await K8s(kind.Secret).Apply({
          metadata: { name: ca, namespace },
          stringData: { "ca.crt": bmc.caPem },
        });
      }
      await K8s(kind.Secret).Apply({
        // The label marks the Secret as BMC credentials Beskar7 may use, as its owner must.
        metadata: { name: `${name}-bmc`, namespace, labels: { [Labels.bmcCredentials]: "true" } },
        stringData: { username: bmc.username, password: bmc.password },
      });
      await K8s(PhysicalHost).Apply({
        metadata: { name, namespace },
        spec: {
          redfishConnection: {
            address: bmc.url,
            credentialsSecretRef: `${name}-bmc`,
            ...(ca ? { caBundleSecretRef: ca } : { allowInsecureHTTP: true }),
          },
        },
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, bmcs.length) }, worker));
  return names;
}
