// BIOS attributes: read from Bios, written to the @Redfish.Settings object (Dell `Settings`, HPE
// `settings/`, Lenovo `Pending`, Supermicro/AMI `SD`) with an apply time where one is supported.
import type { Bios } from "../resources/schema";
import { UnsupportedOperationError, VerificationError } from "../errors";
import { linkPath, stringsOf, type ODataLink } from "../resources/common";
import type { BiosSettings, SetBiosResult } from "../types";
import { type SystemContext, record } from "./context";

interface BiosLocation {
  biosPath: string;
  bios: Record<string, unknown>;
  settingsPath?: string;
  supportedApplyTimes: string[];
}

async function locateBios(context: SystemContext): Promise<BiosLocation> {
  const system = await context.systemBody();
  const biosPath = linkPath(system.Bios as ODataLink);
  if (!biosPath) throw new UnsupportedOperationError("the system links no Bios resource");
  const bios = (await context.client.get<Bios>(biosPath)).body;
  const settings = record(bios["@Redfish.Settings"]);
  return {
    biosPath,
    bios,
    settingsPath: linkPath(settings?.SettingsObject as ODataLink),
    supportedApplyTimes: stringsOf(settings?.SupportedApplyTimes),
  };
}

export async function readBios(context: SystemContext): Promise<BiosSettings> {
  const location = await locateBios(context);
  const attributes = record(location.bios.Attributes) ?? {};
  let pending: Record<string, unknown> = {};
  if (location.settingsPath && location.settingsPath !== location.biosPath) {
    const settings =
      record((await context.client.get<Bios>(location.settingsPath)).body.Attributes) ?? {};
    // HPE's pending area holds every writable attribute: report only real differences.
    pending = Object.fromEntries(
      Object.entries(settings).filter(([name, value]) => attributes[name] !== value),
    );
  }
  return {
    attributes,
    pending,
    settingsPath: location.settingsPath,
    supportedApplyTimes: location.supportedApplyTimes,
  };
}

export async function setBiosAttributes(
  context: SystemContext,
  attributes: Record<string, unknown>,
  options: { applyTime?: string },
): Promise<SetBiosResult> {
  const location = await locateBios(context);
  const target = location.settingsPath ?? location.biosPath;
  const supported = location.supportedApplyTimes;
  let applyTime = options.applyTime;
  if (applyTime && supported.length > 0 && !supported.includes(applyTime)) {
    throw new UnsupportedOperationError(
      `apply time ${applyTime} is not supported (supported: ${supported.join(", ")})`,
    );
  }
  // Dell creates the config job only when an apply time is sent (QUIRKS: Dell | BIOS).
  if (!applyTime && supported.includes("OnReset")) applyTime = "OnReset";
  const body: Record<string, unknown> = { Attributes: attributes };
  if (applyTime) body["@Redfish.SettingsApplyTime"] = { ApplyTime: applyTime };
  await context.client.patch(target, body);

  const written = record((await context.client.get<Bios>(target)).body.Attributes) ?? {};
  const missing = Object.entries(attributes).filter(([name, value]) => written[name] !== value);
  if (missing.length > 0) {
    throw new VerificationError(
      `BIOS attributes not reflected in ${target}: ${missing.map(([name]) => name).join(", ")}`,
    );
  }
  return {
    writtenTo: target,
    applyTime,
    requiresReset: target !== location.biosPath || applyTime !== "Immediate",
  };
}
