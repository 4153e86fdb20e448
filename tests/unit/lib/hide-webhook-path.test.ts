// hideWebhookPath: Pepr's start-up line naming its webhook API path (a credential) is written
// without the path, whether the message comes alone or after an object of fields; every other
// line passes unchanged. That the running module's output holds no API path is checked on every
// operator the integration suite starts (tests/integration/support/operator.ts).
import { describe, expect, it } from "vitest";

import { hideWebhookPath } from "../../../capabilities/lib/hide-webhook-path";

const PATH = "4f1c9e0b7a2d".repeat(5);

describe("hideWebhookPath", () => {
  it("writes Pepr's API path line without the path, and other lines as they are", () => {
    const written: unknown[][] = [];
    const log = { info: (...args: unknown[]) => written.push(args) };
    hideWebhookPath(log);
    log.info(`Using API path: ${PATH}`);
    log.info({ pid: 7 }, `Using API path: ${PATH}`);
    log.info("Server listening", { port: 3000 });
    expect(JSON.stringify(written)).not.toContain(PATH);
    expect(written).toEqual([
      ["Using API path: <redacted>"],
      [{ pid: 7 }, "Using API path: <redacted>"],
      ["Server listening", { port: 3000 }],
    ]);
  });
});
