// A writer for small ISO9660 images with Joliet names, built in memory.
//
// Beskar7 hands each host a small per-host configuration volume (cloud-init's cidata, Talos's
// metal-iso, combustion's ignition drive) that the BMC inserts as a second virtual medium; the
// OS finds it by its volume label and reads a few files from it. Those volumes are a few KiB,
// generated on demand and served over HTTP, so a dependency on mkisofs/xorriso at runtime (or a
// temporary directory) is not worth it: this file lays the image out itself, following ECMA-119
// (ISO9660) and the Joliet extension.
//
// Layout, in 2048-byte logical sectors:
//   0-15   system area (zeros)
//   16     primary volume descriptor (ISO9660 names: uppercase 8.3, ";1" versions)
//   17     Joliet supplementary volume descriptor (UCS-2 names: the real names, case kept)
//   18     volume descriptor set terminator
//   then   the path tables (primary L and M, Joliet L and M), the primary tree's directories,
//          the Joliet tree's directories, and the files' data. Both trees point at the same data.
// Multi-byte numbers are written as the standard says: both-endian (LSB then MSB) in volume
// descriptors and directory records, one byte order per path table (L little, M big).
// No Rock Ridge: Linux reads Joliet names when Rock Ridge is absent, which is all these volumes
// need (no permissions, links or long paths). The output depends only on the inputs and the
// date, so the same request yields the same bytes (and the same ETag, if served).

export interface IsoFile {
  /** Path inside the volume, "/"-separated, without a leading "/": "openstack/latest/user_data". */
  path: string;
  data: Uint8Array;
}

export interface IsoOptions {
  /** Volume identifier: the label blkid and udev report (/dev/disk/by-label/<label>). */
  label: string;
  /** Timestamp of the volume and every record; defaults to now. */
  date?: Date;
  /** Refuse to build images larger than this (bytes); default 16 MiB. */
  maxBytes?: number;
}

export const SECTOR = 2048;
const SYSTEM_AREA_SECTORS = 16;
const DEFAULT_MAX_BYTES = 16 * 1024 * 1024;
/** Joliet stores at most 64 UCS-2 characters per name; ECMA-119 limits a path to 8 levels. */
const MAX_JOLIET_NAME = 64;
const MAX_DEPTH = 8;

export class IsoError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "IsoError";
  }
}

interface Dir {
  name: string; // real name ("" for the root)
  isoName: string; // ISO9660 identifier (no version)
  parent?: Dir;
  dirs: Dir[];
  files: FileNode[];
  depth: number;
  // assigned during layout
  primary: Extent;
  joliet: Extent;
}

interface FileNode {
  name: string;
  isoName: string; // with ";1"
  data: Uint8Array;
  sector: number;
}

interface Extent {
  sector: number;
  bytes: number;
}

