// PhysicalHost: one bare-metal server and its BMC. The spec carries how to reach the BMC and,
// once a Beskar7Machine claims the host, the claim (consumerRef) and the boot request
// (provisioning) the host controller executes; the status is written by the host controller only.
import { Type } from "@sinclair/typebox";

import {
  BootDelivery,
  BootMode,
  CABundleSecretKey,
  HostBootMethod,
  HostErrorReason,
  HostState,
  HostStates,
  NetworkBootTarget,
  OSConfigKernelParameter,
  OSFamily,
  PowerState,
  ProvisioningStep,
} from "../constants";
import {
  Conditions,
  HttpURL,
  KernelArgs,
  List,
  MachineAddresses,
  ObjectName,
  ObservedGeneration,
  StringEnum,
  cel,
} from "./common";

export const RedfishConnectionSchema = Type.Object(
  {
    address: Type.String({
      description:
        "URL of the BMC's Redfish service: https://host[:port], where host is a DNS name, an IPv4 address or a bracketed IPv6 literal (https://[fd00::1]:8443). http:// is accepted only with allowInsecureHTTP: true.",
      minLength: 8,
      maxLength: 2048,
      pattern: "^[^\\s]+$",
      ...cel({
        rule: "isURL(self) && url(self).getScheme() in ['https', 'http'] && url(self).getHostname() != ''",
        message:
          "spec.redfishConnection.address must be an https:// URL of the BMC, e.g. https://10.0.0.5 or https://[fd00::1]:8443 (http:// only with allowInsecureHTTP: true)",
      }),
    }),
    allowInsecureHTTP: Type.Optional(
      Type.Boolean({
        description:
          "allow an http:// address. Credentials then cross the network in clear text: only for lab BMCs and emulators. Default false.",
        default: false,
      }),
    ),
    credentialsSecretRef: ObjectName(
      "name of a Secret in the PhysicalHost's namespace with the keys username and password for the BMC. The operator labels the Secret it reads so it can watch it.",
    ),
    insecureSkipVerify: Type.Optional(
      Type.Boolean({
        description:
          "skip verification of the BMC's TLS certificate. Not for production; prefer caBundleSecretRef. Mutually exclusive with caBundleSecretRef. Default false.",
        default: false,
      }),
    ),
    caBundleSecretRef: Type.Optional(
      ObjectName(
        `name of a Secret in the PhysicalHost's namespace whose key ${CABundleSecretKey} holds the PEM CA certificate(s) to trust for this BMC instead of the system roots (for self-signed BMC certificates). Mutually exclusive with insecureSkipVerify.`,
      ),
    ),
    systemId: Type.Optional(
      Type.String({
        description:
          "Redfish ComputerSystem Id to manage on a BMC that exposes several systems (e.g. a blade chassis manager); the only system is used when omitted.",
        minLength: 1,
        maxLength: 256,
      }),
    ),
  },
  {
    description: "how to reach and authenticate to the host's BMC over Redfish.",
    ...cel(
      {
        rule: "!(has(self.insecureSkipVerify) && self.insecureSkipVerify && has(self.caBundleSecretRef))",
        message:
          "spec.redfishConnection.insecureSkipVerify and spec.redfishConnection.caBundleSecretRef are mutually exclusive: trust a CA bundle or skip verification, not both",
        fieldPath: ".insecureSkipVerify",
      },
      {
        rule: "!isURL(self.address) || url(self.address).getScheme() != 'http' || (has(self.allowInsecureHTTP) && self.allowInsecureHTTP)",
        message:
          "spec.redfishConnection.address uses http://, which sends BMC credentials in clear text: use https:// or set spec.redfishConnection.allowInsecureHTTP: true",
        fieldPath: ".address",
      },
    ),
  },
);

