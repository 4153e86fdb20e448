// Unit tests of boot/render.ts: for each OS family, the kernel arguments and configuration
// location it renders (the parameter names each OS really reads, docs/boot.md), and the
// validation that keeps URLs and extra arguments from injecting further arguments.
import { describe, expect, it } from "vitest";
import { BootConfigError, MAX_COMMAND_LINE, renderBoot } from "../../../boot/index";

const host = { name: "server-01", systemUUID: "4C4C4544-0042-3510-8052-B4C04F4B4E32" };
const url = "https://boot.example:8443/v1/config/default/server-01?token=abc";

describe("renderBoot: one renderer per OS family", () => {
  it("kairos: config_url", () => {
    const r = renderBoot(host, { osFamily: "kairos", configURL: url });
    expect(r.kernelArgs).toEqual([`config_url=${url}`]);
    expect(r.config).toEqual({ kind: "url", parameter: "config_url", url });
  });

  it("kairos volume: cidata with user-data and meta-data, no argument", () => {
    const r = renderBoot(host, { osFamily: "kairos", delivery: "volume" });
    expect(r.kernelArgs).toEqual([]);
    expect(r.config).toEqual({
      kind: "volume",
      label: "cidata",
      configPath: "user-data",
      otherPaths: { metaData: "meta-data" },
    });
  });

  it("talos: talos.platform=metal talos.config=<url>", () => {
    const r = renderBoot(host, { osFamily: "talos", configURL: url });
    expect(r.commandLine).toBe(`talos.platform=metal talos.config=${url}`);
  });

  it("talos keeps ${uuid} in a query value for Talos to expand", () => {
    const r = renderBoot(host, {
      osFamily: "talos",
      configURL: "https://boot.example/talos?u=${uuid}",
    });
    expect(r.kernelArgs[1]).toBe("talos.config=https://boot.example/talos?u=${uuid}");
  });

  it("talos: ${uuid} in the path is substituted (Talos expands query values only)", () => {
    const r = renderBoot(host, { osFamily: "talos", configURL: "https://boot.example/${uuid}/c" });
    expect(r.kernelArgs[1]).toBe(
      "talos.config=https://boot.example/4c4c4544-0042-3510-8052-b4c04f4b4e32/c",
    );
  });

  it("talos volume: talos.config=metal-iso and config.yaml on metal-iso", () => {
    const r = renderBoot(host, { osFamily: "talos", delivery: "volume" });
    expect(r.kernelArgs).toEqual(["talos.platform=metal", "talos.config=metal-iso"]);
    expect(r.config).toMatchObject({
      kind: "volume",
      label: "metal-iso",
      configPath: "config.yaml",
    });
  });

  it("flatcar: flatcar.first_boot=1 ignition.config.url=<url> (not flatcar.ignition.config.url)", () => {
    const r = renderBoot(host, { osFamily: "flatcar", configURL: url });
    expect(r.kernelArgs).toEqual(["flatcar.first_boot=1", `ignition.config.url=${url}`]);
    expect(r.commandLine).not.toContain("flatcar.ignition");
  });

  it("flatcar refuses the seeds' flatcar.ignition.config.url as an extra argument", () => {
    expect(() =>
      renderBoot(host, {
        osFamily: "flatcar",
        configURL: url,
        extraKernelArgs: ["flatcar.ignition.config.url=https://x/"],
      }),
    ).toThrow(/not read by flatcar.*ignition\.config\.url/);
  });

  it("flatcar has no bare-metal configuration volume", () => {
    expect(() => renderBoot(host, { osFamily: "flatcar", delivery: "volume" })).toThrow(
      /no configuration volume for flatcar/,
    );
  });

  it("LeapMicro: combustion.url=<url> (not combustion.path)", () => {
    const r = renderBoot(host, { osFamily: "LeapMicro", configURL: url });
    expect(r.kernelArgs).toEqual([`combustion.url=${url}`]);
    expect(() =>
      renderBoot(host, {
        osFamily: "LeapMicro",
        configURL: url,
        extraKernelArgs: ["combustion.path=/x"],
      }),
    ).toThrow(/combustion\.path.*not read by LeapMicro/);
  });

  it("LeapMicro volume: label ignition with combustion/script and ignition/config.ign", () => {
    const r = renderBoot(host, { osFamily: "LeapMicro", delivery: "volume" });
    expect(r.kernelArgs).toEqual([]);
    expect(r.config).toEqual({
      kind: "volume",
      label: "ignition",
      configPath: "combustion/script",
      otherPaths: { ignition: "ignition/config.ign" },
    });
  });

  it("generic extra arguments follow the OS's own", () => {
    const r = renderBoot(host, {
      osFamily: "talos",
      configURL: url,
      extraKernelArgs: ["console=ttyS0,115200n8", "nomodeset", "ip=dhcp"],
    });
    expect(r.kernelArgs.slice(2)).toEqual(["console=ttyS0,115200n8", "nomodeset", "ip=dhcp"]);
  });

  it("refuses an unknown OS family, naming the accepted ones", () => {
    expect(() => renderBoot(host, { osFamily: "ubuntu", configURL: url })).toThrow(
      'unknown OS family "ubuntu": expected one of kairos, talos, flatcar, LeapMicro',
    );
    expect(() => renderBoot(host, { osFamily: "leapmicro", configURL: url })).toThrow(
      BootConfigError,
    );
  });
});

