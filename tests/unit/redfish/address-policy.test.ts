// The BMC address policy (redfish/address-policy.ts): which addresses are refused by default, what
// the operator's allow list lets through, and that a name resolving to a refused address fails at
// connect time with nothing sent, while the same BMC is reached when the policy allows it.
import { type LookupAddress } from "node:dns";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { hostname } from "node:os";
import { lookup } from "node:dns/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import {
  BmcAddressRefusedError,
  bmcAddressPolicy,
  createRedfishClient,
  lookupGuard,
  refusedBmcAddress,
  refusedIp,
} from "../../../redfish";

const strict = bmcAddressPolicy([], ["10.96.0.0/12", "fd00:10:96::/112"]);

describe("refusedBmcAddress", () => {
  it.each([
    ["https://169.254.169.254", "link-local"],
    ["169.254.169.254:443", "link-local"],
    ["https://[fe80::1]", "link-local"],
    ["https://[fe80::1%25eth0]:8443", "link-local"],
    ["fe80::1%eth0", "link-local"],
    ["https://127.0.0.1", "loopback"],
    ["https://127.8.9.10:8443", "loopback"],
    ["https://[::1]", "loopback"],
    ["::1", "loopback"],
    ["https://[::ffff:127.0.0.1]", "loopback"],
    ["https://localhost:8000", "loopback"],
    ["https://LOCALHOST.", "loopback"],
    ["https://bmc.localhost", "loopback"],
    ["https://0.0.0.0", "unspecified"],
    ["https://[::]", "unspecified"],
    ["https://kubernetes", "service"],
    ["https://kubernetes.default", "service"],
    ["https://kubernetes.default.svc", "service"],
    ["https://kubernetes.default.svc.cluster.local:443", "service"],
    ["https://metrics.monitoring.svc", "service"],
    ["https://10.96.0.1", "service"],
    ["https://10.111.22.33", "service"],
    ["https://[fd00:10:96::1]", "service"],
  ])("refuses %s as %s", (address, cls) => {
    expect(refusedBmcAddress(address, strict)?.addressClass).toBe(cls);
  });

  it.each([
    "https://10.0.0.5",
    "https://10.112.0.1",
    "https://192.168.1.20:8443",
    "https://[fd00::5]",
    "https://bmc1.example.com",
    "bmc1",
    "https://svc.example.com",
    "https://169.255.0.1",
    "https://126.255.255.255",
  ])("lets %s through", address => {
    expect(refusedBmcAddress(address, strict)).toBeUndefined();
  });

  it("lets a class through when allowed, and a CIDR whatever its class", () => {
    const loopback = bmcAddressPolicy(["loopback"], ["10.96.0.0/12"]);
    expect(refusedBmcAddress("https://127.0.0.1:8000", loopback)).toBeUndefined();
    expect(refusedBmcAddress("https://localhost", loopback)).toBeUndefined();
    expect(refusedBmcAddress("https://169.254.169.254", loopback)?.addressClass).toBe("link-local");
    const cidr = bmcAddressPolicy(["169.254.10.0/24", "10.96.5.0/24"], ["10.96.0.0/12"]);
    expect(refusedBmcAddress("https://169.254.10.7", cidr)).toBeUndefined();
    expect(refusedBmcAddress("https://169.254.169.254", cidr)?.addressClass).toBe("link-local");
    expect(refusedBmcAddress("https://10.96.5.9", cidr)).toBeUndefined();
    expect(refusedBmcAddress("https://10.96.6.9", cidr)?.addressClass).toBe("service");
    const services = bmcAddressPolicy(["service"]);
    expect(refusedBmcAddress("https://kubernetes.default.svc", services)).toBeUndefined();
  });

  it("says why, naming the address", () => {
    expect(refusedIp("169.254.169.254", strict)?.reason).toBe(
      "169.254.169.254 is a link-local address",
    );
    expect(refusedIp("10.96.0.10", strict)?.reason).toBe(
      "10.96.0.10 is in the cluster's Service network",
    );
  });

  it("refuses entries that are neither a class nor a CIDR", () => {
    expect(() => bmcAddressPolicy(["loopbak"])).toThrow('"loopbak" is not one of');
    expect(() => bmcAddressPolicy(["10.0.0.0/33"])).toThrow('"10.0.0.0/33"');
    expect(() => bmcAddressPolicy([], ["10.96.0.0"])).toThrow('"10.96.0.0" is not a CIDR');
  });
});

