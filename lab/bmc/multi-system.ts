// A chassis manager with several systems, made from a single-system capture: the capture is copied
// once per process into a temporary folder and its ComputerSystem is served under each Id given
// (the tree copied, its links rewritten). For tests of hosts that share one BMC address, such as
// blades behind one chassis manager, which no real capture in lab/captures has.
import { cpSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { resolveMockup } from "./mockup-store";

const made = new Map<string, string>();

/** A mockup folder serving the base capture's system under each of `ids` (and only those). */
export function multiSystemMockup(base: string, ids: string[]): string {
  const key = `${base}\0${ids.join("\0")}`;
  const cached = made.get(key);
  if (cached) return cached;
  const source = resolveMockup(base);
  const target = join(mkdtempSync(join(tmpdir(), "beskar7-multisystem-")), "mockup");
  cpSync(source, target, { recursive: true });
  const systems = join(target, "redfish", "v1", "Systems");
  const collection = JSON.parse(readFileSync(join(systems, "index.json"), "utf8")) as {
    Members: Array<{ "@odata.id": string }>;
    "Members@odata.count": number;
  };
  const original = collection.Members[0]!["@odata.id"].split("/").pop()!;
  for (const id of ids) {
    if (id === original) continue;
    cpSync(join(systems, original), join(systems, id), { recursive: true });
    rewrite(join(systems, id), original, id);
  }
  // When ids leave out the original, its folder stays on disk but not in the collection: links
  // elsewhere (Chassis, Managers) may still name it, and the tests need only the systems.
  collection.Members = ids.map(id => ({ "@odata.id": `/redfish/v1/Systems/${id}` }));
  collection["Members@odata.count"] = ids.length;
  writeFileSync(join(systems, "index.json"), JSON.stringify(collection, null, 4));
  made.set(key, target);
  return target;
}

/** Rewrites every JSON file under dir so the system's Id and links name `to`. */
function rewrite(dir: string, from: string, to: string): void {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) rewrite(path, from, to);
    else if (name.endsWith(".json")) {
      const text = readFileSync(path, "utf8")
        .split(`/Systems/${from}`)
        .join(`/Systems/${to}`)
        .replace(`"Id": "${from}"`, `"Id": "${to}"`);
      writeFileSync(path, text);
    }
  }
}
