// Installs what the test suite needs beyond npm packages, before vitest starts, so a first run's
// downloads and builds happen in plain sight (with timings) and outside any test timeout:
// etcd/kube-apiserver/kubectl built from Go modules, the Cluster API CRDs from the Go module
// proxy, Cluster API's manager, kubeadm bootstrap manager and clusterctl built from Go modules,
// sushy-tools from PyPI, the Debian ISO9660 tools (xorriso, isoinfo) the boot/ unit tests read
// volumes back with, and for the VM tests QEMU, OVMF, iPXE, busybox and GRUB from Debian plus the
// test installer built from them (lab/vm/installer). Each is cached or installed once; later runs
// return at once.
import { ensureCapiBinaries } from "./capi";
import { capiCrdPaths } from "./capi-crds";
import { ensureControlPlaneBinaries } from "./binaries";
import { ensureSushyTools } from "../bmc/sushy";
import { ensureInstaller } from "../vm/installer/build";
import { ensureIsoTools, ensureVmPackages, vmPackages } from "./debian";

const log = (line: string) => process.stderr.write(`[prepare] ${line}\n`);

async function timed<T>(what: string, work: () => Promise<T>): Promise<T> {
  const started = Date.now();
  const result = await work();
  log(`${what}: ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return result;
}

async function main(): Promise<void> {
  const bins = await timed("control-plane binaries", () => ensureControlPlaneBinaries(log));
  log(`  ${bins.kubeApiserver} (${bins.source})`);
  await timed("Cluster API CRDs", () => capiCrdPaths());
  const capi = await timed("Cluster API binaries", () => ensureCapiBinaries(log));
  log(`  ${capi.manager} (${capi.source})`);
  await timed("sushy-tools", () => ensureSushyTools(log));
  await timed("ISO9660 tools (xorriso, isoinfo)", async () => ensureIsoTools(log));
  await timed(`VM packages (${vmPackages.join(" ")})`, async () => {
    const installed = ensureVmPackages(log);
    if (installed.length > 0) log(`  installed ${installed.join(" ")}`);
  });
  const installer = await timed("VM test installer", () => ensureInstaller(log));
  log(`  ${installer.iso} (${installer.kernelPackage})`);
}

main().catch(err => {
  log(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
