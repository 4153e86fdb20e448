// The patched-ISO library's public surface: a stock installer ISO served with per-host kernel
// arguments in its boot loader configuration, as an overlay over the unchanged source, and the
// HTTP Range logic that serves it. Standalone: node built-ins only, like redfish/.
export { bufferSource, fileSource, httpSource, readInto, type RandomAccessSource } from "./source";
export { IsoFormatError, IsoNoBootConfigError, IsoRoomError, KernelArgumentsError } from "./errors";
export { Overlay, applyPatches, type Patch } from "./overlay";
export {
  inspectIso,
  IsoInspection,
  patchIso,
  type PatchIsoOptions,
  type PatchedFile,
  type PatchedIso,
} from "./patch";
export { encodeArguments, patchConfigText, type ConfigDialect } from "./config";
export {
  parseRange,
  sendBody,
  serveRange,
  type ByteRange,
  type ParsedRange,
  type RangeResponse,
  type ServeRangeOptions,
} from "./range";
