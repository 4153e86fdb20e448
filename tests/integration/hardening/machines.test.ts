// Hardening suite, machines: 50 Beskar7Machines racing for 20 hosts (no host claimed twice; every
// machine ends Provisioned or waiting with a reason), then 100 machine deletions at random points
// of provisioning (no host left claimed, stuck in a state, or powered on with media in, read from
// the test BMCs themselves). Real API server, the built module through startOperator, multi-system
// test BMCs at 50 ms; Cluster API's objects are real CRD objects created as its machine controller
// would (no Cluster API manager: the Beskar7 controllers need none to claim and provision).
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import type { Beskar7Machine } from "../../../capabilities/api";
import { createNamespace, eventually } from "../support/kube";
import { startOperator, type Operator } from "../support/operator";
import {
  canarySummary,
  clusterFor,
  createMachine,
  deleteMachine,
  doubleClaims,
  eachLimited,
  type Fleet,
  listHosts,
  listMachines,
  OPERATOR_ENV,
  registerFleet,
  searchCanary,
  sleep,
  startFleet,
  waitHosts,
  waitMachinesGone,
  watchHosts,
  withOperatorLog,
} from "./support";

const HOSTS = 20;
const RACERS = 50;
const DELETIONS = 100;

const condition = (m: Beskar7Machine, type: string) =>
  m.status?.conditions?.find(c => c.type === type);
const provisioned = (m: Beskar7Machine) => m.status?.initialization?.provisioned === true;
/** Waiting with a reason: not claimed, and a HostClaimed condition that says why. */
const waitingWithReason = (m: Beskar7Machine) => {
  const c = condition(m, "HostClaimed");
  return !m.status?.hostRef && c?.status === "False" && !!c.reason && !!c.message;
};

