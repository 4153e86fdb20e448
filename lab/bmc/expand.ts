// `$expand` as DSP0266 ("Query parameters") describes it, limited to what the capture's service
// root advertises in ProtocolFeaturesSupported.ExpandQuery:
//   `*`  every hyperlink, `.`  hyperlinks not under a `Links` property, `~`  only those under one,
//   `($levels=n)` how deep to cascade (default 1).
// A hyperlink here is a reference object that holds nothing but `@odata.id` (alone or in an array
// such as Members, Drives or Processors). It is replaced by the linked resource when that resolves
// and kept as it is otherwise; each replacement is one level, and the replaced resource's own
// hyperlinks are expanded with one level less. A resource is never inlined inside itself (cycles).
import { messages, type Message } from "./errors";
import { dig, isObject, type Json, type JsonObject, normalisePath } from "./mockup-store";

export type ExpandOption = "*" | "." | "~";

export interface ExpandRequest {
  option: ExpandOption;
  levels: number;
}

/** What a service root advertises under ProtocolFeaturesSupported.ExpandQuery. */
export interface ExpandFeatures {
  ExpandAll?: boolean;
  NoLinks?: boolean;
  Links?: boolean;
  Levels?: boolean;
  MaxLevels?: number;
}

export type ExpandParse =
  | { ok: true; request: ExpandRequest }
  | { ok: false; status: number; message: Message };

/** Resources inlined into one response at most; links past this stay links. */
export const EXPAND_BUDGET = 1000;

const featureOf: Record<ExpandOption, keyof ExpandFeatures> = {
  "*": "ExpandAll",
  ".": "NoLinks",
  "~": "Links",
};

/** The ExpandQuery object of a service root, or undefined when the root advertises none. */
export function expandFeaturesOf(root: JsonObject | undefined): ExpandFeatures | undefined {
  const features = dig(root, "ProtocolFeaturesSupported", "ExpandQuery");
  return isObject(features) ? (features as ExpandFeatures) : undefined;
}

/**
 * Validates a `$expand` value against the advertised features: no ExpandQuery at all → 501
 * QueryNotSupported (DSP0266: unsupported query parameters are 501); an option or `$levels` the
 * root marks unsupported, or a value outside the grammar → 400 QueryParameterValueFormatError;
 * `$levels` below 1 or above MaxLevels → 400 QueryParameterOutOfRange.
 */
export function parseExpand(value: string, features: ExpandFeatures | undefined): ExpandParse {
  if (!features) return { ok: false, status: 501, message: messages.queryNotSupported() };
  const match = /^\s*([*.~])\s*(?:\(\s*\$levels\s*=\s*(-?\d+)\s*\))?\s*$/.exec(value);
  const formatError = (): ExpandParse => ({
    ok: false,
    status: 400,
    message: messages.queryParameterValueFormatError(value, "$expand"),
  });
  if (!match) return formatError();
  const option = match[1] as ExpandOption;
  if (features[featureOf[option]] !== true) return formatError();
  if (match[2] === undefined) return { ok: true, request: { option, levels: 1 } };
  if (features.Levels !== true) return formatError();
  const levels = Number(match[2]);
  const max = typeof features.MaxLevels === "number" ? features.MaxLevels : undefined;
  if (levels < 1 || (max !== undefined && levels > max)) {
    return {
      ok: false,
      status: 400,
      message: messages.queryParameterOutOfRange(
        String(levels),
        "$levels",
        max === undefined ? "1 or more" : `1 to ${max}`,
      ),
    };
  }
  return { ok: true, request: { option, levels } };
}

/**
 * The body with its hyperlinks expanded. `resolve` renders a linked resource as a plain GET would
 * (current state included) or returns undefined when nothing is there; `self` is the requested
 * resource's path (never inlined into itself).
 */
export function expandBody(
  body: JsonObject,
  request: ExpandRequest,
  self: string,
  resolve: (path: string) => JsonObject | undefined,
): JsonObject {
  const state = { budget: EXPAND_BUDGET };

  const eligible = (underLinks: boolean): boolean =>
    request.option === "*" || (request.option === "." ? !underLinks : underLinks);

  const walk = (
    value: Json,
    levels: number,
    underLinks: boolean,
    ancestors: ReadonlySet<string>,
  ): Json => {
    if (Array.isArray(value)) return value.map(item => walk(item, levels, underLinks, ancestors));
    if (!isObject(value)) return value;
    const target = referenceTarget(value);
    if (target !== undefined) {
      if (!eligible(underLinks) || ancestors.has(target) || state.budget <= 0) return value;
      const resolved = resolve(target);
      if (!resolved) return value;
      state.budget--;
      return resource(resolved, levels - 1, new Set([...ancestors, target]));
    }
    const out: JsonObject = {};
    for (const [key, child] of Object.entries(value)) {
      out[key] = walk(child, levels, underLinks || key === "Links", ancestors);
    }
    return out;
  };

  // A resource's own properties start outside any Links property.
  const resource = (value: JsonObject, levels: number, ancestors: ReadonlySet<string>) =>
    levels < 1 ? value : (walk(value, levels, false, ancestors) as JsonObject);

  return resource(body, request.levels, new Set([normalisePath(self)]));
}

/** The path of a bare reference object (`{"@odata.id": "…"}` and nothing else), else undefined.
 *  References into a resource (`…#/StorageControllers/0`) are not resources of their own. */
function referenceTarget(value: JsonObject): string | undefined {
  const keys = Object.keys(value);
  const id = value["@odata.id"];
  if (keys.length !== 1 || typeof id !== "string" || id.includes("#")) return undefined;
  return normalisePath(id);
}
