// Public API of the Redfish driver. Consumers (controllers, the CLI, tests) import only this file.
export type {
  BmcProvisioner,
  NetworkBootRequest,
  ProvisioningBootResult,
  RedfishClient,
  RedfishResponse,
  RedfishSystem,
  RequestOptions,
  VirtualMediaBootRequest,
} from "./api";
export type * from "./types";
export {
  BmcAuthenticationError,
  BmcRejectedError,
  BmcServerError,
  BmcTlsError,
  BmcUnreachableError,
  InvalidResponseError,
  RedfishError,
  ResourceNotFoundError,
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
export { createProvisioner, type ProvisionerOptions } from "./provisioner";
export { RedfishClientPool, clientKey, type RedfishClientPoolOptions } from "./pool";
