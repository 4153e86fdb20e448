// The one backoff rule of the operator: capped exponential delays with jitter. The work queue uses
// it for failed runs, the PhysicalHost state machine for its Error retries and deletion for its
// cleanup attempts, so every retry in the module spaces out the same way.

export interface BackoffSettings {
  /** Delay after the first failure. */
  baseMs: number;
  /** No delay is longer than this. */
  maxMs: number;
}

/**
 * The delay before retry number `failures` (1 for the first failure): base * 2^(failures-1),
 * capped at max, then scaled by a random factor in [0.5, 1) so that objects failing together do
 * not retry together.
 */
export function backoffDelay(
  failures: number,
  { baseMs, maxMs }: BackoffSettings,
  random: () => number = Math.random,
): number {
  const raw = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(failures, 1) - 1, 30));
  return Math.round(raw * (0.5 + random() / 2));
}
