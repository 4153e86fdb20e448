// A read-only look into the FAT file system of an EFI boot image (efi.img / efiboot.img).
//
// UEFI firmware booting an installer ISO does not read ISO9660: it loads the El Torito EFI image, a
// small FAT12/16 (sometimes FAT32) file system, and runs its /EFI/BOOT/BOOTX64.EFI. Some
// distributions put a grub.cfg in that image which the EFI GRUB reads before (or instead of) the
// ISO's, so kernel arguments must be written there too. This reader finds a file by path (8.3 short
// names, case-insensitively; long-name entries are skipped) and returns where its clusters lie
// in the ISO, how much room its cluster chain has, and where its size field is, which is all a
// same-size patch needs.
import { IsoFormatError } from "./errors";
import type { RandomAccessSource } from "./source";

/** One piece of a FAT file, by absolute offset in the ISO. */
export interface FatRun {
  offset: number;
  length: number;
}

export interface FatFile {
  path: string;
  size: number;
  /** The file's clusters, in file order, as absolute ISO ranges (the whole allocation). */
  runs: FatRun[];
  /** Absolute offset of the 4-byte little-endian size in the file's directory entry. */
  sizeFieldOffset: number;
}

interface Layout {
  base: number;
  bytesPerSector: number;
  clusterBytes: number;
  fatOffset: number;
  fatBits: 12 | 16 | 32;
  rootOffset: number;
  rootBytes: number;
  rootCluster: number;
  dataOffset: number;
  clusterCount: number;
}

async function readLayout(source: RandomAccessSource, base: number): Promise<Layout> {
  if (base + 512 > source.size) throw new IsoFormatError(`no FAT boot sector at byte ${base}`);
  const boot = await source.read(base, 512);
  const bytesPerSector = boot.readUInt16LE(11);
  const sectorsPerCluster = boot[13]!;
  const reserved = boot.readUInt16LE(14);
  const fats = boot[16]!;
  const rootEntries = boot.readUInt16LE(17);
  const total = boot.readUInt16LE(19) || boot.readUInt32LE(32);
  const fatSectors = boot.readUInt16LE(22) || boot.readUInt32LE(36);
  const valid =
    boot[510] === 0x55 &&
    boot[511] === 0xaa &&
    [512, 1024, 2048, 4096].includes(bytesPerSector) &&
    sectorsPerCluster > 0 &&
    (sectorsPerCluster & (sectorsPerCluster - 1)) === 0 &&
    reserved > 0 &&
    fats > 0 &&
    fatSectors > 0 &&
    total > 0;
  if (!valid)
    throw new IsoFormatError(`the EFI boot image at byte ${base} is not a FAT file system`);
  const rootSectors = Math.ceil((rootEntries * 32) / bytesPerSector);
  const dataSector = reserved + fats * fatSectors + rootSectors;
  const clusterCount = Math.floor((total - dataSector) / sectorsPerCluster);
  const fatBits = rootEntries === 0 ? 32 : clusterCount < 4085 ? 12 : 16;
  return {
    base,
    bytesPerSector,
    clusterBytes: sectorsPerCluster * bytesPerSector,
    fatOffset: base + reserved * bytesPerSector,
    fatBits,
    rootOffset: base + (reserved + fats * fatSectors) * bytesPerSector,
    rootBytes: rootSectors * bytesPerSector,
    rootCluster: fatBits === 32 ? boot.readUInt32LE(44) : 0,
    dataOffset: base + dataSector * bytesPerSector,
    clusterCount,
  };
}

class FatVolume {
  private fat?: Buffer;
  constructor(
    private readonly source: RandomAccessSource,
    private readonly layout: Layout,
  ) {}

