// A virtual machine's serial console as the VM tests see it: every line QEMU writes, kept in
// memory and appended to a file, with a way to wait for a line. The test installer
// (lab/vm/installer/init.sh) prints what the machine saw as "BESKAR7-<WHAT>: ..." lines; tests wait
// for those and, when a VM fails or times out, print the console's last lines.
import { appendFileSync } from "node:fs";

// The firmware and GRUB draw with ANSI escape sequences (ESC [ ... letter).
const ESCAPE_SEQUENCE = new RegExp(`${String.fromCharCode(27)}\\[[0-9;=?]*[A-Za-z]`, "g");

interface Waiter {
  pattern: RegExp;
  resolve: (line: string) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export class SerialConsole {
  readonly lines: string[] = [];
  private partial = "";
  private waiters: Waiter[] = [];
  private closedReason: string | undefined;

  /** `file`: where every line is appended as well (kept for looking at after the test). */
  constructor(readonly file?: string) {}

  /** Takes raw serial output; terminal escape sequences and carriage returns are dropped. */
  write(chunk: Buffer | string): void {
    const text = (this.partial + chunk.toString("latin1"))
      .replace(ESCAPE_SEQUENCE, "")
      .replace(/\r/g, "");
    const parts = text.split("\n");
    this.partial = parts.pop() ?? "";
    for (const line of parts) this.add(line);
  }

  /** The machine stopped: pending waits fail with `reason` unless their line came. */
  close(reason: string): void {
    if (this.partial !== "") this.add(this.partial);
    this.partial = "";
    this.closedReason = reason;
    for (const waiter of this.waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(this.failure(waiter.pattern, reason));
    }
  }

  /** Marks the console open again (the machine was started anew); lines are kept. */
  reopen(): void {
    this.closedReason = undefined;
  }

  /**
   * The first line matching `pattern`, already seen or to come, from line index `from` on (pass
   * `lines.length` to wait for a new one); fails after `timeoutMs`.
   */
  waitFor(pattern: RegExp, timeoutMs: number, from = 0): Promise<string> {
    const seen = this.lines.slice(from).find(line => pattern.test(line));
    if (seen !== undefined) return Promise.resolve(seen);
    if (this.closedReason !== undefined) {
      return Promise.reject(this.failure(pattern, this.closedReason));
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        pattern,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter(w => w !== waiter);
          reject(this.failure(pattern, `not seen within ${timeoutMs / 1000} s`));
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  /** Lines starting with "BESKAR7-<what>: ", their text after the prefix. */
  reports(what: string): string[] {
    const prefix = `BESKAR7-${what}: `;
    return this.lines.filter(l => l.startsWith(prefix)).map(l => l.slice(prefix.length));
  }

  tail(count = 40): string {
    return this.lines.slice(-count).join("\n");
  }

  private add(line: string): void {
    this.lines.push(line);
    if (this.file) appendFileSync(this.file, `${line}\n`);
    for (const waiter of [...this.waiters]) {
      if (!waiter.pattern.test(line)) continue;
      clearTimeout(waiter.timer);
      this.waiters = this.waiters.filter(w => w !== waiter);
      waiter.resolve(line);
    }
  }

  private failure(pattern: RegExp, reason: string): Error {
    return new Error(
      `serial console: ${pattern} ${reason}; last lines:\n${this.tail(40) || "(nothing)"}`,
    );
  }
}
