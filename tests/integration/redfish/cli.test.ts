// `npx beskar7 bmc inventory … --json` against the test BMC serving each capture prints that
// machine's manufacturer, model, serial, CPU, memory and NIC MACs as the capture states them.
// The CLI runs as a child process, so the in-process BMC must keep serving: execFile, not *Sync.
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { listMockups } from "../../../lab/bmc/mockup-store";
import { TestBmc } from "../../../lab/bmc/server";
import { captureFacts, normaliseMac } from "./capture";

const run = promisify(execFile);
const repoRoot = resolve(import.meta.dirname, "../../..");

interface InventoryJson {
  manufacturer?: string;
  model?: string;
  serialNumber?: string;
  processors: { count: number; cores: number; threads: number; items: { model?: string }[] };
  memory: { totalGiB: number };
  nics: { macAddress?: string }[];
}

describe("beskar7 bmc inventory --json", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "beskar7-cli-test-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const folder of listMockups()) {
    it(`prints what the capture states for ${folder}`, async () => {
      const facts = captureFacts(folder);
      const bmc = await TestBmc.start({ mockup: folder });
      try {
        const passwordFile = join(dir, `${bmc.port}.password`);
        const caFile = join(dir, `${bmc.port}.pem`);
        await writeFile(passwordFile, `${bmc.password}\n`, { mode: 0o600 });
        await writeFile(caFile, bmc.caPem ?? "");
        const { stdout } = await run(
          "npx",
          [
            "--no-install",
            "beskar7",
            "bmc",
            "inventory",
            "--address",
            `https://127.0.0.1:${bmc.port}`,
            "--username",
            bmc.username,
            "--password-file",
            passwordFile,
            "--ca-file",
            caFile,
            "--json",
          ],
          { cwd: repoRoot, timeout: 60_000, maxBuffer: 8 * 1024 * 1024 },
        );
        const inv = JSON.parse(stdout) as InventoryJson;
        expect(inv.manufacturer).toBe(facts.manufacturer);
        expect(inv.model).toBe(facts.model);
        expect(inv.serialNumber).toBe(facts.serialNumber);
        expect(inv.processors.count).toBe(facts.cpuCount);
        expect(inv.processors.cores).toBe(facts.cpuCores);
        if (inv.processors.items.length > 0) {
          expect(inv.processors.items.map(p => p.model?.trim())).toEqual(facts.cpuModels);
        }
        expect(inv.memory.totalGiB).toBe(facts.memoryGiB);
        const macs = inv.nics.flatMap(n => (n.macAddress ? [normaliseMac(n.macAddress)] : []));
        expect(new Set(macs)).toEqual(new Set(facts.systemMacs));
        // The password never appears in what the CLI prints.
        expect(stdout).not.toContain(bmc.password);
        expect(bmc.requests.total).toBeGreaterThan(0);
      } finally {
        await bmc.stop();
      }
    }, 90_000);
  }
});
