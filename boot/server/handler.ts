// The boot server's HTTP routes (the URL layout is BootPaths in boot/session.ts):
//
//   GET|HEAD /v1/media/{uuid}/{mediaToken}/boot.iso    PatchedISO: the stock ISO with this host's
//                                                      kernel arguments, streamed, Range-correct
//   GET|HEAD /v1/media/{uuid}/{mediaToken}/config.iso  ConfigVolume: the host's config volume
//   GET|HEAD /v1/config/{uuid}/{bootstrapToken}        the bootstrap data; records configFetchedTime
//   POST     /v1/report/{uuid}/{reportToken}           the inspection report (NetworkBoot only)
//   GET      /v1/ipxe/{uuid}                           the iPXE script (NetworkBoot only)
//
// A request that fails the access rules (access.ts) or matches no route gets the same 404 body,
// whatever the reason; the reason is counted. Errors after access is granted (an image with no
// room, a source ISO that 404s) are answered with what is wrong, since only the host's own
// token holder can see them, and never carry a token, bootstrap bytes or a source URL's
// credentials. Logs show paths with the token segment replaced by "<token>".
import type { IncomingMessage, ServerResponse } from "node:http";

import { configVolume } from "../config-volume";
import { BootConfigError } from "../os";
import {
  IsoFormatError,
  IsoNoBootConfigError,
  IsoRoomError,
  KernelArgumentsError,
} from "../patched-iso/errors";
import { Overlay } from "../patched-iso/overlay";
import { parseRange, sendBody, serveRange } from "../patched-iso/range";
import { bufferSource, readInto, type RandomAccessSource } from "../patched-iso/source";
import { renderBoot } from "../render";
import { BootPaths, bootToken, bootURL, canonicalUUID } from "../session";
import {
  authorize,
  provisioningHost,
  sessionOf,
  type AccessRules,
  type RefusalReason,
} from "./access";
import { BootDataUnavailable, type HostView } from "./directory";
import { Metrics } from "./metrics";
import { MAX_REPORT_BYTES, ReportError, parseReport } from "./report";
import { SourceIsoError, SourceIsos } from "./source-isos";

/** The OS family whose volume layout is cloud-init's NoCloud "cidata" (see boot/os.ts). */
const NO_CLOUD_LAYOUT = "kairos";

export interface BootHandlerOptions extends AccessRules {
  /** The external base URL hosts and BMCs use (may carry a path prefix). */
  baseURL: string;
  metrics?: Metrics;
  isos?: SourceIsos;
  /** One structured log entry per request and per notable event; never holds a secret. */
  log?: (entry: Record<string, unknown>) => void;
}

export interface BootHandler {
  (req: IncomingMessage, res: ServerResponse): void;
  metrics: Metrics;
  isos: SourceIsos;
  /** Responses still being written (graceful shutdown waits for them). */
  inflight(): number;
}

const NOT_FOUND = "not found\n";
/** Refusals a lagging view of the host explains (a session written a moment ago): the host is
 *  read afresh once before such a refusal stands (HostDirectory.refresh). */
const LAGGING_VIEW: readonly RefusalReason[] = ["not-provisioning", "no-session", "bad-token"];
const ISO_TYPE = "application/x-iso9660-image";

type Route =
  | { kind: "boot.iso" | "config.iso" | "config" | "report"; uuid: string; token: string }
  | { kind: "ipxe"; uuid: string };

/** The route of a path (after the base URL's prefix), or undefined. */
export function parseRoute(path: string): Route | undefined {
  const parts = path.split("/");
  if (parts[0] !== "" || parts[1] !== "v1") return undefined;
  const [, , kind, uuid, token, file, ...rest] = parts;
  if (!uuid || rest.length > 0) return undefined;
  if (kind === "media" && token && (file === "boot.iso" || file === "config.iso")) {
    return { kind: file, uuid, token };
  }
  if ((kind === "config" || kind === "report") && token && file === undefined) {
    return { kind, uuid, token };
  }
  if (kind === "ipxe" && token === undefined) return { kind, uuid };
  return undefined;
}

/**
 * A path as logs may show it: the token segment of a route replaced by "<token>", and so is any
 * other segment that could be a token (a mistyped or normalised URL still carries one).
 */
