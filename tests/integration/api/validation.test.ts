// What the CRD schemas (OpenAPI + CEL) reject on a real API server, and with which message: each
// message must name the offending field. Also the immutability rules, which need an update.
import { beforeAll, describe, expect, it } from "vitest";

import { applyYaml, freshNamespace, installBeskar7Crds, mustKubectl } from "./kubectl";

let ns: string;

beforeAll(async () => {
  await installBeskar7Crds();
  ns = await freshNamespace("api-validation");
});

const V = "apiVersion: infrastructure.cluster.x-k8s.io/v1beta1";

function host(name: string, spec: string): string {
  return `${V}\nkind: PhysicalHost\nmetadata: { name: ${name} }\nspec:\n${spec}`;
}
function machine(name: string, spec: string): string {
  return `${V}\nkind: Beskar7Machine\nmetadata: { name: ${name} }\nspec:\n${spec}`;
}
function cluster(name: string, spec: string): string {
  return `${V}\nkind: Beskar7Cluster\nmetadata: { name: ${name} }\nspec:\n${spec}`;
}

const redfish = `  redfishConnection: { address: "https://10.0.0.1", credentialsSecretRef: bmc }\n`;
const claim = `  consumerRef: { apiVersion: infrastructure.cluster.x-k8s.io/v1beta1, kind: Beskar7Machine, name: m1 }\n`;

async function expectRejected(yaml: string, ...messages: string[]): Promise<void> {
  const result = await applyYaml(yaml, ns);
  expect(result.code, `expected rejection, got: ${result.stdout}`).not.toBe(0);
  for (const message of messages) expect(result.stderr).toContain(message);
}

async function expectAccepted(yaml: string): Promise<void> {
  const result = await applyYaml(yaml, ns);
  expect(result.stderr).toBe("");
  expect(result.code).toBe(0);
}

