// Boot source override: set, read back, clear. Values are checked against the AllowableValues the
// BMC advertises; where the system exposes a settings object that carries Boot, writes go there.
import type { ComputerSystem } from "../resources/schema";
import { InvalidResponseError, UnsupportedOperationError, VerificationError } from "../errors";
import { stringOf, stringsOf } from "../resources/common";
import type {
  BmcVendor,
  BootOverrideRequest,
  BootOverrideResult,
  BootOverrideState,
} from "../types";
import {
  acceptableReadBackTargets,
  httpBootUriBiosAttributes,
  keepTargetWhenDisabling,
  requiresFullBootObject,
  virtualCdBootTarget,
} from "../vendors";
import { setBiosAttributes } from "./bios";
import { type SystemContext, record } from "./context";

function parseBoot(boot: Record<string, unknown> | undefined): BootOverrideState {
  const source = boot ?? {};
  return {
    enabled: stringOf(source.BootSourceOverrideEnabled) ?? "Disabled",
    target: stringOf(source.BootSourceOverrideTarget) ?? "None",
    mode: stringOf(source.BootSourceOverrideMode),
    httpBootUri: stringOf(source.HttpBootUri),
    uefiTarget: stringOf(source.UefiTargetBootSourceOverride),
    allowedTargets: stringsOf(source["BootSourceOverrideTarget@Redfish.AllowableValues"]),
    allowedEnabled: stringsOf(source["BootSourceOverrideEnabled@Redfish.AllowableValues"]),
    allowedModes: stringsOf(source["BootSourceOverrideMode@Redfish.AllowableValues"]),
  };
}

interface BootLocation {
  /** Where Boot is written: the system, or its settings object when that carries the override. */
  writePath: string;
  /** The Boot object at writePath, with the system's AllowableValues. */
  boot: Record<string, unknown>;
}

/** The system's settings object path when that object carries the boot override, else undefined. */
async function bootSettingsPath(
  context: SystemContext,
  system: Record<string, unknown>,
): Promise<{ path: string; allowedTargets: string[] } | undefined> {
  const systemPath = await context.systemPath();
  const settingsPath = stringOf(
    record(record(system["@Redfish.Settings"])?.SettingsObject)?.["@odata.id"],
  );
  if (!settingsPath || settingsPath === systemPath) return undefined;
  // Only when the settings object carries the override itself: Lenovo's `Pending` holds just
  // BootOrder and rejects BootSourceOverrideTarget (QUIRKS: Lenovo | boot / BIOS).
  return context.memo(`bootSettings:${settingsPath}`, async () => {
    const boot = record((await context.client.get<ComputerSystem>(settingsPath)).body.Boot) ?? {};
    if (!("BootSourceOverrideTarget" in boot)) return undefined;
    return {
      path: settingsPath,
      allowedTargets: stringsOf(boot["BootSourceOverrideTarget@Redfish.AllowableValues"]),
    };
  });
}

/**
 * Finds where to write an override for `target`. QUIRKS: All | HTTP boot and AMI | boot — when
 * the system's @Redfish.Settings object exposes the override (AMI `SD`), it is written there,
 * unless that object's own AllowableValues exclude the target (BlueField's settings copy lists
 * no UefiHttp, which only the system offers).
 */
async function locateBoot(
  context: SystemContext,
  system: ComputerSystem,
  target?: string,
): Promise<BootLocation> {
  const boot = record(system.Boot);
  if (!boot) throw new UnsupportedOperationError("the system has no Boot property");
  const settings = await bootSettingsPath(context, system);
  const settingsTakes =
    settings &&
    (target === undefined ||
      settings.allowedTargets.length === 0 ||
      settings.allowedTargets.includes(target));
  if (!settings || !settingsTakes) return { writePath: await context.systemPath(), boot };
  return { writePath: settings.path, boot: await pendingBoot(context, settings.path, boot) };
}

