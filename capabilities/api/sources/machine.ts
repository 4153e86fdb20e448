// Beskar7Machine (the CAPI InfraMachine) and Beskar7MachineTemplate. The template's spec is the
// machine spec; providerID is rejected there by CEL because each machine gets its own.
import { Type, type TObject, type TProperties } from "@sinclair/typebox";

import {
  BootMode,
  MachineFailureReason,
  MachinePhase,
  MachinePhaseDescriptions,
  OSConfigKernelParameter,
  OSFamily,
  ProvisioningMode,
} from "../constants";
import {
  Conditions,
  HttpURL,
  KernelArgs,
  Initialization,
  LabelSelector,
  MachineAddresses,
  ObjectName,
  ObservedGeneration,
  StringEnum,
  StringMap,
  cel,
  type CelRule,
} from "./common";

export const HardwareRequirementsSchema = Type.Object(
  {
    minCPUCores: Type.Optional(
      Type.Integer({
        description: "minimum number of physical CPU cores the host must have (>= 1).",
        minimum: 1,
        maximum: 65536,
      }),
    ),
    minMemoryGB: Type.Optional(
      Type.Integer({
        description: "minimum system memory in GiB the host must have (>= 1).",
        minimum: 1,
        maximum: 1048576,
      }),
    ),
    minDiskGB: Type.Optional(
      Type.Integer({
        description: "minimum size in GiB of the largest disk of the host (>= 1).",
        minimum: 1,
        maximum: 1048576,
      }),
    ),
  },
  {
    description:
      "minimum hardware a host must have to be claimed (checked against its inventory, and again on the inspection report in network modes).",
  },
);

const kernelParameterNote = Object.entries(OSConfigKernelParameter)
  .map(([family, parameter]) => `${family}: ${parameter}=<url>`)
  .join(", ");

