// A minimal client of QEMU's machine protocol (QMP) over a unix socket: what the VM-backed test
// BMC needs to press a virtual machine's reset button (system_reset) and pull its plug (quit).
// One command at a time; QMP answers in order, and events (lines with "event") are skipped.
import { connect, type Socket } from "node:net";

export class QmpClient {
  private buffer = "";
  private pending: Array<{ resolve: (v: unknown) => void; reject: (e: Error) => void }> = [];
  private greeted: Promise<void>;

  private constructor(private readonly socket: Socket) {
    let greet!: () => void;
    this.greeted = new Promise(resolve => (greet = resolve));
    let sawGreeting = false;
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      this.buffer += chunk;
      let newline: number;
      while ((newline = this.buffer.indexOf("\n")) >= 0) {
        const line = this.buffer.slice(0, newline).trim();
        this.buffer = this.buffer.slice(newline + 1);
        if (line === "") continue;
        const message = JSON.parse(line) as {
          QMP?: unknown;
          event?: string;
          return?: unknown;
          error?: { class: string; desc: string };
        };
        if (message.QMP !== undefined && !sawGreeting) {
          sawGreeting = true;
          greet();
        } else if (message.event === undefined) {
          const waiter = this.pending.shift();
          if (message.error)
            waiter?.reject(new Error(`QMP ${message.error.class}: ${message.error.desc}`));
          else waiter?.resolve(message.return);
        }
      }
    });
    const fail = (err: Error) => {
      for (const waiter of this.pending.splice(0)) waiter.reject(err);
    };
    socket.on("error", fail);
    socket.on("close", () => fail(new Error("QMP connection closed")));
  }

  /** Connects (retrying while QEMU creates the socket) and leaves capabilities negotiation. */
  static async connect(path: string, timeoutMs = 10_000): Promise<QmpClient> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const socket = await new Promise<Socket>((resolve, reject) => {
          const s = connect(path, () => resolve(s));
          s.once("error", reject);
        });
        const client = new QmpClient(socket);
        await client.greeted;
        await client.execute("qmp_capabilities");
        return client;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`QMP socket ${path}: ${String(err)}`);
        await new Promise(resolve => setTimeout(resolve, 100));
      }
    }
  }

  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.socket.write(`${JSON.stringify({ execute: command, arguments: args })}\n`);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
