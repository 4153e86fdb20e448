// Range correctness of the patched ISO, as a property: the patched image built in full (source
// bytes with the patches applied) against thousands of random (offset, length) reads through
// Overlay.read and random Range headers through serveRange, biased towards the patches' edges and
// the image's ends. Plus the Range helper's rules: suffix and open ranges, multipart/byteranges,
// 416 past the end, headers it ignores, If-Range, HEAD, and chunked bodies.
import { Writable } from "node:stream";
import { beforeAll, describe, expect, it } from "vitest";

import {
  applyPatches,
  bufferSource,
  type Overlay,
  parseRange,
  patchIso,
  sendBody,
  serveRange,
  type RangeResponse,
} from "../../../boot/patched-iso";
import { buildIso, seededRandom } from "./patched-iso-fixtures";

/** Writes a body with sendBody into a sink that copies each chunk and completes writes later. */
async function send(response: RangeResponse): Promise<Buffer> {
  const parts: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      parts.push(Buffer.from(chunk));
      setImmediate(done);
    },
  });
  await sendBody(response.body, sink);
  return Buffer.concat(parts);
}

async function collect(response: RangeResponse): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of response.body) parts.push(chunk);
  return Buffer.concat(parts);
}

const SEED = Number(process.env.PATCHED_ISO_SEED ?? 0x5eed);

describe("patched ISO reads against the image built in full", () => {
  let source: Buffer;
  let image: Overlay;
  let full: Buffer;
  beforeAll(async () => {
    source = buildIso({
      "boot/grub/grub.cfg":
        "menuentry a {\n  linux /vmlinuz quiet\n}\nmenuentry b {\n  linux /vmlinuz\n}\n",
      "isolinux/isolinux.cfg": "label a\n  append initrd=/initrd quiet\n",
      "data/filler.bin": Buffer.alloc(300_000, 0xab),
    });
    const result = await patchIso(bufferSource(source), {
      kernelArguments: ["console=ttyS0,115200", "beskar7.token=abc"],
    });
    image = result.image;
    full = applyPatches(source, image.patches);
    expect(image.patches.length).toBeGreaterThanOrEqual(4);
    expect(full.equals(source)).toBe(false);
  });

  /** Random points, half of them within a few bytes of a patch edge or an end of the image. */
  function pointPicker(random: () => number): () => number {
    const edges = [
      0,
      full.length,
      ...image.patches.flatMap(p => [p.offset, p.offset + p.bytes.length]),
    ];
    return () => {
      if (random() < 0.5) return Math.floor(random() * (full.length + 1));
      const edge = edges[Math.floor(random() * edges.length)]!;
      return Math.min(full.length, Math.max(0, edge + Math.floor(random() * 9) - 4));
    };
  }

  it(`serves every byte of 2000 random reads as the full image has it (seed ${SEED})`, async () => {
    const random = seededRandom(SEED);
    const point = pointPicker(random);
    for (let i = 0; i < 2000; i++) {
      const a = point();
      const b = random() < 0.1 ? a : point();
      const [offset, end] = a <= b ? [a, b] : [b, a];
      const got = await image.read(offset, end - offset);
      if (!got.equals(full.subarray(offset, end))) {
        throw new Error(
          `read(${offset}, ${end - offset}) differs from the full image (seed ${SEED})`,
        );
      }
    }
    expect(await image.read(full.length - 1, 1)).toEqual(full.subarray(full.length - 1));
    expect(await image.read(full.length, 0)).toEqual(Buffer.alloc(0));
    const target = Buffer.alloc(5000);
    for (const p of image.patches) {
      const at = Math.max(0, p.offset - 2500);
      await image.readInto(at, target);
      expect(target.equals(full.subarray(at, at + 5000))).toBe(true);
    }
    await expect(image.read(full.length - 1, 2)).rejects.toThrow(/runs past the end/);
    await expect(image.read(-1, 1)).rejects.toThrow(/invalid read/);
  });

  it(`answers 2000 random Range headers with the full image's bytes (seed ${SEED + 1})`, async () => {
    const random = seededRandom(SEED + 1);
    const point = pointPicker(random);
    const size = full.length;
    for (let i = 0; i < 2000; i++) {
      const a = Math.min(point(), size - 1);
      const b = Math.min(point(), size - 1);
      const [start, end] = a <= b ? [a, b] : [b, a];
      const kind = random();
      let header: string;
      let expected: [number, number];
      if (kind < 0.7) {
        header = `bytes=${start}-${end}`;
        expected = [start, end];
      } else if (kind < 0.85) {
        header = `bytes=${start}-`;
        expected = [start, size - 1];
      } else {
        const n = size - start;
        header = `bytes=-${n}`;
        expected = [start, size - 1];
      }
      // Small chunks so one range crosses many chunk boundaries.
      const chunkSize = 1 + Math.floor(random() * 70_000);
      // Half the responses read into reused, pooled chunk buffers and go out through sendBody.
      const reuse = random() < 0.5;
      const response = serveRange({
        size,
        read: (o, l) => image.read(o, l),
        ...(reuse ? { readInto: (o: number, t: Buffer) => image.readInto(o, t) } : {}),
        range: header,
        chunkSize,
      });
      expect(response.status).toBe(206);
      expect(response.headers["Content-Range"]).toBe(`bytes ${expected[0]}-${expected[1]}/${size}`);
      expect(Number(response.headers["Content-Length"])).toBe(expected[1] - expected[0] + 1);
      const body = reuse ? await send(response) : await collect(response);
      if (!body.equals(full.subarray(expected[0], expected[1] + 1))) {
        throw new Error(
          `Range ${header} (chunks of ${chunkSize}) differs from the full image (seed ${SEED + 1})`,
        );
      }
    }
  });

  it("answers several ranges with multipart/byteranges, parts in the order asked", async () => {
    const patch = image.patches[0]!;
    const ranges: Array<[number, number]> = [
      [patch.offset - 3, patch.offset + 5],
      [0, 0],
      [full.length - 10, full.length - 1],
    ];
    const response = serveRange({
      size: full.length,
      read: (o, l) => image.read(o, l),
      range: `bytes=${ranges.map(([a, b]) => `${a}-${b}`).join(", ")}`,
      contentType: "application/x-iso9660-image",
    });
    expect(response.status).toBe(206);
    const boundary = /^multipart\/byteranges; boundary=(\S+)$/.exec(
      response.headers["Content-Type"]!,
    )![1]!;
    const body = await collect(response);
    expect(body.length).toBe(Number(response.headers["Content-Length"]));
    let expected = "";
    for (const [i, [a, b]] of ranges.entries()) {
      expected +=
        `${i === 0 ? "" : "\r\n"}--${boundary}\r\nContent-Type: application/x-iso9660-image\r\n` +
        `Content-Range: bytes ${a}-${b}/${full.length}\r\n\r\n` +
        full.subarray(a, b + 1).toString("latin1");
    }
    expected += `\r\n--${boundary}--\r\n`;
    expect(body.toString("latin1")).toBe(expected);
  });
});

