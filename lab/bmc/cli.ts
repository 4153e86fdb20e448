// Runs one test BMC for people: npx tsx lab/bmc/cli.ts --mockup <folder> --port N [--latency 50]
// Prints the URL, credentials and where the CA certificate was written, logs each request, and
// stops on Ctrl-C.
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

import { listMockups } from "./mockup-store";
import { TestBmc } from "./server";

const usage = `usage: npx tsx lab/bmc/cli.ts --mockup <folder> [--port N] [--latency MS] [--http]
       [--username U] [--password P] [--power On|Off] [--list]
mockups: ${listMockups().join(", ")}`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      mockup: { type: "string" },
      port: { type: "string", default: "0" },
      latency: { type: "string", default: "0" },
      http: { type: "boolean", default: false },
      username: { type: "string", default: "admin" },
      password: { type: "string", default: "test-bmc-password" },
      power: { type: "string" },
      list: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help || values.list || !values.mockup) {
    console.log(usage);
    process.exit(values.mockup || values.list || values.help ? 0 : 2);
  }
  const power = values.power;
  if (power !== undefined && power !== "On" && power !== "Off") throw new Error("--power On|Off");
  const bmc = await TestBmc.start({
    mockup: values.mockup,
    port: Number(values.port),
    latencyMs: Number(values.latency),
    tls: !values.http,
    username: values.username,
    password: values.password,
    powerState: power,
  });
  console.log(`test BMC (${bmc.profile.vendor}) serving ${bmc.store.name}`);
  console.log(`  url:      ${bmc.url}/redfish/v1`);
  console.log(`  user:     ${bmc.username} / ${bmc.password}`);
  if (bmc.caPem) {
    const caFile = join(tmpdir(), `beskar7-test-bmc-${bmc.port}.pem`);
    writeFileSync(caFile, bmc.caPem);
    console.log(
      `  CA file:  ${caFile}   (curl --cacert ${caFile} -u ${bmc.username}:… ${bmc.url}/redfish/v1)`,
    );
  }
  let seen = 0;
  const timer = setInterval(() => {
    const recent = bmc.requests.recent;
    const fresh = bmc.requests.total - seen;
    for (const entry of recent.slice(Math.max(0, recent.length - fresh))) {
      console.log(`${entry.status} ${entry.method} ${entry.path}`);
    }
    seen = bmc.requests.total;
  }, 200);
  const stop = () => {
    clearInterval(timer);
    void bmc.stop().then(() => process.exit(0));
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

main().catch(err => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
