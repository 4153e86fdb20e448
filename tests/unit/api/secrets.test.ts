// Nothing committed by the API work may carry a credential: examples use obvious placeholders
// in stringData, and generated manifests hold no Secret at all.
import { readFile, readdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(__dirname, "../../..");
const DIRS = ["examples", "manifests/generated", "tests/fixtures/seeds"];

async function files(): Promise<string[]> {
  const all = await Promise.all(
    DIRS.map(async dir =>
      (await readdir(join(ROOT, dir), { recursive: true }))
        .filter(name => name.endsWith(".yaml"))
        .map(name => join(ROOT, dir, name)),
    ),
  );
  return all.flat();
}

describe("committed manifests", () => {
  it("contain no private keys, tokens or base64 Secret data", async () => {
    const list = await files();
    expect(list.length).toBeGreaterThan(15);
    for (const file of list) {
      const text = await readFile(file, "utf8");
      expect(text, file).not.toMatch(/-----BEGIN [A-Z ]*PRIVATE KEY-----/);
      expect(text, file).not.toMatch(/^\s*(token|bearerToken|client-key-data):/m);
      expect(text, file).not.toMatch(/^data:/m);
    }
  });

  it("use placeholders for BMC credentials in examples", async () => {
    for (const file of (await files()).filter(f => f.includes("/examples/"))) {
      const text = await readFile(file, "utf8");
      for (const match of text.matchAll(/^\s*(username|password): (.*)$/gm)) {
        expect(match[2], file).toMatch(/^REPLACE_WITH_BMC_(USERNAME|PASSWORD)$/);
      }
    }
  });
});
