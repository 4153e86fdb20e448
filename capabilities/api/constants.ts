// Runtime string constants of the Beskar7 API: kind names, enum values, condition types and
// reasons, annotations, labels and finalizers. Plain values only, so the Pepr module can import
// them without pulling in schema builders; the schema sources import these (never the reverse)
// so an enum in a CRD and the constant a controller compares against cannot drift apart.
import { OsBoot } from "../../boot/os";

export const API_GROUP = "infrastructure.cluster.x-k8s.io";
/** Storage version; the one the CAPI contract labels point at. */
export const API_VERSION = "v1beta1";
/** Served (not stored) so the manifests of the original project apply unchanged. */
export const LEGACY_API_VERSION = "v1alpha1";
export const GROUP_VERSION = `${API_GROUP}/${API_VERSION}`;

export const Kinds = {
  PhysicalHost: "PhysicalHost",
  Beskar7Machine: "Beskar7Machine",
  Beskar7MachineTemplate: "Beskar7MachineTemplate",
  Beskar7Cluster: "Beskar7Cluster",
  Beskar7ClusterTemplate: "Beskar7ClusterTemplate",
} as const;
export type KindName = (typeof Kinds)[keyof typeof Kinds];

export const Plurals: Record<KindName, string> = {
  PhysicalHost: "physicalhosts",
  Beskar7Machine: "beskar7machines",
  Beskar7MachineTemplate: "beskar7machinetemplates",
  Beskar7Cluster: "beskar7clusters",
  Beskar7ClusterTemplate: "beskar7clustertemplates",
};

/** Lifecycle of a PhysicalHost; the host controller is the only writer of status.state. */
export const HostState = {
  Enrolling: "Enrolling",
  Available: "Available",
  Claimed: "Claimed",
  Inspecting: "Inspecting",
  Provisioning: "Provisioning",
  Provisioned: "Provisioned",
  Deprovisioning: "Deprovisioning",
  Error: "Error",
  Deleting: "Deleting",
} as const;
export type HostStateName = (typeof HostState)[keyof typeof HostState];

/**
 * What a failure does in a state. "error": the host moves to Error. "keep": the host keeps its
 * state (a claim is never lost to a BMC blip) unless the failure is one waiting cannot fix.
 * "keep-always": the host keeps its state whatever failed (a running node runs regardless of its
 * BMC; deletion retries on its own terms).
 */
export type HostFailurePolicy = "error" | "keep" | "keep-always";

/** The facts about one PhysicalHost state; the controller binds a handler to each (states.ts). */
export interface HostStateFacts {
  /** One sentence: the CRD field description, docs/physicalhost.md and Ready's message use it. */
  description: string;
  failure: HostFailurePolicy;
  /** A Beskar7Machine may claim a host in this state. */
  claimable: boolean;
  /** The host works for a consumer: its BMC connection cannot change (admission). */
  busy: boolean;
  /** Ready is True in this state while the BMC answers; otherwise False with the description. */
  ready: boolean;
}

/**
 * The PhysicalHost states, one record each. Paused and detached hosts keep their state: those are
 * conditions (Paused, Detached), not states.
 */
export const HostStates: Record<HostStateName, HostStateFacts> = {
  Enrolling: {
    description:
      "the controller is connecting to the BMC, validating credentials and reading the inventory",
    failure: "error",
    claimable: false,
    busy: false,
    ready: false,
  },
  Available: {
    description:
      "the BMC is reachable and inventoried; the host is free to be claimed by a machine",
    failure: "error",
    claimable: true,
    busy: false,
    ready: true,
  },
  Claimed: {
    description:
      "spec.consumerRef names a Beskar7Machine; the host waits for spec.provisioning to be written",
    failure: "keep",
    claimable: false,
    busy: true,
    ready: true,
  },
  Inspecting: {
    description:
      "reserved for inspection outside a provisioning; a provisioning's network boot waits for the inspection report as its AwaitInspection step in Provisioning, and a host found here resumes its plan",
    failure: "keep",
    claimable: false,
    busy: true,
    ready: false,
  },
  Provisioning: {
    description:
      "the boot request in spec.provisioning is being executed (media, boot override, power on)",
    failure: "keep",
    claimable: false,
    busy: true,
    ready: false,
  },
  Provisioned: {
    description: "the host booted the requested image; it stays so until released",
    failure: "keep-always",
    claimable: false,
    busy: true,
    ready: true,
  },
  Deprovisioning: {
    description:
      "the consumer released the host; media are ejected and the host powered off before Available",
    failure: "keep",
    claimable: false,
    busy: true,
    ready: false,
  },
  Error: {
    description:
      "the last operation failed; errorReason and errorMessage say why and the controller retries with backoff",
    failure: "error",
    claimable: false,
    busy: false,
    ready: false,
  },
  Deleting: {
    description:
      "the PhysicalHost is being deleted; media are ejected, the boot override cleared and the host powered off before the object goes",
    failure: "keep-always",
    claimable: false,
    busy: false,
    ready: false,
  },
};