describe("machines racing and deleted mid-provisioning", () => {
  let operator: Operator;
  let fleet: Fleet;
  let ns: string;
  let watch: ReturnType<typeof watchHosts>;
  /** Creation to the last machine provisioned in the race, which sets the deletion window. */
  let provisioningMs = 10_000;

  beforeAll(async () => {
    ns = await createNamespace("hardening-machines");
    fleet = await startFleet(HOSTS, 2);
    operator = await startOperator(OPERATOR_ENV);
    watch = watchHosts(ns);
    await registerFleet(ns, fleet);
    await withOperatorLog(operator, () =>
      waitHosts(ns, HOSTS, h => h.status?.state === "Available", "hosts Available"),
    );
    await clusterFor(ns);
  });

  afterAll(async () => {
    watch?.stop();
    await operator?.stop();
    await fleet?.stop();
  });

  it("50 machines racing for 20 hosts: no double claim, every machine provisioned or waiting with a reason", async () => {
    const names = Array.from(
      { length: RACERS },
      (_, i) => `race-${String(i + 1).padStart(3, "0")}`,
    );
    const started = Date.now();
    await Promise.all(names.map(name => createMachine(ns, name)));
    const settled = await eventually(
      async () => {
        const machines = await listMachines(ns);
        const done = machines.filter(provisioned).length;
        const waiting = machines.filter(waitingWithReason).length;
        return done === HOSTS && waiting === RACERS - HOSTS && machines;
      },
      `${HOSTS} provisioned and ${RACERS - HOSTS} waiting with a reason`,
      180_000,
      500,
    );
    provisioningMs = Date.now() - started;
    const hosts = await listHosts(ns);
    const byHostRef = new Map<string, string[]>();
    for (const m of settled) {
      const host = m.status?.hostRef?.name;
      if (host) byHostRef.set(host, [...(byHostRef.get(host) ?? []), m.metadata!.name!]);
    }
    const sharedHostRefs = [...byHostRef.values()].filter(v => v.length > 1).length;
    // Each provisioned machine's host names that machine (by UID) as its consumer.
    const mismatched = settled.filter(provisioned).filter(m => {
      const host = hosts.find(h => h.metadata?.name === m.status?.hostRef?.name);
      return (
        host?.spec?.consumerRef?.uid !== m.metadata?.uid || host?.status?.state !== "Provisioned"
      );
    });
    const doubles = doubleClaims(watch.histories);
    const reasons = new Set(
      settled.filter(waitingWithReason).map(m => condition(m, "HostClaimed")!.reason),
    );
    console.log(
      `race: ${RACERS} machines, ${HOSTS} hosts, ${doubles.length} double claims ` +
        `(watch history), ${sharedHostRefs} hosts named by two machines, ` +
        `${settled.filter(provisioned).length} provisioned in ${(provisioningMs / 1000).toFixed(1)} s, ` +
        `${settled.filter(waitingWithReason).length} waiting with reason (${[...reasons].join(", ")})`,
    );
    expect(doubles).toEqual([]);
    expect(sharedHostRefs).toBe(0);
    expect(mismatched.map(m => m.metadata?.name)).toEqual([]);

    // Release them all (the waiting ones first, so they do not claim the hosts being released):
    // the deletions below start from a free fleet.
    const waitingFirst = [
      ...settled.filter(m => !provisioned(m)),
      ...settled.filter(provisioned),
    ].map(m => m.metadata!.name!);
    await eachLimited(waitingFirst, 10, name => deleteMachine(ns, name));
    await waitHosts(
      ns,
      HOSTS,
      h => h.status?.state === "Available" && !h.spec?.consumerRef,
      "hosts Available after the race",
      180_000,
    );
  }, 300_000);

  it("100 machine deletions at random points of provisioning leave no host claimed, stuck, or on with media in", async () => {
    /** Where each machine was when its deletion was sent (its host's state, or unclaimed). */
    const deletedAt: Record<string, number> = {};
    const rounds = Math.ceil(DELETIONS / HOSTS);
    const window = Math.max(2000, provisioningMs);
    let deleted = 0;
    for (let round = 0; round < rounds; round++) {
      const names = Array.from(
        { length: Math.min(HOSTS, DELETIONS - deleted) },
        (_, i) => `del-${round}-${String(i + 1).padStart(2, "0")}`,
      );
      await Promise.all(
        names.map(async name => {
          await createMachine(ns, name);
          await sleep(Math.random() * window);
          const machine = (await listMachines(ns)).find(m => m.metadata?.name === name);
          const hostName = machine?.status?.hostRef?.name;
          const host = hostName
            ? (await listHosts(ns)).find(h => h.metadata?.name === hostName)
            : undefined;
          const point = host?.status?.state ?? "unclaimed";
          deletedAt[point] = (deletedAt[point] ?? 0) + 1;
          await deleteMachine(ns, name);
        }),
      );
      deleted += names.length;
      // The next round starts once every host is free again (whether the deleted machines'
      // finalizers finished is the last test's question).
      await waitHosts(
        ns,
        HOSTS,
        h => h.status?.state === "Available" && !h.spec?.consumerRef,
        `round ${round}: hosts free`,
        120_000,
      );
    }
    const hosts = await waitHosts(
      ns,
      HOSTS,
      h => h.status?.state === "Available" && !h.spec?.consumerRef && !h.spec?.provisioning,
      "every host Available and unclaimed",
      120_000,
    );
    const byName = new Map(fleet.hosts.map(h => [h.name, h]));
    const poweredOn: string[] = [];
    const withMedia: string[] = [];
    for (const host of hosts) {
      const f = byName.get(host.metadata!.name!)!;
      if (f.bmc.powerState(f.system) !== "Off") poweredOn.push(f.name);
      if (f.bmc.insertedMedia(f.system).length) withMedia.push(f.name);
    }
    const stuck = hosts.filter(h => h.status?.state !== "Available").length;
    const claimed = hosts.filter(h => h.spec?.consumerRef).length;
    console.log(
      `deletions: ${deleted} machines deleted at random points ` +
        `(${Object.entries(deletedAt)
          .map(([k, v]) => `${v} ${k}`)
          .join(", ")}), ${HOSTS} hosts: ${claimed} left claimed, ${stuck} stuck, ` +
        `${poweredOn.length} powered on, ${withMedia.length} with media in`,
    );
    expect(deleted).toBe(DELETIONS);
    expect(poweredOn).toEqual([]);
    expect(withMedia).toEqual([]);
    expect(doubleClaims(watch.histories)).toEqual([]);
  }, 600_000);

  it("finishes every deletion: no Beskar7Machine left behind once its host is released", async () => {
    let left = 0;
    try {
      await waitMachinesGone(ns, "every deleted machine gone", 30_000);
    } catch (err) {
      left = (await listMachines(ns)).length;
      console.log(
        `deletions: ${left} deleted Beskar7Machines still present 30 s after their hosts were free`,
      );
      throw err;
    }
    console.log(`deletions: ${RACERS + DELETIONS} Beskar7Machines deleted, ${left} left`);
  });

  it("leaks no canary password or bootstrap payload", async () => {
    const report = await searchCanary([ns], operator);
    console.log(`machines ${canarySummary(report)}`);
    expect(report.hits).toEqual([]);
  });
});
