// Benchmark of the Redfish driver against the test BMC: HTTP requests and wall time per driver
// operation for every captured mockup, with an injected per-request latency (50 ms default, a
// typical BMC round trip), plus a scale run of many simulated BMCs in this one process.
//
//   npx tsx scripts/bench-redfish.ts [--latency 50] [--scale 100] [--mockup KEYWORD] [--out FILE]
//
// Results are printed and written to docs/benchmarks/redfish.md. Driver options are its defaults
// (poll intervals included), so wall times are what a controller would see.
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, freemem, platform, release, totalmem } from "node:os";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import * as prettier from "prettier";

import { createRedfishClient, type RedfishSystem } from "../redfish/index";
import { listMockups } from "../lab/bmc/mockup-store";
import { TestBmc } from "../lab/bmc/server";

interface StepResult {
  step: string;
  requests: number;
  ms: number;
  error?: string;
}

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");

async function step(
  bmc: TestBmc,
  results: StepResult[],
  name: string,
  operation: () => Promise<unknown>,
): Promise<void> {
  const before = bmc.requests.total;
  const started = performance.now();
  let error: string | undefined;
  try {
    await operation();
  } catch (err) {
    // Record and carry on: one unsupported step must not hide the others' figures.
    const code = (err as { code?: string }).code;
    error = `${(err as Error).name}${code ? ` (${code})` : ""}`;
  }
  results.push({
    step: name,
    requests: bmc.requests.total - before,
    ms: performance.now() - started,
    error,
  });
}

async function benchMockup(folder: string, latencyMs: number): Promise<StepResult[]> {
  const bmc = await TestBmc.start({ mockup: folder, powerState: "Off" });
  const client = createRedfishClient({
    address: bmc.url,
    credentials: { username: bmc.username, password: bmc.password },
    tls: { caBundle: bmc.caPem },
  });
  const results: StepResult[] = [];
  try {
    // Latency from the first request on: the login and link discovery are part of the cost.
    bmc.latencyMs = latencyMs;
    const system: RedfishSystem = client.system();
    await step(bmc, results, "inventory (cold)", () => system.inventory());
    await step(bmc, results, "inventory (warm)", () => system.inventory());
    await step(bmc, results, "powerState", () => system.powerState());
    const slots = await system.virtualMedia().catch(() => []);
    if (slots.some(s => s.inserted)) {
      await step(bmc, results, "eject stale media", () => system.ejectMedia());
    }
    const cd = bmc.store.json(bmc.systems[0] ?? "")?.Boot as Record<string, unknown> | undefined;
    const targets = (cd?.["BootSourceOverrideTarget@Redfish.AllowableValues"] as string[]) ?? [];
    const target = targets.includes("Cd") || targets.includes("UsbCd") ? "Cd" : "Pxe";
    await step(bmc, results, `setBootOverride ${target}`, () =>
      system.setBootOverride({ target, mode: "UEFI" }),
    );
    if (slots.length > 0) {
      await step(bmc, results, "insertMedia cd", () =>
        system.insertMedia({ image: "http://127.0.0.1:9/installer.iso", kind: "cd" }),
      );
      await step(bmc, results, "insertMedia usb", () =>
        system.insertMedia({ image: "http://127.0.0.1:9/config.img", kind: "usb" }),
      );
    }
    await step(bmc, results, "powerOn", () => system.powerOn());
    if (slots.length > 0) await step(bmc, results, "ejectMedia", () => system.ejectMedia());
    await step(bmc, results, "powerOff", () => system.powerOff());
    await step(bmc, results, "close (logout)", () => client.close());
  } finally {
    await client.close();
    await bmc.stop();
  }
  return results;
}

interface ScaleResult {
  bmcs: number;
  mockup: string;
  startMs: number;
  inventoryMs: number;
  powerOnMs: number;
  requests: number;
  failures: number;
  heapMiB: number;
  rssMiB: number;
}