/** Whether a Beskar7Machine may claim the host now: no consumer, and a claimable state. */
export function freeToClaim(host: {
  spec?: { consumerRef?: unknown };
  status?: { state?: string };
}): boolean {
  const state = host.status?.state as HostStateName | undefined;
  return !host.spec?.consumerRef && !!state && !!HostStates[state]?.claimable;
}

export const PowerState = {
  On: "On",
  Off: "Off",
  PoweringOn: "PoweringOn",
  PoweringOff: "PoweringOff",
  Unknown: "Unknown",
} as const;
export type PowerStateName = (typeof PowerState)[keyof typeof PowerState];

export const ProvisioningMode = {
  PreBakedISO: "PreBakedISO",
  RemoteConfig: "RemoteConfig",
  PXE: "PXE",
  iPXE: "iPXE",
} as const;
export type ProvisioningModeName = (typeof ProvisioningMode)[keyof typeof ProvisioningMode];
/** Modes that boot an ISO over BMC virtual media (imageURL/configURL). */
export const IsoProvisioningModes: readonly ProvisioningModeName[] = [
  "PreBakedISO",
  "RemoteConfig",
];
/** Modes that network-boot the inspection image (inspectionImageURL/targetImageURL). */
export const NetworkProvisioningModes: readonly ProvisioningModeName[] = ["PXE", "iPXE"];

export const OSFamily = {
  Kairos: "kairos",
  Talos: "talos",
  Flatcar: "flatcar",
  LeapMicro: "LeapMicro",
} as const;
export type OSFamilyName = (typeof OSFamily)[keyof typeof OSFamily];

/**
 * Kernel parameters each OS family reads its remote configuration URL from (RemoteConfig), as
 * their own documentation names them (docs/boot.md cites it), for the API's descriptions: taken
 * from the boot library's table (boot/os.ts), which the renderer uses, so the two cannot differ.
 * The original project's flatcar.ignition.config.url and combustion.path do not exist.
 */
export const OSConfigKernelParameter = Object.fromEntries(
  Object.values(OSFamily).map(family => [
    family,
    [...OsBoot[family].fixedArgs, OsBoot[family].urlParameter].join(" "),
  ]),
) as Record<OSFamilyName, string>;

export const BootMode = { UEFI: "UEFI", Legacy: "Legacy" } as const;
export type BootModeName = (typeof BootMode)[keyof typeof BootMode];

/** How a host is booted for provisioning (PhysicalHost spec.provisioning.mode). */
export const HostBootMethod = { VirtualMedia: "VirtualMedia", Network: "Network" } as const;
export type HostBootMethodName = (typeof HostBootMethod)[keyof typeof HostBootMethod];

/**
 * How the OS of a provisioning reaches its configuration and the bootstrap data
 * (status.boot.delivery); chosen per host by capabilities/physical-host/delivery.ts.
 */
export const BootDelivery = {
  /** The user's ISO unchanged (its bootstrap data may ride on a cidata config volume). */
  PreBakedISO: "PreBakedISO",
  /** The user's ISO streamed through the boot service with the host's kernel arguments. */
  PatchedISO: "PatchedISO",
  /** The user's ISO unchanged plus a per-host configuration volume on a second slot. */
  ConfigVolume: "ConfigVolume",
  /** PXE or UEFI HTTP boot chaining to the boot service's per-host iPXE script. */
  NetworkBoot: "NetworkBoot",
} as const;
export type BootDeliveryName = (typeof BootDelivery)[keyof typeof BootDelivery];

/** The boot service's Secret (in the operator's namespace) and the key holding the HMAC key. */
export const BootServiceSecret = { name: "beskar7-boot-service", tokenKey: "token-key" } as const;
/** The ConfigMap (same namespace) where the boot service publishes its CA certificate. */
export const BootServiceCA = { name: "beskar7-boot-ca", key: "ca.crt" } as const;

/** Redfish boot source override target for network boot. */
export const NetworkBootTarget = { Pxe: "Pxe", UefiHttp: "UefiHttp" } as const;
export type NetworkBootTargetName = (typeof NetworkBootTarget)[keyof typeof NetworkBootTarget];