describe("PhysicalHost rejects", () => {
  it.each([
    {
      what: "a non-http(s) address scheme",
      spec: `  redfishConnection: { address: "ftp://10.0.0.1", credentialsSecretRef: bmc }\n`,
      messages: ["spec.redfishConnection.address", "must be an https:// URL of the BMC"],
    },
    {
      what: "an address without scheme",
      spec: `  redfishConnection: { address: "192.168.1.10", credentialsSecretRef: bmc }\n`,
      messages: ["spec.redfishConnection.address", "must be an https:// URL of the BMC"],
    },
    {
      what: "http:// without allowInsecureHTTP",
      spec: `  redfishConnection: { address: "http://10.0.0.1:8000", credentialsSecretRef: bmc }\n`,
      messages: ["spec.redfishConnection.address uses http://", "allowInsecureHTTP: true"],
    },
    {
      what: "http:// with allowInsecureHTTP: false",
      spec: `  redfishConnection: { address: "http://10.0.0.1", allowInsecureHTTP: false, credentialsSecretRef: bmc }\n`,
      messages: ["spec.redfishConnection.address uses http://"],
    },
    {
      what: "insecureSkipVerify together with caBundleSecretRef",
      spec: `  redfishConnection: { address: "https://10.0.0.1", credentialsSecretRef: bmc, insecureSkipVerify: true, caBundleSecretRef: bmc-ca }\n`,
      messages: [
        "spec.redfishConnection.insecureSkipVerify and spec.redfishConnection.caBundleSecretRef are mutually exclusive",
      ],
    },
    {
      what: "a missing credentialsSecretRef",
      spec: `  redfishConnection: { address: "https://10.0.0.1" }\n`,
      messages: ["spec.redfishConnection.credentialsSecretRef: Required value"],
    },
    {
      what: "a credentialsSecretRef that is not an object name",
      spec: `  redfishConnection: { address: "https://10.0.0.1", credentialsSecretRef: "My_Secret" }\n`,
      messages: ["spec.redfishConnection.credentialsSecretRef"],
    },
    {
      what: "provisioning on an unclaimed host",
      spec: `${redfish}  provisioning: { mode: VirtualMedia, bootISO: "https://img/x.iso" }\n`,
      messages: ["spec.provisioning may only be set on a claimed host"],
    },
    {
      what: "VirtualMedia without bootISO",
      spec: `${redfish}${claim}  provisioning: { mode: VirtualMedia }\n`,
      messages: [
        "spec.provisioning.bootISO is required when spec.provisioning.mode is VirtualMedia",
      ],
    },
    {
      what: "Network without networkBootTarget",
      spec: `${redfish}${claim}  provisioning: { mode: Network }\n`,
      messages: ["spec.provisioning.networkBootTarget (Pxe or UefiHttp) is required"],
    },
    {
      what: "UefiHttp without httpBootURI",
      spec: `${redfish}${claim}  provisioning: { mode: Network, networkBootTarget: UefiHttp }\n`,
      messages: [
        "spec.provisioning.networkBootTarget UefiHttp requires spec.provisioning.httpBootURI",
      ],
    },
    {
      what: "UefiHttp in Legacy boot mode",
      spec: `${redfish}${claim}  provisioning: { mode: Network, networkBootTarget: UefiHttp, httpBootURI: "http://boot/ipxe.efi", bootMode: Legacy }\n`,
      messages: ["requires spec.provisioning.httpBootURI and bootMode UEFI"],
    },
    {
      what: "configURL without osFamily",
      spec: `${redfish}${claim}  provisioning: { mode: VirtualMedia, bootISO: "https://img/x.iso", configURL: "https://cfg/x" }\n`,
      messages: ["spec.provisioning.configURL requires spec.provisioning.osFamily"],
    },
    {
      what: "network fields in VirtualMedia mode",
      spec: `${redfish}${claim}  provisioning: { mode: VirtualMedia, bootISO: "https://img/x.iso", targetImageURL: "http://img/os.tgz" }\n`,
      messages: ["are only valid with spec.provisioning.mode Network"],
    },
    {
      what: "an initramfs in VirtualMedia mode",
      spec: `${redfish}${claim}  provisioning: { mode: VirtualMedia, bootISO: "https://img/x.iso", targetInitrdURL: "http://img/initrd" }\n`,
      messages: [
        "spec.provisioning.networkBootTarget, httpBootURI, targetImageURL and targetInitrdURL are only valid with spec.provisioning.mode Network",
      ],
    },
    {
      what: "a targetInitrdURL that is not http(s)",
      spec: `${redfish}${claim}  provisioning: { mode: Network, networkBootTarget: Pxe, targetImageURL: "http://img/vmlinuz", targetInitrdURL: "tftp://img/initrd" }\n`,
      messages: ["spec.provisioning.targetInitrdURL"],
    },
  ])("$what", async ({ spec, messages }) => {
    await expectRejected(host("bad-host", spec), ...messages);
  });
});

describe("PhysicalHost accepts", () => {
  it("an IPv6 literal, http with the opt-in, and a CA bundle", async () => {
    await expectAccepted(
      host(
        "ipv6",
        `  redfishConnection: { address: "https://[fd00::1]:8443", credentialsSecretRef: bmc }\n`,
      ),
    );
    await expectAccepted(
      host(
        "lab",
        `  redfishConnection: { address: "http://127.0.0.1:8000", allowInsecureHTTP: true, credentialsSecretRef: bmc }\n`,
      ),
    );
    await expectAccepted(
      host(
        "with-ca",
        `  redfishConnection: { address: "https://bmc.example.com", credentialsSecretRef: bmc, caBundleSecretRef: bmc-ca }\n`,
      ),
    );
  });

  it("a network boot of a kernel and its initramfs", async () => {
    await expectAccepted(
      host(
        "netboot-initrd",
        `${redfish}${claim}  provisioning: { mode: Network, networkBootTarget: UefiHttp, httpBootURI: "http://boot/ipxe.efi", targetImageURL: "http://img/vmlinuz-amd64", targetInitrdURL: "http://img/initramfs-amd64.xz", osFamily: talos }\n`,
      ),
    );
  });

  it("defaults insecureSkipVerify and allowInsecureHTTP to false", async () => {
    const out = await mustKubectl([
      "get",
      "physicalhost",
      "ipv6",
      "-n",
      ns,
      "-o",
      "jsonpath={.spec.redfishConnection.insecureSkipVerify} {.spec.redfishConnection.allowInsecureHTTP}",
    ]);
    expect(out).toBe("false false");
  });

  it("rejects a status with an unknown state", async () => {
    const result = await mustKubectl([
      "patch",
      "physicalhost",
      "ipv6",
      "-n",
      ns,
      "--subresource=status",
      "--type=merge",
      "-p",
      '{"status":{"state":"Exploded"}}',
    ]).catch((error: Error) => error.message);
    expect(result).toContain('status.state: Unsupported value: "Exploded"');
  });
});

