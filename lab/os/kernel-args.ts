// What a booted OS reads its kernel arguments from, for the programs that play that OS against the
// boot service (the boot end-to-end test, scripts/bench-machines.ts): the first `linux` line of a
// GRUB configuration (as found in a patched ISO) and the boot line of an iPXE script. One
// parser for both, so the test and the benchmark read what the service wrote the same way.

/** The kernel arguments of the first `linux` line of a GRUB configuration, quotes removed. */
export function grubKernelArgs(cfg: string): string[] {
  const line = cfg.split("\n").find(l => /^\s*linux\s/.test(l));
  if (!line) throw new Error(`no linux line in:\n${cfg}`);
  return line
    .trim()
    .split(/\s+/)
    .slice(2)
    .map(a => a.replace(/^["']|["']$/g, "").replace(/^(\S+?)=["'](.*)["']$/, "$1=$2"));
}

/**
 * What an iPXE script boots: the image its `chain` or `kernel` line loads, that line's kernel
 * arguments (options such as `--autofree` and the `|| goto failed` fallback left out), and the
 * image of its `initrd` line if there is one.
 */
export function ipxeBoot(script: string): { image: string; args: string[]; initrd?: string } {
  const words = (command: string) => {
    const line = script.split("\n").find(l => l.trim().startsWith(`${command} `));
    if (!line) return undefined;
    const rest = line.trim().split(/\s+/).slice(1);
    const end = rest.indexOf("||");
    const kept = end < 0 ? rest : rest.slice(0, end);
    // `--name <name>` takes a value; other options are flags.
    return kept.filter((w, i) => !w.startsWith("--") && kept[i - 1] !== "--name");
  };
  const [image, ...args] = words("chain") ?? words("kernel") ?? [];
  if (!image) throw new Error(`no chain or kernel line in the iPXE script:\n${script}`);
  const initrd = words("initrd")?.[0];
  return { image, args, ...(initrd ? { initrd } : {}) };
}

/** The value of `name=` among kernel arguments, or undefined. */
export const argValue = (args: string[], name: string): string | undefined =>
  args.find(a => a.startsWith(`${name}=`))?.slice(name.length + 1);
