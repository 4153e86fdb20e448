// The one error type the PhysicalHost controller sees from its BMC port: a host error reason and
// whether waiting can fix it. bmc.ts translates the driver's errors into it; credentials.ts
// throws it (as CredentialsError) for Secret problems. Kept apart from bmc.ts so credentials.ts
// can extend it without an import cycle.
import { HostErrorReason, type HostErrorReasonName } from "../api";
import { isRedfishError } from "../../redfish";
import { describeError } from "../lib/error-message";

export class BmcFailure extends Error {
  constructor(
    readonly reason: HostErrorReasonName,
    message: string,
    readonly transient: boolean,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * A failure of a BMC call as the controller's BmcFailure: the driver's error codes become host
 * error reasons, its `retryable` becomes `transient`. A BmcFailure passes unchanged; anything
 * else is a BMCError worth retrying.
 */
export function toBmcFailure(err: unknown): BmcFailure {
  if (err instanceof BmcFailure) return err;
  const message = describeError(err);
  if (!isRedfishError(err)) return new BmcFailure(HostErrorReason.BMCError, message, true);
  switch (err.code) {
    case "Unreachable":
      return new BmcFailure(HostErrorReason.BMCUnreachable, message, true);
    case "AddressRefused":
      return new BmcFailure(HostErrorReason.AddressRefused, message, false);
    case "TlsFailure":
      return new BmcFailure(HostErrorReason.TLSFailure, message, false);
    case "AuthenticationFailed":
      return new BmcFailure(HostErrorReason.AuthenticationFailed, message, false);
    case "SystemSelection":
      return new BmcFailure(HostErrorReason.SystemSelection, message, false);
    case "Rejected":
    case "Unsupported":
    case "NotFound":
    case "TaskFailed":
      return new BmcFailure(HostErrorReason.ActionRejected, message, err.retryable);
    default:
      return new BmcFailure(HostErrorReason.BMCError, message, err.retryable);
  }
}
