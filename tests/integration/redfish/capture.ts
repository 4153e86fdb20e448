// What a capture states about its machine, read straight from the mockup files (not through the
// driver), so integration tests compare the driver's answers with the recorded truth.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

import {
  dig,
  type Json,
  type JsonObject,
  MockupStore,
  odataId,
  stringArray,
} from "../../../lab/bmc/mockup-store";

export interface CaptureFacts {
  folder: string;
  systemUri: string;
  manufacturer?: string;
  model?: string;
  serialNumber?: string;
  cpuCount: number;
  /** Models of the CPU-type members of the Processors collection. */
  cpuModels: string[];
  cpuCores: number;
  cpuThreads: number;
  memoryGiB: number;
  /** MACs of the system's EthernetInterfaces, lower-case. */
  systemMacs: string[];
  /** Every MAC-looking string anywhere in the capture, lower-case (the driver may find more NICs). */
  allMacs: Set<string>;
  bootTargets: string[];
  hasHttpBootUri: boolean;
  /** Virtual-media slots the system can use, with their media types and captured state. */
  slots: { uri: string; mediaTypes: string[]; inserted: boolean }[];
  /** Present drives of the system's Storage (else SimpleStorage devices), in capture order. */
  disks: { id: string; sizeBytes?: number }[];
}

const macPattern = /\b[0-9a-f]{2}(?::[0-9a-f]{2}){5}\b/gi;

function collectMacs(dir: string, into: Set<string>): void {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) collectMacs(path, into);
    else if (name === "index.json") {
      for (const mac of readFileSync(path, "utf8").match(macPattern) ?? [])
        into.add(mac.toLowerCase());
    }
  }
}

function members(store: MockupStore, uri: string | undefined): string[] {
  const list = uri ? dig(store.json(uri), "Members") : undefined;
  return Array.isArray(list) ? list.map(m => odataId(m)).filter((m): m is string => !!m) : [];
}

export function normaliseMac(mac: string): string {
  return mac.toLowerCase().replace(/-/g, ":");
}

export function captureFacts(folder: string): CaptureFacts {
  const store = MockupStore.for(folder);
  const systemUri = members(store, "/redfish/v1/Systems")[0];
  if (!systemUri) throw new Error(`${folder}: no system`);
  const system = store.json(systemUri) ?? {};
  const str = (value: Json | undefined) => (typeof value === "string" ? value : undefined);

  const cpus = members(store, odataId(system.Processors))
    .map(uri => store.json(uri))
    .filter(
      (p): p is JsonObject => !!p && (p.ProcessorType === undefined || p.ProcessorType === "CPU"),
    );
  const cpuModels = cpus.map(p => str(p.Model)?.trim()).filter((m): m is string => !!m);
  const sum = (key: string) =>
    cpus.reduce((n, p) => n + (typeof p[key] === "number" ? p[key] : 0), 0);
  const summaryNumber = (key: string) => {
    const value = dig(system, "ProcessorSummary", key);
    return typeof value === "number" ? value : undefined;
  };

  const systemMacs = members(store, odataId(system.EthernetInterfaces))
    .map(
      uri =>
        str(dig(store.json(uri), "MACAddress")) ?? str(dig(store.json(uri), "PermanentMACAddress")),
    )
    .filter((m): m is string => !!m && m !== "00:00:00:00:00:00")
    .map(normaliseMac);

  const allMacs = new Set<string>();
  collectMacs(join(store.dir, "redfish"), allMacs);

  const ownSlots = members(store, odataId(system.VirtualMedia));
  const managerSlots = members(store, "/redfish/v1/Managers").flatMap(m =>
    members(store, odataId(dig(store.json(m), "VirtualMedia"))),
  );
  const slotUris = ownSlots.length > 0 ? ownSlots : managerSlots;
  const slots = slotUris.map(uri => {
    const body = store.json(uri) ?? {};
    return {
      uri,
      mediaTypes: stringArray(body.MediaTypes) ?? [],
      inserted: body.Inserted === true,
    };
  });

  const present = (body: Json | undefined) => dig(body, "Status", "State") !== "Absent";
  const size = (body: Json | undefined) => {
    const value = dig(body, "CapacityBytes");
    return typeof value === "number" ? value : undefined;
  };
  let disks = members(store, odataId(system.Storage)).flatMap(storage => {
    const links = dig(store.json(storage), "Drives");
    return (Array.isArray(links) ? links : []).flatMap(link => {
      const drive = store.json(odataId(link) ?? "");
      return drive && present(drive) ? [{ id: str(drive.Id) ?? "", sizeBytes: size(drive) }] : [];
    });
  });
  if (disks.length === 0) {
    disks = members(store, odataId(system.SimpleStorage)).flatMap(controller => {
      const devices = dig(store.json(controller), "Devices");
      return (Array.isArray(devices) ? devices : []).flatMap(device =>
        present(device) ? [{ id: str(dig(device, "Name")) ?? "", sizeBytes: size(device) }] : [],
      );
    });
  }

  const boot = dig(system, "Boot");
  return {
    folder,
    systemUri,
    manufacturer: str(system.Manufacturer),
    model: str(system.Model),
    serialNumber: str(system.SerialNumber),
    cpuCount: Number(dig(system, "ProcessorSummary", "Count") ?? cpuModels.length),
    cpuModels,
    cpuCores: summaryNumber("CoreCount") ?? sum("TotalCores"),
    cpuThreads: summaryNumber("LogicalProcessorCount") ?? sum("TotalThreads"),
    memoryGiB: Number(dig(system, "MemorySummary", "TotalSystemMemoryGiB") ?? 0),
    systemMacs,
    allMacs,
    bootTargets: stringArray(dig(boot, "BootSourceOverrideTarget@Redfish.AllowableValues")) ?? [],
    hasHttpBootUri: typeof boot === "object" && boot !== null && "HttpBootUri" in boot,
    slots,
    disks,
  };
}

/** Whether the capture offers a slot for a CD and a different one for a USB stick. */
export function hasSecondRemovableSlot(facts: CaptureFacts): boolean {
  const cd = facts.slots.filter(s => s.mediaTypes.some(t => t === "CD" || t === "DVD"));
  const usb = facts.slots.filter(s => s.mediaTypes.includes("USBStick"));
  return cd.length > 0 && usb.length > 0 && new Set([...cd, ...usb].map(s => s.uri)).size >= 2;
}
