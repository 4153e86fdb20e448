// Public API of the Redfish driver. Consumers (controllers, the CLI, tests) import only this file.
export type { RedfishClient, RedfishResponse, RedfishSystem, RequestOptions } from "./api";
export type * from "./types";
export {
  BmcAddressRefusedError,
  BmcAuthenticationError,
  BmcRejectedError,
  BmcServerError,
  BmcTlsError,
  BmcUnreachableError,
  DeadlineExceededError,
  InvalidResponseError,
  RedfishError,
  ResourceNotFoundError,
  ResponseTooLargeError,
  SystemSelectionError,
  TaskFailedError,
  UnsupportedOperationError,
  VerificationError,
  isRedfishError,
  type ExtendedInfo,
  type RedfishErrorCode,
} from "./errors";
export type * as RedfishSchema from "./resources/schema";
export { createRedfishClient } from "./client";
export {
  DEFAULT_MAX_COLLECTION_MEMBERS,
  DEFAULT_MAX_RESPONSE_BYTES,
  bmcDeadline,
  withBmcDeadline,
} from "./transport";
export { canonicalBmcAddress, bmcIdentity, type BmcIdentity } from "./address";
export {
  ADDRESS_CLASSES,
  bmcAddressPolicy,
  lookupGuard,
  refusalMessage,
  refusedBmcAddress,
  refusedIp,
  type AddressClass,
  type AddressRefusal,
  type BmcAddressPolicy,
} from "./address-policy";
export {
  DEFAULT_SOCKET_LINGER_MS,
  RedfishClientPool,
  clientKey,
  type PoolRelease,
  type PooledClientOptions,
  type RedfishClientPoolOptions,
} from "./pool";
