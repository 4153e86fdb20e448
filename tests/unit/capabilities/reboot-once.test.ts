// The reboot annotation resets a server at most once (issue 13). Before, the reset came first and
// the annotation was removed after: a lost annotation patch, or a reset that timed out after the
// BMC had done it, reset the server again on the retry. Now the request is taken off and recorded
// (Rebooting=True) in one run and acted on, once, in the next.
import { describe, expect, it } from "vitest";

import { reconcileHost } from "../../../capabilities/physical-host/controller";
import { Annotations } from "../../../capabilities/api";
import { BmcUnreachableError } from "../../../redfish";
import { FakeBmc } from "./fake-bmc";
import { HostHarness, condition, makeHost } from "./helpers";

async function enrolled(): Promise<HostHarness> {
  const h = new HostHarness(makeHost(), new FakeBmc({ power: "On" }));
  await h.reconcile();
  h.clearRecords();
  return h;
}

describe("the reboot annotation", () => {
  it("resets once even when the annotation's removal is lost", async () => {
    const h = await enrolled();
    h.setAnnotations({ [Annotations.reboot]: "hard" });
    // First run: recorded, but the runtime's annotation patch never lands (crash, API error).
    const first = await reconcileHost(structuredClone(h.host), h.deps());
    h.apply({ ...first, annotations: undefined });
    expect(Annotations.reboot in (h.host.metadata?.annotations ?? {})).toBe(true);
    // Runs again with the annotation still there: the record stands, still no reset.
    await h.reconcile();
    expect(h.bmc.actions()).toEqual([]);
    await h.reconcile();
    await h.reconcile();
    expect(h.bmc.argsOf("restart")).toEqual([[{ force: true }]]);
    expect(condition(h.host.status, "Rebooting")).toMatchObject({
      status: "False",
      reason: "Rebooted",
    });
  });

  it("does not reset again after a reset that failed (it may have happened): reports it", async () => {
    const h = await enrolled();
    h.setAnnotations({ [Annotations.reboot]: "hard" });
    await h.reconcile(); // recorded
    h.bmc.fail(new BmcUnreachableError("POST ComputerSystem.Reset timed out"), "restart");
    await h.reconcile();
    h.bmc.heal();
    for (let i = 0; i < 3; i++) await h.reconcile();
    expect(h.bmc.calls.restart).toBe(1);
    expect(condition(h.host.status, "Rebooting")).toMatchObject({
      status: "False",
      reason: "RebootFailed",
    });
    expect(h.events).toContainEqual(
      expect.objectContaining({ type: "Warning", reason: "RebootFailed" }),
    );
    // A new annotation asks again.
    h.setAnnotations({ [Annotations.reboot]: "" });
    await h.reconcile();
    await h.reconcile();
    expect(h.bmc.calls.restart).toBe(2);
  });
});
