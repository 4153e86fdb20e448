// Keeps an installer ISO's own checksum lists true after its boot configuration is patched.
//
// Ubuntu's live boot checks /md5sum.txt against the medium's files (casper-md5check) and reports
// every mismatch, and Debian's installer offers the same check with /md5sum.txt or /sha256sum.txt.
// A patched grub.cfg would fail it. The entries are fixed-width hex digests, so the new digest
// replaces the old one in place: the list keeps its size and only a few dozen bytes per patched
// file change. Lines for other files stay as they are.
import { createHash } from "node:crypto";

export interface ChecksumList {
  path: string;
  algorithm: "md5" | "sha1" | "sha256" | "sha512";
}

export const CHECKSUM_LISTS: readonly ChecksumList[] = [
  { path: "/md5sum.txt", algorithm: "md5" },
  { path: "/MD5SUMS", algorithm: "md5" },
  { path: "/sha256sum.txt", algorithm: "sha256" },
  { path: "/SHA256SUMS", algorithm: "sha256" },
];

const HEX_LENGTH = { md5: 32, sha1: 40, sha256: 64, sha512: 128 } as const;

/** A digest to write at `offset` in the list's text (same length as the one it replaces). */
export interface DigestEdit {
  offset: number;
  digest: Buffer;
  path: string;
}

/**
 * Edits that make `list` (the text of a `sha256sum`-style file) hold the digests of `changed`
 * (new content by ISO path, any case, with a leading slash).
 */
export function checksumEdits(
  list: Buffer,
  algorithm: ChecksumList["algorithm"],
  changed: ReadonlyMap<string, Buffer>,
): DigestEdit[] {
  const byPath = new Map([...changed].map(([path, content]) => [path.toLowerCase(), content]));
  const width = HEX_LENGTH[algorithm];
  const line = new RegExp(`^([0-9a-fA-F]{${width}}) [ *](?:\\.?/)?([^\\r\\n]+?)\\r?$`, "gm");
  const text = list.toString("latin1");
  const edits: DigestEdit[] = [];
  for (const match of text.matchAll(line)) {
    const path = `/${match[2]!}`;
    const content = byPath.get(path.toLowerCase());
    if (!content) continue;
    let digest = createHash(algorithm).update(content).digest("hex");
    if (match[1] === match[1]!.toUpperCase() && /[A-F]/.test(match[1]!))
      digest = digest.toUpperCase();
    if (digest === match[1]) continue;
    edits.push({ offset: match.index, digest: Buffer.from(digest, "latin1"), path });
  }
  return edits;
}
