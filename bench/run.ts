/**
 * `npm run bench [-- name…]`: each scenario is measured next to a baseline run in the same process
 * and the same minute, and reported as a ratio, because this machine is shared and noisy. Prints a
 * table and writes bench/results.json:
 * `{ machine, scenarios: [{ name, value, unit, baseline: { name, value }, ratio, target, p50_ms?, p99_ms? }] }`.
 * Each scenario runs in a process of its own: one scenario's heap, connections and timers must not
 * weigh on the next (in one process, sms-ingress measured 0.44 after ledger-apply and 0.50 alone).
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { scenarios } from "./scenarios";
import type { Scenario, ScenarioResult } from "./lib";

/** Runs one scenario in a fresh Node process (the same tsx loader) and reads its result back. */
async function isolated(s: Scenario): Promise<ScenarioResult> {
  const dir = mkdtempSync(join(os.tmpdir(), "hub-bench-run-"));
  const out = join(dir, "result.json");
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), s.name], {
        stdio: "inherit",
        env: { ...process.env, BENCH_RESULT_PATH: out },
      });
      child.once("error", reject);
      child.once("exit", resolve);
    });
    if (code !== 0) throw new Error(`scenario ${s.name} exited with ${code}`);
    return JSON.parse(readFileSync(out, "utf8")) as ScenarioResult;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  const wanted = process.argv.slice(2);
  const chosen = wanted.length ? scenarios.filter((s) => wanted.includes(s.name)) : scenarios;
  if (wanted.length && chosen.length !== wanted.length) {
    console.error(`unknown scenario; known: ${scenarios.map((s) => s.name).join(", ")}`);
    process.exit(2);
  }
  const machine = {
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? "unknown",
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    platform: `${os.platform()} ${os.release()}`,
    date: new Date().toISOString(),
  };
  // A child: one scenario, its result to the file the parent named, no table.
  if (process.env.BENCH_RESULT_PATH) {
    writeFileSync(process.env.BENCH_RESULT_PATH, JSON.stringify(await chosen[0]!.run()));
    process.exit(0);
  }
  const results = [];
  console.log("| scenario | value | baseline | ratio | target | p50 | p99 |");
  console.log("|---|---|---|---|---|---|---|");
  for (const s of chosen) {
    const r = chosen.length === 1 ? await s.run() : await isolated(s);
    const ratio = Number((r.value / r.baseline.value).toFixed(3));
    const row = { name: s.name, description: s.description, ...r, ratio };
    results.push(row);
    const ms = (v: number | undefined) => (v === undefined ? "" : `${v} ms`);
    console.log(
      `| ${s.name} | ${r.value} ${r.unit} | ${r.baseline.name}: ${r.baseline.value} ${r.unit} | ${ratio} | ${r.target === null ? "" : `≥ ${r.target}${ratio >= r.target ? " ✓" : " ✗"}`} | ${ms(r.p50_ms)} | ${ms(r.p99_ms)} |`,
    );
  }
  writeFileSync(new URL("./results.json", import.meta.url), `${JSON.stringify({ machine, scenarios: results }, null, 2)}\n`);
  // Scenarios leave Redis connections and timers behind only by mistake; do not hang on them.
  process.exit(0);
}

await main();
