// The VM backend's decisions without starting QEMU: the command line (user-mode network with
// restrict=on and forwards to 127.0.0.1 only, the boot device by bootindex, iPXE's ROM only for
// network boots, media read by URL), the mapping from a Redfish boot to a launch config, guest
// URLs through the forwards, and the serial console's waits.
import { describe, expect, it } from "vitest";

import { bootDeviceFor, guestUrl, launchConfigFor } from "../../../lab/vm/bmc";
import { SerialConsole } from "../../../lab/vm/console";
import { macFor, qemuArguments, VmFiles } from "../../../lab/vm/qemu";

const uuid = "4c4c4544-0042-3010-8058-b4c04f4b4e32";
const options = { name: "vm", uuid, forwards: [{ guestPort: 80, hostPort: 41234 }] };

function optionValues(args: string[], option: string): string[] {
  return args.flatMap((a, i) => (a === option ? [args[i + 1]!] : []));
}

describe("qemuArguments", () => {
  it("isolates the network: user mode, restrict=on, one guestfwd per forward to 127.0.0.1", () => {
    const args = qemuArguments(options, { media: [], boot: "cd" }, "/v.fd", "/q.sock");
    expect(optionValues(args, "-netdev")).toEqual([
      `user,id=net0,restrict=on,guestfwd=tcp:10.0.2.100:80-cmd:${VmFiles.busybox} nc 127.0.0.1 41234`,
    ]);
    expect(args.join(" ")).not.toMatch(/hostfwd|tap|bridge|accel=kvm/);
    expect(optionValues(args, "-machine")).toEqual(["q35,accel=tcg"]);
    expect(optionValues(args, "-smbios")).toEqual([`type=1,uuid=${uuid}`]);
  });

  it("refuses a forward that is not a port", () => {
    expect(() =>
      qemuArguments(
        { ...options, forwards: [{ guestPort: 80, hostPort: 0 }] },
        { media: [], boot: "cd" },
        "/v.fd",
        "/q.sock",
      ),
    ).toThrow("guest forward to host port 0: not a port");
  });

  it("boots the first medium of the boot kind; CDs on SATA, USB sticks on xHCI; media by URL", () => {
    const args = qemuArguments(
      options,
      {
        media: [
          { url: "http://127.0.0.1:41234/boot.iso", kind: "cd" },
          { url: "https://127.0.0.1:8443/config.iso", kind: "usb" },
          { url: "http://127.0.0.1:41234/other.iso", kind: "cd" },
        ],
        boot: "cd",
      },
      "/v.fd",
      "/q.sock",
    );
    expect(optionValues(args, "-device")).toEqual([
      `virtio-net-pci,netdev=net0,mac=${macFor(uuid)},romfile=`,
      "ide-cd,drive=media0,bus=ide.0,bootindex=1",
      "qemu-xhci,id=xhci",
      "usb-storage,bus=xhci.0,drive=media1,removable=on",
      "ide-cd,drive=media2,bus=ide.1",
    ]);
    const blockdevs = optionValues(args, "-blockdev").map(
      b =>
        JSON.parse(b) as {
          "read-only": boolean;
          file: { driver: string; url: string; sslverify?: boolean };
        },
    );
    expect(blockdevs.map(b => [b.file.driver, b.file.url, b["read-only"]])).toEqual([
      ["http", "http://127.0.0.1:41234/boot.iso", true],
      ["https", "https://127.0.0.1:8443/config.iso", true],
      ["http", "http://127.0.0.1:41234/other.iso", true],
    ]);
    expect(blockdevs[1]!.file.sslverify).toBe(false);
  });

  it("network boots load iPXE's ROM and put the NIC first", () => {
    const args = qemuArguments(options, { media: [], boot: "network" }, "/v.fd", "/q.sock");
    expect(optionValues(args, "-device")).toEqual([
      `virtio-net-pci,netdev=net0,mac=${macFor(uuid)},romfile=${VmFiles.ipxeRom},bootindex=1`,
    ]);
  });

  it("offers a boot file by the user network's DHCP, refusing one QEMU would split", () => {
    const args = qemuArguments(
      options,
      { media: [], boot: "network", bootFile: "http://10.0.2.100/ipxe/x" },
      "/v.fd",
      "/q.sock",
    );
    expect(optionValues(args, "-netdev")[0]).toMatch(
      /^user,id=net0,restrict=on,bootfile=http:\/\/10\.0\.2\.100\/ipxe\/x,guestfwd=/,
    );
    expect(() =>
      qemuArguments(
        options,
        { media: [], boot: "network", bootFile: "http://10.0.2.100/x,hostfwd=tcp::2222-:22" },
        "/v.fd",
        "/q.sock",
      ),
    ).toThrow(/an http\(s\) URL without commas or spaces/);
  });

  it("refuses a medium that is not http(s)", () => {
    expect(() =>
      qemuArguments(
        options,
        { media: [{ url: "nfs://server/boot.iso", kind: "cd" }], boot: "cd" },
        "/v.fd",
        "/q.sock",
      ),
    ).toThrow("virtual medium 0 (nfs:): only http and https URLs can be attached");
  });

  it("derives a locally administered MAC from the UUID", () => {
    expect(macFor(uuid)).toBe("52:54:00:4b:4e:32");
  });
});

