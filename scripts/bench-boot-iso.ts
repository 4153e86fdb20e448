// Benchmark of patched-ISO serving (boot/patched-iso): a 1 GiB ISO-like image (a real ISO9660
// header region mastered by xorriso, with GRUB and isolinux configuration, extended to 1 GiB as a
// sparse file) patched with kernel arguments and served over HTTP on 127.0.0.1 by a tiny node:http
// server using serveRange, to 20 concurrent clients, each reading the whole image in 1 MiB Range
// requests in random order, as BMCs read virtual media.
//
//   npx tsx scripts/bench-boot-iso.ts [--size-mib 1024] [--clients 20] [--range-kib 1024]
//       [--chunk-kib 256] [--out docs/benchmarks/boot-iso.md]
//
// The server runs in a child process (this script with --serve) so that its peak RSS (VmHWM) and
// CPU time are its own, not the clients'. Reported: aggregate MiB/s over all clients (bytes
// received / wall time), requests per second, the server's peak RSS and CPU seconds, and the
// machine's load average before and after (the 2 cores are shared with other work, so figures
// from a loaded machine are lower bounds). Every response's status, Content-Range and length are
// checked, and one client compares the patched regions byte for byte with a local Overlay.
import { build } from "esbuild";
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { Agent, createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";

import { fileSource, patchIso, sendBody, serveRange } from "../boot/patched-iso";

const KERNEL_ARGUMENTS = [
  "console=ttyS0,115200n8",
  "ds=nocloud;s=http://10.0.0.1:8080/host-1/",
  "beskar7.host=host-1",
];

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

function vmHwmKiB(): number {
  const status = readFileSync("/proc/self/status", "utf8");
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
}

/** The server: patches the image at `path` and serves it until killed. */
async function serve(path: string, chunkSize: number): Promise<void> {
  const source = await fileSource(path);
  const patched = await patchIso(source, { kernelArguments: KERNEL_ARGUMENTS, name: "bench.iso" });
  // Where the memory goes: the peak of each part of process.memoryUsage(), sampled.
  const peaks = { heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 };
  setInterval(() => {
    const usage = process.memoryUsage();
    for (const key of Object.keys(peaks) as Array<keyof typeof peaks>) {
      peaks[key] = Math.max(peaks[key], usage[key]);
    }
  }, 50).unref();
  const server = createServer((req, res) => {
    if (req.url === "/stats") {
      const usage = process.resourceUsage();
      res.end(
        JSON.stringify({
          peakRssKiB: vmHwmKiB(),
          cpuSeconds: (usage.userCPUTime + usage.systemCPUTime) / 1e6,
          patchBytes: patched.image.patchBytes,
          peaksMiB: Object.fromEntries(
            Object.entries(peaks).map(([k, v]) => [k, Math.round(v / 1024 / 1024)]),
          ),
        }),
      );
      return;
    }
    const response = serveRange({
      size: patched.image.size,
      read: (offset, length) => patched.image.read(offset, length),
      readInto: (offset, target) => patched.image.readInto(offset, target),
      range: req.headers.range,
      method: req.method,
      contentType: "application/x-iso9660-image",
      chunkSize,
    });
    res.writeHead(response.status, response.headers);
    // One reused chunk buffer per response, each written before the next is read.
    sendBody(response.body, res).catch(() => undefined);
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, "127.0.0.1", () => {
    process.stdout.write(`RSS ${vmHwmKiB()}\n`);
    process.stdout.write(`PORT ${(server.address() as AddressInfo).port}\n`);
  });
}

function get(
  agent: Agent,
  port: number,
  path: string,
  range?: string,
): Promise<{ status: number; headers: Record<string, unknown>; body?: Buffer; length: number }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, path, agent, headers: range ? { Range: range } : {} },
      res => {
        const keep = path === "/stats" || range?.startsWith("check:") === true;
        const parts: Buffer[] = [];
        let length = 0;
        res.on("data", (chunk: Buffer) => {
          length += chunk.length;
          if (keep) parts.push(chunk);
        });
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            length,
            ...(keep ? { body: Buffer.concat(parts) } : {}),
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end();
  });
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