describe("PhysicalHost claim and provisioning request", () => {
  const claimed = (consumer: string, iso: string) =>
    host(
      "claimed",
      `${redfish}  consumerRef: { apiVersion: infrastructure.cluster.x-k8s.io/v1beta1, kind: Beskar7Machine, name: ${consumer} }\n` +
        `  provisioning: { mode: VirtualMedia, bootISO: "${iso}", osFamily: kairos, configURL: "https://cfg/c.yaml" }\n`,
    );

  it("accepts a claim with a complete request, and defaults bootMode to UEFI", async () => {
    await expectAccepted(claimed("m1", "https://img/a.iso"));
    const mode = await mustKubectl([
      "get",
      "ph",
      "claimed",
      "-n",
      ns,
      "-o",
      "jsonpath={.spec.provisioning.bootMode}",
    ]);
    expect(mode).toBe("UEFI");
  });

  it("keeps consumerRef immutable while claimed", async () => {
    await expectRejected(
      claimed("m2", "https://img/a.iso"),
      "spec.consumerRef cannot be changed while the host is claimed",
    );
  });

  it("keeps provisioning immutable while claimed", async () => {
    await expectRejected(
      claimed("m1", "https://img/b.iso"),
      "spec.provisioning is immutable while the host is claimed",
    );
  });

  it("allows release (both removed) and a new claim afterwards", async () => {
    await expectAccepted(host("claimed", redfish));
    const after = await mustKubectl([
      "get",
      "ph",
      "claimed",
      "-n",
      ns,
      "-o",
      "jsonpath={.spec.consumerRef}{.spec.provisioning}",
    ]);
    expect(after).toBe("");
    await expectAccepted(claimed("m2", "https://img/b.iso"));
  });
});

