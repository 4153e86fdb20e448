// The stock ISOs the server patches, by URL: each is inspected once (its boot loader files and
// their room, a few sector reads over HTTP Range) and the inspection kept in a small LRU, so a
// hundred hosts booting the same installer cost one inspection; each host's patch list (a few KB)
// is kept too. Nothing of an image itself is stored: every response streams its range from the
// source with ONE upstream Range request, laying the host's patches over it as it passes
// (UpstreamRange below feeds the existing Overlay), so memory per response is a chunk buffer and
// a socket's buffers, whatever the image size. http:// sources are read with PlainRangeClient
// (upstream-http.ts), which reads each connection into one buffer instead of node:http's buffer
// per socket read; https:// ones, and replies it does not frame, with node:http(s).
//
// Source URLs may carry credentials or signed query strings; messages name an image by its
// origin and path only.
import { createHash } from "node:crypto";
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";

import { type IsoInspection, inspectIso } from "../patched-iso/patch";
import { PlainRangeClient, UpstreamConnectionError, type UpstreamResponse } from "./upstream-http";
import { httpSource, type RandomAccessSource } from "../patched-iso/source";
import type { PatchedIso } from "../patched-iso/patch";

const REDIRECTS = [301, 302, 303, 307, 308];
const MAX_REDIRECTS = 5;

/** A source ISO that cannot be fetched (HTTP error, refused connection, changed under us). */
export class SourceIsoError extends Error {
  override readonly name = "SourceIsoError";
}

/** An image's URL as messages may show it: no credentials, query or fragment. */
export function displayURL(raw: string): string {
  try {
    const url = new URL(raw);
    return `${url.origin}${url.pathname}`;
  } catch {
    return "(an invalid URL)";
  }
}

interface Inspected {
  inspection: IsoInspection;
  size: number;
  at: number;
}

export interface SourceIsosOptions {
  /** Inspections kept (default 8 source images). */
  maxImages?: number;
  /** Per-host patch lists kept (default 512). */
  maxPatched?: number;
  /** An inspection is redone after this long, to notice a replaced image (default 10 min). */
  inspectionTTLms?: number;
  /** Upstream request timeout while waiting for headers or data (default 30 s). */
  timeoutMs?: number;
}

export class SourceIsos {
  readonly #inspections = new Map<string, Promise<Inspected>>();
  readonly #patched = new Map<string, { url: string; patched: PatchedIso; etag: string }>();
  readonly #http = new HttpAgent({ keepAlive: true, maxSockets: 64 });
  readonly #https = new HttpsAgent({ keepAlive: true, maxSockets: 64 });
  readonly #plain: PlainRangeClient;
  readonly #options: Required<SourceIsosOptions>;

