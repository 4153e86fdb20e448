import { execFile } from "node:child_process";
import { promisify } from "node:util";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliIo, runCli } from "../../../redfish/cli";
import { type MockBmc, startMock } from "./helpers";

let bmc: MockBmc;

beforeAll(async () => {
  bmc = await startMock({ mockup: "nvidia-libredfish_dell_poweredge-r750_idrac9-6.00.30" });
});

afterAll(async () => {
  await bmc.stop();
});

async function run(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = {
    stdout: line => out.push(line),
    stderr: line => err.push(line),
    env,
    readFile: file => fs.readFileSync(file, "utf8"),
  };
  const code = await runCli(args, io);
  return { code, out: out.join("\n"), err: err.join("\n") };
}

let passwordFile: string | undefined;

/** Connection options, the password in a file (--password would warn on stderr). */
function connection(): string[] {
  if (!passwordFile) {
    passwordFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "b7-")), "pw");
    fs.writeFileSync(passwordFile, bmc.password, { mode: 0o600 });
  }
  return [
    "--address",
    bmc.url,
    "--username",
    bmc.username,
    "--password-file",
    passwordFile,
    "--insecure",
  ];
}

describe("beskar7 bmc CLI", () => {
  it("prints inventory as text and as JSON", async () => {
    const text = await run(["bmc", "inventory", ...connection()]);
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/serial:\s+CNIVC0014M0388/);
    const json = await run(["bmc", "inventory", ...connection(), "--json"]);
    expect(JSON.parse(json.out).model).toBe("PowerEdge R750");
  });

  it("takes the password from a file or the environment", async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "b7-")), "pw");
    fs.writeFileSync(file, `${bmc.password}\n`);
    const fromFile = await run([
      "bmc",
      "power",
      "status",
      "--address",
      bmc.url,
      "--username",
      bmc.username,
      "--password-file",
      file,
      "--insecure",
    ]);
    expect(fromFile.out).toBe("power: On");
    const fromEnv = await run(["bmc", "power", "--address", bmc.url, "--insecure"], {
      BESKAR7_BMC_USERNAME: bmc.username,
      BESKAR7_BMC_PASSWORD: bmc.password,
    });
    expect(fromEnv.out).toBe("power: On");
  });

  it("sets and clears a boot override and drives virtual media", async () => {
    const set = await run([
      "bmc",
      "boot",
      "set",
      "--target",
      "Pxe",
      "--mode",
      "UEFI",
      ...connection(),
    ]);
    expect(set.code).toBe(0);
    expect(set.out).toContain("override: Once Pxe (UEFI)");
    const clear = await run(["bmc", "boot", "clear", ...connection()]);
    expect(clear.out).toContain("override: Disabled");
    const insert = await run([
      "bmc",
      "media",
      "insert",
      "--image",
      "http://10.0.0.1/x.iso",
      ...connection(),
    ]);
    expect(insert.out).toContain("http://10.0.0.1/x.iso");
    const eject = await run(["bmc", "media", "eject", ...connection()]);
    expect(eject.out).toMatch(/ejected \d/);
  });

  it("warns on stderr when the password is given as --password, and only then", async () => {
    const direct = await run([
      "bmc",
      "power",
      "--address",
      bmc.url,
      "--username",
      bmc.username,
      "--password",
      bmc.password,
      "--insecure",
    ]);
    expect(direct.code).toBe(0);
    expect(direct.out).toBe("power: On");
    expect(direct.err).toMatch(/^warning: --password is visible .*ps.*shell history/);
    expect(direct.err).toContain("--password-file");
    expect(direct.err).toContain("BESKAR7_BMC_PASSWORD");
    expect(direct.err).not.toContain(bmc.password);
    const fromFile = await run(["bmc", "power", ...connection()]);
    expect(fromFile.err).toBe("");
    const fromEnv = await run(["bmc", "power", "--address", bmc.url, "--insecure"], {
      BESKAR7_BMC_USERNAME: bmc.username,
      BESKAR7_BMC_PASSWORD: bmc.password,
    });
    expect(fromEnv.err).toBe("");
  });

  it("refuses both --password and --password-file, and names an unreadable file", async () => {
    const both = await run(["bmc", "power", ...connection(), "--password", "x"]);
    expect(both.code).toBe(2);
    expect(both.err).toContain("either --password or --password-file");
    const missing = await run([
      "bmc",
      "power",
      "--address",
      bmc.url,
      "--username",
      "u",
      "--password-file",
      "/nonexistent/pw",
    ]);
    expect(missing.code).toBe(2);
    expect(missing.err).toContain("cannot read --password-file /nonexistent/pw");
  });

  it("fails with one clear line and exit 1, never printing the password", async () => {
    const result = await run(
      ["bmc", "inventory", "--address", bmc.url, "--username", bmc.username, "--insecure"],
      { BESKAR7_BMC_PASSWORD: "Wr0ng-Secret" },
    );
    expect(result.code).toBe(1);
    expect(result.err.split("\n")).toHaveLength(1);
    expect(result.err).toMatch(/^error: AuthenticationFailed: /);
    expect(result.err + result.out).not.toContain("Wr0ng-Secret");
  });

  it("reports TLS failures without --insecure, and usage errors with exit 2", async () => {
    const tls = await run(["bmc", "inventory", "--address", bmc.url, "--username", "a"], {
      BESKAR7_BMC_PASSWORD: "b",
    });
    expect(tls.code).toBe(1);
    expect(tls.err).toMatch(/^error: TlsFailure/);
    const usage = await run(["bmc", "boot", "set", "--target", "Floppy", ...connection()]);
    expect(usage.code).toBe(2);
    expect(usage.err).toContain("--target must be one of");
  });

  it("runs through bin/beskar7.js (tsx, CommonJS)", async () => {
    // Asynchronous: the mock BMC lives in this process and must keep answering.
    const result = await promisify(execFile)(
      process.execPath,
      ["bin/beskar7.js", "bmc", "power", ...connection()],
      { cwd: path.resolve(__dirname, "../../.."), encoding: "utf8", timeout: 60_000 },
    );
    expect(result.stderr).toBe("");
    expect(result.stdout.trim()).toBe("power: On");
  }, 60_000);
});