describe("Beskar7Machine rejects", () => {
  it.each([
    {
      what: "RemoteConfig without osFamily",
      spec: `  provisioningMode: RemoteConfig\n  imageURL: https://img/k.iso\n  configURL: https://cfg/k.yaml\n`,
      messages: ["spec.osFamily is required when provisioningMode is RemoteConfig"],
    },
    {
      what: "PreBakedISO without imageURL",
      spec: `  provisioningMode: PreBakedISO\n  osFamily: kairos\n`,
      messages: ["spec.imageURL is required when provisioningMode is PreBakedISO or RemoteConfig"],
    },
    {
      what: "PXE without image URLs",
      spec: `  provisioningMode: PXE\n`,
      messages: [
        "spec.inspectionImageURL and spec.targetImageURL are required when provisioningMode is PXE or iPXE",
      ],
    },
    {
      what: "iPXE without targetImageURL",
      spec: `  provisioningMode: iPXE\n  inspectionImageURL: http://boot/ipxe.efi\n`,
      messages: ["spec.inspectionImageURL and spec.targetImageURL are required"],
    },
    {
      what: "iPXE in Legacy boot mode",
      spec: `  provisioningMode: iPXE\n  bootMode: Legacy\n  inspectionImageURL: http://boot/ipxe.efi\n  targetImageURL: http://boot/os.tgz\n`,
      messages: ["spec.bootMode must be UEFI when provisioningMode is iPXE"],
    },
    {
      what: "an initramfs outside the network modes",
      spec: `  provisioningMode: RemoteConfig\n  osFamily: talos\n  imageURL: https://img/k.iso\n  targetInitrdURL: http://boot/initrd\n`,
      messages: [
        "spec.targetInitrdURL is only used when provisioningMode is PXE or iPXE (the initramfs the iPXE script loads with targetImageURL)",
      ],
    },
    {
      what: "a targetInitrdURL that is not http(s)",
      spec: `  provisioningMode: iPXE\n  inspectionImageURL: http://boot/ipxe.efi\n  targetImageURL: http://boot/vmlinuz\n  targetInitrdURL: "nfs://boot/initrd"\n`,
      messages: ["spec.targetInitrdURL"],
    },
    {
      what: "minCPUCores below 1",
      spec: `  imageURL: https://img/k.iso\n  hardwareRequirements: { minCPUCores: 0 }\n`,
      messages: ["spec.hardwareRequirements.minCPUCores", "greater than or equal to 1"],
    },
    {
      what: "minMemoryGB below 1",
      spec: `  imageURL: https://img/k.iso\n  hardwareRequirements: { minMemoryGB: 0 }\n`,
      messages: ["spec.hardwareRequirements.minMemoryGB", "greater than or equal to 1"],
    },
    {
      what: "minDiskGB below 1",
      spec: `  imageURL: https://img/k.iso\n  hardwareRequirements: { minDiskGB: -5 }\n`,
      messages: ["spec.hardwareRequirements.minDiskGB", "greater than or equal to 1"],
    },
    {
      what: "an unknown osFamily",
      spec: `  imageURL: https://img/k.iso\n  osFamily: windows\n`,
      messages: ['spec.osFamily: Unsupported value: "windows"'],
    },
    {
      what: "an unknown provisioningMode",
      spec: `  provisioningMode: Floppy\n  imageURL: https://img/k.iso\n`,
      messages: ['spec.provisioningMode: Unsupported value: "Floppy"'],
    },
    {
      what: "an imageURL that is not http(s)",
      spec: `  imageURL: "nfs://img/k.iso"\n`,
      messages: ["spec.imageURL"],
    },
    {
      what: "both imageURL and inspectionImageURL without a mode",
      spec: `  imageURL: https://img/k.iso\n  inspectionImageURL: http://boot/ipxe.efi\n  targetImageURL: http://boot/os.tgz\n`,
      messages: [
        "spec.provisioningMode must be set when both imageURL and inspectionImageURL are given",
      ],
    },
    {
      what: "a hostSelector In expression without values",
      spec: `  imageURL: https://img/k.iso\n  hostSelector: { matchExpressions: [{ key: zone, operator: In }] }\n`,
      messages: ["values must be non-empty for In/NotIn"],
    },
  ])("$what", async ({ spec, messages }) => {
    await expectRejected(machine("bad-machine", spec), ...messages);
  });
});

describe("Beskar7Machine accepts", () => {
  it("RemoteConfig without configURL: the OS then reads the bootstrap data", async () => {
    await expectAccepted(
      machine(
        "m-remote-bootstrap",
        `  provisioningMode: RemoteConfig\n  osFamily: kairos\n  imageURL: https://img/k.iso\n`,
      ),
    );
  });
});

describe("Beskar7Machine accepts a network boot of a kernel and its initramfs", () => {
  it.each(["PXE", "iPXE"])("%s", async mode => {
    await expectAccepted(
      machine(
        `m-initrd-${mode.toLowerCase()}`,
        `  provisioningMode: ${mode}\n  inspectionImageURL: http://boot/ipxe.efi\n  targetImageURL: http://img/vmlinuz-amd64\n  targetInitrdURL: http://img/initramfs-amd64.xz\n`,
      ),
    );
  });
});

