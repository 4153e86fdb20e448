// Hardware inventory of one system. Cost without $expand: system + manager + one GET per
// collection and per member (processors only when the summary lacks core/thread counts); with
// $expand each collection is one GET, the system comes with the Systems collection, and Storage
// is read two levels deep where MaxLevels allows (controllers with their drives). See
// docs/redfish-driver.md for measured counts.
import type { Chassis, Drive, Storage } from "../resources/schema";
import {
  hasContent,
  linkPath,
  linkPaths,
  numberOf,
  stringOf,
  type ODataLink,
} from "../resources/common";
import { isRedfishError } from "../errors";
import { bootTargetCapabilities } from "./boot";
import { MEDIA_COLLECTIONS, mediaCollectionPaths } from "./media";
import { learnResetAction, toPowerState } from "./power";
import type { DiskInfo, Health, HostInventory, NicInfo, ProcessorInfo } from "../types";
import { type SystemContext, record } from "./context";

export async function readInventory(context: SystemContext): Promise<HostInventory> {
  // The first inventory after resolving the system may use the body the Systems collection brought.
  const system = await context.systemBody({ listed: true });
  context.client.noteManufacturer(stringOf(system.Manufacturer));
  const warnings: string[] = [];
  const root = await context.client.root();

  const [manager, processors, memoryGiB, nics, disks] = await Promise.all([
    context.managerBody().catch(error => {
      warnings.push(`manager: ${message(error)}`);
      return undefined;
    }),
    readProcessors(context, system, warnings),
    readMemory(context, system, warnings),
    readNics(context, system, warnings),
    readDisks(context, system, warnings),
    learnResetAction(context, system),
  ]);

  // Some BMCs leave identity on the chassis only; one extra GET, and only then.
  let chassis: Chassis | undefined;
  const chassisPath = linkPaths(system.Links?.Chassis)[0];
  if (chassisPath && (!stringOf(system.SerialNumber) || !stringOf(system.Manufacturer))) {
    chassis = await context.client
      .get<Chassis>(chassisPath)
      .then(response => response.body)
      .catch(error => {
        warnings.push(`chassis: ${message(error)}`);
        return undefined;
      });
  }

  const vendor = await context.vendor();
  // Seeded from the bodies in hand, so listing the virtual media slots later costs no second GET
  // of the system and its manager.
  void context.memo(MEDIA_COLLECTIONS, async () => mediaCollectionPaths(system, manager));

  return {
    vendor,
    systemId: stringOf(system.Id) ?? (await context.systemPath()).split("/").pop() ?? "",
    manufacturer: stringOf(system.Manufacturer) ?? stringOf(chassis?.Manufacturer),
    model: stringOf(system.Model) ?? stringOf(chassis?.Model),
    serialNumber: stringOf(system.SerialNumber) ?? stringOf(chassis?.SerialNumber),
    sku: stringOf(system.SKU),
    hostName: stringOf(system.HostName) || undefined,
    uuid: stringOf(system.UUID),
    biosVersion: stringOf(system.BiosVersion),
    bmcFirmwareVersion: stringOf(manager?.FirmwareVersion),
    bmcModel: stringOf(manager?.Model),
    redfishVersion: stringOf(root.RedfishVersion),
    health: healthOf(system.Status),
    powerState: toPowerState(system.PowerState),
    processors,
    memory: { totalGiB: memoryGiB },
    disks,
    nics,
    ...bootTargetCapabilities(record(system.Boot), vendor),
    warnings,
  };
}

function healthOf(status: unknown): Health {
  const value = record(status);
  const health = value?.HealthRollup ?? value?.Health;
  return health === "OK" || health === "Warning" || health === "Critical" ? health : "Unknown";
}