describe("Redfish boot -> launch config", () => {
  it("maps override targets to devices (the vendor's virtual CD target included)", () => {
    expect(bootDeviceFor("Cd", "Cd")).toBe("cd");
    expect(bootDeviceFor("UsbCd", "UsbCd")).toBe("cd");
    expect(bootDeviceFor("Usb", "Cd")).toBe("usb");
    expect(bootDeviceFor("Pxe", "Cd")).toBe("network");
    expect(bootDeviceFor("UefiHttp", "Cd")).toBe("network");
    expect(bootDeviceFor("Hdd", "Cd")).toBe("default");
    expect(bootDeviceFor(undefined, "Cd")).toBe("default");
  });

  it("puts the medium the boot names first, and USB slots become USB sticks", () => {
    const config = launchConfigFor(
      {
        system: "/redfish/v1/Systems/1",
        uuid,
        record: {
          system: "/redfish/v1/Systems/1",
          at: 0,
          target: "Cd",
          media: "http://h/boot.iso",
        },
        media: [
          { slot: "/CD2", image: "http://h/config.iso", mediaTypes: ["CD", "DVD"] },
          { slot: "/USB1", image: "http://h/stick.img", mediaTypes: ["USBStick"] },
          { slot: "/CD1", image: "http://h/boot.iso", mediaTypes: ["CD"] },
        ],
        poweredOff: () => undefined,
      },
      { virtualCdTarget: "Cd" },
    );
    expect(config).toEqual({
      boot: "cd",
      media: [
        { url: "http://h/boot.iso", kind: "cd" },
        { url: "http://h/config.iso", kind: "cd" },
        { url: "http://h/stick.img", kind: "usb" },
      ],
    });
  });

  it("gives a network boot the boot file DHCP offers, as the guest reaches it", () => {
    const event = (target: string, media?: string) => ({
      system: "/redfish/v1/Systems/1",
      uuid,
      record: { system: "/redfish/v1/Systems/1", at: 0, target, media },
      media: [],
      poweredOff: () => undefined,
    });
    const options = {
      virtualCdTarget: "Cd",
      networkBootFile: "http://127.0.0.1:41234/ipxe/script",
      forwards: [{ guestPort: 80, hostPort: 41234 }],
    };
    expect(launchConfigFor(event("Pxe"), options)).toEqual({
      media: [],
      boot: "network",
      bootFile: "http://10.0.2.100/ipxe/script",
    });
    expect(launchConfigFor(event("UefiHttp", "http://127.0.0.1:41234/boot.efi"), options)).toEqual({
      media: [],
      boot: "network",
      bootFile: "http://10.0.2.100/boot.efi",
    });
    expect(launchConfigFor(event("Pxe"), { virtualCdTarget: "Cd" })).toEqual({
      media: [],
      boot: "network",
    });
    expect(launchConfigFor(event("Cd"), options)).toEqual({ media: [], boot: "cd" });
  });
});

describe("guestUrl", () => {
  const forwards = [{ guestPort: 80, hostPort: 41234 }];
  it("rewrites a forwarded 127.0.0.1 URL to the guest's view", () => {
    expect(guestUrl("http://127.0.0.1:41234/config/x?a=1", forwards)).toBe(
      "http://10.0.2.100/config/x?a=1",
    );
  });
  it("keeps the rest of the URL as written (iPXE fills ${uuid} itself)", () => {
    expect(guestUrl("http://127.0.0.1:41234/v1/ipxe/${uuid}", forwards)).toBe(
      "http://10.0.2.100/v1/ipxe/${uuid}",
    );
    expect(guestUrl("http://127.0.0.1:41234", forwards)).toBe("http://10.0.2.100");
  });

  it("refuses a URL no forward reaches", () => {
    expect(() => guestUrl("http://127.0.0.1:9999/x", forwards)).toThrow(
      /http:\/\/127.0.0.1:9999 is not forwarded to the guest/,
    );
    expect(() => guestUrl("http://192.0.2.1:41234/x", forwards)).toThrow(/not forwarded/);
  });
});

describe("SerialConsole", () => {
  it("splits lines across chunks, drops escape sequences, finds seen and later lines", async () => {
    const console = new SerialConsole();
    console.write("\x1b[2J\x1b[01;01HBESKAR7-CMDLINE: a b\r\nBESKAR7-NE");
    expect(await console.waitFor(/^BESKAR7-CMDLINE/, 1000)).toBe("BESKAR7-CMDLINE: a b");
    const later = console.waitFor(/^BESKAR7-NET: /, 1000);
    console.write("T: eth0 10.0.2.15\n");
    expect(await later).toBe("BESKAR7-NET: eth0 10.0.2.15");
    expect(console.reports("NET")).toEqual(["eth0 10.0.2.15"]);
    const mark = console.lines.length;
    const again = console.waitFor(/^BESKAR7-CMDLINE/, 1000, mark);
    console.write("BESKAR7-CMDLINE: c\n");
    expect(await again).toBe("BESKAR7-CMDLINE: c");
  });

  it("fails a wait with the last lines when time runs out or the machine stops", async () => {
    const console = new SerialConsole();
    console.write("booting\n");
    await expect(console.waitFor(/^never/, 20)).rejects.toThrow(
      /\/\^never\/ not seen within 0.02 s; last lines:\nbooting/,
    );
    const pending = console.waitFor(/^never/, 5000);
    console.write("kernel panic");
    console.close("(the machine stopped: timeout)");
    await expect(pending).rejects.toThrow(/stopped: timeout.*\nbooting\nkernel panic/s);
    await expect(console.waitFor(/^never/, 5000)).rejects.toThrow(/stopped: timeout/);
  });
});