/**
 * Steps of executing spec.provisioning, in order. Completed steps are recorded in
 * status.provisioning so a restarted operator resumes instead of starting over.
 */
export const ProvisioningStep = {
  PowerOff: "PowerOff",
  EjectMedia: "EjectMedia",
  InsertBootMedia: "InsertBootMedia",
  InsertConfigMedia: "InsertConfigMedia",
  SetBootOverride: "SetBootOverride",
  PowerOn: "PowerOn",
  AwaitInspection: "AwaitInspection",
  AwaitBoot: "AwaitBoot",
} as const;
export type ProvisioningStepName = (typeof ProvisioningStep)[keyof typeof ProvisioningStep];

export const MachinePhase = {
  Pending: "Pending",
  WaitingForHost: "WaitingForHost",
  Inspecting: "Inspecting",
  Provisioning: "Provisioning",
  Provisioned: "Provisioned",
  Deprovisioning: "Deprovisioning",
  Deleting: "Deleting",
  Failed: "Failed",
} as const;
export type MachinePhaseName = (typeof MachinePhase)[keyof typeof MachinePhase];

export const MachinePhaseDescriptions: Record<MachinePhaseName, string> = {
  Pending: "waiting for the owner Machine, the Cluster infrastructure or bootstrap data",
  WaitingForHost: "no Available PhysicalHost matches hostSelector and hardwareRequirements yet",
  Inspecting: "the claimed host runs the inspection image; requirements are checked on its report",
  Provisioning: "the claimed host is booting the requested image",
  Provisioned: "the host is provisioned, providerID is set and initialization.provisioned is true",
  Deprovisioning: "the machine is releasing its host",
  Deleting: "the machine is being deleted and waits for its host to be released",
  Failed: "a terminal failure; see failureReason, failureMessage and the Ready condition",
};

/** Kubernetes address types accepted by CAPI MachineAddress. */
export const MachineAddressType = {
  Hostname: "Hostname",
  ExternalIP: "ExternalIP",
  InternalIP: "InternalIP",
  ExternalDNS: "ExternalDNS",
  InternalDNS: "InternalDNS",
} as const;
export type MachineAddressTypeName = (typeof MachineAddressType)[keyof typeof MachineAddressType];

/** status.errorReason values of a PhysicalHost (also used as Event reasons). */
export const HostErrorReason = {
  /** The Secret named by credentialsSecretRef does not exist. */
  SecretNotFound: "SecretNotFound",
  /** The Secret lacks a non-empty username or password (or the CA bundle Secret lacks ca.crt). */
  SecretInvalid: "SecretInvalid",
  /** The BMC rejected the credentials. */
  AuthenticationFailed: "AuthenticationFailed",
  /** The BMC did not answer: connection refused, timed out or reset. */
  BMCUnreachable: "BMCUnreachable",
  /** The BMC's TLS certificate is not trusted or does not match its address. */
  TLSFailure: "TLSFailure",
  /** The BMC refused an action (4xx) or cannot do it on this hardware. */
  ActionRejected: "ActionRejected",
  /** The BMC answered with a server error or something that is not Redfish. */
  BMCError: "BMCError",
  /** The BMC exposes several systems and spec.redfishConnection.systemId does not pick one. */
  SystemSelection: "SystemSelection",
  /** The BMC address (or what its name resolves to) is one the operator's address policy refuses. */
  AddressRefused: "AddressRefused",
  /** The credentials Secret lacks the label that marks it for Beskar7 (Labels.bmcCredentials). */
  SecretNotLabelled: "SecretNotLabelled",
  /** The host is in a namespace the admission webhooks skip, so the operator does not act on it. */
  NamespaceIgnored: "NamespaceIgnored",
} as const;
export type HostErrorReasonName = (typeof HostErrorReason)[keyof typeof HostErrorReason];

/** status.failureReason values of a Beskar7Machine (deprecated v1beta1 contract field). */
export const MachineFailureReason = {
  HardwareRequirementsNotMet: "HardwareRequirementsNotMet",
  ProvisioningFailed: "ProvisioningFailed",
  HostLost: "HostLost",
  InvalidConfiguration: "InvalidConfiguration",
} as const;

