// Redaction covers the Basic form of the password (issue 13): a BMC that echoes the Authorization
// header, or the password base64-encoded, back in an error must not put either in an error
// message, its JSON or the logs.
import { inspect } from "node:util";
import { afterEach, describe, expect, it } from "vitest";

import { createRedfishClient, type RedfishError } from "../../../redfish";
import { redactSecrets } from "../../../redfish/errors";
import { credentialSecrets } from "../../../redfish/session";
import { startMock, type MockBmc } from "./helpers";

const b64 = (s: string) => Buffer.from(s).toString("base64");
const mocks: MockBmc[] = [];
afterEach(async () => {
  while (mocks.length) await mocks.pop()!.stop();
});

describe("redaction of the Basic form", () => {
  it("redactSecrets hides the password, its base64 and the Basic token", () => {
    const login = { username: "admin", password: "calvin-Zz9" };
    const text = [
      login.password,
      b64(login.password),
      `Basic ${b64(`${login.username}:${login.password}`)}`,
      encodeURIComponent(login.password),
    ].join(" | ");
    const clean = redactSecrets(text, credentialSecrets(login));
    expect(clean).toBe("*** | *** | Basic *** | ***");
  });

  it("keeps a BMC's echo of the Authorization header out of errors and logs", async () => {
    const bmc = await startMock({ mockup: "dmtf_public-rackmount1" });
    mocks.push(bmc);
    const logged: string[] = [];
    const logger = {
      debug: (m: string, f?: object) => logged.push(m + JSON.stringify(f ?? {})),
      info: (m: string, f?: object) => logged.push(m + JSON.stringify(f ?? {})),
      warn: (m: string, f?: object) => logged.push(m + JSON.stringify(f ?? {})),
    };
    const basic = b64(`${bmc.username}:${bmc.password}`);
    bmc.overrides.push(request =>
      request.path.endsWith("/Systems")
        ? {
            status: 400,
            body: {
              error: {
                code: "Base.1.8.GeneralError",
                message: `rejected Authorization: Basic ${basic} (password ${b64(bmc.password)})`,
              },
            },
          }
        : undefined,
    );
    const client = createRedfishClient({
      address: bmc.url,
      credentials: { username: bmc.username, password: bmc.password },
      tls: { insecure: true },
      auth: "basic",
      retry: { attempts: 1 },
      logger,
    });
    const error = (await client.get("/redfish/v1/Systems").catch(e => e)) as RedfishError;
    await client.close();
    const renderings = [
      error.message,
      JSON.stringify(error),
      inspect(error, { depth: 10, showHidden: true }),
      ...logged,
    ].join("\n");
    expect(renderings).toContain("Basic ***");
    expect(renderings).not.toContain(basic);
    expect(renderings).not.toContain(b64(bmc.password));
  });
});
