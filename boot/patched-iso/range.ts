// HTTP Range serving for large images, without a server: parse a Range header against an image's
// size (RFC 9110 §14, formerly RFC 7233) and produce the status, headers and a chunked body that a
// node:http handler (or any other) writes out.
//
// BMCs read virtual-media ISOs in ranges, often out of order and sometimes several at once, so:
//   - `bytes=a-b`, `bytes=a-` and `bytes=-n` are answered with 206 and one Content-Range;
//   - several ranges are answered with 206 multipart/byteranges, in the order asked, up to
//     `maxRanges` (beyond that the Range header is ignored and the whole image sent with 200, as
//     the RFC allows, and `note` says so);
//   - a Range no part of which lies inside the image gets 416 with `Content-Range: bytes */size`;
//   - a header with another unit or bad syntax is ignored (200, whole image), as the RFC says;
//   - If-Range that does not match the image's ETag (or Last-Modified) sends the whole image.
// The body is read from the image `chunkSize` bytes at a time (256 KiB by default) as the consumer
// pulls, so serving never holds more than a chunk per request in memory. Given `readInto`, a
// response reuses one chunk buffer throughout, taken from (and given back to) a small pool shared by
// all responses (each chunk is valid until the next is pulled or the body ends), and
// sendBody writes such a body waiting for each write to complete: a busy server then allocates
// nothing per chunk, which keeps its RSS flat instead of leaving dead buffers to the GC.
import { randomBytes } from "node:crypto";
import type { Writable } from "node:stream";

export interface ByteRange {
  /** First byte, inclusive. */
  start: number;
  /** Last byte, inclusive. */
  end: number;
}

export type ParsedRange =
  | { type: "full"; reason?: string }
  | { type: "ranges"; ranges: ByteRange[] }
  | { type: "unsatisfiable" };

/** The ranges a Range header asks of an image of `size` bytes. */
export function parseRange(header: string | undefined, size: number): ParsedRange {
  if (header === undefined || header.trim() === "") return { type: "full" };
  const match = /^\s*bytes\s*=\s*(.*)$/i.exec(header);
  if (!match) return { type: "full", reason: `Range unit not understood: ${header}` };
  const ranges: ByteRange[] = [];
  let sawSpec = false;
  for (const raw of match[1]!.split(",")) {
    const spec = raw.trim();
    if (spec === "") continue;
    sawSpec = true;
    const parts = /^(\d*)\s*-\s*(\d*)$/.exec(spec);
    if (!parts || (parts[1] === "" && parts[2] === "")) {
      return { type: "full", reason: `Range syntax not understood: ${header}` };
    }
    if (parts[1] === "") {
      const suffix = Number(parts[2]);
      if (suffix > 0 && size > 0) ranges.push({ start: Math.max(0, size - suffix), end: size - 1 });
      continue;
    }
    const start = Number(parts[1]);
    const end = parts[2] === "" ? size - 1 : Number(parts[2]);
    if (parts[2] !== "" && end < start) {
      return { type: "full", reason: `Range syntax not understood: ${header}` };
    }
    if (start < size) ranges.push({ start, end: Math.min(end, size - 1) });
  }
  if (!sawSpec) return { type: "full", reason: `Range syntax not understood: ${header}` };
  return ranges.length === 0 ? { type: "unsatisfiable" } : { type: "ranges", ranges };
}

export interface ServeRangeOptions {
  size: number;
  read(offset: number, length: number): Promise<Buffer>;
  /**
   * Optional: fill a buffer from `offset`. With it, each response reads into one reused buffer;
   * a chunk of the body is then only valid until the next one is pulled (see sendBody).
   */
  readInto?(offset: number, target: Buffer): Promise<void>;
  /** The request's Range header. */
  range?: string;
  /** The request's If-Range header; honoured when `etag` or `lastModified` is given. */
  ifRange?: string;
  etag?: string;
  lastModified?: string;
  /** HEAD answers with the headers only. */
  method?: string;
  contentType?: string;
  chunkSize?: number;
  /** Above this many ranges the whole image is sent (default 16). */
  maxRanges?: number;
}

export interface RangeResponse {
  status: 200 | 206 | 416;
  headers: Record<string, string>;
  /** Chunks to write in order; empty for HEAD and 416. */
  body: AsyncIterable<Buffer>;
  /** Why a Range header was not honoured, when it was not. */
  note?: string;
}

async function* chunks(
  options: ServeRangeOptions,
  start: number,
  end: number,
  chunkSize: number,
): AsyncGenerator<Buffer> {
  const { read, readInto } = options;
  // Taken on the first pull, so a response that is never sent holds nothing, and given back when
  // the body ends or its consumer stops early.
  const reused = readInto ? takeChunk(chunkSize) : undefined;
  try {
    for (let at = start; at <= end; at += chunkSize) {
      const length = Math.min(chunkSize, end + 1 - at);
      if (reused && readInto) {
        const view = reused.subarray(0, length);
        await readInto(at, view);
        yield view;
      } else {
        yield await read(at, length);
      }
    }
  } finally {
    if (reused) giveChunk(reused);
  }
}

