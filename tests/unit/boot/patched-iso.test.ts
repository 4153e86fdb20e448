// boot/patched-iso against real ISO images mastered by xorriso: the kernel arguments land on every
// GRUB linux line and isolinux APPEND line (also in included files and in the EFI boot image's FAT
// grub.cfg), every other byte of those files is unchanged, xorriso reads the patched files back
// through all three directory trees, the image keeps its size, and bad input (not ISO9660, no
// room, no boot configuration, an argument with a newline) fails with a clear error. The ISO's own
// checksum lists (md5sum.txt, sha256sum.txt) carry the patched files' new digests.
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";

import {
  applyPatches,
  bufferSource,
  encodeArguments,
  httpSource,
  inspectIso,
  IsoFormatError,
  IsoNoBootConfigError,
  IsoRoomError,
  KernelArgumentsError,
  patchIso,
  serveRange,
} from "../../../boot/patched-iso";
import { IsoReader } from "../../../boot/patched-iso/iso9660";
import {
  buildFat12,
  buildIso,
  extractFromIso,
  readFatFixtureFile,
  requireXorriso,
  tempDir,
} from "./patched-iso-fixtures";

const GRUB_CFG = `set timeout=5
loadfont unicode

menuentry "Install" {
\tset gfxpayload=keep
\tlinux\t/casper/vmlinuz quiet splash ---
\tinitrd\t/casper/initrd
}
menuentry "Install (safe graphics)" {
  linux /casper/vmlinuz nomodeset quiet   \r
  initrd /casper/initrd
}
menuentry "UEFI" {
  linuxefi /images/pxeboot/vmlinuz inst.stage2=hd:LABEL=X \\
      quiet
  initrdefi /images/pxeboot/initrd.img
}
# linux /not/a/kernel/line
`;

const ISOLINUX_CFG = `default install
prompt 0
timeout 50
include txt.cfg
label local
  localboot 0x80
`;

const TXT_CFG = `label install
  kernel /install.amd/vmlinuz
  APPEND vga=788 initrd=/install.amd/initrd.gz --- quiet
label expert
  kernel /install.amd/vmlinuz
  append priority=low initrd=/install.amd/initrd.gz
`;

const ARGS = ["console=ttyS0,115200n8", "ds=nocloud;s=http://10.0.0.1:8080/h1/", "beskar7.host=h1"];

function expectPatched(
  original: string,
  patched: string,
  kernelLine: RegExp,
  encoded: string,
): void {
  const before = original.split("\n");
  const after = patched.split("\n");
  expect(after).toHaveLength(before.length);
  let patchedLines = 0;
  for (const [i, line] of before.entries()) {
    const continued = i > 0 && /\\\r?$/.test(before[i - 1]!);
    const isKernel =
      (kernelLine.test(line) && !/\\\r?$/.test(line)) ||
      (continued && kernelLine.test(before[i - 1]!));
    if (isKernel) {
      const body = line.replace(/\s+$/, "");
      expect(after[i]).toBe(`${body} ${encoded}${line.slice(body.length)}`);
      patchedLines++;
    } else {
      expect(after[i]).toBe(line);
    }
  }
  expect(patchedLines).toBeGreaterThan(0);
}

