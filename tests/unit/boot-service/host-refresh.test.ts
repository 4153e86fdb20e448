// KubeHostDirectory.refresh: a request the index refuses (the host controller has just written a
// session the watch has not brought yet) re-reads that one host from the API server. Checked with
// an API client that holds one host object and counts its GETs: a re-read indexes the newer
// object, requests arriving together share one GET, a host is read at most once per 200 ms, an
// unchanged object says "no change", an unknown UUID costs nothing, past 8 re-reads at once
// the others wait for a slot rather than being refused, the watch's event answers a waiting
// request before its GET does (a re-read still waiting for its turn is then not sent), an event
// older than the view indexed is not indexed.
import { afterEach, describe, expect, it } from "vitest";

import { KubeHostDirectory } from "../../../boot-service/hosts";
import type { KubeClient } from "../../../boot-service/kube";

const UUID = "4c4c4544-0000-1000-8000-00000000abcd";
const HOST_PATH =
  "/apis/infrastructure.cluster.x-k8s.io/v1beta1/namespaces/team-a/physicalhosts/host-1";

interface HostObject {
  metadata: { name: string; namespace: string; uid: string; resourceVersion: string };
  status: Record<string, unknown>;
}

function hostObject(resourceVersion: string, session?: string): HostObject {
  return {
    metadata: { name: "host-1", namespace: "team-a", uid: "uid-1", resourceVersion },
    status: {
      state: session ? "Provisioning" : "Claimed",
      hardwareDetails: { systemUUID: UUID.toUpperCase() },
      ...(session
        ? {
            boot: {
              session,
              issuedTime: new Date().toISOString(),
              delivery: "PatchedISO",
            },
          }
        : {}),
    },
  };
}

/** The i-th of many hosts: host-<i>, its own UID and system UUID. */
const uuid = (i: number) => `4c4c4544-0000-1000-8000-${String(i).padStart(12, "0")}`;
function host(i: number, version: string, session?: string): HostObject {
  const object = hostObject(version, session);
  object.metadata.name = `host-${i}`;
  object.metadata.uid = `uid-${i}`;
  (object.status.hardwareDetails as { systemUUID: string }).systemUUID = uuid(i);
  return object;
}

/** An API server holding one PhysicalHost; the watch stays silent until stopped. */
function fakeKube(initial: HostObject) {
  const api = { current: initial, gets: [] as string[] };
  const kube = {
    async request(method: string, path: string) {
      if (path.endsWith("/physicalhosts")) {
        return { metadata: { resourceVersion: "1" }, items: [api.current] };
      }
      api.gets.push(`${method} ${path}`);
      await new Promise(r => setTimeout(r, 5));
      return structuredClone(api.current);
    },
    watch(_path: string, version: string, _onEvent: unknown, signal: AbortSignal) {
      return new Promise<string>(resolve =>
        signal.addEventListener("abort", () => resolve(version)),
      );
    },
  } as unknown as KubeClient;
  return { api, kube };
}

type WatchEvent = { type: string; object: HostObject };

/** An API server listing `hosts`, answering reads with `read`, whose watch sends what the test emits. */
function emittingKube(hosts: HostObject[], read: (path: string) => Promise<HostObject>) {
  const api = { emit: (_event: WatchEvent) => undefined as void };
  const kube = {
    async request(_method: string, path: string) {
      if (path.endsWith("/physicalhosts")) {
        return { metadata: { resourceVersion: "1" }, items: hosts };
      }
      return read(path);
    },
    watch(_path: string, version: string, onEvent: (e: WatchEvent) => void, signal: AbortSignal) {
      api.emit = onEvent;
      return new Promise<string>(resolve =>
        signal.addEventListener("abort", () => resolve(version)),
      );
    },
  } as unknown as KubeClient;
  return { kube, emit: (event: WatchEvent) => api.emit(event) };
}

