// The boot service's manifests and its code bundle. It runs on the image the Pepr module runs on
// (Pepr's controller image, for its Node), with its code delivered the way Pepr delivers the
// module's: bundled by esbuild, gzipped, and mounted from a ConfigMap (beskar7-boot-service-code,
// added by the release, see scripts/lib/release.ts). At start a one-line loader unpacks it into
// an in-memory emptyDir (the root filesystem stays read-only) and imports it. The bundle needs
// nothing from the image's node_modules (boot-service/kube.ts is its Kubernetes client). Gzipped,
// it is ~170 KB of the release, whose text then holds no PEM markers or key names (the release
// test looks for leaked key material).
//
// RBAC is its own ServiceAccount's, least privilege:
//   - get/list/watch physicalhosts: the UUID index;
//   - patch physicalhosts/status: only status.boot.configFetchedTime, reportedTime and report
//     (JSON patches that test the session first);
//   - get secrets, cluster-wide: a host's bootstrap data Secret lives in the host's namespace and
//     RBAC cannot name it in advance; get only (no list or watch), so the service can read a
//     Secret it is told the name of and cannot enumerate any;
//   - in its own namespace: create Secrets and ConfigMaps (create cannot be limited by name) and
//     get/update only its Secret beskar7-boot-service and ConfigMap beskar7-boot-ca.
import { ApiObject, Chart } from "cdk8s";
import type { Construct } from "constructs";
import { buildSync } from "esbuild";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { gzipSync } from "node:zlib";

import { API_GROUP, Kinds, Plurals } from "../capabilities/api/constants";

export const BOOT_SERVICE = "beskar7-boot-service";
export const BOOT_SERVICE_NAMESPACE = "pepr-system";
/** The ConfigMap holding the bundle; the release adds it (bootServiceCodeConfigMap). */
export const BOOT_SERVICE_CODE = "beskar7-boot-service-code";
export const BOOT_SERVICE_BUNDLE = "beskar7-boot-service.mjs";
const PACKED_BUNDLE = `${BOOT_SERVICE_BUNDLE}.gz`;
/** The NodePort BMCs reach the boot endpoints at: BESKAR7_BOOT_URL must name it. */
export const BOOT_SERVICE_NODE_PORT = 30843;
const PACKED_DIR = "/app/boot-service-code";
const CODE_DIR = "/app/boot-service";
/** Unpacks the bundle into the emptyDir and runs it, in the one Node process (signals reach it). */
const LOADER =
  `const z=require("node:zlib"),f=require("node:fs");` +
  `f.writeFileSync("${CODE_DIR}/${BOOT_SERVICE_BUNDLE}",z.gunzipSync(f.readFileSync("${PACKED_DIR}/${PACKED_BUNDLE}")));` +
  `import("${CODE_DIR}/${BOOT_SERVICE_BUNDLE}");`;
const ROOT = resolve(__dirname, "..");

/** Pepr's controller image at the version the module is built with. */
export function controllerImage(): string {
  const { version } = JSON.parse(
    readFileSync(join(ROOT, "node_modules", "pepr", "package.json"), "utf8"),
  ) as { version: string };
  return `ghcr.io/defenseunicorns/pepr/controller:v${version}`;
}

/**
 * boot-service/main.ts bundled, dependencies (node-forge, TypeBox, yaml) included: ESM, with a
 * require() for the CommonJS parts of the bundle.
 */
export function bootServiceBundle(): string {
  const result = buildSync({
    entryPoints: [join(ROOT, "boot-service", "main.ts")],
    bundle: true,
    platform: "node",
    target: "node20",
    format: "esm",
    minify: true,
    write: false,
    legalComments: "inline",
    banner: {
      js: 'import { createRequire as __b7Require } from "node:module"; const require = __b7Require(import.meta.url);',
    },
    logLevel: "silent",
  });
  return result.outputFiles[0]!.text;
}

/** The ConfigMap the Deployment mounts its (gzipped) code from. */
export function bootServiceCodeConfigMap(bundle: string = bootServiceBundle()): object {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: {
      name: BOOT_SERVICE_CODE,
      namespace: BOOT_SERVICE_NAMESPACE,
      labels: labels(),
    },
    binaryData: { [PACKED_BUNDLE]: gzipSync(bundle, { level: 9 }).toString("base64") },
  };
}

function labels(): Record<string, string> {
  return { "app.kubernetes.io/part-of": "beskar7", "app.kubernetes.io/name": BOOT_SERVICE };
}

