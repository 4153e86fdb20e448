// Claiming by boot capability: a Beskar7Machine never gets a host whose BMC cannot boot its
// provisioning mode, and the waiting condition counts those hosts apart with what they lack.
// Capabilities of real BMCs come from the captures in lab/captures, read through the driver's own
// rule (bootTargetCapabilities), so "DMTF, Lenovo and Supermicro cannot HTTP-boot" is their
// recorded truth, not a fixture's say-so; the PhysicalHost side of the same rule is tested in
// boot-delivery.test.ts.
import { describe, expect, it } from "vitest";

import type {
  Beskar7Machine,
  HardwareDetails,
  PhysicalHost,
  ProvisioningModeName,
} from "../../../capabilities/api";
import { missingBootCapability } from "../../../capabilities/lib/boot-capability";
import { chooseHosts, describeChoice } from "../../../capabilities/machine/claim";
import { dig, MockupStore, odataId } from "../../../lab/bmc/mockup-store";
import { bootTargetCapabilities } from "../../../redfish/operations/boot";
import { detectVendor } from "../../../redfish/vendors";

type Capabilities = NonNullable<HardwareDetails["bootCapabilities"]>;
const ZONE = "topology.kubernetes.io/zone";

function host(name: string, bootCapabilities?: Capabilities, namespace = "lab"): PhysicalHost {
  return {
    metadata: { name, namespace, uid: `uid-${name}`, resourceVersion: "1" },
    spec: { redfishConnection: { address: "https://bmc", credentialsSecretRef: "s" } },
    status: {
      state: "Available",
      hardwareDetails: { cpu: { cores: 32 }, memoryGiB: 256, bootCapabilities },
    },
  } as PhysicalHost;
}

/** A machine of each mode, with the fields its mode needs (the CRD's rules). */
function machine(mode: ProvisioningModeName, extra: Beskar7Machine["spec"] = {}): Beskar7Machine {
  const images =
    mode === "PXE" || mode === "iPXE"
      ? { inspectionImageURL: "https://boot/ipxe.efi", targetImageURL: "https://images/os.img" }
      : { imageURL: "https://images/os.iso" };
  return {
    metadata: { name: `m-${mode}`, namespace: "lab", uid: `uid-${mode}` },
    spec: {
      provisioningMode: mode,
      ...images,
      ...(mode === "RemoteConfig" ? { osFamily: "talos" } : {}),
      ...extra,
    },
  } as Beskar7Machine;
}

const choose = (m: Beskar7Machine, hosts: PhysicalHost[]) => chooseHosts(m, hosts, undefined, ZONE);
const names = (hosts: PhysicalHost[]) => hosts.map(h => h.metadata!.name!).sort();

/** What the driver records for a capture's boot override (targets, where an HTTP URI goes). */
function captured(folder: string): Capabilities {
  const store = MockupStore.for(folder);
  const root = store.json("/redfish/v1") ?? {};
  const systems = dig(store.json("/redfish/v1/Systems"), "Members");
  const system = store.json(odataId(Array.isArray(systems) ? systems[0] : undefined) ?? "") ?? {};
  const manufacturer = typeof system.Manufacturer === "string" ? system.Manufacturer : undefined;
  const boot = dig(system, "Boot") as Record<string, unknown> | undefined;
  const { bootTargets, httpBootUri } = bootTargetCapabilities(
    boot,
    detectVendor(root, manufacturer),
  );
  return { bootTargets, httpBootURI: httpBootUri };
}

const CAPTURES = {
  dmtf: "dmtf_public-rackmount1",
  lenovo: "nvidia-libredfish_lenovo_thinksystem-sr670-v2_xcc-2.83",
  supermicro: "nvidia-libredfish_supermicro_sys-821ge-tnhr-x13_bmc-11.01",
  dell: "nvidia-libredfish_dell_poweredge-r750_idrac9-6.00.30",
  hpe: "nvidia-libredfish_hpe_proliant-dl385-gen10plus-v2_ilo5-2.72",
  bluefield: "nvidia-libredfish_nvidia_bluefield3-dpu-bmc_openbmc",
};
const captureHosts = () =>
  Object.entries(CAPTURES).map(([name, folder]) => host(name, captured(folder)));

describe("claiming: the captured BMCs", () => {
  it("iPXE never gets DMTF, Lenovo (no UefiHttp target) or Supermicro (no HTTP boot URI)", () => {
    const choice = choose(machine("iPXE"), captureHosts());
    expect(names(choice.candidates)).toEqual(["bluefield", "dell", "hpe"]);
    expect(choice.excluded.capability).toBe(3);
    expect(describeChoice(choice)).toBe(
      "6 hosts considered in the machine's namespace: 3 unable to boot the machine's provisioning mode (iPXE: 2 with no UefiHttp boot target, 1 with no way to set an HTTP boot URI)",
    );
  });

  it("PXE may get any of them: every captured BMC offers the Pxe target", () => {
    const choice = choose(machine("PXE"), captureHosts());
    expect(choice.candidates).toHaveLength(6);
    expect(choice.excluded.capability).toBe(0);
  });
});

