// Which hosts use which credential Secrets, and what each Secret held last, so that a Secret
// event re-reconciles exactly the hosts whose credentials really changed. Listing the hosts on
// every Secret event would cost the API server O(hosts) per event: O(hosts²) at enrollment, when
// every first read labels its Secret (docs/benchmarks/physicalhost.md).
import { createHash } from "node:crypto";

import type { PhysicalHost } from "../api";
import { referencedSecrets } from "./credentials";

interface SecretLike {
  metadata?: { name?: string; namespace?: string };
  data?: Record<string, string>;
}

export class SecretIndex {
  readonly #users = new Map<string, Set<string>>();
  readonly #uses = new Map<string, string[]>();
  readonly #versions = new Map<string, string>();

  /** Records the Secrets a host names (replacing what it named before). */
  track(host: PhysicalHost): void {
    const namespace = host.metadata?.namespace ?? "";
    const name = host.metadata?.name ?? "";
    const hostKey = `${namespace}/${name}`;
    const secrets = referencedSecrets(host).map(s => `${namespace}/${s}`);
    const before = this.#uses.get(hostKey) ?? [];
    if (before.length === secrets.length && before.every((s, i) => s === secrets[i])) return;
    for (const s of before) this.#users.get(s)?.delete(name);
    for (const s of secrets) {
      let users = this.#users.get(s);
      if (!users) this.#users.set(s, (users = new Set()));
      users.add(name);
    }
    this.#uses.set(hostKey, secrets);
  }

  untrack(namespace: string | undefined, name: string): void {
    const hostKey = `${namespace ?? ""}/${name}`;
    for (const s of this.#uses.get(hostKey) ?? []) this.#users.get(s)?.delete(name);
    this.#uses.delete(hostKey);
  }

  /**
   * A Secret was created, changed or deleted: the names of the hosts (in its namespace) to look
   * at again. The first sight of a Secret (the label this operator adds, or a restart's relist)
   * changes no credentials, so it re-queues nobody.
   */
  changed(secret: SecretLike, deleted: boolean): string[] {
    const key = `${secret.metadata?.namespace ?? ""}/${secret.metadata?.name ?? ""}`;
    const version = deleted ? undefined : fingerprint(secret.data);
    const previous = this.#versions.get(key);
    if (version === undefined) this.#versions.delete(key);
    else this.#versions.set(key, version);
    if (!deleted && (previous === undefined || previous === version)) return [];
    return [...(this.#users.get(key) ?? [])];
  }
}

function fingerprint(data: Record<string, string> | undefined): string {
  const hash = createHash("sha256");
  for (const key of Object.keys(data ?? {}).sort())
    hash.update(key).update("\0").update(data![key]!).update("\0");
  return hash.digest("hex");
}
