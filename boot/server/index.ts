// The boot server's public surface: the HTTP routes over a HostDirectory (the one port to the
// outside world), the access rules for tokens, the inspection report schema and a small metrics
// registry. Kubernetes-free like the rest of boot/; boot-service/ puts it in a process.
export { PROVISIONING_STATES, authorize, provisioningHost, sessionOf } from "./access";
export type { Access, AccessRules, RefusalReason } from "./access";
export { BootDataUnavailable } from "./directory";
export type { BootSignal, Delivery, HostDirectory, HostLookup, HostView } from "./directory";
export {
  contentTypeOf,
  createBootHandler,
  defineBootMetrics,
  ipxeScript,
  parseRoute,
  redactPath,
  type BootHandler,
  type BootHandlerOptions,
} from "./handler";
export { Metrics } from "./metrics";
export {
  InspectionReportSchema,
  MAX_REPORT_BYTES,
  ReportError,
  parseReport,
  type InspectionReport,
} from "./report";
export { SourceIsoError, SourceIsos, displayURL, type SourceIsosOptions } from "./source-isos";