export function redactPath(path: string): string {
  return path
    .replace(/^(.*?\/v1\/(?:media|config|report)\/[^/?]*\/)[^/?]*/, "$1<token>")
    .replace(/(?<=^|\/)[A-Za-z0-9_-]{32,}(?=$|\/|\?)/g, "<token>");
}

export function defineBootMetrics(metrics: Metrics): void {
  metrics.define(
    "beskar7_boot_requests_total",
    "counter",
    "requests answered, by route and status code",
  );
  metrics.define(
    "beskar7_boot_refusals_total",
    "counter",
    "requests refused with the uniform 404, by reason (unknown-host, duplicate-uuid, not-provisioning, no-session, bad-token, expired, wrong-delivery, not-inspecting, no-route)",
  );
  metrics.define("beskar7_boot_bytes_sent_total", "counter", "response body bytes sent, by route");
  metrics.define(
    "beskar7_boot_signals_total",
    "counter",
    "host signals recorded in status.boot (configFetched, reported), by result",
  );
  metrics.define(
    "beskar7_boot_errors_total",
    "counter",
    "requests that passed the access rules but could not be served, by kind",
  );
  metrics.define("beskar7_boot_inflight_requests", "gauge", "responses being written");
}

export function createBootHandler(options: BootHandlerOptions): BootHandler {
  const metrics = options.metrics ?? new Metrics();
  if (!options.metrics) defineBootMetrics(metrics);
  const isos = options.isos ?? new SourceIsos();
  const log = options.log ?? (() => undefined);
  const prefix = new URL(options.baseURL).pathname.replace(/\/+$/, "");
  let inflight = 0;

  const handler = ((req: IncomingMessage, res: ServerResponse) => {
    const started = Date.now();
    const rawPath = (req.url ?? "/").split("?")[0]!;
    const shownPath = redactPath(rawPath);
    let routeName = "none";
    let sent = 0;
    inflight++;
    metrics.set("beskar7_boot_inflight_requests", {}, inflight);
    const count = (chunk: unknown) => {
      const bytes =
        typeof chunk === "string"
          ? Buffer.byteLength(chunk)
          : chunk instanceof Uint8Array
            ? chunk.length
            : 0;
      sent += bytes;
    };
    const write = res.write.bind(res) as (...args: unknown[]) => boolean;
    res.write = ((chunk: unknown, ...rest: unknown[]) => {
      count(chunk);
      return write(chunk, ...rest);
    }) as typeof res.write;
    const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
    res.end = ((chunk?: unknown, ...rest: unknown[]) => {
      count(chunk);
      return end(chunk, ...rest);
    }) as typeof res.end;
    res.once("close", () => {
      inflight--;
      metrics.set("beskar7_boot_inflight_requests", {}, inflight);
      metrics.inc("beskar7_boot_requests_total", {
        route: routeName,
        code: String(res.statusCode),
      });
      metrics.inc("beskar7_boot_bytes_sent_total", { route: routeName }, sent);
      log({
        msg: "request",
        method: req.method,
        path: shownPath,
        range: req.headers.range,
        status: res.statusCode,
        bytes: sent,
        ms: Date.now() - started,
        completed: res.writableFinished,
      });
    });

    const refuse = (reason: RefusalReason) => {
      metrics.inc("beskar7_boot_refusals_total", { reason });
      if (req.method !== "POST") req.resume();
      text(res, 404, NOT_FOUND, req.method === "HEAD");
    };
    const fail = (status: number, kind: string, message: string) => {
      metrics.inc("beskar7_boot_errors_total", { kind });
      log({ msg: "refused", path: shownPath, status, kind, message });
      text(res, status, `${message}\n`, req.method === "HEAD");
    };

    const path = rawPath.startsWith(`${prefix}/`) ? rawPath.slice(prefix.length) : rawPath;
    const route = parseRoute(path);
    if (!route) return refuse("no-route");
    routeName = route.kind;
    const method = req.method ?? "GET";
    const allowed =
      route.kind === "report" ? ["POST"] : route.kind === "ipxe" ? ["GET"] : ["GET", "HEAD"];
    if (!allowed.includes(method)) {
      res.setHeader("Allow", allowed.join(", "));
      return fail(405, "method", `${method} is not allowed here; use ${allowed.join(" or ")}`);
    }
    const uuid = canonicalUUID(route.uuid);
    const check = () =>
      route.kind === "ipxe"
        ? provisioningHost(options, uuid)
        : authorize(
            options,
            uuid,
            route.kind === "config" ? "bootstrap" : route.kind === "report" ? "report" : "media",
            route.token,
          );

    const serve = async (): Promise<void> => {
      let access = check();
      if (
        "refused" in access &&
        LAGGING_VIEW.includes(access.refused) &&
        (await options.directory.refresh?.(uuid, () => !("refused" in check())))
      ) {
        access = check();
      }
      if ("refused" in access) return refuse(access.refused);
      const host = access.host;
      const delivery = host.boot!.delivery;
      switch (route.kind) {
        case "boot.iso":
          if (delivery !== "PatchedISO") return refuse("wrong-delivery");
          return servePatchedIso(req, res, host);
        case "config.iso":
          if (delivery !== "ConfigVolume") return refuse("wrong-delivery");
          return serveConfigVolume(req, res, host);
        case "config":
          return serveBootstrapData(req, res, host);
        case "report":
          return acceptReport(req, res, host);
        case "ipxe":
          if (delivery !== "NetworkBoot") return refuse("wrong-delivery");
          if (
            host.state !== "Provisioning" ||
            host.boot!.reportedTime ||
            host.boot!.configFetchedTime
          ) {
            return refuse("not-inspecting");
          }
          return serveIpxe(res, host);
      }
    };

    const kernelArguments = (h: HostView, extra: string[] = []): string[] => {
      const p = h.provisioning ?? {};
      const configURL =
        p.configURL ??
        bootURL(
          options.baseURL,
          BootPaths.config(h.systemUUID, bootToken(options.tokenKey, "bootstrap", sessionOf(h))),
        );
      const args = p.osFamily
        ? renderBoot(
            { name: h.key, systemUUID: h.systemUUID },
            { osFamily: p.osFamily, configURL, extraKernelArgs: p.extraKernelArgs },
          ).kernelArgs
        : [...(p.extraKernelArgs ?? [])];
      if (!p.osFamily && h.boot!.delivery !== "NetworkBoot") {
        throw new BootConfigError(
          `host ${h.key}: spec.provisioning.osFamily is needed to place the kernel arguments`,
        );
      }
      return [...args, ...extra];
    };

    const servePatchedIso = async (rq: IncomingMessage, rs: ServerResponse, h: HostView) => {
      const url = h.provisioning?.bootISO;
      if (!url)
        return fail(
          422,
          "no-source-iso",
          `host ${h.key} has no spec.provisioning.bootISO to patch`,
        );
      const { patched, etag } = await isos.patched(url, kernelArguments(h));
      const size = patched.image.size;
      const parsed = parseRange(rq.headers.range, size);
      const endHint =
        parsed.type === "ranges" && parsed.ranges.length === 1 ? parsed.ranges[0]!.end : size - 1;
      const upstream = isos.upstream(url, size, endHint);
      const image = new Overlay(upstream, patched.image.patches);
      rs.once("close", () => upstream.close());
      await respondRange(rq, rs, { size, image, etag, contentType: ISO_TYPE });
    };

    const serveConfigVolume = async (rq: IncomingMessage, rs: ServerResponse, h: HostView) => {
      // A pre-baked ISO names no OS family: its bootstrap data goes on cloud-init's NoCloud
      // volume (label cidata: user-data, meta-data), which is also the layout Kairos reads.
      const family = h.provisioning?.osFamily ?? NO_CLOUD_LAYOUT;
      const data = await options.directory.bootstrapData(h);
      // The session's issue time, not now, dates the volume: every Range request of one session
      // must see the same bytes.
      const volume = configVolume(family, { config: data }, { date: new Date(h.boot!.issuedTime) });
      const image = bufferSource(volume.image);
      await respondRange(rq, rs, {
        size: volume.size,
        image,
        etag: `"${h.boot!.session}-${volume.size}"`,
        contentType: ISO_TYPE,
      });
    };

    const serveBootstrapData = async (rq: IncomingMessage, rs: ServerResponse, h: HostView) => {
      const data = await options.directory.bootstrapData(h);
      rs.writeHead(200, {
        "Content-Type": contentTypeOf(data),
        "Content-Length": String(data.length),
        "Cache-Control": "no-store",
      });
      if (rq.method === "HEAD") return void rs.end();
      rs.end(data);
      await new Promise<void>(resolve => rs.once("finish", resolve).once("close", resolve));
      if (!rs.writableFinished || h.boot!.configFetchedTime) return;
      await signal(h, { configFetchedTime: new Date().toISOString() }, "configFetched");
    };

    const acceptReport = async (rq: IncomingMessage, rs: ServerResponse, h: HostView) => {
      if (
        h.state !== "Provisioning" ||
        h.boot!.delivery !== "NetworkBoot" ||
        h.boot!.reportedTime
      ) {
        metrics.inc("beskar7_boot_refusals_total", { reason: "not-inspecting" });
        rq.resume();
        return text(rs, 409, "this host is not waiting for an inspection report\n");
      }
      const declared = Number(rq.headers["content-length"] ?? 0);
      if (declared > MAX_REPORT_BYTES) {
        return fail(
          413,
          "report-too-large",
          `the report is ${declared} bytes; at most ${MAX_REPORT_BYTES} are accepted`,
        );
      }
      const body = await readLimited(rq, MAX_REPORT_BYTES);
      if (!body) {
        return fail(413, "report-too-large", `the report is larger than ${MAX_REPORT_BYTES} bytes`);
      }
      let report;
      try {
        report = parseReport(body, h.systemUUID);
      } catch (err) {
        if (err instanceof ReportError) return fail(400, "report-invalid", err.message);
        throw err;
      }
      const ok = await signal(h, { reportedTime: new Date().toISOString(), report }, "reported");
      if (!ok)
        return fail(503, "report-not-recorded", "the report could not be recorded; post it again");
      text(rs, 202, "report accepted\n");
    };

    const serveIpxe = (rs: ServerResponse, h: HostView) => {
      const target = h.provisioning?.targetImageURL;
      if (!target)
        return fail(
          422,
          "no-target-image",
          `host ${h.key} has no spec.provisioning.targetImageURL to boot`,
        );
      const report = bootURL(
        options.baseURL,
        BootPaths.report(h.systemUUID, bootToken(options.tokenKey, "report", sessionOf(h))),
      );
      const args = kernelArguments(h, [`beskar7.report=${report}`]);
      const initrd = h.provisioning?.targetInitrdURL;
      text(
        rs,
        200,
        ipxeScript(h.key, new URL(target).href, args, initrd ? new URL(initrd).href : undefined),
      );
    };

    const signal = async (
      h: HostView,
      what: Parameters<typeof options.directory.recordSignal>[1],
      name: string,
    ): Promise<boolean> => {
      try {
        await options.directory.recordSignal(h, what);
        metrics.inc("beskar7_boot_signals_total", { signal: name, result: "recorded" });
        log({ msg: "signal", host: h.key, signal: name });
        return true;
      } catch (err) {
        metrics.inc("beskar7_boot_signals_total", { signal: name, result: "failed" });
        log({ msg: "signal failed", host: h.key, signal: name, error: errorText(err) });
        return false;
      }
    };

    serve().catch(err => {
      if (res.headersSent) {
        log({ msg: "response failed", path: shownPath, error: errorText(err) });
        res.destroy();
        return;
      }
      const [status, kind] = classify(err);
      fail(
        status,
        kind,
        status === 500 ? "internal error; see the boot service's log" : errorText(err),
      );
      if (status === 500) log({ msg: "internal error", path: shownPath, error: errorText(err) });
    });
  }) as BootHandler;
  handler.metrics = metrics;
  handler.isos = isos;
  handler.inflight = () => inflight;
  return handler;
}

