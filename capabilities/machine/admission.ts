// Admission rules for Beskar7Machine and Beskar7MachineTemplate beyond the CRD's own validation,
// and the defaults that need logic.
import {
  IsoProvisioningModes,
  NetworkProvisioningModes,
  ProvisioningMode,
  type Beskar7Machine,
  type Beskar7MachineSpec,
  type Beskar7MachineTemplate,
  type ProvisioningModeName,
} from "../api";
import { BootConfigError, renderBoot } from "../../boot";
import {
  changed,
  checkURL,
  isBeingDeleted,
  problem,
  templateImmutable,
  type AdmissionInput,
  type Problem,
} from "../lib/admission";

/**
 * The provisioning mode a spec asks for. When provisioningMode is omitted it follows from the
 * fields given, as in the CRD's CEL rules: an inspection image means network boot (iPXE), a
 * config URL means a generic ISO with remote config, and otherwise a pre-baked ISO.
 */
export function effectiveProvisioningMode(spec: Partial<Beskar7MachineSpec>): ProvisioningModeName {
  if (spec.provisioningMode) return spec.provisioningMode;
  if (spec.inspectionImageURL) return ProvisioningMode.iPXE;
  if (spec.configURL) return ProvisioningMode.RemoteConfig;
  return ProvisioningMode.PreBakedISO;
}

const URL_FIELDS = [
  "imageURL",
  "configURL",
  "inspectionImageURL",
  "targetImageURL",
  "targetInitrdURL",
  "configurationURL",
] as const;

/** Rules for a machine spec, shared by machines and templates; `path` prefixes field names. */
export function checkMachineSpec(
  spec: Partial<Beskar7MachineSpec> | undefined,
  path: string,
): Problem[] {
  if (!spec) return [problem(path, "is required")];
  const found: Problem[] = [];
  const mode = effectiveProvisioningMode(spec);
  for (const field of URL_FIELDS) {
    found.push(...checkURL(`${path}.${field}`, spec[field], { schemes: ["http", "https"] }));
  }
  if (IsoProvisioningModes.includes(mode) && !spec.imageURL) {
    found.push(
      problem(
        `${path}.imageURL`,
        `is required for provisioningMode ${mode}: the ISO the BMC mounts as virtual media`,
      ),
    );
  }
  // RemoteConfig without configURL is complete: the OS then reads the Machine's bootstrap data
  // from the boot service (docs/machine.md). osFamily is the CRD's rule.
  found.push(...checkExtraKernelArgs(spec, path));
  if (NetworkProvisioningModes.includes(mode)) {
    for (const field of ["inspectionImageURL", "targetImageURL"] as const) {
      if (!spec[field])
        found.push(problem(`${path}.${field}`, `is required for provisioningMode ${mode}`));
    }
  }
  const requirements = spec.hardwareRequirements ?? {};
  for (const [field, value] of Object.entries(requirements)) {
    if (typeof value === "number" && (!Number.isInteger(value) || value < 1)) {
      found.push(
        problem(
          `${path}.hardwareRequirements.${field}`,
          `must be a whole number of at least 1 (got ${value})`,
        ),
      );
    }
  }
  return found;
}

/**
 * Extra kernel arguments, by the renderer's own rules (the boot service renders them later, so a
 * bad one is refused here rather than found on a booting host).
 */
function checkExtraKernelArgs(spec: Beskar7MachineSpec, path: string): Problem[] {
  const extra = spec.extraKernelArgs;
  if (!extra?.length) return [];
  if (!spec.osFamily) {
    return [
      problem(
        `${path}.extraKernelArgs`,
        "needs osFamily: the boot service writes them into the OS's boot loader or iPXE script (a pre-baked ISO's command line is its own)",
      ),
    ];
  }
  try {
    renderBoot(
      { name: "admission" },
      { osFamily: spec.osFamily, configURL: "https://boot.invalid/config", extraKernelArgs: extra },
    );
    return [];
  } catch (err) {
    if (!(err instanceof BootConfigError)) throw err;
    return [problem(`${path}.extraKernelArgs`, err.message)];
  }
}

/** Once a machine holds a host, its spec is what the host was provisioned from: fixed. */
const FIXED_ONCE_CLAIMED = [
  "spec.provisioningMode",
  "spec.osFamily",
  "spec.imageURL",
  "spec.configURL",
  "spec.extraKernelArgs",
  "spec.inspectionImageURL",
  "spec.targetImageURL",
  "spec.targetInitrdURL",
  "spec.configurationURL",
  "spec.hardwareRequirements",
  "spec.hostSelector",
  "spec.bootMode",
  "spec.failureDomain",
];

export function validateBeskar7Machine(input: AdmissionInput<Beskar7Machine>): Problem[] {
  if (isBeingDeleted(input)) return [];
  const found = checkMachineSpec(input.object.spec, "spec");
  const old = input.oldObject;
  if (input.operation === "UPDATE" && old) {
    const provisioned = !!old.status?.initialization?.provisioned || !!old.status?.ready;
    if (provisioned || old.status?.hostRef) {
      const why = provisioned
        ? "the machine is provisioned"
        : `host ${old.status?.hostRef?.name} is claimed for it`;
      for (const field of changed(FIXED_ONCE_CLAIMED, old, input.object)) {
        found.push(problem(field, `cannot change once ${why}; create a new machine instead`));
      }
    }
  }
  return found;
}

export function validateBeskar7MachineTemplate(
  input: AdmissionInput<Beskar7MachineTemplate>,
): Problem[] {
  if (isBeingDeleted(input)) return [];
  const spec = input.object.spec?.template?.spec as
    | (Partial<Beskar7MachineSpec> & { providerID?: string })
    | undefined;
  const found = checkMachineSpec(spec, "spec.template.spec");
  if (spec?.providerID) {
    found.push(
      problem(
        "spec.template.spec.providerID",
        "must not be set in a template: each machine gets its own from the host it claims",
      ),
    );
  }
  found.push(
    ...templateImmutable(
      input,
      "create a new Beskar7MachineTemplate and point the MachineDeployment or control plane at it",
    ),
  );
  return found;
}

/** Defaults that need logic; returns the spec fields to merge (empty when nothing to add). */
export function machineDefaults(
  spec: Partial<Beskar7MachineSpec> | undefined,
): Partial<Beskar7MachineSpec> {
  // Any value given, even an invalid one (false, 0, ""), is the user's: the schema judges it. A
  // default written over it would have admitted it.
  if (!spec || spec.provisioningMode !== undefined) return {};
  const hasAnyImage = !!(spec.imageURL || spec.inspectionImageURL || spec.configURL);
  if (!hasAnyImage) return {};
  if (spec.imageURL && spec.inspectionImageURL) return {}; // ambiguous: the CRD asks the user to choose
  return { provisioningMode: effectiveProvisioningMode(spec) };
}
