// `beskar7 bmc …`: a thin command-line wrapper over the driver's public API, for operators and for
// poking at a BMC while developing. Each command maps to one library call; output is text or JSON.
import fs from "node:fs";
import { createRedfishClient, isRedfishError } from "./index";
import type { RedfishClient, RedfishSystem } from "./api";
import { redactSecrets } from "./errors";
import { credentialSecrets } from "./session";
import type {
  BootMode,
  BootOverrideState,
  BootTarget,
  HostInventory,
  MediaKind,
  RedfishClientOptions,
  VirtualMediaSlot,
} from "./types";

export interface CliIo {
  stdout: (line: string) => void;
  stderr: (line: string) => void;
  env: Record<string, string | undefined>;
  readFile: (path: string) => string;
}

/** Usage problems: exit code 2, no stack, no BMC contact. */
class UsageError extends Error {}

const USAGE = `usage: beskar7 bmc <command> [options]

commands:
  inventory
  power [status|on|off|restart|cycle] [--force]
  boot [show|clear]
  boot set --target Pxe|Cd|Hdd|UefiHttp|UefiTarget [--uri URI] [--persistent] [--mode UEFI|Legacy]
  media [list]
  media insert --image URL [--kind cd|usb] [--slot ID]
  media eject [--slot ID] [--kind cd|usb]
  systems

connection options:
  --address HOST[:PORT]|URL   BMC address (https implied)
  --username NAME             or BESKAR7_BMC_USERNAME
  --password-file FILE        or BESKAR7_BMC_PASSWORD; --password PASS works but warns
                              (visible in ps and shell history)
  --ca-file PEM               trust this CA bundle instead of the system store
  --insecure                  do not verify the BMC certificate
  --system-id ID              system to act on when the BMC manages several
  --timeout MS                per-request timeout (default 30000)
  --json                      machine-readable output`;

const FLAGS = new Set(["insecure", "json", "force", "persistent", "help"]);
const VALUES = new Set([
  "address",
  "username",
  "password",
  "password-file",
  "ca-file",
  "system-id",
  "timeout",
  "target",
  "uri",
  "mode",
  "image",
  "kind",
  "slot",
]);

interface ParsedArgs {
  positional: string[];
  options: Map<string, string | true>;
}

export function parseArgs(argv: string[]): ParsedArgs {
  const positional: string[] = [];
  const options = new Map<string, string | true>();
  for (let index = 0; index < argv.length; index += 1) {
    const arg = argv[index] ?? "";
    if (!arg.startsWith("--")) {
      positional.push(arg);
      continue;
    }
    const [name = "", inline] = arg.slice(2).split(/=(.*)/s, 2);
    if (FLAGS.has(name)) {
      options.set(name, true);
    } else if (VALUES.has(name)) {
      const value = inline ?? argv[(index += 1)];
      if (value === undefined) throw new UsageError(`--${name} needs a value`);
      options.set(name, value);
    } else {
      throw new UsageError(`unknown option --${name}`);
    }
  }
  return { positional, options };
}

function option(args: ParsedArgs, name: string): string | undefined {
  const value = args.options.get(name);
  return typeof value === "string" ? value : undefined;
}

function connectionOptions(args: ParsedArgs, io: CliIo): RedfishClientOptions {
  const address = option(args, "address") ?? io.env.BESKAR7_BMC_ADDRESS;
  if (!address) throw new UsageError("--address is required");
  const username = option(args, "username") ?? io.env.BESKAR7_BMC_USERNAME;
  if (!username) throw new UsageError("--username (or BESKAR7_BMC_USERNAME) is required");
  const passwordFile = option(args, "password-file");
  let password = option(args, "password");
  if (password !== undefined && passwordFile !== undefined) {
    throw new UsageError("give either --password or --password-file, not both");
  }
  if (password !== undefined) {
    io.stderr(
      "warning: --password is visible to other users (ps) and kept in shell history; use --password-file FILE or BESKAR7_BMC_PASSWORD",
    );
  }
  if (passwordFile !== undefined) {
    try {
      password = io.readFile(passwordFile).replace(/\r?\n$/, "");
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      throw new UsageError(
        `cannot read --password-file ${passwordFile}${typeof code === "string" ? ` (${code})` : ""}`,
      );
    }
  }
  password ??= io.env.BESKAR7_BMC_PASSWORD;
  if (password === undefined) {
    throw new UsageError("--password, --password-file or BESKAR7_BMC_PASSWORD is required");
  }
  const caFile = option(args, "ca-file");
  const timeout = option(args, "timeout");
  if (timeout !== undefined && !/^\d+$/.test(timeout)) throw new UsageError("--timeout is in ms");
  return {
    address,
    credentials: { username, password },
    tls: {
      caBundle: caFile ? io.readFile(caFile) : undefined,
      insecure: args.options.get("insecure") === true,
    },
    systemId: option(args, "system-id"),
    timeoutMs: timeout ? Number(timeout) : undefined,
    // Interactive use: fail fast rather than retry for half a minute.
    retry: { attempts: 1 },
  };
}

