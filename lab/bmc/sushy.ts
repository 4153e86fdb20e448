// sushy-tools (OpenStack's Redfish emulator, what ironic and Metal3 CI run against) for
// integration tests: installed once from PyPI into a cached virtualenv, configured with the fake
// driver, Basic auth from a bcrypt htpasswd file and optional TLS, and run on a free 127.0.0.1
// port. Behaviour of the pinned version (read from its source, checked by our tests): power
// changes land 1–11 s after the request (Restart goes Off first), InsertMedia downloads the image
// URL, there is no SessionService, virtual media lives under Systems only, and state persists in
// sqlite files (kept per instance here via SUSHY_EMULATOR_STATE_DIR). Also seen on 2.2.0: the
// fake system always reports BootSourceOverrideEnabled "Continuous", and links a Memory collection
// that answers 404.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

import { request } from "./http";
import { generateTls } from "./tls";

const run = promisify(execFile);

export const SUSHY_TOOLS_VERSION = "2.2.0";

export function sushyVenvDir(): string {
  const cache = process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache");
  return join(cache, "beskar7", "sushy-tools-venv");
}

export interface SushyInstall {
  venv: string;
  python: string;
  emulator: string;
  version: string;
}

/** Creates the virtualenv and installs the pinned sushy-tools (and bcrypt) unless cached. */
export async function ensureSushyTools(
  log: (line: string) => void = () => undefined,
): Promise<SushyInstall> {
  const venv = sushyVenvDir();
  const install = (dir: string): SushyInstall => ({
    venv: dir,
    python: join(dir, "bin", "python"),
    emulator: join(dir, "bin", "sushy-emulator"),
    version: SUSHY_TOOLS_VERSION,
  });
  const current = install(venv);
  if (existsSync(current.emulator)) {
    const { stdout } = await run(current.python, [
      "-c",
      "import importlib.metadata as m; print(m.version('sushy-tools'))",
    ]);
    if (stdout.trim() === SUSHY_TOOLS_VERSION) return current;
  }
  // A venv's scripts hard-code its path, so build in place; a half-finished install fails the
  // version check above and is rebuilt from scratch.
  log(`installing sushy-tools ${SUSHY_TOOLS_VERSION} into ${venv}`);
  await rm(venv, { recursive: true, force: true });
  await mkdir(join(venv, ".."), { recursive: true });
  await run("python3", ["-m", "venv", venv]);
  await run(
    join(venv, "bin", "pip"),
    ["install", "--quiet", `sushy-tools==${SUSHY_TOOLS_VERSION}`, "bcrypt"],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  return current;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

export interface SushySystem {
  uuid: string;
  name: string;
  powerState: "On" | "Off";
  nics: { mac: string; ip: string }[];
}

export interface SushyOptions {
  systems?: SushySystem[];
  username?: string;
  password?: string;
  /** Serve HTTPS with a generated self-signed certificate. */
  tls?: boolean;
  featureSet?: "full" | "vmedia" | "minimum";
  log?: (line: string) => void;
  readyTimeoutMs?: number;
}

export interface SushyEmulator {
  url: string;
  caPem?: string;
  username: string;
  password: string;
  systems: SushySystem[];
  /** stdout+stderr of the emulator so far (for failure messages). */
  output(): string;
  stop(): Promise<void>;
}

function pyString(value: string): string {
  return JSON.stringify(value);
}

export function defaultSushySystem(): SushySystem {
  const mac = [
    "52",
    "54",
    "00",
    ...Array.from(randomBytes(3), b => b.toString(16).padStart(2, "0")),
  ];
  return {
    uuid: randomUUID(),
    name: "beskar7-fake",
    powerState: "Off",
    nics: [{ mac: mac.join(":"), ip: "127.0.0.2" }],
  };
}

export async function startSushy(options: SushyOptions = {}): Promise<SushyEmulator> {
  const log = options.log ?? (() => undefined);
  const install = await ensureSushyTools(log);
  const dir = await mkdtemp(join(tmpdir(), "beskar7-sushy-"));
  const username = options.username ?? "admin";
  const password = options.password ?? randomBytes(12).toString("hex");
  const systems = options.systems ?? [defaultSushySystem()];
  const port = await freePort();

  // bcrypt digest computed by the venv's bcrypt; the password goes through stdin, not argv.
  const hasher = spawn(install.python, [
    "-c",
    "import bcrypt,sys; print(bcrypt.hashpw(sys.stdin.read().encode(), bcrypt.gensalt(rounds=6)).decode())",
  ]);
  const digest = await new Promise<string>((resolve, reject) => {
    let out = "";
    hasher.stdout.on("data", (d: Buffer) => (out += d.toString()));
    hasher.on("error", reject);
    hasher.on("exit", code =>
      code === 0 ? resolve(out.trim()) : reject(new Error(`bcrypt exited ${code}`)),
    );
    hasher.stdin.end(password);
  });
  const authFile = join(dir, "htpasswd");
  await writeFile(authFile, `${username}:${digest}\n`, { mode: 0o600 });

  let caPem: string | undefined;
  const lines = [
    `SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'`,
    `SUSHY_EMULATOR_LISTEN_PORT = ${port}`,
    `SUSHY_EMULATOR_FAKE_DRIVER = True`,
    `SUSHY_EMULATOR_FEATURE_SET = ${pyString(options.featureSet ?? "full")}`,
    `SUSHY_EMULATOR_AUTH_FILE = ${pyString(authFile)}`,
    `SUSHY_EMULATOR_NO_MEMOIZE = True`,
    // State (systems, media) persists in sqlite under $TMPDIR/sushy-emulator by default, which
    // leaks systems between runs: keep it in this instance's directory.
    `SUSHY_EMULATOR_STATE_DIR = ${pyString(join(dir, "state"))}`,
    `SUSHY_EMULATOR_FAKE_SYSTEMS = [`,
    ...systems.map(
      s =>
        `  {'uuid': ${pyString(s.uuid)}, 'name': ${pyString(s.name)}, 'power_state': ${pyString(s.powerState)}, ` +
        `'nics': [${s.nics.map(n => `{'mac': ${pyString(n.mac)}, 'ip': ${pyString(n.ip)}}`).join(", ")}]},`,
    ),
    `]`,
  ];
  if (options.tls) {
    const material = generateTls("127.0.0.1");
    caPem = material.certPem;
    await writeFile(join(dir, "tls.crt"), material.certPem);
    await writeFile(join(dir, "tls.key"), material.keyPem, { mode: 0o600 });
    lines.push(`SUSHY_EMULATOR_SSL_CERT = ${pyString(join(dir, "tls.crt"))}`);
    lines.push(`SUSHY_EMULATOR_SSL_KEY = ${pyString(join(dir, "tls.key"))}`);
  }
  const configFile = join(dir, "emulator.conf");
  await writeFile(configFile, lines.join("\n") + "\n");

  let output = "";
  const child: ChildProcess = spawn(install.emulator, ["--config", configFile], {
    stdio: ["ignore", "pipe", "pipe"],
    // A proxy in the environment must not capture 127.0.0.1 downloads of the image URL.
    env: { ...process.env, NO_PROXY: "127.0.0.1,localhost", no_proxy: "127.0.0.1,localhost" },
  });
  const collect = (d: Buffer) => {
    output += d.toString();
    if (output.length > 200_000) output = output.slice(-100_000);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  let exited = false;
  child.on("exit", () => (exited = true));

  const url = `${options.tls ? "https" : "http"}://127.0.0.1:${port}`;
  const stop = async () => {
    if (!exited) {
      const gone = new Promise<void>(resolve => child.once("exit", () => resolve()));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await gone;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
  for (;;) {
    if (exited) {
      await stop();
      throw new Error(`sushy-emulator exited early:\n${output}`);
    }
    try {
      const res = await request(url, "/redfish/v1", {
        ca: caPem,
        auth: { username, password },
        timeoutMs: 2000,
      });
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`sushy-emulator did not answer on ${url}:\n${output}`);
    }
    await new Promise(r => setTimeout(r, 200));
  }
  log(`sushy-emulator ${install.version} on ${url}`);
  return { url, caPem, username, password, systems, output: () => output, stop };
}
