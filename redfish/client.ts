import type { RedfishClient } from "./api";
import type { RedfishClientOptions } from "./types";

/** One client per BMC: session, keep-alive sockets, semaphore, caches and statistics. */
export function createRedfishClient(_options: RedfishClientOptions): RedfishClient {
  throw new Error("not implemented yet");
}
