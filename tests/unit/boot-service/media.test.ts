// The media the boot server streams to BMCs. A stock ISO (mastered by xorriso, GRUB and isolinux
// configuration) on an origin server is served patched with the host's kernel arguments: every
// random Range (property test) equals the same bytes of the patched image built in full with the
// arguments the host must get, and xorriso reads the served image's grub.cfg with them; a Range
// past the end is 416; an origin that 404s or an image that is not ISO9660 or has no room gets a
// clear error naming the image (no token, no credentials from its URL). The per-host config
// volume reads back with isoinfo and xorriso, and its Range requests are consistent.
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { applyPatches, bufferSource, patchIso } from "../../../boot/patched-iso";
import { BootPaths, bootToken } from "../../../boot/session";
import { sessionOf, type HostView } from "../../../boot/server";
import { buildIso, extractFromIso, tempDir } from "../boot/patched-iso-fixtures";
import {
  MemoryDirectory,
  get,
  provisioningHost,
  startBootServer,
  startOrigin,
  type TestServer,
} from "./support";

const GRUB = `set timeout=1\nmenuentry "Install" {\n  linux /boot/vmlinuz quiet ---\n  initrd /boot/initrd\n}\n`;
const ISOLINUX =
  "default install\nlabel install\n  kernel /boot/vmlinuz\n  append initrd=/boot/initrd quiet ---\n";

