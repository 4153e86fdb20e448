// Presigned image URLs stay out of events, conditions and errors (issue 13): the signature in an
// image URL's query string (S3, GCS, Azure SAS) is a working download link for whoever can read the
// host's events. Only scheme, host and path are shown.
import { describe, expect, it } from "vitest";

import type { HostProvisioning } from "../../../capabilities/api";
import { BmcRejectedError } from "../../../redfish";
import { FakeBmc } from "./fake-bmc";
import { CONSUMER, HostHarness, NOW, makeHost } from "./helpers";

const SIGNATURE = "X-Amz-Signature=9f2c1e0c0ffee";
const PRESIGNED: HostProvisioning = {
  mode: "VirtualMedia",
  bootISO: `https://bucket.s3.amazonaws.com/kairos.iso?X-Amz-Credential=AKIAEXAMPLE&${SIGNATURE}`,
  configMediaURL: `https://loader:pa55word@images.example.com/config.img?token=abc`,
};

async function provisioning(): Promise<HostHarness> {
  const h = new HostHarness(makeHost(), new FakeBmc({ power: "Off" }));
  await h.reconcile();
  h.editSpec(spec => {
    spec.consumerRef = CONSUMER;
    spec.provisioning = PRESIGNED;
  });
  h.host = {
    ...h.host,
    status: {
      ...h.host.status,
      state: "Provisioning",
      provisioning: {
        consumerUID: CONSUMER.uid,
        currentStep: "PowerOff",
        startedTime: NOW.toISOString(),
        completedSteps: [],
        attempts: 0,
      },
    },
  };
  return h;
}

/** Everything a reader of the host's status and events sees. */
const visible = (h: HostHarness) => JSON.stringify([h.host.status, h.events]);

describe("image URLs in events, conditions and errors", () => {
  it("show no query string or userinfo through a whole provisioning", async () => {
    const h = await provisioning();
    await h.reconcileUntil("Provisioned");
    const seen = visible(h);
    expect(seen).toContain("https://bucket.s3.amazonaws.com/kairos.iso?…");
    for (const secret of [SIGNATURE, "AKIAEXAMPLE", "pa55word", "loader", "token=abc"]) {
      expect(seen).not.toContain(secret);
    }
    // The BMC itself gets the whole URL: it has to download the image.
    expect(h.bmc.argsOf("insertMedia")[0]).toEqual([{ image: PRESIGNED.bootISO, kind: "cd" }]);
  });

  it("show none in the error of a BMC that refused the image, naming it", async () => {
    const h = await provisioning();
    h.bmc.fail(
      new BmcRejectedError(`InsertMedia of ${PRESIGNED.bootISO} refused: 403 from image server`),
      "insertMedia",
    );
    await h.reconcileUntil("Error");
    expect(h.host.status?.errorMessage).toContain("https://bucket.s3.amazonaws.com/kairos.iso?…");
    expect(h.events.map(e => e.message).join("\n")).toContain("kairos.iso?… refused");
    expect(visible(h)).not.toContain(SIGNATURE);
  });
});