/** Fields shared by Beskar7Machine.spec and Beskar7MachineTemplate.spec.template.spec. */
const machineSpecProperties = {
  providerID: Type.Optional(
    Type.String({
      description:
        "provider ID of the Node on this machine, beskar7://<namespace>/<physicalhost-name>; set by the controller once provisioned and immutable afterwards. Must not be set in a template.",
      minLength: 1,
      maxLength: 512,
    }),
  ),
  provisioningMode: Type.Optional(
    StringEnum(Object.values(ProvisioningMode), {
      description:
        "how the host is provisioned. PreBakedISO: boot imageURL, an ISO that installs unattended (the bootstrap data goes beside it as a cidata volume where the BMC has a second slot). RemoteConfig: boot imageURL (a generic installer) with the OS's configuration delivered by the boot service: the ISO patched with the kernel arguments, or a configuration volume; the configuration is configURL, or the Machine's bootstrap data when configURL is omitted. PXE: network-boot through the site's DHCP/TFTP, which chains to the boot service's iPXE script; the inspection image reports hardware, then installs targetImageURL with configurationURL (or the bootstrap data). iPXE: like PXE, but the firmware HTTP-boots inspectionImageURL (an iPXE binary chaining to the boot service) directly (UEFI only). When omitted it is inferred: iPXE if inspectionImageURL is set, RemoteConfig if configURL is set, otherwise PreBakedISO.",
    }),
  ),
  osFamily: Type.Optional(
    StringEnum(Object.values(OSFamily), {
      description: `operating system family; selects what the OS reads at first boot: the kernel parameter that carries the configuration URL (${kernelParameterNote}) or its configuration volume. Required for RemoteConfig.`,
    }),
  ),
  extraKernelArgs: Type.Optional(
    KernelArgs(
      "RemoteConfig/PXE/iPXE: further kernel arguments, after those the osFamily needs (e.g. console=ttyS0,115200n8). The boot service writes them into the patched ISO's boot loader or the iPXE script. Names of letters, digits, '.', '_', '-'; no spaces or quotes; an argument Beskar7 sets itself for the osFamily is refused.",
    ),
  ),
  imageURL: Type.Optional(
    HttpURL(
      "PreBakedISO/RemoteConfig: URL of the ISO the BMC mounts as virtual media. Must be reachable from the BMC and bootable in bootMode.",
    ),
  ),
  configURL: Type.Optional(
    HttpURL(
      "RemoteConfig: URL of the OS configuration (e.g. Kairos cloud-config), passed to the OS on its kernel command line (the boot service patches it into the ISO). Must be reachable from the host while it boots. Optional: when omitted, the OS reads the Machine's bootstrap data from this host's endpoint on the boot service (or from a configuration volume).",
    ),
  ),
  inspectionImageURL: Type.Optional(
    HttpURL(
      "PXE/iPXE: URL of the inspection image (its iPXE script or EFI binary), which reports hardware details before the OS is installed.",
    ),
  ),
  targetImageURL: Type.Optional(
    HttpURL(
      "PXE/iPXE: URL of what the boot service's iPXE script boots: the OS kernel when targetInitrdURL is set, otherwise a single bootable image (a unified kernel image or another EFI binary).",
    ),
  ),
  targetInitrdURL: Type.Optional(
    HttpURL(
      "PXE/iPXE: URL of the initramfs the iPXE script loads with the kernel at targetImageURL. Real OS network boots are a kernel and an initramfs: Talos vmlinuz-amd64 with initramfs-amd64.xz, Flatcar flatcar_production_pxe.vmlinuz with flatcar_production_pxe_image.cpio.gz.",
    ),
  ),
  configurationURL: Type.Optional(
    HttpURL(
      "PXE/iPXE: URL of the OS configuration handed to the target OS. Optional: when omitted, the target OS reads the Machine's bootstrap data from this host's endpoint on the boot service.",
    ),
  ),
  hardwareRequirements: Type.Optional(HardwareRequirementsSchema),
  hostSelector: Type.Optional(
    Type.Object(LabelSelector.properties, {
      description:
        "labels a PhysicalHost must match to be claimed by this machine (metav1.LabelSelector); any Available host when omitted.",
    }),
  ),
  bootMode: Type.Optional(
    StringEnum(Object.values(BootMode), {
      description: "firmware boot mode: UEFI (default) or Legacy. iPXE needs UEFI.",
      default: "UEFI",
    }),
  ),
  failureDomain: Type.Optional(
    Type.String({
      description:
        "failure domain the machine must be placed in (deprecated v1beta1 contract field; Cluster API v1beta2 sets it on the Machine). Hosts are matched on their label topology.kubernetes.io/zone.",
      minLength: 1,
      maxLength: 256,
    }),
  ),
} satisfies TProperties;

/** Cross-field rules for a machine spec; `path` prefixes messages so they name the field. */
function machineSpecRules(path: string): CelRule[] {
  const mode =
    "(has(self.provisioningMode) ? self.provisioningMode : (has(self.inspectionImageURL) ? 'iPXE' : (has(self.configURL) ? 'RemoteConfig' : 'PreBakedISO')))";
  return [
    {
      rule: `!(${mode} in ['PreBakedISO', 'RemoteConfig']) || has(self.imageURL)`,
      message: `${path}.imageURL is required when provisioningMode is PreBakedISO or RemoteConfig (the ISO the BMC mounts)`,
      fieldPath: ".imageURL",
      reason: "FieldValueRequired",
    },
    {
      rule: `${mode} != 'RemoteConfig' || has(self.osFamily)`,
      message: `${path}.osFamily is required when provisioningMode is RemoteConfig (it selects what the OS reads: its kernel parameter or configuration volume): one of ${Object.values(OSFamily).join(", ")}`,
      fieldPath: ".osFamily",
      reason: "FieldValueRequired",
    },
    {
      rule: `!(${mode} in ['PXE', 'iPXE']) || (has(self.inspectionImageURL) && has(self.targetImageURL))`,
      message: `${path}.inspectionImageURL and ${path}.targetImageURL are required when provisioningMode is PXE or iPXE`,
      fieldPath: ".targetImageURL",
      reason: "FieldValueRequired",
    },
    {
      rule: `!has(self.targetInitrdURL) || ${mode} in ['PXE', 'iPXE']`,
      message: `${path}.targetInitrdURL is only used when provisioningMode is PXE or iPXE (the initramfs the iPXE script loads with targetImageURL)`,
      fieldPath: ".targetInitrdURL",
    },
    {
      rule: `${mode} != 'iPXE' || !has(self.bootMode) || self.bootMode == 'UEFI'`,
      message: `${path}.bootMode must be UEFI when provisioningMode is iPXE (the firmware HTTP-boots the inspection image)`,
      fieldPath: ".bootMode",
    },
    {
      rule: "has(self.provisioningMode) || !(has(self.imageURL) && has(self.inspectionImageURL))",
      message: `${path}.provisioningMode must be set when both imageURL and inspectionImageURL are given`,
      fieldPath: ".provisioningMode",
      reason: "FieldValueRequired",
    },
  ];
}