describe("KubeHostDirectory.refresh", () => {
  let directory: KubeHostDirectory | undefined;
  afterEach(() => directory?.stop());

  it("indexes the host's newer object, shares one GET among requests arriving together, and reads a host at most once per 200 ms", async () => {
    const { api, kube } = fakeKube(hostObject("10"));
    directory = new KubeHostDirectory(kube, () => undefined);
    await directory.start();
    const before = directory.lookup(UUID);
    expect("found" in before && before.found.boot).toBeUndefined();

    api.current = hostObject("11", "s-new");
    const together = await Promise.all([directory.refresh(UUID), directory.refresh(UUID)]);
    expect(together).toEqual([true, true]);
    expect(api.gets).toEqual([`GET ${HOST_PATH}`]);
    const after = directory.lookup(UUID);
    expect("found" in after && after.found.boot?.session).toBe("s-new");
    expect("found" in after && after.found.state).toBe("Provisioning");

    // Within the interval: the last answer, no GET.
    api.current = hostObject("12", "s-newer");
    expect(await directory.refresh(UUID)).toBe(true);
    expect(api.gets).toHaveLength(1);
    await new Promise(r => setTimeout(r, 220));
    expect(await directory.refresh(UUID)).toBe(true);
    expect(api.gets).toHaveLength(2);
    const newest = directory.lookup(UUID);
    expect("found" in newest && newest.found.boot?.session).toBe("s-newer");

    // Nothing new on the server: no change.
    await new Promise(r => setTimeout(r, 220));
    expect(await directory.refresh(UUID)).toBe(false);
    expect(api.gets).toHaveLength(3);
  });

  it("costs nothing for a UUID no host carries", async () => {
    const { api, kube } = fakeKube(hostObject("10"));
    directory = new KubeHostDirectory(kube, () => undefined);
    await directory.start();
    expect(await directory.refresh("4c4c4544-0000-1000-8000-000000000000")).toBe(false);
    expect(api.gets).toEqual([]);
  });

  it("re-reads at most 8 hosts at once; the rest wait their turn instead of being refused", async () => {
    const hosts = Array.from({ length: 20 }, (_, i) => host(i, "10"));
    let inFlight = 0;
    let most = 0;
    const kube = {
      async request(_method: string, path: string) {
        if (path.endsWith("/physicalhosts")) {
          return { metadata: { resourceVersion: "1" }, items: hosts };
        }
        inFlight++;
        most = Math.max(most, inFlight);
        await new Promise(r => setTimeout(r, 20));
        inFlight--;
        const i = Number(path.split("host-")[1]);
        return host(i, "11", `s-${i}`);
      },
      watch(_path: string, version: string, _onEvent: unknown, signal: AbortSignal) {
        return new Promise<string>(resolve =>
          signal.addEventListener("abort", () => resolve(version)),
        );
      },
    } as unknown as KubeClient;
    directory = new KubeHostDirectory(kube, () => undefined);
    await directory.start();
    const answers = await Promise.all(hosts.map((_, i) => directory!.refresh(uuid(i))));
    expect(answers).toEqual(hosts.map(() => true));
    expect(most).toBe(8);
    for (let i = 0; i < hosts.length; i++) {
      const found = directory.lookup(uuid(i));
      expect("found" in found && found.found.boot?.session).toBe(`s-${i}`);
    }
  });

  it("answers from the watch's event when it comes before the GET, and sends no queued re-read the watch overtook", async () => {
    const hosts = Array.from({ length: 10 }, (_, i) => host(i, "10"));
    const gets: string[] = [];
    const { kube, emit } = emittingKube(hosts, async path => {
      gets.push(path.split("/").pop()!);
      // An API server slow to answer reads: every slot stays taken for a while.
      await new Promise(r => setTimeout(r, 400));
      const i = Number(path.split("host-")[1]);
      return host(i, "11", `s-${i}`);
    });
    directory = new KubeHostDirectory(kube, () => undefined);
    await directory.start();
    await new Promise(r => setTimeout(r, 10)); // the watch is open

    // Hosts 0-7 take every slot; host 8's re-read waits for its turn, host 9's too.
    const busy = hosts.slice(0, 8).map((_, i) => directory!.refresh(uuid(i)));
    const started = Date.now();
    const eight = directory.refresh(uuid(8));
    const nine = directory.refresh(uuid(9));
    await new Promise(r => setTimeout(r, 30));
    emit({ type: "MODIFIED", object: host(8, "12", "s-8-watched") });
    expect(await eight).toBe(true);
    expect(Date.now() - started).toBeLessThan(300);
    const found = directory.lookup(uuid(8));
    expect("found" in found && found.found.boot?.session).toBe("s-8-watched");

    expect(await Promise.all(busy)).toEqual(busy.map(() => true));
    expect(await nine).toBe(true);
    // Host 8's turn came after the watch had brought it: only host 9 was read beyond the eight.
    expect(gets.sort()).toEqual([...hosts.slice(0, 8), hosts[9]!].map(h => h.metadata.name).sort());
  });

  it("waits past a watch event that does not let the request through (an older write) for the one that does", async () => {
    let gets = 0;
    const { kube, emit } = emittingKube([hostObject("10")], async () => {
      gets++;
      await new Promise(r => setTimeout(r, 1000)); // a slow API server
      return hostObject("13", "s-new");
    });
    directory = new KubeHostDirectory(kube, () => undefined);
    await directory.start();
    await new Promise(r => setTimeout(r, 10));
    const hasSession = () => {
      const found = directory!.lookup(UUID);
      return "found" in found && found.found.boot?.session === "s-new";
    };
    const started = Date.now();
    let answered = false;
    const refreshed = directory.refresh(UUID, hasSession).then(changed => {
      answered = true;
      return changed;
    });
    // The host's status as written before the session (a claim's first run): not enough.
    emit({ type: "MODIFIED", object: hostObject("11") });
    await new Promise(r => setTimeout(r, 50));
    expect(answered).toBe(false);
    // The session's write.
    emit({ type: "MODIFIED", object: hostObject("12", "s-new") });
    expect(await refreshed).toBe(true);
    expect(hasSession()).toBe(true);
    expect(Date.now() - started).toBeLessThan(500);
    expect(gets).toBe(1); // sent at once (a slot was free); its answer no longer matters
  });

  it("keeps a re-read's view when the watch then brings an older write of the host", async () => {
    const { kube, emit } = emittingKube([hostObject("10")], async () => hostObject("13", "s-new"));
    directory = new KubeHostDirectory(kube, () => undefined);
    await directory.start();
    await new Promise(r => setTimeout(r, 10));
    expect(await directory.refresh(UUID)).toBe(true);
    emit({ type: "MODIFIED", object: hostObject("12") }); // late: from before the session
    const found = directory.lookup(UUID);
    expect("found" in found && found.found.boot?.session).toBe("s-new");
    emit({ type: "MODIFIED", object: hostObject("14") }); // newer: the host was released
    const released = directory.lookup(UUID);
    expect("found" in released && released.found.boot).toBeUndefined();
  });
});
