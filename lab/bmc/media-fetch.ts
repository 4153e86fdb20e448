// The test BMC's virtual media fetch: what a real BMC does with the URL InsertMedia gives it.
// A BMC does not trust a URL blindly: on insert it reads the image over HTTP(S) with Range
// requests (the first 64 KiB, where the ISO9660 volume descriptors are, then a few ranges such as
// the end of the image), and the host later reads the "virtual CD" through the BMC, again in
// ranges. Tests of the boot service need exactly that: the media URL the operator gave the BMC
// must really serve an ISO, over TLS trusted with the boot service's CA, to this BMC.
//
// Enabled with TestBmcOptions.fetchInsertedMedia; each insert's fetch is recorded (status, size,
// whether sector 16 holds "CD001", the ranges read), and `read`/`readAll` let a test read the
// inserted image as the booted host would. Plain node:http(s), so the TLS trust is explicit.
import http from "node:http";
import https from "node:https";

export interface MediaFetchOptions {
  /** PEM CA certificate(s) to trust for https:// images (e.g. the boot service's CA). */
  ca?: string;
  /** Per request; default 10 s. */
  timeoutMs?: number;
}

export interface MediaRangeRead {
  start: number;
  end: number;
  status: number;
}

export interface MediaFetch {
  slot: string;
  image: string;
  /** Status of the first Range request (undefined when no response came). */
  status?: number;
  /** The image's size, from Content-Range (206) or Content-Length (200). */
  size?: number;
  /** Whether the bytes at 32769..32773 are "CD001": an ISO9660 volume descriptor. */
  iso9660?: boolean;
  /** The first 64 KiB as served. */
  head?: Buffer;
  ranges: MediaRangeRead[];
  /** Why the fetch failed: a transport error or a status other than 200/206. */
  error?: string;
}

const HEAD_BYTES = 64 * 1024;
const DESCRIPTOR_AT = 16 * 2048;

interface RangeResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export class MediaFetcher {
  readonly fetches: MediaFetch[] = [];
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly options: MediaFetchOptions = {}) {}

  /** Called by the test BMC when a slot is loaded: fetch as a BMC would, in the background. */
  inserted(slot: string, image: string): void {
    const record: MediaFetch = { slot, image, ranges: [] };
    this.fetches.push(record);
    const done = this.fetchOnInsert(record).finally(() => this.pending.delete(done));
    this.pending.add(done);
  }

  /** Resolves when every fetch started so far has finished. */
  async settled(): Promise<void> {
    while (this.pending.size) await Promise.all([...this.pending]);
  }

  /** The fetches of one image URL. */
  of(image: string): MediaFetch[] {
    return this.fetches.filter(f => f.image === image);
  }

  /** Bytes start..end (inclusive) of an image, by one Range request, as the booted host reads. */
  async read(image: string, start: number, end: number): Promise<Buffer> {
    const response = await this.get(image, start, end);
    if (response.status !== 206) {
      throw new Error(`${image}: Range ${start}-${end} answered ${response.status}, not 206`);
    }
    return response.body;
  }

  /** The whole image, read in 1 MiB ranges (test images are small). */
  async readAll(image: string): Promise<Buffer> {
    const first = await this.get(image, 0, 0);
    const size = totalOf(first.headers);
    if (first.status !== 206 || size === undefined) {
      throw new Error(`${image}: a one-byte Range request answered ${first.status}`);
    }
    const parts: Buffer[] = [];
    for (let at = 0; at < size; at += 1 << 20) {
      parts.push(await this.read(image, at, Math.min(size, at + (1 << 20)) - 1));
    }
    return Buffer.concat(parts);
  }

  private async fetchOnInsert(record: MediaFetch): Promise<void> {
    try {
      const first = await this.get(record.image, 0, HEAD_BYTES - 1);
      record.status = first.status;
      if (first.status !== 206 && first.status !== 200) {
        record.error = `GET ${first.status}`;
        return;
      }
      record.size =
        first.status === 206 ? totalOf(first.headers) : Number(first.headers["content-length"]);
      record.head = first.body.subarray(0, HEAD_BYTES);
      record.iso9660 =
        record.head.length >= DESCRIPTOR_AT + 6 &&
        record.head.toString("latin1", DESCRIPTOR_AT + 1, DESCRIPTOR_AT + 6) === "CD001";
      record.ranges.push({ start: 0, end: record.head.length - 1, status: first.status });
      const size = record.size ?? 0;
      // Out of order, as BMCs read: the last sector, then one in the middle.
      for (const [start, end] of [
        [Math.max(0, size - 2048), size - 1],
        [Math.floor(size / 2), Math.min(size - 1, Math.floor(size / 2) + 4095)],
      ] as const) {
        if (end < start) continue;
        const response = await this.get(record.image, start, end);
        record.ranges.push({ start, end, status: response.status });
      }
    } catch (err) {
      record.error = (err as Error).message;
    }
  }

  /** One GET with a Range header; a 200 body is cut after the first 64 KiB (and the rest dropped). */
  private get(image: string, start: number, end: number): Promise<RangeResponse> {
    const url = new URL(image);
    const client = url.protocol === "https:" ? https : http;
    return new Promise((resolve, reject) => {
      const request = client.request(
        url,
        {
          method: "GET",
          headers: { Range: `bytes=${start}-${end}`, "User-Agent": "beskar7-test-bmc" },
          ...(url.protocol === "https:" && this.options.ca ? { ca: this.options.ca } : {}),
          timeout: this.options.timeoutMs ?? 10_000,
        },
        response => {
          const chunks: Buffer[] = [];
          let length = 0;
          const limit = response.statusCode === 206 ? Infinity : HEAD_BYTES;
          response.on("data", (chunk: Buffer) => {
            if (length >= limit) return;
            chunks.push(chunk);
            length += chunk.length;
            if (length >= limit) response.destroy();
          });
          const finish = () =>
            resolve({
              status: response.statusCode ?? 0,
              headers: response.headers,
              body: Buffer.concat(chunks),
            });
          response.on("end", finish);
          response.on("close", finish);
          response.on("error", err => (length >= limit ? finish() : reject(err)));
        },
      );
      request.on("timeout", () => request.destroy(new Error(`GET ${url.host} timed out`)));
      request.on("error", reject);
      request.end();
    });
  }
}

function totalOf(headers: http.IncomingHttpHeaders): number | undefined {
  const total = /\/(\d+)\s*$/.exec(headers["content-range"] ?? "");
  return total ? Number(total[1]) : undefined;
}
