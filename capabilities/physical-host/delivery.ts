// The delivery-path choice: how a provisioning's configuration and bootstrap data reach the OS
// on one host, from what the OS reads (boot/os.ts) and what the host's BMC offers (its recorded
// bootCapabilities). Redfish cannot put a kernel argument onto a booted ISO, so anything the OS
// must read comes from the boot service: a patched ISO carrying the kernel arguments, a
// configuration volume on a second slot, or an iPXE script. A pure function, so the rules are
// unit-tested in one place and the host controller only executes the answer; the reason it
// returns goes into status.boot.reason and an event as it is.
import { OsBoot, isOsFamily } from "../../boot";
import {
  BootDelivery,
  HostBootMethod,
  NetworkBootTarget,
  type BootDeliveryName,
  type HardwareDetails,
  type HostProvisioning,
} from "../api";
import { missingBootCapability } from "../lib/boot-capability";

export interface DeliveryInput {
  request: HostProvisioning;
  /** The host's recorded hardwareDetails.bootCapabilities (absent: not known). */
  capabilities?: HardwareDetails["bootCapabilities"];
  /** Whether the operator knows the boot service's URL (BESKAR7_BOOT_URL). */
  bootServiceConfigured: boolean;
}

export type DeliveryChoice =
  | {
      ok: true;
      delivery: BootDeliveryName;
      /** Why this path for this host, for status.boot.reason and the event. */
      reason: string;
      /** The boot service serves something to this host (so it needs a session and a UUID). */
      usesBootService: boolean;
      /** Set when bootstrap data exists but does not reach the host: why (never silent). */
      bootstrapNotDelivered?: string;
    }
  | { ok: false; message: string };

/** A configuration volume needs a slot beside the boot ISO's. */
const SLOTS_FOR_VOLUME = 2;

