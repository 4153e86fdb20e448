// Hardening suite, crashes: the operator process exits right after each BMC action of the
// provisioning sequence (BESKAR7_TEST_EXIT_AFTER_ACTION=<step>, capabilities/physical-host/
// test-exit.ts: after the BMC said yes, before the step is recorded in status), is started again
// with the next injection point, and at last without one. Every host must end Provisioned, and the
// test BMC's action log must show each action of the sequence exactly once.
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { TEST_EXIT_CODE } from "../../../capabilities/physical-host/test-exit";
import { TestBmc } from "../../../lab/bmc/server";
import { createRedfishClient } from "../../../redfish/index";
import { claimHost } from "../physical-host/support";
import { fastClient } from "../redfish/harness";
import { createNamespace } from "../support/kube";
import { startOperator, type Operator } from "../support/operator";
import {
  canarySummary,
  CANARY_PASSWORD,
  type Fleet,
  OPERATOR_ENV,
  registerFleet,
  searchCanary,
  USERNAME,
  waitHosts,
  withOperatorLog,
} from "./support";

const STEPS = [
  "PowerOff",
  "EjectMedia",
  "InsertBootMedia",
  "InsertConfigMedia",
  "SetBootOverride",
  "PowerOn",
] as const;
const ISO = "http://images.hardening.invalid/crash.iso";
const CONFIG = "http://images.hardening.invalid/crash-config.img";
const OLD_MEDIUM = "http://images.hardening.invalid/left-over.iso";
const MOCKUPS = ["dmtf_public-rackmount1", "nvidia-libredfish_dell_poweredge-r750_idrac9-6.00.30"];

/** Inserts a medium as a person at the BMC would (so EjectMedia has work, when the capture has
 *  none inserted), through the driver. */
async function insertLeftOver(bmc: TestBmc): Promise<void> {
  const client = createRedfishClient({
    address: bmc.url,
    credentials: { username: USERNAME, password: CANARY_PASSWORD },
    tls: { caBundle: bmc.caPem! },
    ...fastClient,
  });
  try {
    await client.system().insertMedia({ image: OLD_MEDIUM, kind: "cd" });
  } finally {
    await client.close();
  }
}

/** Starts the operator with an injection point and waits for its injected exit. */
async function runUntilInjectedExit(
  step: string,
): Promise<{ code: number | null; output: string }> {
  let operator: Operator;
  try {
    operator = await startOperator({ ...OPERATOR_ENV, BESKAR7_TEST_EXIT_AFTER_ACTION: step });
  } catch (err) {
    // The module may reach the step before operator:local has registered its webhooks.
    const code = /operator exited \((\d+)\)/.exec((err as Error).message)?.[1];
    return { code: code ? Number(code) : null, output: (err as Error).message };
  }
  const code = await new Promise<number | null>(resolve => {
    if (operator.child.exitCode !== null) resolve(operator.child.exitCode);
    operator.child.once("exit", c => resolve(c));
    setTimeout(() => resolve(null), 90_000).unref();
  });
  if (code === null) await operator.kill();
  return { code, output: operator.output() };
}

