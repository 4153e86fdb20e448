// Link navigation helpers shared by the resource readers. Redfish resources are reached only by
// following @odata.id links from the service root, never by building vendor paths.

export interface ODataLink {
  "@odata.id"?: string;
}

/** The path of a link object (`{"@odata.id": …}`), or undefined. */
export function linkPath(link: ODataLink | undefined | null): string | undefined {
  if (!link || typeof link !== "object") return undefined;
  const id = link["@odata.id"];
  return typeof id === "string" && id.length > 0 ? id : undefined;
}

/** More than a bare `{"@odata.id"}` link: a resource that `$expand` inlined. */
export function hasContent(entry: unknown): boolean {
  if (!entry || typeof entry !== "object" || Array.isArray(entry)) return false;
  return Object.keys(entry).some(key => !key.startsWith("@odata"));
}

/** Member paths of a collection body. */
export function memberPaths(collection: unknown): string[] {
  if (!collection || typeof collection !== "object") return [];
  const members = (collection as { Members?: unknown }).Members;
  if (!Array.isArray(members)) return [];
  return members.flatMap(member => {
    const path = linkPath(member as ODataLink);
    return path ? [path] : [];
  });
}

/** Paths of a list of links such as `Links.ManagedBy`. */
export function linkPaths(links: unknown): string[] {
  if (!Array.isArray(links)) return [];
  return links.flatMap(link => {
    const path = linkPath(link as ODataLink);
    return path ? [path] : [];
  });
}

export function stringOf(value: unknown): string | undefined {
  if (typeof value !== "string") return undefined;
  const trimmed = value.trim();
  return trimmed.length > 0 ? trimmed : undefined;
}

export function numberOf(value: unknown): number | undefined {
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}

export function stringsOf(value: unknown): string[] {
  return Array.isArray(value)
    ? value.filter((item): item is string => typeof item === "string")
    : [];
}
