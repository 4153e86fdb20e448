// Just enough of an ISO9660 reader to find files in an installer image without downloading it.
//
// It reads the volume descriptor set (primary, supplementary/Joliet, enhanced, El Torito boot
// record), walks directories along one path at a time (never the whole tree), and matches names
// case-insensitively by their ISO9660, Joliet or Rock Ridge spelling. Every multi-byte field that
// ISO9660 records both-endian is read from its little-endian half and checked against the
// big-endian one, so a damaged or non-ISO image fails with a clear IsoFormatError instead of
// garbage. Files recorded in several extents (multi-extent, > 4 GiB) come back as a list of
// extents. The absolute positions of each directory record are kept, because a patch that grows a
// file must rewrite the record's data length in place.
import { IsoFormatError } from "./errors";
import type { RandomAccessSource } from "./source";

export const SECTOR = 2048;
const DESCRIPTORS_START = 16 * SECTOR;
const MAX_DESCRIPTORS = 64;
const MAX_DIRECTORY_BYTES = 16 * 1024 * 1024;

/** One contiguous run of a file's bytes. */
export interface Extent {
  /** Byte offset of the extent in the image. */
  offset: number;
  length: number;
  /** Byte offset of the directory record that describes this extent. */
  recordOffset: number;
}

export interface DirectoryEntry {
  /** The name as the tree spells it (Rock Ridge name where present, version suffix removed). */
  name: string;
  /** Every spelling the entry answers to, lower case. */
  names: string[];
  isDirectory: boolean;
  /** Rock Ridge says the data is zisofs-compressed: the extents hold compressed bytes. */
  compressed: boolean;
  extents: Extent[];
  /** Sum of the extents' lengths. */
  size: number;
}

export interface DirectoryTree {
  kind: "primary" | "joliet" | "enhanced";
  root: DirectoryEntry;
}

export interface IsoVolume {
  /** Blocks in the volume, times the block size: where the ISO9660 part ends. */
  volumeBytes: number;
  trees: DirectoryTree[];
  /** Byte offset of the El Torito boot catalog, when the image has one. */
  bootCatalogOffset?: number;
}

function bothEndian32(buf: Buffer, at: number, what: string): number {
  const le = buf.readUInt32LE(at);
  const be = buf.readUInt32BE(at + 4);
  if (le !== be) throw new IsoFormatError(`${what}: both-endian halves differ (${le} ≠ ${be})`);
  return le;
}

function bothEndian16(buf: Buffer, at: number, what: string): number {
  const le = buf.readUInt16LE(at);
  const be = buf.readUInt16BE(at + 2);
  if (le !== be) throw new IsoFormatError(`${what}: both-endian halves differ (${le} ≠ ${be})`);
  return le;
}

function decodeName(raw: Buffer, joliet: boolean): string {
  if (raw.length === 1 && (raw[0] === 0 || raw[0] === 1)) return raw[0] === 0 ? "." : "..";
  let name: string;
  if (joliet) {
    const chars: string[] = [];
    for (let i = 0; i + 1 < raw.length; i += 2)
      chars.push(String.fromCharCode(raw.readUInt16BE(i)));
    name = chars.join("");
  } else {
    name = raw.toString("latin1");
  }
  // "GRUB.CFG;1" → "GRUB.CFG"; a name without an extension keeps a trailing dot in ISO9660.
  name = name.replace(/;\d+$/, "");
  if (name.endsWith(".") && name.length > 1) name = name.slice(0, -1);
  return name;
}

/**
 * What the Rock Ridge entries in a record's system use area say: the alternate name (NM) and
 * whether the file's data is zisofs-compressed (ZF), which a byte patch must not touch.
 */
function rockRidge(record: Buffer, nameLength: number): { name?: string; compressed: boolean } {
  let at = 33 + nameLength + (nameLength % 2 === 0 ? 1 : 0);
  let name = "";
  let naming = true;
  let compressed = false;
  while (at + 4 <= record.length) {
    const length = record[at + 2]!;
    if (length < 4 || at + length > record.length) break;
    const signature = record.toString("latin1", at, at + 2);
    if (signature === "NM" && naming) {
      const flags = record[at + 4]!;
      // Flags 2 and 4 name "." and ".."; their entries carry no text. Flag 1: continued.
      if ((flags & 6) === 0) name += record.toString("utf8", at + 5, at + length);
      naming = (flags & 1) !== 0;
    } else if (signature === "ZF") {
      compressed = true;
    } else if (signature === "ST") {
      break;
    }
    at += length;
  }
  return { ...(name ? { name } : {}), compressed };
}

interface RawRecord {
  name: string;
  names: string[];
  isDirectory: boolean;
  compressed: boolean;
  multiExtent: boolean;
  extent: Extent;
}

