// Debian packages the tests need: xorriso and genisoimage (isoinfo), independent ISO9660
// readers against which tests/unit/boot checks the configuration volumes boot/ writes; and for
// the VM tests (docs/vm-tests.md) QEMU, OVMF, iPXE's QEMU ROMs, a static busybox and GRUB's EFI
// image tools, from which lab/vm/installer builds the test installer.
//
// `npm test` runs this through prepare.ts before vitest, so a fresh CI machine gets the tools
// (and the tests fail, naming the tool, rather than skip when they are absent). It installs only
// when a tool is missing, as root with apt-get; elsewhere it says what to install.
import { spawnSync } from "node:child_process";

export const isoTools: Readonly<Record<string, string>> = {
  xorriso: "xorriso",
  isoinfo: "genisoimage",
};

function has(command: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
}

function run(log: (line: string) => void, args: string[]): boolean {
  log(`  ${args.join(" ")}`);
  const result = spawnSync(args[0] as string, args.slice(1), {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    encoding: "utf8",
  });
  if (result.status !== 0) {
    const tail = (result.stderr ?? "").trim().split("\n").slice(-3).join(" / ");
    log(`  failed (${result.status ?? result.signal}): ${tail}`);
  }
  return result.status === 0;
}

/** Installs the missing ISO tools with apt-get (apt-get update first if the install fails). */
export function ensureIsoTools(log: (line: string) => void): void {
  const missing = Object.entries(isoTools).filter(([command]) => !has(command));
  if (missing.length === 0) return;
  const packages = [...new Set(missing.map(([, pkg]) => pkg))];
  aptInstall(
    `${missing.map(([c]) => c).join(", ")} (Debian: ${packages.join(" ")})`,
    packages,
    log,
  );
  const still = missing.filter(([command]) => !has(command));
  if (still.length > 0)
    throw new Error(`still missing after apt-get: ${still.map(([c]) => c).join(", ")}`);
}

/**
 * What the VM tests boot with: QEMU (and its curl block driver, which reads virtual media by
 * URL), UEFI firmware, iPXE's ROMs for network boots, and what the test installer is built from
 * (a static busybox, GRUB's EFI image, grub-mkrescue with mtools and xorriso). The kernel is not
 * installed: lab/vm/installer fetches its .deb with apt-get download.
 */
export const vmPackages: readonly string[] = [
  "qemu-system-x86",
  "qemu-block-extra",
  "ovmf",
  "ipxe-qemu",
  "busybox-static",
  "grub-efi-amd64-bin",
  "grub-common",
  "mtools",
  "xorriso",
];

function installed(pkg: string): boolean {
  const result = spawnSync("dpkg-query", ["-W", "-f", "${db:Status-Abbrev}", pkg], {
    encoding: "utf8",
  });
  return result.status === 0 && result.stdout.startsWith("ii");
}

/** The VM test packages dpkg does not list as installed (`npm start -- --vm` checks these). */
export function missingVmPackages(): string[] {
  if (!has("dpkg-query")) {
    throw new Error(`the VM tests need Debian's ${vmPackages.join(" ")}, and this is not Debian`);
  }
  return vmPackages.filter(pkg => !installed(pkg));
}

/** Installs the VM test packages that dpkg does not list as installed; returns those it installed. */
export function ensureVmPackages(log: (line: string) => void): string[] {
  const missing = missingVmPackages();
  if (missing.length === 0) return [];
  aptInstall(missing.join(" "), missing, log);
  const still = missing.filter(pkg => !installed(pkg));
  if (still.length > 0) throw new Error(`still not installed after apt-get: ${still.join(" ")}`);
  return missing;
}

/** apt-get install, as root; apt-get update first if the install fails (stale package lists). */
function aptInstall(what: string, packages: readonly string[], log: (line: string) => void): void {
  if (!has("apt-get")) throw new Error(`missing ${what}, and there is no apt-get: install them`);
  if (process.getuid?.() !== 0) {
    throw new Error(`missing ${what}: run apt-get install -y ${packages.join(" ")} as root`);
  }
  const install = ["apt-get", "install", "-y", "--no-install-recommends", ...packages];
  if (!run(log, install) && !(run(log, ["apt-get", "update"]) && run(log, install))) {
    throw new Error(`could not install ${what} with apt-get`);
  }
}
