// One client per BMC, shared across reconciles: keyed by the canonical address plus a fingerprint
// of the credentials and TLS settings, so a rotated password gets a fresh session instead of 401
// loops. A pooled client has no default system: the hosts sharing it (blades behind one chassis
// manager) each name their own, and one host's choice never becomes another's.
import { createHash } from "node:crypto";
import { canonicalBmcAddress } from "./address";
import type { RedfishClient } from "./api";
import { createRedfishClient } from "./client";
import type { RedfishClientOptions } from "./types";

export const DEFAULT_SOCKET_LINGER_MS = 2000;

/** Gives a pooled client back; see RedfishClientPool.acquire. */
export type PoolRelease = (options?: { lingerSockets?: boolean }) => void;

/** What identifies a pooled client: no systemId, pass that to `client.system(id)`. */
export type PooledClientOptions = Omit<RedfishClientOptions, "systemId">;

export interface RedfishClientPoolOptions {
  /** Close a client (log out) after it has been unused this long. Default 10 minutes. */
  idleTimeoutMs?: number;
  /**
   * Close a client's idle sockets once nobody has held it for `socketLingerMs` (default true). An
   * operator's work on one BMC comes in bursts minutes apart; an idle TLS socket per BMC in
   * between costs native memory (tens of KiB each, a thousand BMCs) and the BMC closes it anyway.
   * The session stays.
   */
  closeIdleSockets?: boolean;
  /**
   * How long a released client keeps its idle sockets for the next holder (default 2 s). The runs
   * of one provisioning follow each other within a second or two: closing at once made each of
   * them open a new TLS connection (a handshake on both sides, most of the operator's TLS work in
   * a burst of claims). Shorter than the keep-alive timeouts BMCs close idle sockets after (5 s
   * and up), so the client, not the BMC, ends a socket it no longer needs.
   */
  socketLingerMs?: number;
  /** Defaults merged under each request's options (timeouts, logger, retry policy). */
  defaults?: Partial<Omit<RedfishClientOptions, "address" | "credentials" | "systemId">>;
  /** For tests: build clients differently. */
  factory?: (options: RedfishClientOptions) => RedfishClient;
}

/** Stable key for a BMC endpoint; the credentials enter only as a salted hash. */
export function clientKey(options: PooledClientOptions): string {
  const fingerprint = createHash("sha256")
    .update("beskar7-redfish-pool\0")
    .update(options.credentials.username)
    .update("\0")
    .update(options.credentials.password)
    .update("\0")
    .update(options.tls?.caBundle ?? "")
    .update(options.tls?.insecure ? "\0insecure" : "\0verify")
    .digest("hex")
    .slice(0, 16);
  return `${canonicalBmcAddress(options.address)}#${fingerprint}`;
}

/** Request options over pool defaults; an option left undefined keeps the default. */
function withDefaults(
  options: PooledClientOptions,
  defaults: RedfishClientPoolOptions["defaults"],
): RedfishClientOptions {
  const given = Object.fromEntries(
    Object.entries(options).filter(([key, value]) => value !== undefined && key !== "systemId"),
  ) as unknown as PooledClientOptions;
  return { ...defaults, ...given };
}

interface PoolEntry {
  client: RedfishClient;
  holders: number;
  idleTimer?: NodeJS.Timeout;
  socketTimer?: NodeJS.Timeout;
}

export class RedfishClientPool {
  private readonly entries = new Map<string, PoolEntry>();
  private readonly idleTimeoutMs: number;
  private readonly closeIdleSockets: boolean;
  private readonly socketLingerMs: number;
  private readonly defaults: RedfishClientPoolOptions["defaults"];
  private readonly factory: (options: RedfishClientOptions) => RedfishClient;

  constructor(options: RedfishClientPoolOptions = {}) {
    this.idleTimeoutMs = options.idleTimeoutMs ?? 10 * 60_000;
    this.closeIdleSockets = options.closeIdleSockets ?? true;
    this.socketLingerMs = options.socketLingerMs ?? DEFAULT_SOCKET_LINGER_MS;
    this.defaults = options.defaults;
    this.factory = options.factory ?? createRedfishClient;
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * The shared client for this BMC; call `release` when done so idle clients can be closed. A
   * `systemId` in the options is ignored (the client has no default system): use
   * `client.system(systemId)`. `release({ lingerSockets: false })` says no holder is expected
   * soon: the idle sockets close at once, not after the linger.
   */
  acquire(options: PooledClientOptions): { client: RedfishClient; release: PoolRelease } {
    const key = clientKey(options);
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { client: this.factory(withDefaults(options, this.defaults)), holders: 0 };
      this.entries.set(key, entry);
    }
    clearTimeout(entry.idleTimer);
    clearTimeout(entry.socketTimer);
    entry.idleTimer = entry.socketTimer = undefined;
    entry.holders += 1;
    const held = entry;
    let released = false;
    const release: PoolRelease = ({ lingerSockets = true } = {}) => {
      if (released) return;
      released = true;
      held.holders -= 1;
      if (held.holders === 0) {
        if (this.closeIdleSockets) this.scheduleSocketClose(held, lingerSockets);
        this.scheduleIdleClose(key, held);
      }
    };
    return { client: entry.client, release };
  }

  /** Drops and closes the client for this endpoint (e.g. after its Secret changed). */
  async evict(options: PooledClientOptions): Promise<void> {
    const key = clientKey(options);
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    clearTimeout(entry.idleTimer);
    clearTimeout(entry.socketTimer);
    await entry.client.close();
  }

  /** Closes every client: each logs its session out (DELETE) and closes its sockets. */
  async closeAll(): Promise<void> {
    const entries = [...this.entries.values()];
    this.entries.clear();
    for (const entry of entries) {
      clearTimeout(entry.idleTimer);
      clearTimeout(entry.socketTimer);
    }
    await Promise.allSettled(entries.map(entry => entry.client.close()));
  }

  private scheduleSocketClose(entry: PoolEntry, linger: boolean): void {
    if (!linger || this.socketLingerMs <= 0) {
      entry.client.closeIdleConnections();
      return;
    }
    entry.socketTimer = setTimeout(() => {
      entry.socketTimer = undefined;
      if (entry.holders === 0) entry.client.closeIdleConnections();
    }, this.socketLingerMs);
    entry.socketTimer.unref();
  }

  private scheduleIdleClose(key: string, entry: PoolEntry): void {
    entry.idleTimer = setTimeout(() => {
      if (this.entries.get(key) !== entry || entry.holders > 0) return;
      this.entries.delete(key);
      void entry.client.close().catch(() => undefined);
    }, this.idleTimeoutMs);
    // An idle BMC session must not keep the process alive.
    entry.idleTimer.unref();
  }
}
