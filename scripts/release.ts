// `npm run release`: builds the module and writes the clusterctl provider files to dist/release/
// (infrastructure-components.yaml, metadata.yaml, cluster-template.yaml). See scripts/lib/release.ts.
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

import { buildRelease } from "./lib/release";

const ROOT = resolve(__dirname, "..");
execFileSync(join(ROOT, "node_modules", ".bin", "pepr"), ["build"], {
  cwd: ROOT,
  stdio: ["ignore", "ignore", "inherit"],
});
const out = join(ROOT, "dist", "release");
mkdirSync(out, { recursive: true });
for (const [file, text] of Object.entries(
  buildRelease(join(ROOT, "dist", "pepr-module-beskar7.yaml")),
)) {
  writeFileSync(join(out, file), text);
  process.stderr.write(`wrote ${join("dist", "release", file)}\n`);
}