type Output = { json: unknown; text: string[] };

async function runCommand(args: ParsedArgs, client: RedfishClient): Promise<Output> {
  const [, command, sub] = args.positional;
  const system: RedfishSystem = client.system();
  switch (command) {
    case "inventory": {
      const inventory = await system.inventory();
      return { json: inventory, text: formatInventory(inventory) };
    }
    case "systems": {
      const ids = await client.systemIds();
      return { json: { systems: ids }, text: ids };
    }
    case "power":
      return runPower(sub ?? "status", args, system);
    case "boot":
      return runBoot(sub ?? "show", args, system);
    case "media":
      return runMedia(sub ?? "list", args, system);
    default:
      throw new UsageError(`unknown command "${command ?? ""}"`);
  }
}

async function runPower(sub: string, args: ParsedArgs, system: RedfishSystem): Promise<Output> {
  const force = args.options.get("force") === true;
  switch (sub) {
    case "status":
      break;
    case "on":
      await system.powerOn();
      break;
    case "off":
      await system.powerOff({ force });
      break;
    case "restart":
      await system.restart({ force });
      break;
    case "cycle":
      await system.powerCycle();
      break;
    default:
      throw new UsageError(`unknown power command "${sub}"`);
  }
  const state = await system.powerState();
  return { json: { powerState: state }, text: [`power: ${state}`] };
}

const TARGETS: BootTarget[] = ["Pxe", "Cd", "Hdd", "UefiHttp", "UefiTarget", "Usb", "BiosSetup"];

async function runBoot(sub: string, args: ParsedArgs, system: RedfishSystem): Promise<Output> {
  if (sub === "show") {
    const state = await system.bootOverride();
    return { json: state, text: formatBoot(state) };
  }
  if (sub === "clear") {
    const state = await system.clearBootOverride();
    return { json: state, text: formatBoot(state) };
  }
  if (sub !== "set") throw new UsageError(`unknown boot command "${sub}"`);
  const target = option(args, "target");
  if (!target || !TARGETS.includes(target as BootTarget)) {
    throw new UsageError(`--target must be one of ${TARGETS.join(", ")}`);
  }
  const mode = option(args, "mode");
  if (mode !== undefined && mode !== "UEFI" && mode !== "Legacy") {
    throw new UsageError("--mode must be UEFI or Legacy");
  }
  const uri = option(args, "uri");
  const result = await system.setBootOverride({
    target: target as BootTarget,
    persistent: args.options.get("persistent") === true,
    mode: mode as BootMode | undefined,
    httpBootUri: target === "UefiHttp" ? uri : undefined,
    uefiTarget: target === "UefiTarget" ? uri : undefined,
  });
  const text = formatBoot(result.state);
  for (const warning of result.warnings) text.push(`warning: ${warning}`);
  return { json: result, text };
}

async function runMedia(sub: string, args: ParsedArgs, system: RedfishSystem): Promise<Output> {
  const kind = option(args, "kind");
  if (kind !== undefined && kind !== "cd" && kind !== "usb") {
    throw new UsageError("--kind must be cd or usb");
  }
  switch (sub) {
    case "list": {
      const slots = await system.virtualMedia();
      return { json: slots, text: slots.map(formatSlot) };
    }
    case "insert": {
      const image = option(args, "image");
      if (!image) throw new UsageError("media insert needs --image URL");
      const result = await system.insertMedia({
        image,
        kind: kind as MediaKind | undefined,
        slot: option(args, "slot"),
      });
      return { json: result, text: [formatSlot(result.slot)] };
    }
    case "eject": {
      const ejected = await system.ejectMedia({
        slot: option(args, "slot"),
        kind: kind as MediaKind | undefined,
      });
      const text =
        ejected.length === 0 ? ["nothing to eject"] : ejected.map(s => `ejected ${s.id}`);
      return { json: ejected, text };
    }
    default:
      throw new UsageError(`unknown media command "${sub}"`);
  }
}

