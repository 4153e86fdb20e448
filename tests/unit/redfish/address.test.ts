import { describe, expect, it } from "vitest";
import { bmcIdentity, canonicalBmcAddress } from "../../../redfish/index";

describe("canonicalBmcAddress", () => {
  it.each([
    ["https://BMC1", "https://bmc1"],
    ["https://bmc1:443", "https://bmc1"],
    ["HTTPS://Bmc1.Example.COM:443/", "https://bmc1.example.com"],
    ["bmc1", "https://bmc1"],
    ["bmc1:443", "https://bmc1"],
    ["bmc1:8443", "https://bmc1:8443"],
    ["https://bmc1:8443/redfish/v1/", "https://bmc1:8443"],
    ["  https://bmc1  ", "https://bmc1"],
    ["https://bmc1?x=1#frag", "https://bmc1"],
    ["https://user:pass@bmc1", "https://bmc1"],
    ["http://bmc1:80", "http://bmc1"],
    ["HTTP://bmc1:443", "http://bmc1:443"],
    ["http://bmc1:8000", "http://bmc1:8000"],
    ["https://10.0.0.5:443", "https://10.0.0.5"],
    ["https://[FD00:0:0::1]", "https://[fd00::1]"],
    ["https://[fd00::1]:443", "https://[fd00::1]"],
    ["https://[fd00::1]:8443", "https://[fd00::1]:8443"],
    ["[fd00::1]", "https://[fd00::1]"],
    ["fd00::1", "https://[fd00::1]"],
    ["https://[FE80::1%25eth0]:443", "https://[fe80::1%25eth0]"],
    ["https://[fe80::1%eth0]", "https://[fe80::1%25eth0]"],
    ["fe80::1%eth0", "https://[fe80::1%25eth0]"],
  ])("%s is %s", (address, canonical) => {
    expect(canonicalBmcAddress(address)).toBe(canonical);
  });

  it("keeps a zone id's case (interface names are case-sensitive)", () => {
    expect(canonicalBmcAddress("https://[fe80::1%25Eth0]")).toBe("https://[fe80::1%25Eth0]");
  });

  it("does not merge different schemes or ports", () => {
    expect(canonicalBmcAddress("http://bmc1")).not.toBe(canonicalBmcAddress("https://bmc1"));
    expect(canonicalBmcAddress("https://bmc1:80")).not.toBe(canonicalBmcAddress("http://bmc1"));
    expect(canonicalBmcAddress("https://bmc1:8443")).not.toBe(canonicalBmcAddress("https://bmc1"));
  });

  it("never throws: an address that is no URL is trimmed and lower-cased, without credentials", () => {
    expect(canonicalBmcAddress(" https://BAD HOST ")).toBe("https://bad host");
    expect(canonicalBmcAddress("https://u:p@[zz]")).toBe("https://[zz]");
  });
});

describe("bmcIdentity", () => {
  it("pairs the canonical address with the systemId", () => {
    expect(bmcIdentity("https://BMC1:443", "Blade1")).toEqual({
      address: "https://bmc1",
      systemId: "Blade1",
      key: "https://bmc1#Blade1",
    });
    expect(bmcIdentity("https://BMC1").key).toBe(bmcIdentity("bmc1:443", " ").key);
    expect(bmcIdentity("bmc1", "Blade1").key).not.toBe(bmcIdentity("bmc1", "Blade2").key);
    expect(bmcIdentity("bmc1", "Blade1").key).not.toBe(bmcIdentity("bmc1").key);
  });
});
