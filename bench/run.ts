/**
 * `npm run bench [-- name…]`: each scenario is measured next to a baseline run in the same process
 * and the same minute, and reported as a ratio, because this machine is shared and noisy. Prints a
 * table and writes bench/results.json:
 * `{ machine, scenarios: [{ name, value, unit, baseline: { name, value }, ratio, target, p50_ms?, p99_ms? }] }`.
 */
import { writeFileSync } from "node:fs";
import os from "node:os";
import { scenarios } from "./scenarios";

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
  const results = [];
  console.log("| scenario | value | baseline | ratio | target | p50 | p99 |");
  console.log("|---|---|---|---|---|---|---|");
  for (const s of chosen) {
    const r = await s.run();
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
