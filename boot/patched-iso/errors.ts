// The errors a patched ISO can end in, each one a sentence an operator can act on: the image is not
// ISO9660, its boot loader configuration has no room for the kernel arguments (naming the file, the
// ISO and the shortfall), or nothing in it could carry them. Conditions quote `message` verbatim.

/** The source is not an ISO9660 image, or its structures are damaged. */
export class IsoFormatError extends Error {
  override readonly name = "IsoFormatError";
}

/** A configuration file's allocated sectors cannot hold the patched content. */
export class IsoRoomError extends Error {
  override readonly name = "IsoRoomError";
  constructor(
    readonly file: string,
    readonly isoName: string,
    readonly room: number,
    readonly needed: number,
  ) {
    super(
      `${file} in ${isoName} has ${room} bytes of room, the arguments need ${needed} ` +
        `(${needed - room} bytes short)`,
    );
  }
}

/** The image carries no GRUB or isolinux configuration with a kernel line to patch. */
export class IsoNoBootConfigError extends Error {
  override readonly name = "IsoNoBootConfigError";
}

/** Kernel arguments that would change the configuration's meaning (a newline, a NUL). */
export class KernelArgumentsError extends Error {
  override readonly name = "KernelArgumentsError";
}
