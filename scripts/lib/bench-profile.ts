// CPU profiling of a running Node process for the benchmarks, without changing how it was
// started (NODE_OPTIONS may not carry --cpu-prof): SIGUSR1 opens the process's inspector on
// 127.0.0.1:9229, and the DevTools protocol's Profiler takes a sampled profile. summarise() turns
// the .cpuprofile into self time per package/file and per function.
import { createWriteStream } from "node:fs";
import { get } from "node:http";
import { SourceMap, type SourceMapPayload } from "node:module";

interface CdpSocket {
  on(event: "message", listener: (data: Buffer) => void): void;
  on(event: "open" | "close", listener: () => void): void;
  on(event: "error", listener: (err: Error) => void): void;
  send(data: string): void;
  close(): void;
}
type CdpSocketCtor = new (url: string) => CdpSocket;

export interface CpuProfile {
  nodes: Array<{
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
    children?: number[];
  }>;
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface Profiler {
  stop(): Promise<CpuProfile>;
}

function getJson(url: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    get(url, { timeout: 2000 }, res => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => {
        try {
          resolve(JSON.parse(body));
        } catch (err) {
          reject(err);
        }
      });
    })
      .on("error", reject)
      .on("timeout", function (this: { destroy(): void }) {
        this.destroy();
      });
  });
}

interface Session {
  call(method: string, params?: object): Promise<unknown>;
  /** Protocol events (messages without an id) by method name. */
  onEvent(method: string, listener: (params: unknown) => void): void;
  close(): void;
}

/** Opens the inspector of process `pid` (SIGUSR1) and a DevTools protocol session to it. */
async function connect(pid: number, expectScript: string): Promise<Session> {
  // "ws" ships without types; only this small surface is used.
  const { default: WebSocket } = (await import("ws" as string)) as { default: CdpSocketCtor };
  process.kill(pid, "SIGUSR1");
  let target: { url: string; webSocketDebuggerUrl: string } | undefined;
  for (let i = 0; i < 50 && !target; i++) {
    await new Promise(r => setTimeout(r, 100));
    const list = (await getJson("http://127.0.0.1:9229/json/list").catch(() => [])) as Array<{
      url: string;
      webSocketDebuggerUrl: string;
    }>;
    target = list.find(t => t.url.includes(expectScript));
  }
  if (!target) throw new Error(`no inspector target for ${expectScript} on 127.0.0.1:9229`);

  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise<void>((resolve, reject) => {
    ws.on("open", resolve);
    ws.on("error", reject);
  });
  let nextId = 1;
  const pending = new Map<number, (result: unknown) => void>();
  const listeners = new Map<string, (params: unknown) => void>();
  ws.on("message", data => {
    const msg = JSON.parse(data.toString()) as {
      id?: number;
      result?: unknown;
      method?: string;
      params?: unknown;
    };
    if (msg.id !== undefined) pending.get(msg.id)?.(msg.result);
    else if (msg.method) listeners.get(msg.method)?.(msg.params);
  });
  return {
    call: (method, params = {}) =>
      new Promise<unknown>(resolve => {
        const id = nextId++;
        pending.set(id, resolve);
        ws.send(JSON.stringify({ id, method, params }));
      }),
    onEvent: (method, listener) => listeners.set(method, listener),
    close: () => ws.close(),
  };
}

/** process.memoryUsage() of another Node process, in bytes, read through its inspector. */
export async function remoteMemoryUsage(
  pid: number,
  expectScript: string,
): Promise<Record<string, number>> {
  const session = await connect(pid, expectScript);
  try {
    const { result } = (await session.call("Runtime.evaluate", {
      expression: "JSON.stringify(process.memoryUsage())",
      returnByValue: true,
    })) as { result: { value: string } };
    return JSON.parse(result.value) as Record<string, number>;
  } finally {
    session.close();
  }
}

/**
 * Takes a heap snapshot of process `pid` through its inspector (after a full GC, so what it
 * holds is what is live) and writes it to `file` (loadable in Chrome DevTools' Memory tab).
 */
