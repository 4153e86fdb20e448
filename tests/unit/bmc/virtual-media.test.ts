import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

import { samplesDir } from "../../../lab/bmc/mockup-store";
import { call, messageIds, startBmc } from "./helpers";

const iso = "http://127.0.0.1:8080/images/boot.iso";
const insertAction = "Actions/VirtualMedia.InsertMedia";
const ejectAction = "Actions/VirtualMedia.EjectMedia";

describe("test BMC: virtual media", () => {
  it("Dell: inserts and ejects through the actions, refusing a second insert into a full slot", async () => {
    const bmc = await startBmc("dell", { profile: { ejectSettleMs: 0 } });
    const slot = "/redfish/v1/Systems/System.Embedded.1/VirtualMedia/1";
    const ins = await call(bmc, "POST", `${slot}/${insertAction}`, {
      body: { Image: iso, Inserted: true, WriteProtected: true },
    });
    expect(ins.status).toBe(204);
    const shown = await call(bmc, "GET", slot);
    expect(shown.json).toMatchObject({
      Image: iso,
      ImageName: "boot.iso",
      Inserted: true,
      ConnectedVia: "URI",
    });
    expect(bmc.insertedMedia()).toEqual([
      expect.objectContaining({ uri: slot, image: iso, inserted: true }),
    ]);
    const again = await call(bmc, "POST", `${slot}/${insertAction}`, { body: { Image: iso } });
    expect(again.status).toBe(409);
    const eject = await call(bmc, "POST", `${slot}/${ejectAction}`, { body: {} });
    expect(eject.status).toBe(204);
    expect((await call(bmc, "GET", slot)).json).toMatchObject({ Image: null, Inserted: false });
    expect(bmc.actionsOf("insert")).toHaveLength(1);
    expect(bmc.actionsOf("eject")).toEqual([expect.objectContaining({ slot, via: "action" })]);
  });

  it("rejects unknown parameters and non-URL images", async () => {
    const bmc = await startBmc("dell");
    const slot = "/redfish/v1/Systems/System.Embedded.1/VirtualMedia/2";
    const unknown = await call(bmc, "POST", `${slot}/${insertAction}`, {
      body: { Image: iso, Colour: "red" },
    });
    expect(messageIds(unknown.json)).toEqual(["Base.1.12.ActionParameterUnknown"]);
    const bad = await call(bmc, "POST", `${slot}/${insertAction}`, { body: { Image: "boot.iso" } });
    expect(bad.status).toBe(400);
    expect(bmc.actionsOf("insert")).toHaveLength(0);
  });

  it("Dell: right after an eject the slot still shows the medium and inserts fail with SYS518", async () => {
    const bmc = await startBmc("dell", { profile: { ejectSettleMs: 200 } });
    const slot = "/redfish/v1/Systems/System.Embedded.1/VirtualMedia/1";
    await call(bmc, "POST", `${slot}/${insertAction}`, { body: { Image: iso } });
    await call(bmc, "POST", `${slot}/${ejectAction}`, { body: {} });
    expect(bmc.insertedMedia()).toEqual([]);
    expect((await call(bmc, "GET", slot)).json?.Inserted).toBe(true);
    const busy = await call(bmc, "POST", `${slot}/${insertAction}`, { body: { Image: iso } });
    expect(busy.status).toBe(500);
    expect(busy.json).toMatchObject({ error: { code: "IDRAC.2.8.SYS518" } });
    await new Promise(r => setTimeout(r, 250));
    expect((await call(bmc, "GET", slot)).json?.Inserted).toBe(false);
    expect(
      (await call(bmc, "POST", `${slot}/${insertAction}`, { body: { Image: iso } })).status,
    ).toBe(204);
  });

  it("HPE: EjectMedia needs a JSON {} body (415 without one, 400 when empty)", async () => {
    const bmc = await startBmc("hpe");
    const slot = "/redfish/v1/Managers/1/VirtualMedia/2";
    expect(
      (await call(bmc, "POST", `${slot}/${insertAction}`, { body: { Image: iso } })).status,
    ).toBe(200);
    const bare = await call(bmc, "POST", `${slot}/${ejectAction}`);
    expect(bare.status).toBe(415);
    const empty = await call(bmc, "POST", `${slot}/${ejectAction}`, {
      headers: { "Content-Type": "application/json" },
    });
    expect(empty.status).toBe(400);
    expect(bmc.insertedMedia()).toHaveLength(1);
    const ok = await call(bmc, "POST", `${slot}/${ejectAction}`, { body: {} });
    expect(ok.status).toBe(200);
    expect(bmc.insertedMedia()).toHaveLength(0);
    // iLO's empty slot shows Image "" as captured, not null.
    expect((await call(bmc, "GET", slot)).json?.Image).toBe("");
  });

  it("HPE: the OEM InsertVirtualMedia action with BootOnNextServerReset works too", async () => {
    const bmc = await startBmc("hpe");
    const slot = "/redfish/v1/Managers/1/VirtualMedia/2";
    const res = await call(
      bmc,
      "POST",
      `${slot}/Actions/Oem/Hpe/HpeiLOVirtualMedia.InsertVirtualMedia`,
      {
        body: { Image: iso, BootOnNextServerReset: true },
      },
    );
    expect(res.status).toBe(200);
    const body = (await call(bmc, "GET", slot)).json as {
      Oem: { Hpe: { BootOnNextServerReset: boolean } };
    };
    expect(body.Oem.Hpe.BootOnNextServerReset).toBe(true);
    expect(bmc.actionsOf("insert")).toEqual([expect.objectContaining({ via: "oem" })]);
  });

  it("Lenovo: no actions; PATCH the slot with If-Match; only EXT slots take URLs", async () => {
    const bmc = await startBmc("lenovo");
    const ext = "/redfish/v1/Systems/1/VirtualMedia/EXT1";
    // The capture has no InsertMedia target, so there is nothing to POST to.
    expect(
      (await call(bmc, "POST", `${ext}/${insertAction}`, { body: { Image: iso } })).status,
    ).toBe(404);
    const body = { Image: iso, Inserted: true, WriteProtected: true };
    expect((await call(bmc, "PATCH", ext, { body })).status).toBe(428);
    const etag = String((await call(bmc, "GET", ext)).headers.etag);
    expect((await call(bmc, "PATCH", ext, { body, headers: { "If-Match": etag } })).status).toBe(
      204,
    );
    expect(bmc.insertedMedia()).toEqual([expect.objectContaining({ uri: ext, image: iso })]);
    const rdoc = "/redfish/v1/Systems/1/VirtualMedia/RDOC1";
    const rdocTag = String((await call(bmc, "GET", rdoc)).headers.etag);
    expect(
      (await call(bmc, "PATCH", rdoc, { body, headers: { "If-Match": rdocTag } })).status,
    ).toBe(400);
    const etag2 = String((await call(bmc, "GET", ext)).headers.etag);
    const eject = await call(bmc, "PATCH", ext, {
      body: { Image: null, Inserted: false },
      headers: { "If-Match": etag2 },
    });
    expect(eject.status).toBe(204);
    expect(bmc.insertedMedia()).toEqual([]);
    expect(bmc.actionsOf("insert").map(a => a.via)).toEqual(["patch"]);
    expect(bmc.actionsOf("eject").map(a => a.via)).toEqual(["patch"]);
  });

  it("Supermicro X13: EjectMedia is advertised and accepted only while a medium is inserted", async () => {
    const bmc = await startBmc("supermicro");
    const slot = "/redfish/v1/Managers/1/VirtualMedia/VirtualMedia1";
    const empty = await call(bmc, "GET", slot);
    expect(Object.keys(empty.json?.Actions as object)).not.toContain("#VirtualMedia.EjectMedia");
    expect((await call(bmc, "POST", `${slot}/${ejectAction}`, { body: {} })).status).toBe(404);
    await call(bmc, "POST", `${slot}/${insertAction}`, {
      body: { Image: iso, Inserted: true, WriteProtected: true },
    });
    const full = await call(bmc, "GET", slot);
    expect(full.json?.Actions).toHaveProperty(
      ["#VirtualMedia.EjectMedia", "target"],
      `${slot}/${ejectAction}`,
    );
    expect((await call(bmc, "POST", `${slot}/${ejectAction}`, { body: {} })).status).toBe(204);
    expect(bmc.insertedMedia()).toEqual([]);
  });

  it("Supermicro X11/X12 option: Inserted/WriteProtected rejected; eject leaves Image behind", async () => {
    const bmc = await startBmc("supermicro", { profile: { supermicroLegacyVirtualMedia: true } });
    const slot = "/redfish/v1/Managers/1/VirtualMedia/VirtualMedia1";
    const res = await call(bmc, "POST", `${slot}/${insertAction}`, {
      body: { Image: iso, Inserted: true },
    });
    expect(res.status).toBe(400);
    const ext = (res.json?.error as Record<string, unknown>)["@Message.ExtendedInfo"] as {
      Message: string;
    }[];
    expect(ext[0]?.Message).toBe(
      "The property Inserted is not in the list of valid properties for the resource.",
    );
    expect(
      (await call(bmc, "POST", `${slot}/${insertAction}`, { body: { Image: iso } })).status,
    ).toBe(204);
    await call(bmc, "POST", `${slot}/${ejectAction}`, { body: {} });
    const after = await call(bmc, "GET", slot);
    expect(after.json).toMatchObject({
      Image: iso,
      ImageName: "boot.iso",
      Inserted: false,
      ConnectedVia: "NotConnected",
    });
    expect(bmc.insertedMedia()).toEqual([]);
  });

  it("AMI-style option: TransferProtocolType is required, with the error body AMI sends", async () => {
    const bmc = await startBmc("supermicro", { profile: { requireTransferProtocolType: true } });
    const slot = "/redfish/v1/Managers/1/VirtualMedia/VirtualMedia1";
    const res = await call(bmc, "POST", `${slot}/${insertAction}`, { body: { Image: iso } });
    expect(res.status).toBe(400);
    const sample = JSON.parse(
      readFileSync(
        join(samplesDir(), "openstack-sushy/transfer_proto_required_error.json"),
        "utf8",
      ),
    ) as { error: { "@Message.ExtendedInfo": Record<string, unknown>[] } };
    const got = res.json as { error: { "@Message.ExtendedInfo": Record<string, unknown>[] } };
    // Same keys and argument structure as the captured AMI body; only the URI differs.
    expect(Object.keys(got.error).sort()).toEqual(Object.keys(sample.error).sort());
    const [mine] = got.error["@Message.ExtendedInfo"];
    const [theirs] = sample.error["@Message.ExtendedInfo"];
    expect(mine?.MessageId).toMatch(/\.ActionParameterMissing$/);
    expect(mine?.MessageArgs).toEqual([`${slot}/${insertAction}`, "TransferProtocolType"]);
    expect(Object.keys(mine ?? {}).sort()).toEqual(Object.keys(theirs ?? {}).sort());
    const ok = await call(bmc, "POST", `${slot}/${insertAction}`, {
      body: { Image: iso, TransferProtocolType: "HTTP" },
    });
    expect(ok.status).toBe(204);
    expect(bmc.insertedMedia()[0]?.transferProtocolType).toBe("HTTP");
  });

  it("DMTF reference: slots captured with media inserted are replaced through PATCH", async () => {
    const bmc = await startBmc("dmtf");
    const cd = "/redfish/v1/Systems/437XR1138R2/VirtualMedia/CD1";
    expect(bmc.insertedMedia().map(s => s.uri)).toContain(cd);
    const res = await call(bmc, "PATCH", cd, { body: { Image: null, Inserted: false } });
    expect(res.status).toBe(204);
    expect(bmc.insertedMedia().map(s => s.uri)).not.toContain(cd);
    const unknown = await call(bmc, "PATCH", cd, { body: { Colour: "blue" } });
    expect(unknown.status).toBe(400);
  });
});
