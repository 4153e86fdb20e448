// `npm run manifests`: writes synthesize()'s files to manifests/generated/, replacing the folder
// so a removed kind leaves no stale file behind, and renders the generated parts of docs/.
import { mkdir, rm, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";

import { synthesize } from "./app";
import { HOST_DOC, renderHostDoc } from "./docs";

export const GENERATED_DIR = resolve(__dirname, "generated");

async function main(): Promise<void> {
  const { files } = synthesize();
  await rm(GENERATED_DIR, { recursive: true, force: true });
  for (const [path, content] of Object.entries(files)) {
    const target = join(GENERATED_DIR, path);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, content);
  }
  process.stdout.write(`wrote ${Object.keys(files).length} files to ${GENERATED_DIR}\n`);
  await writeFile(HOST_DOC, await renderHostDoc());
  process.stdout.write(`rendered the state table in ${HOST_DOC}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exitCode = 1;
});
