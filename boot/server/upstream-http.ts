// A minimal HTTP/1.1 client for the one request the boot service makes per response to a plain
// http:// source ISO: GET with a Range header, body copied straight into the caller's buffer.
// node:http allocates a new 64 KiB buffer for every socket read and copies each body piece into
// yet another one; at 100+ MiB/s those dead buffers are collected late (V8 frees external memory
// by its own schedule) and were most of the service's peak RSS. Here each connection reads into
// ONE buffer of its own (net's `onread`), pausing the socket while the caller has not taken the
// bytes, so streaming allocates nothing per read. Connections are kept alive and reused per
// origin, as node:http's Agent would.
//
// Only what a Range reply needs: a status line, headers and a Content-Length body. A reply framed
// otherwise (chunked, or no length) is left to node:http (`get` answers undefined); https://
// sources use node:https (TLS decryption allocates its own buffers anyway).
import { connect, type Socket } from "node:net";

/** One upstream reply: its status and headers, and a body read into the caller's buffers. */
export interface UpstreamResponse {
  readonly statusCode: number;
  readonly contentRange: string | undefined;
  readonly location: string | undefined;
  /**
   * Copies the next body bytes into `target`; resolves with how many, 0 once the body ended (in
   * full, or cut short by the origin); rejects when the connection fails (timeout, reset).
   */
  readSome(target: Buffer): Promise<number>;
  /** Done with the reply; an unfinished body closes its connection. */
  close(): void;
}

const READ_BUFFER = 64 * 1024;
const MAX_HEAD = 32 * 1024;
const MAX_IDLE_PER_ORIGIN = 64;

interface Head {
  statusCode: number;
  headers: Map<string, string>;
}

/** Thrown when the upstream fails before or during a reply (the caller names the image). */
export class UpstreamConnectionError extends Error {
  override readonly name = "UpstreamConnectionError";
}

class Connection implements UpstreamResponse {
  readonly socket: Socket;
  readonly #buffer = Buffer.allocUnsafe(READ_BUFFER);
  /** Unread bytes of #buffer: [#from, #to). While any are left the socket is paused. */
  #from = 0;
  #to = 0;
  #head = "";
  #onHead?: { resolve(head: Head): void; reject(err: Error): void };
  #waiter?: { target: Buffer; resolve(n: number): void; reject(err: Error): void };
  #remaining = 0;
  /** Why the connection ended: an error, or "eof" (the origin closed it). */
  #ended?: Error | "eof";
  #keepAlive = false;
  statusCode = 0;
  contentRange: string | undefined;
  location: string | undefined;
  /** Whether a request was already answered on this connection (a stale one may be retried). */
  used = false;
  gotBytes = false;

