// metav1.Conditions as Cluster API uses them: one entry per type, lastTransitionTime kept while the
// status does not change, observedGeneration stamped, and Ready summarising the others.
import type { Condition } from "../api";

export type ConditionStatus = "True" | "False" | "Unknown";

export interface ConditionInput {
  type: string;
  status: ConditionStatus;
  reason: string;
  message?: string;
}

/** Returns a new list with each input set; untouched conditions are kept as they were. */
export function setConditions(
  existing: readonly Condition[] | undefined,
  inputs: readonly ConditionInput[],
  generation: number | undefined,
  now: Date,
): Condition[] {
  const byType = new Map((existing ?? []).map(c => [c.type, c]));
  for (const input of inputs) {
    const previous = byType.get(input.type);
    byType.set(input.type, {
      type: input.type,
      status: input.status,
      reason: input.reason,
      message: input.message ?? "",
      observedGeneration: generation,
      lastTransitionTime:
        previous && previous.status === input.status
          ? previous.lastTransitionTime
          : now.toISOString(),
    });
  }
  // A stable order keeps status patches minimal and `kubectl get -o yaml` readable.
  return [...byType.values()].sort(
    (a, b) => order(a.type) - order(b.type) || a.type.localeCompare(b.type),
  );
}

const order = (type: string) => (type === "Ready" ? 0 : 1);

export function findCondition(
  conditions: readonly Condition[] | undefined,
  type: string,
): Condition | undefined {
  return conditions?.find(c => c.type === type);
}
