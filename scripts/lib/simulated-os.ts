// The operating system of every simulated server in scripts/bench-machines.ts. Since the boot
// service landed, hosts whose OS signals (configuration fetched: AwaitBoot; inspection report:
// AwaitInspection) are Provisioned only on that signal, so a benchmark without an OS measures
// PreBakedISO alone. This plays the booted OS against the real boot service, at once and timed.
//
// It is the test BMC's machine backend (lab/bmc/server.ts MachineBackend): the BMC calls it on
// every power-on with the boot override in force and the inserted media. By what the server boots:
//   - the boot service's patched ISO (virtual CD, .../boot.iso): reads /boot/grub/grub.cfg from the
//     medium with Range requests (as the OS reads its CD through the BMC), takes the configuration
//     URL from the kernel arguments and fetches it, which is the AwaitBoot signal;
//   - an unchanged ISO with the service's configuration volume on another slot (.../config.iso):
//     reads its configuration file from the volume and fetches nothing (Provisioned at power-on);
//   - an unchanged ISO alone (PreBakedISO): nothing the boot service sees;
//   - a network boot (Pxe, UefiHttp): the firmware loads the UefiHttp image if any, iPXE fetches
//     /v1/ipxe/<uuid> and loads what its script boots, and the booted image posts an inspection
//     report (valid under boot/server/report.ts) to its beskar7.report URL, the AwaitInspection
//     signal; then it fetches its configuration as the installed OS would.
// Every configuration read is compared with the bootstrap data. Each run is timed from the BMC's
// power-on to the signal, so a provisioning reads as controller time + OS time. Error messages
// carry no token (URLs go through the boot service's own redaction).
import { OsBoot } from "../../boot/os";
import { httpSource } from "../../boot/patched-iso";
import { IsoReader } from "../../boot/patched-iso/iso9660";
import { redactPath } from "../../boot/server/handler";
import type { InspectionReport } from "../../boot/server/report";
import { BootPaths, bootURL, canonicalUUID } from "../../boot/session";
import type { MachineBackend, MachineBootEvent, TestBmc } from "../../lab/bmc/server";
import type { BmcVendor } from "../../redfish/types";
import { httpBootUriBiosAttributes } from "../../redfish/vendors";
import { argValue, grubKernelArgs, ipxeBoot } from "../../lab/os/kernel-args";

/** What the server booted, named as the host's status.boot.delivery names it. */
export type OsPath = "PatchedISO" | "ConfigVolume" | "PreBakedISO" | "NetworkBoot";

export interface OsRun {
  /** The server's SMBIOS UUID, lower case. */
  uuid: string;
  path?: OsPath;
  /** The BMC's power-on (Date.now()). */
  bootAt: number;
  /** The OS sent what the host waits for (configuration fetched, report accepted) or, on paths
   *  without a signal, finished reading its configuration. */
  signalAt?: number;
  /** Everything done (for network boots, the configuration fetch after the report). */
  doneAt?: number;
  /** HTTP requests the OS made (Range reads of its media included). */
  requests: number;
  /** The configuration the OS read is the bootstrap data (undefined: it read none). */
  configMatches?: boolean;
  error?: string;
}

export interface SimulatedOsOptions {
  /** The boot service's base URL (BESKAR7_BOOT_URL). */
  bootURL: string;
  /** The Machines' bootstrap data, which every configuration the OS reads must equal. */
  bootstrapData: Buffer;
  /** The BMC of a server, by its UUID: the firmware reads a BIOS-held HTTP boot URI from it. */
  bmcOf(uuid: string): TestBmc | undefined;
}

const MEDIA_PREFIX = "/v1/media/";
const GRUB_CONFIG = "/boot/grub/grub.cfg";
/** URLs in messages as the boot service logs them: token segments replaced by <token>. */
const redact = redactPath;

