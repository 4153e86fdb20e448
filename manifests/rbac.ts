// RBAC for Beskar7: the operator's own least-privilege ClusterRole (bound to the Pepr module's
// service account), the aggregated role Cluster API core controllers need for our kinds, and
// viewer/editor roles for people.
import { ApiObject, Chart } from "cdk8s";
import type { Construct } from "constructs";

import {
  API_GROUP,
  BootServiceCA,
  BootServiceSecret,
  Kinds,
  Plurals,
} from "../capabilities/api/constants";

/** Pepr runs the module's controller and webhooks as ServiceAccount pepr-<uuid> in pepr-system. */
export const OPERATOR_SERVICE_ACCOUNT = { name: "pepr-beskar7", namespace: "pepr-system" } as const;

const READ = ["get", "list", "watch"];
const WRITE = ["create", "update", "patch", "delete", "deletecollection"];
const ALL_KINDS = Object.values(Kinds).map(kind => Plurals[kind]);
/** Kinds with a reconciler, hence a status and a finalizer. */
const RECONCILED = [Kinds.PhysicalHost, Kinds.Beskar7Machine, Kinds.Beskar7Cluster].map(
  kind => Plurals[kind],
);

interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

function clusterRole(
  scope: Construct,
  name: string,
  rules: PolicyRule[],
  labels: Record<string, string> = {},
): ApiObject {
  return new ApiObject(scope, name, {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRole",
    metadata: { name, labels: { "app.kubernetes.io/part-of": "beskar7", ...labels } },
    rules,
  });
}

/** The operator: reconciles our kinds and reads what the CAPI contract makes it look at. */
export function operatorRules(): PolicyRule[] {
  return [
    // Reconcilers patch spec (claims, providerID), metadata (annotations, finalizers) and status.
    // No create: hosts are enrolled by people, machines and clusters by Cluster API.
    { apiGroups: [API_GROUP], resources: RECONCILED, verbs: [...READ, "patch", "update"] },
    {
      apiGroups: [API_GROUP],
      resources: RECONCILED.map(plural => `${plural}/status`),
      verbs: ["get", "patch", "update"],
    },
    // Needed when an owner reference with blockOwnerDeletion points at our objects.
    {
      apiGroups: [API_GROUP],
      resources: RECONCILED.map(plural => `${plural}/finalizers`),
      verbs: ["update"],
    },
    // Owner Machine/Cluster lookups, the paused flag and bootstrap readiness. Contract v1beta2
    // has Cluster API copy providerID/addresses from our status, so no write access is needed.
    { apiGroups: ["cluster.x-k8s.io"], resources: ["machines", "clusters"], verbs: READ },
    // BMC credentials, CA bundles and bootstrap data. RBAC cannot restrict by label, so this is
    // cluster-wide read; the operator watches only the metadata of Secrets their owners labelled
    // beskar7.infrastructure.cluster.x-k8s.io/bmc-credentials and uses no credentials Secret
    // without that label. No writes of any kind: it never labels, patches or creates a Secret.
    { apiGroups: [""], resources: ["secrets"], verbs: READ },
    // Events for state transitions and errors (core and events.k8s.io APIs).
    { apiGroups: [""], resources: ["events"], verbs: ["create", "patch"] },
    { apiGroups: ["events.k8s.io"], resources: ["events"], verbs: ["create", "patch"] },
    // No leases: Pepr runs one watcher replica and its own store handles coordination.
  ];
}

export class Beskar7Rbac extends Chart {
  constructor(scope: Construct, id: string) {
    super(scope, id);

    clusterRole(this, "beskar7-manager", operatorRules());
    new ApiObject(this, "beskar7-manager-binding", {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: "beskar7-manager", labels: { "app.kubernetes.io/part-of": "beskar7" } },
      roleRef: {
        apiGroup: "rbac.authorization.k8s.io",
        kind: "ClusterRole",
        name: "beskar7-manager",
      },
      subjects: [{ kind: "ServiceAccount", ...OPERATOR_SERVICE_ACCOUNT }],
    });

    // The boot service's HMAC key, from which the operator derives the tokens in the media URLs
    // it gives BMCs, and its CA, to check a medium before a BMC gets it: get on that one Secret
    // and that one ConfigMap in the operator's namespace, nothing else.
    const bootKey = {
      name: "beskar7-manager-boot-key",
      namespace: OPERATOR_SERVICE_ACCOUNT.namespace,
      labels: { "app.kubernetes.io/part-of": "beskar7" },
    };
    new ApiObject(this, "beskar7-manager-boot-key", {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: bootKey,
      rules: [
        {
          apiGroups: [""],
          resources: ["secrets"],
          resourceNames: [BootServiceSecret.name],
          verbs: ["get"],
        },
        {
          apiGroups: [""],
          resources: ["configmaps"],
          resourceNames: [BootServiceCA.name],
          verbs: ["get"],
        },
      ],
    });
    new ApiObject(this, "beskar7-manager-boot-key-binding", {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "RoleBinding",
      metadata: bootKey,
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: bootKey.name },
      subjects: [{ kind: "ServiceAccount", ...OPERATOR_SERVICE_ACCOUNT }],
    });

    // Contract "All resources: API group": CAPI core creates machines from templates, reads and
    // patches our objects (owner references, labels) and, with ClusterClass, manages templates.
    // PhysicalHosts are not contract objects: people enroll them and only the operator writes
    // them, so Cluster API gets no create, update, patch or delete on them.
    const physicalHosts = Plurals[Kinds.PhysicalHost];
    clusterRole(
      this,
      "beskar7-capi-manager",
      [
        {
          apiGroups: [API_GROUP],
          resources: ALL_KINDS.filter(plural => plural !== physicalHosts),
          verbs: ["create", "delete", "get", "list", "patch", "update", "watch"],
        },
        { apiGroups: [API_GROUP], resources: [physicalHosts], verbs: READ },
      ],
      { "cluster.x-k8s.io/aggregate-to-manager": "true" },
    );

    clusterRole(this, "beskar7-viewer", [
      {
        apiGroups: [API_GROUP],
        resources: [...ALL_KINDS, ...RECONCILED.map(plural => `${plural}/status`)],
        verbs: READ,
      },
    ]);
    // Editors manage hosts and templates but not status, which the operator owns.
    clusterRole(this, "beskar7-editor", [
      { apiGroups: [API_GROUP], resources: ALL_KINDS, verbs: [...READ, ...WRITE] },
      {
        apiGroups: [API_GROUP],
        resources: RECONCILED.map(plural => `${plural}/status`),
        verbs: READ,
      },
    ]);
  }
}
