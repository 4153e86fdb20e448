// The parts of a capture the test BMC acts on: systems (reset types, settings objects, BIOS),
// virtual-media slots and action targets. Computed once per mockup folder and shared, like the
// capture itself.
import {
  dig,
  isObject,
  type Json,
  type JsonObject,
  type MockupStore,
  normalisePath,
  odataId,
  stringArray,
} from "./mockup-store";

export interface SystemInfo {
  uri: string;
  resetTarget?: string;
  resetTypes: string[];
  /** ComputerSystem @Redfish.Settings object (Lenovo Pending, BlueField Settings). */
  settingsUri?: string;
  chassis: string[];
  biosUri?: string;
  biosSettingsUri?: string;
  biosApplyTimes?: string[];
  /** Virtual-media slots reachable from the system (its own collection or the manager's). */
  slots: string[];
}

export interface SlotInfo {
  uri: string;
  mediaTypes: string[];
  insertTarget?: string;
  ejectTarget?: string;
  /** Eject target the capture did not advertise (Supermicro shows it only while inserted). */
  syntheticEject: boolean;
  insertActionInfo?: string;
}

export interface ManagerInfo {
  uri: string;
  resetTarget?: string;
  resetTypes: string[];
}

export type ActionKind =
  | "system-reset"
  | "manager-reset"
  | "insert"
  | "eject"
  | "oem-insert"
  | "oem-eject"
  | "simple-update";

export interface Topology {
  systems: Map<string, SystemInfo>;
  managers: Map<string, ManagerInfo>;
  slots: Map<string, SlotInfo>;
  /** Action target URI → what it does and to which resource. */
  actions: Map<string, { kind: ActionKind; owner: string }>;
  sessionsUri: string;
  /** Settings object URI → the system or BIOS resource it stages changes for. */
  systemSettings: Map<string, string>;
  biosSettings: Map<string, { system: string; bios: string }>;
}

const cache = new WeakMap<MockupStore, Topology>();

function members(store: MockupStore, uri: string | undefined): string[] {
  if (!uri) return [];
  const list = dig(store.json(uri), "Members");
  if (!Array.isArray(list)) return [];
  return list.map(m => odataId(m)).filter((id): id is string => id !== undefined);
}

function allowedFromActionInfo(
  store: MockupStore,
  action: Json | undefined,
  parameter: string,
): string[] | undefined {
  const direct = stringArray(dig(action, `${parameter}@Redfish.AllowableValues`));
  if (direct) return direct;
  const infoUri = dig(action, "@Redfish.ActionInfo");
  if (typeof infoUri !== "string") return undefined;
  const params = dig(store.json(infoUri), "Parameters");
  if (!Array.isArray(params)) return undefined;
  const param = params.find(p => dig(p, "Name") === parameter);
  return stringArray(dig(param, "AllowableValues"));
}

const allResetTypes = [
  "On",
  "ForceOff",
  "GracefulShutdown",
  "GracefulRestart",
  "ForceRestart",
  "Nmi",
  "ForceOn",
  "PushPowerButton",
  "PowerCycle",
];

function target(action: Json | undefined): string | undefined {
  const t = dig(action, "target");
  return typeof t === "string" ? normalisePath(t) : undefined;
}