export const ConsumerRefSchema = Type.Object(
  {
    apiVersion: Type.String({
      description: "API version of the consumer, e.g. infrastructure.cluster.x-k8s.io/v1beta1.",
      minLength: 1,
      maxLength: 317,
    }),
    kind: Type.String({
      description: "kind of the consumer, normally Beskar7Machine.",
      minLength: 1,
      maxLength: 63,
    }),
    name: ObjectName("name of the consumer."),
    namespace: Type.Optional(
      ObjectName("namespace of the consumer; the PhysicalHost's own namespace when omitted."),
    ),
    uid: Type.Optional(
      Type.String({
        description:
          "UID of the consumer, so a re-created object of the same name is not mistaken for the claimant.",
        maxLength: 64,
      }),
    ),
  },
  { description: "reference to the object that claimed this host (normally a Beskar7Machine)." },
);

const kernelParameterNote = Object.entries(OSConfigKernelParameter)
  .map(([family, parameter]) => `${family}: ${parameter}`)
  .join(", ");

export const HostProvisioningSchema = Type.Object(
  {
    mode: StringEnum(Object.values(HostBootMethod), {
      description:
        "how the host boots: VirtualMedia (the BMC mounts bootISO, and configMediaURL if set, and boots from the virtual CD) or Network (boot override to networkBootTarget; the host boots the inspection image, which reports hardware details and then installs/kexecs targetImageURL).",
    }),
    bootMode: Type.Optional(
      StringEnum(Object.values(BootMode), {
        description: "firmware boot mode to set with the boot override: UEFI (default) or Legacy.",
        default: "UEFI",
      }),
    ),
    bootISO: Type.Optional(
      HttpURL(
        "VirtualMedia: URL of the ISO the BMC inserts as virtual CD and boots once. Required for VirtualMedia.",
      ),
    ),
    configMediaURL: Type.Optional(
      HttpURL(
        "VirtualMedia: URL of a second image (e.g. a config drive) the BMC inserts alongside bootISO, on a second virtual media slot.",
      ),
    ),
    networkBootTarget: Type.Optional(
      StringEnum(Object.values(NetworkBootTarget), {
        description:
          "Network: boot source override target: Pxe (DHCP/TFTP infrastructure chains to the inspection image) or UefiHttp (firmware HTTP-boots httpBootURI; needs bootMode UEFI). Required for Network.",
      }),
    ),
    httpBootURI: Type.Optional(
      HttpURL(
        "Network with UefiHttp: URL the firmware HTTP-boots (Redfish Boot.HttpBootUri), e.g. the iPXE/inspection EFI binary.",
      ),
    ),
    targetImageURL: Type.Optional(
      HttpURL(
        "Network: URL of what the boot service's iPXE script boots: the OS kernel when targetInitrdURL is set, otherwise a single bootable image (a unified kernel image or another EFI binary).",
      ),
    ),
    targetInitrdURL: Type.Optional(
      HttpURL(
        "Network: URL of the initramfs the iPXE script loads with the kernel at targetImageURL (real OS network boots are a kernel and an initramfs, e.g. Talos vmlinuz-amd64 with initramfs-amd64.xz, Flatcar *_pxe.vmlinuz with *_pxe_image.cpio.gz).",
      ),
    ),
    osFamily: Type.Optional(
      StringEnum(Object.values(OSFamily), {
        description: `OS family being booted; selects the kernel parameter that carries configURL (${kernelParameterNote}).`,
      }),
    ),
    extraKernelArgs: Type.Optional(
      KernelArgs(
        "further kernel arguments, after those osFamily needs; the boot service writes them into the patched ISO or iPXE script. Requires osFamily.",
      ),
    ),
    configURL: Type.Optional(
      HttpURL(
        "URL of the OS configuration (cloud-config, machine config, Ignition, Combustion) handed to the OS on its kernel command line (the boot service patches it into the ISO), using the osFamily's parameter. Requires osFamily. When omitted, the OS reads its configuration from this host's bootstrap endpoint on the boot service: the bootstrap data is the OS configuration.",
      ),
    ),
    bootstrapDataSecretRef: Type.Optional(
      ObjectName(
        "name of the Secret (in the host's namespace, key value) holding Cluster API's bootstrap data for this provisioning, as the claiming machine's Machine.spec.bootstrap.dataSecretName names it. Only the name travels: the bytes never enter a URL, kernel parameter, event, condition or log; the boot service serves them to this host alone.",
      ),
    ),
  },
  {
    description:
      "the boot/provisioning request the claiming machine writes; the host controller executes it step by step (see status.provisioning). Immutable while the host is claimed.",
    ...cel(
      {
        rule: "self.mode != 'VirtualMedia' || has(self.bootISO)",
        message:
          "spec.provisioning.bootISO is required when spec.provisioning.mode is VirtualMedia",
        fieldPath: ".bootISO",
        reason: "FieldValueRequired",
      },
      {
        rule: "self.mode != 'Network' || has(self.networkBootTarget)",
        message:
          "spec.provisioning.networkBootTarget (Pxe or UefiHttp) is required when spec.provisioning.mode is Network",
        fieldPath: ".networkBootTarget",
        reason: "FieldValueRequired",
      },
      {
        rule: "self.mode == 'VirtualMedia' || (!has(self.bootISO) && !has(self.configMediaURL))",
        message:
          "spec.provisioning.bootISO and configMediaURL are only valid with spec.provisioning.mode VirtualMedia",
      },
      {
        rule: "self.mode == 'Network' || (!has(self.networkBootTarget) && !has(self.httpBootURI) && !has(self.targetImageURL) && !has(self.targetInitrdURL))",
        message:
          "spec.provisioning.networkBootTarget, httpBootURI, targetImageURL and targetInitrdURL are only valid with spec.provisioning.mode Network",
      },
      {
        rule: "!has(self.networkBootTarget) || self.networkBootTarget != 'UefiHttp' || (has(self.httpBootURI) && (!has(self.bootMode) || self.bootMode == 'UEFI'))",
        message:
          "spec.provisioning.networkBootTarget UefiHttp requires spec.provisioning.httpBootURI and bootMode UEFI",
        fieldPath: ".httpBootURI",
      },
      {
        rule: "!has(self.httpBootURI) || (has(self.networkBootTarget) && self.networkBootTarget == 'UefiHttp')",
        message: "spec.provisioning.httpBootURI is only used with networkBootTarget UefiHttp",
        fieldPath: ".httpBootURI",
      },
      {
        rule: "!has(self.extraKernelArgs) || has(self.osFamily)",
        message:
          "spec.provisioning.extraKernelArgs requires spec.provisioning.osFamily (a pre-baked ISO's command line is its own)",
        fieldPath: ".osFamily",
        reason: "FieldValueRequired",
      },
      {
        rule: "!has(self.configURL) || has(self.osFamily)",
        message:
          "spec.provisioning.configURL requires spec.provisioning.osFamily, which selects the kernel parameter that carries it",
        fieldPath: ".osFamily",
        reason: "FieldValueRequired",
      },
    ),
  },
);

