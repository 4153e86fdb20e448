// CPU profiling of a running Node process for the benchmarks, without changing how it was
// started (NODE_OPTIONS may not carry --cpu-prof): SIGUSR1 opens the process's inspector on
// 127.0.0.1:9229, and the DevTools protocol's Profiler takes a sampled profile. summarise() turns
// the .cpuprofile into self time per package/file and per function.
import { get } from "node:http";

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
  ws.on("message", data => {
    const msg = JSON.parse(data.toString()) as { id?: number; result?: unknown };
    if (msg.id !== undefined) pending.get(msg.id)?.(msg.result);
  });
  return {
    call: (method, params = {}) =>
      new Promise<unknown>(resolve => {
        const id = nextId++;
        pending.set(id, resolve);
        ws.send(JSON.stringify({ id, method, params }));
      }),
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
