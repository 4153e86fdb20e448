// `npm run testenv:start` / `npm run testenv:stop`: a control plane that outlives the command, for
// people and tools (kubectl, npm run operator:local) to use by hand.
import { existsSync } from "node:fs";
import { copyFile, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";

import { startControlPlane } from "./controlplane";
import { alive } from "./process";

const DIR = resolve(process.env.BESKAR7_TESTENV_DIR ?? ".testenv");
const STATE = join(DIR, "state.json");
const KUBECONFIG = join(DIR, "kubeconfig");

interface State {
  dir: string;
  kubeconfig: string;
  apiServerURL: string;
  pids: number[];
}

async function readState(): Promise<State | undefined> {
  if (!existsSync(STATE)) return undefined;
  return JSON.parse(await readFile(STATE, "utf8")) as State;
}

async function start(): Promise<void> {
  const previous = await readState();
  if (previous && previous.pids.every(alive)) {
    process.stdout.write(
      `The test control plane is already running at ${previous.apiServerURL}\n${previous.kubeconfig}\n`,
    );
    return;
  }
  if (previous) await stop(true);
  await mkdir(DIR, { recursive: true });
  const plane = await startControlPlane(join(DIR, "controlplane"), { detached: true });
  await copyFile(plane.kubeconfig, KUBECONFIG);
  const state: State = {
    dir: plane.dir,
    kubeconfig: KUBECONFIG,
    apiServerURL: plane.apiServerURL,
    pids: [plane.pids.kubeApiserver, plane.pids.etcd],
  };
  await writeFile(STATE, JSON.stringify(state, null, 2));
  process.stderr.write(
    `kube-apiserver ${plane.apiServerURL} is ready (binaries: ${plane.binaries.source}); ` +
      `stop it with: npm run testenv:stop\n`,
  );
  process.stdout.write(`${KUBECONFIG}\n`);
}

async function stop(quiet = false): Promise<void> {
  const state = await readState();
  if (!state) {
    if (!quiet) process.stderr.write("No test control plane is running.\n");
    return;
  }
  for (const pid of state.pids) {
    if (alive(pid)) process.kill(pid, "SIGTERM");
  }
  const deadline = Date.now() + 10_000;
  while (state.pids.some(alive) && Date.now() < deadline) {
    await new Promise(r => setTimeout(r, 100));
  }
  for (const pid of state.pids) if (alive(pid)) process.kill(pid, "SIGKILL");
  await rm(STATE, { force: true });
  await rm(state.kubeconfig, { force: true });
  await rm(state.dir, { recursive: true, force: true });
  if (!quiet) process.stderr.write("Stopped the test control plane.\n");
}

const command = process.argv[2];
const action = command === "start" ? start() : command === "stop" ? stop() : undefined;
if (!action) {
  process.stderr.write("usage: testenv start|stop\n");
  process.exit(2);
}
action.catch(err => {
  process.stderr.write(`testenv ${command}: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