function formatInventory(inventory: HostInventory): string[] {
  const lines = [
    `system:       ${inventory.systemId} (${inventory.vendor})`,
    `manufacturer: ${inventory.manufacturer ?? "-"}`,
    `model:        ${inventory.model ?? "-"}`,
    `serial:       ${inventory.serialNumber ?? "-"}`,
    `uuid:         ${inventory.uuid ?? "-"}`,
    `bios:         ${inventory.biosVersion ?? "-"}`,
    `bmc firmware: ${inventory.bmcFirmwareVersion ?? "-"}`,
    `health:       ${inventory.health}`,
    `power:        ${inventory.powerState}`,
    `cpu:          ${inventory.processors.count} sockets, ${inventory.processors.cores} cores, ${inventory.processors.threads} threads`,
    `memory:       ${inventory.memory.totalGiB} GiB`,
  ];
  for (const disk of inventory.disks) {
    const size = disk.sizeBytes ? `${(disk.sizeBytes / 1e9).toFixed(1)} GB` : "size unknown";
    lines.push(
      `disk:         ${disk.id} ${disk.model ?? ""} ${size} ${disk.mediaType ?? ""}`.trimEnd(),
    );
  }
  for (const nic of inventory.nics) {
    lines.push(
      `nic:          ${nic.id} ${nic.macAddress ?? "-"} ${nic.linkStatus ?? ""}`.trimEnd(),
    );
  }
  for (const warning of inventory.warnings) lines.push(`warning:      ${warning}`);
  return lines;
}

function formatBoot(state: BootOverrideState): string[] {
  const lines = [
    `override: ${state.enabled} ${state.target}${state.mode ? ` (${state.mode})` : ""}`,
  ];
  if (state.httpBootUri) lines.push(`http boot uri: ${state.httpBootUri}`);
  if (state.allowedTargets.length) lines.push(`targets: ${state.allowedTargets.join(", ")}`);
  return lines;
}

function formatSlot(slot: VirtualMediaSlot): string {
  const content = slot.inserted ? (slot.image ?? "inserted") : "empty";
  return `${slot.id} [${slot.location}] ${slot.mediaTypes.join("/")} ${content} (${slot.insertMethod})`;
}

/** Runs the CLI; returns the exit code. Never prints the password (errors are redacted). */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let secrets: string[] = [];
  let client: RedfishClient | undefined;
  try {
    const args = parseArgs(argv);
    if (args.options.get("help") === true || argv.length === 0) {
      io.stdout(USAGE);
      return 0;
    }
    if (args.positional[0] !== "bmc") throw new UsageError('the first word must be "bmc"');
    const options = connectionOptions(args, io);
    secrets = credentialSecrets(options.credentials);
    client = createRedfishClient(options);
    const output = await runCommand(args, client);
    if (args.options.get("json") === true) io.stdout(JSON.stringify(output.json, null, 2));
    else for (const line of output.text) io.stdout(line);
    return 0;
  } catch (error) {
    const text = isRedfishError(error)
      ? `error: ${error.code}: ${error.message}`
      : `error: ${error instanceof Error ? error.message : String(error)}`;
    io.stderr(redactSecrets(text.replace(/\s*\n\s*/g, " "), secrets));
    if (error instanceof UsageError) io.stderr("run with --help for usage");
    return error instanceof UsageError ? 2 : 1;
  } finally {
    await client?.close().catch(() => undefined);
  }
}

export function main(argv = process.argv.slice(2)): void {
  void runCli(argv, {
    stdout: line => process.stdout.write(`${line}\n`),
    stderr: line => process.stderr.write(`${line}\n`),
    env: process.env,
    readFile: path => fs.readFileSync(path, "utf8"),
  }).then(code => {
    process.exitCode = code;
  });
}
