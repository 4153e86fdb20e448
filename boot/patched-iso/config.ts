// Writes kernel arguments into boot loader configuration text: GRUB's linux/linuxefi/linux16 lines
// and isolinux/syslinux APPEND lines. Arguments go at the end of each kernel line (after a
// backslash-continued line's last part), keeping the line ending and everything else byte for
// byte. GRUB parses its lines like a shell, so an argument holding GRUB's special characters
// (cloud-init's `ds=nocloud;s=…`, a `$`, quotes) is single-quoted for GRUB, which hands the kernel
// the literal text; isolinux passes APPEND text to the kernel as it is. Arguments carrying a
// newline, carriage return or NUL are refused: they would add lines of their own to the file.
import { KernelArgumentsError } from "./errors";

export type ConfigDialect = "grub" | "isolinux";

export interface PatchedConfig {
  text: Buffer;
  /** How many kernel lines got the arguments. */
  lines: number;
}

const GRUB_KERNEL = /^\s*(linux|linuxefi|linux16)\s+\S/;
const ISOLINUX_APPEND = /^\s*append(\s|$)/i;

/** Checks the arguments and returns them as one string for `dialect`. */
export function encodeArguments(args: readonly string[], dialect: ConfigDialect): string {
  for (const arg of args) {
    if (/[\r\n\0]/.test(arg)) {
      throw new KernelArgumentsError(
        `kernel argument ${JSON.stringify(arg)} holds a line break or NUL, which a boot loader configuration cannot carry`,
      );
    }
  }
  const words = args.filter(arg => arg.trim() !== "");
  if (dialect === "isolinux") return words.join(" ");
  return words
    .map(arg => (/^[A-Za-z0-9_.,:/=+@%^~-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`))
    .join(" ");
}

/**
 * `text` with `encoded` (from encodeArguments) appended to every kernel line. The text is handled
 * as bytes, so a file in any ASCII-compatible encoding keeps every byte it had.
 */
export function patchConfigText(
  text: Buffer,
  encoded: string,
  dialect: ConfigDialect,
): PatchedConfig {
  if (encoded === "") return { text, lines: 0 };
  const source = text.toString("latin1");
  const lines = source.split("\n");
  const kernelLine = dialect === "grub" ? GRUB_KERNEL : ISOLINUX_APPEND;
  // The file is handled as latin1 (one char per byte), so the arguments' UTF-8 bytes go in as such.
  const insert = Buffer.from(encoded, "utf8").toString("latin1");
  let patched = 0;
  for (let i = 0; i < lines.length; i++) {
    if (!kernelLine.test(lines[i]!)) continue;
    // A GRUB line ending in a backslash continues on the next one; the arguments go at the end.
    let last = i;
    while (dialect === "grub" && /\\\r?$/.test(lines[last]!) && last + 1 < lines.length) last++;
    const line = lines[last]!;
    const body = line.replace(/\s+$/, "");
    lines[last] = `${body} ${insert}${line.slice(body.length)}`;
    patched++;
    i = last;
  }
  return { text: Buffer.from(lines.join("\n"), "latin1"), lines: patched };
}
