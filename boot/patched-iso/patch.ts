// Plans a per-host patched installer ISO: finds the boot loader configuration in a stock image,
// writes the host's kernel arguments into every kernel line, and returns the result as an Overlay
// of a few small patches over the unchanged source.
//
// The patched image keeps the source's size and layout. A configuration file may only grow into
// the slack of its last 2048-byte sector (or, inside the EFI boot image's FAT, of its last
// cluster); its recorded length is rewritten in place in every directory record that names it
// (primary, Joliet and enhanced trees, both-endian) or in its FAT directory entry. Every file is
// checked before any patch is returned, so an image is either patched in full or refused with an
// IsoRoomError naming the file, the ISO and the shortfall — never half-patched.
//
// Searched: GRUB at /boot/grub/grub.cfg, /boot/grub2/grub.cfg, /EFI/BOOT/grub.cfg; isolinux at
// /isolinux/isolinux.cfg, /boot/isolinux/isolinux.cfg, /syslinux/syslinux.cfg,
// /boot/syslinux/syslinux.cfg; plus files they pull in with isolinux `include`/`menu include` and
// GRUB `source`/`configfile` by a literal path; plus /EFI/BOOT/grub.cfg and /boot/grub/grub.cfg
// inside each El Torito EFI boot image. Names match case-insensitively. The ISO's own checksum
// lists (/md5sum.txt, /sha256sum.txt, …) get the patched files' new digests, in place.
import { CHECKSUM_LISTS, checksumEdits } from "./checksums";
import { encodeArguments, patchConfigText, type ConfigDialect } from "./config";
import { IsoFormatError, IsoNoBootConfigError, IsoRoomError } from "./errors";
import { findFatFile } from "./fat";
import { IsoReader, readBootCatalog, SECTOR, type DirectoryEntry } from "./iso9660";
import { Overlay, type Patch } from "./overlay";
import type { RandomAccessSource } from "./source";

export const GRUB_CONFIG_PATHS = [
  "/boot/grub/grub.cfg",
  "/boot/grub2/grub.cfg",
  "/EFI/BOOT/grub.cfg",
];
export const ISOLINUX_CONFIG_PATHS = [
  "/isolinux/isolinux.cfg",
  "/boot/isolinux/isolinux.cfg",
  "/syslinux/syslinux.cfg",
  "/boot/syslinux/syslinux.cfg",
];
const EFI_IMAGE_CONFIG_PATHS = ["/EFI/BOOT/grub.cfg", "/boot/grub/grub.cfg"];
const MAX_CONFIG_BYTES = 1024 * 1024;
const MAX_CONFIG_FILES = 64;
const MAX_CHECKSUM_LIST_BYTES = 16 * 1024 * 1024;

export interface PatchIsoOptions {
  /** The kernel arguments, one parameter per element (`console=ttyS0,115200`). */
  kernelArguments: readonly string[];
  /** The ISO's name in messages (its URL or file name). */
  name?: string;
  /** Patch grub.cfg inside El Torito EFI boot images too (default true). */
  efiImage?: boolean;
}

export interface PatchedFile {
  /** Path in the ISO, or in the EFI boot image when `inEfiImage`. */
  path: string;
  inEfiImage: boolean;
  dialect: ConfigDialect;
  /** Kernel lines that got the arguments (0: the file has none and is unchanged). */
  lines: number;
  oldSize: number;
  newSize: number;
  /** Bytes the file could have grown by. */
  room: number;
}

export interface PatchedIso {
  name: string;
  /** The patched image: same size as the source; read(offset, length) serves any range. */
  image: Overlay;
  files: PatchedFile[];
  /** Checksum lists (/md5sum.txt, …) whose entries for patched files were rewritten. */
  checksums: Array<{ list: string; files: string[] }>;
  /** Things an operator may want to know (an EFI image that is not FAT, for instance). */
  notes: string[];
}

interface Target {
  path: string;
  inEfiImage: boolean;
  dialect: ConfigDialect;
  content: Buffer;
  /** Where the file's bytes may go, in file order: its allocation, not only its length. */
  runs: Array<{ offset: number; length: number }>;
  /** Absolute offsets where the new size must be written, and how. */
  sizeFields: Array<{
    offset: number;
    format: "both-endian" | "le32";
    /** Bytes of the file in the extents recorded before this one (multi-extent files). */
    prefix: number;
  }>;
}

