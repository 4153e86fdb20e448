// Test images for the patched-ISO tests: real ISO9660 images mastered by Debian's xorriso from a
// temporary folder and files extracted from a patched image with xorriso (lab/xorriso.ts, shared
// with the machine benchmark), and a small FAT12 EFI boot image built here byte by byte (no
// mkfs.fat needed, and the builder knows where every cluster went, so tests can check the FAT
// patch independently of boot/patched-iso/fat.ts).
export { buildIso, extractFromIso, requireXorriso, tempDir } from "../../../lab/xorriso";

export interface FatFixtureFile {
  path: string;
  content: Buffer;
  /** Byte offsets (in the FAT image) of the file's clusters, in chain order. */
  clusters: number[];
  /** Byte offset (in the FAT image) of the file's 32-byte directory entry. */
  entry: number;
}

export interface FatFixture {
  image: Buffer;
  clusterBytes: number;
  files: Map<string, FatFixtureFile>;
}

/**
 * A FAT12 image (512-byte clusters) holding `files` at their paths. With `fragmented`, every
 * cluster is followed by a free one, so chains are never contiguous.
 */
export function buildFat12(files: Record<string, Buffer>, fragmented = false): FatFixture {
  const sector = 512;
  const totalSectors = 2048;
  const reserved = 1;
  const fats = 2;
  const rootEntries = 64;
  const fatSectors = 6;
  const rootSectors = (rootEntries * 32) / sector;
  const dataStart = (reserved + fats * fatSectors + rootSectors) * sector;
  const clusterCount = totalSectors - dataStart / sector;
  const image = Buffer.alloc(totalSectors * sector);
  image.set([0xeb, 0x3c, 0x90]);
  image.write("BESKAR7 ", 3, "latin1");
  image.writeUInt16LE(sector, 11);
  image[13] = 1;
  image.writeUInt16LE(reserved, 14);
  image[16] = fats;
  image.writeUInt16LE(rootEntries, 17);
  image.writeUInt16LE(totalSectors, 19);
  image[21] = 0xf8;
  image.writeUInt16LE(fatSectors, 22);
  image[510] = 0x55;
  image[511] = 0xaa;

  const fat = Buffer.alloc(fatSectors * sector);
  const setFat = (n: number, value: number) => {
    const at = Math.floor((n * 3) / 2);
    if (n % 2 === 0) {
      fat[at] = value & 0xff;
      fat[at + 1] = (fat[at + 1]! & 0xf0) | ((value >> 8) & 0x0f);
    } else {
      fat[at] = (fat[at]! & 0x0f) | ((value << 4) & 0xf0);
      fat[at + 1] = (value >> 4) & 0xff;
    }
  };
  setFat(0, 0xff8);
  setFat(1, 0xfff);
  let nextCluster = 2;
  const allocate = (count: number): number[] => {
    const chain: number[] = [];
    for (let i = 0; i < Math.max(1, count); i++) {
      chain.push(nextCluster);
      nextCluster += fragmented ? 2 : 1;
    }
    if (nextCluster >= clusterCount + 2) throw new Error("FAT fixture is full");
    chain.forEach((c, i) => setFat(c, i + 1 < chain.length ? chain[i + 1]! : 0xfff));
    return chain;
  };
  const clusterOffset = (c: number) => dataStart + (c - 2) * sector;
  const shortName = (name: string) => {
    const [base, ext = ""] = name.toUpperCase().split(".");
    return `${base!.padEnd(8)}${ext.padEnd(3)}`;
  };
  // Directories: where their next free entry is.
  const directories = new Map<string, { cluster: number; next: number }>();
  directories.set("", { cluster: 0, next: (reserved + fats * fatSectors) * sector });
  const addEntry = (dir: string, name: string, attr: number, cluster: number, size: number) => {
    const d = directories.get(dir)!;
    const at = d.next;
    image.write(shortName(name), at, "latin1");
    image[at + 11] = attr;
    image.writeUInt16LE(cluster, at + 26);
    image.writeUInt32LE(size, at + 28);
    d.next += 32;
    return at;
  };
  const ensureDir = (path: string) => {
    if (directories.has(path)) return;
    const parent = path.slice(0, path.lastIndexOf("/"));
    ensureDir(parent);
    const [cluster] = allocate(1);
    addEntry(parent, path.slice(path.lastIndexOf("/") + 1), 0x10, cluster!, 0);
    directories.set(path, { cluster: cluster!, next: clusterOffset(cluster!) });
    addEntry(path, ".", 0x10, cluster!, 0);
    image.write(".          ", clusterOffset(cluster!), "latin1");
    addEntry(path, "..", 0x10, directories.get(parent)!.cluster, 0);
    image.write("..         ", clusterOffset(cluster!) + 32, "latin1");
  };
  const out = new Map<string, FatFixtureFile>();
  for (const [path, content] of Object.entries(files)) {
    const parent = path.slice(0, path.lastIndexOf("/"));
    ensureDir(parent);
    const chain = allocate(Math.ceil(content.length / sector));
    const entry = addEntry(
      parent,
      path.slice(path.lastIndexOf("/") + 1),
      0x20,
      chain[0]!,
      content.length,
    );
    chain.forEach((c, i) => content.copy(image, clusterOffset(c), i * sector, (i + 1) * sector));
    out.set(path, { path, content, clusters: chain.map(clusterOffset), entry });
  }
  for (let i = 0; i < fats; i++) fat.copy(image, (reserved + i * fatSectors) * sector);
  return { image, clusterBytes: sector, files: out };
}

/** A file's bytes read back from a FAT fixture's layout (its size field and cluster list). */
export function readFatFixtureFile(
  image: Buffer,
  file: FatFixtureFile,
  clusterBytes: number,
): Buffer {
  const size = image.readUInt32LE(file.entry + 28);
  const parts = file.clusters.map(offset => image.subarray(offset, offset + clusterBytes));
  return Buffer.concat(parts).subarray(0, size);
}

/** A seeded pseudo-random generator (mulberry32), so a failing property run can be replayed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
