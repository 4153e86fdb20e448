// The boot service's own Range client for http:// source ISOs (boot/server/upstream-http.ts),
// against a raw TCP origin that frames replies as the test needs: a head split over several
// writes and a body in pieces read into small buffers, byte for byte; kept-alive connections
// reused; a connection the origin closed replaced; a chunked reply left to node:http (and still
// served right through SourceIsos); a body cut short, or stalled past the timeout, is an error
// naming the byte it stopped at; an origin that is down is an UpstreamConnectionError.
import { createServer, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";

import { SourceIsoError, SourceIsos } from "../../../boot/server/source-isos";
import {
  PlainRangeClient,
  UpstreamConnectionError,
  type UpstreamResponse,
} from "../../../boot/server/upstream-http";

const IMAGE = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 31 + 7) & 255));

type Reply = (socket: Socket, start: number, end: number) => Promise<void> | void;

const pause = (ms: number) => new Promise(r => setTimeout(r, ms));

/** Answers each `Range: bytes=a-b` request on a connection with `reply`. */
async function rawOrigin(
  reply: Reply,
): Promise<{ url: string; server: Server; connections: number; requests: string[] }> {
  const state = { url: "", server: createServer(), connections: 0, requests: [] as string[] };
  state.server.on("connection", socket => {
    state.connections++;
    let text = "";
    socket.on("data", async chunk => {
      text += chunk.toString("latin1");
      let end: number;
      while ((end = text.indexOf("\r\n\r\n")) >= 0) {
        const head = text.slice(0, end);
        text = text.slice(end + 4);
        state.requests.push(head);
        const range = /range: bytes=(\d+)-(\d+)/i.exec(head)!;
        await reply(socket, Number(range[1]), Number(range[2]));
      }
    });
    socket.on("error", () => undefined);
  });
  await new Promise<void>(r => state.server.listen(0, "127.0.0.1", r));
  state.url = `http://127.0.0.1:${(state.server.address() as AddressInfo).port}/image.iso`;
  return state;
}

function head206(start: number, end: number, extra = ""): string {
  return (
    `HTTP/1.1 206 Partial Content\r\nContent-Range: bytes ${start}-${end}/${IMAGE.length}\r\n` +
    `Content-Length: ${end - start + 1}\r\n${extra}\r\n`
  );
}

/** Reads the whole body into `size`-byte buffers. */
async function readAll(response: UpstreamResponse, size: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (;;) {
    const target = Buffer.alloc(size);
    const n = await response.readSome(target);
    if (n === 0) return Buffer.concat(parts);
    parts.push(target.subarray(0, n));
  }
}

describe("PlainRangeClient", () => {
  const closers: Array<() => void> = [];
  afterEach(() => {
    for (const close of closers.splice(0)) close();
  });

  it("reads a reply whose head and body arrive in pieces, and reuses the connection", async () => {
    const origin = await rawOrigin(async (socket, start, end) => {
      const head = head206(start, end);
      socket.write(head.slice(0, 20));
      await pause(5);
      socket.write(head.slice(20) + IMAGE.subarray(start, start + 10).toString("latin1"), "latin1");
      await pause(5);
      socket.write(IMAGE.subarray(start + 10, end + 1));
    });
    const client = new PlainRangeClient(5000);
    closers.push(
      () => client.destroy(),
      () => origin.server.close(),
    );
    for (const [start, end] of [
      [0, 99_999],
      [150_000, 199_999],
    ] as const) {
      const response = (await client.get(new URL(origin.url), {
        Range: `bytes=${start}-${end}`,
      }))!;
      expect(response.statusCode).toBe(206);
      expect(response.contentRange).toBe(`bytes ${start}-${end}/${IMAGE.length}`);
      expect((await readAll(response, 7000)).equals(IMAGE.subarray(start, end + 1))).toBe(true);
      response.close();
    }
    expect(origin.connections).toBe(1);
    expect(origin.requests[0]).toMatch(
      /^GET \/image\.iso HTTP\/1\.1\r\nHost: 127\.0\.0\.1:\d+\r\n/,
    );
  });

  it("replaces a kept-alive connection the origin closed", async () => {
    const origin = await rawOrigin((socket, start, end) => {
      socket.write(head206(start, end));
      socket.end(IMAGE.subarray(start, end + 1));
    });
    const client = new PlainRangeClient(5000);
    closers.push(
      () => client.destroy(),
      () => origin.server.close(),
    );
    for (let i = 0; i < 2; i++) {
      const response = (await client.get(new URL(origin.url), { Range: "bytes=0-999" }))!;
      expect((await readAll(response, 4096)).equals(IMAGE.subarray(0, 1000))).toBe(true);
      response.close();
      await pause(20);
    }
    expect(origin.connections).toBe(2);
  });

  it("leaves a chunked reply to node:http, which SourceIsos then serves right", async () => {
    const origin = await rawOrigin((socket, start, end) => {
      const body = IMAGE.subarray(start, end + 1);
      socket.write(
        `HTTP/1.1 206 Partial Content\r\nContent-Range: bytes ${start}-${end}/${IMAGE.length}\r\n` +
          `Transfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n`,
      );
      socket.write(body);
      socket.write("\r\n0\r\n\r\n");
    });
    const client = new PlainRangeClient(5000);
    const isos = new SourceIsos();
    closers.push(
      () => client.destroy(),
      () => isos.close(),
      () => origin.server.close(),
    );
    expect(await client.get(new URL(origin.url), { Range: "bytes=0-9" })).toBeUndefined();
    const upstream = isos.upstream(origin.url, IMAGE.length, 59_999);
    const target = Buffer.alloc(30_000);
    await upstream.readInto(0, target);
    expect(target.equals(IMAGE.subarray(0, 30_000))).toBe(true);
    await upstream.readInto(30_000, target);
    expect(target.equals(IMAGE.subarray(30_000, 60_000))).toBe(true);
    upstream.close();
  });

  it("names the byte a body cut short stopped at", async () => {
    const origin = await rawOrigin((socket, start, end) => {
      socket.write(head206(start, end));
      socket.end(IMAGE.subarray(start, start + 5000));
    });
    const isos = new SourceIsos();
    closers.push(
      () => isos.close(),
      () => origin.server.close(),
    );
    const upstream = isos.upstream(origin.url, IMAGE.length, 19_999);
    const error = await upstream.readInto(0, Buffer.alloc(20_000)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SourceIsoError);
    expect((error as Error).message).toBe(`the source ISO ${origin.url} ended early at byte 5000`);
  });

  it("names the byte where an origin that stalls timed out", async () => {
    const origin = await rawOrigin((socket, start, end) => {
      socket.write(head206(start, end));
      socket.write(IMAGE.subarray(start, start + 3000));
    });
    const isos = new SourceIsos({ timeoutMs: 200 });
    closers.push(
      () => isos.close(),
      () => origin.server.close(),
    );
    const upstream = isos.upstream(origin.url, IMAGE.length, 19_999);
    const error = await upstream.readInto(0, Buffer.alloc(20_000)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SourceIsoError);
    expect((error as Error).message).toBe(
      `the source ISO ${origin.url} could not be read at byte 3000: timed out`,
    );
  });

  it("fails with UpstreamConnectionError when the origin is down", async () => {
    const origin = await rawOrigin(() => undefined);
    const url = new URL(origin.url);
    await new Promise(r => origin.server.close(r));
    const client = new PlainRangeClient(5000);
    closers.push(() => client.destroy());
    await expect(client.get(url, { Range: "bytes=0-9" })).rejects.toBeInstanceOf(
      UpstreamConnectionError,
    );
  });
});