// Chunk buffers that finished responses gave back, by size: a server answering hundreds of 1 MiB
// ranges a second would otherwise allocate (and leave to the GC) hundreds of buffers a second.
const freeChunks = new Map<number, Buffer[]>();
const MAX_FREE_CHUNKS = 32;

function takeChunk(size: number): Buffer {
  return freeChunks.get(size)?.pop() ?? Buffer.allocUnsafe(size);
}

function giveChunk(buffer: Buffer): void {
  let free = freeChunks.get(buffer.length);
  if (!free) freeChunks.set(buffer.length, (free = []));
  if (free.length < MAX_FREE_CHUNKS) free.push(buffer);
}

/**
 * Writes `body` to `out` (a node:http ServerResponse, for one) and ends it, pulling each chunk only
 * once the previous write has completed, which is what a body with reused chunks needs. Rejects,
 * and destroys `out`, when a read or a write fails.
 */
export async function sendBody(body: AsyncIterable<Buffer>, out: Writable): Promise<void> {
  try {
    for await (const chunk of body) {
      await new Promise<void>((resolve, reject) =>
        out.write(chunk, err => (err ? reject(err) : resolve())),
      );
    }
    await new Promise<void>(resolve => out.end(resolve));
  } catch (err) {
    out.destroy(err instanceof Error ? err : new Error(String(err)));
    throw err;
  }
}

async function* nothing(): AsyncGenerator<Buffer> {}

/** The response to a GET or HEAD of an image of `size` bytes with the request's Range header. */
export function serveRange(options: ServeRangeOptions): RangeResponse {
  const { size } = options;
  const contentType = options.contentType ?? "application/octet-stream";
  const chunkSize = options.chunkSize ?? 256 * 1024;
  const maxRanges = options.maxRanges ?? 16;
  const head = (options.method ?? "GET").toUpperCase() === "HEAD";
  const base: Record<string, string> = { "Accept-Ranges": "bytes" };
  if (options.etag) base["ETag"] = options.etag;
  if (options.lastModified) base["Last-Modified"] = options.lastModified;

  let parsed = parseRange(options.range, size);
  let note = parsed.type === "full" ? parsed.reason : undefined;
  if (parsed.type !== "full" && options.ifRange !== undefined) {
    const validators = [options.etag, options.lastModified].filter(v => v !== undefined);
    if (!validators.includes(options.ifRange)) {
      parsed = { type: "full" };
      note = `If-Range ${options.ifRange} does not match the image; sending it whole`;
    }
  }
  if (parsed.type === "ranges" && parsed.ranges.length > maxRanges) {
    note = `${parsed.ranges.length} ranges asked, more than ${maxRanges}; sending the whole image`;
    parsed = { type: "full" };
  }

  if (parsed.type === "unsatisfiable") {
    return {
      status: 416,
      headers: { ...base, "Content-Range": `bytes */${size}`, "Content-Length": "0" },
      body: nothing(),
    };
  }
  if (parsed.type === "full") {
    return {
      status: 200,
      headers: { ...base, "Content-Type": contentType, "Content-Length": String(size) },
      body: head || size === 0 ? nothing() : chunks(options, 0, size - 1, chunkSize),
      ...(note ? { note } : {}),
    };
  }
  const ranges = parsed.ranges;
  if (ranges.length === 1) {
    const { start, end } = ranges[0]!;
    return {
      status: 206,
      headers: {
        ...base,
        "Content-Type": contentType,
        "Content-Range": `bytes ${start}-${end}/${size}`,
        "Content-Length": String(end - start + 1),
      },
      body: head ? nothing() : chunks(options, start, end, chunkSize),
    };
  }
  const boundary = `beskar7-${randomBytes(12).toString("hex")}`;
  const partHeader = (r: ByteRange, first: boolean) =>
    Buffer.from(
      `${first ? "" : "\r\n"}--${boundary}\r\nContent-Type: ${contentType}\r\n` +
        `Content-Range: bytes ${r.start}-${r.end}/${size}\r\n\r\n`,
      "latin1",
    );
  const trailer = Buffer.from(`\r\n--${boundary}--\r\n`, "latin1");
  const length = ranges.reduce(
    (sum, r, i) => sum + partHeader(r, i === 0).length + (r.end - r.start + 1),
    trailer.length,
  );
  async function* multipart(): AsyncGenerator<Buffer> {
    for (const [i, r] of ranges.entries()) {
      yield partHeader(r, i === 0);
      yield* chunks(options, r.start, r.end, chunkSize);
    }
    yield trailer;
  }
  return {
    status: 206,
    headers: {
      ...base,
      "Content-Type": `multipart/byteranges; boundary=${boundary}`,
      "Content-Length": String(length),
    },
    body: head ? nothing() : multipart(),
  };
}
