// The one renderer of boot parameters: (OS family, host, request) → the kernel arguments and
// where the OS will find its configuration.
//
// Redfish virtual media boots an ISO with the command line baked into the ISO, so whatever
// Beskar7 wants on the kernel command line must be served by Beskar7 itself (an iPXE script,
// a GRUB configuration, a remastered ISO). This file decides what those arguments are; the
// serving is someone else's job. It validates everything it emits: a kernel command line is
// split at spaces and the boot loaders in front of it treat quotes specially, so a URL or an
// extra argument with a space or a quote in it would smuggle further arguments in. URLs are
// normalised and percent-encoded (WHATWG URL serialisation, plus the few characters it leaves
// bare that matter here); extra arguments that cannot be made safe are refused with the reason.

import { BootConfigError, OsBoot, osFamily, type OsFamily, type VolumeLayout } from "./os";

/** Linux's x86 COMMAND_LINE_SIZE (2048, including the terminating NUL) is the tightest limit. */
export const MAX_COMMAND_LINE = 2047;

export interface BootHost {
  /** Host name, for messages. */
  name: string;
  /** SMBIOS system UUID, when known (substituted for ${uuid} where the OS does not do it). */
  systemUUID?: string;
}

export interface BootRequest {
  /** "kairos" | "talos" | "flatcar" | "LeapMicro" (the operator's osFamily values). */
  osFamily: string;
  /**
   * Where the configuration is served. Required unless `delivery` is "volume". May contain
   * ${uuid}: Talos expands it itself in query values; elsewhere the host's UUID replaces it.
   */
  configURL?: string;
  /** "url" (the default): a kernel parameter carries configURL; "volume": a labelled volume. */
  delivery?: "url" | "volume";
  /** Further kernel arguments, one per item ("console=ttyS0,115200n8", "nomodeset"). */
  extraKernelArgs?: readonly string[];
}

export type ConfigLocation =
  | { kind: "url"; parameter: string; url: string }
  | { kind: "volume"; label: string; configPath: string; otherPaths: Record<string, string> };

export interface RenderedBoot {
  osFamily: OsFamily;
  /** One argument per item, each free of spaces and quotes. */
  kernelArgs: string[];
  /** kernelArgs joined by single spaces. */
  commandLine: string;
  config: ConfigLocation;
}

export function renderBoot(host: BootHost, request: BootRequest): RenderedBoot {
  const family = osFamily(request.osFamily);
  const facts = OsBoot[family];
  const delivery = request.delivery ?? "url";
  const args: string[] = [...facts.fixedArgs];
  let config: ConfigLocation;

  if (delivery === "url") {
    if (request.configURL === undefined || request.configURL === "") {
      throw new BootConfigError(
        `host ${host.name}: ${family} needs a configURL (or delivery "volume")`,
      );
    }
    const url = kernelSafeUrl(request.configURL, family, host);
    args.push(`${facts.urlParameter}=${url}`);
    config = { kind: "url", parameter: facts.urlParameter, url };
  } else if (delivery === "volume") {
    if ("unsupported" in facts.volume) {
      throw new BootConfigError(
        `host ${host.name}: no configuration volume for ${family}: ${facts.volume.unsupported}`,
      );
    }
    const layout: VolumeLayout = facts.volume;
    args.push(...facts.volumeArgs);
    config = {
      kind: "volume",
      label: layout.label,
      configPath: layout.configPath,
      otherPaths: { ...layout.otherPaths },
    };
  } else {
    throw new BootConfigError(
      `host ${host.name}: unknown delivery ${JSON.stringify(delivery)}: expected "url" or "volume"`,
    );
  }

  const own = new Set([facts.urlParameter, ...args.map(parameterName)]);
  for (const extra of request.extraKernelArgs ?? []) {
    const arg = checkKernelArg(extra);
    const name = parameterName(arg);
    if (facts.wrongParameters.includes(name)) {
      throw new BootConfigError(
        `kernel argument "${name}" is not read by ${family}; Beskar7 sets ${facts.urlParameter} itself`,
      );
    }
    if (own.has(name)) {
      throw new BootConfigError(
        `kernel argument "${name}" is set by Beskar7 for ${family}; remove it from the extra arguments`,
      );
    }
    args.push(arg);
  }

  const commandLine = args.join(" ");
  if (commandLine.length > MAX_COMMAND_LINE) {
    throw new BootConfigError(
      `host ${host.name}: the kernel command line would be ${commandLine.length} characters; the limit is ${MAX_COMMAND_LINE}`,
    );
  }
  return { osFamily: family, kernelArgs: args, commandLine, config };
}

