import { spawn, type ChildProcess } from "node:child_process";
import { ADMIN_KEY, waitFor } from "./helpers";

/** Every hub started by this test file, so a failing test can print their output. */
export const startedHubs: HubProcess[] = [];

/** Runs the real server (`src/server.ts`) as a child process, so it can be killed at any line. */
export class HubProcess {
  child: ChildProcess | null = null;
  output = "";
  constructor(
    readonly port: number,
    readonly env: Record<string, string>,
  ) {}

  async start(extra: Record<string, string> = {}) {
    startedHubs.push(this);
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
