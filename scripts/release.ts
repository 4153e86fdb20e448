// `npm run release`: builds the module and writes the clusterctl provider files to dist/release/
// (infrastructure-components.yaml, metadata.yaml, cluster-template.yaml). See scripts/lib/release.ts.
// The boot service's bundle, which the components file carries gzipped, is also written to
// dist/beskar7-boot-service.mjs to be read or run (`node dist/beskar7-boot-service.mjs --help`).
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

import { BOOT_SERVICE_BUNDLE, bootServiceBundle } from "../manifests/boot-service";
import { buildRelease } from "./lib/release";

const ROOT = resolve(__dirname, "..");
execFileSync(join(ROOT, "node_modules", ".bin", "pepr"), ["build"], {
  cwd: ROOT,
  stdio: ["ignore", "ignore", "inherit"],
});
writeFileSync(join(ROOT, "dist", BOOT_SERVICE_BUNDLE), bootServiceBundle());
process.stderr.write(`wrote ${join("dist", BOOT_SERVICE_BUNDLE)}\n`);
const out = join(ROOT, "dist", "release");
mkdirSync(out, { recursive: true });
for (const [file, text] of Object.entries(
  buildRelease(join(ROOT, "dist", "pepr-module-beskar7.yaml")),
)) {
  writeFileSync(join(out, file), text);
  process.stderr.write(`wrote ${join("dist", "release", file)}\n`);
}