describe("Beskar7Machine providerID", () => {
  const withProvider = (id?: string) =>
    machine("m-provider", `  imageURL: https://img/k.iso\n${id ? `  providerID: ${id}\n` : ""}`);

  it("defaults bootMode to UEFI and may be set once", async () => {
    await expectAccepted(withProvider());
    expect(
      await mustKubectl(["get", "b7m", "m-provider", "-n", ns, "-o", "jsonpath={.spec.bootMode}"]),
    ).toBe("UEFI");
    await expectAccepted(withProvider(`beskar7://${ns}/server-01`));
  });

  it("is immutable once set (no change, no removal)", async () => {
    await expectRejected(
      withProvider(`beskar7://${ns}/server-02`),
      "spec.providerID is immutable once set",
    );
    await expectRejected(withProvider(), "spec.providerID is immutable once set");
  });
});

describe("Beskar7MachineTemplate rejects", () => {
  const template = (spec: string) =>
    `${V}\nkind: Beskar7MachineTemplate\nmetadata: { name: bad-template }\nspec:\n  template:\n    spec:\n${spec}`;

  it("a providerID", async () => {
    await expectRejected(
      template(`      imageURL: https://img/k.iso\n      providerID: beskar7://x/y\n`),
      "spec.template.spec.providerID must not be set",
    );
  });

  it("RemoteConfig without osFamily, naming the template path", async () => {
    await expectRejected(
      template(`      provisioningMode: RemoteConfig\n      imageURL: https://img/t.iso\n`),
      "spec.template.spec.osFamily is required when provisioningMode is RemoteConfig",
    );
  });

  it("an initramfs outside the network modes, naming the template path", async () => {
    await expectRejected(
      template(`      imageURL: https://img/k.iso\n      targetInitrdURL: http://boot/initrd\n`),
      "spec.template.spec.targetInitrdURL is only used when provisioningMode is PXE or iPXE",
    );
  });

  it("requirements below 1", async () => {
    await expectRejected(
      template(
        `      imageURL: https://img/k.iso\n      hardwareRequirements: { minCPUCores: 0 }\n`,
      ),
      "spec.template.spec.hardwareRequirements.minCPUCores",
    );
  });
});

describe("Beskar7Cluster", () => {
  it.each([
    { port: 0, message: "greater than or equal to 1" },
    { port: 65536, message: "less than or equal to 65535" },
  ])("rejects port $port", async ({ port, message }) => {
    await expectRejected(
      cluster("bad-port", `  controlPlaneEndpoint: { host: 10.0.0.100, port: ${port} }\n`),
      "spec.controlPlaneEndpoint.port",
      message,
    );
  });

  it("rejects a port outside 1-65535 in a template", async () => {
    await expectRejected(
      `${V}\nkind: Beskar7ClusterTemplate\nmetadata: { name: bad }\nspec:\n  template:\n    spec:\n      controlPlaneEndpoint: { host: h, port: 70000 }\n`,
      "spec.template.spec.controlPlaneEndpoint.port",
    );
  });

  it("rejects duplicate failure domain names", async () => {
    await expectRejected(
      cluster("dup-fd", `  failureDomains: [{ name: rack-a }, { name: rack-a }]\n`),
      `spec.failureDomains: duplicate entries for key [name="rack-a"]`,
    );
  });

  it("defaults the port to 6443 and keeps the endpoint immutable", async () => {
    await expectAccepted(cluster("c1", `  controlPlaneEndpoint: { host: 10.0.0.100 }\n`));
    const port = await mustKubectl([
      "get",
      "b7c",
      "c1",
      "-n",
      ns,
      "-o",
      "jsonpath={.spec.controlPlaneEndpoint.port}",
    ]);
    expect(port).toBe("6443");
    await expectRejected(
      cluster("c1", `  controlPlaneEndpoint: { host: 10.0.0.101, port: 6443 }\n`),
      "spec.controlPlaneEndpoint is immutable once set",
    );
  });

  it("accepts an empty spec (endpoint filled in later)", async () => {
    await expectAccepted(`${V}\nkind: Beskar7Cluster\nmetadata: { name: empty }\n`);
  });
});