/** The BIOS attributes any vendor keeps an HTTP boot URI in (Dell's HttpDev1Uri, HPE's
 *  UrlBootFile), by the Redfish driver's own rule. */
const HTTP_BOOT_URI_ATTRIBUTES = (
  ["Dell", "HPE", "Lenovo", "Supermicro", "AMI", "OpenBMC", "Generic"] satisfies BmcVendor[]
).flatMap(vendor =>
  Object.entries(httpBootUriBiosAttributes(vendor, "\0") ?? {})
    .filter(([, value]) => value === "\0")
    .map(([name]) => name),
);

export class SimulatedOs implements MachineBackend {
  readonly runs: OsRun[] = [];
  #armed = false;
  readonly #pending = new Set<Promise<void>>();

  constructor(private readonly options: SimulatedOsOptions) {}

  /** Boots before this (enrollment, inspection) are ignored: no provisioning is under way. */
  arm(): void {
    this.#armed = true;
  }

  boot(event: MachineBootEvent): void {
    if (!this.#armed || !event.uuid) return;
    const run: OsRun = { uuid: canonicalUUID(event.uuid), bootAt: Date.now(), requests: 0 };
    this.runs.push(run);
    // The BMC calls this while answering the power-on: start once that answer is on its way.
    const played: Promise<void> = new Promise<void>(r => setImmediate(r))
      .then(() => this.play(event, run))
      .catch((err: unknown) => {
        run.error = redact(err instanceof Error ? err.message : String(err));
      })
      .finally(() => {
        run.doneAt ??= Date.now();
        this.#pending.delete(played);
      });
    this.#pending.add(played);
  }

  powerOff(): void {
    // The OS just stops; nothing to tell the boot service.
  }

  /** Waits for every OS run under way. */
  async settled(): Promise<void> {
    await Promise.all([...this.#pending]);
  }

  /** The first run of a server's OS since arm(). */
  firstRun(uuid: string): OsRun | undefined {
    const key = canonicalUUID(uuid);
    return this.runs.find(r => r.uuid === key);
  }

  private async play(event: MachineBootEvent, run: OsRun): Promise<void> {
    const { target, media } = event.record;
    if (target === "Pxe" || target === "UefiHttp") return this.networkBoot(event, run);
    if (!media) {
      throw new Error(`the server booted ${target ?? "without a boot override"} and no medium`);
    }
    const service = bootURL(this.options.bootURL, MEDIA_PREFIX);
    if (media.startsWith(service) && media.endsWith("/boot.iso")) {
      return this.patchedIso(media, run);
    }
    const volume = event.media
      .map(m => m.image)
      .find(image => image.startsWith(service) && image.endsWith("/config.iso"));
    if (volume) return this.configVolume(volume, run);
    run.path = "PreBakedISO";
    run.signalAt = Date.now();
  }

  private async patchedIso(url: string, run: OsRun): Promise<void> {
    run.path = "PatchedISO";
    const cfg = await this.readFile(url, [GRUB_CONFIG], run);
    const args = grubKernelArgs(cfg.toString());
    const config = await this.get(configURL(args, "the patched ISO's kernel arguments"), run);
    run.signalAt = Date.now();
    run.configMatches = config.equals(this.options.bootstrapData);
  }

  private async configVolume(url: string, run: OsRun): Promise<void> {
    run.path = "ConfigVolume";
    // Whichever layout the volume has (cidata user-data, ignition combustion/script, ...).
    const paths = Object.values(OsBoot).flatMap(facts =>
      "configPath" in facts.volume ? [`/${facts.volume.configPath}`] : [],
    );
    const config = await this.readFile(url, paths, run);
    run.signalAt = Date.now();
    run.configMatches = config.equals(this.options.bootstrapData);
  }

  private async networkBoot(event: MachineBootEvent, run: OsRun): Promise<void> {
    run.path = "NetworkBoot";
    if (event.record.target === "UefiHttp") {
      // The firmware HTTP-boots the iPXE binary: the override's HttpBootUri, or the BIOS's.
      const image = event.record.media ?? this.biosHttpBootUri(run.uuid);
      if (!image) throw new Error("UefiHttp boot with no HttpBootUri and no BIOS boot URI");
      await this.get(image, run);
    }
    const script = await this.get(bootURL(this.options.bootURL, BootPaths.ipxe(run.uuid)), run);
    const boot = ipxeBoot(script.toString());
    await this.get(boot.image, run);
    if (boot.initrd) await this.get(boot.initrd, run);
    const reportURL = argValue(boot.args, "beskar7.report");
    if (!reportURL) throw new Error("the iPXE script's kernel arguments carry no beskar7.report");
    await this.post(reportURL, inspectionReport(run.uuid), run);
    run.signalAt = Date.now();
    const config = await this.get(configURL(boot.args, "the iPXE script's kernel arguments"), run);
    run.configMatches = config.equals(this.options.bootstrapData);
  }

  private biosHttpBootUri(uuid: string): string | undefined {
    const attributes = this.options.bmcOf(uuid)?.biosAttributes() ?? {};
    for (const name of HTTP_BOOT_URI_ATTRIBUTES) {
      const value = attributes[name];
      if (typeof value === "string" && value !== "") return value;
    }
    return undefined;
  }

  /** The first of `paths` found on the ISO9660 medium at `url`, read as the OS reads its CD. */
  private async readFile(url: string, paths: string[], run: OsRun): Promise<Buffer> {
    const source = await httpSource(url, { fetch: this.counted(run) });
    const iso = await IsoReader.open(source, redact(url));
    for (const path of paths) {
      for (const tree of iso.volume.trees) {
        const entry = await iso.lookup(tree, path);
        if (entry && !entry.isDirectory) return iso.readFile(entry);
      }
    }
    throw new Error(`${redact(url)} holds none of ${paths.join(", ")}`);
  }

  private counted(run: OsRun): typeof fetch {
    return (input, init) => {
      run.requests++;
      return fetch(input, init);
    };
  }

  private async get(url: string, run: OsRun): Promise<Buffer> {
    const response = await this.counted(run)(url);
    const body = Buffer.from(await response.arrayBuffer());
    if (!response.ok) {
      throw new Error(`GET ${redact(url)} answered ${response.status}: ${bodyText(body)}`);
    }
    return body;
  }

  private async post(url: string, report: InspectionReport, run: OsRun): Promise<void> {
    const response = await this.counted(run)(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(report),
    });
    const body = Buffer.from(await response.arrayBuffer());
    if (response.status !== 202) {
      throw new Error(`POST ${redact(url)} answered ${response.status}: ${bodyText(body)}`);
    }
  }
}

/** The boot service's answers are short texts without tokens; keep a line of one. */
const bodyText = (body: Buffer) => body.toString("utf8", 0, Math.min(body.length, 200)).trim();

/** The configuration URL among kernel arguments, under any supported OS's parameter name. */
function configURL(args: string[], where: string): string {
  for (const facts of Object.values(OsBoot)) {
    const value = argValue(args, facts.urlParameter);
    if (value && /^https?:\/\//.test(value)) return value;
  }
  const names = Object.values(OsBoot).map(f => f.urlParameter);
  throw new Error(`${where} carry no configuration URL (${names.join(", ")})`);
}

/** What an inspection image would find on a mid-sized server; the MAC is derived from the UUID. */
function inspectionReport(uuid: string): InspectionReport {
  const hex = uuid.replace(/-/g, "").slice(-12);
  return {
    systemUUID: uuid,
    cpu: { count: 2, cores: 32, model: "Simulated CPU" },
    memoryMiB: 256 * 1024,
    disks: [{ name: "nvme0n1", sizeBytes: 1_920_383_410_176, type: "NVMe" }],
    nics: [{ mac: hex.match(/../g)!.join(":"), name: "eno1" }],
  };
}
