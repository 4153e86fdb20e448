// A local image server with HTTP Range support: what a site's HTTP server for ISOs and network boot
// images is, for the programs that need one on 127.0.0.1 (the boot service's integration tests,
// scripts/bench-machines.ts). It serves in-memory files through the boot library's own Range
// logic, so BMCs, the boot service and a simulated OS read it as they would a real server.
import http from "node:http";
import type { AddressInfo } from "node:net";

import { sendBody, serveRange } from "../boot/patched-iso";

export async function imageServer(
  files: Record<string, Buffer>,
): Promise<{ url: string; close(): void }> {
  const server = http.createServer((req, res) => {
    const body = files[req.url ?? ""];
    if (!body) {
      res.writeHead(404).end("not found\n");
      return;
    }
    const response = serveRange({
      size: body.length,
      read: async (offset, length) => body.subarray(offset, offset + length),
      range: req.headers.range,
      etag: `"${body.length}"`,
      method: req.method,
      contentType: "application/octet-stream",
    });
    res.writeHead(response.status, response.headers);
    void sendBody(response.body, res);
  });
  await new Promise<void>(resolve => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => server.close() };
}
