// The metadata-only watch of labelled Secrets (lib/metadata-watch.ts): it asks the API server for
// PartialObjectMetadata by label selector, passes on names and versions only, resumes from the
// list's resourceVersion, lists again after an expired version (reporting what vanished), and
// remembers only the objects its consumer keeps.
import { describe, expect, it } from "vitest";

import { MetadataWatch, type ObjectMetadata } from "../../../capabilities/lib/metadata-watch";

type Line = Record<string, unknown>;

/** A fake API server: a list per call, then a watch stream per call (its lines, then the end). */
function fakeKube(lists: Line[][], streams: Line[][][]) {
  const requests: Array<{ path: string; accept: string }> = [];
  let listCall = 0;
  let streamCall = 0;
  const kube = {
    async get<T>(path: string, accept = "application/json"): Promise<T> {
      requests.push({ path, accept });
      const items = lists[Math.min(listCall, lists.length - 1)]!;
      const version = String(100 * ++listCall);
      return { metadata: { resourceVersion: version }, items } as T;
    },
    async stream(
      path: string,
      accept: string,
      onLine: (line: string) => void,
      signal: AbortSignal,
    ): Promise<void> {
      requests.push({ path, accept });
      const batch = streams[streamCall++];
      if (!batch) {
        // Nothing more: hold the stream open until the watch stops.
        await new Promise<void>(r => signal.addEventListener("abort", () => r(), { once: true }));
        return;
      }
      for (const lines of batch) for (const line of [lines].flat()) onLine(JSON.stringify(line));
    },
  };
  return { kube, requests };
}

const item = (name: string, resourceVersion: string, extra: Line = {}) => ({
  metadata: { name, namespace: "lab", resourceVersion, labels: { a: "b" }, ...extra },
});
const event = (type: string, name: string, resourceVersion: string) => ({
  type,
  object: item(name, resourceVersion),
});

type Seen = Array<[string, string | undefined, boolean, ObjectMetadata]>;

async function run(
  lists: Line[][],
  streams: Line[][][],
  keep?: (m: ObjectMetadata) => boolean,
  until = (seen: Seen) => seen.length >= 1,
) {
  const { kube, requests } = fakeKube(lists, streams);
  const seen: Seen = [];
  const errors: string[] = [];
  const watch = new MetadataWatch({
    kube,
    path: "/api/v1/secrets",
    labelSelector: "beskar7.infrastructure.cluster.x-k8s.io/bmc-credentials",
    onChange: (meta, deleted) => seen.push([meta.name, meta.resourceVersion, deleted, meta]),
    keep,
    onError: m => errors.push(m),
    retryMs: 1,
  });
  watch.start();
  for (let i = 0; i < 200 && !until(seen); i++) await new Promise(r => setTimeout(r, 5));
  await watch.stop();
  return { seen, requests, errors, watch };
}

describe("MetadataWatch", () => {
  it("lists and watches metadata only, by label selector, from the list's version", async () => {
    const { seen, requests } = await run(
      [[item("a", "5")]],
      [[[event("MODIFIED", "a", "101")]]],
      undefined,
      s => s.length >= 2,
    );
    expect(seen.map(([n, v, d]) => [n, v, d])).toEqual([
      ["a", "5", false],
      ["a", "101", false],
    ]);
    expect(requests[0]).toEqual({
      path: "/api/v1/secrets?labelSelector=beskar7.infrastructure.cluster.x-k8s.io%2Fbmc-credentials",
      accept: "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
    });
    expect(requests[1]!.path).toContain("&watch=1&allowWatchBookmarks=true");
    expect(requests[1]!.path).toContain("&resourceVersion=100");
    expect(requests[1]!.accept).toBe(
      "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
    );
  });

  it("passes on name, namespace, version and labels, and nothing else the server sent", async () => {
    const { seen } = await run([[item("a", "5", { managedFields: [{ x: 1 } as never] })]], []);
    expect(seen[0]![3]).toEqual({
      name: "a",
      namespace: "lab",
      resourceVersion: "5",
      labels: { a: "b" },
    });
  });

  it("lists again after an expired version and reports what vanished meanwhile", async () => {
    const { seen } = await run(
      [[item("a", "5"), item("b", "6")], [item("b", "6")]],
      [[[{ type: "ERROR", object: { code: 410 } }]]],
      undefined,
      s => s.some(([, , deleted]) => deleted),
    );
    // b's unchanged version on the relist is not reported again.
    expect(seen.map(([n, v, d]) => [n, v, d])).toEqual([
      ["a", "5", false],
      ["b", "6", false],
      ["a", "5", true],
    ]);
  });

  it("remembers only what the consumer keeps", async () => {
    const many = Array.from({ length: 500 }, (_, i) => item(`s${i}`, String(i + 1)));
    const { watch, seen } = await run(
      [many],
      [],
      m => m.name === "s7",
      s => s.length >= 500,
    );
    expect(seen).toHaveLength(500);
    expect(watch.size).toBe(1);
  });
});