/** Pending Boot values from a settings object, keeping the system's AllowableValues. */
async function pendingBoot(
  context: SystemContext,
  settingsPath: string,
  systemBoot: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const pending = record((await context.client.get<ComputerSystem>(settingsPath)).body.Boot) ?? {};
  const allowable = Object.entries(systemBoot).filter(([key]) =>
    key.endsWith("@Redfish.AllowableValues"),
  );
  return { ...systemBoot, ...pending, ...Object.fromEntries(allowable) };
}

/** Reads back the override where it was written. */
async function readBack(context: SystemContext, writePath: string): Promise<BootOverrideState> {
  const system = await context.systemBody();
  const boot = record(system.Boot) ?? {};
  if (writePath === (await context.systemPath())) return parseBoot(boot);
  return parseBoot(await pendingBoot(context, writePath, boot));
}

/** The boot targets a system's Boot object allows and whether a UEFI HTTP boot URI can be set. */
export function bootTargetCapabilities(
  boot: Record<string, unknown> | undefined,
  vendor: BmcVendor,
): { bootTargets: string[]; httpBootUri: boolean } {
  return {
    bootTargets: parseBoot(boot).allowedTargets,
    httpBootUri:
      !!boot && ("HttpBootUri" in boot || !!httpBootUriBiosAttributes(vendor, "http://x/")),
  };
}

/** The override the system reports now (a settings object may hold a pending change). */
export async function readBootOverride(context: SystemContext): Promise<BootOverrideState> {
  const system = await context.systemBody();
  return parseBoot(record(system.Boot));
}

export async function setBootOverride(
  context: SystemContext,
  request: BootOverrideRequest,
): Promise<BootOverrideResult> {
  const vendor = await context.vendor();
  // One read of the system: it tells the allowed targets and where the override is written.
  const body = await context.systemBody();
  const system = parseBoot(record(body.Boot));
  const target =
    request.target === "Cd" ? virtualCdBootTarget(vendor, system.allowedTargets) : request.target;
  const { writePath, boot } = await locateBoot(context, body, target);
  const current = parseBoot(boot);
  const warnings: string[] = [];

  if (current.allowedTargets.length > 0 && !current.allowedTargets.includes(target)) {
    throw new UnsupportedOperationError(
      `boot target ${target} is not offered by the BMC (offered: ${current.allowedTargets.join(", ")})`,
    );
  }

  let enabled = request.persistent ? "Continuous" : "Once";
  let persistenceFellBackToOnce = false;
  if (
    enabled === "Continuous" &&
    current.allowedEnabled.length > 0 &&
    !current.allowedEnabled.includes("Continuous")
  ) {
    // QUIRKS: All | persistent boot (Lenovo has no Continuous): the caller re-applies per boot.
    enabled = "Once";
    persistenceFellBackToOnce = true;
    warnings.push("the BMC offers no Continuous override; set Once instead");
  }

  const payload: Record<string, unknown> = {
    BootSourceOverrideTarget: target,
    BootSourceOverrideEnabled: enabled,
  };
  const mode = request.mode ?? (requiresFullBootObject(vendor) ? current.mode : undefined);
  if (mode) {
    if (current.allowedModes.length > 0 && !current.allowedModes.includes(mode)) {
      throw new UnsupportedOperationError(
        `boot mode ${mode} is not offered (offered: ${current.allowedModes.join(", ")})`,
      );
    }
    // Only where the property exists: X10 Supermicro rejects the whole PATCH otherwise.
    if ("BootSourceOverrideMode" in boot) payload.BootSourceOverrideMode = mode;
    else warnings.push("the BMC has no BootSourceOverrideMode; mode left unchanged");
  }

  let biosFallback: Record<string, string> | undefined;
  if (target === "UefiHttp") {
    if (!request.httpBootUri) {
      // Without a URI the firmware uses DHCP-provided boot info; that is a valid request.
      if ("HttpBootUri" in boot && current.httpBootUri) payload.HttpBootUri = null;
    } else if ("HttpBootUri" in boot) {
      payload.HttpBootUri = request.httpBootUri;
    } else {
      biosFallback = httpBootUriBiosAttributes(vendor, request.httpBootUri);
      if (!biosFallback) {
        throw new UnsupportedOperationError(
          "the BMC has no Boot.HttpBootUri and no known BIOS attribute for an HTTP boot URI",
        );
      }
    }
  } else if ("HttpBootUri" in boot && current.httpBootUri) {
    // QUIRKS: All | HTTP boot — HttpBootUri only together with UefiHttp, else cleared.
    payload.HttpBootUri = null;
  }
  if (target === "UefiTarget") {
    if (!request.uefiTarget) {
      throw new InvalidResponseError("boot target UefiTarget needs a uefiTarget device path");
    }
    payload.UefiTargetBootSourceOverride = request.uefiTarget;
  }

  if (biosFallback) {
    const bios = await setBiosAttributes(context, biosFallback, {});
    warnings.push(
      `HTTP boot URI written to BIOS attributes via ${bios.writtenTo} (applies on reset)`,
    );
  }
  await context.client.patch(writePath, { Boot: payload }, { context: "bootOverride" });

  const state = await readBack(context, writePath);
  const targets = acceptableReadBackTargets(vendor, target);
  // The URI matters only for UefiHttp; a stale one beside another target is harmless (and
  // services without HttpBootUri support, like sushy-tools, keep whatever they show).
  const uriOk =
    target !== "UefiHttp" ||
    payload.HttpBootUri === undefined ||
    state.httpBootUri === payload.HttpBootUri;
  // Some services keep every override as Continuous (sushy-tools does): the target is set and
  // the host will boot it, which is what a one-time override is for; deprovisioning clears it.
  const enabledOk =
    state.enabled === enabled || (enabled === "Once" && state.enabled === "Continuous");
  if (enabledOk && state.enabled !== enabled) {
    warnings.push(`the BMC reports ${state.enabled} after a ${enabled} override was set`);
  }
  if (!targets.includes(state.target) || !enabledOk || !uriOk) {
    throw new VerificationError(
      `boot override reads back as ${state.enabled}/${state.target} after setting ${enabled}/${target}`,
    );
  }
  return { state, targetSent: target, persistenceFellBackToOnce, warnings };
}

