// The initramfs writer (lab/vm/installer/cpio.ts) checked against an independent reader: busybox
// cpio lists and unpacks what it wrote (files with their bytes and modes, symlinks, directories,
// the /dev/console character device), and the same entries give the same bytes.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readlinkSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";

import { cpioArchive, type CpioEntry } from "../../../lab/vm/installer/cpio";

const entries: CpioEntry[] = [
  { path: "bin", kind: "dir" },
  { path: "dev", kind: "dir" },
  { path: "dev/console", kind: "char", major: 5, minor: 1 },
  { path: "bin/tool", kind: "file", data: Buffer.from("#!/bin/sh\necho hi\n"), mode: 0o755 },
  { path: "bin/odd", kind: "file", data: Buffer.from("abcde") },
  { path: "bin/link", kind: "symlink", target: "tool" },
];

describe("cpio newc writer", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it("is read back by busybox cpio: names, types, modes, device numbers", () => {
    const listing = execFileSync("busybox", ["cpio", "-t", "-v"], {
      input: cpioArchive(entries),
      encoding: "utf8",
      stdio: ["pipe", "pipe", "ignore"],
    });
    const lines = listing.trim().split("\n");
    expect(lines.map(l => l.split(/\s+/).pop())).toEqual([
      "bin",
      "dev",
      "dev/console",
      "bin/tool",
      "bin/odd",
      "tool", // busybox prints a symlink as "name -> target"
    ]);
    expect(lines[2]).toMatch(/^crw------- /);
    expect(lines[3]).toMatch(/^-rwxr-xr-x /);
    expect(lines[4]).toMatch(/^-rw-r--r-- .* 5 /);
    expect(lines[5]).toMatch(/^lrwxrwxrwx .*bin\/link -> tool$/);
  });

  it("gives the character device its numbers (rdevmajor, rdevminor of the newc header)", () => {
    const archive = cpioArchive(entries);
    const header = archive.indexOf("dev/console\0") - 110;
    expect(archive.toString("ascii", header, header + 6)).toBe("070701");
    const field = (n: number) =>
      parseInt(archive.toString("ascii", header + 6 + n * 8, header + 14 + n * 8), 16);
    expect([field(9), field(10)]).toEqual([5, 1]);
  });

  it("unpacks to the same bytes (odd lengths padded) and links", () => {
    const dir = mkdtempSync(join(tmpdir(), "beskar7-cpio-"));
    dirs.push(dir);
    execFileSync("busybox", ["cpio", "-i", "-d"], {
      cwd: dir,
      input: cpioArchive(entries.filter(e => e.kind !== "char")),
      stdio: ["pipe", "ignore", "ignore"],
    });
    expect(readFileSync(join(dir, "bin/tool"), "utf8")).toBe("#!/bin/sh\necho hi\n");
    expect(statSync(join(dir, "bin/tool")).mode & 0o777).toBe(0o755);
    expect(readFileSync(join(dir, "bin/odd"), "utf8")).toBe("abcde");
    expect(readlinkSync(join(dir, "bin/link"))).toBe("tool");
  });

  it("depends only on its entries, and refuses an empty path", () => {
    expect(cpioArchive(entries).equals(cpioArchive(entries))).toBe(true);
    expect(() => cpioArchive([{ path: "/", kind: "dir" }])).toThrow(/empty path/);
  });
});
