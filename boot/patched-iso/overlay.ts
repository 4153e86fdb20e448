// A patched image without a copy: the source ISO plus a short sorted list of (offset, bytes)
// patches. Reading a range reads the same range of the source and lays over it the patch bytes
// that fall inside, so any range of the patched image (in any order, of any length) costs one
// source read and nothing per host is stored but the patches (a few KB).
import { readInto, type RandomAccessSource } from "./source";

export interface Patch {
  offset: number;
  bytes: Buffer;
}

export class Overlay implements RandomAccessSource {
  readonly patches: readonly Patch[];
  readonly size: number;

  /** Patches must lie inside the source and must not overlap one another. */
  constructor(
    readonly source: RandomAccessSource,
    patches: readonly Patch[],
  ) {
    this.size = source.size;
    const sorted = patches.filter(p => p.bytes.length > 0).sort((a, b) => a.offset - b.offset);
    for (const [i, patch] of sorted.entries()) {
      if (patch.offset < 0 || patch.offset + patch.bytes.length > source.size) {
        throw new RangeError(
          `patch at ${patch.offset} (${patch.bytes.length} bytes) lies outside the image`,
        );
      }
      const previous = sorted[i - 1];
      if (previous && previous.offset + previous.bytes.length > patch.offset) {
        throw new RangeError(`patches at ${previous.offset} and ${patch.offset} overlap`);
      }
    }
    this.patches = sorted;
  }

  /** Bytes in the patches, the overlay's whole per-host cost. */
  get patchBytes(): number {
    return this.patches.reduce((sum, p) => sum + p.bytes.length, 0);
  }

  /** `length` bytes of the patched image from `offset`. */
  async read(offset: number, length: number): Promise<Buffer> {
    this.check(offset, length);
    const out = await this.source.read(offset, length);
    this.lay(offset, out);
    return out;
  }

  /** Fills `target` with the patched image's bytes from `offset`. */
  async readInto(offset: number, target: Buffer): Promise<void> {
    this.check(offset, target.length);
    await readInto(this.source, offset, target);
    this.lay(offset, target);
  }

  private check(offset: number, length: number): void {
    if (
      !Number.isSafeInteger(offset) ||
      !Number.isSafeInteger(length) ||
      offset < 0 ||
      length < 0
    ) {
      throw new RangeError(`invalid read: offset ${offset}, length ${length}`);
    }
    if (offset + length > this.size) {
      throw new RangeError(
        `read of ${length} bytes at ${offset} runs past the end (${this.size} bytes)`,
      );
    }
  }

  /** Copies the patch bytes that fall in [offset, offset + out.length) over `out`. */
  private lay(offset: number, out: Buffer): void {
    const end = offset + out.length;
    // The first patch that ends after `offset`, by binary search.
    let lo = 0;
    let hi = this.patches.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const p = this.patches[mid]!;
      if (p.offset + p.bytes.length <= offset) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.patches.length; i++) {
      const p = this.patches[i]!;
      if (p.offset >= end) break;
      const from = Math.max(offset, p.offset);
      const to = Math.min(end, p.offset + p.bytes.length);
      p.bytes.copy(out, from - offset, from - p.offset, to - p.offset);
    }
  }
}

/** The patched image built in full, for tests and small images only. */
export function applyPatches(source: Buffer, patches: readonly Patch[]): Buffer {
  const out = Buffer.from(source);
  for (const p of patches) p.bytes.copy(out, p.offset);
  return out;
}