async function readProcessors(
  context: SystemContext,
  system: Record<string, unknown>,
  warnings: string[],
): Promise<HostInventory["processors"]> {
  const summary = record(system.ProcessorSummary);
  const summaryCount = numberOf(summary?.Count);
  const summaryCores = numberOf(summary?.CoreCount);
  const summaryThreads = numberOf(summary?.LogicalProcessorCount);
  // The summary is enough when it has all three numbers: saves 1 + N requests.
  if (summaryCount !== undefined && summaryCores !== undefined && summaryThreads !== undefined) {
    return { count: summaryCount, cores: summaryCores, threads: summaryThreads, items: [] };
  }
  const path = linkPath(system.Processors as ODataLink);
  if (!path) {
    return {
      count: summaryCount ?? 0,
      cores: summaryCores ?? 0,
      threads: summaryThreads ?? 0,
      items: [],
    };
  }
  const { members, warnings: memberWarnings } = await optionalCollection(context, path, warnings);
  warnings.push(...memberWarnings);
  const items: ProcessorInfo[] = members
    .filter(member => {
      const type = stringOf(member.ProcessorType);
      const state = stringOf(record(member.Status)?.State);
      return (type === undefined || type === "CPU") && state !== "Absent";
    })
    .map(member => ({
      id: stringOf(member.Id) ?? "",
      model: stringOf(member.Model),
      manufacturer: stringOf(member.Manufacturer),
      cores: numberOf(member.TotalCores),
      threads: numberOf(member.TotalThreads),
      maxSpeedMHz: numberOf(member.MaxSpeedMHz),
    }));
  const sum = (pick: (item: ProcessorInfo) => number | undefined): number =>
    items.reduce((total, item) => total + (pick(item) ?? 0), 0);
  return {
    count: summaryCount ?? items.length,
    cores: summaryCores ?? sum(item => item.cores),
    threads: summaryThreads ?? sum(item => item.threads),
    items,
  };
}

async function readMemory(
  context: SystemContext,
  system: Record<string, unknown>,
  warnings: string[],
): Promise<number> {
  const total = numberOf(record(system.MemorySummary)?.TotalSystemMemoryGiB);
  if (total !== undefined) return total;
  const path = linkPath(system.Memory as ODataLink);
  if (!path) return 0;
  const { members, warnings: memberWarnings } = await optionalCollection(context, path, warnings);
  warnings.push(...memberWarnings);
  const mib = members.reduce((sum, member) => sum + (numberOf(member.CapacityMiB) ?? 0), 0);
  return Math.round((mib / 1024) * 100) / 100;
}

async function readNics(
  context: SystemContext,
  system: Record<string, unknown>,
  warnings: string[],
): Promise<NicInfo[]> {
  const path = linkPath(system.EthernetInterfaces as ODataLink);
  if (!path) return [];
  try {
    const { members, warnings: memberWarnings } = await context.client.collectionMembers(path);
    warnings.push(...memberWarnings);
    return members.map(member => ({
      id: stringOf(member.Id) ?? "",
      name: stringOf(member.Name),
      macAddress: normaliseMac(stringOf(member.MACAddress) ?? stringOf(member.PermanentMACAddress)),
      linkStatus: stringOf(member.LinkStatus),
      speedMbps: numberOf(member.SpeedMbps),
      enabled: typeof member.InterfaceEnabled === "boolean" ? member.InterfaceEnabled : undefined,
      ipAddresses: ipAddressesOf(member),
    }));
  } catch (error) {
    warnings.push(`EthernetInterfaces: ${message(error)}`);
    return [];
  }
}

/** Usable addresses from IPv4Addresses/IPv6Addresses; placeholders such as 0.0.0.0 and
 *  link-local IPv6 say nothing about where the host can be reached. */
function ipAddressesOf(member: Record<string, unknown>): string[] | undefined {
  const out: string[] = [];
  for (const key of ["IPv4Addresses", "IPv6Addresses"]) {
    const list = member[key];
    if (!Array.isArray(list)) continue;
    for (const entry of list) {
      const address = stringOf(record(entry)?.Address);
      if (address && address !== "0.0.0.0" && address !== "::" && !/^fe80:/i.test(address)) {
        out.push(address);
      }
    }
  }
  return out.length ? out : undefined;
}

function normaliseMac(mac: string | undefined): string | undefined {
  return mac?.toLowerCase();
}