describe("the operator killed after each BMC action of provisioning", () => {
  let ns: string;
  let fleet: Fleet;
  let operator: Operator | undefined;
  const outputs: string[] = [];

  beforeAll(async () => {
    ns = await createNamespace("hardening-crash");
    const bmcs = await Promise.all(
      MOCKUPS.map(mockup =>
        TestBmc.start({
          mockup,
          tls: "shared",
          latencyMs: 50,
          powerState: "On",
          username: USERNAME,
          password: CANARY_PASSWORD,
        }),
      ),
    );
    fleet = {
      bmcs,
      hosts: bmcs.map((bmc, i) => ({
        name: `crash-${i + 1}`,
        bmc,
        system: bmc.systems[0]!,
        systemId: bmc.systems[0]!.split("/").pop()!,
      })),
      stop: async () => void (await Promise.all(bmcs.map(b => b.stop()))),
    };
    operator = await startOperator(OPERATOR_ENV);
    await registerFleet(ns, fleet);
    await withOperatorLog(operator, () =>
      waitHosts(ns, fleet.hosts.length, h => h.status?.state === "Available", "hosts Available"),
    );
    await operator.stop();
    outputs.push(operator.output());
    operator = undefined;
    for (const bmc of bmcs) if (!bmc.insertedMedia().length) await insertLeftOver(bmc);
  });

  afterAll(async () => {
    await operator?.stop();
    await fleet?.stop();
  });

  it("resumes after every injected exit and does each BMC action exactly once", async () => {
    const before = fleet.hosts.map(h => h.bmc.actions.length);
    // Claimed while no operator runs, so the first run starts at the first step.
    for (const host of fleet.hosts) {
      await claimHost(ns, host.name, {
        mode: "VirtualMedia",
        bootISO: ISO,
        configMediaURL: CONFIG,
        bootMode: "UEFI",
      });
    }
    let injectedExits = 0;
    for (const step of STEPS) {
      const run = await runUntilInjectedExit(step);
      outputs.push(run.output);
      expect(run.code, `exit code of the run injected after ${step}`).toBe(TEST_EXIT_CODE);
      expect(run.output).toContain(`exiting after ${step}`);
      injectedExits++;
    }
    operator = await startOperator(OPERATOR_ENV);
    const hosts = await withOperatorLog(operator, () =>
      waitHosts(
        ns,
        fleet.hosts.length,
        h => h.status?.state === "Provisioned",
        "Provisioned after the last restart",
        120_000,
      ),
    );

    const counts = fleet.hosts.map((host, i) => {
      const actions = host.bmc.actions.slice(before[i]);
      const of = (kind: string, ok: (a: (typeof actions)[number]) => boolean = () => true) =>
        actions.filter(a => a.kind === kind && ok(a)).length;
      return {
        PowerOff: of("reset", a => a.kind === "reset" && a.resetType === "ForceOff"),
        // Once per slot that held a medium (a capture may have several inserted).
        EjectMedia: Math.max(
          ...["", ...new Set(actions.map(a => (a.kind === "eject" ? a.slot : "")))]
            .filter(Boolean)
            .map(slot => actions.filter(a => a.kind === "eject" && a.slot === slot).length),
        ),
        InsertBootMedia: of("insert", a => a.kind === "insert" && a.image === ISO),
        InsertConfigMedia: of("insert", a => a.kind === "insert" && a.image === CONFIG),
        SetBootOverride: of("boot"),
        PowerOn: of("reset", a => a.kind === "reset" && a.resetType !== "ForceOff"),
        boots: host.bmc.boots.length,
      };
    });
    // Writing the same one-time override again is the one repeat the design allows
    // (docs/physicalhost.md): the step does not read before it writes, so a crash between the
    // PATCH and its record repeats the PATCH once. It changes nothing on the server.
    const repeated = counts.flatMap(c =>
      STEPS.filter(s => c[s] !== 1 && !(s === "SetBootOverride" && c[s] === 2)),
    );
    console.log(
      `crash: ${STEPS.length} injection points, ${injectedExits} exits right after the step's BMC ` +
        `action, ${fleet.hosts.length} hosts (${MOCKUPS.join(", ")}) resumed to Provisioned: ` +
        `${hosts.filter(h => h.status?.state === "Provisioned").length}; actions per step ` +
        counts.map(c => STEPS.map(s => c[s]).join("/")).join(" and ") +
        `; ${repeated.length} repeated or missing (the boot override write may repeat once)`,
    );
    for (const c of counts) {
      expect(c).toEqual({
        PowerOff: 1,
        EjectMedia: 1,
        InsertBootMedia: 1,
        InsertConfigMedia: 1,
        SetBootOverride: expect.toSatisfy((n: number) => n === 1 || n === 2),
        PowerOn: 1,
        boots: 1,
      });
    }
    for (const [i, host] of fleet.hosts.entries()) {
      expect(host.bmc.powerState(host.system)).toBe("On");
      expect(host.bmc.lastBoot?.media, `host ${i + 1} booted the ISO`).toBe(ISO);
      expect(
        hosts
          .find(h => h.metadata?.name === host.name)
          ?.status?.provisioning?.completedSteps?.map(s => s.step),
      ).toEqual([...STEPS]);
    }
  }, 600_000);

  it("leaks no canary password", async () => {
    const report = await searchCanary([ns], operator, outputs);
    console.log(`crash ${canarySummary(report)}`);
    expect(report.hits).toEqual([]);
  });
});