export async function remoteHeapSnapshot(
  pid: number,
  expectScript: string,
  file: string,
): Promise<void> {
  const session = await connect(pid, expectScript);
  const out = createWriteStream(file);
  try {
    session.onEvent("HeapProfiler.addHeapSnapshotChunk", params => {
      out.write((params as { chunk: string }).chunk);
    });
    await session.call("HeapProfiler.enable");
    await session.call("HeapProfiler.collectGarbage");
    await session.call("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
  } finally {
    session.close();
    await new Promise<void>((resolve, reject) =>
      out.end((error?: Error | null) => (error ? reject(error) : resolve())),
    );
  }
}

interface HeapSnapshotFile {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** Self size and count by node type and constructor name, largest `top` first. */
export function summariseHeap(text: string, top = 40): string {
  const heap = JSON.parse(text) as HeapSnapshotFile;
  const fields = heap.snapshot.meta.node_fields;
  const types = heap.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf("type");
  const nameAt = fields.indexOf("name");
  const sizeAt = fields.indexOf("self_size");
  const groups = new Map<string, { count: number; bytes: number }>();
  let total = 0;
  for (let i = 0; i < heap.nodes.length; i += width) {
    const type = types[heap.nodes[i + typeAt]!] ?? "?";
    const raw = heap.strings[heap.nodes[i + nameAt]!] ?? "";
    // Strings and code are grouped by type alone: their "name" is their content.
    const name =
      type === "object" || type === "closure" || type === "native" ? raw.slice(0, 80) : "";
    const key = `${type} ${name}`.trim();
    const bytes = heap.nodes[i + sizeAt]!;
    total += bytes;
    const group = groups.get(key) ?? { count: 0, bytes: 0 };
    group.count++;
    group.bytes += bytes;
    groups.set(key, group);
  }
  const rows = [...groups]
    .sort((a, b) => b[1].bytes - a[1].bytes)
    .slice(0, top)
    .map(
      ([key, g]) =>
        `${(g.bytes / 2 ** 20).toFixed(1).padStart(7)} MiB ${String(g.count).padStart(9)}  ${key}`,
    );
  return [`live heap ${(total / 2 ** 20).toFixed(1)} MiB (self sizes)`, ...rows].join("\n");
}

/**
 * Opens the inspector of process `pid` (SIGUSR1) and starts sampling. `expectScript` must occur
 * in the inspector target's URL, so that another process holding port 9229 is never profiled.
 */
export async function startProfiler(pid: number, expectScript: string): Promise<Profiler> {
  const session = await connect(pid, expectScript);
  await session.call("Profiler.enable");
  await session.call("Profiler.setSamplingInterval", { interval: 1000 });
  await session.call("Profiler.start");
  return {
    stop: async () => {
      const { profile } = (await session.call("Profiler.stop")) as { profile: CpuProfile };
      session.close();
      return profile;
    },
  };
}

export interface SamplingHeapProfile {
  head: SamplingHeapNode;
}
interface SamplingHeapNode {
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  selfSize: number;
  children: SamplingHeapNode[];
}

/**
 * Samples allocations of process `pid` (garbage included: the point is to see what the heap
 * churns through, not only what it keeps) until `stop()`.
 */
export async function startAllocationSampler(
  pid: number,
  expectScript: string,
): Promise<{ stop(): Promise<SamplingHeapProfile> }> {
  const session = await connect(pid, expectScript);
  await session.call("HeapProfiler.enable");
  await session.call("HeapProfiler.startSampling", {
    samplingInterval: 64 * 1024,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  return {
    stop: async () => {
      const { profile } = (await session.call("HeapProfiler.stopSampling")) as {
        profile: SamplingHeapProfile;
      };
      session.close();
      return profile;
    },
  };
}

/**
 * Allocated bytes by function (self) and by the innermost frame of the module's own code on the
 * allocating stack. `sourceMap` (the module bundle's .map) turns bundle positions into sources.
 */
export function summariseAllocations(
  profile: SamplingHeapProfile,
  sourceMap?: SourceMapPayload,
  top = 30,
): string {
  const map = sourceMap ? new SourceMap(sourceMap) : undefined;
  const byFunction = new Map<string, number>();
  const byOwnFrame = new Map<string, number>();
  let total = 0;
  const label = (frame: SamplingHeapNode["callFrame"]) => {
    const url = frame.url.replace(/^file:\/\//, "");
    if (map && url.includes("pepr-beskar7")) {
      const entry = map.findEntry(frame.lineNumber, frame.columnNumber) as {
        originalSource?: string;
        originalLine?: number;
      };
      if (entry.originalSource) {
        const source = entry.originalSource.replace(
          /^.*?((node_modules\/(@[^/]+\/)?[^/]+)|(capabilities|redfish)\/)/,
          "$1",
        );
        return `${frame.functionName || "(anonymous)"} ${source}:${(entry.originalLine ?? 0) + 1}`;
      }
    }
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
    const where = pkg ? pkg : url ? url.replace(/^.*\//, "") : "native";
    return `${frame.functionName || "(anonymous)"} ${where}:${frame.lineNumber + 1}`;
  };
  const walk = (node: SamplingHeapNode, own: string | undefined) => {
    const url = node.callFrame.url;
    const here =
      url.includes("pepr-beskar7") || url.includes("/capabilities/") ? label(node.callFrame) : own;
    if (node.selfSize > 0) {
      total += node.selfSize;
      const key = label(node.callFrame);
      byFunction.set(key, (byFunction.get(key) ?? 0) + node.selfSize);
      const ownKey = here ?? "(no frame of the module)";
      byOwnFrame.set(ownKey, (byOwnFrame.get(ownKey) ?? 0) + node.selfSize);
    }
    for (const child of node.children) walk(child, here);
  };
  walk(profile.head, undefined);
  const lines = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, bytes]) => `${(bytes / 2 ** 20).toFixed(1).padStart(8)} MiB  ${k}`);
  return [
    `allocated ${(total / 2 ** 20).toFixed(0)} MiB (sampled, garbage included)`,
    "by allocating function:",
    ...lines(byFunction),
    "by the innermost frame of the module's own code on the stack:",
    ...lines(byOwnFrame),
  ].join("\n");
}

/** Self time by file (node_modules packages collapsed) and by function, top `top` of each. */
export function summarise(profile: CpuProfile, top = 25): string {
  const byId = new Map(profile.nodes.map(n => [n.id, n]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const byFile = new Map<string, number>();
  const byFunction = new Map<string, number>();
  for (const [id, us] of self) {
    const frame = byId.get(id)!.callFrame;
    const url = frame.url.replace(/^file:\/\//, "");
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
    const file = pkg
      ? `node_modules/${pkg}`
      : url
        ? url.replace(/^.*\/(dist|src|lib)\//, "$1/")
        : `(${frame.functionName || "native"})`;
    byFile.set(file, (byFile.get(file) ?? 0) + us);
    const fn = `${frame.functionName || "(anonymous)"} ${file}${url ? `:${frame.lineNumber + 1}` : ""}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
  }
  const lines = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(
        ([k, us]) =>
          `${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / 1e6).toFixed(2).padStart(6)} s  ${k}`,
      );
  return [
    `sampled ${(total / 1e6).toFixed(1)} s over ${((profile.endTime - profile.startTime) / 1e6).toFixed(1)} s of wall time`,
    "self time by package / file:",
    ...lines(byFile),
    "self time by function:",
    ...lines(byFunction),
  ].join("\n");
}