async function readDisks(
  context: SystemContext,
  system: Record<string, unknown>,
  warnings: string[],
): Promise<DiskInfo[]> {
  const storagePath = linkPath(system.Storage as ODataLink);
  const disks: DiskInfo[] = [];
  if (storagePath) {
    try {
      // Two levels where offered: each controller comes with its Drives inlined.
      const { members, warnings: memberWarnings } = await context.client.collectionMembers(
        storagePath,
        { levels: 2 },
      );
      warnings.push(...memberWarnings);
      const perController = await Promise.all(
        members.map(storage => readDrives(context, storage, warnings)),
      );
      disks.push(...perController.flat());
    } catch (error) {
      warnings.push(`Storage: ${message(error)}`);
    }
  }
  if (disks.length > 0) return disks;
  // Older services (and some Supermicro boards) report disks only through SimpleStorage.
  const simplePath = linkPath(system.SimpleStorage as ODataLink);
  if (!simplePath) return disks;
  try {
    const { members, warnings: memberWarnings } =
      await context.client.collectionMembers(simplePath);
    warnings.push(...memberWarnings);
    for (const controller of members) {
      const devices = Array.isArray(controller.Devices) ? controller.Devices : [];
      devices.forEach((device, index) => {
        const entry = record(device);
        if (!entry || stringOf(record(entry.Status)?.State) === "Absent") return;
        disks.push({
          id: stringOf(entry.Name) ?? `${stringOf(controller.Id) ?? "disk"}-${index}`,
          name: stringOf(entry.Name),
          model: stringOf(entry.Model),
          sizeBytes: numberOf(entry.CapacityBytes),
          controller: stringOf(controller.Id),
        });
      });
    }
  } catch (error) {
    warnings.push(`SimpleStorage: ${message(error)}`);
  }
  return disks;
}

async function readDrives(
  context: SystemContext,
  storage: Record<string, unknown>,
  warnings: string[],
): Promise<DiskInfo[]> {
  let entries = Array.isArray(storage.Drives) ? storage.Drives : [];
  const storagePath = linkPath(storage as ODataLink);
  const links = entries.filter(entry => !hasContent(entry)).length;
  // Drives still bare links (one level of $expand, or none): with two or more, one expanded GET
  // of the controller beats a GET per drive; a single drive is one GET either way, and that GET is
  // the drive's own (smaller, and independent of $expand).
  const query = links > 1 ? await context.client.expandQuery(1) : undefined;
  if (query && storagePath) {
    try {
      const expanded = (await context.client.get<Storage>(`${storagePath}?${query}`)).body;
      if (Array.isArray(expanded.Drives)) entries = expanded.Drives;
    } catch (error) {
      warnings.push(`${storagePath}: ${message(error)}`);
    }
  }
  context.client.checkMemberCount(entries.length, `${storagePath ?? "a Storage"} Drives`);
  const drives = await Promise.all(
    entries.map(async entry => {
      const drive = record(entry);
      if (drive && hasContent(drive)) return drive;
      const path = linkPath(drive as ODataLink);
      if (!path) return undefined;
      try {
        return (await context.client.get<Drive>(path)).body;
      } catch (error) {
        warnings.push(`${path}: ${message(error)}`);
        return undefined;
      }
    }),
  );
  return drives.flatMap(drive => {
    if (!drive || stringOf(record(drive.Status)?.State) === "Absent") return [];
    return [
      {
        id: stringOf(drive.Id) ?? "",
        name: stringOf(drive.Name),
        model: stringOf(drive.Model),
        serialNumber: stringOf(drive.SerialNumber),
        sizeBytes: numberOf(drive.CapacityBytes),
        mediaType: stringOf(drive.MediaType),
        protocol: stringOf(drive.Protocol),
        controller: stringOf(storage.Id),
      },
    ];
  });
}

/**
 * A linked collection some services list but do not serve (sushy-tools links Memory and answers
 * 404): its absence becomes a warning. Errors that say the BMC itself is failing still throw.
 */
async function optionalCollection(
  context: SystemContext,
  path: string,
  warnings: string[],
): Promise<{ members: Record<string, unknown>[]; warnings: string[] }> {
  try {
    return await context.client.collectionMembers(path);
  } catch (error) {
    if (!isRedfishError(error) || (error.code !== "NotFound" && error.code !== "Unsupported")) {
      throw error;
    }
    warnings.push(`${path}: ${message(error)}`);
    return { members: [], warnings: [] };
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