export class Beskar7BootService extends Chart {
  constructor(scope: Construct, id: string) {
    super(scope, id);
    const namespace = BOOT_SERVICE_NAMESPACE;
    const meta = { name: BOOT_SERVICE, namespace, labels: labels() };
    const subject = { kind: "ServiceAccount", name: BOOT_SERVICE, namespace };
    const rbac = "rbac.authorization.k8s.io";

    new ApiObject(this, "account", { apiVersion: "v1", kind: "ServiceAccount", metadata: meta });
    new ApiObject(this, "cluster-role", {
      apiVersion: `${rbac}/v1`,
      kind: "ClusterRole",
      metadata: { name: BOOT_SERVICE, labels: labels() },
      rules: [
        {
          apiGroups: [API_GROUP],
          resources: [Plurals[Kinds.PhysicalHost]],
          verbs: ["get", "list", "watch"],
        },
        {
          apiGroups: [API_GROUP],
          resources: [`${Plurals[Kinds.PhysicalHost]}/status`],
          verbs: ["patch"],
        },
        { apiGroups: [""], resources: ["secrets"], verbs: ["get"] },
      ],
    });
    new ApiObject(this, "cluster-binding", {
      apiVersion: `${rbac}/v1`,
      kind: "ClusterRoleBinding",
      metadata: { name: BOOT_SERVICE, labels: labels() },
      roleRef: { apiGroup: rbac, kind: "ClusterRole", name: BOOT_SERVICE },
      subjects: [subject],
    });
    new ApiObject(this, "role", {
      apiVersion: `${rbac}/v1`,
      kind: "Role",
      metadata: meta,
      rules: [
        { apiGroups: [""], resources: ["secrets", "configmaps"], verbs: ["create"] },
        {
          apiGroups: [""],
          resources: ["secrets"],
          resourceNames: [BOOT_SERVICE],
          verbs: ["get", "update"],
        },
        {
          apiGroups: [""],
          resources: ["configmaps"],
          resourceNames: ["beskar7-boot-ca"],
          verbs: ["get", "update"],
        },
      ],
    });
    new ApiObject(this, "role-binding", {
      apiVersion: `${rbac}/v1`,
      kind: "RoleBinding",
      metadata: meta,
      roleRef: { apiGroup: rbac, kind: "Role", name: BOOT_SERVICE },
      subjects: [subject],
    });

    const selector = { "app.kubernetes.io/name": BOOT_SERVICE };
    new ApiObject(this, "deployment", {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: meta,
      spec: {
        replicas: 1,
        selector: { matchLabels: selector },
        template: {
          metadata: { labels: labels() },
          spec: {
            serviceAccountName: BOOT_SERVICE,
            // Longer than BESKAR7_BOOT_SHUTDOWN_GRACE, so transfers in progress can finish.
            terminationGracePeriodSeconds: 45,
            securityContext: {
              runAsNonRoot: true,
              runAsUser: 65532,
              runAsGroup: 65532,
              seccompProfile: { type: "RuntimeDefault" },
            },
            containers: [
              {
                name: "boot-service",
                image: controllerImage(),
                imagePullPolicy: "IfNotPresent",
                args: ["-e", LOADER],
                env: [
                  // clusterctl substitutes it; with kubectl apply, set it to the address BMCs
                  // reach (a node's IP and the NodePort below, or a load balancer's).
                  { name: "BESKAR7_BOOT_URL", value: "${BESKAR7_BOOT_URL}" },
                  { name: "BESKAR7_BOOT_LISTEN", value: "0.0.0.0:8443" },
                  { name: "BESKAR7_BOOT_METRICS_LISTEN", value: "0.0.0.0:9090" },
                  { name: "BESKAR7_BOOT_SHUTDOWN_GRACE", value: "30s" },
                  {
                    name: "BESKAR7_NAMESPACE",
                    valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } },
                  },
                  {
                    name: "NODE_OPTIONS",
                    value: "--max-old-space-size=96 --max-semi-space-size=4",
                  },
                  // glibc gives each thread that mallocs (libuv's pool, OpenSSL, V8's GC helpers)
                  // its own arena; freed TLS and socket buffers then stay spread over them. Two
                  // arenas lowered the streaming peak where reads allocate (an https:// source
                  // ISO): docs/boot-service.md.
                  { name: "MALLOC_ARENA_MAX", value: "2" },
                ],
                ports: [
                  { name: "boot", containerPort: 8443 },
                  { name: "metrics", containerPort: 9090 },
                ],
                livenessProbe: {
                  httpGet: { path: "/healthz", port: "metrics" },
                  initialDelaySeconds: 5,
                  periodSeconds: 10,
                },
                readinessProbe: {
                  httpGet: { path: "/readyz", port: "metrics" },
                  periodSeconds: 5,
                },
                resources: {
                  requests: { cpu: "100m", memory: "96Mi" },
                  limits: { memory: "192Mi" },
                },
                securityContext: {
                  allowPrivilegeEscalation: false,
                  readOnlyRootFilesystem: true,
                  capabilities: { drop: ["ALL"] },
                },
                volumeMounts: [
                  { name: "packed-code", mountPath: PACKED_DIR, readOnly: true },
                  { name: "code", mountPath: CODE_DIR },
                ],
              },
            ],
            volumes: [
              { name: "packed-code", configMap: { name: BOOT_SERVICE_CODE } },
              { name: "code", emptyDir: { medium: "Memory", sizeLimit: "4Mi" } },
            ],
          },
        },
      },
    });
    // BMCs and booting hosts are outside the cluster: a NodePort by default (change the type to
    // LoadBalancer where the site has one). Metrics stay inside, on their own ClusterIP Service.
    new ApiObject(this, "service", {
      apiVersion: "v1",
      kind: "Service",
      metadata: meta,
      spec: {
        type: "NodePort",
        selector,
        ports: [
          {
            name: "https",
            port: 8443,
            targetPort: "boot",
            nodePort: BOOT_SERVICE_NODE_PORT,
          },
        ],
      },
    });
    new ApiObject(this, "metrics-service", {
      apiVersion: "v1",
      kind: "Service",
      metadata: { ...meta, name: `${BOOT_SERVICE}-metrics` },
      spec: {
        type: "ClusterIP",
        selector,
        ports: [{ name: "metrics", port: 9090, targetPort: "metrics" }],
      },
    });
  }
}