/** Clears the override on the system and, where it holds one, on its settings object. */
export async function clearBootOverride(context: SystemContext): Promise<BootOverrideState> {
  const vendor = await context.vendor();
  const system = await context.systemBody();
  const systemBoot = record(system.Boot);
  if (!systemBoot) throw new UnsupportedOperationError("the system has no Boot property");
  const settings = await bootSettingsPath(context, system);
  const places: BootLocation[] = [{ writePath: await context.systemPath(), boot: systemBoot }];
  if (settings) {
    places.push({
      writePath: settings.path,
      boot: await pendingBoot(context, settings.path, systemBoot),
    });
  }
  let state = parseBoot(systemBoot);
  for (const { writePath, boot } of places) {
    const current = parseBoot(boot);
    if (current.enabled === "Disabled" && !current.httpBootUri) continue;
    const payload = clearPayload(vendor, current, boot);
    await context.client.patch(writePath, { Boot: payload }, { context: "bootOverride" });
    const after = await readBack(context, writePath);
    if (after.enabled !== "Disabled") {
      throw new VerificationError(
        `boot override at ${writePath} still reads ${after.enabled}/${after.target}`,
      );
    }
    if (writePath === places[0]?.writePath) state = after;
  }
  return state;
}

function clearPayload(
  vendor: BmcVendor,
  current: BootOverrideState,
  boot: Record<string, unknown>,
): Record<string, unknown> {
  const payload: Record<string, unknown> = { BootSourceOverrideEnabled: "Disabled" };
  if (keepTargetWhenDisabling(vendor)) {
    if (current.target === "None") payload.BootSourceOverrideTarget = "Pxe";
  } else if (current.allowedTargets.length === 0 || current.allowedTargets.includes("None")) {
    payload.BootSourceOverrideTarget = "None";
  }
  if (requiresFullBootObject(vendor) && current.mode && "BootSourceOverrideMode" in boot) {
    payload.BootSourceOverrideMode = current.mode;
  }
  if ("HttpBootUri" in boot && current.httpBootUri) payload.HttpBootUri = null;
  return payload;
}