function parseRecord(
  sector: Buffer,
  at: number,
  absolute: number,
  joliet: boolean,
  blockSize: number,
): RawRecord {
  const length = sector[at]!;
  if (length < 34 || at + length > sector.length) {
    throw new IsoFormatError(`directory record at byte ${absolute} has a bad length (${length})`);
  }
  const record = sector.subarray(at, at + length);
  const extentAttrLength = record[1]!;
  const block = bothEndian32(record, 2, `directory record at byte ${absolute}`);
  const dataLength = bothEndian32(record, 10, `directory record at byte ${absolute}`);
  const flags = record[25]!;
  const nameLength = record[32]!;
  if (33 + nameLength > length) {
    throw new IsoFormatError(`directory record at byte ${absolute} has a name past its end`);
  }
  const isoName = decodeName(record.subarray(33, 33 + nameLength), joliet);
  const rr = joliet ? { compressed: false } : rockRidge(record, nameLength);
  const name = rr.name ?? isoName;
  const names = [...new Set([isoName.toLowerCase(), name.toLowerCase()])];
  return {
    name,
    names,
    isDirectory: (flags & 2) !== 0,
    compressed: rr.compressed,
    multiExtent: (flags & 0x80) !== 0,
    extent: {
      offset: (block + extentAttrLength) * blockSize,
      length: dataLength,
      recordOffset: absolute,
    },
  };
}

/** Reads ISO9660 volumes from a random-access source. */
export class IsoReader {
  private readonly listings = new Map<string, Promise<DirectoryEntry[]>>();
  private constructor(
    readonly source: RandomAccessSource,
    readonly volume: IsoVolume,
    private readonly blockSize: number,
    private readonly jolietTrees: Set<DirectoryTree>,
  ) {}

  /** Reads the volume descriptors; throws IsoFormatError when the source is not ISO9660. */
  static async open(source: RandomAccessSource, label = "the image"): Promise<IsoReader> {
    if (source.size < DESCRIPTORS_START + SECTOR) {
      throw new IsoFormatError(
        `${label} is not an ISO9660 image: ${source.size} bytes is too small to hold a volume descriptor`,
      );
    }
    const trees: DirectoryTree[] = [];
    const joliet = new Set<DirectoryTree>();
    let volumeBytes = 0;
    let blockSize = SECTOR;
    let bootCatalogOffset: number | undefined;
    let sawPrimary = false;
    for (let i = 0; i < MAX_DESCRIPTORS; i++) {
      const at = DESCRIPTORS_START + i * SECTOR;
      if (at + SECTOR > source.size) break;
      const descriptor = await source.read(at, SECTOR);
      const id = descriptor.toString("latin1", 1, 6);
      if (id !== "CD001") {
        if (i === 0) {
          throw new IsoFormatError(
            `${label} is not an ISO9660 image: no "CD001" volume descriptor at byte ${at}`,
          );
        }
        break;
      }
      const type = descriptor[0]!;
      if (type === 255) break;
      if (type === 0) {
        if (descriptor.toString("latin1", 7, 30).startsWith("EL TORITO SPECIFICATION")) {
          bootCatalogOffset = descriptor.readUInt32LE(71) * SECTOR;
        }
        continue;
      }
      if (type !== 1 && type !== 2) continue;
      const where = `${label}: volume descriptor at byte ${at}`;
      const size = bothEndian16(descriptor, 128, where);
      if (size !== SECTOR) {
        throw new IsoFormatError(`${where} uses ${size}-byte blocks; only 2048 is supported`);
      }
      blockSize = size;
      const isJoliet = type === 2 && /^%\/[@CE]/.test(descriptor.toString("latin1", 88, 91));
      const root = parseRecord(descriptor, 156, at + 156, isJoliet, blockSize);
      if (!root.isDirectory) throw new IsoFormatError(`${where}: its root is not a directory`);
      const tree: DirectoryTree = {
        kind: type === 1 ? "primary" : isJoliet ? "joliet" : "enhanced",
        root: {
          ...root,
          name: "/",
          names: ["/"],
          extents: [root.extent],
          size: root.extent.length,
        },
      };
      if (type === 1) {
        sawPrimary = true;
        volumeBytes = bothEndian32(descriptor, 80, where) * blockSize;
      }
      if (isJoliet) joliet.add(tree);
      trees.push(tree);
    }
    if (!sawPrimary) {
      throw new IsoFormatError(
        `${label} is not an ISO9660 image: it has no primary volume descriptor`,
      );
    }
    return new IsoReader(source, { volumeBytes, trees, bootCatalogOffset }, blockSize, joliet);
  }

  /** The entries of a directory ("." and ".." left out), multi-extent files joined. */
  list(tree: DirectoryTree, directory: DirectoryEntry): Promise<DirectoryEntry[]> {
    const key = `${tree.kind}:${directory.extents[0]!.offset}`;
    let listing = this.listings.get(key);
    if (!listing) {
      listing = this.readDirectory(directory, this.jolietTrees.has(tree));
      this.listings.set(key, listing);
    }
    return listing;
  }

