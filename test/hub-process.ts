import { spawn, type ChildProcess } from "node:child_process";
import { ADMIN_KEY, waitFor } from "./helpers";

/**
 * A port for a test's hub: below Linux's ephemeral range (32768–60999), where outgoing connections
 * take their local ports, so mostly free; HubProcess.start moves on should it be taken all the same.
 */
export const testPort = () => 20000 + Math.floor(Math.random() * 12000);

/** Every hub started by this test file, so a failing test can print their output. */
export const startedHubs: HubProcess[] = [];

/** Runs the real server (`src/server.ts`) as a child process, so it can be killed at any line. */
export class HubProcess {
  child: ChildProcess | null = null;
  output = "";
  /** The port asked for; another one when something else took it meanwhile (see start). */
  port: number;

  constructor(
    port: number,
    readonly env: Record<string, string>,
  ) {
    this.port = port;
  }

  /**
   * Starts the hub and waits for /healthz. A port another process took since the test chose it (an
   * outgoing connection's local port, another test file's server) is not the hub's fault: it is
   * started again on another port, up to a few times.
   */
  async start(extra: Record<string, string> = {}) {
    startedHubs.push(this);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.startOn(extra);
      } catch (err) {
        if (attempt === 5 || !this.output.includes("the port is in use")) throw err;
        this.port = testPort();
        this.output = "";
      }
    }
  }

  private async startOn(extra: Record<string, string>) {
    this.child = spawn(process.execPath, ["--import", "tsx", "src/server.ts"], {
      env: { ...process.env, ...this.env, ...extra, PORT: String(this.port) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child.stdout!.on("data", (d: Buffer) => (this.output += d.toString()));
    this.child.stderr!.on("data", (d: Buffer) => (this.output += d.toString()));
    await waitFor(
      async () => {
        if (this.child?.exitCode !== null) throw new Error(`hub exited early:\n${this.output}`);
        const res = await fetch(`http://127.0.0.1:${this.port}/healthz`).catch(() => null);
        return res?.ok;
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
  }

  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return new Promise((resolve) => {
      if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) {
        resolve({ code: this.child?.exitCode ?? null, signal: this.child?.signalCode ?? null });
      } else this.child.once("exit", (code, signal) => resolve({ code, signal }));
    });
  }

  async stop() {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) {
      const done = this.exited();
      this.child.kill("SIGTERM");
      await done;
    }
  }

  post(path: string, body: unknown) {
    return fetch(`http://127.0.0.1:${this.port}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  }
}
