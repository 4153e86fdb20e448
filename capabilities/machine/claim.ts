// Which PhysicalHost a Beskar7Machine may claim. A host qualifies when it is in a claimable state
// (the state table) and free, carries the labels spec.hostSelector asks for, meets
// spec.hardwareRequirements on its inventory, has a BMC that can boot the machine's mode (the
// shared rule of capabilities/lib/boot-capability.ts, which the PhysicalHost controller applies
// too), and sits in the machine's failure domain (its zone label). The result says how many hosts
// were considered and what excluded the others, so a machine that waits says why. Candidates come
// in an order particular to each machine (rendezvous hashing), so machines created together do not
// all try the same host first.
import { createHash } from "node:crypto";

import {
  HostStates,
  type Beskar7Machine,
  type HardwareRequirements,
  type HostStateName,
  type PhysicalHost,
  type ProvisioningModeName,
} from "../api";
import { missingBootCapability, type BootMethod } from "../lib/boot-capability";
import { matchesSelector } from "../lib/selector";
import { effectiveProvisioningMode } from "./admission";
import { provisioningRequest } from "./request";

export const Exclusion = {
  /** Not in a claimable state (enrolling, in error, provisioned...). */
  state: "not Available",
  /** Claimed by another machine already. */
  claimed: "claimed by another machine",
  selector: "not matching hostSelector",
  requirements: "below hardwareRequirements",
  /** Followed by the mode and what the BMCs lack, see describeChoice. */
  capability: "unable to boot the machine's provisioning mode",
  zone: "in another failure domain",
} as const;
export type ExclusionName = keyof typeof Exclusion;

export interface HostChoice {
  /** Hosts this machine may claim, in the order to try them. */
  candidates: PhysicalHost[];
  considered: number;
  excluded: Record<ExclusionName, number>;
  /** The machine's provisioning mode, which the capability exclusions are about. */
  mode: ProvisioningModeName;
  /** Hosts excluded for their boot capabilities, by what their BMC lacks. */
  bootGaps: Record<string, number>;
}

/** The hosts of the machine's namespace this machine may claim, and why the others may not. */
export function chooseHosts(
  machine: Beskar7Machine,
  hosts: readonly PhysicalHost[],
  failureDomain: string | undefined,
  zoneLabel: string,
): HostChoice {
  const excluded: Record<ExclusionName, number> = {
    state: 0,
    claimed: 0,
    selector: 0,
    requirements: 0,
    capability: 0,
    zone: 0,
  };
  const bootGaps: Record<string, number> = {};
  const candidates: PhysicalHost[] = [];
  const spec = machine.spec ?? {};
  // The request's boot method is all the rule reads; the bootstrap Secret's name plays no part.
  const boot = provisioningRequest(spec, "");
  const namespace = machine.metadata?.namespace;
  const considered = hosts.filter(h => h.metadata?.namespace === namespace);
  for (const host of considered) {
    const reason = exclusion(machine, host, boot, failureDomain, zoneLabel);
    if (!reason) candidates.push(host);
    else if (typeof reason === "string") excluded[reason]++;
    else {
      excluded.capability++;
      bootGaps[reason.lacks] = (bootGaps[reason.lacks] ?? 0) + 1;
    }
  }
  const seed = machine.metadata?.uid ?? machine.metadata?.name ?? "";
  const rank = (h: PhysicalHost) =>
    createHash("sha256")
      .update(seed)
      .update("\0")
      .update(h.metadata?.uid ?? h.metadata?.name ?? "")
      .digest("hex");
  candidates.sort((a, b) => (rank(a) < rank(b) ? -1 : 1));
  return {
    candidates,
    considered: considered.length,
    excluded,
    mode: effectiveProvisioningMode(spec),
    bootGaps,
  };
}

/** Why the host is excluded: a reason, or what its BMC lacks to boot the machine's mode. */
function exclusion(
  machine: Beskar7Machine,
  host: PhysicalHost,
  boot: BootMethod,
  failureDomain: string | undefined,
  zoneLabel: string,
): Exclude<ExclusionName, "capability"> | { lacks: string } | undefined {
  if (host.spec?.consumerRef) return "claimed";
  const state = host.status?.state as HostStateName | undefined;
  if (!state || !HostStates[state]?.claimable || host.metadata?.deletionTimestamp) return "state";
  if (!matchesSelector(host.metadata?.labels, machine.spec?.hostSelector)) return "selector";
  if (shortfalls(host, machine.spec?.hardwareRequirements).length) return "requirements";
  const lacks = missingBootCapability(host.status?.hardwareDetails?.bootCapabilities, boot);
  if (lacks) return { lacks };
  if (failureDomain && host.metadata?.labels?.[zoneLabel] !== failureDomain) return "zone";
  return undefined;
}

/** What of the requirements the host's inventory does not meet, one phrase each. */
export function shortfalls(
  host: PhysicalHost,
  requirements: HardwareRequirements | undefined,
): string[] {
  if (!requirements) return [];
  const hw = host.status?.hardwareDetails;
  const out: string[] = [];
  const cores = hw?.cpu?.cores ?? 0;
  if (requirements.minCPUCores && cores < requirements.minCPUCores)
    out.push(`${cores} CPU cores < ${requirements.minCPUCores}`);
  const memory = hw?.memoryGiB ?? 0;
  if (requirements.minMemoryGB && memory < requirements.minMemoryGB)
    out.push(`${memory} GiB memory < ${requirements.minMemoryGB}`);
  const largest = Math.max(0, ...(hw?.disks ?? []).map(d => d.sizeBytes ?? 0)) / 2 ** 30;
  if (requirements.minDiskGB && largest < requirements.minDiskGB)
    out.push(`largest disk ${Math.floor(largest)} GiB < ${requirements.minDiskGB}`);
  return out;
}

/**
 * "12 hosts considered in the machine's namespace: 3 not Available, 9 not matching hostSelector";
 * capability exclusions name the mode and what the BMCs lack: "3 unable to boot the machine's
 * provisioning mode (iPXE: no UefiHttp boot target)".
 */
export function describeChoice(choice: HostChoice): string {
  const parts = (Object.keys(Exclusion) as ExclusionName[])
    .filter(k => choice.excluded[k] > 0)
    .map(
      k =>
        `${choice.excluded[k]} ${Exclusion[k]}${k === "capability" ? ` (${describeGaps(choice)})` : ""}`,
    );
  const head = `${choice.considered} host${choice.considered === 1 ? "" : "s"} considered in the machine's namespace`;
  return parts.length ? `${head}: ${parts.join(", ")}` : head;
}

/** "iPXE: no UefiHttp boot target", or "iPXE: 2 with no UefiHttp boot target, 1 with no ...". */
function describeGaps({ mode, bootGaps }: HostChoice): string {
  const gaps = Object.entries(bootGaps);
  if (gaps.length === 1) return `${mode}: ${gaps[0]![0]}`;
  return `${mode}: ${gaps.map(([lacks, count]) => `${count} with ${lacks}`).join(", ")}`;
}