/** Builds the image. Throws IsoError for names, labels or sizes it cannot represent. */
export function buildIso(files: readonly IsoFile[], options: IsoOptions): Buffer {
  const label = checkLabel(options.label);
  const date = options.date ?? new Date();
  const root = buildTree(files);
  const dirs = orderDirs(root, "primary").order;

  // Path tables (size is the same for L and M; primary and Joliet differ in identifier sizes).
  const primaryPtBytes = pathTableBytes(dirs, d => d.isoName.length);
  const jolietPtBytes = pathTableBytes(dirs, d => utf16Length(d.name) * 2);
  let sector = SYSTEM_AREA_SECTORS + 3;
  const primaryL = sector;
  sector += sectors(primaryPtBytes);
  const primaryM = sector;
  sector += sectors(primaryPtBytes);
  const jolietL = sector;
  sector += sectors(jolietPtBytes);
  const jolietM = sector;
  sector += sectors(jolietPtBytes);

  for (const dir of dirs) {
    dir.primary = { sector, bytes: dirBytes(dir, "primary") };
    sector += sectors(dir.primary.bytes);
  }
  for (const dir of dirs) {
    dir.joliet = { sector, bytes: dirBytes(dir, "joliet") };
    sector += sectors(dir.joliet.bytes);
  }
  for (const dir of dirs) {
    for (const file of dir.files) {
      // An empty file has no extent; location 0 is what ECMA-119 tools write for it.
      file.sector = file.data.length === 0 ? 0 : sector;
      sector += sectors(file.data.length);
    }
  }
  const totalSectors = sector;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  if (totalSectors * SECTOR > maxBytes) {
    throw new IsoError(
      `the volume would take ${totalSectors * SECTOR} bytes, more than the ${maxBytes} allowed`,
    );
  }

  const image = Buffer.alloc(totalSectors * SECTOR);
  const tables = { primaryL, primaryM, jolietL, jolietM, primaryPtBytes, jolietPtBytes };
  writeVolumeDescriptor(image, "primary", label, date, totalSectors, root, tables);
  writeVolumeDescriptor(image, "joliet", label, date, totalSectors, root, tables);
  // Volume descriptor set terminator: type 255, "CD001", version 1.
  const term = (SYSTEM_AREA_SECTORS + 2) * SECTOR;
  image[term] = 255;
  image.write("CD001", term + 1, "ascii");
  image[term + 6] = 1;

  for (const tree of ["primary", "joliet"] as const) {
    const { order, numbers } = orderDirs(root, tree);
    const [l, m] = tree === "primary" ? [primaryL, primaryM] : [jolietL, jolietM];
    writePathTable(image, order, numbers, l * SECTOR, "L", tree);
    writePathTable(image, order, numbers, m * SECTOR, "M", tree);
  }
  for (const dir of dirs) {
    writeDirectory(image, dir, "primary", date);
    writeDirectory(image, dir, "joliet", date);
    for (const file of dir.files) {
      image.set(file.data, file.sector * SECTOR);
    }
  }
  return image;
}

// ---------------------------------------------------------------------------------------------
// Tree and names

function buildTree(files: readonly IsoFile[]): Dir {
  const root = newDir("", "\0", undefined);
  const seen = new Set<string>();
  for (const file of files) {
    const parts = splitPath(file.path);
    const key = parts.join("/");
    if (seen.has(key)) throw new IsoError(`file "${key}" is given twice`);
    seen.add(key);
    if (parts.length > MAX_DEPTH) {
      throw new IsoError(`"${key}" is ${parts.length} levels deep; ISO9660 allows ${MAX_DEPTH}`);
    }
    let dir = root;
    for (const part of parts.slice(0, -1)) {
      if (dir.files.some(f => f.name === part)) {
        throw new IsoError(`"${part}" in "${key}" is both a file and a directory`);
      }
      let child = dir.dirs.find(d => d.name === part);
      if (!child) {
        child = newDir(part, "", dir);
        dir.dirs.push(child);
      }
      dir = child;
    }
    const name = parts[parts.length - 1] as string;
    if (dir.dirs.some(d => d.name === name)) {
      throw new IsoError(`"${key}" is both a file and a directory`);
    }
    dir.files.push({ name, isoName: "", data: file.data, sector: 0 });
  }
  assignIsoNames(root);
  return root;
}

function newDir(name: string, isoName: string, parent: Dir | undefined): Dir {
  const none = { sector: 0, bytes: 0 };
  return {
    name,
    isoName,
    parent,
    dirs: [],
    files: [],
    depth: parent ? parent.depth + 1 : 1,
    primary: none,
    joliet: none,
  };
}

function splitPath(path: string): string[] {
  const parts = path.split("/");
  if (path === "" || parts.some(p => p === "" || p === "." || p === "..")) {
    throw new IsoError(`invalid path "${path}": use "dir/name" without empty, "." or ".." parts`);
  }
  for (const part of parts) {
    if (utf16Length(part) > MAX_JOLIET_NAME) {
      throw new IsoError(`name "${part}" is longer than Joliet's ${MAX_JOLIET_NAME} characters`);
    }
    for (const ch of part) {
      const code = ch.codePointAt(0) as number;
      // Joliet forbids control characters and * / : ; ? \ ; UCS-2 has no characters beyond U+FFFF.
      if (
        code < 0x20 ||
        code > 0xffff ||
        "*/:;?\\".includes(ch) ||
        (code >= 0xd800 && code < 0xe000)
      ) {
        throw new IsoError(
          `name "${part}" contains a character Joliet cannot hold (${JSON.stringify(ch)})`,
        );
      }
    }
  }
  return parts;
}

