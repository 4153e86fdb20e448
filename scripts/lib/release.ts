// The clusterctl provider release: infrastructure-components.yaml (CRDs, RBAC and the Pepr module),
// metadata.yaml and cluster-template.yaml, written to dist/release/.
//
// The module part comes from `pepr build`, which bakes a freshly generated TLS key and webhook
// token into its YAML. A release must hold neither, so the components file:
//   - takes the webhook's serving certificate from cert-manager (which `clusterctl init` installs
//     for every Cluster API management cluster): an Issuer and a Certificate write the Secret
//     Pepr mounts, and cert-manager injects the CA into both webhook configurations;
//   - takes the webhook path token from the clusterctl variable ${BESKAR7_WEBHOOK_TOKEN};
//   - replaces Pepr's wildcard ClusterRole with Beskar7's least-privilege one from manifests/;
//   - adds the boot service (manifests/boot-service.ts) with its code, bundled now, in a
//     ConfigMap; its URL is the clusterctl variable ${BESKAR7_BOOT_URL}.
import { readFileSync } from "node:fs";
import { parseAllDocuments, stringify } from "yaml";

import { synthesize } from "../../manifests/app";
import { bootServiceCodeConfigMap } from "../../manifests/boot-service";
import { PEPR_STORE_CRD } from "./pepr-store";

export const TOKEN_VARIABLE = "${BESKAR7_WEBHOOK_TOKEN}";
const NAMESPACE = "pepr-system";

interface Doc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; annotations?: Record<string, string> };
  [key: string]: unknown;
}

function parse(text: string): Doc[] {
  return parseAllDocuments(text)
    .map(d => d.toJS() as Doc | null)
    .filter((d): d is Doc => !!d);
}

/** Builds the release files from the module YAML `pepr build` wrote. */
export function buildRelease(moduleYAML: string, name = "pepr-beskar7"): Record<string, string> {
  const generated = synthesize();
  const module = parse(readFileSync(moduleYAML, "utf8"));
  const tlsSecret = `${name}-tls`;

  const kept: Doc[] = [];
  for (const doc of module) {
    const isKey =
      doc.kind === "Secret" &&
      (doc.metadata.name === tlsSecret || doc.metadata.name === `${name}-api-path`);
    const isWildcardRbac =
      (doc.kind === "ClusterRole" || doc.kind === "ClusterRoleBinding") &&
      doc.metadata.name === name;
    if (isKey || isWildcardRbac) continue;
    if (
      doc.kind === "MutatingWebhookConfiguration" ||
      doc.kind === "ValidatingWebhookConfiguration"
    ) {
      doc.metadata.annotations = {
        ...doc.metadata.annotations,
        "cert-manager.io/inject-ca-from": `${NAMESPACE}/${name}`,
      };
      for (const hook of (doc.webhooks as Array<{
        clientConfig: { caBundle?: string; service?: { path?: string } };
      }>) ?? []) {
        delete hook.clientConfig.caBundle;
        if (hook.clientConfig.service?.path) {
          hook.clientConfig.service.path = hook.clientConfig.service.path.replace(
            /[^/]+$/,
            TOKEN_VARIABLE,
          );
        }
      }
    }
    kept.push(doc);
  }

  const certificates: Doc[] = [
    {
      apiVersion: "cert-manager.io/v1",
      kind: "Issuer",
      metadata: { name: `${name}-selfsigned`, namespace: NAMESPACE },
      spec: { selfSigned: {} },
    },
    {
      apiVersion: "cert-manager.io/v1",
      kind: "Certificate",
      metadata: { name, namespace: NAMESPACE },
      spec: {
        secretName: tlsSecret,
        dnsNames: [`${name}.${NAMESPACE}.svc`, `${name}.${NAMESPACE}.svc.cluster.local`],
        issuerRef: { kind: "Issuer", name: `${name}-selfsigned` },
      },
    },
    {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: `${name}-api-path`, namespace: NAMESPACE },
      type: "Opaque",
      stringData: { value: TOKEN_VARIABLE },
    },
  ];

  const namespaceFirst = kept.filter(d => d.kind === "Namespace");
  const rest = kept.filter(d => d.kind !== "Namespace");
  const components = [
    ...namespaceFirst.map(d => stringify(d)),
    ...Object.values(generated.crds),
    stringify(PEPR_STORE_CRD),
    generated.rbac,
    ...certificates.map(d => stringify(d)),
    stringify(bootServiceCodeConfigMap()),
    generated.bootService,
    ...rest.map(d => stringify(d)),
  ]
    .map(text => text.trim())
    .join("\n---\n");

  return {
    "infrastructure-components.yaml": `${components}\n`,
    "metadata.yaml": generated.metadata,
    "cluster-template.yaml": generated.clusterTemplate,
  };
}
