/**
 * Crash points for the crash-recovery tests: `HUB_CRASH_POINTS=after-ledger-commit` makes the process
 * die (SIGKILL, no cleanup) when it reaches that line. Read once; a no-op when unset.
 */
const points = new Set((process.env.HUB_CRASH_POINTS ?? "").split(",").map((s) => s.trim()).filter(Boolean));

export function crashPoint(name: string): void {
  if (points.size > 0 && points.has(name)) process.kill(process.pid, "SIGKILL");
}