export const PhysicalHostSpecSchema = Type.Object(
  {
    redfishConnection: RedfishConnectionSchema,
    online: Type.Optional(
      Type.Boolean({
        description:
          "desired power state: true powers the host on, false off; omitted leaves power to the provisioning flow.",
      }),
    ),
    consumerRef: Type.Optional(ConsumerRefSchema),
    provisioning: Type.Optional(HostProvisioningSchema),
  },
  {
    description: "desired state of the PhysicalHost.",
    ...cel(
      {
        rule: "!has(oldSelf.consumerRef) || !has(self.consumerRef) || self.consumerRef == oldSelf.consumerRef",
        message:
          "spec.consumerRef cannot be changed while the host is claimed: release it first (remove consumerRef and provisioning), then claim it again",
        fieldPath: ".consumerRef",
      },
      {
        rule: "!has(self.provisioning) || has(self.consumerRef)",
        message:
          "spec.provisioning may only be set on a claimed host: set spec.consumerRef as well (and remove both to release)",
        fieldPath: ".provisioning",
      },
      {
        rule: "!has(oldSelf.consumerRef) || !has(self.consumerRef) || !has(oldSelf.provisioning) || (has(self.provisioning) && self.provisioning == oldSelf.provisioning)",
        message:
          "spec.provisioning is immutable while the host is claimed: release the host (remove consumerRef and provisioning) to change it",
        fieldPath: ".provisioning",
      },
    ),
  },
);

