// The integration suite's canary: one BMC password and one bootstrap payload per test run, the
// defaults of the test helpers that create BMCs, credentials and bootstrap Secrets, so that
// whatever the operator says anywhere in the run can be searched for them (docs/guarantees.md,
// "Secrets"). The run's id comes from tests/env/global-setup.ts through the environment, so every
// test file (each in its own worker) and the global teardown share the same canary.
import { randomBytes } from "node:crypto";
import { appendFileSync } from "node:fs";
import { join } from "node:path";

/** Set by the global setup; a file run without it (a unit-style import) gets its own id. */
export const CANARY_ID_ENV = "BESKAR7_TEST_CANARY_ID";
const canaryId = (process.env[CANARY_ID_ENV] ??= randomBytes(6).toString("hex"));

export const CANARY_PASSWORD = `canary-password-${canaryId}`;
/** A line any bootstrap content can carry; the payload below is the whole of a minimal one. */
export const CANARY_BOOTSTRAP_MARK = `canary-bootstrap-${canaryId}`;
export const CANARY_BOOTSTRAP = `#cloud-config\n# ${CANARY_BOOTSTRAP_MARK}\n`;

/** What a needle is, printed instead of the needle itself when it is found. */
export interface CanaryNeedle {
  kind: string;
  text: string;
}

/**
 * The substrings `secret` leaves in any base64 text that contains it, wherever it starts (at each
 * of the three byte alignments), so an HTTP Basic header is caught whatever the username.
 */
function base64Forms(secret: string): string[] {
  return [0, 1, 2].map(skip => {
    const whole = secret.slice(skip, skip + Math.floor((secret.length - skip) / 3) * 3);
    return Buffer.from(whole).toString("base64");
  });
}

/** Every form a leak could take: plain, URL-encoded, base64 (a Secret's data, HTTP Basic). */
export function canaryNeedleKinds(): CanaryNeedle[] {
  const all: CanaryNeedle[] = [
    { kind: "password", text: CANARY_PASSWORD },
    { kind: "password (URL-encoded)", text: encodeURIComponent(CANARY_PASSWORD) },
    ...base64Forms(CANARY_PASSWORD).map(text => ({ kind: "password (base64/Basic)", text })),
    { kind: "bootstrap payload", text: CANARY_BOOTSTRAP_MARK },
    ...base64Forms(CANARY_BOOTSTRAP_MARK).map(text => ({ kind: "bootstrap (base64)", text })),
  ];
  // A form equal to an earlier one (the URL-encoded password is the plain one) is searched once.
  return all.filter((n, i) => all.findIndex(m => m.text === n.text) === i);
}

/** The needles as plain strings. */
export function canaryNeedles(): string[] {
  return canaryNeedleKinds().map(n => n.text);
}

/** "<needle kind> in <where>" for each needle found in `text`; never the needle itself. */
export function findCanary(where: string, text: string): string[] {
  const needles = canaryNeedleKinds();
  // A location can hold the canary itself (an object named after it): it is masked there too.
  const place = needles.reduce((w, n) => w.replaceAll(n.text, "<canary>"), where);
  const hits = new Set<string>();
  for (const n of needles) if (text.includes(n.text)) hits.add(`${n.kind} in ${place}`);
  return [...hits];
}

/** The run-wide record of hits found by test helpers; the global teardown reads it. */
export const CANARY_HITS_FILE = "canary-hits.txt";

export function recordCanaryHits(runDir: string, hits: string[]): void {
  if (hits.length > 0) appendFileSync(join(runDir, CANARY_HITS_FILE), hits.join("\n") + "\n");
}
