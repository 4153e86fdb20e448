// The boot server's host-facing endpoints besides media: the bootstrap data (exact bytes, a
// content type the OS accepts, configFetchedTime recorded once), the inspection report (accepted
// only while the host is inspecting; oversized and malformed reports refused with the field named
// and nothing recorded) and the iPXE script (served only while inspecting, with the config and
// report URLs carrying their tokens).
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { BootPaths, bootToken } from "../../../boot/session";
import { MAX_REPORT_BYTES, sessionOf, type HostView } from "../../../boot/server";
import { IPXE_INITRD_NAME } from "../../../boot/server/handler";
import {
  MemoryDirectory,
  get,
  provisioningHost,
  startBootServer,
  type TestServer,
} from "./support";

describe("boot server endpoints", () => {
  const directory = new MemoryDirectory();
  let server: TestServer;

  beforeAll(async () => {
    server = await startBootServer(directory);
  });
  afterAll(() => server.close());

  const url = (h: HostView, kind: "config" | "report") =>
    `${server.base}${BootPaths[kind](h.systemUUID, bootToken(server.key, kind === "config" ? "bootstrap" : "report", sessionOf(h)))}`;
  const signalsOf = (h: HostView) => directory.signals.filter(s => s.host === h.key);

  describe("bootstrap data", () => {
    it("serves the Secret's bytes exactly and records configFetchedTime once", async () => {
      const host = provisioningHost();
      directory.put(host);
      const ignition = Buffer.from(JSON.stringify({ ignition: { version: "3.4.0" } }));
      directory.data.set(host.key, ignition);
      const answer = await get(url(host, "config"));
      expect(answer.status).toBe(200);
      expect(answer.body.equals(ignition)).toBe(true);
      expect(answer.headers["content-type"]).toBe("application/json");
      expect(answer.headers["cache-control"]).toBe("no-store");
      const recorded = signalsOf(host);
      expect(recorded).toHaveLength(1);
      const fetched = (recorded[0]!.signal as { configFetchedTime: string }).configFetchedTime;
      expect(Math.abs(Date.parse(fetched) - Date.now())).toBeLessThan(10_000);

      // Once recorded (the host's status carries it), a fetch again changes nothing.
      directory.put({ ...host, boot: { ...host.boot!, configFetchedTime: fetched } });
      expect((await get(url(host, "config"))).status).toBe(200);
      expect(signalsOf(host)).toHaveLength(1);
      // A HEAD is not a fetch.
      const other = provisioningHost();
      directory.put(other);
      directory.data.set(other.key, Buffer.from("#!/bin/bash\necho combustion\n"));
      const head = await get(url(other, "config"), { method: "HEAD" });
      expect([head.status, head.headers["content-type"], head.body.length]).toEqual([
        200,
        "text/x-shellscript",
        0,
      ]);
      expect(signalsOf(other)).toHaveLength(0);
    });

    it("serves binary data as it is and says when a host has none", async () => {
      const host = provisioningHost();
      directory.put(host);
      const binary = Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x80]);
      directory.data.set(host.key, binary);
      const answer = await get(url(host, "config"));
      expect(answer.body.equals(binary)).toBe(true);
      expect(answer.headers["content-type"]).toBe("application/octet-stream");
      const none = provisioningHost();
      directory.put(none);
      const missing = await get(url(none, "config"));
      expect(missing.status).toBe(404);
      expect(missing.body.toString()).toContain("has no bootstrap data");
    });
  });

  describe("inspection report", () => {
    const inspecting = () => {
      const host = provisioningHost({
        boot: { ...provisioningHost().boot!, delivery: "NetworkBoot" },
        provisioning: { targetImageURL: "http://images.example/kairos.efi", osFamily: "kairos" },
      });
      directory.put(host);
      return host;
    };
    const report = (h: HostView) => ({
      systemUUID: h.systemUUID.toUpperCase(),
      cpu: { count: 2, cores: 32, model: "AMD EPYC 7543" },
      memoryMiB: 262144,
      disks: [{ name: "nvme0n1", sizeBytes: 1_920_383_410_176, type: "NVMe" }],
      nics: [{ mac: "b8:ca:3a:6e:12:34", name: "eno1" }],
    });
    const post = (h: HostView, body: unknown) =>
      get(url(h, "report"), {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: typeof body === "string" ? body : JSON.stringify(body),
      });

    it("accepts a valid report while the host is inspecting and records it", async () => {
      const host = inspecting();
      const answer = await post(host, report(host));
      expect(answer.status).toBe(202);
      const [recorded] = signalsOf(host);
      expect(recorded!.signal).toMatchObject({ report: report(host) });
      expect((recorded!.signal as { reportedTime: string }).reportedTime).toMatch(/^\d{4}-/);
    });

    it("refuses oversized and malformed reports with the field named, recording nothing", async () => {
      const host = inspecting();
      const cases: Array<[string, unknown, number, RegExp]> = [
        [
          "oversized",
          { ...report(host), padding: "x".repeat(MAX_REPORT_BYTES) },
          413,
          /at most 65536/,
        ],
        ["not JSON", "{cpu:", 400, /not valid JSON/],
        [
          "cpu.count a string",
          { ...report(host), cpu: { count: "two", cores: 1, model: "x" } },
          400,
          /field cpu\.count/,
        ],
        ["missing memoryMiB", { ...report(host), memoryMiB: undefined }, 400, /memoryMiB/],
        [
          "bad MAC",
          { ...report(host), nics: [{ mac: "zz:zz", name: "eth0" }] },
          400,
          /field nics\.0\.mac/,
        ],
        ["unknown field", { ...report(host), extra: 1 }, 400, /field extra|the report/],
        [
          "another UUID",
          { ...report(host), systemUUID: "00000000-0000-0000-0000-000000000001" },
          400,
          /field systemUUID/,
        ],
      ];
      for (const [what, body, status, message] of cases) {
        const answer = await post(host, body);
        expect({ what, status: answer.status }).toEqual({ what, status });
        expect(answer.body.toString()).toMatch(message);
      }
      // Chunked (no Content-Length) and too large: cut off while reading.
      const chunked = await new Promise<number>((resolve, reject) => {
        import("node:http").then(({ request }) => {
          const req = request(url(host, "report"), { method: "POST" }, res => {
            res.resume();
            resolve(res.statusCode!);
          });
          req.on("error", err =>
            String(err).includes("EPIPE") || String(err).includes("ECONNRESET")
              ? resolve(413)
              : reject(err),
          );
          for (let i = 0; i < 80; i++) req.write(Buffer.alloc(1024, 0x20));
          req.end();
        }, reject);
      });
      expect(chunked).toBe(413);
      expect(signalsOf(host)).toHaveLength(0);
    });

    it("refuses a report when the host is not inspecting", async () => {
      const host = inspecting();
      for (const view of [
        { ...host, boot: { ...host.boot!, reportedTime: new Date().toISOString() } },
        { ...host, state: "Provisioned" },
        { ...host, boot: { ...host.boot!, delivery: "PatchedISO" as const } },
      ]) {
        directory.put(view);
        const answer = await post(view, report(view));
        expect(answer.status).toBe(409);
        expect(answer.body.toString()).toContain("not waiting for an inspection report");
      }
      expect(signalsOf(host)).toHaveLength(0);
      expect(
        server.metrics.get("beskar7_boot_refusals_total", { reason: "not-inspecting" }),
      ).toBeGreaterThanOrEqual(3);
    });
  });

  describe("iPXE script", () => {
    it("boots the target image with the config and report URLs while the host is inspecting", async () => {
      const host = provisioningHost({
        boot: { ...provisioningHost().boot!, delivery: "NetworkBoot" },
        provisioning: {
          targetImageURL: "http://images.example/kairos.efi",
          osFamily: "kairos",
          bootstrapDataSecretRef: "b",
        },
      });
      directory.put(host);
      const script = await get(`${server.base}/v1/ipxe/${host.systemUUID.toUpperCase()}`);
      expect(script.status).toBe(200);
      const text = script.body.toString();
      expect(text.startsWith("#!ipxe\n")).toBe(true);
      const chain = text.split("\n").find(l => l.startsWith("chain "))!;
      const args = chain.split(" ");
      expect(args.slice(0, 3)).toEqual(["chain", "--autofree", "http://images.example/kairos.efi"]);
      expect(args).toContain(`config_url=${url(host, "config")}`);
      expect(args).toContain(`beskar7.report=${url(host, "report")}`);

      // Once the OS fetched its config (or reported), the script is gone.
      directory.put({
        ...host,
        boot: { ...host.boot!, configFetchedTime: new Date().toISOString() },
      });
      expect((await get(`${server.base}/v1/ipxe/${host.systemUUID}`)).status).toBe(404);
      directory.put({ ...host, boot: { ...host.boot!, delivery: "PatchedISO" } });
      expect((await get(`${server.base}/v1/ipxe/${host.systemUUID}`)).status).toBe(404);
      directory.put({ ...host, state: "Available", boot: undefined });
      expect((await get(`${server.base}/v1/ipxe/${host.systemUUID}`)).status).toBe(404);
      // Only GET.
      directory.put(host);
      expect(
        (await get(`${server.base}/v1/ipxe/${host.systemUUID}`, { method: "POST" })).status,
      ).toBe(405);
    });

    it("with targetInitrdURL, loads the kernel and the initramfs by one name and boots them; a failed step waits and reboots", async () => {
      const host = provisioningHost({
        boot: { ...provisioningHost().boot!, delivery: "NetworkBoot" },
        provisioning: {
          targetImageURL: "http://images.example/flatcar/flatcar_production_pxe.vmlinuz",
          targetInitrdURL: "http://images.example/flatcar/flatcar_production_pxe_image.cpio.gz",
          osFamily: "flatcar",
          extraKernelArgs: ["console=ttyS0,115200n8"],
          bootstrapDataSecretRef: "b",
        },
      });
      directory.put(host);
      const script = await get(`${server.base}/v1/ipxe/${host.systemUUID}`);
      expect(script.status).toBe(200);
      const lines = script.body.toString().split("\n");
      expect(lines.some(l => l.startsWith("chain "))).toBe(false);
      // The kernel names its initrd (Debian's UEFI iPXE hands it over only by that name), then
      // the OS's own arguments, the extra ones, and the report URL.
      const [kernel, initrd, boot] = lines.filter(l => /^(kernel|initrd|boot)\b/.test(l));
      expect(kernel).toBe(
        [
          "kernel http://images.example/flatcar/flatcar_production_pxe.vmlinuz",
          `initrd=${IPXE_INITRD_NAME}`,
          "flatcar.first_boot=1",
          `ignition.config.url=${url(host, "config")}`,
          "console=ttyS0,115200n8",
          `beskar7.report=${url(host, "report")}`,
          "|| goto failed",
        ].join(" "),
      );
      expect(initrd).toBe(
        `initrd --name ${IPXE_INITRD_NAME} http://images.example/flatcar/flatcar_production_pxe_image.cpio.gz || goto failed`,
      );
      expect(boot).toBe("boot || goto failed");
      // Each step's failure lands in the retry: wait, then reboot (the firmware boots again).
      const failed = lines.indexOf(":failed");
      expect(failed).toBeGreaterThan(lines.indexOf(boot!));
      expect(lines.slice(failed + 1).filter(Boolean)).toEqual([
        "echo Beskar7: booting the target image failed; retrying in 30 seconds",
        "sleep 30",
        "reboot",
      ]);
    });
  });
});
