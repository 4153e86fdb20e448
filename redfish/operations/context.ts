// What every operation gets: the client and a handle on one resolved ComputerSystem, with the
// links that never change (system path, manager path, action targets) cached per handle.
import type { RedfishClientImpl } from "../client";
import type { ComputerSystem, Manager } from "../resources/schema";
import type { BmcVendor } from "../types";

export interface SystemContext {
  readonly client: RedfishClientImpl;
  /** The ComputerSystem's @odata.id (resolved once). */
  systemPath(): Promise<string>;
  /**
   * A fresh GET of the ComputerSystem. `listed: true` accepts instead the body the expanded Systems
   * collection brought when this handle resolved its system, if nothing was read or written since
   * (the first inventory of an enrollment), or a read started ahead of the call for it within the
   * last 3 s with nothing written since (RedfishSystem.readAhead: the power-off of a host being
   * claimed). Everything else that needs current state reads afresh.
   */
  systemBody(options?: { listed?: boolean }): Promise<ComputerSystem>;
  /** The first manager that manages this system, fetched fresh; undefined if none linked. */
  managerBody(): Promise<Manager | undefined>;
  vendor(): Promise<BmcVendor>;
  /** Per-handle memo for things read once (ActionInfo, collection paths). */
  memo<T>(key: string, compute: () => Promise<T>): Promise<T>;
}

export function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

/** Polls `check` until it returns a value or the deadline passes (then returns undefined). */
export async function pollUntil<T>(
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  intervalMs: number,
): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() + intervalMs > deadline) return undefined;
    await new Promise(resolve => setTimeout(resolve, intervalMs));
  }
}