  private async readDirectory(
    directory: DirectoryEntry,
    joliet: boolean,
  ): Promise<DirectoryEntry[]> {
    const { offset, length } = directory.extents[0]!;
    if (length > MAX_DIRECTORY_BYTES || offset + length > this.source.size) {
      throw new IsoFormatError(
        `directory ${directory.name} at byte ${offset} (${length} bytes) lies outside the image`,
      );
    }
    const bytes = await this.source.read(offset, length);
    const entries: DirectoryEntry[] = [];
    let pending: RawRecord[] = [];
    for (let sector = 0; sector < length; sector += this.blockSize) {
      const block = bytes.subarray(sector, Math.min(length, sector + this.blockSize));
      let at = 0;
      // Records never cross a block; a zero length byte means the rest of the block is padding.
      while (at < block.length && block[at]! !== 0) {
        const record = parseRecord(block, at, offset + sector + at, joliet, this.blockSize);
        at += block[at]!;
        if (record.name === "." || record.name === "..") continue;
        pending.push(record);
        if (record.multiExtent) continue;
        entries.push({
          name: record.name,
          names: record.names,
          isDirectory: record.isDirectory,
          compressed: pending.some(r => r.compressed),
          extents: pending.map(r => r.extent),
          size: pending.reduce((sum, r) => sum + r.extent.length, 0),
        });
        pending = [];
      }
    }
    if (pending.length > 0) {
      throw new IsoFormatError(`directory ${directory.name} ends inside a multi-extent file`);
    }
    return entries;
  }

  /** The entry at `path` ("/boot/grub/grub.cfg") in `tree`, matched case-insensitively. */
  async lookup(tree: DirectoryTree, path: string): Promise<DirectoryEntry | undefined> {
    let current = tree.root;
    for (const part of path.split("/").filter(Boolean)) {
      if (!current.isDirectory) return undefined;
      const wanted = part.toLowerCase();
      const entries = await this.list(tree, current);
      const next = entries.find(e => e.names.includes(wanted));
      if (!next) return undefined;
      current = next;
    }
    return current;
  }

  /** A file's bytes, all extents joined. */
  async readFile(entry: DirectoryEntry): Promise<Buffer> {
    const parts: Buffer[] = [];
    for (const extent of entry.extents) {
      if (extent.offset + extent.length > this.source.size) {
        throw new IsoFormatError(`${entry.name} at byte ${extent.offset} lies outside the image`);
      }
      parts.push(await this.source.read(extent.offset, extent.length));
    }
    return Buffer.concat(parts);
  }
}

/** An El Torito boot catalog entry that loads an image (BIOS or EFI). */
export interface BootEntry {
  platform: "bios" | "efi" | "other";
  /** Byte offset of the boot image in the ISO. */
  offset: number;
  /** The catalog's sector count in 512-byte units; often 0 or 1 for EFI images (meaning unknown). */
  sectorCount: number;
}

/** The bootable entries of the El Torito boot catalog at `offset`. */
export async function readBootCatalog(
  source: RandomAccessSource,
  offset: number,
): Promise<BootEntry[]> {
  if (offset + SECTOR > source.size) {
    throw new IsoFormatError(`the El Torito boot catalog at byte ${offset} lies outside the image`);
  }
  const catalog = await source.read(offset, SECTOR);
  if (catalog[0] !== 1 || catalog[30] !== 0x55 || catalog[31] !== 0xaa) {
    throw new IsoFormatError(
      `the El Torito boot catalog at byte ${offset} has no validation entry`,
    );
  }
  const platformOf = (id: number): BootEntry["platform"] =>
    id === 0 ? "bios" : id === 0xef ? "efi" : "other";
  const entries: BootEntry[] = [];
  const entryAt = (at: number, platform: number) => {
    if (catalog[at] === 0x88) {
      entries.push({
        platform: platformOf(platform),
        offset: catalog.readUInt32LE(at + 8) * SECTOR,
        sectorCount: catalog.readUInt16LE(at + 6),
      });
    }
  };
  entryAt(32, catalog[1]!);
  let at = 64;
  while (at + 32 <= SECTOR) {
    const header = catalog[at]!;
    if (header !== 0x90 && header !== 0x91) break;
    const platform = catalog[at + 1]!;
    const count = catalog.readUInt16LE(at + 2);
    at += 32;
    for (let i = 0; i < count && at + 32 <= SECTOR; i++, at += 32) {
      // Extension entries (0x44) continue the previous entry's selection criteria.
      while (catalog[at] === 0x44 && at + 32 <= SECTOR) at += 32;
      if (at + 32 <= SECTOR) entryAt(at, platform);
    }
    if (header === 0x91) break;
  }
  return entries;
}