/** Literal paths a configuration pulls in, resolved against its own directory. */
function includedPaths(text: string, dialect: ConfigDialect, from: string): string[] {
  const pattern =
    dialect === "isolinux"
      ? /^\s*(?:menu\s+)?include\s+(\S+)/gim
      : /^\s*(?:source|configfile)\s+["']?([^\s"';]+)/gm;
  const directory = from.slice(0, from.lastIndexOf("/"));
  const out: string[] = [];
  for (const match of text.matchAll(pattern)) {
    const ref = match[1]!;
    if (/[$()]/.test(ref)) continue;
    // GRUB resolves from the root of the boot device; isolinux from the config's directory.
    out.push(ref.startsWith("/") ? ref : dialect === "grub" ? `/${ref}` : `${directory}/${ref}`);
  }
  return out;
}

async function isoTargets(reader: IsoReader, notes: string[]): Promise<Target[]> {
  const byExtent = new Map<number, Target>();
  const queue: Array<{ path: string; dialect: ConfigDialect }> = [
    ...GRUB_CONFIG_PATHS.map(path => ({ path, dialect: "grub" as const })),
    ...ISOLINUX_CONFIG_PATHS.map(path => ({ path, dialect: "isolinux" as const })),
  ];
  const seen = new Set<string>();
  while (queue.length > 0 && byExtent.size < MAX_CONFIG_FILES) {
    const { path, dialect } = queue.shift()!;
    if (seen.has(path.toLowerCase())) continue;
    seen.add(path.toLowerCase());
    let found: DirectoryEntry | undefined;
    const sizeFields: Target["sizeFields"] = [];
    for (const tree of reader.volume.trees) {
      const entry = await reader.lookup(tree, path);
      if (!entry || entry.isDirectory || entry.size === 0) continue;
      if (found && entry.extents[0]!.offset !== found.extents[0]!.offset) continue;
      found ??= entry;
      const last = entry.extents.at(-1)!;
      sizeFields.push({
        offset: last.recordOffset + 10,
        format: "both-endian",
        prefix: entry.size - last.length,
      });
    }
    if (!found) continue;
    if (found.compressed) {
      notes.push(`${path} left as it is: its data is zisofs-compressed`);
      continue;
    }
    const key = found.extents[0]!.offset;
    const existing = byExtent.get(key);
    if (existing) {
      existing.sizeFields.push(
        ...sizeFields.filter(f => !existing.sizeFields.some(e => e.offset === f.offset)),
      );
      continue;
    }
    if (found.size > MAX_CONFIG_BYTES) continue;
    const content = await reader.readFile(found);
    const last = found.extents.at(-1)!;
    byExtent.set(key, {
      path,
      inEfiImage: false,
      dialect,
      content,
      runs: [
        ...found.extents.slice(0, -1).map(e => ({ offset: e.offset, length: e.length })),
        { offset: last.offset, length: Math.ceil(last.length / SECTOR) * SECTOR },
      ],
      sizeFields,
    });
    for (const included of includedPaths(content.toString("latin1"), dialect, path)) {
      queue.push({ path: included, dialect });
    }
  }
  return [...byExtent.values()];
}

async function efiTargets(reader: IsoReader, notes: string[]): Promise<Target[]> {
  const catalog = reader.volume.bootCatalogOffset;
  if (catalog === undefined) return [];
  const targets: Target[] = [];
  const images = new Set<number>();
  for (const entry of await readBootCatalog(reader.source, catalog)) {
    if (entry.platform !== "efi" || images.has(entry.offset)) continue;
    images.add(entry.offset);
    for (const path of EFI_IMAGE_CONFIG_PATHS) {
      let file;
      try {
        file = await findFatFile(reader.source, entry.offset, path);
      } catch (err) {
        if (!(err instanceof IsoFormatError)) throw err;
        notes.push(`EFI boot image at byte ${entry.offset} left as it is: ${err.message}`);
        break;
      }
      if (!file || file.size === 0 || file.size > MAX_CONFIG_BYTES) continue;
      const parts: Buffer[] = [];
      let left = file.size;
      for (const run of file.runs) {
        if (left === 0) break;
        const take = Math.min(left, run.length);
        parts.push(await reader.source.read(run.offset, take));
        left -= take;
      }
      targets.push({
        path,
        inEfiImage: true,
        dialect: "grub",
        content: Buffer.concat(parts),
        runs: file.runs,
        sizeFields: [{ offset: file.sizeFieldOffset, format: "le32", prefix: 0 }],
      });
    }
  }
  return targets;
}

/** Patches writing `bytes` at `at` in a file whose bytes lie in `runs` (in file order). */
function filePatches(runs: Target["runs"], at: number, bytes: Buffer): Patch[] {
  const patches: Patch[] = [];
  let fileOffset = 0;
  for (const run of runs) {
    const runEnd = fileOffset + run.length;
    const from = Math.max(at, fileOffset);
    const to = Math.min(at + bytes.length, runEnd);
    if (from < to) {
      patches.push({
        offset: run.offset + (from - fileOffset),
        bytes: bytes.subarray(from - at, to - at),
      });
    }
    fileOffset = runEnd;
  }
  return patches;
}

/** Patches writing `next` over `target`'s old content, from the first byte that differs. */
function contentPatches(target: Target, next: Buffer): Patch[] {
  let first = 0;
  while (first < target.content.length && target.content[first] === next[first]) first++;
  return filePatches(target.runs, first, next.subarray(first));
}

interface LoadedChecksumList {
  path: string;
  algorithm: (typeof CHECKSUM_LISTS)[number]["algorithm"];
  content: Buffer;
  runs: Target["runs"];
}

/** The ISO's checksum lists, read once per image. */
async function loadChecksumLists(reader: IsoReader): Promise<LoadedChecksumList[]> {
  const lists: LoadedChecksumList[] = [];
  const seen = new Set<number>();
  for (const list of CHECKSUM_LISTS) {
    let entry: DirectoryEntry | undefined;
    for (const tree of reader.volume.trees) {
      entry ??= await reader.lookup(tree, list.path);
    }
    if (!entry || entry.isDirectory || entry.size === 0 || entry.size > MAX_CHECKSUM_LIST_BYTES) {
      continue;
    }
    if (seen.has(entry.extents[0]!.offset)) continue;
    seen.add(entry.extents[0]!.offset);
    lists.push({ ...list, content: await reader.readFile(entry), runs: entry.extents });
  }
  return lists;
}

/** Patches that put the patched files' new digests into the ISO's checksum lists. */
function checksumPatches(
  lists: readonly LoadedChecksumList[],
  changed: ReadonlyMap<string, Buffer>,
): { patches: Patch[]; checksums: PatchedIso["checksums"] } {
  const patches: Patch[] = [];
  const checksums: PatchedIso["checksums"] = [];
  if (changed.size === 0) return { patches, checksums };
  for (const list of lists) {
    const edits = checksumEdits(list.content, list.algorithm, changed);
    if (edits.length === 0) continue;
    for (const edit of edits) patches.push(...filePatches(list.runs, edit.offset, edit.digest));
    checksums.push({ list: list.path, files: edits.map(e => e.path) });
  }
  return { patches, checksums };
}

function sizePatches(target: Target, size: number): Patch[] {
  return target.sizeFields.map(field => {
    if (field.format === "le32") {
      const bytes = Buffer.alloc(4);
      bytes.writeUInt32LE(size);
      return { offset: field.offset, bytes };
    }
    // ISO9660 records the last extent's length, both-endian.
    const bytes = Buffer.alloc(8);
    bytes.writeUInt32LE(size - field.prefix, 0);
    bytes.writeUInt32BE(size - field.prefix, 4);
    return { offset: field.offset, bytes };
  });
}

/**
 * What an image offers for patching, read once: its configuration files, where they may grow, and
 * its checksum lists. `patch` then makes any number of per-host overlays without reading the
 * source again (a boot service serving one imageURL to many hosts inspects it once).
 */
export class IsoInspection {
  constructor(
    readonly name: string,
    readonly source: RandomAccessSource,
    private readonly targets: readonly Target[],
    private readonly checksumLists: readonly LoadedChecksumList[],
    /** Things an operator may want to know (an EFI image that is not FAT, for instance). */
    readonly notes: readonly string[],
  ) {}

  /** The configuration files found, with their sizes and room. */
  get files(): Array<{
    path: string;
    inEfiImage: boolean;
    dialect: ConfigDialect;
    size: number;
    room: number;
  }> {
    return this.targets.map(t => ({
      path: t.path,
      inEfiImage: t.inEfiImage,
      dialect: t.dialect,
      size: t.content.length,
      room: t.runs.reduce((sum, run) => sum + run.length, 0) - t.content.length,
    }));
  }

  /**
   * The image with `kernelArguments` in its boot loader configuration. Throws IsoRoomError (a
   * file has no room), IsoNoBootConfigError (no kernel line found) or KernelArgumentsError (an
   * argument with a line break); never returns a half-patched image.
   */
  patch(kernelArguments: readonly string[]): PatchedIso {
    const name = this.name;
    const encoded = {
      grub: encodeArguments(kernelArguments, "grub"),
      isolinux: encodeArguments(kernelArguments, "isolinux"),
    };
    const files: PatchedFile[] = [];
    const patches: Patch[] = [];
    const changed = new Map<string, Buffer>();
    for (const target of this.targets) {
      const { text, lines } = patchConfigText(
        target.content,
        encoded[target.dialect],
        target.dialect,
      );
      const allocated = target.runs.reduce((sum, run) => sum + run.length, 0);
      const room = allocated - target.content.length;
      files.push({
        path: target.path,
        inEfiImage: target.inEfiImage,
        dialect: target.dialect,
        lines,
        oldSize: target.content.length,
        newSize: text.length,
        room,
      });
      if (lines === 0) continue;
      const needed = text.length - target.content.length;
      if (needed > room) {
        const file = target.inEfiImage ? `${target.path} (in the EFI boot image)` : target.path;
        throw new IsoRoomError(file, name, room, needed);
      }
      patches.push(...contentPatches(target, text), ...sizePatches(target, text.length));
      if (!target.inEfiImage) changed.set(target.path, text);
    }
    const anyArguments = encoded.grub !== "" || encoded.isolinux !== "";
    if (anyArguments && !files.some(f => f.lines > 0)) {
      const searched = [...GRUB_CONFIG_PATHS, ...ISOLINUX_CONFIG_PATHS].join(", ");
      const found =
        files.length > 0 ? `; found ${files.map(f => f.path).join(", ")} without one` : "";
      throw new IsoNoBootConfigError(
        `${name} has no GRUB linux line or isolinux APPEND line to carry kernel arguments ` +
          `(searched ${searched} and the EFI boot image${found})` +
          this.notes.map(note => `; ${note}`).join(""),
      );
    }
    const listed = checksumPatches(this.checksumLists, changed);
    patches.push(...listed.patches);
    return {
      name,
      image: new Overlay(this.source, patches),
      files,
      checksums: listed.checksums,
      notes: [...this.notes],
    };
  }
}

/** Reads what `source` offers for patching. Throws IsoFormatError when it is not ISO9660. */
export async function inspectIso(
  source: RandomAccessSource,
  options: Omit<PatchIsoOptions, "kernelArguments"> = {},
): Promise<IsoInspection> {
  const name = options.name ?? "the ISO";
  const reader = await IsoReader.open(source, name);
  const notes: string[] = [];
  const targets = [
    ...(await isoTargets(reader, notes)),
    ...(options.efiImage === false ? [] : await efiTargets(reader, notes)),
  ];
  return new IsoInspection(name, source, targets, await loadChecksumLists(reader), notes);
}

/**
 * The source ISO with `kernelArguments` in its boot loader configuration: inspectIso, then
 * patch. Throws IsoFormatError (not ISO9660), IsoRoomError (a file has no room),
 * IsoNoBootConfigError (no kernel line found) or KernelArgumentsError (an argument with a line
 * break).
 */
export async function patchIso(
  source: RandomAccessSource,
  options: PatchIsoOptions,
): Promise<PatchedIso> {
  return (await inspectIso(source, options)).patch(options.kernelArguments);
}