/** metav1.Condition types. Ready summarises the others on every kind. */
export const ConditionType = {
  Ready: "Ready",
  /** CAPI contract: set when the Cluster or the object is paused. */
  Paused: "Paused",
  // PhysicalHost
  BMCReachable: "BMCReachable",
  CredentialsValid: "CredentialsValid",
  Inspected: "Inspected",
  PowerStateSynced: "PowerStateSynced",
  Provisioned: "Provisioned",
  // Beskar7Machine
  HostClaimed: "HostClaimed",
  HardwareRequirementsMet: "HardwareRequirementsMet",
  HostProvisioned: "HostProvisioned",
  // Beskar7Cluster
  ControlPlaneEndpointReady: "ControlPlaneEndpointReady",
  /** PhysicalHost: the detached annotation is set and no BMC call is made. */
  Detached: "Detached",
  /** PhysicalHost being deleted: whether the BMC cleanup ran. */
  Deprovisioned: "Deprovisioned",
  /** PhysicalHost: a reboot annotation was taken off and recorded (True) until it was acted on,
   *  once (False: Rebooted or RebootFailed). */
  Rebooting: "Rebooting",
  /** PhysicalHost: how the configuration and bootstrap data reach the OS (status.boot). */
  BootDelivered: "BootDelivered",
} as const;
export type ConditionTypeName = (typeof ConditionType)[keyof typeof ConditionType];

/** metav1.Condition reasons (CamelCase, as the Condition schema requires). */
export const ConditionReason = {
  Ready: "Ready",
  NotReady: "NotReady",
  Paused: "Paused",
  NotPaused: "NotPaused",
  Detached: "Detached",
  NotDetached: "NotDetached",
  Deleting: "Deleting",
  /** Deletion: the credentials or the BMC were gone, so the server could not be cleaned up. */
  CleanupImpossible: "CleanupImpossible",
  CleanedUp: "CleanedUp",
  // BMC access
  Connected: "Connected",
  ConnectionFailed: "ConnectionFailed",
  SecretNotFound: "SecretNotFound",
  SecretInvalid: "SecretInvalid",
  SecretNotLabelled: "SecretNotLabelled",
  AddressRefused: "AddressRefused",
  NamespaceIgnored: "NamespaceIgnored",
  AuthenticationFailed: "AuthenticationFailed",
  // reboot annotation (Rebooting)
  RebootRequested: "RebootRequested",
  Rebooted: "Rebooted",
  RebootFailed: "RebootFailed",
  CredentialsValid: "CredentialsValid",
  // inventory / inspection
  InventoryCollected: "InventoryCollected",
  InspectionPending: "InspectionPending",
  InspectionFailed: "InspectionFailed",
  // power / provisioning
  PowerStateMatches: "PowerStateMatches",
  PowerStateMismatch: "PowerStateMismatch",
  WaitingForProvisioningRequest: "WaitingForProvisioningRequest",
  ProvisioningInProgress: "ProvisioningInProgress",
  ProvisioningSucceeded: "ProvisioningSucceeded",
  ProvisioningFailed: "ProvisioningFailed",
  Deprovisioning: "Deprovisioning",
  // boot delivery (PhysicalHost BootDelivered)
  /** The delivery path is chosen and its media are in place: the reason names the path. */
  BootDeliveryChosen: "BootDeliveryChosen",
  /** BESKAR7_BOOT_URL is not set, so nothing can be served to the host. */
  BootServiceNotConfigured: "BootServiceNotConfigured",
  /** The boot service's Secret (its HMAC key) does not exist or has no usable key yet. */
  BootServiceSecretMissing: "BootServiceSecretMissing",
  /** The host's system UUID, by which the boot service finds it, is not known. */
  SystemUUIDUnknown: "SystemUUIDUnknown",
  /** The request cannot be rendered for this OS (e.g. an invalid configURL). */
  BootConfigInvalid: "BootConfigInvalid",
  /** Bootstrap data exists but this OS or this BMC gives it no way to the host. */
  BootstrapDataNotDelivered: "BootstrapDataNotDelivered",
  /** The OS configuration was fetched (or the inspection report arrived). */
  BootSignalReceived: "BootSignalReceived",
  /** Powered on, waiting for the OS to fetch its configuration or the report to arrive. */
  WaitingForBootSignal: "WaitingForBootSignal",
  /** The signal did not come within BESKAR7_BOOT_SIGNAL_TIMEOUT_MS. */
  BootSignalTimeout: "BootSignalTimeout",
  /** The boot service cannot serve the host's medium (e.g. its source ISO 404s or is no ISO). */
  BootMediaUnavailable: "BootMediaUnavailable",
  // machine
  WaitingForClusterInfrastructure: "WaitingForClusterInfrastructure",
  WaitingForBootstrapData: "WaitingForBootstrapData",
  /** The Secret Machine.spec.bootstrap.dataSecretName names does not exist. */
  BootstrapDataMissing: "BootstrapDataMissing",
  /** Cluster API has not yet set the Machine owning the Beskar7Machine. */
  WaitingForOwnerMachine: "WaitingForOwnerMachine",
  NoMatchingHost: "NoMatchingHost",
  HostClaimed: "HostClaimed",
  RequirementsMet: "RequirementsMet",
  RequirementsNotMet: "RequirementsNotMet",
  HostLost: "HostLost",
  // cluster
  /** Cluster API has not yet set the Cluster owning the Beskar7Cluster. */
  WaitingForOwnerCluster: "WaitingForOwnerCluster",
  EndpointSet: "EndpointSet",
  EndpointMissing: "EndpointMissing",
} as const;
export type ConditionReasonName = (typeof ConditionReason)[keyof typeof ConditionReason];

