// The inspection report: what the inspection image (booted over the network) posts back about the
// hardware it found. It arrives from the provisioning network, so it is untrusted input: bounded
// in size by the server, and checked here against a closed schema (no unknown fields, bounded
// strings and arrays) before anything of it reaches the API server. A refusal names the first
// field that is wrong, so whoever builds the image can fix it. The limits match the CRD's
// status.boot.report (capabilities/api/sources/physicalhost.ts), so an accepted report is stored.
import { Type, type Static } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";

/** Largest report body accepted, in bytes. */
export const MAX_REPORT_BYTES = 64 * 1024;

const Name = (description: string) => Type.String({ minLength: 1, maxLength: 256, description });

export const InspectionReportSchema = Type.Object(
  {
    systemUUID: Type.String({ minLength: 1, maxLength: 64, description: "SMBIOS system UUID" }),
    cpu: Type.Object(
      {
        count: Type.Integer({ minimum: 0, maximum: 1024 }),
        cores: Type.Integer({ minimum: 0, maximum: 1_000_000 }),
        model: Type.String({ maxLength: 256 }),
      },
      { additionalProperties: false },
    ),
    memoryMiB: Type.Integer({ minimum: 0, maximum: 1024 ** 3 }),
    disks: Type.Array(
      Type.Object(
        {
          name: Name("block device name"),
          sizeBytes: Type.Integer({ minimum: 0 }),
          type: Type.Union([
            Type.Literal("HDD"),
            Type.Literal("SSD"),
            Type.Literal("NVMe"),
            Type.Literal("Unknown"),
          ]),
        },
        { additionalProperties: false },
      ),
      { maxItems: 128 },
    ),
    nics: Type.Array(
      Type.Object(
        {
          // Ethernet and longer (InfiniBand) hardware addresses, as the CRD accepts them.
          mac: Type.String({
            maxLength: 64,
            pattern: "^([0-9A-Fa-f]{2}[:-]){5,19}[0-9A-Fa-f]{2}$",
          }),
          name: Name("interface name"),
        },
        { additionalProperties: false },
      ),
      { maxItems: 64 },
    ),
  },
  { additionalProperties: false },
);

export type InspectionReport = Static<typeof InspectionReportSchema>;

export class ReportError extends Error {
  override readonly name = "ReportError";
}

/**
 * The report in `body` when it is JSON that fits the schema and names `systemUUID` (the URL's);
 * otherwise a ReportError naming the field at fault. Never echoes values back.
 */
export function parseReport(body: Buffer, systemUUID: string): InspectionReport {
  let data: unknown;
  try {
    data = JSON.parse(body.toString("utf8"));
  } catch {
    throw new ReportError("the report is not valid JSON");
  }
  const first = Value.Errors(InspectionReportSchema, data).First();
  if (first) {
    const field =
      first.path === "" ? "the report" : `field ${first.path.slice(1).replace(/\//g, ".")}`;
    throw new ReportError(`${field}: ${first.message}`);
  }
  const report = data as InspectionReport;
  if (report.systemUUID.trim().toLowerCase() !== systemUUID) {
    throw new ReportError("field systemUUID: does not match the host the report is posted for");
  }
  return report;
}
