// The committed manifests/generated/ must be exactly what the schema sources generate today:
// users apply those files, so a schema change without `npm run manifests` fails here.
import { readFile, readdir } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

import { synthesize } from "../../../manifests/app";
import { HOST_DOC, renderHostDoc } from "../../../manifests/docs";

const GENERATED = resolve(__dirname, "../../../manifests/generated");

async function committedFiles(dir = GENERATED): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter(entry => entry.isFile())
    .map(entry => relative(GENERATED, join(entry.parentPath, entry.name)))
    .sort();
}

describe("manifests/generated", () => {
  const { files } = synthesize();

  it("holds exactly the generated files", async () => {
    expect(await committedFiles()).toEqual(Object.keys(files).sort());
  });

  it.each(Object.keys(files).sort())(
    "%s matches the sources (run `npm run manifests`)",
    async path => {
      const committed = await readFile(join(GENERATED, path), "utf8");
      expect(committed).toBe(files[path]);
    },
  );

  it("is deterministic", () => {
    expect(synthesize().files).toEqual(files);
  });
});

describe("docs/physicalhost.md", () => {
  it("shows the state table as the API's HostStates record it (run `npm run manifests`)", async () => {
    expect(await readFile(HOST_DOC, "utf8")).toBe(await renderHostDoc());
  });
});