export function topologyOf(store: MockupStore): Topology {
  const hit = cache.get(store);
  if (hit) return hit;
  const root = store.json("/redfish/v1") ?? {};
  const topology: Topology = {
    systems: new Map(),
    managers: new Map(),
    slots: new Map(),
    actions: new Map(),
    sessionsUri:
      odataId(dig(root, "Links", "Sessions")) ??
      normalisePath(
        (odataId(dig(root, "SessionService")) ?? "/redfish/v1/SessionService") + "/Sessions",
      ),
    systemSettings: new Map(),
    biosSettings: new Map(),
  };

  const addSlot = (uri: string) => {
    if (topology.slots.has(uri)) return;
    const body = store.json(uri);
    if (!body) return;
    const insert = dig(body, "Actions", "#VirtualMedia.InsertMedia");
    const eject = dig(body, "Actions", "#VirtualMedia.EjectMedia");
    const info: SlotInfo = {
      uri,
      mediaTypes: stringArray(dig(body, "MediaTypes")) ?? [],
      insertTarget: target(insert),
      ejectTarget: target(eject),
      syntheticEject: false,
      insertActionInfo:
        typeof dig(insert, "@Redfish.ActionInfo") === "string"
          ? normalisePath(dig(insert, "@Redfish.ActionInfo") as string)
          : undefined,
    };
    if (info.insertTarget && !info.ejectTarget) {
      info.ejectTarget = `${uri}/Actions/VirtualMedia.EjectMedia`;
      info.syntheticEject = true;
    }
    topology.slots.set(uri, info);
    if (info.insertTarget) topology.actions.set(info.insertTarget, { kind: "insert", owner: uri });
    if (info.ejectTarget) topology.actions.set(info.ejectTarget, { kind: "eject", owner: uri });
    const oem = dig(body, "Oem", "Hpe", "Actions");
    const oemInsert = target(dig(oem, "#HpeiLOVirtualMedia.InsertVirtualMedia"));
    const oemEject = target(dig(oem, "#HpeiLOVirtualMedia.EjectVirtualMedia"));
    if (oemInsert) topology.actions.set(oemInsert, { kind: "oem-insert", owner: uri });
    if (oemEject) topology.actions.set(oemEject, { kind: "oem-eject", owner: uri });
  };

  for (const managerUri of members(store, odataId(dig(root, "Managers")))) {
    const body = store.json(managerUri);
    const reset = dig(body, "Actions", "#Manager.Reset");
    topology.managers.set(managerUri, {
      uri: managerUri,
      resetTarget: target(reset),
      resetTypes: allowedFromActionInfo(store, reset, "ResetType") ?? ["GracefulRestart"],
    });
    const t = target(reset);
    if (t) topology.actions.set(t, { kind: "manager-reset", owner: managerUri });
    for (const slot of members(store, odataId(dig(body, "VirtualMedia")))) addSlot(slot);
  }

  for (const systemUri of members(store, odataId(dig(root, "Systems")))) {
    const body = store.json(systemUri);
    if (!body) continue;
    const reset = dig(body, "Actions", "#ComputerSystem.Reset");
    const biosUri = odataId(dig(body, "Bios"));
    const bios = biosUri ? store.json(biosUri) : undefined;
    const biosSettingsUri = odataId(dig(bios, "@Redfish.Settings", "SettingsObject"));
    const settingsUri = odataId(dig(body, "@Redfish.Settings", "SettingsObject"));
    const chassis = dig(body, "Links", "Chassis");
    const slots = members(store, odataId(dig(body, "VirtualMedia")));
    slots.forEach(addSlot);
    const info: SystemInfo = {
      uri: systemUri,
      resetTarget: target(reset),
      resetTypes: allowedFromActionInfo(store, reset, "ResetType") ?? allResetTypes,
      settingsUri,
      chassis: Array.isArray(chassis)
        ? chassis.map(c => odataId(c)).filter((c): c is string => c !== undefined)
        : [],
      biosUri,
      biosSettingsUri,
      biosApplyTimes: stringArray(dig(bios, "@Redfish.Settings", "SupportedApplyTimes")),
      slots: [],
    };
    topology.systems.set(systemUri, info);
    if (info.resetTarget) {
      topology.actions.set(info.resetTarget, { kind: "system-reset", owner: systemUri });
    }
    if (settingsUri) topology.systemSettings.set(settingsUri, systemUri);
    if (biosUri && biosSettingsUri) {
      topology.biosSettings.set(biosSettingsUri, { system: systemUri, bios: biosUri });
    }
  }
  // Slots a system can use: its own collection, else every manager slot (HPE, Supermicro).
  const allSlots = [...topology.slots.keys()];
  for (const system of topology.systems.values()) {
    const own = members(store, odataId(dig(store.json(system.uri), "VirtualMedia")));
    system.slots = own.length > 0 ? own : allSlots;
  }

  const update = dig(store.json("/redfish/v1/UpdateService"), "Actions");
  const simpleUpdate = target(dig(update, "#UpdateService.SimpleUpdate"));
  if (simpleUpdate) {
    topology.actions.set(simpleUpdate, {
      kind: "simple-update",
      owner: "/redfish/v1/UpdateService",
    });
  }
  cache.set(store, topology);
  return topology;
}

export function isPlainObject(value: unknown): value is JsonObject {
  return isObject(value as Json);
}
