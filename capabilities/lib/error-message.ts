// One readable line for anything thrown. The operator's own errors are Errors, but the Kubernetes
// clients reject with plain objects ({ status, statusText, data }): `String(err)` of those became
// "[object Object]" in a host's status, which told nobody that reading its Secret was forbidden.
// Every place that turns a thrown value into text for status, events or logs uses this.

/** The longest JSON of an unknown value kept in a message (it is a last resort, not a dump). */
const UNKNOWN_VALUE_MAX = 200;

/** A thrown value as one line: an Error's message, a Kubernetes API error's status and message. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === "string") return err;
  if (err === null || err === undefined) return "unknown error";
  const e = err as { status?: unknown; statusText?: unknown; data?: unknown; message?: unknown };
  if (typeof e === "object" && (typeof e.status === "number" || e.data !== undefined)) {
    const data = e.data as { message?: unknown } | string | undefined;
    const detail = typeof data === "string" ? data : data?.message;
    const line = [
      typeof e.status === "number" ? `${e.status}` : "",
      typeof e.statusText === "string" ? e.statusText : "",
    ]
      .filter(Boolean)
      .join(" ");
    const text = typeof detail === "string" && detail ? detail : "";
    return `Kubernetes API error${line ? ` ${line}` : ""}${text ? `: ${text}` : ""}`;
  }
  if (typeof e === "object" && typeof e.message === "string") return e.message;
  let json: string | undefined;
  try {
    json = JSON.stringify(err);
  } catch {
    json = undefined;
  }
  return json && json !== "{}" ? json.slice(0, UNKNOWN_VALUE_MAX) : `unknown error (${typeof err})`;
}
