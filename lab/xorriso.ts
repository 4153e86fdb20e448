// ISO9660 images mastered and read by Debian's xorriso, for whatever needs a real installer image
// that Beskar7's own code did not write: the patched-ISO tests (tests/unit/boot) and the machine
// benchmark's installer ISO (scripts/bench-machines.ts). xorriso is required: without it these
// fail with the command that installs it, they never skip.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

export function requireXorriso(): void {
  try {
    execFileSync("xorriso", ["-version"], { stdio: "pipe" });
  } catch {
    throw new Error(
      "xorriso is not installed; the patched-ISO tests and the machine benchmark master real ISO images with it. " +
        "Install it with `apt-get install -y xorriso` (npm run test:prepare does this on Debian).",
    );
  }
}

export function tempDir(prefix = "beskar7-iso-"): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Masters an ISO (Joliet and Rock Ridge) holding `files`; `extra` goes to `xorriso -as mkisofs`. */
export function buildIso(files: Record<string, string | Buffer>, extra: string[] = []): Buffer {
  requireXorriso();
  const dir = tempDir();
  try {
    const tree = join(dir.path, "tree");
    for (const [path, content] of Object.entries(files)) {
      const target = join(tree, path);
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, content);
    }
    mkdirSync(tree, { recursive: true });
    const out = join(dir.path, "out.iso");
    execFileSync(
      "xorriso",
      ["-as", "mkisofs", "-J", "-R", "-V", "BESKAR7_TEST", "-o", out, ...extra, tree],
      {
        stdio: "pipe",
      },
    );
    return readFileSync(out);
  } finally {
    dir.remove();
  }
}

/**
 * A file's bytes from an ISO image by xorriso. `tree` picks the directory tree xorriso reads:
 * Rock Ridge (default), Joliet ("norock") or plain ISO9660 ("ecma119").
 */
export function extractFromIso(
  iso: Buffer,
  path: string,
  tree: "rr" | "joliet" | "ecma119" = "rr",
): Buffer {
  const dir = tempDir();
  try {
    const image = join(dir.path, "image.iso");
    writeFileSync(image, iso);
    const out = join(dir.path, "out");
    const readFs = { rr: "any", joliet: "norock", ecma119: "ecma119" }[tree];
    execFileSync(
      "xorriso",
      // Plain ISO9660 names are upper case.
      [
        "-read_fs",
        readFs,
        "-osirrox",
        "on",
        "-indev",
        image,
        "-extract",
        tree === "ecma119" ? path.toUpperCase() : path,
        out,
      ],
      { stdio: "pipe" },
    );
    return readFileSync(out);
  } finally {
    dir.remove();
  }
}
