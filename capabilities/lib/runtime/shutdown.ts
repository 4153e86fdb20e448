// Graceful shutdown for the whole module. Pepr's own SIGTERM handler closes its HTTPS server and
// exits at once, which would cut off work in flight and leave BMC sessions open (a BMC allows only
// a few). The composition root calls takeOverShutdown() right after starting Pepr: on SIGTERM or
// SIGINT the hooks registered here run first (controllers stop their queues and wait for running
// work, then BMC sessions are logged out), each bounded by a deadline, and then Pepr's handlers
// run as they would have.

type Hook = (deadlineMs: number) => Promise<void>;

const hooks: Array<{ name: string; order: number; hook: Hook }> = [];
let stopping: Promise<void> | undefined;

/**
 * Registers work to do on shutdown. Lower order runs first; hooks of one order run together.
 * Order 0 stops controllers (no new work, running work ends); order 1 closes what they used.
 */
export function onShutdown(name: string, hook: Hook, order = 0): void {
  hooks.push({ name, order, hook });
}

/** Runs every hook once, by order, each group bounded by timeoutMs. Safe to call again. */
export function shutdown(
  timeoutMs = 10_000,
  log: (msg: string, err?: unknown) => void = () => undefined,
): Promise<void> {
  stopping ??= (async () => {
    const orders = [...new Set(hooks.map(h => h.order))].sort((a, b) => a - b);
    for (const order of orders) {
      const group = hooks.filter(h => h.order === order);
      const deadline = new Promise<void>(resolve => setTimeout(resolve, timeoutMs).unref());
      await Promise.race([
        Promise.allSettled(
          group.map(h =>
            h.hook(timeoutMs).catch(err => log(`shutdown step ${h.name} failed`, err)),
          ),
        ),
        deadline,
      ]);
    }
  })();
  return stopping;
}

/**
 * Puts this module's shutdown in front of the signal handlers installed so far (Pepr's): on
 * SIGTERM or SIGINT, shutdown() runs, then those handlers are called as before. Without earlier
 * handlers the process exits with the conventional code.
 */
export function takeOverShutdown(
  timeoutMs = 10_000,
  log: (msg: string, err?: unknown) => void = () => undefined,
): void {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    const previous = process.listeners(signal) as Array<(s: NodeJS.Signals) => void>;
    process.removeAllListeners(signal);
    process.once(signal, () => {
      log(`received ${signal}: stopping controllers and closing BMC sessions`);
      void shutdown(timeoutMs, log).finally(() => {
        if (previous.length) for (const handler of previous) handler(signal);
        else process.exit(signal === "SIGTERM" ? 143 : 130);
      });
    });
  }
}
