// Per-host configuration volumes: the small ISO9660 image an OS finds by its label at first boot
// (cloud-init NoCloud "cidata" for Kairos, "metal-iso" for Talos, the "ignition" drive that
// combustion and Ignition read on openSUSE Leap Micro, OpenStack's "config-2" for Flatcar's
// OpenStack image). The label and paths come from os.ts; this file fills them with the host's
// bytes and lays the image out with iso9660/writer.ts, in memory, so the boot service can serve
// it (whole or by HTTP Range: it is a Buffer of known size) and the BMC can insert it as a
// second virtual medium next to the OS's own ISO.

import { buildIso, type IsoFile } from "./iso9660/writer";
import {
  BootConfigError,
  OpenStackConfigDrive,
  OsBoot,
  osFamily,
  type OsFamily,
  type VolumeLayout,
} from "./os";
import { createHash } from "node:crypto";

export type Bytes = Uint8Array | string;

export interface ConfigVolumeContent {
  /**
   * The configuration: cloud-config (kairos), machine configuration (talos), Ignition JSON
   * (flatcar: the OpenStack config drive), the combustion script (LeapMicro).
   */
  config?: Bytes;
  /** kairos: NoCloud meta-data; generated ("instance-id: ...") when absent. */
  metaData?: Bytes;
  /** LeapMicro: an Ignition config, written to ignition/config.ign next to the script. */
  ignition?: Bytes;
  /** Further files by path (e.g. combustion/id_ed25519.pub, which the script can copy). */
  extraFiles?: Readonly<Record<string, Bytes>>;
}

export interface ConfigVolumeOptions {
  /** kairos: the instance-id written into generated meta-data (default: derived from the config). */
  instanceId?: string;
  /** kairos: local-hostname written into generated meta-data. */
  hostname?: string;
  /** Timestamp written into the image (default now); fix it to get identical bytes. */
  date?: Date;
  /** Largest image accepted, in bytes (default 1 MiB: these volumes are a few KiB). */
  maxBytes?: number;
}

export interface ConfigVolume {
  label: string;
  /** The paths written, sorted. */
  files: string[];
  image: Buffer;
  size: number;
}

export const DEFAULT_VOLUME_MAX_BYTES = 1024 * 1024;

/**
 * Builds the configuration volume for an OS family. `flatcar` yields an OpenStack config-2 drive
 * (read by Flatcar's OpenStack image only: on bare metal use ignition.config.url instead).
 */
export function configVolume(
  family: OsFamily | string,
  content: ConfigVolumeContent,
  options: ConfigVolumeOptions = {},
): ConfigVolume {
  const os = osFamily(family);
  const facts = OsBoot[os];
  const layout: VolumeLayout = "unsupported" in facts.volume ? OpenStackConfigDrive : facts.volume;
  const files = new Map<string, Uint8Array>();
  const put = (path: string, data: Bytes) => {
    if (files.has(path))
      throw new BootConfigError(`configuration volume: "${path}" is given twice`);
    files.set(path, typeof data === "string" ? Buffer.from(data, "utf8") : data);
  };

  if (os === "LeapMicro") {
    if (content.config === undefined && content.ignition === undefined) {
      throw new BootConfigError(
        "LeapMicro volume: give a combustion script (config), an Ignition config, or both",
      );
    }
    if (content.config !== undefined) put(layout.configPath, content.config);
    if (content.ignition !== undefined) put(layout.otherPaths.ignition as string, content.ignition);
  } else {
    if (content.config === undefined)
      throw new BootConfigError(`${os} volume: the configuration (config) is required`);
    if (content.ignition !== undefined)
      throw new BootConfigError(`${os} volume: "ignition" is for LeapMicro only`);
    put(layout.configPath, content.config);
  }
  if (os === "kairos") {
    put(
      layout.otherPaths.metaData as string,
      content.metaData ?? noCloudMetaData(content.config as Bytes, options),
    );
  } else if (content.metaData !== undefined) {
    throw new BootConfigError(`${os} volume: "metaData" is for kairos (cloud-init NoCloud) only`);
  }
  for (const [path, data] of Object.entries(content.extraFiles ?? {})) put(path, data);

  const isoFiles: IsoFile[] = [...files].map(([path, data]) => ({ path, data }));
  const image = buildIso(isoFiles, {
    label: layout.label,
    date: options.date,
    maxBytes: options.maxBytes ?? DEFAULT_VOLUME_MAX_BYTES,
  });
  return { label: layout.label, files: [...files.keys()].sort(), image, size: image.length };
}

/**
 * cloud-init's NoCloud needs meta-data with an instance-id; a new id makes it run its per-instance
 * modules again, so it is derived from the user-data (same config, same id) unless given.
 */
function noCloudMetaData(userData: Bytes, options: ConfigVolumeOptions): string {
  const id =
    options.instanceId ??
    `beskar7-${createHash("sha256").update(userData).digest("hex").slice(0, 16)}`;
  for (const [key, value] of [
    ["instanceId", id],
    ["hostname", options.hostname ?? ""],
  ] as const) {
    if (!/^[A-Za-z0-9_.:-]*$/.test(value)) {
      throw new BootConfigError(
        `kairos volume: ${key} ${JSON.stringify(value)} may hold only letters, digits and . _ : -`,
      );
    }
  }
  return `instance-id: ${id}\n` + (options.hostname ? `local-hostname: ${options.hostname}\n` : "");
}