async function respondRange(
  req: IncomingMessage,
  res: ServerResponse,
  image: { size: number; image: RandomAccessSource; etag: string; contentType: string },
): Promise<void> {
  const response = serveRange({
    size: image.size,
    read: (o, l) => image.image.read(o, l),
    readInto: (o, t) => readInto(image.image, o, t),
    range: req.headers.range,
    ifRange: headerValue(req.headers["if-range"]),
    etag: image.etag,
    method: req.method,
    contentType: image.contentType,
  });
  // The first chunk is read before the headers go out, so an upstream failure still gets a
  // proper error status instead of a truncated 200.
  const iterator = response.body[Symbol.asyncIterator]();
  const first = await iterator.next();
  res.writeHead(response.status, response.headers);
  async function* rest(): AsyncGenerator<Buffer> {
    if (first.done) return;
    yield first.value;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  }
  try {
    await sendBody(rest(), res);
  } finally {
    await iterator.return?.();
  }
}

/** The HTTP status and error kind of an error thrown while serving an authorised request. */
function classify(err: unknown): [number, string] {
  if (err instanceof SourceIsoError) return [502, "source-iso-unreachable"];
  if (err instanceof IsoFormatError) return [422, "source-iso-format"];
  if (err instanceof IsoRoomError) return [422, "source-iso-no-room"];
  if (err instanceof IsoNoBootConfigError) return [422, "source-iso-no-boot-config"];
  if (err instanceof KernelArgumentsError || err instanceof BootConfigError)
    return [422, "boot-config"];
  if (err instanceof BootDataUnavailable) return [404, "no-bootstrap-data"];
  return [500, "internal"];
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function text(
  res: ServerResponse,
  status: number,
  body: string,
  head = false,
  type = "text/plain; charset=utf-8",
): void {
  res.writeHead(status, {
    "Content-Type": type,
    "Content-Length": String(Buffer.byteLength(body)),
    "Cache-Control": "no-store",
  });
  res.end(head ? undefined : body);
}

/** The body, or undefined once it exceeds `limit` bytes (the rest is not read). */
async function readLimited(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  const parts: Buffer[] = [];
  let length = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (length > limit) return undefined;
    parts.push(chunk);
  }
  return Buffer.concat(parts);
}