const HealthValues = ["OK", "Warning", "Critical", "Unknown"] as const;

export const HardwareDetailsSchema = Type.Object(
  {
    manufacturer: Type.Optional(
      Type.String({ description: "system manufacturer, e.g. Dell Inc.", maxLength: 256 }),
    ),
    model: Type.Optional(Type.String({ description: "system model.", maxLength: 256 })),
    serialNumber: Type.Optional(
      Type.String({ description: "system serial number.", maxLength: 256 }),
    ),
    systemUUID: Type.Optional(
      Type.String({ description: "SMBIOS system UUID, as Redfish reports it.", maxLength: 64 }),
    ),
    biosVersion: Type.Optional(
      Type.String({ description: "BIOS/UEFI firmware version.", maxLength: 256 }),
    ),
    bmcFirmwareVersion: Type.Optional(
      Type.String({
        description: "firmware version of the BMC (Redfish Manager).",
        maxLength: 256,
      }),
    ),
    health: Type.Optional(
      StringEnum(HealthValues, {
        description: "rolled-up health of the system: OK, Warning, Critical or Unknown.",
      }),
    ),
    cpu: Type.Optional(
      Type.Object(
        {
          count: Type.Optional(
            Type.Integer({ description: "number of CPU sockets populated.", minimum: 0 }),
          ),
          cores: Type.Optional(
            Type.Integer({ description: "total physical cores over all CPUs.", minimum: 0 }),
          ),
          threads: Type.Optional(
            Type.Integer({ description: "total hardware threads over all CPUs.", minimum: 0 }),
          ),
          model: Type.Optional(Type.String({ description: "CPU model name.", maxLength: 256 })),
        },
        { description: "processor summary." },
      ),
    ),
    memoryGiB: Type.Optional(
      Type.Integer({ description: "total system memory in GiB.", minimum: 0 }),
    ),
    disks: Type.Optional(
      List(
        Type.Object(
          {
            name: Type.String({ description: "drive name or Id.", maxLength: 256 }),
            sizeBytes: Type.Optional(
              Type.Integer({ description: "capacity in bytes.", minimum: 0, format: "int64" }),
            ),
            mediaType: Type.Optional(
              StringEnum(["HDD", "SSD", "NVMe", "Unknown"] as const, {
                description: "drive media: HDD, SSD, NVMe or Unknown.",
              }),
            ),
          },
          { description: "one drive." },
        ),
        { description: "drives of the system.", maxItems: 128 },
      ),
    ),
    nics: Type.Optional(
      List(
        Type.Object(
          {
            name: Type.String({ description: "interface name or Id.", maxLength: 256 }),
            macAddress: Type.Optional(
              Type.String({
                description: "MAC address, colon separated.",
                maxLength: 64,
                pattern: "^([0-9A-Fa-f]{2}[:-]){5,19}[0-9A-Fa-f]{2}$",
              }),
            ),
            linkStatus: Type.Optional(
              StringEnum(["Up", "Down", "Unknown"] as const, {
                description: "link state: Up, Down or Unknown.",
              }),
            ),
            speedMbps: Type.Optional(
              Type.Integer({ description: "negotiated link speed in Mbit/s.", minimum: 0 }),
            ),
          },
          { description: "one network interface." },
        ),
        { description: "network interfaces of the system.", maxItems: 64 },
      ),
    ),
    bootCapabilities: Type.Optional(
      Type.Object(
        {
          virtualMedia: Type.Optional(
            List(StringEnum(["CD", "USB"] as const, { description: "a virtual media kind." }), {
              description:
                "virtual media kinds the BMC can insert: CD (ISO images) and USB (removable disks); empty when it has none.",
              maxItems: 2,
            }),
          ),
          bootTargets: Type.Optional(
            List(
              Type.String({ description: "a Redfish boot source override target.", maxLength: 64 }),
              {
                description:
                  "one-time boot targets the BMC allows (Redfish BootSourceOverrideTarget AllowableValues), e.g. Pxe, Cd, UefiHttp; empty when it does not say.",
                maxItems: 32,
              },
            ),
          ),
          httpBootURI: Type.Optional(
            Type.Boolean({
              description: "whether the BMC takes a UEFI HTTP boot URI (Boot.HttpBootUri).",
            }),
          ),
          virtualMediaSlots: Type.Optional(
            Type.Integer({
              description:
                "how many virtual media slots can be loaded with a CD or a USB stick: with two or more, a configuration volume can go beside the boot ISO.",
              minimum: 0,
              maximum: 64,
            }),
          ),
        },
        {
          description:
            "what the BMC offers for booting the host: a machine is only given a host that can boot its provisioning mode.",
        },
      ),
    ),
  },
  {
    description:
      "hardware inventory read from Redfish and, in network modes, the inspection image.",
  },
);

