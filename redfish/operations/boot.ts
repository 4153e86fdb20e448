// Boot source override: set, read back, clear. Values are checked against the AllowableValues the
// BMC advertises; where the system exposes a settings object that carries Boot, writes go there.
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

interface BootLocation {
  /** Where Boot is written: the system, or its settings object when that carries Boot. */
  writePath: string;
  boot: Record<string, unknown>;
}

export function parseBoot(boot: Record<string, unknown> | undefined): BootOverrideState {
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

/**
 * Finds where Boot lives. QUIRKS: All | HTTP boot and AMI | boot — when the system has a
 * @Redfish.Settings object that exposes Boot (AMI `SD`), the override is written there.
 */
async function locateBoot(context: SystemContext): Promise<BootLocation> {
  const system = await context.systemBody();
  const boot = record(system.Boot);
  if (!boot) throw new UnsupportedOperationError("the system has no Boot property");
  const systemPath = await context.systemPath();
  const settingsPath = stringOf(
    record(record(system["@Redfish.Settings"])?.SettingsObject)?.["@odata.id"],
  );
  if (settingsPath && settingsPath !== systemPath) {
    // Only when the settings object carries the override itself: Lenovo's `Pending` holds just
    // BootOrder and rejects BootSourceOverrideTarget (QUIRKS: Lenovo | boot / BIOS).
    const settingsBoot = await context.memo(`settingsBoot:${settingsPath}`, async () => {
      const settings = await context.client.get(settingsPath);
      return "BootSourceOverrideTarget" in (record(settings.body.Boot) ?? {});
    });
    if (settingsBoot) {
      // Pending values live in the settings object until the next reset: read them from there,
      // keeping the system's AllowableValues.
      const pending = record((await context.client.get(settingsPath)).body.Boot) ?? {};
      const allowable = Object.entries(boot).filter(([key]) =>
        key.endsWith("@Redfish.AllowableValues"),
      );
      // BlueField's settings copy carries its own stale AllowableValues: the system's win.
      return {
        writePath: settingsPath,
        boot: { ...boot, ...pending, ...Object.fromEntries(allowable) },
      };
    }
  }
  return { writePath: systemPath, boot };
}

/** The override that applies at the next boot (pending values where a settings object holds them). */
export async function readBootOverride(context: SystemContext): Promise<BootOverrideState> {
  return parseBoot((await locateBoot(context)).boot);
}

export async function setBootOverride(
  context: SystemContext,
  request: BootOverrideRequest,
): Promise<BootOverrideResult> {
  const vendor = await context.vendor();
  const { writePath, boot } = await locateBoot(context);
  const current = parseBoot(boot);
  const warnings: string[] = [];

  const target =
    request.target === "Cd" ? virtualCdBootTarget(vendor, current.allowedTargets) : request.target;
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

  const state = await readBootOverride(context);
  const targets = acceptableReadBackTargets(vendor, target);
  const uriOk =
    payload.HttpBootUri === undefined || state.httpBootUri === (payload.HttpBootUri ?? undefined);
  if (!targets.includes(state.target) || state.enabled !== enabled || !uriOk) {
    throw new VerificationError(
      `boot override reads back as ${state.enabled}/${state.target} after setting ${enabled}/${target}`,
    );
  }
  return { state, targetSent: target, persistenceFellBackToOnce, warnings };
}

export async function clearBootOverride(context: SystemContext): Promise<BootOverrideState> {
  const vendor = await context.vendor();
  const { writePath, boot } = await locateBoot(context);
  const current = parseBoot(boot);
  if (current.enabled === "Disabled" && !current.httpBootUri) return current;
  const payload = clearPayload(vendor, current, boot);
  await context.client.patch(writePath, { Boot: payload }, { context: "bootOverride" });
  const state = await readBootOverride(context);
  if (state.enabled !== "Disabled") {
    throw new VerificationError(`boot override still reads ${state.enabled}/${state.target}`);
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
