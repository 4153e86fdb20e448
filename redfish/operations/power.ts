// Power state and ComputerSystem.Reset, with the reset types taken from what the BMC advertises
// (ResetType@Redfish.AllowableValues, else the @Redfish.ActionInfo parameters).
import type { ActionInfo, ComputerSystem } from "../resources/schema";
import { UnsupportedOperationError, VerificationError } from "../errors";
import { stringOf, stringsOf } from "../resources/common";
import type { PowerOffOptions, PowerState, ResetType } from "../types";
import { type SystemContext, pollUntil, record } from "./context";

const POWER_STATES: PowerState[] = ["On", "Off", "PoweringOn", "PoweringOff", "Paused"];

export function toPowerState(value: unknown): PowerState {
  return POWER_STATES.find(state => state === value) ?? "Unknown";
}

interface ResetAction {
  target: string;
  /** Empty when the BMC does not say; then any type is attempted. */
  allowed: ResetType[];
}

/**
 * The Reset action's target and allowed types; read once per system handle, from `body` when the
 * caller has just read the system anyway (one GET tells both the power state and the action).
 */
async function resetAction(context: SystemContext, body?: ComputerSystem): Promise<ResetAction> {
  return context.memo("resetAction", async () => {
    const system = body ?? (await context.systemBody());
    const action = record(record(system.Actions)?.["#ComputerSystem.Reset"]);
    const target = stringOf(action?.target);
    if (!action || !target) {
      throw new UnsupportedOperationError("the system offers no ComputerSystem.Reset action");
    }
    let allowed = stringsOf(action["ResetType@Redfish.AllowableValues"]);
    const actionInfo = stringOf(action["@Redfish.ActionInfo"]);
    if (allowed.length === 0 && actionInfo) {
      const info = await context.client.get<ActionInfo>(actionInfo);
      const parameters = Array.isArray(info.body.Parameters) ? info.body.Parameters : [];
      const resetType = parameters.map(record).find(parameter => parameter?.Name === "ResetType");
      allowed = stringsOf(resetType?.AllowableValues);
    }
    return { target, allowed: allowed as ResetType[] };
  });
}

/**
 * Reads the Reset action's allowed types into the handle's memo from a system body in hand (the
 * inventory's), so a host's first power action after its claim sends its reset without the
 * ActionInfo GET some BMCs need (Supermicro, OpenBMC): one request off the claim's first action,
 * taken at enrolment instead. A system without the action is left for the action to report.
 */
export async function learnResetAction(
  context: SystemContext,
  body: ComputerSystem,
): Promise<void> {
  await resetAction(context, body).catch(() => undefined);
}

export async function readPowerState(context: SystemContext): Promise<PowerState> {
  return toPowerState((await context.systemBody()).PowerState);
}

export async function allowedResetTypes(context: SystemContext): Promise<ResetType[]> {
  return (await resetAction(context)).allowed;
}

function offers(action: ResetAction, type: ResetType): boolean {
  return action.allowed.length === 0 || action.allowed.includes(type);
}

export async function sendReset(context: SystemContext, type: ResetType): Promise<void> {
  const action = await resetAction(context);
  if (!offers(action, type)) {
    throw new UnsupportedOperationError(
      `reset type ${type} is not offered by the BMC (offered: ${action.allowed.join(", ")})`,
    );
  }
  await context.client.post(action.target, { ResetType: type });
}

async function waitForPower(context: SystemContext, wanted: PowerState, timeoutMs: number) {
  const { verifyPollIntervalMs } = context.client.settings;
  return pollUntil(
    async () => ((await readPowerState(context)) === wanted ? true : undefined),
    timeoutMs,
    verifyPollIntervalMs,
  );
}

/** Powers on; false when the system was already on (nothing sent). */
export async function powerOn(context: SystemContext): Promise<boolean> {
  const system = await context.systemBody();
  if (toPowerState(system.PowerState) === "On") return false;
  const action = await resetAction(context, system);
  const type = (["On", "ForceOn", "PushPowerButton"] as ResetType[]).find(candidate =>
    offers(action, candidate),
  );
  if (!type) throw new UnsupportedOperationError("the BMC offers no reset type that powers on");
  await sendReset(context, type);
  if (!(await waitForPower(context, "On", context.client.settings.verifyTimeoutMs))) {
    throw new VerificationError(`power on (${type}) sent but the system did not report On`);
  }
  return true;
}

/**
 * Powers off (gracefully first unless forced); false when the system was already off. The power
 * state may come from a read started just before (readAhead), which a write since voids.
 */
export async function powerOff(
  context: SystemContext,
  options: PowerOffOptions = {},
): Promise<boolean> {
  const system = await context.systemBody({ listed: true });
  if (toPowerState(system.PowerState) === "Off") return false;
  const action = await resetAction(context, system);
  const { settings } = context.client;
  if (!options.force && offers(action, "GracefulShutdown")) {
    await sendReset(context, "GracefulShutdown");
    const timeout = options.gracefulTimeoutMs ?? settings.gracefulShutdownTimeoutMs;
    if (await waitForPower(context, "Off", timeout)) return true;
    context.client.logger?.warn("graceful shutdown timed out; forcing power off", {
      timeoutMs: timeout,
    });
  }
  await sendReset(context, "ForceOff");
  if (!(await waitForPower(context, "Off", settings.verifyTimeoutMs))) {
    throw new VerificationError("ForceOff sent but the system did not report Off");
  }
  return true;
}

export async function restart(context: SystemContext, force = false): Promise<void> {
  const system = await context.systemBody();
  if (toPowerState(system.PowerState) === "Off") {
    await powerOn(context);
    return;
  }
  const action = await resetAction(context, system);
  const type: ResetType =
    !force && offers(action, "GracefulRestart") ? "GracefulRestart" : "ForceRestart";
  if (offers(action, type)) return sendReset(context, type);
  // Neither restart type offered: off then on has the same effect.
  await powerOff(context, { force: true });
  await powerOn(context);
}

export async function powerCycle(context: SystemContext): Promise<void> {
  const action = await resetAction(context);
  if (action.allowed.includes("PowerCycle")) {
    if ((await readPowerState(context)) === "Off") {
      await powerOn(context);
      return;
    }
    return sendReset(context, "PowerCycle");
  }
  // HPE, Lenovo and AMI offer no PowerCycle (QUIRKS: HPE | reset, Lenovo | reset, AMI | reset).
  await powerOff(context, { force: true });
  await powerOn(context);
}