describe("renderBoot: validation", () => {
  it("needs a configURL for URL delivery", () => {
    expect(() => renderBoot(host, { osFamily: "kairos" })).toThrow(/needs a configURL/);
  });

  it("percent-encodes spaces, quotes and non-ASCII in URLs: one argument, same resource", () => {
    const r = renderBoot(host, {
      osFamily: "kairos",
      configURL: `https://boot.example/a b/it's "x"/ü?q=a b&r="y"'`,
    });
    expect(r.kernelArgs).toEqual([
      "config_url=https://boot.example/a%20b/it%27s%20%22x%22/%C3%BC?q=a%20b&r=%22y%22%27",
    ]);
    expect(r.commandLine.split(" ")).toHaveLength(1);
  });

  it("refuses URLs that are not http(s), carry credentials or do not parse", () => {
    expect(() => renderBoot(host, { osFamily: "kairos", configURL: "ftp://x/c" })).toThrow(
      /http or https/,
    );
    expect(() => renderBoot(host, { osFamily: "kairos", configURL: "https://u:p@x/c" })).toThrow(
      /credentials/,
    );
    expect(() => renderBoot(host, { osFamily: "kairos", configURL: "not a url" })).toThrow(
      /not a valid URL/,
    );
  });

  it("refuses ${uuid} when the host's UUID is unknown", () => {
    expect(() =>
      renderBoot({ name: "h" }, { osFamily: "kairos", configURL: "https://x/${uuid}" }),
    ).toThrow(/system UUID is not known/);
  });

  it.each([
    ["console=tty0 init=/bin/sh", /the value contains " "/],
    ['a="b c"', /the value contains/],
    ["a='b'", /the value contains "'"/],
    ["a=b\\c", /the value contains/],
    ["a=é", /non-ASCII/],
    ["bad name=1", /the name must be/],
    ["", /the name must be/],
    ["=x", /the name must be/],
  ])("refuses extra argument %j", (arg, message) => {
    expect(() =>
      renderBoot(host, { osFamily: "kairos", configURL: url, extraKernelArgs: [arg] }),
    ).toThrow(message);
  });

  it("refuses an extra argument that overrides Beskar7's own", () => {
    expect(() =>
      renderBoot(host, {
        osFamily: "talos",
        configURL: url,
        extraKernelArgs: ["talos.config=https://x/"],
      }),
    ).toThrow(/set by Beskar7/);
    expect(() =>
      renderBoot(host, {
        osFamily: "talos",
        configURL: url,
        extraKernelArgs: ["talos.platform=nocloud"],
      }),
    ).toThrow(/set by Beskar7/);
  });

  it("refuses a command line longer than Linux accepts", () => {
    const long = `https://x/${"a".repeat(MAX_COMMAND_LINE)}`;
    expect(() => renderBoot(host, { osFamily: "kairos", configURL: long })).toThrow(
      /the limit is 2047/,
    );
  });
});
