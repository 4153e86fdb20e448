// Read-only access to a captured Redfish service tree in the DMTF "tall" layout
// (<folder>/redfish/v1/<path>/index.json). Files are parsed on first use and the parsed tree is
// shared by every test BMC serving the same folder, so a thousand simulated BMCs cost one copy of
// the capture; per-instance state lives in the server's copy-on-write overlay, never in here.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** The Redfish data copied into the repository (lab/captures; see its README for origins). */
const capturesDir = resolve(fileURLToPath(import.meta.url), "../../captures");

/** Complete service trees, one folder per captured BMC. */
export function mockupsDir(): string {
  return join(capturesDir, "redfish-mockups");
}

/** Single responses (vendor error bodies), as `<origin folder>/<file>.json`. */
export function samplesDir(): string {
  return join(capturesDir, "redfish-samples");
}

/** Every mockup folder (a directory holding redfish/v1/index.json), sorted by name. */
export function listMockups(dir: string = mockupsDir()): string[] {
  return readdirSync(dir)
    .filter(name => existsSync(join(dir, name, "redfish", "v1", "index.json")))
    .sort();
}

/** Resolves a mockup name or path to its absolute folder. */
export function resolveMockup(nameOrPath: string): string {
  const direct = resolve(nameOrPath);
  if (existsSync(join(direct, "redfish", "v1", "index.json"))) return direct;
  const named = join(mockupsDir(), nameOrPath);
  if (existsSync(join(named, "redfish", "v1", "index.json"))) return named;
  throw new Error(`no Redfish mockup at ${nameOrPath} (looked in ${mockupsDir()})`);
}

export interface Resource {
  /** The parsed capture; never mutate it (it is shared between instances). */
  readonly json: JsonObject;
  /** The capture serialised once, served as-is while no instance state changes it. */
  readonly text: string;
}

/** Normalises a request path to the key used for lookups: no query, no trailing slash. */
export function normalisePath(rawPath: string): string {
  let path = rawPath.split("?")[0] ?? "";
  path = path.replace(/\/{2,}/g, "/");
  while (path.length > 1 && path.endsWith("/")) path = path.slice(0, -1);
  return path;
}

export class MockupStore {
  private static readonly shared = new Map<string, MockupStore>();

  /** One store per folder for the whole process. */
  static for(folder: string): MockupStore {
    const dir = resolveMockup(folder);
    let store = MockupStore.shared.get(dir);
    if (!store) {
      store = new MockupStore(dir);
      MockupStore.shared.set(dir, store);
    }
    return store;
  }

  private readonly cache = new Map<string, Resource | null>();

  private constructor(readonly dir: string) {}

  get name(): string {
    return this.dir.split("/").pop() ?? this.dir;
  }

  /** The resource captured at a (normalised) URI path, or undefined when none was captured. */
  get(path: string): Resource | undefined {
    const key = normalisePath(path);
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit ?? undefined;
    const loaded = this.load(key);
    this.cache.set(key, loaded);
    return loaded ?? undefined;
  }

  /** Convenience for the server and tests: the parsed body or undefined. */
  json(path: string): JsonObject | undefined {
    return this.get(path)?.json;
  }

  /** Child folder names under a URI path (e.g. the members of a collection that was captured). */
  children(path: string): string[] {
    const dir = this.folderFor(normalisePath(path));
    if (!dir) return [];
    return readdirSync(dir).filter(name => statSync(join(dir, name)).isDirectory());
  }

  private folderFor(key: string): string | undefined {
    if (!key.startsWith("/redfish")) return undefined;
    // Captures store "#" and other reserved characters percent-encoded in folder names, so try the
    // path as sent first and then its decoded form.
    const candidates = [key];
    try {
      const decoded = decodeURIComponent(key);
      if (decoded !== key) candidates.push(decoded);
    } catch {
      // A malformed escape is simply not found.
    }
    for (const candidate of candidates) {
      const dir = join(this.dir, ...candidate.split("/").filter(Boolean));
      // Keep lookups inside the mockup folder whatever the client sends.
      if (!dir.startsWith(this.dir + "/")) continue;
      if (existsSync(join(dir, "index.json"))) return dir;
    }
    return undefined;
  }

  private load(key: string): Resource | null {
    const dir = this.folderFor(key);
    if (!dir) return null;
    const text = readFileSync(join(dir, "index.json"), "utf8");
    const json = JSON.parse(text) as JsonObject;
    return { json, text: JSON.stringify(json) };
  }
}

/** Reads a nested value by keys without caring about intermediate types. */
export function dig(value: Json | undefined, ...keys: (string | number)[]): Json | undefined {
  let current: Json | undefined = value;
  for (const key of keys) {
    if (current === null || current === undefined || typeof current !== "object") return undefined;
    current = Array.isArray(current)
      ? typeof key === "number"
        ? current[key]
        : undefined
      : (current as JsonObject)[String(key)];
  }
  return current;
}

export function isObject(value: Json | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function odataId(value: Json | undefined): string | undefined {
  const id = dig(value, "@odata.id");
  return typeof id === "string" ? normalisePath(id) : undefined;
}

export function stringArray(value: Json | undefined): string[] | undefined {
  if (!Array.isArray(value)) return undefined;
  return value.filter((v): v is string => typeof v === "string");
}