describe("claiming: what each mode needs", () => {
  const cd: Capabilities = { virtualMedia: ["CD", "USB"], virtualMediaSlots: 2 };
  const oneCd: Capabilities = { virtualMedia: ["CD"], virtualMediaSlots: 1 };
  const usbOnly: Capabilities = { virtualMedia: ["USB"], virtualMediaSlots: 1 };
  const noMedia: Capabilities = { virtualMedia: [], virtualMediaSlots: 0, bootTargets: ["Pxe"] };
  const pxe: Capabilities = { bootTargets: ["Pxe", "Cd", "Hdd"], httpBootURI: false };
  const http: Capabilities = { bootTargets: ["Pxe", "UefiHttp"], httpBootURI: true };
  const httpNoURI: Capabilities = { bootTargets: ["Pxe", "UefiHttp"], httpBootURI: false };
  const hosts = () => [
    host("cd", cd),
    host("one-cd", oneCd),
    host("usb-only", usbOnly),
    host("no-media", noMedia),
    host("pxe", pxe),
    host("http", http),
    host("http-no-uri", httpNoURI),
    host("unknown"),
  ];

  it.each<[ProvisioningModeName, string[], string]>([
    // One CD slot is enough: RemoteConfig falls back to the patched ISO, a pre-baked ISO boots
    // (its bootstrap data undelivered, with a warning) where a second slot is missing.
    [
      "PreBakedISO",
      ["cd", "http", "http-no-uri", "one-cd", "pxe", "unknown"],
      "2 unable to boot the machine's provisioning mode (PreBakedISO: no virtual media slot that takes a CD)",
    ],
    [
      "RemoteConfig",
      ["cd", "http", "http-no-uri", "one-cd", "pxe", "unknown"],
      "2 unable to boot the machine's provisioning mode (RemoteConfig: no virtual media slot that takes a CD)",
    ],
    // Hosts whose BMC lists no boot targets ("cd", "one-cd", "usb-only") are not excluded: the
    // BMC did not say, so the PhysicalHost controller would try.
    [
      "PXE",
      ["cd", "http", "http-no-uri", "no-media", "one-cd", "pxe", "unknown", "usb-only"],
      "8 hosts considered in the machine's namespace",
    ],
    [
      "iPXE",
      ["cd", "http", "one-cd", "unknown", "usb-only"],
      "3 unable to boot the machine's provisioning mode (iPXE: 2 with no UefiHttp boot target, 1 with no way to set an HTTP boot URI)",
    ],
  ])("%s", (mode, candidates, text) => {
    const choice = choose(machine(mode), hosts());
    expect(names(choice.candidates)).toEqual(candidates);
    expect(choice.excluded.capability).toBe(8 - candidates.length);
    expect(describeChoice(choice)).toContain(text);
  });

  it("an inferred mode counts like a given one (inspectionImageURL: iPXE)", () => {
    const inferred = machine("iPXE");
    delete inferred.spec!.provisioningMode;
    const choice = choose(inferred, [host("pxe", pxe), host("http", http)]);
    expect(names(choice.candidates)).toEqual(["http"]);
    expect(describeChoice(choice)).toContain("(iPXE: no UefiHttp boot target)");
  });

  it("counts capability apart from the other reasons, each host once, first reason first", () => {
    const taken = host("taken", pxe);
    taken.spec!.consumerRef = { name: "other", namespace: "lab", uid: "u" } as never;
    const enrolling = host("enrolling", pxe);
    enrolling.status!.state = "Enrolling";
    const small = host("small", pxe);
    small.status!.hardwareDetails!.cpu = { cores: 2 };
    const choice = choose(machine("iPXE", { hardwareRequirements: { minCPUCores: 8 } }), [
      taken,
      enrolling,
      small,
      host("pxe-1", pxe),
      host("pxe-2", pxe),
      host("elsewhere", pxe, "other-namespace"),
    ]);
    expect(choice.candidates).toEqual([]);
    expect(describeChoice(choice)).toBe(
      "5 hosts considered in the machine's namespace: 1 not Available, 1 claimed by another machine, 1 below hardwareRequirements, 2 unable to boot the machine's provisioning mode (iPXE: no UefiHttp boot target)",
    );
  });
});

describe("missingBootCapability", () => {
  const network = (target: "Pxe" | "UefiHttp") => ({ mode: "Network", networkBootTarget: target });
  it.each<[string, Capabilities | undefined, object, string | undefined]>([
    ["not recorded", undefined, network("UefiHttp"), undefined],
    ["no targets listed", { bootTargets: [] }, network("Pxe"), undefined],
    [
      "no targets listed, no URI",
      { bootTargets: [], httpBootURI: false },
      network("UefiHttp"),
      "no way to set an HTTP boot URI",
    ],
    ["URI support not recorded", { bootTargets: ["UefiHttp"] }, network("UefiHttp"), undefined],
    ["Pxe missing", { bootTargets: ["Cd"] }, network("Pxe"), "no Pxe boot target"],
    [
      "a target defaults to Pxe",
      { bootTargets: ["Cd"] },
      { mode: "Network" },
      "no Pxe boot target",
    ],
    ["slots not readable", { bootTargets: ["Pxe"] }, { mode: "VirtualMedia" }, undefined],
    [
      "USB only",
      { virtualMedia: ["USB"] },
      { mode: "VirtualMedia" },
      "no virtual media slot that takes a CD",
    ],
  ])("%s", (_case, capabilities, boot, lacks) => {
    expect(missingBootCapability(capabilities, boot as never)).toBe(lacks);
  });
});
