// Test-only crash injection for the hardening suite (tests/integration/hardening/crash.test.ts):
// when BESKAR7_TEST_EXIT_AFTER_ACTION names a provisioning step, the process exits right after
// that step's BMC action succeeded and before the step is recorded in status — the worst moment
// for a crash. Inert unless the variable is set; a deployment never sets it.
import type { ProvisioningStepName } from "../api";

/** The exit code, so a test can tell the injected exit from a real crash. */
export const TEST_EXIT_CODE = 86;

export function exitAfterActionForTests(step: ProvisioningStepName): void {
  if (process.env.BESKAR7_TEST_EXIT_AFTER_ACTION !== step) return;
  process.stderr.write(`[beskar7] BESKAR7_TEST_EXIT_AFTER_ACTION: exiting after ${step}\n`);
  process.exit(TEST_EXIT_CODE);
}