describe("patchIso on xorriso images", () => {
  let iso: Buffer;
  beforeAll(() => {
    requireXorriso();
    iso = buildIso({
      "boot/grub/grub.cfg": GRUB_CFG,
      "isolinux/isolinux.cfg": ISOLINUX_CFG,
      "isolinux/txt.cfg": TXT_CFG,
      "casper/vmlinuz": Buffer.alloc(5000, 1),
    });
  });

  it("writes the arguments on every kernel line and leaves the rest unchanged, in all three trees", async () => {
    const result = await patchIso(bufferSource(iso), { kernelArguments: ARGS, name: "ubuntu.iso" });
    const full = applyPatches(iso, result.image.patches);
    expect(full.length).toBe(iso.length);
    expect(result.image.patchBytes).toBeLessThan(8 * 1024);
    const grub = encodeArguments(ARGS, "grub");
    expect(grub).toBe(
      "console=ttyS0,115200n8 'ds=nocloud;s=http://10.0.0.1:8080/h1/' beskar7.host=h1",
    );
    for (const tree of ["rr", "joliet", "ecma119"] as const) {
      expectPatched(
        GRUB_CFG,
        extractFromIso(full, "/boot/grub/grub.cfg", tree).toString(),
        /^\s*linux(efi)?\s/,
        grub,
      );
      expectPatched(
        TXT_CFG,
        extractFromIso(full, "/isolinux/txt.cfg", tree).toString(),
        /^\s*append\s/i,
        ARGS.join(" "),
      );
    }
    // isolinux.cfg has no APPEND line and stays as it is; txt.cfg, which it includes, has two.
    expect(extractFromIso(full, "/isolinux/isolinux.cfg").toString()).toBe(ISOLINUX_CFG);
    expect(result.files.map(f => [f.path, f.lines])).toEqual([
      ["/boot/grub/grub.cfg", 3],
      ["/isolinux/isolinux.cfg", 0],
      ["/isolinux/txt.cfg", 2],
    ]);
    // Untouched files are untouched.
    expect(extractFromIso(full, "/casper/vmlinuz")).toEqual(Buffer.alloc(5000, 1));
  });

  it("records the new length in the primary and Joliet directory records, both-endian", async () => {
    const result = await patchIso(bufferSource(iso), { kernelArguments: ARGS });
    const full = applyPatches(iso, result.image.patches);
    const reader = await IsoReader.open(bufferSource(full));
    const grub = result.files.find(f => f.path === "/boot/grub/grub.cfg")!;
    expect(reader.volume.trees.map(t => t.kind)).toEqual(["primary", "joliet"]);
    for (const tree of reader.volume.trees) {
      const entry = (await reader.lookup(tree, "/BOOT/GRUB/GRUB.CFG"))!;
      expect(entry.size).toBe(grub.newSize);
    }
  });

  it("leaves the image as it is when there are no arguments", async () => {
    const result = await patchIso(bufferSource(iso), { kernelArguments: [] });
    expect(result.image.patches).toEqual([]);
  });

  it("inspects an image once and patches it for many hosts without reading it again", async () => {
    let reads = 0;
    const counted = bufferSource(iso);
    const source = {
      size: counted.size,
      read: (o: number, l: number) => (reads++, counted.read(o, l)),
    };
    const inspection = await inspectIso(source, { name: "ubuntu.iso" });
    expect(inspection.files.map(f => f.path)).toEqual([
      "/boot/grub/grub.cfg",
      "/isolinux/isolinux.cfg",
      "/isolinux/txt.cfg",
    ]);
    const afterInspection = reads;
    const hosts = ["h1", "h2", "host-with-a-longer-name"].map(h => [`beskar7.host=${h}`]);
    const overlays = hosts.map(args => inspection.patch(args));
    expect(reads).toBe(afterInspection);
    for (const [i, args] of hosts.entries()) {
      const alone = await patchIso(bufferSource(iso), { kernelArguments: args });
      expect(overlays[i]!.image.patches).toEqual(alone.image.patches);
    }
  });

  it("reads the source over HTTP Range requests", async () => {
    let requests = 0;
    const server: Server = createServer((req, res) => {
      requests++;
      const response = serveRange({
        size: iso.length,
        read: async (o, l) => iso.subarray(o, o + l),
        range: req.headers.range,
      });
      res.writeHead(response.status, response.headers);
      void (async () => {
        for await (const chunk of response.body) res.write(chunk);
        res.end();
      })();
    });
    await new Promise<void>(resolve => server.listen(0, "127.0.0.1", resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ubuntu.iso`;
      const remote = await patchIso(await httpSource(url), { kernelArguments: ARGS, name: url });
      const local = await patchIso(bufferSource(iso), { kernelArguments: ARGS });
      expect(remote.image.patches).toEqual(local.image.patches);
      expect(await remote.image.read(0, iso.length)).toEqual(
        applyPatches(iso, local.image.patches),
      );
      expect(requests).toBeLessThan(40);
    } finally {
      server.close();
    }
  });
});

describe("multi-extent files", () => {
  /** Splits the primary tree's record of `path` into two extents of 2048 and the rest. */
  async function splitRecord(iso: Buffer, path: string): Promise<void> {
    const reader = await IsoReader.open(bufferSource(iso));
    const entry = (await reader.lookup(reader.volume.trees[0]!, path))!;
    const at = entry.extents[0]!.recordOffset;
    const length = iso[at]!;
    const sector = at - (at % 2048);
    let used = sector;
    while (used < sector + 2048 && iso[used] !== 0) used += iso[used]!;
    expect(used + length).toBeLessThanOrEqual(sector + 2048);
    const first = Buffer.from(iso.subarray(at, at + length));
    const second = Buffer.from(first);
    first[25] = first[25]! | 0x80;
    first.writeUInt32LE(2048, 10);
    first.writeUInt32BE(2048, 14);
    const block = first.readUInt32LE(2) + 1;
    second.writeUInt32LE(block, 2);
    second.writeUInt32BE(block, 6);
    second.writeUInt32LE(entry.size - 2048, 10);
    second.writeUInt32BE(entry.size - 2048, 14);
    const rest = Buffer.from(iso.subarray(at + length, used));
    Buffer.concat([first, second, rest]).copy(iso, at);
  }

  it("reads a file recorded in several extents and grows only the last", async () => {
    const grub = `${"# comment line\n".repeat(200)}menuentry x {\n  linux /vmlinuz quiet\n}\n`;
    expect(grub.length).toBeGreaterThan(2048);
    const iso = buildIso({ "boot/grub/grub.cfg": grub });
    await splitRecord(iso, "/boot/grub/grub.cfg");
    const reader = await IsoReader.open(bufferSource(iso));
    const split = (await reader.lookup(reader.volume.trees[0]!, "/boot/grub/grub.cfg"))!;
    expect(split.extents.map(e => e.length)).toEqual([2048, grub.length - 2048]);
    expect((await reader.readFile(split)).toString()).toBe(grub);
    expect(extractFromIso(iso, "/boot/grub/grub.cfg", "ecma119").toString()).toBe(grub);

    const result = await patchIso(bufferSource(iso), { kernelArguments: ARGS });
    const full = applyPatches(iso, result.image.patches);
    const patched = await IsoReader.open(bufferSource(full));
    const newSize = result.files[0]!.newSize;
    const primaryEntry = (await patched.lookup(patched.volume.trees[0]!, "/boot/grub/grub.cfg"))!;
    expect(primaryEntry.extents.map(e => e.length)).toEqual([2048, newSize - 2048]);
    const jolietEntry = (await patched.lookup(patched.volume.trees[1]!, "/boot/grub/grub.cfg"))!;
    expect(jolietEntry.extents.map(e => e.length)).toEqual([newSize]);
    const expected = grub.replace(
      "linux /vmlinuz quiet",
      `linux /vmlinuz quiet ${encodeArguments(ARGS, "grub")}`,
    );
    for (const tree of ["ecma119", "joliet"] as const) {
      expect(extractFromIso(full, "/boot/grub/grub.cfg", tree).toString()).toBe(expected);
    }
  });
});

describe("zisofs-compressed files", () => {
  it("are left as they are, and said so", async () => {
    const dir = tempDir();
    try {
      const tree = join(dir.path, "tree");
      mkdirSync(join(tree, "boot/grub"), { recursive: true });
      mkdirSync(join(tree, "isolinux"), { recursive: true });
      const grub = `${"# a comment to make the file worth compressing\n".repeat(800)}menuentry x {\n  linux /vmlinuz quiet\n}\n`;
      writeFileSync(join(tree, "boot/grub/grub.cfg"), grub);
      writeFileSync(join(tree, "isolinux/isolinux.cfg"), "label x\n  append quiet\n");
      const out = join(dir.path, "z.iso");
      execFileSync(
        "xorriso",
        [
          "-outdev",
          out,
          "-joliet",
          "on",
          "-map",
          tree,
          "/",
          "-set_filter_r",
          "--zisofs",
          "/boot",
          "--",
          "-commit",
        ],
        { stdio: "pipe" },
      );
      const iso = readFileSync(out);
      const result = await patchIso(bufferSource(iso), { kernelArguments: ARGS, name: "z.iso" });
      expect(result.notes).toEqual([
        "/boot/grub/grub.cfg left as it is: its data is zisofs-compressed",
      ]);
      expect(result.files.map(f => [f.path, f.lines])).toEqual([["/isolinux/isolinux.cfg", 1]]);
      const full = applyPatches(iso, result.image.patches);
      expect(extractFromIso(full, "/boot/grub/grub.cfg").toString()).toBe(grub);

      execFileSync("xorriso", ["-dev", out, "-rm", "/isolinux/isolinux.cfg", "--", "-commit"], {
        stdio: "pipe",
      });
      const onlyCompressed = readFileSync(out);
      await expect(
        patchIso(bufferSource(onlyCompressed), { kernelArguments: ARGS, name: "z.iso" }),
      ).rejects.toThrow(
        /z\.iso has no GRUB linux line .*; \/boot\/grub\/grub\.cfg left as it is: its data is zisofs-compressed$/,
      );
    } finally {
      dir.remove();
    }
  });
});

describe("the ISO's checksum lists", () => {
  it("get the patched files' new digests in place, and nothing else changes", async () => {
    const md5 = (b: string | Buffer) => createHash("md5").update(b).digest("hex");
    const sha = (b: string | Buffer) => createHash("sha256").update(b).digest("hex");
    const other = "not patched\n";
    const md5sums =
      `${md5(other)}  ./README.diskdefines\n${md5(GRUB_CFG)}  ./boot/grub/grub.cfg\n` +
      `${md5(TXT_CFG)}  ./isolinux/txt.cfg\n${md5(ISOLINUX_CFG)}  ./isolinux/isolinux.cfg\n`;
    const shasums = `${sha(GRUB_CFG).toUpperCase()} *boot/grub/grub.cfg\n`;
    const iso = buildIso({
      "README.diskdefines": other,
      "boot/grub/grub.cfg": GRUB_CFG,
      "isolinux/isolinux.cfg": ISOLINUX_CFG,
      "isolinux/txt.cfg": TXT_CFG,
      "md5sum.txt": md5sums,
      "sha256sum.txt": shasums,
    });
    const result = await patchIso(bufferSource(iso), { kernelArguments: ARGS });
    expect(result.checksums).toEqual([
      { list: "/md5sum.txt", files: ["/boot/grub/grub.cfg", "/isolinux/txt.cfg"] },
      { list: "/sha256sum.txt", files: ["/boot/grub/grub.cfg"] },
    ]);
    const full = applyPatches(iso, result.image.patches);
    const grub = extractFromIso(full, "/boot/grub/grub.cfg");
    const txt = extractFromIso(full, "/isolinux/txt.cfg");
    expect(extractFromIso(full, "/md5sum.txt").toString()).toBe(
      `${md5(other)}  ./README.diskdefines\n${md5(grub)}  ./boot/grub/grub.cfg\n` +
        `${md5(txt)}  ./isolinux/txt.cfg\n${md5(ISOLINUX_CFG)}  ./isolinux/isolinux.cfg\n`,
    );
    expect(extractFromIso(full, "/sha256sum.txt").toString()).toBe(
      `${sha(grub).toUpperCase()} *boot/grub/grub.cfg\n`,
    );
    expect(result.image.patchBytes).toBeLessThan(4096);
  });
});

describe("the EFI boot image", () => {
  it("patches /EFI/BOOT/grub.cfg inside the El Torito EFI FAT image, across a fragmented chain", async () => {
    // 700 bytes: two 512-byte clusters, 324 bytes of room, not contiguous.
    const efiGrub = `search --set=root --label BESKAR7_TEST\n${"# padding\n".repeat(50)}menuentry "x" {\n  linux /vmlinuz ro\n}\n`;
    const fat = buildFat12(
      {
        "/EFI/BOOT/BOOTX64.EFI": Buffer.alloc(1500, 7),
        "/EFI/BOOT/grub.cfg": Buffer.from(efiGrub),
      },
      true,
    );
    const iso = buildIso(
      {
        "boot/grub/grub.cfg": GRUB_CFG,
        "isolinux/isolinux.bin": Buffer.alloc(2048),
        "isolinux/isolinux.cfg": ISOLINUX_CFG + TXT_CFG,
        "boot/grub/efi.img": fat.image,
      },
      [
        "-c",
        "isolinux/boot.cat",
        "-b",
        "isolinux/isolinux.bin",
        "-no-emul-boot",
        "-boot-load-size",
        "4",
        "-boot-info-table",
        "-eltorito-alt-boot",
        "-e",
        "boot/grub/efi.img",
        "-no-emul-boot",
      ],
    );
    const result = await patchIso(bufferSource(iso), { kernelArguments: ARGS, name: "fedora.iso" });
    expect(result.notes).toEqual([]);
    const efi = result.files.find(f => f.inEfiImage)!;
    expect(efi).toMatchObject({
      path: "/EFI/BOOT/grub.cfg",
      lines: 1,
      oldSize: efiGrub.length,
      room: 1024 - efiGrub.length,
    });
    const full = applyPatches(iso, result.image.patches);
    const image = extractFromIso(full, "/boot/grub/efi.img");
    const file = fat.files.get("/EFI/BOOT/grub.cfg")!;
    const patched = readFatFixtureFile(image, file, fat.clusterBytes).toString();
    expectPatched(efiGrub, patched, /^\s*linux\s/, encodeArguments(ARGS, "grub"));
    // Nothing else in the FAT image changed but the file's clusters and its size field.
    const changed = [...image.keys()].filter(i => image[i] !== fat.image[i]);
    const allowed = (i: number) =>
      (i >= file.entry + 28 && i < file.entry + 32) ||
      file.clusters.some(c => i >= c && i < c + fat.clusterBytes);
    expect(changed.filter(i => !allowed(i))).toEqual([]);
  });
  it("patches the EFI image appended after the ISO9660 volume as a GPT partition (Ubuntu's layout)", async () => {
    const efiGrub = `search --set=root --label BESKAR7_TEST\nlinuxefi /images/vmlinuz quiet\ninitrdefi /images/initrd.img\n`;
    const fat = buildFat12({ "/EFI/BOOT/grub.cfg": Buffer.from(efiGrub) });
    const dir = tempDir();
    try {
      const efiImage = join(dir.path, "efi.img");
      writeFileSync(efiImage, fat.image);
      const iso = buildIso({ "boot/grub/grub.cfg": GRUB_CFG }, [
        "-append_partition",
        "2",
        "0xef",
        efiImage,
        "-e",
        "--interval:appended_partition_2:all::",
        "-no-emul-boot",
      ]);
      const result = await patchIso(bufferSource(iso), { kernelArguments: ARGS });
      const efi = result.files.find(f => f.inEfiImage)!;
      expect(efi).toMatchObject({ path: "/EFI/BOOT/grub.cfg", lines: 1 });
      // Found independently of the patcher: where the fixture's boot sector sits in the ISO.
      const base = iso.indexOf(fat.image.subarray(0, 512));
      const reader = await IsoReader.open(bufferSource(iso));
      expect(base).toBeGreaterThanOrEqual(reader.volume.volumeBytes);
      const full = applyPatches(iso, result.image.patches);
      const image = full.subarray(base, base + fat.image.length);
      const patched = readFatFixtureFile(
        image,
        fat.files.get("/EFI/BOOT/grub.cfg")!,
        fat.clusterBytes,
      );
      expectPatched(efiGrub, patched.toString(), /^\s*linuxefi\s/, encodeArguments(ARGS, "grub"));
    } finally {
      dir.remove();
    }
  });
});

describe("bad input", () => {
  it("refuses an image that is not ISO9660", async () => {
    await expect(
      patchIso(bufferSource(Buffer.alloc(100)), { kernelArguments: ARGS, name: "tiny.img" }),
    ).rejects.toThrow(/tiny\.img is not an ISO9660 image: 100 bytes is too small/);
    const random = Buffer.alloc(1 << 20, 0x5a);
    const err = await patchIso(bufferSource(random), {
      kernelArguments: ARGS,
      name: "disk.raw",
    }).catch(e => e);
    expect(err).toBeInstanceOf(IsoFormatError);
    expect(err.message).toBe(
      'disk.raw is not an ISO9660 image: no "CD001" volume descriptor at byte 32768',
    );
  });

  it("names the file, the ISO and the shortfall when the arguments do not fit", async () => {
    // 2040 bytes: 8 bytes of room in the file's one sector.
    const cfg = `menuentry x {\n linux /vmlinuz quiet\n}\n`;
    const grub = cfg + "#".repeat(2040 - cfg.length - 1) + "\n";
    const iso = buildIso({ "boot/grub/grub.cfg": grub, "isolinux/isolinux.cfg": "append quiet\n" });
    const err = await patchIso(bufferSource(iso), {
      kernelArguments: ["console=ttyS0"],
      name: "small.iso",
    }).catch(e => e);
    expect(err).toBeInstanceOf(IsoRoomError);
    expect(err.message).toBe(
      "/boot/grub/grub.cfg in small.iso has 8 bytes of room, the arguments need 14 (6 bytes short)",
    );
    expect(err).toMatchObject({
      file: "/boot/grub/grub.cfg",
      isoName: "small.iso",
      room: 8,
      needed: 14,
    });
    // Seven bytes fit exactly: " a=1234" fills the slack to the sector's last byte.
    const fits = await patchIso(bufferSource(iso), { kernelArguments: ["a=1234"] });
    const full = applyPatches(iso, fits.image.patches);
    expect(extractFromIso(full, "/boot/grub/grub.cfg").length).toBe(2047);
    const exact = await patchIso(bufferSource(iso), { kernelArguments: ["a=12345"] });
    expect(
      extractFromIso(applyPatches(iso, exact.image.patches), "/boot/grub/grub.cfg").toString(),
    ).toContain("linux /vmlinuz quiet a=12345\n");
  });

  it("says so when the image has no kernel line to carry the arguments", async () => {
    const iso = buildIso({ "README.txt": "hello", "boot/grub/grub.cfg": "set timeout=1\n" });
    const err = await patchIso(bufferSource(iso), {
      kernelArguments: ARGS,
      name: "data.iso",
    }).catch(e => e);
    expect(err).toBeInstanceOf(IsoNoBootConfigError);
    expect(err.message).toMatch(/^data\.iso has no GRUB linux line or isolinux APPEND line/);
    expect(err.message).toContain("found /boot/grub/grub.cfg without one");
  });

  it("refuses arguments that would add lines to the configuration", async () => {
    const iso = buildIso({ "boot/grub/grub.cfg": GRUB_CFG });
    await expect(
      patchIso(bufferSource(iso), { kernelArguments: ["a=1\nreboot"] }),
    ).rejects.toBeInstanceOf(KernelArgumentsError);
  });
});