  constructor(
    host: string,
    port: number,
    timeoutMs: number,
    private readonly release: (connection: Connection) => void,
  ) {
    this.socket = connect({
      host,
      port,
      onread: { buffer: this.#buffer, callback: (n: number) => this.#onRead(n) },
    });
    this.socket.setNoDelay(true);
    this.socket.setTimeout(timeoutMs, () => this.socket.destroy(new Error("timed out")));
    this.socket.on("error", err => this.#fail(err));
    this.socket.on("end", () => this.#fail("eof"));
    this.socket.on("close", () => this.#fail("eof"));
  }

  get alive(): boolean {
    return this.#ended === undefined && !this.socket.destroyed;
  }

  /** Sends the request; resolves with the reply's head, its body left to readSome. */
  request(path: string, host: string, headers: Record<string, string>): Promise<Head> {
    this.gotBytes = false;
    this.#head = "";
    this.socket.ref();
    const lines = [`GET ${path} HTTP/1.1`, `Host: ${host}`, "Connection: keep-alive"];
    for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
    const head = new Promise<Head>((resolve, reject) => (this.#onHead = { resolve, reject }));
    this.socket.write(`${lines.join("\r\n")}\r\n\r\n`, "latin1");
    // The last reply's final read may have left the socket paused.
    this.socket.resume();
    return head;
  }

  /** Starts the body of the reply whose head was just read. */
  startBody(head: Head): void {
    this.statusCode = head.statusCode;
    this.contentRange = head.headers.get("content-range");
    this.location = head.headers.get("location");
    this.#remaining = Number(head.headers.get("content-length"));
    this.#keepAlive = !/\bclose\b/i.test(head.headers.get("connection") ?? "");
    this.#settle();
  }

  readSome(target: Buffer): Promise<number> {
    if (this.#remaining === 0 || target.length === 0) return Promise.resolve(0);
    if (this.#to > this.#from) return Promise.resolve(this.#take(target));
    // A body the origin cut short ends (0) here; the caller knows it expected more.
    if (this.#ended === "eof") return Promise.resolve(0);
    if (this.#ended) return Promise.reject(this.#ended);
    return new Promise((resolve, reject) => {
      this.#waiter = { target, resolve, reject };
      this.socket.resume();
    });
  }

  close(): void {
    this.#waiter = undefined;
    if (this.#remaining === 0 && this.#keepAlive && this.alive && this.#to === this.#from) {
      this.used = true;
      this.socket.unref();
      this.release(this);
    } else {
      this.socket.destroy();
    }
  }

  #take(target: Buffer): number {
    const n = Math.min(target.length, this.#to - this.#from, this.#remaining);
    this.#buffer.copy(target, 0, this.#from, this.#from + n);
    this.#from += n;
    this.#remaining -= n;
    if (this.#remaining === 0) this.#from = this.#to;
    if (this.#from === this.#to && this.#remaining > 0) this.socket.resume();
    return n;
  }

  /** A body piece is waiting and so is a reader: hand it over. */
  #settle(): void {
    const waiter = this.#waiter;
    if (!waiter || this.#to === this.#from) return;
    this.#waiter = undefined;
    waiter.resolve(this.#take(waiter.target));
  }

  /** net's onread: `n` new bytes at the start of #buffer. false pauses the socket. */
  #onRead(n: number): boolean {
    this.gotBytes = true;
    this.#from = 0;
    this.#to = n;
    if (this.#onHead) {
      const text = this.#head + this.#buffer.toString("latin1", 0, n);
      const end = text.indexOf("\r\n\r\n");
      if (end < 0) {
        this.#head = text;
        this.#to = 0;
        if (this.#head.length > MAX_HEAD) this.socket.destroy(new Error("reply headers too long"));
        return true;
      }
      this.#from = end + 4 - this.#head.length;
      const onHead = this.#onHead;
      this.#onHead = undefined;
      const head = parseHead(text.slice(0, end));
      if (!head) {
        this.socket.destroy(new Error("the reply is not HTTP/1.x"));
        return false;
      }
      onHead.resolve(head);
    } else {
      this.#settle();
    }
    return this.#to === this.#from;
  }

  #fail(why: Error | "eof"): void {
    this.#ended ??= why;
    const onHead = this.#onHead;
    this.#onHead = undefined;
    onHead?.reject(why === "eof" ? new Error("the connection was closed before a reply") : why);
    // A waiter exists only when no bytes are left to take.
    const waiter = this.#waiter;
    this.#waiter = undefined;
    if (why === "eof") waiter?.resolve(0);
    else waiter?.reject(why);
  }
}

function parseHead(text: string): Head | undefined {
  const [status, ...lines] = text.split("\r\n");
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(status ?? "");
  if (!match) return undefined;
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon > 0)
      headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { statusCode: Number(match[1]), headers };
}

/** Range GETs to http:// origins over kept-alive connections, each reading into its own buffer. */
export class PlainRangeClient {
  readonly #idle = new Map<string, Connection[]>();

  constructor(private readonly timeoutMs: number) {}

  /**
   * GET `url` with `headers`. Resolves with the reply (body unread), or undefined when its body
   * is framed in a way this client leaves to node:http (no Content-Length, or a transfer coding).
   * Rejects with UpstreamConnectionError when the origin cannot be reached or answers garbage.
   */
  async get(url: URL, headers: Record<string, string>): Promise<UpstreamResponse | undefined> {
    const origin = `${url.hostname}:${url.port || "80"}`;
    const path = `${url.pathname}${url.search}`;
    for (;;) {
      const connection = this.#connection(url, origin);
      let head: Head;
      try {
        head = await connection.request(path, url.host, headers);
      } catch (err) {
        connection.socket.destroy();
        // A kept-alive connection the origin closed meanwhile: try again on a new one.
        if (connection.used && !connection.gotBytes) continue;
        throw new UpstreamConnectionError(err instanceof Error ? err.message : String(err));
      }
      const length = head.headers.get("content-length");
      if (head.headers.has("transfer-encoding") || !length || !/^\d+$/.test(length)) {
        const redirect = head.headers.get("location");
        if (redirect && head.statusCode >= 300 && head.statusCode < 400) {
          connection.socket.destroy();
          return { ...noBody(head.statusCode), location: redirect };
        }
        connection.socket.destroy();
        return undefined;
      }
      connection.startBody(head);
      return connection;
    }
  }

  /** Closes every connection. */
  destroy(): void {
    for (const idle of this.#idle.values()) for (const c of idle) c.socket.destroy();
    this.#idle.clear();
  }

  #connection(url: URL, origin: string): Connection {
    const idle = this.#idle.get(origin);
    while (idle?.length) {
      const connection = idle.pop()!;
      if (connection.alive) return connection;
    }
    const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
    return new Connection(host, Number(url.port || "80"), this.timeoutMs, c => {
      let list = this.#idle.get(origin);
      if (!list) this.#idle.set(origin, (list = []));
      if (list.length < MAX_IDLE_PER_ORIGIN) list.push(c);
      else c.socket.destroy();
    });
  }
}

function noBody(statusCode: number): UpstreamResponse {
  return {
    statusCode,
    contentRange: undefined,
    location: undefined,
    readSome: () => Promise.resolve(0),
    close: () => undefined,
  };
}