  private async next(cluster: number): Promise<number | undefined> {
    const { fatBits, fatOffset, clusterCount } = this.layout;
    if (!this.fat) {
      const bytes = Math.ceil(((clusterCount + 2) * fatBits) / 8);
      if (fatOffset + bytes > this.source.size)
        throw new IsoFormatError("the FAT lies outside the image");
      this.fat = await this.source.read(fatOffset, bytes);
    }
    const fat = this.fat;
    let value: number;
    if (fatBits === 12) {
      const at = Math.floor((cluster * 3) / 2);
      const pair = fat.readUInt16LE(at);
      value = cluster % 2 === 0 ? pair & 0xfff : pair >> 4;
      return value >= 0xff8 ? undefined : value;
    }
    if (fatBits === 16) {
      value = fat.readUInt16LE(cluster * 2);
      return value >= 0xfff8 ? undefined : value;
    }
    value = fat.readUInt32LE(cluster * 4) & 0x0fffffff;
    return value >= 0x0ffffff8 ? undefined : value;
  }

  async chain(first: number): Promise<FatRun[]> {
    const runs: FatRun[] = [];
    const { clusterBytes, dataOffset, clusterCount } = this.layout;
    let cluster: number | undefined = first;
    while (cluster !== undefined) {
      if (cluster < 2 || cluster >= clusterCount + 2 || runs.length > clusterCount) {
        throw new IsoFormatError(
          `the EFI boot image has a broken cluster chain (cluster ${cluster})`,
        );
      }
      runs.push({ offset: dataOffset + (cluster - 2) * clusterBytes, length: clusterBytes });
      cluster = await this.next(cluster);
    }
    return runs;
  }

  async directory(
    runs: FatRun[],
  ): Promise<Array<{ name: string; attr: number; cluster: number; size: number; at: number }>> {
    const entries = [];
    for (const run of runs) {
      if (run.offset + run.length > this.source.size) {
        throw new IsoFormatError("an EFI boot image directory lies outside the image");
      }
      const bytes = await this.source.read(run.offset, run.length);
      for (let at = 0; at + 32 <= bytes.length; at += 32) {
        const first = bytes[at]!;
        if (first === 0) return entries;
        const attr = bytes[at + 11]!;
        if (first === 0xe5 || attr === 0x0f || (attr & 0x08) !== 0) continue;
        const base = bytes.toString("latin1", at, at + 8).trimEnd();
        const ext = bytes.toString("latin1", at + 8, at + 11).trimEnd();
        const name = (ext ? `${base}.${ext}` : base).toLowerCase();
        const cluster =
          bytes.readUInt16LE(at + 26) +
          (this.layout.fatBits === 32 ? bytes.readUInt16LE(at + 20) << 16 : 0);
        entries.push({
          name,
          attr,
          cluster,
          size: bytes.readUInt32LE(at + 28),
          at: run.offset + at,
        });
      }
    }
    return entries;
  }

  rootRuns(): Promise<FatRun[]> | FatRun[] {
    const { fatBits, rootOffset, rootBytes, rootCluster } = this.layout;
    return fatBits === 32 ? this.chain(rootCluster) : [{ offset: rootOffset, length: rootBytes }];
  }
}

/**
 * The file at `path` ("/EFI/BOOT/grub.cfg") in the FAT image that starts at byte `base` of the
 * source, or undefined when the image has no such file. Throws IsoFormatError when the image is not
 * FAT.
 */
export async function findFatFile(
  source: RandomAccessSource,
  base: number,
  path: string,
): Promise<FatFile | undefined> {
  const volume = new FatVolume(source, await readLayout(source, base));
  let runs = await volume.rootRuns();
  const parts = path.split("/").filter(Boolean);
  for (const [i, part] of parts.entries()) {
    const entries = await volume.directory(runs);
    const entry = entries.find(e => e.name === part.toLowerCase());
    if (!entry) return undefined;
    const isDirectory = (entry.attr & 0x10) !== 0;
    const last = i === parts.length - 1;
    if (isDirectory === last) return undefined;
    if (last) {
      const fileRuns = entry.cluster === 0 ? [] : await volume.chain(entry.cluster);
      const allocated = fileRuns.reduce((sum, r) => sum + r.length, 0);
      if (entry.size > allocated) {
        throw new IsoFormatError(`${path} in the EFI boot image is larger than its clusters`);
      }
      return { path, size: entry.size, runs: fileRuns, sizeFieldOffset: entry.at + 28 };
    }
    runs = await volume.chain(entry.cluster);
  }
  return undefined;
}
