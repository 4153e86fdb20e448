// Hardening suite, BMC faults on many hosts at once: while half the fleet is Provisioned and the
// other half is being claimed and provisioned, every test BMC answers 10% of requests with 503,
// drops 2% of connections, gets 2 s latency spikes and expired sessions, two BMCs reset in the
// middle of the sequence (down, sessions lost, up again), and each BMC allows 2 sessions. No claim
// may be lost, no Provisioned host may change state, no host may be booted twice, and no BMC may
// see more sessions than its limit (or refuse a login for it).
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import type { HostProvisioning } from "../../../capabilities/api";
import type { TestBmc } from "../../../lab/bmc/server";
import { claimHost } from "../physical-host/support";
import { createNamespace } from "../support/kube";
import { startOperator, type Operator } from "../support/operator";
import {
  canarySummary,
  eachLimited,
  type Fleet,
  OPERATOR_ENV,
  registerFleet,
  searchCanary,
  sleep,
  startFleet,
  waitHosts,
  watchHosts,
  withOperatorLog,
} from "./support";

const HOSTS = 16;
const PER_BMC = 4;
const MAX_SESSIONS = 2;
const PROVISIONING: HostProvisioning = {
  mode: "VirtualMedia",
  bootISO: "http://images.hardening.invalid/faults.iso",
};

interface Chaos {
  counts: Record<string, number>;
  stop(): Promise<void>;
}

/** Faults on every BMC at once, until stopped. */
function startChaos(bmcs: TestBmc[]): Chaos {
  const counts = { requests: 0, "503s": 0, drops: 0, spikes: 0, expiries: 0, resets: 0 };
  const restore: Array<() => void> = [];
  for (const bmc of bmcs) {
    const counter = bmc.requests;
    const record = counter.record.bind(counter);
    // record() runs before the BMC picks a fault for the request, so a fault injected here
    // applies to this very request.
    counter.record = (method: string, path: string) => {
      counts.requests++;
      const roll = Math.random();
      if (roll < 0.1) {
        counts["503s"]++;
        bmc.inject({ kind: "status", status: 503, retryAfterSeconds: 0 });
      } else if (roll < 0.12) {
        counts.drops++;
        bmc.inject({ kind: "drop" });
      }
      record(method, path);
    };
    restore.push(() => {
      counter.record = record;
      bmc.clearFaults();
      bmc.latencyMs = 50;
    });
  }
  let stopped = false;
  const pick = () => bmcs[Math.floor(Math.random() * bmcs.length)]!;
  const loops = [
    (async () => {
      while (!stopped) {
        const bmc = pick();
        bmc.latencyMs = 2000;
        counts.spikes++;
        await sleep(2000);
        bmc.latencyMs = 50;
        await sleep(500);
      }
    })(),
    (async () => {
      while (!stopped) {
        await sleep(3000);
        pick().expireSessions();
        counts.expiries++;
      }
    })(),
    (async () => {
      // Two BMC resets in the middle of the sequence: gone for 3 s, sessions lost.
      for (const bmc of bmcs.slice(0, 2)) {
        await sleep(2000);
        if (stopped) return;
        await bmc.down();
        bmc.expireSessions();
        counts.resets++;
        await sleep(3000);
        await bmc.up();
      }
    })(),
  ];
  return {
    counts,
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
      for (const r of restore) r();
      await Promise.all(bmcs.map(b => b.up()));
    },
  };
}

