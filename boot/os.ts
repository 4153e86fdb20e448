// What each supported operating system reads at first boot: the kernel parameter that carries a
// configuration URL, and the label and file paths of a configuration volume it finds by itself.
//
// This is the one table both the kernel-argument renderer (render.ts) and the configuration
// volume builder (config-volume.ts) read, so the two can never disagree about an OS. Every entry
// is checked against the OS's own documentation; docs/boot.md cites the pages. The values of
// OsFamily are those of capabilities/api/constants.ts (OSFamily), repeated here because boot/ is
// a standalone library that imports nothing of the operator.

export const OsFamilies = ["kairos", "talos", "flatcar", "LeapMicro"] as const;
export type OsFamily = (typeof OsFamilies)[number];

export function isOsFamily(value: unknown): value is OsFamily {
  return typeof value === "string" && (OsFamilies as readonly string[]).includes(value);
}

/** Throws a BootConfigError naming the accepted values when `value` is not an OS family. */
export function osFamily(value: unknown): OsFamily {
  if (isOsFamily(value)) return value;
  throw new BootConfigError(
    `unknown OS family ${JSON.stringify(value)}: expected one of ${OsFamilies.join(", ")}`,
  );
}

export class BootConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BootConfigError";
  }
}

export interface OsBootFacts {
  /** Kernel arguments always passed, before the configuration's. */
  fixedArgs: readonly string[];
  /** The parameter whose value is the configuration URL. */
  urlParameter: string;
  /**
   * Parameters that look right but the OS does not read (earlier Beskar7 manifests used them);
   * given as extra arguments they are refused with the real name.
   */
  wrongParameters: readonly string[];
  /** The configuration volume this OS finds by label, or why there is none on bare metal. */
  volume: VolumeLayout | { unsupported: string };
  /** Kernel arguments that make the OS look for the volume (none when it looks anyway). */
  volumeArgs: readonly string[];
}

export interface VolumeLayout {
  label: string;
  /** The file holding the configuration (cloud-config, machine config, Ignition, script). */
  configPath: string;
  /** Further files the OS reads from the volume, by role. */
  otherPaths: Readonly<Record<string, string>>;
}

export const OsBoot: Readonly<Record<OsFamily, OsBootFacts>> = {
  // Kairos: config_url on the command line (installer and live system); or a cloud-init NoCloud
  // volume labelled "cidata" with user-data and meta-data, which the live ISO picks up.
  kairos: {
    fixedArgs: [],
    urlParameter: "config_url",
    wrongParameters: [],
    volume: { label: "cidata", configPath: "user-data", otherPaths: { metaData: "meta-data" } },
    volumeArgs: [],
  },
  // Talos: talos.platform=metal with talos.config=<url> (Talos fills ${uuid}, ${serial}, ${mac},
  // ${hostname} in the URL's query values); or talos.config=metal-iso and a filesystem labelled
  // "metal-iso" with config.yaml at its root.
  talos: {
    fixedArgs: ["talos.platform=metal"],
    urlParameter: "talos.config",
    wrongParameters: [],
    volume: { label: "metal-iso", configPath: "config.yaml", otherPaths: {} },
    volumeArgs: ["talos.config=metal-iso"],
  },
  // Flatcar: Ignition runs when flatcar.first_boot is set and fetches ignition.config.url. The
  // name flatcar.ignition.config.url does not exist. On bare metal Ignition reads no volume; a
  // "config-2" drive with openstack/latest/user_data is read only by Flatcar's OpenStack image.
  flatcar: {
    fixedArgs: ["flatcar.first_boot=1"],
    urlParameter: "ignition.config.url",
    wrongParameters: ["flatcar.ignition.config.url"],
    volume: {
      unsupported:
        "Flatcar's bare-metal image reads its Ignition config only from ignition.config.url; a config-2 drive is read only by its OpenStack image",
    },
    volumeArgs: [],
  },
  // openSUSE Leap Micro: combustion fetches a script from combustion.url, or copies a drive
  // labelled "combustion" or (the fallback shared with Ignition) "ignition" that holds
  // combustion/script and/or ignition/config.ign. combustion.path does not exist.
  LeapMicro: {
    fixedArgs: [],
    urlParameter: "combustion.url",
    wrongParameters: ["combustion.path"],
    volume: {
      label: "ignition",
      configPath: "combustion/script",
      otherPaths: { ignition: "ignition/config.ign" },
    },
    volumeArgs: [],
  },
};

/**
 * The config-2 layout Ignition's OpenStack provider (and coreos-cloudinit before it) reads:
 * usable with Flatcar's OpenStack image, not its bare-metal one (see OsBoot.flatcar).
 */
export const OpenStackConfigDrive: VolumeLayout = {
  label: "config-2",
  configPath: "openstack/latest/user_data",
  otherPaths: {},
};
