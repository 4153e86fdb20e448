// An in-memory BMC for the PhysicalHost controller's unit tests. It implements the narrow HostBmc
// port the controller uses, keeps just enough state (power, two virtual media slots, the boot
// override) for the controller's checks-before-actions to be meaningful, counts every call, and
// can be told to fail with the driver's real error classes, which it translates as the real port
// does (into BmcFailure).
import type { PowerStateName } from "../../../capabilities/api";
import {
  toBmcFailure,
  toHostInventory,
  type BmcConnection,
  type BmcConnector,
  type BootOverride,
  type BootOverrideRequest,
  type HostBmc,
  type HostInventory,
  type MediaSlot,
} from "../../../capabilities/physical-host/bmc";
import type { HostInventory as RedfishInventory } from "../../../redfish";

export type BmcMethod = keyof HostBmc;

/** Methods that change something on the BMC (as opposed to reading it). */
export const ACTIONS: readonly BmcMethod[] = [
  "powerOn",
  "powerOff",
  "restart",
  "insertMedia",
  "ejectMedia",
  "setBootOverride",
  "clearBootOverride",
];

const ALL_METHODS: readonly BmcMethod[] = [
  "inventory",
  "powerState",
  "powerOn",
  "powerOff",
  "restart",
  "virtualMedia",
  "insertMedia",
  "ejectMedia",
  "bootOverride",
  "setBootOverride",
  "clearBootOverride",
];

export interface BmcCall {
  method: BmcMethod;
  args: unknown[];
  /** A call that found the BMC already as asked (power, an inserted image): nothing was sent. */
  noop?: boolean;
}

/** A plausible two-socket server as the driver reports it. */
export function sampleRedfishInventory(): RedfishInventory {
  return {
    vendor: "Generic",
    systemId: "1",
    manufacturer: "Contoso",
    model: "R3500",
    serialNumber: "SN-0001",
    uuid: "4c4c4544-0033-3510-8052-b4c04f4e4a32",
    biosVersion: "2.19.1",
    bmcFirmwareVersion: "7.10.30",
    health: "OK",
    powerState: "Off",
    processors: {
      count: 2,
      cores: 32,
      threads: 64,
      items: [{ id: "CPU1" }, { id: "CPU2", model: "Xeon Gold 6338" }],
    },
    memory: { totalGiB: 255.8 },
    disks: [
      { id: "Disk.0", name: "Boot SSD", sizeBytes: 480_000_000_000, mediaType: "SSD" },
      { id: "Disk.1", sizeBytes: 3_840_000_000_000, protocol: "NVMe", mediaType: "SSD" },
      { id: "Disk.2", mediaType: "SMR" },
      { id: "Disk.3" },
    ],
    nics: [
      {
        id: "NIC.1",
        macAddress: "AA:BB:CC:DD:EE:01",
        linkStatus: "LinkUp",
        speedMbps: 25_000,
        ipAddresses: ["10.0.0.21", "10.0.0.21"],
      },
      { id: "NIC.2", macAddress: "not-a-mac", linkStatus: "NoLink" },
    ],
    hostName: "node-21",
    bootTargets: ["Pxe", "Cd", "Hdd"],
    httpBootUri: false,
    warnings: [],
  };
}

/** The same server as the controller sees it, through the port's translation. */
export function sampleInventory(): HostInventory {
  return toHostInventory(sampleRedfishInventory());
}

type MediaKind = "cd" | "usb";

const clone = <T>(value: T): T => structuredClone(value);

export class FakeBmc implements HostBmc {
  power: PowerStateName = "Off";
  /** A CD slot and a USB slot. */
  slots: MediaSlot[] = [
    { id: "CD1", inserted: false },
    { id: "USB1", inserted: false },
  ];
  override: BootOverride = { enabled: "Disabled", target: "None", mode: "UEFI" };
  inventoryData: HostInventory = sampleInventory();

  /** Calls per method, failed ones included. */
  readonly calls = Object.fromEntries(ALL_METHODS.map(m => [m, 0])) as Record<BmcMethod, number>;
  readonly log: BmcCall[] = [];
  private readonly failures = new Map<BmcMethod | "*", Error>();

  constructor(init: { power?: PowerStateName } = {}) {
    if (init.power) this.power = init.power;
  }

  /** Every call (to the given methods, or to any) throws err until heal(). */
  fail(err: Error, ...methods: BmcMethod[]): this {
    for (const m of methods.length ? methods : (["*"] as const)) this.failures.set(m, err);
    return this;
  }