export function chooseDelivery(input: DeliveryInput): DeliveryChoice {
  const { request } = input;
  // The rule claiming applies too: such a host is only given this request by hand, or was claimed
  // before its capabilities were recorded. Refused before any BMC action, not midway.
  const lacks = missingBootCapability(input.capabilities, request);
  if (lacks) {
    return {
      ok: false,
      message: `this host's BMC cannot carry out a ${describeBoot(request)}: ${lacks} (status.hardwareDetails.bootCapabilities)`,
    };
  }
  const hasBootstrap = !!request.bootstrapDataSecretRef;
  const slots = input.capabilities?.virtualMediaSlots;
  const slotsText =
    slots === undefined
      ? "the BMC's virtual media slots are not known"
      : `the BMC has ${slots} loadable virtual media slot${slots === 1 ? "" : "s"}`;
  const secondSlot = (slots ?? 0) >= SLOTS_FOR_VOLUME && !request.configMediaURL;

  if (request.mode === HostBootMethod.Network) {
    const how =
      request.networkBootTarget === NetworkBootTarget.UefiHttp
        ? "the firmware HTTP-boots httpBootURI, an iPXE binary whose script chains to the boot service's iPXE script for this host"
        : "the site's DHCP/PXE chains to the boot service's iPXE script for this host";
    const target = request.configURL
      ? "the target OS reads configURL"
      : hasBootstrap
        ? "the target OS reads the bootstrap data from the boot service"
        : "the target OS gets no configuration";
    return {
      ok: true,
      delivery: BootDelivery.NetworkBoot,
      reason: `network boot: ${how}; the inspection image reports back, then ${target}`,
      usesBootService: true,
      ...(request.configURL && hasBootstrap
        ? { bootstrapNotDelivered: bothGiven(request.osFamily ?? "the target OS") }
        : {}),
    };
  }

  if (!request.osFamily) {
    // PreBakedISO: the ISO installs by itself; only the bootstrap data may need a way in.
    const unchanged = "no osFamily: the ISO boots unchanged";
    if (!hasBootstrap) {
      return {
        ok: true,
        delivery: BootDelivery.PreBakedISO,
        reason: `${unchanged}; there is no bootstrap data to deliver`,
        usesBootService: false,
      };
    }
    const cannot = "the bootstrap data cannot be delivered to a pre-baked ISO on this host:";
    if (request.configMediaURL) {
      return preBakedWithout(
        unchanged,
        `${cannot} the second slot holds spec.provisioning.configMediaURL`,
      );
    }
    if (!secondSlot) {
      return preBakedWithout(
        unchanged,
        `${cannot} ${slotsText}, and a cidata volume needs a second one`,
      );
    }
    if (!input.bootServiceConfigured) {
      return preBakedWithout(
        unchanged,
        `${cannot} the boot service is not configured (BESKAR7_BOOT_URL), so no cidata volume can be served`,
      );
    }
    return {
      ok: true,
      delivery: BootDelivery.ConfigVolume,
      reason: `${unchanged}; ${slotsText}: the bootstrap data goes as a cidata volume (cloud-init NoCloud user-data) on the second slot`,
      usesBootService: true,
    };
  }

  // RemoteConfig: the OS reads a kernel parameter or a volume.
  const family = request.osFamily;
  if (!isOsFamily(family)) return { ok: false, message: `unknown osFamily ${family}` };
  if (!request.configURL && !hasBootstrap) {
    return {
      ok: false,
      message: `${family} needs a configuration: set configURL, or provide bootstrap data (spec.provisioning.bootstrapDataSecretRef)`,
    };
  }
  const facts = OsBoot[family];
  const onCommandLine = `${family} reads ${facts.urlParameter} from the kernel command line`;
  if (request.configURL) {
    return {
      ok: true,
      delivery: BootDelivery.PatchedISO,
      reason: `${onCommandLine} and configURL is given: the stock ISO is patched with it`,
      usesBootService: true,
      ...(hasBootstrap ? { bootstrapNotDelivered: bothGiven(family) } : {}),
    };
  }
  const volume = facts.volume;
  if ("unsupported" in volume) {
    return patched(`${onCommandLine}; it reads no configuration volume (${volume.unsupported})`);
  }
  if (facts.volumeArgs.length > 0) {
    return patched(
      `${family} reads its ${volume.label} volume only with ${facts.volumeArgs.join(" ")} on the kernel command line, which an unchanged ISO lacks: the stock ISO is patched with ${facts.urlParameter}`,
    );
  }
  if (!secondSlot) {
    const why = request.configMediaURL
      ? "the second slot holds spec.provisioning.configMediaURL"
      : slotsText;
    return patched(`${onCommandLine}; ${why}: the stock ISO is patched`);
  }
  return {
    ok: true,
    delivery: BootDelivery.ConfigVolume,
    reason: `${family} reads a volume labelled ${volume.label} with no kernel argument; ${slotsText}: the ISO boots unchanged and the configuration goes as that volume on the second slot`,
    usesBootService: true,
  };
}

function describeBoot(request: HostProvisioning): string {
  return request.mode === HostBootMethod.Network
    ? `network boot (${request.networkBootTarget ?? NetworkBootTarget.Pxe})`
    : "virtual media boot";
}

function patched(reason: string): DeliveryChoice {
  return { ok: true, delivery: BootDelivery.PatchedISO, reason, usesBootService: true };
}

function preBakedWithout(unchanged: string, why: string): DeliveryChoice {
  return {
    ok: true,
    delivery: BootDelivery.PreBakedISO,
    reason: `${unchanged}; ${why}`,
    usesBootService: false,
    bootstrapNotDelivered: why,
  };
}

/** Both a configURL and bootstrap data: the OS reads one configuration, the configURL. */
function bothGiven(family: string): string {
  return `${family} reads one configuration at first boot and it is configURL; the Machine's bootstrap data is not given to it (omit configURL to boot from the bootstrap data, or include what it carries in the configuration at configURL)`;
}

/** The signal a delivery gives that the OS really booted what it was given, if any. */
export type BootSignal = "configFetched" | "reported";

/**
 * Where the OS fetches its configuration from the boot service (a patched ISO pointing at the
 * bootstrap endpoint) the fetch is the signal; a network boot's is the inspection report.
 * Otherwise (the user's configURL, a volume, a pre-baked ISO) nothing observable happens.
 */
export function bootSignalOf(
  request: HostProvisioning,
  delivery: BootDeliveryName | undefined,
): BootSignal | undefined {
  if (delivery === BootDelivery.NetworkBoot) return "reported";
  if (delivery === BootDelivery.PatchedISO && !request.configURL) return "configFetched";
  return undefined;
}
