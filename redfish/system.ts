// A handle on one ComputerSystem of a BMC. Resolves the system once, caches its manager link and
// per-system facts (reset action, media collections), and delegates to operations/*.
import type { RedfishSystem } from "./api";
import type { RedfishClientImpl } from "./client";
import { readBios, setBiosAttributes } from "./operations/bios";
import { clearBootOverride, readBootOverride, setBootOverride } from "./operations/boot";
import type { SystemContext } from "./operations/context";
import { readInventory } from "./operations/inventory";
import { ejectMedia, insertMedia, listVirtualMedia, loadableMediaKinds } from "./operations/media";
import {
  allowedResetTypes,
  powerCycle,
  powerOff,
  powerOn,
  readPowerState,
  restart,
  sendReset,
} from "./operations/power";
import { linkPaths, stringOf } from "./resources/common";
import type { ComputerSystem, Manager } from "./resources/schema";
import type {
  BiosSettings,
  BmcVendor,
  BootOverrideRequest,
  BootOverrideResult,
  BootOverrideState,
  HostInventory,
  InsertMediaRequest,
  InsertMediaResult,
  MediaKind,
  PowerOffOptions,
  PowerState,
  ResetType,
  SetBiosResult,
  VirtualMediaSlot,
} from "./types";

export class RedfishSystemImpl implements RedfishSystem, SystemContext {
  private pathPromise?: Promise<string>;
  private managerPath?: string | null;
  private readonly memos = new Map<string, Promise<unknown>>();

  constructor(
    readonly client: RedfishClientImpl,
    readonly requestedId?: string,
  ) {}

  // ---- SystemContext ------------------------------------------------------------------------

  systemPath(): Promise<string> {
    this.pathPromise ??= this.client.resolveSystemPath(this.requestedId).catch(error => {
      this.pathPromise = undefined;
      throw error;
    });
    return this.pathPromise;
  }

  async systemBody(options: { listed?: boolean } = {}): Promise<ComputerSystem> {
    const path = await this.systemPath();
    const listed = options.listed
      ? (this.client.takeListedSystem(path) ?? (await this.client.takeSystemAhead(path)))
      : undefined;
    const body =
      (listed as ComputerSystem | undefined) ?? (await this.client.get<ComputerSystem>(path)).body;
    if (this.managerPath === undefined) {
      this.managerPath = linkPaths(body.Links?.ManagedBy)[0] ?? null;
    }
    this.client.noteManufacturer(stringOf(body.Manufacturer));
    return body;
  }

  async managerBody(): Promise<Manager | undefined> {
    if (this.managerPath === undefined) await this.systemBody();
    if (!this.managerPath) return undefined;
    return (await this.client.get<Manager>(this.managerPath)).body;
  }

  vendor(): Promise<BmcVendor> {
    return this.client.vendor();
  }

  memo<T>(key: string, compute: () => Promise<T>): Promise<T> {
    let value = this.memos.get(key) as Promise<T> | undefined;
    if (!value) {
      value = compute().catch(error => {
        this.memos.delete(key);
        throw error;
      });
      this.memos.set(key, value);
    }
    return value;
  }

  // ---- RedfishSystem ------------------------------------------------------------------------

  resolve(): Promise<string> {
    return this.systemPath();
  }

  async readAhead(): Promise<void> {
    // A system that cannot be resolved is the caller's to find out, when it calls for real.
    const path = await this.systemPath().catch(() => undefined);
    if (path) await this.client.readSystemAhead(path);
  }

  inventory(): Promise<HostInventory> {
    return readInventory(this);
  }

  powerState(): Promise<PowerState> {
    return readPowerState(this);
  }

  allowedResetTypes(): Promise<ResetType[]> {
    return allowedResetTypes(this);
  }

  reset(type: ResetType): Promise<void> {
    return sendReset(this, type);
  }

  powerOn(): Promise<boolean> {
    return powerOn(this);
  }

  powerOff(options?: PowerOffOptions): Promise<boolean> {
    return powerOff(this, options);
  }

  restart(options: { force?: boolean } = {}): Promise<void> {
    return restart(this, options.force ?? false);
  }

  powerCycle(): Promise<void> {
    return powerCycle(this);
  }

  bootOverride(): Promise<BootOverrideState> {
    return readBootOverride(this);
  }

  loadableMediaKinds(): Promise<MediaKind[]> {
    return loadableMediaKinds(this);
  }

  setBootOverride(request: BootOverrideRequest): Promise<BootOverrideResult> {
    return setBootOverride(this, request);
  }

  clearBootOverride(): Promise<BootOverrideState> {
    return clearBootOverride(this);
  }

  virtualMedia(): Promise<VirtualMediaSlot[]> {
    return listVirtualMedia(this);
  }

  insertMedia(request: InsertMediaRequest): Promise<InsertMediaResult> {
    return insertMedia(this, request);
  }

  ejectMedia(target?: { slot?: string; kind?: MediaKind }): Promise<VirtualMediaSlot[]> {
    return ejectMedia(this, target);
  }

  bios(): Promise<BiosSettings> {
    return readBios(this);
  }

  setBiosAttributes(
    attributes: Record<string, unknown>,
    options: { applyTime?: string } = {},
  ): Promise<SetBiosResult> {
    return setBiosAttributes(this, attributes, options);
  }
}
