// Typed views of the Redfish resources provisioning needs (DSP0266 / DSP8010 schemas), limited to
// the properties the driver reads or writes. Every property is optional and every interface keeps
// an index signature: BMCs omit, rename and extend freely, so readers still check values at
// runtime (resources/common.ts helpers) rather than trusting these types.

export interface Link {
  "@odata.id": string;
}

export interface Status {
  State?: string;
  Health?: string | null;
  HealthRollup?: string | null;
}

interface Resource {
  "@odata.id"?: string;
  "@odata.type"?: string;
  "@odata.etag"?: string;
  Id?: string;
  Name?: string;
  Status?: Status;
  Oem?: Record<string, unknown>;
  [property: string]: unknown;
}

export interface Collection<Member = Link> extends Resource {
  Members?: Member[];
  "Members@odata.count"?: number;
}

export interface Action {
  target?: string;
  "@Redfish.ActionInfo"?: string;
  [parameterAllowableValues: string]: unknown;
}

export interface ActionInfo extends Resource {
  Parameters?: {
    Name?: string;
    Required?: boolean;
    DataType?: string;
    AllowableValues?: string[];
  }[];
}

export interface SettingsAnnotation {
  SettingsObject?: Link;
  SupportedApplyTimes?: string[];
}

export interface ServiceRoot extends Resource {
  RedfishVersion?: string;
  Vendor?: string;
  Product?: string;
  UUID?: string;
  Systems?: Link;
  Chassis?: Link;
  Managers?: Link;
  Tasks?: Link;
  SessionService?: Link;
  Links?: { Sessions?: Link };
  ProtocolFeaturesSupported?: {
    ExpandQuery?: {
      ExpandAll?: boolean;
      Levels?: boolean;
      Links?: boolean;
      NoLinks?: boolean;
      MaxLevels?: number;
    };
  };
}

export interface BootProperties {
  BootSourceOverrideEnabled?: string;
  BootSourceOverrideTarget?: string;
  BootSourceOverrideMode?: string;
  HttpBootUri?: string | null;
  UefiTargetBootSourceOverride?: string | null;
  "BootSourceOverrideTarget@Redfish.AllowableValues"?: string[];
  "BootSourceOverrideEnabled@Redfish.AllowableValues"?: string[];
  "BootSourceOverrideMode@Redfish.AllowableValues"?: string[];
  [property: string]: unknown;
}

export interface ComputerSystem extends Resource {
  Manufacturer?: string;
  Model?: string;
  SerialNumber?: string;
  SKU?: string;
  UUID?: string;
  BiosVersion?: string;
  PowerState?: string;
  Boot?: BootProperties;
  ProcessorSummary?: {
    Count?: number;
    CoreCount?: number;
    LogicalProcessorCount?: number;
    Model?: string;
  };
  MemorySummary?: { TotalSystemMemoryGiB?: number };
  Processors?: Link;
  Memory?: Link;
  EthernetInterfaces?: Link;
  Storage?: Link;
  SimpleStorage?: Link;
  VirtualMedia?: Link;
  Bios?: Link;
  Links?: { ManagedBy?: Link[]; Chassis?: Link[] };
  Actions?: { "#ComputerSystem.Reset"?: Action; [action: string]: unknown };
  "@Redfish.Settings"?: SettingsAnnotation;
}

export interface Manager extends Resource {
  FirmwareVersion?: string;
  Model?: string;
  ManagerType?: string;
  VirtualMedia?: Link;
}

export interface Chassis extends Resource {
  Manufacturer?: string;
  Model?: string;
  SerialNumber?: string;
  ChassisType?: string;
}

export interface Processor extends Resource {
  ProcessorType?: string;
  Manufacturer?: string;
  Model?: string;
  TotalCores?: number;
  TotalThreads?: number;
  MaxSpeedMHz?: number;
}

export interface Memory extends Resource {
  CapacityMiB?: number;
  MemoryDeviceType?: string;
}

export interface EthernetInterface extends Resource {
  MACAddress?: string;
  PermanentMACAddress?: string;
  LinkStatus?: string;
  SpeedMbps?: number;
  InterfaceEnabled?: boolean;
}

export interface Storage extends Resource {
  Drives?: (Link | Drive)[];
}

export interface Drive extends Resource {
  Model?: string;
  SerialNumber?: string;
  CapacityBytes?: number;
  MediaType?: string;
  Protocol?: string;
}

export interface SimpleStorage extends Resource {
  Devices?: { Name?: string; Model?: string; CapacityBytes?: number; Status?: Status }[];
}

export interface VirtualMedia extends Resource {
  MediaTypes?: string[];
  Image?: string | null;
  ImageName?: string | null;
  Inserted?: boolean | null;
  WriteProtected?: boolean | null;
  ConnectedVia?: string;
  TransferProtocolType?: string | null;
  TransferMethod?: string | null;
  Actions?: {
    "#VirtualMedia.InsertMedia"?: Action;
    "#VirtualMedia.EjectMedia"?: Action;
    [action: string]: unknown;
  };
}

export interface Bios extends Resource {
  Attributes?: Record<string, unknown>;
  "@Redfish.Settings"?: SettingsAnnotation;
}

export interface Session extends Resource {
  UserName?: string;
}

export interface Task extends Resource {
  TaskState?: string;
  TaskStatus?: string;
  TaskMonitor?: string;
  Messages?: { MessageId?: string; Message?: string }[];
}
