// Which hosts use which credential Secrets, and which version of each Secret was seen last, so a
// Secret event re-reconciles exactly the hosts it concerns. Listing the hosts on every Secret event
// would cost the API server O(hosts) per event (docs/benchmarks/physicalhost.md). Only metadata
// arrives here (lib/metadata-watch.ts: no Secret data is ever held), and a version is kept only for
// Secrets some host names, so labelled Secrets nobody uses cost nothing however many there are.
import { HostErrorReason, type PhysicalHost } from "../api";
import type { ObjectMetadata } from "../lib/metadata-watch";
import { referencedSecrets } from "./credentials";

/** Host errors a change to its Secret can fix: such a host is re-queued on the Secret's first
 *  sight too (its owner just created or labelled it). */
const WAITING_FOR_SECRET = new Set<string>([
  HostErrorReason.SecretNotFound,
  HostErrorReason.SecretInvalid,
  HostErrorReason.SecretNotLabelled,
  HostErrorReason.AuthenticationFailed,
]);

export class SecretIndex {
  /** Secret key (namespace/name) -> names of the hosts using it. */
  readonly #users = new Map<string, Set<string>>();
  /** Host key -> the Secret keys it names. */
  readonly #uses = new Map<string, string[]>();
  /** Host keys whose last error a Secret change can fix. */
  readonly #waiting = new Set<string>();
  /** Secret key -> resourceVersion last seen, for Secrets with users only. */
  readonly #versions = new Map<string, string>();

  /** Records the Secrets a host names (replacing what it named before) and whether it waits on them. */
  track(host: PhysicalHost): void {
    const namespace = host.metadata?.namespace ?? "";
    const name = host.metadata?.name ?? "";
    const hostKey = `${namespace}/${name}`;
    if (WAITING_FOR_SECRET.has(host.status?.errorReason ?? "")) this.#waiting.add(hostKey);
    else this.#waiting.delete(hostKey);
    const secrets = referencedSecrets(host).map(s => `${namespace}/${s}`);
    const before = this.#uses.get(hostKey) ?? [];
    if (before.length === secrets.length && before.every((s, i) => s === secrets[i])) return;
    for (const s of before) this.#removeUser(s, name);
    for (const s of secrets) {
      let users = this.#users.get(s);
      if (!users) this.#users.set(s, (users = new Set()));
      users.add(name);
    }
    this.#uses.set(hostKey, secrets);
  }

  untrack(namespace: string | undefined, name: string): void {
    const hostKey = `${namespace ?? ""}/${name}`;
    for (const s of this.#uses.get(hostKey) ?? []) this.#removeUser(s, name);
    this.#uses.delete(hostKey);
    this.#waiting.delete(hostKey);
  }

  /** Whether some host names the Secret (the watch remembers only those). */
  used(secret: Pick<ObjectMetadata, "name" | "namespace">): boolean {
    return !!this.#users.get(`${secret.namespace ?? ""}/${secret.name}`)?.size;
  }

  /** Secrets whose version is remembered (bounded by the hosts' references). */
  get remembered(): number {
    return this.#versions.size;
  }

  /**
   * A Secret was created, changed or deleted: the names of the hosts (in its namespace) to look
   * at again. A changed version or a deletion concerns every user; the first sight of a Secret
   * (a restart's relist, or its owner adding the label) concerns only hosts waiting on it.
   */
  changed(secret: ObjectMetadata, deleted: boolean): string[] {
    const namespace = secret.namespace ?? "";
    const key = `${namespace}/${secret.name}`;
    const users = [...(this.#users.get(key) ?? [])];
    const previous = this.#versions.get(key);
    if (deleted || users.length === 0) this.#versions.delete(key);
    else this.#versions.set(key, secret.resourceVersion ?? "");
    if (deleted) return users;
    if (previous === undefined) return users.filter(u => this.#waiting.has(`${namespace}/${u}`));
    return previous === (secret.resourceVersion ?? "") ? [] : users;
  }

  #removeUser(secret: string, host: string): void {
    const users = this.#users.get(secret);
    users?.delete(host);
    if (users && users.size === 0) {
      this.#users.delete(secret);
      this.#versions.delete(secret);
    }
  }
}
