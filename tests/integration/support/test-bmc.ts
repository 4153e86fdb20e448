// Test BMCs for integration tests: lab/bmc's TestBmc with the run's canary password as the
// default (tests/integration/support/canary.ts), so every credentials Secret made from
// `bmc.password` carries the canary the global teardown searches for. The lab's own default
// (used by `npm start`) stays as it is.
import { TestBmc, type TestBmcOptions } from "../../../lab/bmc/server";
import { CANARY_PASSWORD } from "./canary";

/** A test BMC whose password is the canary unless `options` names another. */
export function startTestBmc(options: TestBmcOptions): Promise<TestBmc> {
  return TestBmc.start({ password: CANARY_PASSWORD, ...options });
}