describe("lookupGuard", () => {
  const resolver =
    (answers: LookupAddress[]) =>
    (_name: string, _options: unknown, callback: (e: null, a: LookupAddress[]) => void) =>
      callback(null, answers);

  function run(answers: LookupAddress[], all = false): Promise<unknown> {
    const guard = lookupGuard(strict, resolver(answers) as never);
    return new Promise(resolve =>
      guard("bmc.example.test", { all }, (err, address, family) =>
        resolve(err ?? { address, family }),
      ),
    );
  }

  it("fails a name that resolves to a refused address, even one among several", async () => {
    const err = await run([
      { address: "10.0.0.5", family: 4 },
      { address: "169.254.169.254", family: 4 },
    ]);
    expect(err).toMatchObject({ code: "EBMCADDRESSREFUSED" });
    expect((err as Error).message).toBe(
      "bmc.example.test resolves to 169.254.169.254, a link-local address",
    );
  });

  it("passes allowed answers on in the shape asked for", async () => {
    expect(await run([{ address: "10.0.0.5", family: 4 }])).toEqual({
      address: "10.0.0.5",
      family: 4,
    });
    expect(await run([{ address: "10.0.0.5", family: 4 }], true)).toEqual({
      address: [{ address: "10.0.0.5", family: 4 }],
      family: undefined,
    });
  });
});

describe("the driver under an address policy", () => {
  let server: http.Server;
  let port: number;
  let requests = 0;
  /** A name (this machine's) that resolves to a loopback address. */
  let loopbackName: string;

  beforeAll(async () => {
    server = http.createServer((_req, res) => {
      requests++;
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify({ "@odata.id": "/redfish/v1", RedfishVersion: "1.6.0" }));
    });
    await new Promise<void>(resolve => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
    loopbackName = hostname();
    const resolved = await lookup(loopbackName);
    // The test needs a name that is not "localhost" and resolves to loopback: the host name
    // does on Debian and in containers (/etc/hosts).
    expect(resolved.address, `${loopbackName} must resolve to 127.0.0.0/8`).toMatch(/^127\./);
  });
  afterAll(() => new Promise<void>(resolve => server.close(() => resolve())));

  const client = (address: string, allow: string[]) =>
    createRedfishClient({
      address,
      credentials: { username: "operator", password: "correct-horse-battery" },
      auth: "basic",
      retry: { attempts: 1 },
      addressPolicy: bmcAddressPolicy(allow),
    });

  it("refuses an IP literal and a name resolving to loopback with nothing sent", async () => {
    for (const address of [`http://127.0.0.1:${port}`, `http://${loopbackName}:${port}`]) {
      const before = requests;
      const c = client(address, []);
      const err = await c.get("/redfish/v1").catch((e: unknown) => e);
      await c.close();
      expect(err).toBeInstanceOf(BmcAddressRefusedError);
      expect(err).toMatchObject({ code: "AddressRefused", retryable: false });
      expect((err as Error).message).toContain("loopback");
      expect(requests).toBe(before);
    }
  });

  it("reaches the same BMC when the policy allows loopback", async () => {
    const before = requests;
    const c = client(`http://${loopbackName}:${port}`, ["loopback"]);
    const root = await c.get("/redfish/v1");
    await c.close();
    expect(root.body).toMatchObject({ RedfishVersion: "1.6.0" });
    expect(requests).toBeGreaterThan(before);
  });
});