  constructor(options: SourceIsosOptions = {}) {
    this.#options = {
      maxImages: options.maxImages ?? 8,
      maxPatched: options.maxPatched ?? 512,
      inspectionTTLms: options.inspectionTTLms ?? 10 * 60_000,
      timeoutMs: options.timeoutMs ?? 30_000,
    };
    this.#plain = new PlainRangeClient(this.#options.timeoutMs);
  }

  /**
   * The image at `url` patched with `kernelArguments`. Throws SourceIsoError (cannot fetch) or
   * the patched-ISO errors (IsoFormatError, IsoRoomError, IsoNoBootConfigError, ...).
   */
  async patched(
    url: string,
    kernelArguments: readonly string[],
  ): Promise<{ patched: PatchedIso; etag: string }> {
    const { inspection, at } = await this.#inspect(url);
    const key = createHash("sha256")
      .update(`${url}\n${at}\n${kernelArguments.join("\n")}`)
      .digest("hex");
    const hit = this.#patched.get(key);
    if (hit) {
      this.#patched.delete(key);
      this.#patched.set(key, hit);
      return hit;
    }
    const patched = inspection.patch(kernelArguments);
    const digest = createHash("sha256").update(`${url}\n${at}`);
    for (const p of patched.image.patches) digest.update(String(p.offset)).update(p.bytes);
    const entry = { url, patched, etag: `"${digest.digest("hex").slice(0, 32)}"` };
    this.#patched.set(key, entry);
    while (this.#patched.size > this.#options.maxPatched) {
      this.#patched.delete(this.#patched.keys().next().value!);
    }
    return entry;
  }

  /**
   * A source that reads `url` sequentially with one upstream Range request per run of
   * consecutive reads, ending at `endHint` (the last byte the response will need) so the
   * upstream connection can be reused. `close` ends the upstream request early.
   */
  upstream(url: string, size: number, endHint: number): UpstreamRange {
    return new UpstreamRange(url, size, endHint, this);
  }

  /** Forgets an image (it changed under us) so the next request inspects it again. */
  forget(url: string): void {
    this.#inspections.delete(url);
    for (const [key, entry] of this.#patched) if (entry.url === url) this.#patched.delete(key);
  }

  /** Releases the upstream connections. */
  close(): void {
    this.#http.destroy();
    this.#https.destroy();
    this.#plain.destroy();
  }

  /**
   * @internal The upstream GET; used by UpstreamRange. Follows up to five redirects (mirrors
   * redirect to a nearby server, object stores to signed URLs), as the inspection's fetch does;
   * the URL's credentials go only to its own origin.
   */
  async get(url: string, start: number, end: number): Promise<UpstreamResponse> {
    const plain = credentialsApart(url);
    let target = new URL(plain.url);
    const origin = target.origin;
    for (let hop = 0; ; hop++) {
      const headers = target.origin === origin ? plain.headers : {};
      const response = await this.#request(url, target, headers, start, end);
      const location = response.location;
      if (!REDIRECTS.includes(response.statusCode) || !location) return response;
      response.close();
      if (hop === MAX_REDIRECTS) {
        throw new SourceIsoError(
          `the source ISO ${displayURL(url)} redirected more than ${MAX_REDIRECTS} times`,
        );
      }
      target = new URL(location, target);
      if (target.protocol !== "http:" && target.protocol !== "https:") {
        throw new SourceIsoError(
          `the source ISO ${displayURL(url)} redirected to a ${target.protocol} URL`,
        );
      }
    }
  }

  async #request(
    url: string,
    target: URL,
    headers: Record<string, string>,
    start: number,
    end: number,
  ): Promise<UpstreamResponse> {
    const https = target.protocol === "https:";
    if (!https) {
      try {
        const plain = await this.#plain.get(target, { ...headers, Range: `bytes=${start}-${end}` });
        if (plain) return plain;
      } catch (err) {
        if (!(err instanceof UpstreamConnectionError)) throw err;
        throw new SourceIsoError(
          `the source ISO ${displayURL(url)} could not be read: ${err.message}`,
        );
      }
    }
    const message = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = (https ? httpsRequest : httpRequest)(
        target,
        {
          agent: https ? this.#https : this.#http,
          headers: { ...headers, Range: `bytes=${start}-${end}` },
          timeout: this.#options.timeoutMs,
        },
        resolve,
      );
      req.on("timeout", () => req.destroy(new Error("timed out")));
      req.on("error", err =>
        reject(
          new SourceIsoError(`the source ISO ${displayURL(url)} could not be read: ${err.message}`),
        ),
      );
      req.end();
    });
    return new StreamedResponse(message);
  }

  #inspect(url: string): Promise<Inspected> {
    const cached = this.#inspections.get(url);
    if (cached) {
      this.#inspections.delete(url);
      this.#inspections.set(url, cached);
      void cached.then(
        ({ at }) => {
          if (Date.now() - at > this.#options.inspectionTTLms) this.forget(url);
        },
        () => undefined,
      );
      return cached;
    }
    const name = displayURL(url);
    const inspected = (async (): Promise<Inspected> => {
      let source: RandomAccessSource;
      const plain = credentialsApart(url);
      try {
        source = await httpSource(plain.url, { headers: plain.headers });
      } catch (err) {
        throw new SourceIsoError(
          `the source ISO ${name} could not be read: ${messageWithout(err, plain.url, name)}`,
        );
      }
      const inspection = await inspectIso(source, { name });
      return { inspection, size: source.size, at: Date.now() };
    })();
    // A failure is not cached: the next request tries again (the image may appear).
    inspected.catch(() => {
      if (this.#inspections.get(url) === inspected) this.#inspections.delete(url);
    });
    this.#inspections.set(url, inspected);
    while (this.#inspections.size > this.#options.maxImages) {
      this.#inspections.delete(this.#inspections.keys().next().value!);
    }
    return inspected;
  }
}