describe("serveRange", () => {
  const bytes = Buffer.from("0123456789");
  const read = async (o: number, l: number) => bytes.subarray(o, o + l);

  it("answers a Range past the end with 416 and the image's size", async () => {
    for (const range of [
      "bytes=10-",
      "bytes=10-20",
      "bytes=99-100",
      "bytes=-0",
      "bytes=10-11, 12-",
    ]) {
      const response = serveRange({ size: 10, read, range });
      expect(response.status, range).toBe(416);
      expect(response.headers["Content-Range"]).toBe("bytes */10");
      expect(await collect(response)).toEqual(Buffer.alloc(0));
    }
  });

  it("clips a range that starts inside and ends past the end", async () => {
    const response = serveRange({ size: 10, read, range: "bytes=7-100" });
    expect(response.status).toBe(206);
    expect(response.headers["Content-Range"]).toBe("bytes 7-9/10");
    expect((await collect(response)).toString()).toBe("789");
    expect(parseRange("bytes=-100", 10)).toEqual({
      type: "ranges",
      ranges: [{ start: 0, end: 9 }],
    });
    expect(parseRange("bytes=3-3,20-30", 10)).toEqual({
      type: "ranges",
      ranges: [{ start: 3, end: 3 }],
    });
  });

  it("ignores headers it does not understand and sends the whole image", async () => {
    for (const range of ["items=0-1", "bytes=5-2", "bytes=abc", "bytes=", "bytes=-"]) {
      const response = serveRange({ size: 10, read, range });
      expect(response.status, range).toBe(200);
      expect(response.note, range).toMatch(/not understood/);
      expect((await collect(response)).toString()).toBe("0123456789");
    }
    const plain = serveRange({ size: 10, read });
    expect(plain).toMatchObject({
      status: 200,
      headers: { "Accept-Ranges": "bytes", "Content-Length": "10" },
    });
  });

  it("sends the whole image when asked for too many ranges, and says so", async () => {
    const range = `bytes=${Array.from({ length: 5 }, (_, i) => `${i}-${i}`).join(",")}`;
    const response = serveRange({ size: 10, read, range, maxRanges: 4 });
    expect(response.status).toBe(200);
    expect(response.note).toBe("5 ranges asked, more than 4; sending the whole image");
  });

  it("honours If-Range only when it matches the image", async () => {
    const etag = '"abc"';
    expect(serveRange({ size: 10, read, range: "bytes=1-2", ifRange: etag, etag }).status).toBe(
      206,
    );
    const stale = serveRange({ size: 10, read, range: "bytes=1-2", ifRange: '"old"', etag });
    expect(stale.status).toBe(200);
    expect(stale.headers["ETag"]).toBe(etag);
  });

  it("answers HEAD with headers and no body", async () => {
    const response = serveRange({ size: 10, read, range: "bytes=2-5", method: "HEAD" });
    expect(response).toMatchObject({
      status: 206,
      headers: { "Content-Length": "4", "Content-Range": "bytes 2-5/10" },
    });
    expect(await collect(response)).toEqual(Buffer.alloc(0));
  });

  it("reads the body in chunks as it is consumed, never the whole range at once", async () => {
    const reads: number[] = [];
    const response = serveRange({
      size: 1 << 30,
      read: async (_o, l) => {
        reads.push(l);
        return Buffer.alloc(l);
      },
      range: "bytes=0-",
    });
    const iterator = response.body[Symbol.asyncIterator]();
    await iterator.next();
    await iterator.next();
    expect(reads).toEqual([256 * 1024, 256 * 1024]);
    await iterator.return?.();
  });
});