describe("boot server media", () => {
  const directory = new MemoryDirectory();
  let server: TestServer;
  let origin: Awaited<ReturnType<typeof startOrigin>>;
  let stock: Buffer;

  beforeAll(async () => {
    stock = buildIso({
      "boot/grub/grub.cfg": GRUB,
      "isolinux/isolinux.cfg": ISOLINUX,
      // Some bulk, so ranges cross many sectors and chunks.
      "data/filler.bin": Buffer.alloc(700_000, 7),
    });
    // A grub.cfg that fills its sector to the last 10 bytes: no room for a config URL.
    const full = GRUB.replace(
      "set timeout=1\n",
      `# ${"x".repeat(2048 - GRUB.length - 13)}\nset timeout=1\n`,
    );
    origin = await startOrigin(
      {
        "/stock.iso": stock,
        "/full.iso": buildIso({ "boot/grub/grub.cfg": full }),
        "/random.bin": Buffer.alloc(300_000, 0x5a),
      },
      // A mirror redirect, as download sites do; and a loop.
      { "/mirror/stock.iso": "/stock.iso", "/loop.iso": "/loop.iso" },
    );
    server = await startBootServer(directory, { pathPrefix: "/boot" });
  });
  afterAll(async () => {
    await server.close();
    await origin.close();
  });

  const mediaURL = (h: HostView) =>
    `${server.base}${BootPaths.bootIso(h.systemUUID, bootToken(server.key, "media", sessionOf(h)))}`;
  const patchedHost = (bootISO: string) => {
    const host = provisioningHost({
      provisioning: { osFamily: "kairos", bootISO, bootstrapDataSecretRef: "b" },
    });
    directory.put(host);
    return host;
  };

  it("serves the patched image correctly for any Range (property test)", async () => {
    const host = patchedHost(origin.url("/stock.iso"));
    // What the host must get: Kairos reads config_url; the URL is its bootstrap endpoint.
    const bootstrap = bootToken(server.key, "bootstrap", sessionOf(host));
    const expectedArgs = [`config_url=${server.base}/v1/config/${host.systemUUID}/${bootstrap}`];
    const planned = await patchIso(bufferSource(stock), { kernelArguments: expectedArgs });
    const full = applyPatches(stock, planned.image.patches);
    expect(full.equals(stock)).toBe(false);

    const whole = await get(mediaURL(host));
    expect(whole.status, whole.body.subarray(0, 300).toString()).toBe(200);
    expect(whole.headers["content-type"]).toBe("application/x-iso9660-image");
    expect(whole.body.equals(full)).toBe(true);
    // An independent reader finds the arguments in both boot loaders.
    const linux = extractFromIso(whole.body, "/boot/grub/grub.cfg")
      .toString()
      .split("\n")
      .find(line => line.trim().startsWith("linux "));
    expect(linux?.trim().split(/\s+/)).toContain(expectedArgs[0]);
    expect(extractFromIso(whole.body, "/isolinux/isolinux.cfg").toString()).toContain(
      expectedArgs[0],
    );

    let seed = 0x1234567;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const patchOffsets = planned.image.patches.map(p => p.offset);
    for (let i = 0; i < 60; i++) {
      // Half the ranges start near a patch, where an off-by-one would show.
      const near = patchOffsets[random(patchOffsets.length)]!;
      const start = i % 2 === 0 ? Math.max(0, near - random(3000)) : random(full.length);
      const length = 1 + random(i % 3 === 0 ? 600_000 : 5000);
      const end = Math.min(full.length - 1, start + length - 1);
      const answer = await get(mediaURL(host), { headers: { Range: `bytes=${start}-${end}` } });
      expect(answer.status).toBe(206);
      expect(answer.headers["content-range"]).toBe(`bytes ${start}-${end}/${full.length}`);
      expect(answer.body.equals(full.subarray(start, end + 1)), `bytes=${start}-${end}`).toBe(true);
    }
    // Suffix and open-ended ranges, and two ranges at once.
    const suffix = await get(mediaURL(host), { headers: { Range: "bytes=-5000" } });
    expect(suffix.body.equals(full.subarray(full.length - 5000))).toBe(true);
    const open = await get(mediaURL(host), {
      headers: { Range: `bytes=${full.length - 70_000}-` },
    });
    expect(open.body.equals(full.subarray(full.length - 70_000))).toBe(true);
    const multi = await get(mediaURL(host), {
      headers: { Range: `bytes=0-99,${patchOffsets[0]}-${patchOffsets[0]! + 99}` },
    });
    expect(multi.status).toBe(206);
    expect(multi.body.includes(full.subarray(patchOffsets[0]!, patchOffsets[0]! + 100))).toBe(true);

    const past = await get(mediaURL(host), { headers: { Range: `bytes=${full.length}-` } });
    expect(past.status).toBe(416);
    expect(past.headers["content-range"]).toBe(`bytes */${full.length}`);
    const head = await get(mediaURL(host), { method: "HEAD" });
    expect([head.status, head.headers["content-length"], head.body.length]).toEqual([
      200,
      String(full.length),
      0,
    ]);
  });

  it("answers a source ISO that 404s, is not ISO9660 or has no room with what is wrong", async () => {
    const cases: Array<[string, number, RegExp]> = [
      [
        "/missing.iso",
        502,
        /source ISO http:\/\/127\.0\.0\.1:\d+\/missing\.iso could not be read: .*404/,
      ],
      ["/random.bin", 422, /is not an ISO9660 image|volume descriptor/],
      [
        "/full.iso",
        422,
        /\/boot\/grub\/grub\.cfg in http:\/\/127\.0\.0\.1:\d+\/full\.iso has \d+ bytes of room, the arguments need \d+ \(\d+ bytes short\)/,
      ],
    ];
    for (const [path, status, message] of cases) {
      const host = patchedHost(origin.url(path));
      const answer = await get(mediaURL(host), { headers: { Range: "bytes=0-1023" } });
      const text = answer.body.toString();
      expect({ path, status: answer.status }).toEqual({ path, status });
      expect(text).toMatch(message);
      for (const secret of [
        "secret",
        "s3cr3t",
        "user:",
        bootToken(server.key, "media", sessionOf(host)),
      ]) {
        expect(text).not.toContain(secret);
      }
      expect(text).not.toContain(bootToken(server.key, "bootstrap", sessionOf(host)));
    }
    expect(
      server.metrics.get("beskar7_boot_errors_total", { kind: "source-iso-unreachable" }),
    ).toBe(1);
    expect(server.metrics.get("beskar7_boot_errors_total", { kind: "source-iso-no-room" })).toBe(1);
  });

  it("follows a mirror's redirect and refuses a redirect loop", async () => {
    const host = patchedHost(origin.url("/mirror/stock.iso"));
    const answer = await get(mediaURL(host), { headers: { Range: "bytes=32768-40959" } });
    expect(answer.status).toBe(206);
    expect(answer.body.equals(stock.subarray(32768, 40960))).toBe(true);
    const loop = await get(mediaURL(patchedHost(origin.url("/loop.iso"))));
    expect(loop.status).toBe(502);
    expect(loop.body.toString()).toMatch(/loop\.iso/);
  });

  it("inspects a stock ISO once for many hosts", async () => {
    const before = origin.requests.filter(r => r.startsWith("/stock.iso")).length;
    const hosts = [1, 2, 3].map(() => patchedHost(origin.url("/stock.iso")));
    for (const host of hosts) {
      expect((await get(mediaURL(host), { headers: { Range: "bytes=0-2047" } })).status).toBe(206);
    }
    // One upstream request per response; the inspection was cached by the first test.
    expect(origin.requests.filter(r => r.startsWith("/stock.iso")).length - before).toBe(3);
  });

  it("serves a pre-baked ISO's bootstrap data on a NoCloud cidata volume (no osFamily)", async () => {
    const userData = "#cloud-config\nhostname: prebaked\n";
    const host = provisioningHost({
      boot: { ...provisioningHost().boot!, delivery: "ConfigVolume" },
      provisioning: { bootstrapDataSecretRef: "b" },
    });
    directory.put(host);
    directory.data.set(host.key, Buffer.from(userData));
    const url = `${server.base}${BootPaths.configIso(host.systemUUID, bootToken(server.key, "media", sessionOf(host)))}`;
    const whole = await get(url);
    expect(whole.status).toBe(200);
    expect(extractFromIso(whole.body, "/user-data", "joliet").toString()).toBe(userData);
    expect(extractFromIso(whole.body, "/meta-data", "joliet").toString()).toMatch(/^instance-id: /);
    expect(whole.body.subarray(32768 + 40, 32768 + 46).toString()).toBe("cidata");
  });

  it("serves the host's config volume, the same bytes for every Range", async () => {
    const cloudConfig = "#cloud-config\nusers:\n  - name: kairos\n";
    const host = provisioningHost({
      boot: { ...provisioningHost().boot!, delivery: "ConfigVolume" },
      provisioning: { osFamily: "kairos", bootstrapDataSecretRef: "b" },
    });
    directory.put(host);
    directory.data.set(host.key, Buffer.from(cloudConfig));
    const url = `${server.base}${BootPaths.configIso(host.systemUUID, bootToken(server.key, "media", sessionOf(host)))}`;
    const whole = await get(url);
    expect(whole.status).toBe(200);
    const dir = tempDir();
    try {
      const file = join(dir.path, "config.iso");
      writeFileSync(file, whole.body);
      expect(execFileSync("isoinfo", ["-d", "-i", file]).toString()).toContain(
        "Volume id: cidata\n",
      );
      expect(execFileSync("isoinfo", ["-J", "-i", file, "-x", "/user-data"]).toString()).toBe(
        cloudConfig,
      );
    } finally {
      dir.remove();
    }
    expect(extractFromIso(whole.body, "/user-data", "joliet").toString()).toBe(cloudConfig);
    expect(extractFromIso(whole.body, "/meta-data", "joliet").toString()).toMatch(/^instance-id: /);
    for (const [start, end] of [
      [0, 99],
      [32768, 34815],
      [whole.body.length - 10, whole.body.length - 1],
    ]) {
      const part = await get(url, { headers: { Range: `bytes=${start}-${end}` } });
      expect(part.status).toBe(206);
      expect(part.body.equals(whole.body.subarray(start!, end! + 1))).toBe(true);
    }
    expect((await get(url, { headers: { Range: `bytes=${whole.body.length}-` } })).status).toBe(
      416,
    );
  });
});