/** What the bytes look like: Ignition and other JSON, a script, text, or opaque. */
export function contentTypeOf(data: Buffer): string {
  const head = data.subarray(0, 64).toString("utf8").trimStart();
  if (head.startsWith("{")) return "application/json";
  if (head.startsWith("#!")) return "text/x-shellscript";
  if (head.startsWith("#cloud-config")) return "text/cloud-config";
  const textual = new TextDecoder("utf-8", { fatal: true });
  try {
    textual.decode(data);
    return "text/plain; charset=utf-8";
  } catch {
    return "application/octet-stream";
  }
}

/** The name iPXE gives the initramfs image; the kernel finds it by this name (see ipxeScript). */
export const IPXE_INITRD_NAME = "initrd";

/**
 * The iPXE script for a host: with an initramfs, load the kernel and the initramfs and boot them
 * (what real OS network boots are: Talos, Flatcar); without, chain the target as one bootable
 * image (a unified kernel image or another EFI binary). Under UEFI, iPXE hands a Linux kernel its
 * initrd only through the `initrd=<name>` argument naming the loaded image (Debian's iPXE 1.0.0
 * EFI ROM), so the kernel line names it. Any failure waits and reboots, which retries the boot.
 */
export function ipxeScript(
  hostKey: string,
  targetImageURL: string,
  args: readonly string[],
  targetInitrdURL?: string,
): string {
  const boot = targetInitrdURL
    ? [
        `kernel ${targetImageURL} initrd=${IPXE_INITRD_NAME} ${args.join(" ")} || goto failed`,
        `initrd --name ${IPXE_INITRD_NAME} ${targetInitrdURL} || goto failed`,
        "boot || goto failed",
      ]
    : [`chain --autofree ${targetImageURL} ${args.join(" ")} || goto failed`];
  return [
    "#!ipxe",
    `# Beskar7 network boot of ${hostKey}; served only while the host is being inspected.`,
    ...boot,
    "exit",
    ":failed",
    "echo Beskar7: booting the target image failed; retrying in 30 seconds",
    "sleep 30",
    "reboot",
    "",
  ].join("\n");
}