  heal(): this {
    this.failures.clear();
    return this;
  }

  /** The state-changing calls made, in order, e.g. ["powerOff", "insertMedia"]; a call that
   *  found the BMC as asked (power, an inserted image) sent nothing and is not one. */
  actions(): BmcMethod[] {
    return this.log.filter(c => ACTIONS.includes(c.method) && !c.noop).map(c => c.method);
  }

  argsOf(method: BmcMethod): unknown[][] {
    return this.log.filter(c => c.method === method).map(c => c.args);
  }

  resetCounters(): void {
    for (const m of ALL_METHODS) this.calls[m] = 0;
    this.log.length = 0;
  }

  /** Inserts an image directly (as if someone had used the BMC's web UI). */
  preload(image: string, kind: MediaKind = "cd"): void {
    const s = this.slotFor(kind);
    s.inserted = true;
    s.image = image;
  }

  /** A connector handing out this BMC, counting connects and releases (and whether each said
   *  the host's next run comes soon). */
  connector(): {
    connect: BmcConnector;
    connects: () => number;
    releases: () => number;
    soon: () => boolean[];
  } {
    let connects = 0;
    const soon: boolean[] = [];
    const connect: BmcConnector = async host => {
      connects++;
      const connection: BmcConnection = {
        bmc: this,
        address: host.spec?.redfishConnection?.address ?? "",
        release: options => {
          soon.push(options?.soon ?? false);
        },
      };
      return connection;
    };
    return { connect, connects: () => connects, releases: () => soon.length, soon: () => soon };
  }

  private enter(method: BmcMethod, args: unknown[]): void {
    this.calls[method]++;
    this.log.push({ method, args: clone(args) });
    const err = this.failures.get(method) ?? this.failures.get("*");
    if (err) throw toBmcFailure(err);
  }

  private lastCallSentNothing(): void {
    this.log[this.log.length - 1]!.noop = true;
  }

  private slotFor(kind: MediaKind): MediaSlot {
    return kind === "usb" ? this.slots[1]! : this.slots[0]!;
  }

  async inventory(): Promise<HostInventory> {
    this.enter("inventory", []);
    return { ...clone(this.inventoryData), powerState: this.power };
  }

  async powerState(): Promise<PowerStateName> {
    this.enter("powerState", []);
    return this.power;
  }

  async powerOn(): Promise<boolean> {
    this.enter("powerOn", []);
    const sent = this.power !== "On";
    if (!sent) this.lastCallSentNothing();
    this.power = "On";
    return sent;
  }

  async powerOff(options?: { force?: boolean; gracefulTimeoutMs?: number }): Promise<boolean> {
    this.enter("powerOff", [options]);
    const sent = this.power !== "Off";
    if (!sent) this.lastCallSentNothing();
    this.power = "Off";
    return sent;
  }

  async restart(options?: { force?: boolean }): Promise<void> {
    this.enter("restart", [options]);
    this.power = "On";
  }

  async virtualMedia(): Promise<MediaSlot[]> {
    this.enter("virtualMedia", []);
    return clone(this.slots);
  }

  async insertMedia(request: {
    image: string;
    kind: MediaKind;
  }): Promise<{ slot: MediaSlot; alreadyInserted: boolean }> {
    this.enter("insertMedia", [request]);
    const already = this.slots.find(s => s.inserted && s.image === request.image);
    if (already) {
      this.lastCallSentNothing();
      return { slot: clone(already), alreadyInserted: true };
    }
    const s = this.slotFor(request.kind);
    s.inserted = true;
    s.image = request.image;
    return { slot: clone(s), alreadyInserted: false };
  }

  async ejectMedia(): Promise<void> {
    this.enter("ejectMedia", []);
    for (const s of this.slots) {
      s.inserted = false;
      delete s.image;
    }
  }

  async bootOverride(): Promise<BootOverride> {
    this.enter("bootOverride", []);
    return clone(this.override);
  }

  async setBootOverride(
    request: BootOverrideRequest,
  ): Promise<{ targetSent: string; state: BootOverride }> {
    this.enter("setBootOverride", [request]);
    this.override = {
      enabled: request.persistent ? "Continuous" : "Once",
      target: request.target,
      mode: request.mode ?? this.override.mode,
    };
    return { targetSent: request.target, state: clone(this.override) };
  }

  async clearBootOverride(): Promise<void> {
    this.enter("clearBootOverride", []);
    this.override = { ...this.override, enabled: "Disabled", target: "None" };
  }
}
