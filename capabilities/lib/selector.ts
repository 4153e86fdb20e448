// metav1.LabelSelector matching, as the API server does it: matchLabels and matchExpressions are
// ANDed, and an empty or absent selector matches everything.
import type { LabelSelector } from "../api";

export function matchesSelector(
  labels: Record<string, string> | undefined,
  selector: LabelSelector | undefined,
): boolean {
  const have = labels ?? {};
  for (const [key, value] of Object.entries(selector?.matchLabels ?? {})) {
    if (have[key] !== value) return false;
  }
  for (const { key, operator, values = [] } of selector?.matchExpressions ?? []) {
    const present = key in have;
    switch (operator) {
      case "In":
        if (!present || !values.includes(have[key]!)) return false;
        break;
      case "NotIn":
        if (present && values.includes(have[key]!)) return false;
        break;
      case "Exists":
        if (!present) return false;
        break;
      case "DoesNotExist":
        if (present) return false;
        break;
    }
  }
  return true;
}
