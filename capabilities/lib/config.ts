// Runtime configuration, read once from the environment into a frozen object. Pepr passes the
// "env" block of package.json to the deployed pods; operator:local sets the same variables.

function integer(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name}=${raw} is not an integer between ${min} and ${max}`);
  }
  return value;
}

function list(name: string, fallback: string[]): string[] {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  return raw
    .split(",")
    .map(s => s.trim())
    .filter(Boolean);
}

export interface Config {
  /** Port of the admission webhook server (Pepr's Service targets 3000 in a cluster). */
  webhookPort: number;
  /**
   * Users allowed to write a PhysicalHost's consumerRef: the operator's own service account.
   * operator:local adds the identity of its kubeconfig.
   */
  operatorUsernames: string[];
}

export const config: Readonly<Config> = Object.freeze({
  webhookPort: integer("BESKAR7_WEBHOOK_PORT", 3000, 1, 65535),
  // Pepr runs both the admission and the watcher Deployment as this service account.
  operatorUsernames: list("BESKAR7_OPERATOR_USERNAMES", [
    "system:serviceaccount:pepr-system:pepr-beskar7",
  ]),
});