export const HostProvisioningStatusSchema = Type.Object(
  {
    consumerUID: Type.Optional(
      Type.String({
        description:
          "UID (or name when no UID was given) of the consumer whose request this progress belongs to; progress for another consumer is discarded.",
        maxLength: 253,
      }),
    ),
    currentStep: Type.Optional(
      StringEnum(Object.values(ProvisioningStep), {
        description: `step being executed now. Steps in order: ${Object.values(ProvisioningStep).join(", ")} (those not needed by the mode are skipped).`,
      }),
    ),
    completedSteps: Type.Optional(
      List(
        Type.Object(
          {
            step: StringEnum(Object.values(ProvisioningStep), {
              description: "the completed step.",
            }),
            completedTime: Type.String({
              description: "when it completed.",
              format: "date-time",
            }),
          },
          { description: "a completed provisioning step." },
        ),
        {
          description:
            "steps already done for this request, in order; a restarted operator resumes after the last one.",
          maxItems: 16,
        },
      ),
    ),
    startedTime: Type.Optional(
      Type.String({ description: "when execution of the request started.", format: "date-time" }),
    ),
    attempts: Type.Optional(
      Type.Integer({
        description: "how many times the current step has been tried (drives backoff).",
        minimum: 0,
      }),
    ),
  },
  { description: "progress of executing spec.provisioning." },
);

const Timestamp = (description: string) => Type.String({ description, format: "date-time" });

export const InspectionReportSchema = Type.Object(
  {
    cpu: Type.Optional(
      Type.Object(
        {
          count: Type.Optional(Type.Integer({ description: "CPU sockets.", minimum: 0 })),
          cores: Type.Optional(Type.Integer({ description: "physical cores.", minimum: 0 })),
          model: Type.Optional(Type.String({ description: "CPU model.", maxLength: 256 })),
        },
        { description: "processors as the inspection image saw them." },
      ),
    ),
    memoryMiB: Type.Optional(
      Type.Integer({ description: "system memory in MiB.", minimum: 0, format: "int64" }),
    ),
    disks: Type.Optional(
      List(
        Type.Object(
          {
            name: Type.String({ description: "block device name.", maxLength: 256 }),
            sizeBytes: Type.Optional(
              Type.Integer({ description: "capacity in bytes.", minimum: 0, format: "int64" }),
            ),
            type: Type.Optional(
              StringEnum(["HDD", "SSD", "NVMe", "Unknown"] as const, {
                description: "drive media: HDD, SSD, NVMe or Unknown.",
              }),
            ),
          },
          { description: "one disk." },
        ),
        { description: "disks.", maxItems: 128 },
      ),
    ),
    nics: Type.Optional(
      List(
        Type.Object(
          {
            mac: Type.String({
              description: "MAC address.",
              maxLength: 64,
              pattern: "^([0-9A-Fa-f]{2}[:-]){5,19}[0-9A-Fa-f]{2}$",
            }),
            name: Type.Optional(Type.String({ description: "interface name.", maxLength: 256 })),
          },
          { description: "one network interface." },
        ),
        { description: "network interfaces.", maxItems: 64 },
      ),
    ),
    systemUUID: Type.Optional(
      Type.String({ description: "SMBIOS system UUID as the OS reads it.", maxLength: 64 }),
    ),
  },
  {
    description:
      "the inspection report the boot service accepted (size-limited, schema-checked); the host controller folds it into hardwareDetails.",
  },
);

