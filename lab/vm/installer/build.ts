// Builds Beskar7's test installer, the bootable ISO the VM tests (tests/integration/vm) give a
// virtual machine in place of the stock Kairos, Talos, Flatcar and Leap Micro installers: Debian's
// kernel, a busybox initramfs whose init (init.sh) reports what the machine saw, and GRUB EFI made
// by grub-mkrescue, with a grub.cfg shaped like a stock installer's so boot/patched-iso can patch
// it. Everything comes from Debian packages: the kernel .deb is fetched with `apt-get download`
// and unpacked here (no kernel is installed on the host); busybox-static, grub-efi-amd64-bin,
// mtools and xorriso are installed by lab/controlplane/debian.ts.
//
// The result is cached in ~/.cache/beskar7/installer-<hash>/, the hash covering every input
// (package versions, this folder's files, the module list), so it is rebuilt only when one
// changes. prepare.ts builds it before the tests; a test calls ensureInstaller() to get the paths.
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import {
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  writeFile,
} from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";

import { lock } from "../../controlplane/binaries";
import { cpioArchive, type CpioEntry } from "./cpio";

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));

/**
 * Kernel modules the init loads (with their dependencies), in this order: Debian builds these
 * drivers as modules. ISO9660 with Joliet names (nls_utf8), CD and disk drives on AHCI, virtio
 * and USB, and virtio or e1000 NICs: what lab/vm/qemu.ts gives the VM and what a BMC's virtual
 * media looks like (a USB or SATA CD).
 */
export const INSTALLER_MODULES = [
  "isofs",
  "nls_utf8",
  "sr_mod",
  "sd_mod",
  "ahci",
  "virtio_pci",
  "virtio_blk",
  "virtio_scsi",
  "virtio_net",
  "e1000",
  "xhci-pci",
  "usb-storage",
] as const;

/** The files of this folder that go into the image; their bytes are part of the cache key. */
const SOURCES = ["init.sh", "udhcpc.sh", "grub.cfg", "build.ts", "cpio.ts"] as const;

export interface Installer {
  dir: string;
  /** The bootable ISO (GRUB EFI; /boot/grub/grub.cfg holds the kernel line). */
  iso: string;
  kernel: string;
  initrd: string;
  /** The kernel arguments of the ISO's grub.cfg `linux` line, as written there. */
  kernelArgs: string;
  /** What the booted kernel's /proc/cmdline holds for the unchanged ISO (GRUB adds BOOT_IMAGE). */
  commandLine: string;
  kernelPackage: string;
  kernelRelease: string;
}

interface Inputs {
  kernelPackage: string;
  kernelVersion: string;
  busybox: string;
  busyboxVersion: string;
  grubVersion: string;
  hash: string;
}

function cacheRoot(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "beskar7");
}