const ANNOTATION_PREFIX = "beskar7.infrastructure.cluster.x-k8s.io";

export const Annotations = {
  /** On a PhysicalHost: power-cycle it once; the controller removes the annotation when done. */
  reboot: `${ANNOTATION_PREFIX}/reboot`,
  /** On a PhysicalHost: re-read the Redfish inventory now; removed when done. */
  refreshInventory: `${ANNOTATION_PREFIX}/refresh-inventory`,
  /** On a PhysicalHost: the controller stops all BMC calls; condition Detached says so. */
  detached: `${ANNOTATION_PREFIX}/detached`,
  /** CAPI: pauses reconciliation of the annotated object. */
  paused: "cluster.x-k8s.io/paused",
  /**
   * On a claimed PhysicalHost, set by the operator: the host's status saved while it is paused,
   * so that `clusterctl move` (which copies no status) moves it too; restored in the target.
   */
  savedStatus: `${ANNOTATION_PREFIX}/status`,
  /**
   * clusterctl: `clusterctl move` waits while an object carries it. The operator keeps it on
   * claimed hosts until they are paused and their status is saved.
   */
  blockMove: "clusterctl.cluster.x-k8s.io/block-move",
} as const;

export const Labels = {
  /** CAPI: the Cluster an object belongs to. */
  clusterName: "cluster.x-k8s.io/cluster-name",
  /** Set by a Secret's owner to mark it as BMC credentials Beskar7 may read (the operator reads
   *  no unlabelled credentials Secret, and watches only labelled ones). */
  bmcCredentials: `${ANNOTATION_PREFIX}/bmc-credentials`,
  /** clusterctl: objects (e.g. credential Secrets) moved with the cluster by `clusterctl move`. */
  clusterctlMove: "clusterctl.cluster.x-k8s.io/move",
  /** On a PhysicalHost, by convention: the role it may take (selected through hostSelector). */
  hostRole: `${ANNOTATION_PREFIX}/role`,
  /** On a PhysicalHost: its failure domain, matched against a machine's failureDomain. */
  zone: "topology.kubernetes.io/zone",
} as const;

export const Finalizers = {
  PhysicalHost: "physicalhost.infrastructure.cluster.x-k8s.io",
  Beskar7Machine: "beskar7machine.infrastructure.cluster.x-k8s.io",
  Beskar7Cluster: "beskar7cluster.infrastructure.cluster.x-k8s.io",
} as const;

/** Keys read from the Secret named by spec.redfishConnection.credentialsSecretRef. */
export const CredentialsSecretKeys = { username: "username", password: "password" } as const;
/** Key read from the Secret named by spec.redfishConnection.caBundleSecretRef (PEM). */
export const CABundleSecretKey = "ca.crt";

/** Node provider IDs are beskar7://<namespace>/<physicalhost-name>. */
export const PROVIDER_ID_PREFIX = "beskar7://";

export function providerIDFor(namespace: string, hostName: string): string {
  return `${PROVIDER_ID_PREFIX}${namespace}/${hostName}`;
}

/** The host a provider ID names, or undefined when it is not a Beskar7 provider ID. */
export function parseProviderID(id: string): { namespace: string; name: string } | undefined {
  const match = /^beskar7:\/\/([a-z0-9][-a-z0-9]*)\/([a-z0-9][-a-z0-9.]*)$/.exec(id);
  return match ? { namespace: match[1]!, name: match[2]! } : undefined;
}

/** Default Kubernetes API port of a Beskar7Cluster control plane endpoint. */
export const DEFAULT_API_SERVER_PORT = 6443;