export const BootStatusSchema = Type.Object(
  {
    session: Type.String({
      description:
        "random id of this provisioning's boot session (hex). Every token the boot service accepts for this host is derived from it; removing status.boot on release revokes them all.",
      minLength: 16,
      maxLength: 64,
      pattern: "^[0-9a-f]+$",
    }),
    issuedTime: Timestamp("when the session was started."),
    delivery: StringEnum(Object.values(BootDelivery), {
      description:
        "how the configuration and bootstrap data reach the OS: PreBakedISO (the ISO unchanged), PatchedISO (the ISO streamed through the boot service with the host's kernel arguments), ConfigVolume (the ISO unchanged plus a per-host configuration volume on a second slot), NetworkBoot (PXE/UEFI HTTP boot chaining to the boot service's iPXE script).",
    }),
    reason: Type.String({
      description: "why this path for this host: what the OS reads and what the BMC offers.",
      maxLength: 1024,
    }),
    kernelArgs: Type.Optional(
      List(Type.String({ description: "one kernel argument.", maxLength: 2048 }), {
        description:
          "the kernel arguments the boot service gives the OS, any token replaced by <token>.",
        maxItems: 64,
      }),
    ),
    configFetchedTime: Type.Optional(
      Timestamp(
        "when the OS fetched its configuration from the boot service (written by the boot service).",
      ),
    ),
    reportedTime: Type.Optional(
      Timestamp("when the inspection report was accepted (written by the boot service)."),
    ),
    report: Type.Optional(InspectionReportSchema),
  },
  {
    description:
      "the boot session of the current provisioning: the delivery path and the signals the boot service records. Removed when the host is released.",
  },
);

const stateList = Object.entries(HostStates)
  .map(([state, facts]) => `${state}: ${facts.description}.`)
  .join(" ");

export const PhysicalHostStatusSchema = Type.Object(
  {
    state: Type.Optional(
      StringEnum(Object.values(HostState), { description: `lifecycle state. ${stateList}` }),
    ),
    ready: Type.Optional(
      Type.Boolean({
        description: "true when the BMC is reachable, credentials work and the inventory is read.",
      }),
    ),
    observedPowerState: Type.Optional(
      StringEnum(Object.values(PowerState), {
        description:
          "power state last read from the BMC: On, Off, PoweringOn, PoweringOff or Unknown.",
      }),
    ),
    hardwareDetails: Type.Optional(HardwareDetailsSchema),
    addresses: Type.Optional(MachineAddresses),
    errorReason: Type.Optional(
      StringEnum(Object.values(HostErrorReason), {
        description: `class of the last error, empty when healthy: ${Object.values(HostErrorReason).join(", ")}.`,
      }),
    ),
    errorMessage: Type.Optional(
      Type.String({
        description: "details of the last error, empty when healthy.",
        maxLength: 4096,
      }),
    ),
    errorCount: Type.Optional(
      Type.Integer({
        description: "consecutive failed attempts; reset on success; drives the retry backoff.",
        minimum: 0,
      }),
    ),
    observedGeneration: Type.Optional(ObservedGeneration),
    lastInventoryTime: Type.Optional(
      Type.String({ description: "when hardwareDetails was last refreshed.", format: "date-time" }),
    ),
    provisioning: Type.Optional(HostProvisioningStatusSchema),
    boot: Type.Optional(BootStatusSchema),
    conditions: Type.Optional(Conditions),
  },
  { description: "observed state of the PhysicalHost, written by the host controller only." },
);
