import type { BmcProvisioner, RedfishClient } from "./api";

/** The PhysicalHost controller's port onto one system of one BMC. */
export function createProvisioner(
  _client: RedfishClient,
  _options: { systemId?: string; release?: () => Promise<void> | void } = {},
): BmcProvisioner {
  throw new Error("not implemented yet");
}
