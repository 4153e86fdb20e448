// Shared helpers for the test BMC's own unit tests: start plain-HTTP instances (fast; TLS has its
// own test), find mockups by vendor keyword, and issue authenticated requests.
import { afterEach } from "vitest";

import { request, type RawRequest, type RawResponse } from "../../../lab/bmc/http";
import { listMockups } from "../../../lab/bmc/mockup-store";
import { TestBmc, type TestBmcOptions } from "../../../lab/bmc/server";

const started: TestBmc[] = [];

afterEach(async () => {
  await Promise.all(started.splice(0).map(b => b.stop()));
});

export function mockup(keyword: string): string {
  const found = listMockups().find(name => name.includes(keyword));
  if (!found) throw new Error(`no mockup matching ${keyword}`);
  return found;
}

export async function startBmc(
  keyword: string,
  options: Partial<TestBmcOptions> = {},
): Promise<TestBmc> {
  const bmc = await TestBmc.start({ mockup: mockup(keyword), tls: false, ...options });
  started.push(bmc);
  return bmc;
}

/** An authenticated (Basic) request against a test BMC. */
export function call(
  bmc: TestBmc,
  method: string,
  path: string,
  options: RawRequest = {},
): Promise<RawResponse> {
  return request(bmc.url, path, {
    method,
    auth: { username: bmc.username, password: bmc.password },
    ca: bmc.caPem,
    ...options,
  });
}

/** The MessageIds of a Redfish error body. */
export function messageIds(body: Record<string, unknown> | undefined): string[] {
  const error = body?.error as Record<string, unknown> | undefined;
  const info = error?.["@Message.ExtendedInfo"];
  return Array.isArray(info) ? info.map(i => String((i as Record<string, unknown>).MessageId)) : [];
}
