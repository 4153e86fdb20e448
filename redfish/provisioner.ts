// The PhysicalHost controller's port onto one system of one BMC: a few provisioning verbs built
// from the system operations, each safe to re-run after a failed reconcile.
import type {
  BmcProvisioner,
  NetworkBootRequest,
  ProvisioningBootResult,
  RedfishClient,
  VirtualMediaBootRequest,
} from "./api";
import type { HostInventory, InsertMediaResult, PowerOffOptions, PowerState } from "./types";

export interface ProvisionerOptions {
  systemId?: string;
  /** Called by close(); the pool passes its release hook. Without it, close() closes the client. */
  release?: () => Promise<void> | void;
}

export function createProvisioner(
  client: RedfishClient,
  options: ProvisionerOptions = {},
): BmcProvisioner {
  const system = client.system(options.systemId);

  /** Starts the host so the override just set is used: power on if off, else force a restart. */
  async function start(): Promise<"On" | "Restart"> {
    if ((await system.powerState()) === "Off") {
      await system.powerOn();
      return "On";
    }
    await system.restart({ force: true });
    return "Restart";
  }

  return {
    enroll: (): Promise<HostInventory> => system.inventory(),
    inventory: (): Promise<HostInventory> => system.inventory(),
    powerState: (): Promise<PowerState> => system.powerState(),
    powerOn: () => system.powerOn(),
    powerOff: (powerOptions?: PowerOffOptions) => system.powerOff(powerOptions),
    reset: (resetOptions?: { force?: boolean }) => system.restart(resetOptions),

    async bootFromVirtualMedia(request: VirtualMediaBootRequest): Promise<ProvisioningBootResult> {
      // Stale media from an earlier attempt would occupy the slots; images already in place are
      // kept by insertMedia's idempotence check, so eject only what differs.
      const slots = await system.virtualMedia();
      const wanted = new Set([request.isoUrl, request.configUrl].filter(Boolean));
      for (const slot of slots) {
        if (slot.inserted && (!slot.image || !wanted.has(slot.image))) {
          await system.ejectMedia({ slot: slot.path });
        }
      }
      const media: InsertMediaResult[] = [];
      media.push(
        await system.insertMedia({
          image: request.isoUrl,
          kind: "cd",
          imageCredentials: request.imageCredentials,
        }),
      );
      if (request.configUrl) {
        media.push(
          await system.insertMedia({
            image: request.configUrl,
            kind: "usb",
            imageCredentials: request.imageCredentials,
          }),
        );
      }
      // Last, so no later step can reset it; setBootOverride reads it back.
      const boot = await system.setBootOverride({ target: "Cd", mode: request.mode });
      const powerAction = await start();
      return { media, boot, powerAction };
    },

    async bootFromNetwork(request: NetworkBootRequest): Promise<ProvisioningBootResult> {
      const boot = await system.setBootOverride({
        target: request.target,
        httpBootUri: request.httpBootUri,
        mode: request.mode,
      });
      const powerAction = await start();
      return { media: [], boot, powerAction };
    },

    async deprovision(): Promise<void> {
      await system.ejectMedia();
      await system.clearBootOverride();
      // The host is being torn down: no point waiting for a graceful OS shutdown.
      await system.powerOff({ force: true });
    },

    async close(): Promise<void> {
      if (options.release) await options.release();
      else await client.close();
    },
  };
}
