// A writer for the "newc" cpio archives Linux unpacks as its initramfs (the kernel's
// Documentation/driver-api/early-userspace/buffer-format.rst). The test installer's initramfs
// needs a /dev/console character device before devtmpfs is mounted, which a directory on disk
// would need root and mknod for; writing the archive here needs neither, and the same inputs give
// the same bytes (fixed owner, times and inode numbers), so the image's hash follows its inputs.

export type CpioEntry =
  | { path: string; kind: "dir"; mode?: number }
  | { path: string; kind: "file"; data: Uint8Array; mode?: number }
  | { path: string; kind: "symlink"; target: string }
  | { path: string; kind: "char"; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

function hex8(value: number): string {
  return value.toString(16).padStart(8, "0");
}

function pad4(length: number): Buffer {
  return Buffer.alloc((4 - (length % 4)) % 4);
}

function record(
  ino: number,
  mode: number,
  name: string,
  data: Uint8Array,
  rdev: { major: number; minor: number } = { major: 0, minor: 0 },
): Buffer[] {
  const nameBytes = Buffer.from(`${name}\0`, "utf8");
  const fields = [
    ino,
    mode,
    0, // uid
    0, // gid
    mode & S_IFDIR ? 2 : 1, // nlink
    0, // mtime: fixed, so the archive depends only on its contents
    data.length,
    0, // dev major
    0, // dev minor
    rdev.major,
    rdev.minor,
    nameBytes.length,
    0, // check (unused by newc)
  ];
  const header = Buffer.from(`070701${fields.map(hex8).join("")}`, "ascii");
  return [
    header,
    nameBytes,
    pad4(header.length + nameBytes.length),
    Buffer.from(data),
    pad4(data.length),
  ];
}

/** The archive of `entries`, in the order given (parents before children), with its trailer. */
export function cpioArchive(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  entries.forEach((entry, index) => {
    const name = entry.path.replace(/^\/+/, "");
    if (name === "") throw new Error("cpio entry with an empty path");
    const ino = index + 1;
    switch (entry.kind) {
      case "dir":
        parts.push(...record(ino, S_IFDIR | (entry.mode ?? 0o755), name, new Uint8Array()));
        break;
      case "file":
        parts.push(...record(ino, S_IFREG | (entry.mode ?? 0o644), name, entry.data));
        break;
      case "symlink":
        parts.push(...record(ino, S_IFLNK | 0o777, name, Buffer.from(entry.target, "utf8")));
        break;
      case "char":
        parts.push(
          ...record(ino, S_IFCHR | (entry.mode ?? 0o600), name, new Uint8Array(), {
            major: entry.major,
            minor: entry.minor,
          }),
        );
        break;
    }
  });
  parts.push(...record(0, 0, "TRAILER!!!", new Uint8Array()));
  return Buffer.concat(parts);
}
