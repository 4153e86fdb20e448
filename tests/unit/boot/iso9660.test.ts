// Unit tests of boot/iso9660/writer.ts and boot/config-volume.ts: every volume is read back by
// independent ISO9660 readers (isoinfo from genisoimage, xorriso, and blkid, which is what udev
// uses for /dev/disk/by-label), checking the label and every file byte for byte, in both the
// Joliet tree (real names) and the primary tree (8.3 names). The tools are installed by
// `npm run test:prepare` (lab/controlplane/debian.ts); a missing tool fails the test, naming it.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IsoError, SECTOR, buildIso, configVolume, type IsoFile } from "../../../boot/index";

const date = new Date("2025-03-04T05:06:07.890Z");
let dir: string;
let counter = 0;

const tools: Record<string, string> = {
  isoinfo: "apt-get install -y genisoimage",
  xorriso: "apt-get install -y xorriso",
  blkid: "apt-get install -y util-linux",
};

beforeAll(() => {
  const missing = Object.keys(tools).filter(
    tool => spawnSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" }).status !== 0,
  );
  if (missing.length > 0) {
    throw new Error(
      `ISO9660 reader(s) missing: ${missing.join(", ")}. Run \`npm run test:prepare\` or ${missing
        .map(t => tools[t])
        .join("; ")}`,
    );
  }
  dir = mkdtempSync(join(tmpdir(), "beskar7-iso-"));
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function run(command: string, args: string[]): Buffer {
  const result = spawnSync(command, args, { encoding: "buffer", maxBuffer: 64 * 1024 * 1024 });
  if (result.error) throw new Error(`${command}: ${result.error.message}`);
  if (result.status !== 0) {
    throw new Error(
      `${command} ${args.join(" ")} exited ${result.status}: ${result.stderr.toString()}`,
    );
  }
  return result.stdout;
}

function save(image: Buffer): string {
  const path = join(dir, `v${counter++}.iso`);
  writeFileSync(path, image);
  return path;
}

/** Every regular file under root, by "/"-separated relative path. */
function walk(root: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const visit = (at: string) => {
    for (const name of readdirSync(at)) {
      const path = join(at, name);
      if (statSync(path).isDirectory()) visit(path);
      else out.set(relative(root, path).split("\\").join("/"), readFileSync(path));
    }
  };
  visit(root);
  return out;
}

/** Reads the image back with isoinfo, xorriso and blkid and checks label and files. */
function expectReadBack(image: Buffer, label: string, files: Map<string, Buffer>): void {
  const path = save(image);
  const info = run("isoinfo", ["-d", "-i", path]).toString();
  expect(info).toContain(`Volume id: ${label}\n`);
  expect(info).toContain("Joliet with UCS level 3 found");
  expect(info).toContain(`Volume size is: ${image.length / SECTOR}\n`);
  expect(run("blkid", ["-p", "-o", "value", "-s", "LABEL", path]).toString().trim()).toBe(label);
  expect(run("blkid", ["-p", "-o", "value", "-s", "TYPE", path]).toString().trim()).toBe("iso9660");

  for (const [name, data] of files) {
    // isoinfo converts Joliet names to an 8-bit charset (no UTF-8), so it checks the ASCII
    // names; xorriso below reads every name, non-ASCII included.
    if (!/^[\x20-\x7e]*$/.test(name)) continue;
    const read = run("isoinfo", ["-J", "-i", path, "-x", `/${name}`]);
    expect(read.equals(data), `isoinfo -J -x /${name}`).toBe(true);
  }

  const out = join(dir, `x${counter++}`);
  mkdirSync(out);
  run("xorriso", ["-indev", path, "-osirrox", "on", "-extract", "/", out]);
  const extracted = walk(out);
  expect([...extracted.keys()].sort()).toEqual([...files.keys()].sort());
  for (const [name, data] of files) {
    expect(extracted.get(name)?.equals(data), `xorriso -extract ${name}`).toBe(true);
  }
}

describe("configVolume: the volume each OS looks for", () => {
  it("kairos: cidata with user-data and meta-data (cloud-init NoCloud)", () => {
    const userData = "#cloud-config\nhostname: server-01\ninstall:\n  auto: true\n";
    const volume = configVolume(
      "kairos",
      { config: userData },
      { date, instanceId: "server-01-uid", hostname: "server-01" },
    );
    expect(volume.label).toBe("cidata");
    expect(volume.files).toEqual(["meta-data", "user-data"]);
    expect(volume.size).toBe(volume.image.length);
    expectReadBack(
      volume.image,
      "cidata",
      new Map([
        ["user-data", Buffer.from(userData)],
        ["meta-data", Buffer.from("instance-id: server-01-uid\nlocal-hostname: server-01\n")],
      ]),
    );
  });

  it("kairos: generated meta-data's instance-id follows the user-data", () => {
    const a = configVolume("kairos", { config: "#cloud-config\na: 1\n" }, { date });
    const b = configVolume("kairos", { config: "#cloud-config\na: 2\n" }, { date });
    const id = (v: typeof a) =>
      run("isoinfo", ["-J", "-i", save(v.image), "-x", "/meta-data"]).toString();
    expect(id(a)).toMatch(/^instance-id: beskar7-[0-9a-f]{16}\n$/);
    expect(id(a)).not.toBe(id(b));
  });

  it("talos: metal-iso with config.yaml", () => {
    const config = Buffer.from("version: v1alpha1\nmachine:\n  type: worker\n");
    const volume = configVolume("talos", { config }, { date });
    expectReadBack(volume.image, "metal-iso", new Map([["config.yaml", config]]));
  });

  it("LeapMicro: ignition with combustion/script and ignition/config.ign", () => {
    const script =
      "#!/bin/bash\n# combustion: network\necho configured > /etc/issue.d/combustion\n";
    const ign = '{"ignition":{"version":"3.2.0"}}';
    const volume = configVolume(
      "LeapMicro",
      {
        config: script,
        ignition: ign,
        extraFiles: { "combustion/id_ed25519.pub": "ssh-ed25519 AAAA k\n" },
      },
      { date },
    );
    expect(volume.label).toBe("ignition");
    expectReadBack(
      volume.image,
      "ignition",
      new Map([
        ["combustion/script", Buffer.from(script)],
        ["combustion/id_ed25519.pub", Buffer.from("ssh-ed25519 AAAA k\n")],
        ["ignition/config.ign", Buffer.from(ign)],
      ]),
    );
  });

  it("flatcar: an OpenStack config-2 drive with openstack/latest/user_data", () => {
    const ign = Buffer.from('{"ignition":{"version":"3.3.0"}}');
    const volume = configVolume("flatcar", { config: ign }, { date });
    expectReadBack(volume.image, "config-2", new Map([["openstack/latest/user_data", ign]]));
  });

  it("refuses what the OS would not read, and an unknown family", () => {
    expect(() => configVolume("talos", {})).toThrow(/configuration \(config\) is required/);
    expect(() => configVolume("talos", { config: "x", metaData: "y" })).toThrow(/for kairos/);
    expect(() => configVolume("kairos", { config: "x", ignition: "y" })).toThrow(
      /for LeapMicro only/,
    );
    expect(() => configVolume("LeapMicro", {})).toThrow(/combustion script/);
    expect(() => configVolume("ubuntu", { config: "x" })).toThrow(/unknown OS family/);
    expect(() => configVolume("kairos", { config: "x" }, { instanceId: "a b" })).toThrow(
      /instanceId/,
    );
    expect(() =>
      configVolume("talos", { config: "x", extraFiles: { "config.yaml": "y" } }),
    ).toThrow(/given twice/);
  });

  it("keeps volumes small: over 1 MiB is refused by default", () => {
    expect(() => configVolume("talos", { config: Buffer.alloc(1024 * 1024) })).toThrow(
      /more than the 1048576/,
    );
  });
});

describe("buildIso: ISO9660 structure", () => {
  const files: IsoFile[] = [
    { path: "user-data", data: Buffer.from("a") },
    { path: "user_data", data: Buffer.from("b") },
    { path: "user-data.yaml", data: Buffer.from("c") },
    { path: "USER-DATA-2", data: Buffer.from("d") },
    { path: "empty", data: Buffer.alloc(0) },
    { path: "big.bin", data: randomBytes(300 * 1024 + 7) },
    { path: "exactly-one-sector", data: randomBytes(SECTOR) },
    { path: "a/b/c/d/e/f/g/deep.txt", data: Buffer.from("eight levels") },
    { path: "Grüße/naïve café.txt", data: Buffer.from("joliet keeps real names") },
    // Enough records in one directory to need several sectors (records never cross a sector).
    ...Array.from({ length: 80 }, (_, i) => ({
      path: `many/a-rather-long-file-name-number-${String(i).padStart(3, "0")}.conf`,
      data: Buffer.from(`file ${i}\n`),
    })),
  ];

  it("is read back by isoinfo, xorriso and blkid, byte for byte", () => {
    const image = buildIso(files, { label: "BESKAR7-TEST", date });
    expectReadBack(image, "BESKAR7-TEST", new Map(files.map(f => [f.path, Buffer.from(f.data)])));
  });

  it("names the primary tree in uppercase 8.3 d-characters, unique per directory", () => {
    const image = buildIso(files, { label: "names", date });
    const path = save(image);
    const listing = run("isoinfo", ["-l", "-i", path]).toString();
    const names = [...listing.matchAll(/\]\s+(\S+)\s*$/gm)].map(m => m[1] as string);
    const fileNames = names.filter(n => n.endsWith(";1"));
    for (const name of fileNames) expect(name).toMatch(/^[A-Z0-9_]{1,8}\.[A-Z0-9_]{0,3};1$/);
    for (const name of names.filter(n => !n.endsWith(";1") && n !== "." && n !== ".."))
      expect(name).toMatch(/^[A-Z0-9_]{1,8}$/);
    expect(fileNames).toEqual(
      expect.arrayContaining(["USER_DAT.;1", "USER_DA1.;1", "USER_DAT.YAM;1", "USER_DA2.;1"]),
    );
    // The primary tree holds the same bytes.
    expect(run("isoinfo", ["-i", path, "-x", "/A/B/C/D/E/F/G/DEEP.TXT;1"]).toString()).toBe(
      "eight levels",
    );
    expect(
      run("isoinfo", ["-i", path, "-x", "/BIG.BIN;1"]).equals(Buffer.from(files[5]!.data)),
    ).toBe(true);
  });

  it("has the volume descriptor set, both-endian fields, dates and matching L and M path tables", () => {
    const image = buildIso(files, { label: "struct", date });
    const vd = (n: number) => image.subarray((16 + n) * SECTOR, (17 + n) * SECTOR);
    expect(image.subarray(0, 16 * SECTOR).every(b => b === 0)).toBe(true);
    expect([vd(0)[0], vd(1)[0], vd(2)[0]]).toEqual([1, 2, 255]);
    for (const n of [0, 1, 2]) {
      expect(vd(n).subarray(1, 6).toString("ascii")).toBe("CD001");
      expect(vd(n)[6]).toBe(1);
    }
    expect(vd(1).subarray(88, 91).toString("ascii")).toBe("%/E");
    for (const n of [0, 1]) {
      const d = vd(n);
      expect(d.readUInt32LE(80)).toBe(image.length / SECTOR);
      expect(d.readUInt32BE(84)).toBe(image.length / SECTOR);
      expect([d.readUInt16LE(128), d.readUInt16BE(130)]).toEqual([SECTOR, SECTOR]);
      expect(d.subarray(813, 829).toString("ascii")).toBe("2025030405060789");
      expect(d.subarray(847, 863).toString("ascii")).toBe("0".repeat(16));
      const ptSize = d.readUInt32LE(132);
      expect(d.readUInt32BE(136)).toBe(ptSize);
      const l = image.subarray(d.readUInt32LE(140) * SECTOR, d.readUInt32LE(140) * SECTOR + ptSize);
      const m = image.subarray(d.readUInt32BE(148) * SECTOR, d.readUInt32BE(148) * SECTOR + ptSize);
      // Same records, numbers in opposite byte orders.
      let at = 0;
      let count = 0;
      while (at < ptSize) {
        const len = l[at] as number;
        expect(m[at]).toBe(len);
        expect(m.readUInt32BE(at + 2)).toBe(l.readUInt32LE(at + 2));
        expect(m.readUInt16BE(at + 6)).toBe(l.readUInt16LE(at + 6));
        expect(m.subarray(at + 8, at + 8 + len).equals(l.subarray(at + 8, at + 8 + len))).toBe(
          true,
        );
        at += 8 + len + (len % 2);
        count++;
      }
      expect(count).toBe(10); // root, a to g (7), Grüße, many
    }
    // Root directory record in the primary descriptor: 7-byte date of `date`, directory flag.
    const root = vd(0).subarray(156, 190);
    expect([...root.subarray(18, 25)]).toEqual([125, 3, 4, 5, 6, 7, 0]);
    expect(root[25]).toBe(2);
    expect(root.readUInt32LE(10)).toBe(root.readUInt32BE(14));
  });

  it("is deterministic for the same files and date", () => {
    expect(
      buildIso(files, { label: "x", date }).equals(buildIso(files, { label: "x", date })),
    ).toBe(true);
  });

  it("refuses what ISO9660/Joliet cannot hold, with the reason", () => {
    const one = (path: string) => [{ path, data: Buffer.from("x") }];
    expect(() => buildIso(one("a"), { label: "has space" })).toThrow(IsoError);
    expect(() => buildIso(one("a"), { label: "seventeen-chars-x" })).toThrow(/1 to 16/);
    expect(() => buildIso(one("/abs"), { label: "l" })).toThrow(/invalid path/);
    expect(() => buildIso(one("a/../b"), { label: "l" })).toThrow(/invalid path/);
    expect(() => buildIso(one("a:b"), { label: "l" })).toThrow(/Joliet cannot hold/);
    expect(() => buildIso(one(`${"n".repeat(65)}`), { label: "l" })).toThrow(/64 characters/);
    expect(() => buildIso(one("1/2/3/4/5/6/7/8/9"), { label: "l" })).toThrow(/levels deep/);
    expect(() => buildIso([...one("a"), ...one("a")], { label: "l" })).toThrow(/given twice/);
    expect(() => buildIso([...one("a"), ...one("a/b")], { label: "l" })).toThrow(
      /both a file and a directory/,
    );
    expect(() => buildIso(one("a"), { label: "l", maxBytes: 20 * SECTOR })).toThrow(/allowed/);
  });
});