/** "a.b=c" → "a.b"; "quiet" → "quiet". */
function parameterName(arg: string): string {
  const eq = arg.indexOf("=");
  return eq < 0 ? arg : arg.slice(0, eq);
}

/**
 * A user-supplied kernel argument: `name` or `name=value`, the name made of letters, digits and
 * . _ - (what Linux and the OSes here use), the value of printable ASCII without spaces, quotes
 * or backslashes (the characters the kernel's and the boot loaders' parsers treat specially).
 */
export function checkKernelArg(arg: string): string {
  const eq = arg.indexOf("=");
  const name = eq < 0 ? arg : arg.slice(0, eq);
  const value = eq < 0 ? "" : arg.slice(eq + 1);
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) {
    throw new BootConfigError(
      `kernel argument ${JSON.stringify(arg)}: the name must be letters, digits, ".", "_" or "-"`,
    );
  }
  const bad = [...value].find(
    ch => !/[\x21-\x7e]/.test(ch) || ch === '"' || ch === "'" || ch === "\\",
  );
  if (bad !== undefined) {
    throw new BootConfigError(
      `kernel argument ${JSON.stringify(arg)}: the value contains ${JSON.stringify(bad)}; spaces, quotes, backslashes and non-ASCII characters are not allowed (percent-encode them in URLs)`,
    );
  }
  return arg;
}

/**
 * An http(s) URL in a form that is one kernel argument: parsed and serialised by the WHATWG URL
 * rules (which percent-encode spaces, double quotes and non-ASCII), then with the characters that
 * serialisation leaves bare in a path and that matter to a command line (' and \) encoded too.
 * Credentials in the URL are refused: the command line is readable by every process on the host
 * and often logged by BMCs. ${uuid} is kept for Talos in query values, substituted otherwise.
 */
export function kernelSafeUrl(raw: string, family: OsFamily, host: BootHost): string {
  let text = raw.trim();
  const placeholder = "${uuid}";
  if (text.includes(placeholder)) {
    if (family === "talos" && placeholderOnlyInQuery(text, placeholder)) {
      // Talos expands ${uuid} in query values itself; keep it (the URL parser leaves $ { } alone
      // in a query).
    } else if (host.systemUUID) {
      text = text.split(placeholder).join(encodeURIComponent(host.systemUUID.toLowerCase()));
    } else {
      throw new BootConfigError(
        `host ${host.name}: configURL contains ${placeholder} but the host's system UUID is not known` +
          (family === "talos" ? " (Talos expands it only in query values)" : ""),
      );
    }
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new BootConfigError(
      `host ${host.name}: configURL ${JSON.stringify(raw)} is not a valid URL`,
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new BootConfigError(
      `host ${host.name}: configURL must be http or https, not ${url.protocol.slice(0, -1)}`,
    );
  }
  if (url.username !== "" || url.password !== "") {
    throw new BootConfigError(
      `host ${host.name}: configURL must not carry credentials (the kernel command line is readable by every process and logged by BMCs)`,
    );
  }
  const out = url.href.replace(/'/g, "%27").replace(/\\/g, "%5C");
  // The serialiser guarantees this; checked again because the argument's safety depends on it.
  if (!/^[\x21-\x7e]+$/.test(out) || out.includes('"')) {
    throw new BootConfigError(
      `host ${host.name}: configURL ${JSON.stringify(raw)} cannot be made one kernel argument`,
    );
  }
  return out;
}

function placeholderOnlyInQuery(text: string, placeholder: string): boolean {
  const query = text.indexOf("?");
  const hash = text.indexOf("#");
  const first = text.indexOf(placeholder);
  const last = text.lastIndexOf(placeholder);
  return query >= 0 && first > query && (hash < 0 || last < hash);
}