async function benchScale(count: number, folder: string, latencyMs: number): Promise<ScaleResult> {
  const started = performance.now();
  // One certificate for all: generating a key per BMC would dominate the start-up time.
  const bmcs = await Promise.all(
    Array.from({ length: count }, () =>
      TestBmc.start({ mockup: folder, tls: "shared", latencyMs, powerState: "Off" }),
    ),
  );
  const startMs = performance.now() - started;
  const clients = bmcs.map(bmc =>
    createRedfishClient({
      address: bmc.url,
      credentials: { username: bmc.username, password: bmc.password },
      tls: { caBundle: bmc.caPem },
    }),
  );
  let failures = 0;
  const timed = async (operation: (i: number) => Promise<unknown>) => {
    const t0 = performance.now();
    const outcomes = await Promise.allSettled(clients.map((_, i) => operation(i)));
    failures += outcomes.filter(o => o.status === "rejected").length;
    return performance.now() - t0;
  };
  const inventoryMs = await timed(i => clients[i]!.system().inventory());
  const powerOnMs = await timed(i => clients[i]!.system().powerOn());
  const memory = process.memoryUsage();
  const requests = bmcs.reduce((n, b) => n + b.requests.total, 0);
  await Promise.all(clients.map(c => c.close()));
  await Promise.all(bmcs.map(b => b.stop()));
  return {
    bmcs: count,
    mockup: folder,
    startMs,
    inventoryMs,
    powerOnMs,
    requests,
    failures,
    heapMiB: memory.heapUsed / 2 ** 20,
    rssMiB: memory.rss / 2 ** 20,
  };
}

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(" | ")} |`;
  return [
    line(headers),
    `|${widths.map(w => "-".repeat(w + 2)).join("|")}|`,
    ...rows.map(line),
  ].join("\n");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      latency: { type: "string", default: "50" },
      scale: { type: "string", default: "100" },
      mockup: { type: "string" },
      out: { type: "string", default: "docs/benchmarks/redfish.md" },
    },
  });
  const latencyMs = Number(values.latency);
  const scale = Number(values.scale);
  const mockups = listMockups().filter(m => !values.mockup || m.includes(values.mockup));

  const perMockup: { folder: string; results: StepResult[] }[] = [];
  for (const folder of mockups) {
    process.stderr.write(`benchmarking ${folder} …\n`);
    perMockup.push({ folder, results: await benchMockup(folder, latencyMs) });
  }
  const scaleFolder = mockups.find(m => m.includes("dell")) ?? mockups[0] ?? "";
  let scaleResult: ScaleResult | undefined;
  if (scale > 0 && scaleFolder) {
    process.stderr.write(`scale run: ${scale} BMCs of ${scaleFolder} …\n`);
    scaleResult = await benchScale(scale, scaleFolder, latencyMs);
  }

  const sections: string[] = [];
  for (const { folder, results } of perMockup) {
    const rows = results.map(r => [
      r.step,
      String(r.requests),
      r.ms.toFixed(0),
      r.error ? `failed: ${r.error}` : "ok",
    ]);
    const total = results.reduce((acc, r) => ({ n: acc.n + r.requests, ms: acc.ms + r.ms }), {
      n: 0,
      ms: 0,
    });
    rows.push(["**total**", String(total.n), total.ms.toFixed(0), ""]);
    sections.push(
      `### ${folder}\n\n${table(["operation", "requests", "wall ms", "result"], rows)}`,
    );
  }

  const commit = (() => {
    try {
      return execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: repoRoot })
        .toString()
        .trim();
    } catch {
      return "unknown";
    }
  })();
  const cpu = cpus();
  const machine = [
    `- CPU: ${cpu.length} cores, ${cpu[0]?.model ?? "unknown"}`,
    `- memory: ${(totalmem() / 2 ** 30).toFixed(1)} GiB total, ${(freemem() / 2 ** 30).toFixed(1)} GiB free at start`,
    `- OS: ${platform()} ${release()}; Node ${process.version}`,
    `- commit: ${commit}; run at ${new Date().toISOString()}`,
  ].join("\n");
  const scaleSection = scaleResult
    ? `## ${scaleResult.bmcs} simulated BMCs in one process\n\n` +
      `All ${scaleResult.bmcs} test BMCs serve ${scaleResult.mockup} with ${latencyMs} ms latency; one ` +
      `driver client each, all operations started at once.\n\n` +
      table(
        ["metric", "value"],
        [
          ["start all BMCs (ms)", scaleResult.startMs.toFixed(0)],
          ["inventory on all, concurrently (ms)", scaleResult.inventoryMs.toFixed(0)],
          ["powerOn on all, concurrently (ms)", scaleResult.powerOnMs.toFixed(0)],
          ["requests served", String(scaleResult.requests)],
          ["failed operations", String(scaleResult.failures)],
          ["heap used after (MiB)", scaleResult.heapMiB.toFixed(0)],
          ["RSS after (MiB)", scaleResult.rssMiB.toFixed(0)],
        ],
      )
    : "";
  const doc = [
    "# Redfish driver benchmark",
    "",
    "Requests and wall time per driver operation against the test BMC (`lab/bmc/`) serving each",
    `captured mockup, with ${latencyMs} ms of latency injected into every request. The driver runs with its`,
    "default options (including its poll intervals), over HTTPS with a session login. Generated by:",
    "",
    "```",
    `npx tsx scripts/bench-redfish.ts --latency ${latencyMs} --scale ${scale}${values.mockup ? ` --mockup ${values.mockup}` : ""}`,
    "```",
    "",
    "Machine (shared with other work while this ran, so wall times are indicative):",
    "",
    machine,
    "",
    "## Per mockup",
    "",
    "`inventory (cold)` includes the session login and link discovery; `failed` rows are driver",
    "errors on that capture (see the integration tests for the cause), their request counts are still",
    "what was spent.",
    "",
    ...sections.flatMap(s => [s, ""]),
    scaleSection,
    "",
  ].join("\n");

  const out = resolve(repoRoot, values.out);
  // Formatted like every other file in the repository, so `prettier --check .` stays clean.
  const options = (await prettier.resolveConfig(out)) ?? {};
  const formatted = await prettier.format(doc, { ...options, filepath: out });
  console.log(formatted);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, formatted);
  process.stderr.write(`written to ${out}\n`);
}

main().catch(err => {
  console.error(err);
  process.exit(1);
});