/** ISO9660 level-1 names: d-characters (A-Z 0-9 _), 8.3 for files, 8 for directories; unique. */
function assignIsoNames(dir: Dir): void {
  const used = new Set<string>();
  for (const child of [...dir.dirs].sort((a, b) => compare(a.name, b.name))) {
    child.isoName = unique(dChars(child.name).slice(0, 8), "", used);
    assignIsoNames(child);
  }
  for (const file of [...dir.files].sort((a, b) => compare(a.name, b.name))) {
    const dot = file.name.lastIndexOf(".");
    const base = dChars(dot > 0 ? file.name.slice(0, dot) : file.name).slice(0, 8);
    const ext = dot > 0 ? dChars(file.name.slice(dot + 1)).slice(0, 3) : "";
    file.isoName = `${unique(base, `.${ext}`, used)}.${ext};1`;
  }
}

function dChars(name: string): string {
  const upper = name.toUpperCase().replace(/[^A-Z0-9_]/g, "_");
  return upper === "" ? "_" : upper;
}

/** Makes base+suffix unique in `used` by replacing the end of base with a number. */
function unique(base: string, suffix: string, used: Set<string>): string {
  let candidate = base;
  for (let n = 1; used.has(candidate + suffix); n++) {
    const tag = String(n);
    candidate = base.slice(0, 8 - tag.length) + tag;
  }
  used.add(candidate + suffix);
  return candidate;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function utf16Length(s: string): number {
  return s.length;
}

/**
 * Directories in path-table order for one tree: by level, then by parent's number, then by
 * identifier (ECMA-119 9.4, 6.9.1). Joliet identifiers can sort differently from the ISO9660
 * ones, so each tree has its own order and numbering; the root is number 1 in both.
 */
function orderDirs(root: Dir, tree: Tree): { order: Dir[]; numbers: Map<Dir, number> } {
  const order: Dir[] = [root];
  const numbers = new Map<Dir, number>([[root, 1]]);
  for (let i = 0; i < order.length; i++) {
    const dir = order[i] as Dir;
    const children = [...dir.dirs].sort((a, b) =>
      Buffer.compare(identifier(a.name, a.isoName, tree), identifier(b.name, b.isoName, tree)),
    );
    for (const child of children) {
      order.push(child);
      numbers.set(child, order.length);
    }
  }
  return { order, numbers };
}

// ---------------------------------------------------------------------------------------------
// Sizes

function sectors(bytes: number): number {
  return Math.ceil(bytes / SECTOR);
}

function pathTableBytes(dirs: Dir[], idLength: (d: Dir) => number): number {
  let total = 0;
  for (const dir of dirs) {
    const len = dir.parent ? idLength(dir) : 1;
    total += 8 + len + (len % 2);
  }
  return total;
}

type Tree = "primary" | "joliet";

function identifier(name: string, isoName: string, tree: Tree): Buffer {
  return tree === "primary" ? Buffer.from(isoName, "ascii") : ucs2be(name);
}

function recordLength(idBytes: number): number {
  return 33 + idBytes + (idBytes % 2 === 0 ? 1 : 0);
}

interface Entry {
  id: Buffer;
  sector: number;
  bytes: number;
  isDir: boolean;
}

/** The records of a directory, "." and ".." first, then the children sorted by identifier. */
function entries(dir: Dir, tree: Tree): Entry[] {
  const self = tree === "primary" ? dir.primary : dir.joliet;
  const parentDir = dir.parent ?? dir;
  const parent = tree === "primary" ? parentDir.primary : parentDir.joliet;
  const children: Entry[] = [
    ...dir.dirs.map(d => {
      const ext = tree === "primary" ? d.primary : d.joliet;
      return {
        id: identifier(d.name, d.isoName, tree),
        sector: ext.sector,
        bytes: ext.bytes,
        isDir: true,
      };
    }),
    ...dir.files.map(f => ({
      id: identifier(f.name, f.isoName, tree),
      sector: f.sector,
      bytes: f.data.length,
      isDir: false,
    })),
  ].sort((a, b) => Buffer.compare(a.id, b.id));
  return [
    { id: Buffer.from([0]), sector: self.sector, bytes: self.bytes, isDir: true },
    { id: Buffer.from([1]), sector: parent.sector, bytes: parent.bytes, isDir: true },
    ...children,
  ];
}

/** Bytes a directory's records take, in whole sectors (a record never crosses a sector). */
function dirBytes(dir: Dir, tree: Tree): number {
  let offset = 0;
  for (const entry of entries(dir, tree)) {
    const len = recordLength(entry.id.length);
    if ((offset % SECTOR) + len > SECTOR) offset += SECTOR - (offset % SECTOR);
    offset += len;
  }
  return sectors(offset) * SECTOR;
}

// ---------------------------------------------------------------------------------------------
// Writers

function writeDirectory(image: Buffer, dir: Dir, tree: Tree, date: Date): void {
  const extent = tree === "primary" ? dir.primary : dir.joliet;
  const start = extent.sector * SECTOR;
  let offset = 0;
  for (const entry of entries(dir, tree)) {
    const len = recordLength(entry.id.length);
    if ((offset % SECTOR) + len > SECTOR) offset += SECTOR - (offset % SECTOR);
    writeRecord(image, start + offset, entry, date);
    offset += len;
  }
}

function writeRecord(image: Buffer, at: number, entry: Entry, date: Date): number {
  const len = recordLength(entry.id.length);
  image[at] = len;
  image[at + 1] = 0; // extended attribute record length
  both32(image, at + 2, entry.sector);
  both32(image, at + 10, entry.bytes);
  recordDate(image, at + 18, date);
  image[at + 25] = entry.isDir ? 0x02 : 0x00;
  image[at + 26] = 0; // file unit size (not interleaved)
  image[at + 27] = 0; // interleave gap
  both16(image, at + 28, 1); // volume sequence number
  image[at + 32] = entry.id.length;
  entry.id.copy(image, at + 33);
  return len;
}

interface Tables {
  primaryL: number;
  primaryM: number;
  jolietL: number;
  jolietM: number;
  primaryPtBytes: number;
  jolietPtBytes: number;
}

function writeVolumeDescriptor(
  image: Buffer,
  tree: Tree,
  label: string,
  date: Date,
  totalSectors: number,
  root: Dir,
  t: Tables,
): void {
  const at = (SYSTEM_AREA_SECTORS + (tree === "primary" ? 0 : 1)) * SECTOR;
  image[at] = tree === "primary" ? 1 : 2;
  image.write("CD001", at + 1, "ascii");
  image[at + 6] = 1;
  const text = (offset: number, length: number, value: string) =>
    tree === "primary"
      ? padAscii(image, at + offset, length, value)
      : padUcs2(image, at + offset, length, value);
  text(8, 32, ""); // system identifier
  text(40, 32, label); // volume identifier
  both32(image, at + 80, totalSectors);
  if (tree === "joliet") image.write("%/E", at + 88, "ascii"); // UCS-2 level 3
  both16(image, at + 120, 1); // volume set size
  both16(image, at + 124, 1); // volume sequence number
  both16(image, at + 128, SECTOR); // logical block size
  const ptBytes = tree === "primary" ? t.primaryPtBytes : t.jolietPtBytes;
  both32(image, at + 132, ptBytes);
  image.writeUInt32LE(tree === "primary" ? t.primaryL : t.jolietL, at + 140);
  image.writeUInt32BE(tree === "primary" ? t.primaryM : t.jolietM, at + 148);
  const rootExtent = tree === "primary" ? root.primary : root.joliet;
  writeRecord(image, at + 156, { id: Buffer.from([0]), ...rootExtent, isDir: true }, date);
  text(190, 128, label); // volume set identifier
  text(318, 128, ""); // publisher
  text(446, 128, ""); // data preparer
  text(574, 128, "BESKAR7"); // application
  text(702, 37, ""); // copyright file
  text(739, 37, ""); // abstract file
  text(776, 37, ""); // bibliographic file
  descriptorDate(image, at + 813, date); // creation
  descriptorDate(image, at + 830, date); // modification
  descriptorDate(image, at + 847, undefined); // expiration: not specified
  descriptorDate(image, at + 864, undefined); // effective: not specified
  image[at + 881] = 1; // file structure version
}

function writePathTable(
  image: Buffer,
  dirs: Dir[],
  numbers: Map<Dir, number>,
  at: number,
  order: "L" | "M",
  tree: Tree,
): void {
  let offset = at;
  for (const dir of dirs) {
    const id = dir.parent ? identifier(dir.name, dir.isoName, tree) : Buffer.from([0]);
    const extent = tree === "primary" ? dir.primary : dir.joliet;
    const parentNumber = dir.parent ? (numbers.get(dir.parent) as number) : 1;
    image[offset] = id.length;
    image[offset + 1] = 0;
    if (order === "L") {
      image.writeUInt32LE(extent.sector, offset + 2);
      image.writeUInt16LE(parentNumber, offset + 6);
    } else {
      image.writeUInt32BE(extent.sector, offset + 2);
      image.writeUInt16BE(parentNumber, offset + 6);
    }
    id.copy(image, offset + 8);
    offset += 8 + id.length + (id.length % 2);
  }
}

// ---------------------------------------------------------------------------------------------
// Fields

function both16(image: Buffer, at: number, value: number): void {
  image.writeUInt16LE(value, at);
  image.writeUInt16BE(value, at + 2);
}

function both32(image: Buffer, at: number, value: number): void {
  image.writeUInt32LE(value, at);
  image.writeUInt32BE(value, at + 4);
}

function padAscii(image: Buffer, at: number, length: number, value: string): void {
  image.fill(0x20, at, at + length);
  image.write(value.slice(0, length), at, "ascii");
}

/** Joliet text fields: UCS-2 big-endian, padded with U+0020 (an odd length ends in one 0x00). */
function padUcs2(image: Buffer, at: number, length: number, value: string): void {
  for (let i = 0; i + 1 < length; i += 2) image.writeUInt16BE(0x20, at + i);
  if (length % 2 === 1) image[at + length - 1] = 0;
  const bytes = ucs2be(value).subarray(0, length - (length % 2));
  bytes.copy(image, at);
}

function ucs2be(value: string): Buffer {
  const out = Buffer.alloc(value.length * 2);
  for (let i = 0; i < value.length; i++) out.writeUInt16BE(value.charCodeAt(i), i * 2);
  return out;
}

/** 7-byte recording date of directory records: years since 1900, month, day, h, m, s, GMT offset. */
function recordDate(image: Buffer, at: number, date: Date): void {
  image[at] = date.getUTCFullYear() - 1900;
  image[at + 1] = date.getUTCMonth() + 1;
  image[at + 2] = date.getUTCDate();
  image[at + 3] = date.getUTCHours();
  image[at + 4] = date.getUTCMinutes();
  image[at + 5] = date.getUTCSeconds();
  image[at + 6] = 0; // UTC
}

/** 17-byte volume descriptor date: "YYYYMMDDHHMMSScc" digits and a GMT offset; all "0" when unset. */
function descriptorDate(image: Buffer, at: number, date: Date | undefined): void {
  if (!date) {
    image.write("0".repeat(16), at, "ascii");
    image[at + 16] = 0;
    return;
  }
  const two = (n: number) => String(n).padStart(2, "0");
  const digits =
    String(date.getUTCFullYear()).padStart(4, "0") +
    two(date.getUTCMonth() + 1) +
    two(date.getUTCDate()) +
    two(date.getUTCHours()) +
    two(date.getUTCMinutes()) +
    two(date.getUTCSeconds()) +
    two(Math.floor(date.getUTCMilliseconds() / 10));
  image.write(digits, at, "ascii");
  image[at + 16] = 0; // UTC
}

/**
 * The label goes into the primary descriptor as given, like mkisofs -V does: OSes match it
 * byte for byte ("cidata", "metal-iso", "config-2" are lowercase, which strict ECMA-119
 * d-characters would not allow). Joliet holds 16 UCS-2 characters, so that is the limit.
 */
function checkLabel(label: string): string {
  if (!/^[\x21-\x7e]{1,16}$/.test(label)) {
    throw new IsoError(
      `volume label "${label}" must be 1 to 16 printable ASCII characters without spaces`,
    );
  }
  return label;
}
