// Random access to the bytes of an installer ISO, wherever they live.
//
// The patched-ISO reader never needs the whole image: it reads a few sectors to find the boot
// loader configuration, then serves each HTTP Range by reading the same range from the source.
// A source is therefore just a size and `read(offset, length)`, backed by a Buffer (tests), a
// local file (a cache of the user's imageURL) or HTTP Range requests to the imageURL itself.
import { open } from "node:fs/promises";

/** The bytes of an image: `read` returns exactly `length` bytes starting at `offset`. */
export interface RandomAccessSource {
  readonly size: number;
  read(offset: number, length: number): Promise<Buffer>;
  /**
   * Optional: fills `target` with the bytes from `offset` without allocating, so a server can
   * reuse one buffer per response instead of leaving a dead buffer per chunk to the GC.
   */
  readInto?(offset: number, target: Buffer): Promise<void>;
}

/** Fills `target` from `source` at `offset`, without allocating when the source can. */
export async function readInto(
  source: RandomAccessSource,
  offset: number,
  target: Buffer,
): Promise<void> {
  if (source.readInto) return source.readInto(offset, target);
  (await source.read(offset, target.length)).copy(target);
}

function checkBounds(size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new RangeError(`invalid read: offset ${offset}, length ${length}`);
  }
  if (offset + length > size) {
    throw new RangeError(`read of ${length} bytes at ${offset} runs past the end (${size} bytes)`);
  }
}

/** A source over bytes already in memory. */
export function bufferSource(bytes: Buffer): RandomAccessSource {
  return {
    size: bytes.length,
    async read(offset, length) {
      checkBounds(bytes.length, offset, length);
      return Buffer.from(bytes.subarray(offset, offset + length));
    },
    async readInto(offset, target) {
      checkBounds(bytes.length, offset, target.length);
      bytes.copy(target, 0, offset, offset + target.length);
    },
  };
}

/** A source over a local file; `close` releases its descriptor. */
export async function fileSource(
  path: string,
): Promise<RandomAccessSource & { close(): Promise<void> }> {
  const handle = await open(path, "r");
  const { size } = await handle.stat();
  const fill = async (offset: number, target: Buffer) => {
    checkBounds(size, offset, target.length);
    let done = 0;
    while (done < target.length) {
      const { bytesRead } = await handle.read(target, done, target.length - done, offset + done);
      if (bytesRead === 0) throw new Error(`${path} ended early at ${offset + done}`);
      done += bytesRead;
    }
  };
  return {
    size,
    async read(offset, length) {
      const out = Buffer.allocUnsafe(length);
      await fill(offset, out);
      return out;
    },
    readInto: fill,
    close: () => handle.close(),
  };
}

export interface HttpSourceOptions {
  /** Extra request headers (authorisation for a private image server, for instance). */
  headers?: Record<string, string>;
  /** The fetch to use; the global one by default. */
  fetch?: typeof fetch;
  signal?: AbortSignal;
}

/**
 * A source over an HTTP(S) URL whose server honours Range requests. The size comes from a
 * one-byte Range request's Content-Range; a server that ignores Range (200) is refused, since
 * every read would then download the whole image.
 */
export async function httpSource(
  url: string,
  options: HttpSourceOptions = {},
): Promise<RandomAccessSource> {
  const doFetch = options.fetch ?? fetch;
  const get = async (start: number, end: number): Promise<Response> => {
    const response = await doFetch(url, {
      headers: { ...options.headers, Range: `bytes=${start}-${end}` },
      signal: options.signal,
    });
    if (response.status !== 206) {
      await response.body?.cancel();
      throw new Error(
        `${url} answered a Range request with ${response.status}, not 206 Partial Content`,
      );
    }
    return response;
  };
  const probe = await get(0, 0);
  await probe.arrayBuffer();
  const total = /\/(\d+)\s*$/.exec(probe.headers.get("content-range") ?? "");
  if (!total) throw new Error(`${url} gave no image size in Content-Range`);
  const size = Number(total[1]);
  return {
    size,
    async read(offset, length) {
      checkBounds(size, offset, length);
      if (length === 0) return Buffer.alloc(0);
      const response = await get(offset, offset + length - 1);
      const range = /bytes\s+(\d+)-(\d+)\//.exec(response.headers.get("content-range") ?? "");
      const body = Buffer.from(await response.arrayBuffer());
      if (!range || Number(range[1]) !== offset || body.length !== length) {
        throw new Error(
          `${url} returned the wrong bytes for ${offset}-${offset + length - 1} ` +
            `(Content-Range ${response.headers.get("content-range") ?? "missing"}, ${body.length} bytes)`,
        );
      }
      return body;
    },
  };
}