export const Beskar7MachineSpecSchema = Type.Object(machineSpecProperties, {
  description: "desired state of the Beskar7Machine.",
  ...cel(...machineSpecRules("spec"), {
    rule: "!has(oldSelf.providerID) || (has(self.providerID) && self.providerID == oldSelf.providerID)",
    message: "spec.providerID is immutable once set",
    fieldPath: ".providerID",
  }),
});

export const HostRefSchema = Type.Object(
  {
    name: ObjectName("name of the PhysicalHost (in the machine's namespace)."),
    uid: Type.Optional(Type.String({ description: "UID of the PhysicalHost.", maxLength: 64 })),
  },
  { description: "the PhysicalHost this machine has claimed." },
);

const phaseList = Object.entries(MachinePhaseDescriptions)
  .map(([phase, text]) => `${phase}: ${text}.`)
  .join(" ");

export const Beskar7MachineStatusSchema = Type.Object(
  {
    initialization: Type.Optional(Initialization("the machine's infrastructure")),
    conditions: Type.Optional(Conditions),
    addresses: Type.Optional(MachineAddresses),
    failureDomain: Type.Optional(
      Type.String({
        description: "failure domain the machine was placed in.",
        minLength: 1,
        maxLength: 256,
      }),
    ),
    ready: Type.Optional(
      Type.Boolean({
        description:
          "deprecated (Cluster API v1beta1 contract): true when provisioned; use initialization.provisioned.",
      }),
    ),
    failureReason: Type.Optional(
      Type.String({
        description: `deprecated (v1beta1 contract): terminal failure class, one of ${Object.values(MachineFailureReason).join(", ")}.`,
        maxLength: 256,
      }),
    ),
    failureMessage: Type.Optional(
      Type.String({
        description: "deprecated (v1beta1 contract): terminal failure details.",
        maxLength: 10240,
      }),
    ),
    phase: Type.Optional(
      StringEnum(Object.values(MachinePhase), {
        description: `machine lifecycle phase. ${phaseList}`,
      }),
    ),
    hostRef: Type.Optional(HostRefSchema),
    observedGeneration: Type.Optional(ObservedGeneration),
  },
  { description: "observed state of the Beskar7Machine, written by the machine controller." },
);

/** Labels and annotations copied onto machines created from a template. */
export const TemplateObjectMetaSchema = Type.Object(
  {
    labels: Type.Optional(StringMap("labels added to objects created from this template.")),
    annotations: Type.Optional(
      StringMap("annotations added to objects created from this template."),
    ),
  },
  { description: "metadata applied to objects created from the template." },
);

function templateOf<T extends TObject>(spec: T, what: string) {
  return Type.Object(
    {
      template: Type.Object(
        { metadata: Type.Optional(TemplateObjectMetaSchema), spec },
        { description: `the ${what} each object created from this template gets.` },
      ),
    },
    { description: `desired state of the ${what} template.` },
  );
}

export const Beskar7MachineTemplateSpecSchema = templateOf(
  Type.Object(machineSpecProperties, {
    description: "spec of the Beskar7Machines created from this template (without providerID).",
    ...cel(
      {
        rule: "!has(self.providerID)",
        message:
          "spec.template.spec.providerID must not be set: each Beskar7Machine gets its own from the controller",
        fieldPath: ".providerID",
        reason: "FieldValueForbidden",
      },
      ...machineSpecRules("spec.template.spec"),
    ),
  }),
  "Beskar7Machine",
);

export { templateOf };