async function output(command: string, args: string[], cwd?: string): Promise<string> {
  try {
    const { stdout } = await run(command, args, { cwd, maxBuffer: 64 << 20 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    const tail = (e.stderr ?? "").trim().split("\n").slice(-3).join(" / ");
    throw new Error(`${command} ${args.join(" ")} failed: ${tail || e.message}`);
  }
}

async function packageVersion(pkg: string): Promise<string> {
  const version = (
    await output("dpkg-query", ["-W", "-f", "${Version}", pkg]).catch(() => "")
  ).trim();
  if (!version) {
    throw new Error(`${pkg} is not installed: run npm run test:prepare (it apt-get installs it)`);
  }
  return version;
}

/** The versioned kernel package linux-image-amd64 points at, and its candidate version. */
async function kernelPackage(): Promise<{ name: string; version: string }> {
  const depends = await output("apt-cache", ["depends", "linux-image-amd64"]);
  const name = /Depends: (linux-image-[0-9][^\s]*-amd64)\b/.exec(depends)?.[1];
  if (!name) {
    throw new Error(
      "apt-cache does not know linux-image-amd64's kernel package: run apt-get update",
    );
  }
  const policy = await output("apt-cache", ["policy", name]);
  const version = /Candidate: (\S+)/.exec(policy)?.[1];
  if (!version || version === "(none)") throw new Error(`apt-cache has no candidate for ${name}`);
  return { name, version };
}

async function inputs(): Promise<Inputs> {
  const kernel = await kernelPackage();
  const busyboxFiles = await output("dpkg-query", ["-L", "busybox-static"]).catch(() => "");
  const busybox = busyboxFiles.split("\n").find(line => /\/bin\/busybox$/.test(line));
  if (!busybox) {
    throw new Error("busybox-static is not installed: run npm run test:prepare");
  }
  const busyboxVersion = await packageVersion("busybox-static");
  const grubVersion = await packageVersion("grub-efi-amd64-bin");
  const hash = createHash("sha256");
  hash.update(JSON.stringify([kernel, busyboxVersion, grubVersion, INSTALLER_MODULES]));
  for (const name of SOURCES) hash.update(await readFile(join(here, name)));
  return {
    kernelPackage: kernel.name,
    kernelVersion: kernel.version,
    busybox,
    busyboxVersion,
    grubVersion,
    hash: hash.digest("hex").slice(0, 16),
  };
}

function kernelArgsOf(grubCfg: string): string {
  const line = /^\s*linux\s+\S+\s+(.*)$/m.exec(grubCfg);
  if (!line) throw new Error("lab/vm/installer/grub.cfg has no linux line");
  return line[1]!.trim();
}

function installerAt(dir: string, manifest: Omit<Installer, "dir" | "iso" | "kernel" | "initrd">) {
  return {
    dir,
    iso: join(dir, "installer.iso"),
    kernel: join(dir, "vmlinuz"),
    initrd: join(dir, "initrd.gz"),
    ...manifest,
  };
}

async function cached(dir: string): Promise<Installer | undefined> {
  const manifest = join(dir, "manifest.json");
  if (!existsSync(manifest)) return undefined;
  const installer = installerAt(dir, JSON.parse(await readFile(manifest, "utf8")));
  return existsSync(installer.iso) ? installer : undefined;
}

/** The installer for the current inputs, built (a minute or so) unless it is in the cache. */
export async function ensureInstaller(
  log: (line: string) => void = line => process.stderr.write(`${line}\n`),
): Promise<Installer> {
  const found = await inputs();
  const dir = join(cacheRoot(), `installer-${found.hash}`);
  const hit = await cached(dir);
  if (hit) return hit;
  await mkdir(cacheRoot(), { recursive: true });
  const release = await lock(`${dir}.lock`, log);
  try {
    const again = await cached(dir);
    if (again) return again;
    const started = Date.now();
    log(`building the VM test installer into ${dir}`);
    const installer = await build(found, dir, log);
    log(`built the VM test installer in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return installer;
  } finally {
    await release();
  }
}

/** Module files to load for `wanted`, dependencies first, from a depmod-made modules.dep. */
export function moduleLoadOrder(modulesDep: string, wanted: readonly string[]): string[] {
  const deps = new Map<string, string[]>();
  for (const line of modulesDep.split("\n")) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    deps.set(
      line.slice(0, colon).trim(),
      line
        .slice(colon + 1)
        .trim()
        .split(/\s+/)
        .filter(Boolean),
    );
  }
  const byName = new Map<string, string>();
  for (const path of deps.keys()) byName.set(basename(path).replace(/\.ko(\.\w+)?$/, ""), path);
  const order: string[] = [];
  const visit = (path: string, chain: string[]) => {
    if (order.includes(path)) return;
    if (chain.includes(path)) throw new Error(`module dependency cycle: ${chain.join(" -> ")}`);
    for (const dep of deps.get(path) ?? []) visit(dep, [...chain, path]);
    order.push(path);
  };
  for (const name of wanted) {
    const path = byName.get(name);
    if (!path) throw new Error(`kernel module ${name} is not in the kernel package`);
    visit(path, []);
  }
  return order;
}

async function build(found: Inputs, dir: string, log: (line: string) => void): Promise<Installer> {
  const work = await mkdtemp(join(tmpdir(), "beskar7-installer-"));
  try {
    const pkg = `${found.kernelPackage}=${found.kernelVersion}`;
    log(`  apt-get download ${pkg}`);
    await output("apt-get", ["download", pkg], work).catch(async () => {
      log("  apt-get update (the package lists are older than the kernel)");
      await output("apt-get", ["update"]);
      return output("apt-get", ["download", pkg], work);
    });
    const deb = (await readdir(work)).find(name => name.endsWith(".deb"));
    if (!deb) throw new Error(`apt-get download ${pkg} wrote no .deb`);
    const root = join(work, "kernel");
    await output("dpkg-deb", ["-x", join(work, deb), root]);
    const releases = await readdir(join(root, "lib", "modules"));
    const kernelRelease = releases[0];
    if (releases.length !== 1 || !kernelRelease) {
      throw new Error(`${deb} holds ${releases.length} module trees, expected one`);
    }
    await output(found.busybox, ["depmod", "-b", root, kernelRelease]);
    const modulesDir = join(root, "lib", "modules", kernelRelease);
    const modules = moduleLoadOrder(
      await readFile(join(modulesDir, "modules.dep"), "utf8"),
      INSTALLER_MODULES,
    );
    log(`  ${modules.length} kernel modules for ${INSTALLER_MODULES.length} drivers`);

    const entries: CpioEntry[] = [];
    for (const d of ["bin", "dev", "etc", "lib", "lib/modules", "mnt", "proc", "sys", "tmp"]) {
      entries.push({ path: d, kind: "dir" });
    }
    entries.push({ path: "dev/console", kind: "char", major: 5, minor: 1 });
    entries.push({
      path: "bin/busybox",
      kind: "file",
      data: await readFile(found.busybox),
      mode: 0o755,
    });
    const applets = (await output(found.busybox, ["--list"])).split("\n").filter(Boolean);
    for (const applet of applets.filter(a => a !== "busybox").sort()) {
      entries.push({ path: `bin/${applet}`, kind: "symlink", target: "busybox" });
    }
    entries.push({
      path: "init",
      kind: "file",
      data: await readFile(join(here, "init.sh")),
      mode: 0o755,
    });
    entries.push({
      path: "etc/udhcpc.sh",
      kind: "file",
      data: await readFile(join(here, "udhcpc.sh")),
      mode: 0o755,
    });
    const loadList: string[] = [];
    for (const module of modules) {
      const name = basename(module);
      loadList.push(name);
      entries.push({
        path: `lib/modules/${name}`,
        kind: "file",
        data: await readFile(join(modulesDir, module)),
      });
    }
    entries.push({
      path: "lib/modules/load.list",
      kind: "file",
      data: Buffer.from(`${loadList.join("\n")}\n`),
    });
    const initrd = gzipSync(cpioArchive(entries), { level: 9 });

    const staging = join(work, "iso");
    await mkdir(join(staging, "boot", "grub"), { recursive: true });
    const grubCfg = await readFile(join(here, "grub.cfg"), "utf8");
    await writeFile(join(staging, "boot", "grub", "grub.cfg"), grubCfg);
    await copyFile(
      join(root, "boot", `vmlinuz-${kernelRelease}`),
      join(staging, "boot", "vmlinuz"),
    );
    await writeFile(join(staging, "boot", "initrd.gz"), initrd);

    const partial = `${dir}.partial`;
    await rm(partial, { recursive: true, force: true });
    await mkdir(partial, { recursive: true });
    log("  grub-mkrescue (GRUB EFI, x86_64)");
    await output("grub-mkrescue", [
      "--compress=xz",
      "-o",
      join(partial, "installer.iso"),
      staging,
      "--",
      "-volid",
      "BESKAR7_INSTALLER",
    ]);
    await copyFile(join(staging, "boot", "vmlinuz"), join(partial, "vmlinuz"));
    await writeFile(join(partial, "initrd.gz"), initrd);
    const kernelArgs = kernelArgsOf(grubCfg);
    const manifest = {
      kernelArgs,
      commandLine: `BOOT_IMAGE=/boot/vmlinuz ${kernelArgs}`,
      kernelPackage: `${found.kernelPackage} ${found.kernelVersion}`,
      kernelRelease,
      busybox: `busybox-static ${found.busyboxVersion}`,
      grub: `grub-efi-amd64-bin ${found.grubVersion}`,
      modules: loadList,
    };
    await writeFile(join(partial, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
    await rm(dir, { recursive: true, force: true });
    await rename(partial, dir);
    return installerAt(dir, manifest);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