async function main(): Promise<void> {
  const chunkSize = option("chunk-kib", 256) * 1024;
  if (process.argv[2] === "--serve") return serve(process.argv[3]!, chunkSize);
  const sizeMiB = option("size-mib", 1024);
  const clients = option("clients", 20);
  const rangeBytes = option("range-kib", 1024) * 1024;
  const outIndex = process.argv.indexOf("--out");
  const out = outIndex >= 0 ? process.argv[outIndex + 1] : undefined;

  const dir = mkdtempSync(join(tmpdir(), "beskar7-bench-iso-"));
  let child: ReturnType<typeof spawn> | undefined;
  try {
    // A real ISO9660 head (descriptors, directories, boot configuration), then sparse padding.
    const tree = join(dir, "tree");
    const files: Record<string, string> = {
      "boot/grub/grub.cfg": `menuentry "Install" {\n  linux /casper/vmlinuz quiet ---\n  initrd /casper/initrd\n}\n`,
      "isolinux/isolinux.cfg":
        "default install\nlabel install\n  kernel /casper/vmlinuz\n  append initrd=/casper/initrd quiet ---\n",
    };
    for (const [path, content] of Object.entries(files)) {
      mkdirSync(dirname(join(tree, path)), { recursive: true });
      writeFileSync(join(tree, path), content);
    }
    const iso = join(dir, "bench.iso");
    execFileSync("xorriso", ["-as", "mkisofs", "-J", "-R", "-o", iso, tree], { stdio: "pipe" });
    truncateSync(iso, sizeMiB * 1024 * 1024);
    const size = sizeMiB * 1024 * 1024;

    // The server runs as plain JavaScript (this script bundled), so its RSS holds no TypeScript
    // loader: what it measures is what a bundled boot service would use.
    const bundle = join(dir, "server.js");
    await build({
      entryPoints: [__filename],
      bundle: true,
      platform: "node",
      format: "cjs",
      outfile: bundle,
      logLevel: "silent",
    });
    child = spawn(
      process.execPath,
      [bundle, "--serve", iso, "--chunk-kib", String(chunkSize / 1024)],
      {
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    let startupRssKiB = 0;
    const port = await new Promise<number>((resolve, reject) => {
      let text = "";
      child!.stdout!.on("data", (chunk: Buffer) => {
        text += chunk.toString();
        startupRssKiB = Number(/RSS (\d+)/.exec(text)?.[1] ?? 0);
        const match = /PORT (\d+)/.exec(text);
        if (match) resolve(Number(match[1]));
      });
      child!.on("exit", code => reject(new Error(`server exited (${code})`)));
    });

    // The patched regions, byte for byte, against a local Overlay of the same image.
    const local = await patchIso(await fileSource(iso), { kernelArguments: KERNEL_ARGUMENTS });
    const checkAgent = new Agent({ keepAlive: true });
    for (const p of local.image.patches) {
      const start = Math.max(0, p.offset - 100);
      const end = Math.min(size - 1, p.offset + p.bytes.length + 100);
      const got = await new Promise<Buffer>((resolve, reject) => {
        request(
          {
            host: "127.0.0.1",
            port,
            path: "/bench.iso",
            agent: checkAgent,
            headers: { Range: `bytes=${start}-${end}` },
          },
          res => {
            const parts: Buffer[] = [];
            res.on("data", (c: Buffer) => parts.push(c));
            res.on("end", () => resolve(Buffer.concat(parts)));
          },
        )
          .on("error", reject)
          .end();
      });
      if (!got.equals(await local.image.read(start, end - start + 1))) {
        throw new Error(`patched bytes at ${start}-${end} differ from the local overlay`);
      }
    }
    checkAgent.destroy();

    const loadBefore = loadavg();
    const uptimeBefore = execFileSync("uptime").toString().trim();
    const agent = new Agent({ keepAlive: true, maxSockets: clients });
    const count = Math.ceil(size / rangeBytes);
    let requests = 0;
    let received = 0;
    const started = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: clients }, async () => {
        for (const index of shuffle(Array.from({ length: count }, (_, i) => i))) {
          const startByte = index * rangeBytes;
          const endByte = Math.min(size, startByte + rangeBytes) - 1;
          const response = await get(agent, port, "/bench.iso", `bytes=${startByte}-${endByte}`);
          if (
            response.status !== 206 ||
            response.headers["content-range"] !== `bytes ${startByte}-${endByte}/${size}` ||
            response.length !== endByte - startByte + 1
          ) {
            throw new Error(
              `bad response to bytes=${startByte}-${endByte}: ${response.status}, ${response.length} bytes`,
            );
          }
          requests++;
          received += response.length;
        }
      }),
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const loadAfter = loadavg();
    const uptimeAfter = execFileSync("uptime").toString().trim();
    const stats = JSON.parse((await get(agent, port, "/stats")).body!.toString()) as {
      peakRssKiB: number;
      cpuSeconds: number;
      patchBytes: number;
      peaksMiB: Record<string, number>;
    };
    agent.destroy();

    const mibPerSecond = received / 1024 / 1024 / seconds;
    const peakRssMiB = stats.peakRssKiB / 1024;
    const report = [
      `| image | clients | range size | chunk | requests | bytes served | wall time | aggregate | requests/s | server peak RSS | server CPU |`,
      `| ----- | ------- | ---------- | ----- | -------- | ------------ | --------- | --------- | ---------- | --------------- | ---------- |`,
      `| ${sizeMiB} MiB | ${clients} | ${rangeBytes / 1024} KiB | ${chunkSize / 1024} KiB | ${requests} | ${(received / 1024 ** 3).toFixed(1)} GiB | ${seconds.toFixed(1)} s | ` +
        `**${mibPerSecond.toFixed(0)} MiB/s** | ${(requests / seconds).toFixed(0)} | **${peakRssMiB.toFixed(0)} MiB** | ${stats.cpuSeconds.toFixed(1)} s |`,
      ``,
      `Server RSS once listening, before any request: ${(startupRssKiB / 1024).toFixed(0)} MiB; ` +
        `peaks while serving (MiB, sampled every 50 ms): ${Object.entries(stats.peaksMiB)
          .map(([k, v]) => `${k} ${v}`)
          .join(", ")}. ` +
        `Overlay: ${local.image.patches.length} patches, ${stats.patchBytes} bytes. Machine: ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), Node ${process.version}.`,
      `Load before: \`${uptimeBefore}\` (1-min ${loadBefore[0]!.toFixed(2)}); after: \`${uptimeAfter}\` (1-min ${loadAfter[0]!.toFixed(2)}).`,
      `Targets: ≥ 100 MiB/s aggregate (${mibPerSecond >= 100 ? "met" : "NOT met"}), < 128 MiB server RSS (${peakRssMiB < 128 ? "met" : "NOT met"}).`,
    ].join("\n");
    process.stdout.write(`${report}\n`);
    if (out) writeFileSync(out, `${report}\n`);
  } finally {
    child?.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch(err => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
