// Public API of the boot library: what an OS reads at first boot (os.ts), the kernel arguments
// Beskar7 serves for it (render.ts), and the per-host configuration volume (config-volume.ts,
// built by iso9660/writer.ts). Like redfish/, it knows nothing of Kubernetes or Pepr; the boot
// service and the controllers import only this file.
export {
  BootConfigError,
  OpenStackConfigDrive,
  OsBoot,
  OsFamilies,
  isOsFamily,
  osFamily,
  type OsBootFacts,
  type OsFamily,
  type VolumeLayout,
} from "./os";
export {
  MAX_COMMAND_LINE,
  checkKernelArg,
  kernelSafeUrl,
  renderBoot,
  type BootHost,
  type BootRequest,
  type ConfigLocation,
  type RenderedBoot,
} from "./render";
export {
  DEFAULT_VOLUME_MAX_BYTES,
  configVolume,
  type Bytes,
  type ConfigVolume,
  type ConfigVolumeContent,
  type ConfigVolumeOptions,
} from "./config-volume";
export { IsoError, SECTOR, buildIso, type IsoFile, type IsoOptions } from "./iso9660/writer";
export {
  BootPaths,
  TOKEN_KEY_BYTES,
  bootToken,
  bootURL,
  canonicalUUID,
  newSessionId,
  newTokenKey,
  verifyBootToken,
  type BootSession,
  type TokenPurpose,
} from "./session";