/**
 * The URL without its user:password, and the Authorization header that carries them instead
 * (fetch refuses URLs with credentials; a header also keeps them out of any URL that is shown).
 */
function credentialsApart(raw: string): { url: string; headers: Record<string, string> } {
  const url = new URL(raw);
  if (!url.username && !url.password) return { url: raw, headers: {} };
  const user = `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`;
  url.username = "";
  url.password = "";
  return {
    url: url.href,
    headers: { Authorization: `Basic ${Buffer.from(user).toString("base64")}` },
  };
}

function messageWithout(err: unknown, url: string, name: string): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split(url).join(name);
}

/**
 * Random access over an upstream image, optimised for what serveRange does: reads in order.
 * Consecutive reads share one upstream response; a read elsewhere starts a new one.
 */
export class UpstreamRange implements RandomAccessSource {
  #response?: UpstreamResponse;
  #position = -1;

  constructor(
    readonly url: string,
    readonly size: number,
    private readonly endHint: number,
    private readonly isos: SourceIsos,
  ) {}

  async read(offset: number, length: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe(length);
    await this.readInto(offset, out);
    return out;
  }

  async readInto(offset: number, target: Buffer): Promise<void> {
    if (offset + target.length > this.size) {
      throw new RangeError(`read of ${target.length} bytes at ${offset} runs past the end`);
    }
    if (target.length === 0) return;
    if (offset !== this.#position || !this.#response) await this.#open(offset);
    let filled = 0;
    while (filled < target.length) {
      const n = await this.#response!.readSome(target.subarray(filled)).catch((err: unknown) => {
        this.close();
        throw new SourceIsoError(
          `the source ISO ${displayURL(this.url)} could not be read at byte ${offset + filled}: ${err instanceof Error ? err.message : String(err)}`,
        );
      });
      if (n === 0) {
        this.close();
        throw new SourceIsoError(
          `the source ISO ${displayURL(this.url)} ended early at byte ${offset + filled}`,
        );
      }
      filled += n;
    }
    this.#position = offset + target.length;
  }

  close(): void {
    this.#response?.close();
    this.#response = undefined;
    this.#position = -1;
  }

  async #open(offset: number): Promise<void> {
    this.close();
    const end = offset <= this.endHint ? this.endHint : this.size - 1;
    const response = await this.isos.get(this.url, offset, end);
    const name = displayURL(this.url);
    const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(response.contentRange ?? "");
    if (response.statusCode !== 206 || !range) {
      response.close();
      throw new SourceIsoError(
        `the source ISO ${name} answered a Range request with ${response.statusCode}, not 206 Partial Content`,
      );
    }
    if (Number(range[1]) !== offset || Number(range[3]) !== this.size) {
      response.close();
      this.isos.forget(this.url);
      throw new SourceIsoError(
        `the source ISO ${name} changed while being served (now ${range[3]} bytes, was ${this.size}); it will be inspected again`,
      );
    }
    this.#response = response;
    this.#position = offset;
  }
}

/** A node:http(s) reply as an UpstreamResponse: its body pieces copied out as asked. */
class StreamedResponse implements UpstreamResponse {
  readonly statusCode: number;
  readonly contentRange: string | undefined;
  readonly location: string | undefined;
  readonly #chunks: AsyncIterator<Buffer>;
  #pending?: Buffer;

  constructor(private readonly message: IncomingMessage) {
    this.statusCode = message.statusCode ?? 0;
    this.contentRange = message.headers["content-range"];
    this.location = message.headers.location;
    this.#chunks = message[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  async readSome(target: Buffer): Promise<number> {
    let chunk = this.#pending;
    this.#pending = undefined;
    if (!chunk) {
      const next = await this.#chunks.next();
      if (next.done) return 0;
      chunk = next.value;
    }
    const take = Math.min(chunk.length, target.length);
    chunk.copy(target, 0, 0, take);
    if (take < chunk.length) this.#pending = chunk.subarray(take);
    return take;
  }

  close(): void {
    this.message.destroy();
  }
}