describe("BMC faults on many hosts at once", () => {
  let ns: string;
  let fleet: Fleet;
  let operator: Operator;
  let watch: ReturnType<typeof watchHosts>;

  beforeAll(async () => {
    ns = await createNamespace("hardening-faults");
    fleet = await startFleet(HOSTS, PER_BMC, { profile: { maxSessions: MAX_SESSIONS } });
    operator = await startOperator(OPERATOR_ENV);
    watch = watchHosts(ns);
    await registerFleet(ns, fleet);
    await withOperatorLog(operator, () =>
      waitHosts(ns, HOSTS, h => h.status?.state === "Available", "hosts Available"),
    );
  });

  afterAll(async () => {
    watch?.stop();
    await operator?.stop();
    await fleet?.stop();
  });

  it("loses no claim, flips no Provisioned host, boots each host once and stays within the session limit", async () => {
    const settled = fleet.hosts.slice(0, HOSTS / 2);
    const fresh = fleet.hosts.slice(HOSTS / 2);
    await eachLimited(settled, 8, h => claimHost(ns, h.name, PROVISIONING));
    await withOperatorLog(operator, () =>
      waitHosts(
        ns,
        HOSTS,
        h => !settled.some(s => s.name === h.metadata?.name) || h.status?.state === "Provisioned",
        "the first half Provisioned before the faults",
      ),
    );
    const stateCountBefore = new Map(
      settled.map(h => [h.name, watch.histories.get(h.name)!.states.length]),
    );

    const chaos = startChaos(fleet.bmcs);
    const started = Date.now();
    let provisionedUnderFaults = 0;
    try {
      await eachLimited(fresh, 8, h => claimHost(ns, h.name, PROVISIONING));
      const hosts = await withOperatorLog(operator, () =>
        waitHosts(ns, HOSTS, h => h.status?.state === "Provisioned", "all Provisioned", 180_000),
      );
      provisionedUnderFaults = hosts.filter(h =>
        fresh.some(f => f.name === h.metadata?.name),
      ).length;
      // Keep the faults on a while longer: the Provisioned hosts' power checks meet them too.
      await sleep(Math.max(0, 20_000 - (Date.now() - started)));
    } finally {
      await chaos.stop();
    }

    const lostClaims = fleet.hosts.filter(h => {
      const consumers = watch.histories.get(h.name)?.consumers ?? [];
      return consumers.filter(Boolean).length !== 1 || consumers[consumers.length - 1] === "";
    });
    const flipped = settled.filter(h => {
      const states = watch.histories.get(h.name)!.states.slice(stateCountBefore.get(h.name)! - 1);
      return states.some(s => s !== "Provisioned");
    });
    const bootedTwice = fleet.hosts.filter(
      h => h.bmc.boots.filter(b => b.system === h.system).length !== 1,
    );
    const peak = Math.max(...fleet.bmcs.map(b => b.peakSessions));
    const refused = fleet.bmcs.reduce((n, b) => n + b.refusedLogins, 0);
    const c = chaos.counts;
    console.log(
      `faults: ${HOSTS} hosts on ${fleet.bmcs.length} BMCs for ${((Date.now() - started) / 1000).toFixed(0)} s, ` +
        `${c.requests} requests, ${c["503s"]} 503s, ${c.drops} dropped connections, ` +
        `${c.spikes} 2 s latency spikes, ${c.expiries} session expiries, ${c.resets} BMC resets; ` +
        `${provisionedUnderFaults}/${fresh.length} provisioned under faults, ${lostClaims.length} claims lost, ` +
        `${flipped.length} Provisioned hosts flipped, ${bootedTwice.length} hosts booted twice, ` +
        `peak sessions ${peak} (limit ${MAX_SESSIONS}), ${refused} logins refused at the limit`,
    );
    expect(lostClaims.map(h => h.name)).toEqual([]);
    expect(flipped.map(h => h.name)).toEqual([]);
    expect(bootedTwice.map(h => h.name)).toEqual([]);
    expect(peak).toBeLessThanOrEqual(MAX_SESSIONS);
    expect(refused).toBe(0);
    expect(c["503s"]).toBeGreaterThan(0);
    expect(c.resets).toBe(2);
  }, 400_000);

  it("leaks no canary password", async () => {
    const report = await searchCanary([ns], operator);
    console.log(`faults ${canarySummary(report)}`);
    expect(report.hits).toEqual([]);
  });
});
